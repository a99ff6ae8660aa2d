#!/usr/bin/env bash
# DIFF Transformer vs DIFF V2 vs Transformer at matched size, on the CPU:
# trains configs/compare-diff.yaml, configs/compare-diff-v2.yaml and
# configs/compare-standard.yaml (identical but for the attention and what
# keeps the non-embedding parameter counts equal) on the quickstart corpus,
# runs every evaluation of `difftron eval` on each final checkpoint, and
# writes a side-by-side report (Markdown + PNG plots) with `difftron report`.
# About 3-5 minutes of training per model on two free cores, plus a few
# minutes of evaluation. KINDS="diff standard" compares two of them.
#
# A rerun only redoes what is missing: a run whose final checkpoint exists is
# not retrained (an interrupted one resumes from its newest checkpoint), and an
# evaluation whose outputs are newer than that checkpoint is not rerun.
#
# Held-out data: the linux-doc-6.1 .rst files that come right after the
# quickstart corpus's (same order), HELDOUT_BYTES of text, prepared into
# data/corpus/compare-heldout. Without linux-doc the evaluation falls back to
# the training corpus (seed-0 windows, which may overlap training windows);
# the report then says so.
#
# Environment:
#   STEPS           optimizer steps per model (default: the configs' 600 = 2.46M tokens)
#   OUT             report directory (default runs/compare/report)
#   HELDOUT_BYTES   held-out text (default 400000)
#   PPL_TOKENS      tokens for perplexity (default 262144)
#   EVAL_TOKENS     tokens for activation statistics and logit quantization (default 16384)
#   NEEDLE_LENGTHS  needle context lengths (default 192,256; a byte-level needle and
#                   question take ~110 tokens, so 128 holds only one needle)
#   NEEDLE_DEPTHS   depths of the queried needles (default 0,0.5,1)
#   NEEDLES, QUERIES, TRIALS   needles per context, asked about, draws per cell (default 2, 2, 4)
#   QUANT_BITS      attention-logit bit widths (default 16,8,6,4)
#   QUANT_RETRIEVAL=1  also measure needle retrieval at each bit width (reruns the needle
#                   grid once per width: several times slower)
#   KINDS           the models to compare (default "diff diff-v2 standard")
#   FORCE=1         retrain and re-evaluate every model from scratch
#   DIFFTRON        the binary (default build/difftron)
#   SKIP_BUILD=1    use $DIFFTRON as it is (default: setup if never built, then an
#                   incremental build, a no-op when up to date)
set -euo pipefail
cd "$(dirname "$0")/.."
DIFFTRON=${DIFFTRON:-build/difftron}
OUT=${OUT:-runs/compare/report}
HELDOUT_BYTES=${HELDOUT_BYTES:-400000}
PPL_TOKENS=${PPL_TOKENS:-262144}
EVAL_TOKENS=${EVAL_TOKENS:-16384}
NEEDLE_LENGTHS=${NEEDLE_LENGTHS:-192,256}
NEEDLE_DEPTHS=${NEEDLE_DEPTHS:-0,0.5,1}
NEEDLES=${NEEDLES:-2}
QUERIES=${QUERIES:-2}
TRIALS=${TRIALS:-4}
QUANT_BITS=${QUANT_BITS:-16,8,6,4}
read -r -a KIND_LIST <<<"${KINDS:-diff diff-v2 standard}"
declare -A LABEL=([diff]=DIFF [diff-v2]="DIFF-V2" [standard]=Transformer)
for kind in "${KIND_LIST[@]}"; do
  [ -n "${LABEL[$kind]:-}" ] || { echo "compare: KINDS: unknown model '$kind' (expected diff, diff-v2, standard)" >&2; exit 2; }
done
say() { echo "compare: $*"; }

# ---- build and data -------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  [ -f build/CMakeCache.txt ] || bash launch/setup.sh
  bash launch/build.sh
