#!/usr/bin/env bash
# The summary table of launch/gpu_check.sh, read from its log directory (so it
# can be rerun on the logs of an earlier check): tests passed / failed /
# skipped, bench_cuda's kernel TFLOP/s and step MFU against the datasheet peak
# and the measured GEMM rate, the gpu-check.yaml runs' tokens/s and MFU, the
# per-step CPU-vs-GPU loss difference (also written to loss_compare.tsv), and
# the phases with their seconds. Appends it to LOG_DIR/summary.txt; exits 1 if
# a result fails its criterion.
#
#   launch/gpu_check_summary.sh LOG_DIR [--cpu-only] [--loss-tol X]
set -uo pipefail

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: launch/gpu_check_summary.sh LOG_DIR [--cpu-only] [--loss-tol X]" >&2
  exit 2
fi
LOG=$1
shift
CPU_ONLY=0 LOSS_TOL=0.05
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-only) CPU_ONLY=1 ;;
    --loss-tol) LOSS_TOL=${2:?--loss-tol needs a value}; shift ;;
    *) echo "gpu_check_summary: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
verdict() {  # CONDITION_HOLDS(0/1) -> "ok" or "FAIL"; a line ending in FAIL fails the check
  if [ "$1" = 1 ]; then echo ok; else echo FAIL; fi
}

