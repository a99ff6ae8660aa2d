#!/usr/bin/env bash
# difftron inspect and export as a user runs them: usage: bash inspect_export.sh <difftron-binary> <source-dir>
# Trains tiny checkpoints from the Debian licence texts, inspects them (λ per
# layer, tensor table, checksums), exports safetensors and validates the file
# with tests/tools/read_safetensors.py, then checks inspect's λ and L2 norms against
# values the Python reader computes from the exported tensors. Bad input (a
# corrupted shard, no checkpoint, an unknown format) is one error line and a
# non-zero exit.
set -euo pipefail
BIN=$1
SRC=$2
WORK=$(mktemp -d /tmp/dt_cli_inspect_export_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

source "$(dirname "$0")/lib/errors.bash"

# ---- a tiny diff model with grouped kv heads: 4 steps, checkpoints at 2 and 4
"$BIN" prepare --input /usr/share/common-licenses --output "$WORK/shards" >/dev/null 2>"$WORK/log" \
  || fail "prepare failed: $(cat "$WORK/log")"
cat >"$WORK/tiny.yaml" <<EOF
model: {vocab_size: 320, d_model: 64, n_layers: 3, n_heads: 2, n_kv_heads: 1, ffn_hidden: 176}
train: {seq_len: 64, global_batch_size: 8, max_steps: 4, lr: 3.0e-3, warmup_steps: 1, log_every: 1, run_dir: $WORK/run}
data: {datasets: [{path: $WORK/shards}]}
parallel: {micro_batch_size: 4}
checkpoint: {dir: $WORK/ckpt, every_steps: 2, keep_last: 3}
EOF
"$BIN" train "$WORK/tiny.yaml" >/dev/null 2>"$WORK/log" || fail "train failed: $(cat "$WORK/log")"
[ -f "$WORK/ckpt/step_00000002/manifest.yaml" ] && [ -f "$WORK/ckpt/step_00000004/manifest.yaml" ] || fail "no checkpoints written"
ok

# ---- inspect: the root resolves to the newest checkpoint
"$BIN" inspect "$WORK/ckpt" >"$WORK/inspect" 2>"$WORK/err" || fail "inspect exited non-zero: $(cat "$WORK/err")"
grep -q "^checkpoint: $WORK/ckpt/step_00000004$" "$WORK/inspect" \
  || fail "inspect of the root did not pick step_00000004: $(head -1 "$WORK/inspect")"
grep -q '^step: 4 of 4  tokens seen: 2048  data state: 32 samples consumed' "$WORK/inspect" \
  || fail "step line: $(grep '^step' "$WORK/inspect")"
grep -q '^layout: tp 1  pp 1  dp 1  zero 0' "$WORK/inspect" || fail "layout line: $(grep '^layout' "$WORK/inspect")"
grep -q '^model: attention diff  vocab 320  d_model 64  layers 3  heads 2  kv heads 1  head_dim 16  ffn 176' \
  "$WORK/inspect" || fail "model line: $(grep '^model' "$WORK/inspect")"
grep -q '^train: seq_len 64  batch 8' "$WORK/inspect" || fail "train line: $(grep '^train' "$WORK/inspect")"
[ "$(grep -c '^  layer [0-9]*: lambda_init ' "$WORK/inspect")" -eq 3 ] \
  || fail "expected 3 lambda lines: $(cat "$WORK/inspect")"
grep -q '^  layers.2.attn.lambda_k2 *\[16\] *f32 .* m,v$' "$WORK/inspect" || fail "no tensor row for lambda_k2"
grep -q '^adam moments: 45 of 45 tensors$' "$WORK/inspect" || fail "moments line: $(grep '^adam' "$WORK/inspect")"
grep -q '^checksums: 1 files OK$' "$WORK/inspect" || fail "no checksum line: $(tail -1 "$WORK/inspect")"
ok
"$BIN" inspect "$WORK/ckpt/step_00000002" | grep -q '^step: 2 of 4' || fail "inspect of step_00000002 does not show step 2"
ok

# ---- export and validate with the independent reader
OUT="$WORK/model.safetensors"
"$BIN" export "$WORK/ckpt" --format safetensors "$OUT" >"$WORK/out" 2>"$WORK/err" \
  || fail "export exited non-zero: $(cat "$WORK/err")"
grep -q "exported $WORK/ckpt/step_00000004 to $OUT" "$WORK/out" || fail "export summary: $(cat "$WORK/out")"
[ -f "$OUT" ] && [ -z "$(find "$WORK" -maxdepth 1 -name 'model.safetensors.tmp*')" ] \
  || fail "export left no file or a .tmp behind"
python3 "$SRC/tests/tools/read_safetensors.py" "$OUT" >"$WORK/read" 2>"$WORK/err" \
  || fail "reader rejected the file: $(cat "$WORK/err")"
grep -q 'valid safetensors, 45 tensors, .* data 8-byte aligned: yes' "$WORK/read" \
  || fail "reader: $(head -1 "$WORK/read")"
grep -q '^metadata step: 4$' "$WORK/read" && grep -q '^metadata format: pt$' "$WORK/read" \
  && grep -q '^metadata difftron_config: {.*"attention": "diff"' "$WORK/read" \
  || fail "metadata: $(grep metadata "$WORK/read")"
grep -q '^tensor lm_head.weight F32 \[320, 64\]$' "$WORK/read" || fail "no lm_head.weight [320, 64]"
[ "$(python3 "$SRC/tests/tools/read_safetensors.py" "$OUT" --tensor layers.0.attn.lambda_q1 | wc -l)" -eq 16 ] \
  || fail "--tensor does not print 16 values of lambda_q1"
ok

# ---- inspect's λ and norms against the exported tensors, computed in float64
python3 - "$SRC/tests/tools" "$OUT" "$WORK/inspect" <<'EOF' || fail "inspect disagrees with the exported tensors"
import math, re, sys
sys.path.insert(0, sys.argv[1])
from read_safetensors import read
meta, t = read(sys.argv[2])
text = open(sys.argv[3]).read()
lines = re.findall(r"^  layer (\d+): lambda_init (\S+)  lambda (\S+)$", text, re.M)
assert len(lines) == 3, lines
for l, init_s, lam_s in lines:
    l = int(l)
    v = {k: t[f"layers.{l}.attn.lambda_{k}"][1] for k in ("q1", "k1", "q2", "k2")}
    d1 = sum(float(a) * float(b) for a, b in zip(v["q1"], v["k1"]))
    d2 = sum(float(a) * float(b) for a, b in zip(v["q2"], v["k2"]))
    init = 0.8 - 0.6 * math.exp(-0.3 * l)
    lam = math.exp(d1) - math.exp(d2) + init
    # printed with 9 decimals: within half a unit of the last digit (+ rounding slack)
    for name, want, got in (("lambda_init", init, init_s), ("lambda", lam, lam_s)):
        if abs(float(got) - want) > 0.5e-9 + 1e-12:
            sys.exit(f"layer {l}: {name} printed {got}, computed {want!r}")
rows = re.findall(r"^  (\S+) +\[[0-9, ]*\] +f32 +(\S+) +(m,v|-)$", text, re.M)
assert sorted(n for n, _, _ in rows) == sorted(t), "tensor table names differ from the exported names"
for name, norm_s, _ in rows:
    norm = math.sqrt(sum(float(x) * float(x) for x in t[name][1]))
    # printed as %.6e: 7 significant digits
    if abs(float(norm_s) - norm) > 0.5e-6 * norm + 1e-30:
        sys.exit(f"{name}: l2_norm printed {norm_s}, computed {norm!r}")
EOF
ok

# ---- a standard model with tied embeddings: no λ, no lm_head.weight
"$BIN" train "$WORK/tiny.yaml" --set model.attention=standard --set model.tie_embeddings=true \
  --set train.max_steps=2 --set checkpoint.dir="$WORK/tied" --set train.run_dir="$WORK/run_tied" \
  >/dev/null 2>"$WORK/log" \
  || fail "train (tied) failed: $(cat "$WORK/log")"
"$BIN" inspect "$WORK/tied" >"$WORK/inspect_tied" || fail "inspect (tied) exited non-zero"
grep -q '^lambda: none (standard attention)$' "$WORK/inspect_tied" || fail "tied inspect: no 'lambda: none' line"
grep -q 'tie_embeddings true' "$WORK/inspect_tied" || fail "tied inspect does not show tie_embeddings true"
"$BIN" export "$WORK/tied" --format safetensors "$WORK/tied.safetensors" >/dev/null || fail "export (tied) failed"
python3 "$SRC/tests/tools/read_safetensors.py" "$WORK/tied.safetensors" >"$WORK/read" || fail "reader rejected the tied file"
grep -q '^tensor embed.weight F32' "$WORK/read" && ! grep -q 'lm_head\|lambda\|subln' "$WORK/read" \
  || fail "tied export: expected embed.weight and no lm_head, lambda or subln: $(cat "$WORK/read")"
ok

# ---- bad input: one line, non-zero exit
cp -r "$WORK/ckpt/step_00000004" "$WORK/corrupt"
python3 - "$WORK/corrupt/shard_0.h5" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096)
    b = f.read(1)
    f.seek(4096)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