fi
[ -x "$DIFFTRON" ] || { echo "compare: $DIFFTRON not found; run launch/build.sh" >&2; exit 1; }
[ -f data/corpus/quickstart/dataset.yaml ] || bash launch/quickstart_corpus.sh

# The quickstart corpus took the first $taken files of this list (quickstart_corpus.sh).
DOCS=/usr/share/doc/linux-doc-6.1/Documentation
HELD=data/corpus/compare-heldout
note=""
taken=$(find data/corpus/raw -maxdepth 1 -type f -name '*.rst' 2>/dev/null | wc -l)
if [ -f "$HELD/dataset.yaml" ]; then
  note=$(cat "$HELD.note" 2>/dev/null || true)
elif [ -d "$DOCS" ] && [ "$taken" -gt 0 ] && [ "$taken" -eq "$(find data/corpus/raw -maxdepth 1 -type f | wc -l)" ]; then
  rm -rf "$HELD.raw" && mkdir -p "$HELD.raw"
  total=0 index=0 count=0
  while IFS= read -r f; do
    index=$((index + 1))
    [ "$index" -gt "$taken" ] || continue
    rel=${f#"$DOCS"/}
    rel=${rel%.gz}
    out="$HELD.raw/$(printf '%05d' "$count")_${rel//\//__}"
    case "$f" in *.gz) gzip -dc "$f" >"$out" ;; *) cp "$f" "$out" ;; esac
    total=$((total + $(stat -c %s "$out")))
    count=$((count + 1))
    [ "$total" -lt "$HELDOUT_BYTES" ] || break
  done < <(find "$DOCS" \( -name '*.rst' -o -name '*.rst.gz' \) -not -path "$DOCS/translations/*" \
             \( -type f -o -type l \) | LC_ALL=C sort)
  [ "$count" -gt 0 ] || { echo "compare: no linux-doc files left after the first $taken for held-out data" >&2; exit 1; }
  "$DIFFTRON" prepare --input "$HELD.raw" --output "$HELD" --tokenizer byte --force >/dev/null
  note="Held-out data: the next $count linux-doc-6.1 .rst documents after the $taken of the training corpus ($total bytes), never seen in training."
  echo "$note" >"$HELD.note"
fi
if [ -f "$HELD/dataset.yaml" ]; then
  EVAL_DATA=$HELD
else
  EVAL_DATA=data/corpus/quickstart
  note="No held-out documents (linux-doc-6.1 missing): evaluated on the training corpus; perplexity windows (seed 0) may overlap training windows, so it measures fit, not generalization."
fi
say "evaluation data: $EVAL_DATA"

# ---- train ----------------------------------------------------------------------
steps_of() { sed -n 's/^  max_steps: *\([0-9]*\).*/\1/p' "$1"; }
declare -A CKPT
for kind in "${KIND_LIST[@]}"; do
  cfg=configs/compare-$kind.yaml
  run=runs/compare/$kind
  steps=${STEPS:-$(steps_of "$cfg")}
  every=$((steps % 100 == 0 ? 100 : steps))  # the last step must be a checkpoint step
  CKPT[$kind]=$run/checkpoints/$(printf 'step_%08d' "$steps")
  [ "${FORCE:-0}" != 1 ] || rm -rf "$run"
  if [ -f "${CKPT[$kind]}/manifest.yaml" ]; then
    say "$kind: ${CKPT[$kind]} exists, not retraining"
    continue
  fi
  # Nothing to resume from: start clean, so metrics.jsonl holds this run only.
  ls -d "$run"/checkpoints/step_* >/dev/null 2>&1 || rm -rf "$run"
  say "$kind: training $steps steps ($cfg), log in $run/train.log"
  mkdir -p "$run"
  "$DIFFTRON" train "$cfg" --set train.max_steps="$steps" --set checkpoint.every_steps="$every" --resume auto \
    >>"$run/train.log" 2>&1 || { tail -3 "$run/train.log" >&2; echo "compare: training $kind failed (log: $run/train.log)" >&2; exit 1; }
  [ -f "${CKPT[$kind]}/manifest.yaml" ] ||
    { echo "compare: ${CKPT[$kind]} was not written (another STEPS earlier? rerun with FORCE=1)" >&2; exit 1; }
  tail -1 "$run/train.log"
