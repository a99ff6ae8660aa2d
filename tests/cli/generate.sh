#!/usr/bin/env bash
# difftron generate as a user runs it: usage: bash generate.sh <difftron-binary> <source-dir>
# Prepares a shard of the Debian licence texts, trains a tiny model 20 steps
# with checkpoints (diff attention; then standard attention), generates greedily
# with the KV cache and with --no-cache (same text), checks the summary line,
# seeded sampling, --help and one-line errors.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_generate_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

source "$(dirname "$0")/lib/errors.bash"

"$BIN" prepare --input /usr/share/common-licenses --output "$WORK/shards" >/dev/null 2>&1 || fail "prepare failed"
# Diff attention with grouped-query heads (2 differential heads, 1 kv head).
cat >"$WORK/tiny.yaml" <<YAML
model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 88}
train: {seq_len: 48, global_batch_size: 8, max_steps: 20, lr: 3.0e-3, warmup_steps: 5, log_every: 10, run_dir: $WORK/run}
data: {datasets: [{path: $WORK/shards, weight: 1.0}]}
parallel: {micro_batch_size: 4}
checkpoint: {dir: $WORK/ckpt, every_steps: 10, keep_last: 2}
YAML
"$BIN" train "$WORK/tiny.yaml" >"$WORK/train.log" 2>&1 || fail "train failed: $(tail -3 "$WORK/train.log")"
[ -f "$WORK/ckpt/step_00000020/manifest.yaml" ] || fail "no step_00000020 checkpoint"
ok "trained 20 steps with checkpoints"

PROMPT="This program is free software; you can"
# 60 new tokens: past the trained 48-token context, so RoPE positions beyond T are exercised too.
"$BIN" generate "$WORK/ckpt" --prompt "$PROMPT" --temperature 0 --max-new-tokens 60 \
  >"$WORK/cache.txt" 2>"$WORK/cache.err" || fail "generate failed: $(cat "$WORK/cache.err")"
"$BIN" generate "$WORK/ckpt" --prompt "$PROMPT" --temperature 0 --max-new-tokens 60 --no-cache \
  >"$WORK/nocache.txt" 2>"$WORK/nocache.err" || fail "generate --no-cache failed: $(cat "$WORK/nocache.err")"
[ -s "$WORK/cache.txt" ] || fail "no text generated"
cmp -s "$WORK/cache.txt" "$WORK/nocache.txt" ||
  fail "greedy output differs with and without the KV cache: '$(cat "$WORK/cache.txt")' vs '$(cat "$WORK/nocache.txt")'"
ok "greedy: KV cache and --no-cache print the same continuation"

# The baseline: standard attention, 4 heads over 2 kv heads, tied embeddings.
"$BIN" train "$WORK/tiny.yaml" --set model.attention=standard --set model.tie_embeddings=true \
  --set checkpoint.dir="$WORK/ckpt_std" --set train.run_dir="$WORK/run_std" >"$WORK/train_std.log" 2>&1 ||
  fail "standard train failed: $(tail -3 "$WORK/train_std.log")"
for c in "" --no-cache; do
  "$BIN" generate "$WORK/ckpt_std" --prompt "$PROMPT" --temperature 0 --max-new-tokens 60 $c \
    >"$WORK/std$c.txt" 2>"$WORK/std.err" || fail "standard generate $c failed: $(cat "$WORK/std.err")"
done
cmp -s "$WORK/std.txt" "$WORK/std--no-cache.txt" ||
  fail "standard attention: greedy output differs with and without the KV cache"
ok "standard attention: KV cache and --no-cache print the same continuation"

grep -Eq "^generate: .*step_00000020 \(step 20\): [0-9]+ prompt tokens, [0-9]+ new tokens in [0-9.]+ s .*, [0-9.]+ tokens/s, kv cache$" \
  "$WORK/cache.err" || fail "no summary line: $(cat "$WORK/cache.err")"
grep -q "no cache$" "$WORK/nocache.err" || fail "--no-cache summary: $(cat "$WORK/nocache.err")"
[ "$(wc -l <"$WORK/cache.err")" -eq 1 ] || fail "stderr has more than the summary: $(cat "$WORK/cache.err")"
ok "summary line"

# Sampling: a seed reproduces the text; top-k 1 is greedy.
for i in 1 2; do
  "$BIN" generate "$WORK/ckpt/step_00000010" --prompt "$PROMPT" --temperature 0.9 --top-k 40 --top-p 0.95 --seed 7 \
    --max-new-tokens 30 --tokenizer byte >"$WORK/seeded$i.txt" 2>/dev/null || fail "seeded generate failed"
done
cmp -s "$WORK/seeded1.txt" "$WORK/seeded2.txt" || fail "same seed, different text"
"$BIN" generate "$WORK/ckpt" --prompt "$PROMPT" --top-k 1 --seed 3 --max-new-tokens 60 \
  >"$WORK/topk1.txt" 2>/dev/null || fail "top-k 1 generate failed"
cmp -s "$WORK/topk1.txt" "$WORK/cache.txt" || fail "--top-k 1 differs from greedy"
ok "seeded sampling reproducible; --top-k 1 equals greedy"

"$BIN" generate --help | grep -q -- "--no-cache" || fail "--help does not list --no-cache"
"$BIN" --help | grep -q "generate CKPT" || fail "difftron --help does not list generate"
ok "--help"

expect_one_line_error "$BIN" generate "$WORK/no_such_ckpt" --prompt "hi"
grep -q "no_such_ckpt" "$WORK/err" || fail "error does not name the checkpoint: $(cat "$WORK/err")"
mkdir -p "$WORK/bad/step_00000005" && echo "not: [a manifest" >"$WORK/bad/step_00000005/manifest.yaml"
expect_one_line_error "$BIN" generate "$WORK/bad/step_00000005" --prompt "hi"
expect_one_line_error "$BIN" generate "$WORK/ckpt"
expect_one_line_error "$BIN" generate "$WORK/ckpt" --prompt ""
expect_one_line_error "$BIN" generate "$WORK/ckpt" --prompt "hi" --temperature -1
expect_one_line_error "$BIN" generate "$WORK/ckpt" --prompt "hi" --top-p 0
expect_one_line_error "$BIN" generate "$WORK/ckpt" --prompt "hi" --max-new-tokens x
expect_one_line_error "$BIN" generate "$WORK/ckpt" --prompt "hi" --tokenizer no_such.tiktoken
expect_one_line_error "$BIN" generate "$WORK/ckpt" --prompt "hi" --no-such-option
ok "bad checkpoint and options: one line, non-zero exit"

echo "$passed passed, 0 failed"
