#!/usr/bin/env bash
# difftron eval's analyses as a user runs them: usage: bash eval_analysis.sh <difftron-binary> <source-dir>
# Trains a tiny DIFF model and a tiny baseline 20 steps each, then runs needle
# retrieval (with attention allocation), activation statistics and
# attention-logit quantization at tiny lengths, and checks the tables, the
# CSV shapes, the PNGs and one-line errors.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_eval_analysis_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# ctest runs tests side by side: idle OpenMP threads must not spin against them.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

source "$(dirname "$0")/lib/errors.bash"
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
rows() { tail -n +2 "$1" | wc -l; }                 # data rows of a CSV
fields() { awk -F, '{print NF}' "$1" | sort -u; }   # distinct field counts (one value: a rectangle)

"$BIN" prepare --input /usr/share/common-licenses --output "$WORK/shards" >/dev/null 2>&1 || fail "prepare failed"
for kind in diff standard; do
  cat >"$WORK/$kind.yaml" <<YAML
model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 88, attention: $kind}
train: {seq_len: 48, global_batch_size: 8, max_steps: 20, lr: 3.0e-3, warmup_steps: 5, log_every: 10, run_dir: $WORK/run_$kind}
data: {datasets: [{path: $WORK/shards, weight: 1.0}]}
parallel: {micro_batch_size: 4}
checkpoint: {dir: $WORK/ckpt_$kind, every_steps: 20, keep_last: 1}
YAML
  "$BIN" train "$WORK/$kind.yaml" >"$WORK/train_$kind.log" 2>&1 || fail "train $kind failed: $(tail -3 "$WORK/train_$kind.log")"
done
ok "trained a DIFF model and a baseline 20 steps"

# A plain text haystack (the byte tokenizer reads it as is).
HAY=$WORK/haystack.txt
cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 >"$HAY"

# ---- needle retrieval ------------------------------------------------------------
"$BIN" eval "$WORK/ckpt_diff" --needle --lengths 200,256 --depths 0,0.5,1 --needles 2 --queries 2 --trials 2 \
  --haystack "$HAY" --out "$WORK/needle" >"$WORK/needle.log" 2>"$WORK/needle.err" || fail "needle failed: $(cat "$WORK/needle.err")"
grep -q "needle retrieval accuracy (N = 2 needles, R = 2 queried; 4 answers per cell" "$WORK/needle.log" ||
  fail "no accuracy table: $(cat "$WORK/needle.log")"
grep -Eq "^ +50%( +[01]\.[0-9]{2}){2}$" "$WORK/needle.log" || fail "no 50% row with two accuracies: $(cat "$WORK/needle.log")"
CSV=$WORK/needle/needle.csv
[ "$(head -1 "$CSV")" = "depth,200,256" ] || fail "needle.csv header: $(head -1 "$CSV")"
[ "$(rows "$CSV")" -eq 3 ] && [ "$(fields "$CSV")" = "3" ] || fail "needle.csv is not 3 depths x 2 lengths: $(cat "$CSV")"
awk -F, 'NR > 1 { for (i = 2; i <= NF; ++i) if ($i < 0 || $i > 1) exit 1 }' "$CSV" || fail "accuracy outside [0, 1]: $(cat "$CSV")"
is_png "$WORK/needle/needle_heatmap.png" || fail "no needle_heatmap.png"
ok "needle.csv (3 depths x 2 lengths) and needle_heatmap.png"

ALLOC=$WORK/needle/attention_allocation.csv
[ "$(head -1 "$ALLOC")" = "layer,map,answer_span,noise,question" ] || fail "allocation header: $(head -1 "$ALLOC")"
# 2 layers + the mean, each for the maps diff, a1, a2.
[ "$(rows "$ALLOC")" -eq 9 ] && [ "$(fields "$ALLOC")" = "5" ] || fail "allocation shape: $(cat "$ALLOC")"
[ "$(grep -c '^mean,' "$ALLOC")" -eq 3 ] || fail "allocation has no mean rows: $(cat "$ALLOC")"
# A softmax map's shares add up to 1.
awk -F, '$2 == "a1" || $2 == "a2" { s = $3 + $4 + $5; if (s < 0.9999 || s > 1.0001) exit 1 }' "$ALLOC" ||
  fail "a softmax map's shares do not add up to 1: $(cat "$ALLOC")"
ok "attention_allocation.csv (diff, a1, a2 per layer and mean)"

"$BIN" eval "$WORK/ckpt_standard" --data "$WORK/shards" --needle --lengths 180 --depths 0.25 --out "$WORK/needle_std" \
  >"$WORK/needle_std.log" 2>&1 || fail "baseline needle failed: $(cat "$WORK/needle_std.log")"
[ "$(head -1 "$WORK/needle_std/needle.csv")" = "depth,180" ] && [ "$(rows "$WORK/needle_std/needle.csv")" -eq 1 ] ||
  fail "baseline needle.csv: $(cat "$WORK/needle_std/needle.csv")"
[ "$(cut -d, -f2 "$WORK/needle_std/attention_allocation.csv" | tail -n +2 | sort -u)" = "softmax" ] ||
  fail "baseline allocation maps: $(cat "$WORK/needle_std/attention_allocation.csv")"
[ "$(rows "$WORK/needle_std/attention_allocation.csv")" -eq 3 ] || fail "baseline allocation rows"
ok "baseline: haystack from --data shards, one softmax map"