done

# ---- evaluate -------------------------------------------------------------------
for kind in "${KIND_LIST[@]}"; do
  ev=runs/compare/$kind/eval
  manifest=${CKPT[$kind]}/manifest.yaml
  mkdir -p "$ev"
  if [ "${FORCE:-0}" = 1 ] || [ ! "$ev/eval.json" -nt "$manifest" ]; then
    say "$kind: perplexity on $EVAL_DATA"
    "$DIFFTRON" eval "${CKPT[$kind]}" --data "$EVAL_DATA" --max-tokens "$PPL_TOKENS" --out "$ev" >"$ev/perplexity.log" 2>&1 ||
      { cat "$ev/perplexity.log" >&2; exit 1; }
  fi
  if [ "${FORCE:-0}" = 1 ] || [ ! "$ev/needle.csv" -nt "$manifest" ]; then
    say "$kind: needle retrieval and attention allocation"
    "$DIFFTRON" eval "${CKPT[$kind]}" --data "$EVAL_DATA" --needle --lengths "$NEEDLE_LENGTHS" --depths "$NEEDLE_DEPTHS" \
      --needles "$NEEDLES" --queries "$QUERIES" --trials "$TRIALS" --out "$ev" >"$ev/needle.log" 2>&1 ||
      { cat "$ev/needle.log" >&2; exit 1; }
  fi
  if [ "${FORCE:-0}" = 1 ] || [ ! "$ev/quantization.csv" -nt "$manifest" ]; then
    say "$kind: activation statistics and attention-logit quantization"
    needle=()
    [ "${QUANT_RETRIEVAL:-0}" != 1 ] || needle=(--needle --lengths "$NEEDLE_LENGTHS" --depths "$NEEDLE_DEPTHS"
      --needles "$NEEDLES" --queries "$QUERIES" --trials "$TRIALS")
    "$DIFFTRON" eval "${CKPT[$kind]}" --data "$EVAL_DATA" --activation-stats --tokens "$EVAL_TOKENS" \
      --quantize-logits "$QUANT_BITS" "${needle[@]}" --out "$ev/quantization" >"$ev/quantization.log" 2>&1 ||
      { cat "$ev/quantization.log" >&2; exit 1; }
    # Only the statistics and the sweep: the needle files of this run stay those of the pass above.
    mv "$ev/quantization"/{activation_stats.csv,quantization.csv,quantization.png} "$ev/"
    [ ! -f "$ev/quantization/quantization_retrieval.png" ] || mv "$ev/quantization/quantization_retrieval.png" "$ev/"
    rm -rf "$ev/quantization"
  fi
done

# ---- report ---------------------------------------------------------------------
args=(--out "$OUT" --title "DIFF Transformer, DIFF V2 and Transformer at equal size (CPU, byte-level, quickstart corpus)")
for kind in "${KIND_LIST[@]}"; do
  args+=(--run "${LABEL[$kind]}=runs/compare/$kind" --eval "${LABEL[$kind]}=runs/compare/$kind/eval")
done
[ -z "$note" ] || args+=(--note "$note")
args+=(--note "Needle retrieval: $NEEDLES needles, $QUERIES queried, lengths $NEEDLE_LENGTHS tokens, depths $NEEDLE_DEPTHS, $TRIALS draws per cell ($((TRIALS * QUERIES)) answers each). Activation statistics and quantization: $EVAL_TOKENS tokens; perplexity: up to $PPL_TOKENS tokens.")
"$DIFFTRON" report "${args[@]}"
say "report: $OUT/report.md"
