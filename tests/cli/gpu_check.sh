#!/usr/bin/env bash
# launch/gpu_check.sh without a GPU: its options, the one-line failure when no
# GPU can be used (a fake nvidia-smi stands in for each case, so the result does
# not depend on this machine), the build it would run for a detected H200
# (--dry-run: only sm_90, no emulation tests, only the three targets), and the
# summary's verdicts on a log directory laid out as a GPU run leaves it.
# Usage: gpu_check.sh <difftron binary> <source dir>
set -u
unset DIFFTRON_PEAK_TFLOPS
src=$2
check=$src/launch/gpu_check.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { echo "FAIL: $1"; echo "--- output ($2) ---"; cat "$2"; echo "$passed passed, 1 failed"; exit 1; }

fake_smi() {  # DIR SCRIPT-BODY: a fake nvidia-smi first on PATH
  mkdir -p "$tmp/$1"
  printf '#!/bin/sh\n%s\n' "$2" >"$tmp/$1/nvidia-smi"
  chmod +x "$tmp/$1/nvidia-smi"
}

bash "$check" --help >"$tmp/help" 2>&1 || fail "--help exits non-zero" "$tmp/help"
grep -q -- "--cpu-only" "$tmp/help" || fail "--help does not list --cpu-only" "$tmp/help"
pass "--help"

for bad in "--bogus" "--steps 0" "--loss-tol x"; do
  # shellcheck disable=SC2086  # the option and its value are two words
  bash "$check" $bad --log-dir "$tmp/log-bad" >"$tmp/bad" 2>&1 && fail "$bad was accepted" "$tmp/bad"
  if ! { [ "$(wc -l <"$tmp/bad")" = 1 ] && grep -q "^gpu_check: " "$tmp/bad"; }; then
    fail "$bad: not one gpu_check: line" "$tmp/bad"
  fi
done
pass "bad options fail with one line"

fake_smi nodriver 'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver."; exit 9'
fake_smi old 'echo "0, Tesla V100-SXM2-16GB, 7.0, 16160 MiB, 535.0"'
fake_smi none 'exit 0'
for case in nodriver:"nvidia-smi failed" old:"need 8.0 or newer" none:"lists none"; do
  PATH=$tmp/${case%%:*}:$PATH bash "$check" --log-dir "$tmp/log-${case%%:*}" >"$tmp/nogpu" 2>&1 &&
    fail "${case%%:*}: exit 0 without a usable GPU" "$tmp/nogpu"
  if ! { [ "$(wc -l <"$tmp/nogpu")" = 1 ] && grep -q "${case#*:}" "$tmp/nogpu"; }; then
    fail "${case%%:*}: expected one line saying '${case#*:}'" "$tmp/nogpu"
  fi
done
pass "no usable GPU: one line and exit 1 (no driver, compute capability 7.0, no GPU listed)"

fake_smi h200 'echo "0, NVIDIA H200, 9.0, 143771 MiB, 570.86.15"'
PATH=$tmp/h200:$PATH bash "$check" --dry-run --log-dir "$tmp/log-dry" >"$tmp/dry" 2>&1 || fail "--dry-run failed" "$tmp/dry"
grep -q "configure .*-DDIFFTRON_CUDA=ON .*-DDIFFTRON_EMULATION_TESTS=OFF -DDIFFTRON_CUDA_ARCHS=90$" "$tmp/dry" ||
  fail "the configure step is not CUDA for sm_90 only without the emulation tests" "$tmp/dry"
grep -q "build .*--target difftron difftron_tests bench_cuda$" "$tmp/dry" || fail "the build is not the three targets" "$tmp/dry"
for phase in tests data train-cuda train-cpu bench; do
  grep -q "\[dry-run\] $phase " "$tmp/dry" || fail "--dry-run does not show the $phase phase" "$tmp/dry"
done
pass "--dry-run on an H200: CUDA build for sm_90 only, then tests, data, both runs, bench"

# The summary of a GPU run's logs: every test passed, bench_cuda's lines, and
# losses 1% apart (within the default 5e-2, outside 1e-3).
log=$tmp/log-gpu
mkdir -p "$log/run-cpu" "$log/run-cuda"
printf '[       OK ] CudaOps.FillSetsEveryElement (3 ms)\n[  PASSED  ] 1 test.\n' >"$log/tests.log"
cat >"$log/bench.log" <<'EOF'
device 0: NVIDIA H200
peak: 989.4 TFLOP/s per GPU (datasheet dense bf16, H200); measured cuBLASLt bf16 GEMM 700.0 TFLOP/s (the MFU denominator)
measured GEMM: cuBLASLt bf16 8192^3 = 700.0 TFLOP/s

attention kernels, T 4096, d 128: standard 32 heads of d vs diff 16 heads x 2 maps (values 2d); causal FLOPs, backward = 2.5x forward
 batch kind         fwd ms  fwd TFLOP/s    bwd ms  bwd TFLOP/s
     1 standard      1.000        300.0     3.000        250.0
     1 diff          1.100        280.0     3.300        230.0
     1 diff/standard time: forward 1.10x, backward 1.10x