# ---- activation statistics ---------------------------------------------------------
"$BIN" eval "$WORK/ckpt_diff" --data "$WORK/shards" --activation-stats --tokens 480 --out "$WORK/act" \
  >"$WORK/act.log" 2>"$WORK/act.err" || fail "activation stats failed: $(cat "$WORK/act.err")"
grep -q "activation statistics over 480 tokens (10 windows)" "$WORK/act.log" || fail "act summary: $(cat "$WORK/act.log")"
grep -Eq "^ +all( +[0-9.]+){4}$" "$WORK/act.log" || fail "no 'all' row in the table: $(cat "$WORK/act.log")"
ACT=$WORK/act/activation_stats.csv
[ "$(head -1 "$ACT")" = "layer,logit_top1,logit_median,hidden_top1,hidden_median,logit_count,hidden_count" ] ||
  fail "activation_stats.csv header: $(head -1 "$ACT")"
[ "$(rows "$ACT")" -eq 3 ] && [ "$(fields "$ACT")" = "7" ] && [ "$(tail -1 "$ACT" | cut -d, -f1)" = "all" ] ||
  fail "activation_stats.csv shape: $(cat "$ACT")"
# top-1 >= median > 0; counts: 10 windows x (4 maps x 48·49/2 logits, 48 x 32 hidden) per layer.
awk -F, 'NR > 1 && !($2 >= $3 && $3 > 0 && $4 >= $5 && $5 > 0) { exit 1 }' "$ACT" || fail "top-1 < median: $(cat "$ACT")"
[ "$(sed -n 2p "$ACT" | cut -d, -f6,7)" = "47040,15360" ] || fail "layer 0 counts: $(sed -n 2p "$ACT")"
ok "activation_stats.csv (2 layers + all) and the printed table"

# ---- attention-logit quantization, with retrieval ---------------------------------------
"$BIN" eval "$WORK/ckpt_diff" --data "$WORK/shards" --quantize-logits 16,8,6,4 --tokens 240 --needle --lengths 200 \
  --depths 0,1 --out "$WORK/quant" >"$WORK/quant.log" 2>"$WORK/quant.err" || fail "quantization failed: $(cat "$WORK/quant.err")"
Q=$WORK/quant/quantization.csv
[ "$(head -1 "$Q")" = "bits,loss,delta_loss,retrieval_accuracy" ] || fail "quantization.csv header: $(head -1 "$Q")"
[ "$(cut -d, -f1 "$Q" | tail -n +2 | tr '\n' ' ')" = "fp32 16 8 6 4 " ] || fail "quantization.csv rows: $(cat "$Q")"
[ "$(fields "$Q")" = "4" ] && ! grep -q ',$' "$Q" || fail "quantization.csv lacks accuracies: $(cat "$Q")"
# 16 bits changes the loss only by rounding.
awk -F, '$1 == "16" { d = $3 < 0 ? -$3 : $3; if (d > 1e-3 * $2) exit 1 }' "$Q" || fail "16-bit loss moved: $(cat "$Q")"
is_png "$WORK/quant/quantization.png" && is_png "$WORK/quant/quantization_retrieval.png" || fail "quantization PNGs"
grep -q "^ *fp32 " "$WORK/quant.log" || fail "no quantization table: $(cat "$WORK/quant.log")"
ok "quantization.csv (fp32 + 4 widths, with retrieval accuracy) and its plots"

"$BIN" eval "$WORK/ckpt_diff" --data "$WORK/shards" --quantize-logits 8 --tokens 96 --out "$WORK/quant2" >/dev/null 2>&1 ||
  fail "quantization without --needle failed"
[ "$(sed -n 3p "$WORK/quant2/quantization.csv" | cut -d, -f1,4)" = "8," ] || fail "accuracy column not empty without --needle"
[ ! -e "$WORK/quant2/eval.json" ] && [ ! -e "$WORK/quant2/quantization_retrieval.png" ] || fail "unexpected outputs"
ok "quantization alone: empty accuracy column, no perplexity pass"

# ---- errors ------------------------------------------------------------------------
expect_one_line_error "$BIN" eval "$WORK/ckpt_diff" --activation-stats --out "$WORK/e"
grep -q -- "--data" "$WORK/err" || fail "error does not ask for --data: $(cat "$WORK/err")"
expect_one_line_error "$BIN" eval "$WORK/ckpt_diff" --needle --needles 2 --queries 3 --haystack "$HAY" --out "$WORK/e"
expect_one_line_error "$BIN" eval "$WORK/ckpt_diff" --needle --lengths 30 --haystack "$HAY" --out "$WORK/e"
grep -q "context length 30" "$WORK/err" || fail "error does not name the length: $(cat "$WORK/err")"
expect_one_line_error "$BIN" eval "$WORK/ckpt_diff" --needle --depths 0,1.5 --haystack "$HAY"
expect_one_line_error "$BIN" eval "$WORK/ckpt_diff" --data "$WORK/shards" --quantize-logits 16,1
expect_one_line_error "$BIN" eval "$WORK/ckpt_diff" --needle --haystack "$WORK/no_such_text.txt" --out "$WORK/e"
grep -q "no_such_text" "$WORK/err" || fail "error does not name the haystack: $(cat "$WORK/err")"
ok "bad analysis options: one line, non-zero exit"

"$BIN" eval --help | grep -q -- "--quantize-logits" || fail "--help does not list the analyses"
ok "--help"

echo "$passed passed, 0 failed"
