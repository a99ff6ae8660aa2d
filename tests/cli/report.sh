#!/usr/bin/env bash
# difftron report as a user runs it: usage: bash report.sh <difftron-binary> <source-dir>
# Writes two tiny synthetic runs (a DIFF model and a baseline: config.yaml,
# metrics.jsonl and an evaluation directory as difftron train / eval write
# them, no training), runs `difftron report` on them, and checks report.md,
# the PNGs and the one-line errors for missing or mismatched inputs. Fast.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_report_XXXXXX)
trap 'rm -rf "$WORK"' EXIT

passed=0
fail() { echo "FAIL: $*" >&2; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok: $*"; }
expect_one_line_error() {  # expect_one_line_error PATTERN command...
  local pattern=$1 rc=0
  shift
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "'$*' succeeded; expected an error"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "'$*' printed $(wc -l <"$WORK/err") lines on stderr, expected one: $(cat "$WORK/err")"
  grep -q -- "$pattern" "$WORK/err" || fail "'$*': error '$(cat "$WORK/err")' does not mention '$pattern'"
}
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# make_run KIND FINAL_LOSS NEEDLE_ACC LOGIT_TOP1 LOSS_AT_4_BITS
make_run() {
  local kind=$1 loss=$2 acc=$3 top1=$4 q4=$5 run=$WORK/$1 map=softmax lam=null
  [ "$kind" = diff ] && map=diff lam=0.6
  mkdir -p "$run/eval"
  cat >"$run/config.yaml" <<YAML
model: {vocab_size: 320, d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 2, ffn_hidden: 176, attention: $kind}
train: {seq_len: 128, global_batch_size: 8, max_steps: 100, run_dir: $run}
data: {datasets: [{path: $WORK/corpus, weight: 1.0}]}
YAML
  for s in 10 20 30 40 50 60 70 80 90 100; do
    awk -v s=$s -v f="$loss" -v lam=$lam 'BEGIN { printf "{\"step\": %d, \"loss\": %.6f, \"lr\": 1e-3, \"grad_norm\": 0.5, \"mean_lambda\": %s, \"tokens_per_s\": 900.0, \"mfu\": 0.05, \"tokens_seen\": %d, \"step_s\": 1.1}\n", s, f + 3.0 / s, lam, s * 1024 }'
  done >"$run/metrics.jsonl"
  cat >"$run/eval/eval.json" <<JSON
{
  "checkpoint": "$run/checkpoints/step_100",
  "step": 100,
  "seq_len": 128,
  "batch": 8,
  "rope_theta": 10000,
  "windows": 16,
  "tokens": 2048,
  "mean_nll": $loss,
  "perplexity": $(awk -v l="$loss" 'BEGIN { printf "%.6f", exp(l) }'),
  "seconds": 1.5,
  "data": [
    {"path": "$WORK/heldout", "windows_available": 40, "windows": 16, "mean_nll": $loss}
  ]
}
JSON
  printf 'depth,192,256\n0,%s,0.5\n0.5,1,%s\n1,0.25,0\n' "$acc" "$acc" >"$run/eval/needle.csv"
  printf 'layer,map,answer_span,noise,question\n0,%s,0.1,0.6,0.3\n1,%s,0.3,0.4,0.3\nmean,%s,0.2,0.5,0.3\n' \
    $map $map $map >"$run/eval/attention_allocation.csv"
  printf 'layer,logit_top1,logit_median,hidden_top1,hidden_median,logit_count,hidden_count\n0,4,0.5,12,0.9,10,10\n1,%s,0.6,30,1.1,10,10\nall,%s,0.55,30,1,20,20\n' \
    "$top1" "$top1" >"$run/eval/activation_stats.csv"
  printf 'bits,loss,delta_loss,retrieval_accuracy\nfp32,%s,0,0.5\n16,%s,0,0.5\n8,%s,1e-4,0.5\n6,%s,0.002,0.45\n4,%s,%s,0.2\n' \
    "$loss" "$loss" "$loss" "$loss" "$q4" "$(awk -v a="$q4" -v b="$loss" 'BEGIN { print a - b }')" >"$run/eval/quantization.csv"
}
make_run diff 1.9 0.75 6.5 1.95
make_run standard 2.0 0.5 11 2.4
"$BIN" report --help >/dev/null || fail "--help failed"
ok "--help"

ARGS=(--run DIFF="$WORK/diff" --eval DIFF="$WORK/diff/eval" --run Transformer="$WORK/standard" --eval Transformer="$WORK/standard/eval")
expect_one_line_error "needle_heatmap.png: missing" "$BIN" report "${ARGS[@]}" --out "$WORK/x"
ok "a missing needle heatmap is a one-line error naming it"
# The report only copies eval's heatmaps: a PNG signature stands in for them.
printf '\x89PNG\r\n\x1a\nDIFF' >"$WORK/diff/eval/needle_heatmap.png"
printf '\x89PNG\r\n\x1a\nstandard' >"$WORK/standard/eval/needle_heatmap.png"

OUT=$WORK/report
"$BIN" report "${ARGS[@]}" --out "$OUT" --title "Synthetic comparison" --note "Held-out data: synthetic." \
  >"$WORK/report.log" 2>"$WORK/report.err" || fail "report failed: $(cat "$WORK/report.err")"
grep -q "^report: 2 runs; wrote $OUT/report.md, " "$WORK/report.log" || fail "summary line: $(cat "$WORK/report.log")"
for f in loss_curves.png loss_curves_tail.png quantization.png quantization_retrieval.png needle_heatmap_diff.png \
         needle_heatmap_transformer.png; do
  is_png "$OUT/$f" || fail "$f is not a PNG"
done
cmp -s "$OUT/needle_heatmap_diff.png" "$WORK/diff/eval/needle_heatmap.png" || fail "the DIFF heatmap is not eval's"
ok "report.md and six PNGs (loss curves, quantization loss and retrieval, both heatmaps)"

MD=$OUT/report.md
head -1 "$MD" | grep -qx "# Synthetic comparison" || fail "title: $(head -1 "$MD")"
for s in "## Scale" "## The paper's headline claims" "## Training loss" "## Multi-needle retrieval" \
         "## Attention allocation" "## Activation outliers" "## Attention-logit quantization" \
         "Small-scale results need not match the paper's" "- Held-out data: synthetic." \
         "![DIFF](needle_heatmap_diff.png) | ![Transformer](needle_heatmap_transformer.png) |"; do
  grep -qF -- "$s" "$MD" || fail "report.md lacks '$s'"
done
ok "every section, the scale caveat and the side-by-side heatmaps"

# Numbers carried from the inputs. d = 64 / 4 = 16; DIFF adds 2 layers x (4d + 2d) = 192 parameters;
# the train loss is the mean of 1.9 + 3/step over the ten logged steps.
grep -qF "| parameters | 141,824 | 141,632 |" "$MD" || fail "parameter row: $(grep parameters "$MD")"
grep -qF "| of which λ (vectors and g_sub, or lambda_proj) | 192 | 0 |" "$MD" || fail "λ row"
grep -qF "| tokens seen | 102,400 | 102,400 |" "$MD" || fail "tokens row: $(grep 'tokens seen' "$MD")"
grep -qF "| DIFF | 1.9879 | 1.9000 | 6.686 | -0.1000 | 2,048 |" "$MD" || fail "final loss row: $(grep '^| DIFF | 1' "$MD")"
grep -qF "| **mean** |  | **0.542** | **0.458** |" "$MD" || fail "needle means: $(grep mean "$MD")"
grep -qF "| Transformer | 11.000 | 0.550 | 20.0 |" "$MD" || fail "outlier row: $(grep '^| Transformer | 11' "$MD")"
grep -qF "| 4 | 1.9500 | +0.0500 | 0.200 | 2.4000 | +0.4000 | 0.200 |" "$MD" || fail "4-bit row: $(grep '^| 4 |' "$MD")"
# Loss, retrieval and 4-bit robustness favour DIFF; allocations are equal and only the logits' top-1 differs.
[ "$(grep -c "| same as the paper |$" "$MD")" -eq 3 ] && [ "$(grep -c "| tie / mixed |$" "$MD")" -eq 2 ] ||
  fail "claims: $(grep -A7 'these runs' "$MD")"
ok "parameters, tokens, losses, retrieval, outliers, quantization and the claims table"

# ---- one-line errors ------------------------------------------------------------------
expect_one_line_error "missing --run" "$BIN" report --out "$WORK/x"
expect_one_line_error "missing --out" "$BIN" report --run DIFF="$WORK/diff" --eval DIFF="$WORK/diff/eval"
expect_one_line_error "expected NAME=DIR" "$BIN" report --run "$WORK/diff" --out "$WORK/x"
expect_one_line_error "--run Transformer has no --eval Transformer=EVAL_DIR" \
  "$BIN" report --run DIFF="$WORK/diff" --eval DIFF="$WORK/diff/eval" --run Transformer="$WORK/standard" --out "$WORK/x"
expect_one_line_error "--eval Other names no --run" "$BIN" report "${ARGS[@]}" --eval Other="$WORK/diff/eval" --out "$WORK/x"
expect_one_line_error "unexpected argument '--bogus'" "$BIN" report "${ARGS[@]}" --bogus --out "$WORK/x"
ok "bad command lines"
mv "$WORK/standard/eval/quantization.csv" "$WORK/q.csv"
expect_one_line_error "$WORK/standard/eval/quantization.csv: missing (written by difftron eval" \
  "$BIN" report "${ARGS[@]}" --out "$WORK/x"
mv "$WORK/q.csv" "$WORK/standard/eval/quantization.csv"
printf 'depth,192,256\n0,1\n' >"$WORK/diff/eval/needle.csv"
expect_one_line_error "$WORK/diff/eval/needle.csv:2: 2 fields, expected 3" "$BIN" report "${ARGS[@]}" --out "$WORK/x"
sed -i 's/"mean_nll": 2.0,/"mean_nll": "x",/' "$WORK/standard/eval/eval.json"
printf 'depth,192\n0,1\n' >"$WORK/diff/eval/needle.csv"
expect_one_line_error "$WORK/standard/eval/eval.json: field \"mean_nll\" is '\"x\"', expected a number" \
  "$BIN" report "${ARGS[@]}" --out "$WORK/x"
ok "missing and malformed inputs name the file (and line)"

echo "$passed passed, 0 failed"