summary() {
  echo "== difftron gpu_check: $(cat "$LOG/gpu.txt" 2>/dev/null || echo '?') =="

  # ---- tests: one "[ OK | FAILED | SKIPPED ] Suite.Name (N ms)" line per finished test
  if [ -f "$LOG/tests.log" ]; then
    local p f s
    p=$(grep -cE '^\[ +OK \] [^ ]+ \([0-9]+ ms\)$' "$LOG/tests.log")
    f=$(grep -cE '^\[ +FAILED +\] [^ ]+ \([0-9]+ ms\)$' "$LOG/tests.log")
    s=$(grep -cE '^\[ +SKIPPED +\] [^ ]+ \([0-9]+ ms\)$' "$LOG/tests.log")
    local good=0
    # On a GPU every selected test must run: a skip means CUDA did not see the GPU.
    if [ "$f" = 0 ] && [ "$p" -gt 0 ] && { [ "$CPU_ONLY" = 1 ] || [ "$s" = 0 ]; }; then good=1; fi
    grep -q '^\[  PASSED  \]\|^\[  FAILED  \] [0-9]* test' "$LOG/tests.log" || good=0  # crashed before its summary
    printf '%-44s %s passed, %s failed, %s skipped  %s\n' "CUDA tests (Cuda*, *Nccl*, *Peak.*)" "$p" "$f" "$s" \
      "$(verdict $good)"
    grep -E '^\[ +FAILED +\] [^ ]+ \([0-9]+ ms\)$' "$LOG/tests.log" | sed 's/^/    /'
    [ "$CPU_ONLY" = 1 ] || grep -E '^\[ +SKIPPED +\] [^ ]+ \([0-9]+ ms\)$' "$LOG/tests.log" | sed 's/^/    /'
  else
    printf '%-44s %s\n' "CUDA tests" "not run  $(verdict 0)"
  fi

  # ---- bench_cuda
  local peak="" measured=""
  if [ "$CPU_ONLY" = 0 ]; then
    local b=$LOG/bench.log
    if [ -f "$b" ] && grep -q '^peak: ' "$b"; then
      peak=$(sed -nE 's/^peak: ([0-9.]+) TFLOP\/s.*/\1/p' "$b" | head -n 1)
      measured=$(sed -nE 's/^measured GEMM: .* = ([0-9.]+) TFLOP\/s.*/\1/p' "$b" | head -n 1)
      echo "MFU peak: $(sed -nE 's/^peak: (.*) \(the MFU denominator\)$/\1/p' "$b" | head -n 1)"
      echo "bench_cuda kernels ($(sed -nE 's/^attention kernels, (T [0-9]+, d [0-9]+).*/\1/p' "$b")):"
      printf '  %-10s %5s %12s %12s\n' kind batch "fwd TFLOP/s" "bwd TFLOP/s"
      local rows
      rows=$(awk 'NF == 6 && $1 ~ /^[0-9]+$/ && ($2 == "standard" || $2 == "diff") {
                    printf "  %-10s %5s %12s %12s\n", $2, $1, $4, $6 }' "$b")
      echo "$rows"
      local n_rows
      n_rows=$(grep -c . <<<"$rows")
      printf '%-44s %s\n' "  kernel rows" "$n_rows  $(verdict "$([ "$n_rows" -gt 0 ] && echo 1 || echo 0)")"
      echo "bench_cuda training step ($(sed -nE 's/^training step, (.*)$/\1/p' "$b")):"
      local steps
      # "diff  configs/diff-3b.yaml  step 0.123 s  tokens/s 33300  achieved 420.5 TFLOP/s  MFU 42.5% (target
      # >= 45%)  of measured GEMM 59.0%  loss 11.765": each value follows its keyword.
      steps=$(awk '($1 == "diff" || $1 == "standard") && / tokens\/s / {
                     for (i = 1; i < NF; i++) v[$i] = $(i + 1)
                     printf "  %s: step %s s, %s tokens/s, %s TFLOP/s, MFU %s of the peak, %s of the measured GEMM\n",
                            $1, v["step"], v["tokens/s"], v["achieved"], v["MFU"], v["GEMM"] }' "$b")
      echo "$steps"
      printf '%-44s %s\n' "  step rows" "$(verdict "$([ -n "$steps" ] && echo 1 || echo 0)")"
      # issue 16's targets, each beside its figure, as bench_cuda printed them
      echo "bench_cuda targets:"
      sed -nE 's/^target: /  /p' "$b"
    else
      local why=""
      grep -q 'nothing measured' "$b" 2>/dev/null && why=" (nothing measured)"
      printf '%-44s %s\n' "bench_cuda" "no results$why  $(verdict 0)"
    fi
  fi

  # ---- gpu-check.yaml runs: tokens/s (mean of logged steps after the first) and MFU
  local mflop
  mflop=$(cat "$LOG/train-cuda.log" "$LOG/train-cpu.log" 2>/dev/null |
          sed -nE 's/.* ([0-9.e+]+) MFLOP\/token.*/\1/p' | head -n 1)
  for dev in cuda cpu; do
    local m=$LOG/run-$dev/metrics.jsonl
    [ "$CPU_ONLY" = 1 ] && [ "$dev" = cuda ] && continue
    if [ ! -s "$m" ]; then
      printf '%-44s %s\n' "gpu-check.yaml on $dev" "no metrics  $(verdict 0)"
      continue
    fi
    awk -v dev="$dev" -v mflop="${mflop:-0}" -v peak="${peak:-0}" -v meas="${measured:-0}" '
      # A value that was inf or NaN is logged as null: such a step is left out.
      { if (!match($0, /"tokens_per_s": [0-9.e+-]+/)) next; tps = substr($0, RSTART + 16, RLENGTH - 16) + 0
        if (!match($0, /"mfu": [0-9.e+-]+/)) next; mfu = substr($0, RSTART + 7, RLENGTH - 7) + 0
        if (NR > 1) { sum += tps; smfu += mfu; n++ } }
      END { if (n == 0) { print "gpu-check.yaml on " dev ": too few logged steps  FAIL"; exit }
            line = sprintf("gpu-check.yaml on %s: %.0f tokens/s", dev, sum / n)
            tflops = sum / n * mflop * 1e6 / 1e12
            if (dev == "cuda" && peak > 0 && mflop > 0) {
              line = line sprintf(", MFU %.2f%% of the peak", 100 * tflops / peak)
              if (meas > 0) line = line sprintf(", %.2f%% of the measured GEMM", 100 * tflops / meas)
            }
            printf "%s (trainer logs MFU %.2f%%)\n", line, 100 * smfu / n }' "$m"
  done

  # ---- loss: cuda (bf16) vs cpu (fp32), per logged step
  local c=$LOG/run-cuda/metrics.jsonl g=$LOG/run-cpu/metrics.jsonl
  if [ -s "$c" ] && [ -s "$g" ]; then
    local extract='s/^\{"step": ([0-9]+), "loss": ([^,]+),.*/\1 \2/p'
    # A loss logged as null (it was inf or NaN) has no difference: "null", and the check fails.
    awk 'NR == FNR { cpu[$1] = $2; next }
         ($1 in cpu) { if ($2 == "null" || cpu[$1] == "null") { printf "%d\t%s\t%s\tnull\n", $1, cpu[$1], $2; next }
                       d = $2 - cpu[$1]; if (d < 0) d = -d
                       printf "%d\t%.6f\t%.6f\t%.3e\n", $1, cpu[$1], $2, d / cpu[$1] }' \
      <(sed -nE "$extract" "$g") <(sed -nE "$extract" "$c") >"$LOG/loss_compare.tsv"
    sed -i '1i step\tloss_cpu\tloss_cuda\trel_diff' "$LOG/loss_compare.tsv"
    local line ok
    line=$(awk -v tol="$LOSS_TOL" 'NR > 1 && $4 == "null" { nulls++; if (!first_null) first_null = $1; next }
                                  NR > 1 { n++; s += $4; last = $2 " (cpu) vs " $3 " (cuda)"
                                            if ($4 + 0 >= max + 0) { max = $4; at = $1 } }
              END { if (n == 0 && nulls == 0) { print "0 0"; exit }
                    if (nulls) { printf "0 %d logged steps, %d with a loss of null (inf or NaN), first at step %d\n",
                                 n + nulls, nulls, first_null; exit }
                    printf "%d %s logged steps, max rel diff %.2e at step %d, mean %.2e, last %s; tolerance %g\n",
                           (max + 0 <= tol + 0), n, max, at, s / n, last, tol }' "$LOG/loss_compare.tsv")
    ok=${line%% *}
    printf '%-44s %s  %s\n' "loss cuda vs cpu" "${line#* }" "$(verdict "$ok")"
  elif [ "$CPU_ONLY" = 0 ]; then
    printf '%-44s %s\n' "loss cuda vs cpu" "not compared (a run is missing)  $(verdict 0)"
  elif [ -s "$g" ]; then
    printf '%-44s %s\n' "loss cpu (no GPU run to compare)" \
      "$(sed -nE 's/^\{"step": ([0-9]+), "loss": ([^,]+),.*/\1:\2/p' "$g" | tr '\n' ' ')"
  fi

  # ---- phases
  if [ -f "$LOG/phases.tsv" ]; then
    echo
    printf '%-12s %-28s %8s\n' phase status seconds
    awk -F '\t' '{ printf "%-12s %-28s %8s\n", $1, $2, $3 }' "$LOG/phases.tsv"
  fi
}

out=$(summary)
echo "$out" | tee -a "$LOG/summary.txt"
! grep -qE '(^| )FAIL$' <<<"$out"
