#!/usr/bin/env bash
# difftron eval as a user runs it: usage: bash eval.sh <difftron-binary> <source-dir>
# Prepares a shard of the Debian licence texts, trains a tiny model 20 steps
# with checkpoints, evaluates it with --nll-by-position, and checks the
# summary, eval.json, the CSV (T rows), the PNG, and one-line errors.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_eval_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

source "$(dirname "$0")/lib/errors.bash"

"$BIN" prepare --input /usr/share/common-licenses --output "$WORK/shards" >/dev/null 2>&1 || fail "prepare failed"
T=48
cat >"$WORK/tiny.yaml" <<YAML
model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 88}
train: {seq_len: $T, global_batch_size: 8, max_steps: 20, lr: 3.0e-3, warmup_steps: 5, log_every: 10, run_dir: $WORK/run}
data: {datasets: [{path: $WORK/shards, weight: 1.0}]}
parallel: {micro_batch_size: 4}
checkpoint: {dir: $WORK/ckpt, every_steps: 10, keep_last: 2}
YAML
"$BIN" train "$WORK/tiny.yaml" >"$WORK/train.log" 2>&1 || fail "train failed: $(tail -3 "$WORK/train.log")"
[ -f "$WORK/ckpt/step_00000020/manifest.yaml" ] || fail "no step_00000020 checkpoint"
ok "trained 20 steps with checkpoints"

"$BIN" eval "$WORK/ckpt" --data "$WORK/shards" --max-tokens 20000 --nll-by-position --out "$WORK/eval" \
  >"$WORK/eval.log" 2>"$WORK/eval.err" || fail "eval failed: $(cat "$WORK/eval.err")"
grep -Eq "^eval: .*step_00000020 \(step 20\): [0-9]+ windows x $T tokens = [0-9]+ tokens, mean NLL [0-9.]+ nats, perplexity [0-9.]+" \
  "$WORK/eval.log" || fail "no summary line: $(cat "$WORK/eval.log")"
ok "summary line"

grep -q '"perplexity": ' "$WORK/eval/eval.json" || fail "eval.json has no perplexity: $(cat "$WORK/eval/eval.json")"
grep -q '"seq_len": 48,' "$WORK/eval/eval.json" || fail "eval.json seq_len: $(cat "$WORK/eval/eval.json")"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys,math; j=json.load(open(sys.argv[1])); assert abs(math.exp(j["mean_nll"])-j["perplexity"])<1e-9*j["perplexity"]' \
    "$WORK/eval/eval.json" || fail "eval.json is not valid JSON or perplexity != exp(mean_nll)"
fi
ok "eval.json"

CSV=$WORK/eval/nll_by_position.csv
[ "$(head -1 "$CSV")" = "position,cumulative_nll,nll_at_position" ] || fail "CSV header: $(head -1 "$CSV")"
[ "$(tail -n +2 "$CSV" | wc -l)" -eq $T ] || fail "CSV has $(tail -n +2 "$CSV" | wc -l) rows, expected $T"
[ "$(tail -1 "$CSV" | cut -d, -f1)" = "$T" ] || fail "last CSV row is not position $T"
grep -q "^  *$T  " "$WORK/eval.log" || fail "the table has no row for position $T: $(cat "$WORK/eval.log")"
ok "nll_by_position.csv has $T rows"

PNG=$WORK/eval/nll_by_position.png
[ -s "$PNG" ] || fail "no PNG written"
[ "$(head -c 8 "$PNG" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "not a PNG signature"
ok "nll_by_position.png"

# The step directory itself works as well, with another length and batch; --max-tokens all.
"$BIN" eval "$WORK/ckpt/step_00000010" --data "$WORK/shards" --seq-len 32 --batch 2 --max-tokens 64 --out "$WORK/eval2" \
  >"$WORK/eval2.log" 2>&1 || fail "eval of step_00000010 failed: $(cat "$WORK/eval2.log")"
grep -q "2 windows x 32 tokens = 64 tokens" "$WORK/eval2.log" || fail "step_00000010 eval: $(cat "$WORK/eval2.log")"
ok "step directory, --seq-len, --batch, --max-tokens"

expect_one_line_error "$BIN" eval "$WORK/no_such_ckpt" --data "$WORK/shards" --out "$WORK/e3"
grep -q "no_such_ckpt" "$WORK/err" || fail "error does not name the checkpoint: $(cat "$WORK/err")"
expect_one_line_error "$BIN" eval "$WORK/ckpt" --data "$WORK/no_such_data" --out "$WORK/e3"
grep -q "no_such_data" "$WORK/err" || fail "error does not name the data: $(cat "$WORK/err")"
expect_one_line_error "$BIN" eval "$WORK/ckpt" --data "$WORK/shards" --batch 0
expect_one_line_error "$BIN" eval "$WORK/ckpt" --data "$WORK/shards" --no-such-option
expect_one_line_error "$BIN" eval "$WORK/ckpt"
ok "bad checkpoint, data and options: one line, non-zero exit"

"$BIN" eval --help | grep -q -- "--nll-by-position" || fail "--help does not list --nll-by-position"
ok "--help"

echo "$passed passed, 0 failed"