training step, 3B shapes with 2 layers, seq 4096, micro-batch 1, recompute (from config), 3 timed steps
diff      configs/diff-3b.yaml           step 0.100 s  tokens/s 40960  achieved 400.0 TFLOP/s  MFU 40.4% (target >= 45%)  of measured GEMM 57.1%  loss 11.700
standard  configs/transformer-3b.yaml    step 0.095 s  tokens/s 43116  achieved 410.0 TFLOP/s  MFU 41.4% (target >= 45%)  of measured GEMM 58.6%  loss 11.700

targets (issue 16):
target: standard attention forward, T 4096, batch 4                        300.00 TFLOP/s     (target >= 300 TFLOP/s) met
target: DIFF step MFU (diff-3b shapes, T 4096)                              40.40 %           (target >= 45 %) NOT met
EOF
echo "model: DIFF Transformer, 3067648 parameters, 4 layers, d_model 256, 19.4642 MFLOP/token" >"$log/train-cuda.log"
for step in 5 10 15; do
  loss=$(awk -v s="$step" 'BEGIN { printf "%.6f", 5 - s / 10 }')
  printf '{"step": %d, "loss": %s, "lr": 1.0e-03, "grad_norm": 1.0, "mean_lambda": 0.4, "tokens_per_s": 1000.0, "mfu": 0.2000, "tokens_seen": 1, "step_s": 1.0}\n' \
    "$step" "$loss" >>"$log/run-cpu/metrics.jsonl"
  printf '{"step": %d, "loss": %s, "lr": 1.0e-03, "grad_norm": 1.0, "mean_lambda": 0.4, "tokens_per_s": 200000.0, "mfu": 0.0100, "tokens_seen": 1, "step_s": 0.1}\n' \
    "$step" "$(awk -v l="$loss" 'BEGIN { printf "%.6f", l * 1.01 }')" >>"$log/run-cuda/metrics.jsonl"
done
bash "$src/launch/gpu_check_summary.sh" "$log" >"$tmp/summary" 2>&1 || fail "the summary of a good run fails" "$tmp/summary"
for want in "1 passed, 0 failed, 0 skipped  ok" "MFU peak: 989.4 TFLOP/s per GPU" "diff +1 +280.0 +230.0" \
  "diff: step 0.100 s, 40960 tokens/s, 400.0 TFLOP/s, MFU 40.4% of the peak, 57.1% of the measured GEMM" \
  "on cuda: 200000 tokens/s, MFU 0.39% of the peak, 0.56% of the measured GEMM" \
  "3 logged steps, max rel diff 1.00e-02.*tolerance 0.05  ok" \
  "^  standard attention forward, T 4096, batch 4 +300.00 TFLOP/s +\(target >= 300 TFLOP/s\) met" \
  "^  DIFF step MFU .* NOT met"; do
  grep -qE -- "$want" "$tmp/summary" || fail "the summary lacks '$want'" "$tmp/summary"
done
[ "$(wc -l <"$log/loss_compare.tsv")" = 4 ] || fail "loss_compare.tsv is not a header and 3 steps" "$log/loss_compare.tsv"
pass "summary of a good GPU run: tests, peak, kernel and step rows, MFU, loss within tolerance"

bash "$src/launch/gpu_check_summary.sh" "$log" --loss-tol 0.001 >"$tmp/summary2" 2>&1 &&
  fail "a 1% loss difference passed --loss-tol 0.001" "$tmp/summary2"
grep -q "tolerance 0.001  FAIL" "$tmp/summary2" || fail "no FAIL on the loss line" "$tmp/summary2"
printf '[  SKIPPED ] CudaOps.FillSetsEveryElement (0 ms)\n[  PASSED  ] 0 tests.\n' >"$log/tests.log"
bash "$src/launch/gpu_check_summary.sh" "$log" >"$tmp/summary3" 2>&1 &&
  fail "skipped CUDA tests on a GPU run passed" "$tmp/summary3"
pass "summary fails on a loss difference over the tolerance and on skipped CUDA tests"

# A diverged step: metrics.jsonl writes its non-finite loss and tokens/s as null.
printf '[       OK ] CudaOps.FillSetsEveryElement (3 ms)\n[  PASSED  ] 1 test.\n' >"$log/tests.log"
printf '{"step": 20, "loss": null, "lr": 0.001, "grad_norm": null, "mean_lambda": 0.4, "tokens_per_s": null, "mfu": null, "tokens_seen": 1, "step_s": 0.1}\n' \
  >>"$log/run-cuda/metrics.jsonl"
printf '{"step": 20, "loss": 3.0, "lr": 0.001, "grad_norm": 1.0, "mean_lambda": 0.4, "tokens_per_s": 1000.0, "mfu": 0.2, "tokens_seen": 1, "step_s": 1.0}\n' \
  >>"$log/run-cpu/metrics.jsonl"
bash "$src/launch/gpu_check_summary.sh" "$log" >"$tmp/summary4" 2>&1 &&
  fail "a null (inf or NaN) loss on cuda passed" "$tmp/summary4"
for want in "4 logged steps, 1 with a loss of null \(inf or NaN\), first at step 20  FAIL" "on cuda: 200000 tokens/s"; do
  grep -qE -- "$want" "$tmp/summary4" || fail "the summary lacks '$want'" "$tmp/summary4"
done
pass "summary: a step logged with null (non-finite) values is left out of tokens/s and fails the loss check"

echo "$passed passed, 0 failed"