expect_one_line_error "$BIN" inspect "$WORK/corrupt"
grep -q "$WORK/corrupt/shard_0.h5: checksum mismatch" "$WORK/err" || fail "corrupt shard not named: $(cat "$WORK/err")"
[ ! -s "$WORK/out" ] || fail "inspect of a corrupt checkpoint printed a report: $(head -3 "$WORK/out")"
ok
expect_one_line_error "$BIN" export "$WORK/corrupt" --format safetensors "$WORK/corrupt.safetensors"
grep -q 'shard_0.h5' "$WORK/err" && [ ! -e "$WORK/corrupt.safetensors" ] \
  && [ -z "$(find "$WORK" -maxdepth 1 -name 'corrupt.safetensors.tmp*')" ] \
  || fail "export of a corrupt checkpoint: $(cat "$WORK/err")"
ok
expect_one_line_error "$BIN" export "$WORK/ckpt" --format bogus "$WORK/x.bin"
grep -q "bogus.*safetensors" "$WORK/err" \
  || fail "--format bogus does not name the supported formats: $(cat "$WORK/err")"
[ ! -e "$WORK/x.bin" ] || fail "--format bogus wrote a file"
ok
expect_one_line_error "$BIN" inspect "$WORK/shards"
grep -q "$WORK/shards: no manifest.yaml" "$WORK/err" || fail "non-checkpoint not named: $(cat "$WORK/err")"
ok
expect_one_line_error "$BIN" inspect "$WORK/no_such_dir"
expect_one_line_error "$BIN" inspect
expect_one_line_error "$BIN" export "$WORK/ckpt" --format safetensors "$WORK/no_such_dir/m.safetensors"
ok

# ---- --help
"$BIN" inspect --help | grep -q 'usage: difftron inspect PATH' || fail "inspect --help"
"$BIN" export --help | grep -q 'usage: difftron export PATH --format safetensors OUT' || fail "export --help"
"$BIN" --help | grep -q '  inspect PATH' || fail "difftron --help does not list inspect"
ok

echo "$passed passed, 0 failed"
