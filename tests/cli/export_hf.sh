#!/usr/bin/env bash
# difftron export --format hf and checkpoint.init_from: hf:DIR as a user runs
# them: usage: bash export_hf.sh <difftron-binary> <source-dir>
# Exports a tiny diff checkpoint to a Hugging Face directory (single file,
# then sharded bf16), starts a run from it, and checks that bad input (a
# non-empty OUT_DIR, options of the wrong format, a missing HF directory) is
# one error line with a non-zero exit. The numbers themselves are checked by
# tests/unit/test_hf_reference.cpp and test_hf_import.cpp.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_export_hf_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

source "$(dirname "$0")/lib/errors.bash"
json() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

"$BIN" prepare --input /usr/share/common-licenses --output "$WORK/shards" >/dev/null 2>"$WORK/log" \
  || fail "prepare failed: $(cat "$WORK/log")"
cat >"$WORK/tiny.yaml" <<EOF
model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 64}
train: {seq_len: 32, global_batch_size: 4, max_steps: 2, warmup_steps: 1, log_every: 1, run_dir: $WORK/run}
data: {datasets: [{path: $WORK/shards}]}
parallel: {micro_batch_size: 2}
checkpoint: {dir: $WORK/ckpt, every_steps: 2}
EOF
"$BIN" train "$WORK/tiny.yaml" >/dev/null 2>"$WORK/log" || fail "train failed: $(cat "$WORK/log")"

# ---- one file, fp32
"$BIN" export "$WORK/ckpt" --format hf "$WORK/hf" >"$WORK/out" 2>"$WORK/err" || fail "export: $(cat "$WORK/err")"
grep -q "^exported $WORK/ckpt/step_00000002 to $WORK/hf (hf, fp32, 3 files, " "$WORK/out" || fail "summary: $(cat "$WORK/out")"
grep -q "^tokenizer: none written (data.tokenizer is 'byte'" "$WORK/out" || fail "no tokenizer line: $(cat "$WORK/out")"
[ "$(ls "$WORK/hf" | tr '\n' ' ')" = "config.json generation_config.json model.safetensors " ] \
  || fail "hf directory holds: $(ls "$WORK/hf")"
[ "$(json "$WORK/hf/config.json" "['model_type']")" = diffllama ] || fail "model_type: $(cat "$WORK/hf/config.json")"
[ "$(json "$WORK/hf/config.json" "['architectures'][0]")" = DiffLlamaForCausalLM ] || fail "architectures"
[ "$(json "$WORK/hf/config.json" "['num_attention_heads']")" = 4 ] || fail "num_attention_heads (2H sub-heads)"
[ "$(json "$WORK/hf/config.json" "['eos_token_id']")" = 256 ] || fail "eos_token_id of the byte tokenizer"
[ -z "$(find "$WORK" -maxdepth 1 -name 'hf.tmp*')" ] || fail "export left a temporary directory"
ok

# ---- sharded bf16
"$BIN" export "$WORK/ckpt" --format hf "$WORK/hf_bf16" --dtype bf16 --max-shard-size 20KB >"$WORK/out" \
  || fail "sharded export failed"
[ -f "$WORK/hf_bf16/model.safetensors.index.json" ] && [ -f "$WORK/hf_bf16/model-00001-of-00004.safetensors" ] \
  || fail "no index or shards: $(ls "$WORK/hf_bf16")"
[ "$(json "$WORK/hf_bf16/config.json" "['torch_dtype']")" = bfloat16 ] || fail "torch_dtype"
ok

# ---- a run started from the HF directory
"$BIN" train "$WORK/tiny.yaml" --set checkpoint.init_from="hf:$WORK/hf_bf16" --set checkpoint.dir="$WORK/ckpt2" \
  --set train.run_dir="$WORK/run2" --set train.max_steps=1 >"$WORK/out" 2>"$WORK/err" \
  || fail "train from hf: $(cat "$WORK/err")"
grep -q "init_from: weights of the Hugging Face model hf:$WORK/hf_bf16" "$WORK/out" "$WORK/err" \
  || fail "no init_from line: $(cat "$WORK/out")"
ok

# ---- bad input
mkdir "$WORK/full" && echo keep >"$WORK/full/x"
expect_one_line_error "$BIN" export "$WORK/ckpt" --format hf "$WORK/full"
grep -q "$WORK/full is a directory that is not empty" "$WORK/err" || fail "non-empty OUT_DIR: $(cat "$WORK/err")"
[ "$(cat "$WORK/full/x")" = keep ] || fail "export touched the non-empty OUT_DIR"
expect_one_line_error "$BIN" export "$WORK/ckpt" --format safetensors "$WORK/m.safetensors" --dtype bf16
grep -q -- "--dtype applies to --format hf only" "$WORK/err" || fail "--dtype with safetensors: $(cat "$WORK/err")"
expect_one_line_error "$BIN" export "$WORK/ckpt" --format hf "$WORK/y" --max-shard-size lots
expect_one_line_error "$BIN" export "$WORK/ckpt" --format hf "$WORK/y" --dtype fp16
[ ! -e "$WORK/y" ] || fail "a refused export wrote $WORK/y"
expect_one_line_error "$BIN" train "$WORK/tiny.yaml" --set checkpoint.init_from="hf:$WORK/nope" \
  --set checkpoint.dir="$WORK/ckpt3" --set train.run_dir="$WORK/run3"
grep -q "hf:$WORK/nope: not a directory" "$WORK/err" || fail "missing hf dir: $(cat "$WORK/err")"
expect_one_line_error "$BIN" train "$WORK/tiny.yaml" --set checkpoint.init_from="hf:$WORK/hf" \
  --set model.attention=standard --set checkpoint.dir="$WORK/ckpt4" --set train.run_dir="$WORK/run4"
grep -q "model_type diffllama cannot initialise a model.attention: standard run" "$WORK/err" \
  || fail "diffllama into standard: $(cat "$WORK/err")"
ok

"$BIN" export --help | grep -q 'difftron export PATH --format hf OUT_DIR' || fail "export --help"
ok
echo "$passed passed, 0 failed"
