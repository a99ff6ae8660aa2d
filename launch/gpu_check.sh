#!/usr/bin/env bash
# The prepared check for a short GPU loan (issue 12): on a machine with NVIDIA
# GPUs it builds difftron with CUDA for the detected compute capability only,
# runs the CUDA GoogleTest cases on the GPU, bench_cuda in its short mode, and
# configs/gpu-check.yaml for --steps steps on cuda and on cpu from the same
# seed and data, then prints one summary table: tests, kernel TFLOP/s, step
# tokens/s and MFU against the datasheet peak and the measured GEMM rate, and
# the per-step CPU-vs-GPU loss difference. Every phase runs under `timeout`
# and within an overall budget (default 470 s), so a hang cannot eat the loan.
# Everything goes to a log directory; the exit status is non-zero if any
# phase failed. Data is made offline from the repository's own text.
#
#   launch/gpu_check.sh [--cpu-only] [--dry-run] [--no-build] [--log-dir DIR]
#                       [--build-dir DIR] [--steps N] [--loss-tol X] [--jobs N] [--budget S]
set -uo pipefail  # no -e: each phase records its status and the check goes on where it can

usage() {
  cat <<'EOF'
usage: launch/gpu_check.sh [options]

Builds difftron with CUDA (only the detected GPU's architecture; targets difftron,
difftron_tests, bench_cuda; no emulation tests) into --build-dir, then runs on GPU 0 the
CUDA tests (difftron_tests --gtest_filter='Cuda*:*Nccl*:DatasheetPeak.*:GpuPeak.*'),
bench_cuda's short mode, and configs/gpu-check.yaml for --steps steps on cuda and on cpu,
and prints one summary table. Runs launch/setup.sh (root, needs the network) only when
configuring fails.

options:
  --cpu-only       no GPU needed: build without CUDA, run the (skipping) CUDA tests, the data
                   preparation and the CPU training run; for checking the script itself
  --dry-run        print each phase's command instead of running it
  --no-build       use the binaries already in --build-dir
  --log-dir DIR    where the logs and the summary go (default out/gpu-check/<date-time>)
  --build-dir DIR  build directory (default build-gpu; build-gpu-cpu with --cpu-only)
  --steps N        training steps of each run (default 60)
  --loss-tol X     largest relative CPU-vs-GPU loss difference accepted (default 0.05)
  --jobs N         build jobs (default: every core, nproc)
  --budget S       seconds the whole check may take; each phase's timeout is cut to what
                   is left (default 470)
  --help           show this help
EOF
}

die() {
  echo "gpu_check: $*" >&2
  exit 1
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || die "cannot enter $ROOT"

CPU_ONLY=0 DRY_RUN=0 NO_BUILD=0
LOG_DIR="" BUILD_DIR=""
STEPS=60 LOSS_TOL=0.05 BUDGET=470
JOBS=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --cpu-only) CPU_ONLY=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --no-build) NO_BUILD=1 ;;
    --log-dir | --build-dir | --steps | --loss-tol | --jobs | --budget)
      [ $# -ge 2 ] || die "$1 needs a value (see --help)"
      case "$1" in
        --log-dir) LOG_DIR=$2 ;;
        --build-dir) BUILD_DIR=$2 ;;
        --steps) STEPS=$2 ;;
        --loss-tol) LOSS_TOL=$2 ;;
        --jobs) JOBS=$2 ;;
        --budget) BUDGET=$2 ;;
      esac
      shift ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
for v in STEPS JOBS BUDGET; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$(tr '[:upper:]' '[:lower:]' <<<"$v") ${!v}: expected a positive integer"
done
[[ $LOSS_TOL =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || die "--loss-tol $LOSS_TOL: expected a number such as 0.05"
[ -n "$BUILD_DIR" ] || { [ "$CPU_ONLY" = 1 ] && BUILD_DIR=build-gpu-cpu || BUILD_DIR=build-gpu; }
[ -n "$LOG_DIR" ] || LOG_DIR=out/gpu-check/$(date +%Y%m%d-%H%M%S)
mkdir -p "$LOG_DIR" || die "cannot create the log directory $LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)
command -v timeout >/dev/null || die "timeout (coreutils) not found"

if [ -n "${DIFFTRON_PEAK_TFLOPS:-}" ]; then
  echo "gpu_check: ignoring DIFFTRON_PEAK_TFLOPS=$DIFFTRON_PEAK_TFLOPS (the check reports the datasheet and measured peaks)"
  unset DIFFTRON_PEAK_TFLOPS
fi

T0=$SECONDS
FAILED=0
: >"$LOG_DIR/phases.tsv"

# run_phase NAME LIMIT_S CMD...: runs CMD under timeout (cut to the budget left),
# output in $LOG_DIR/NAME.log, and records ok / FAILED / TIMEOUT with its seconds.
run_phase() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - (SECONDS - T0)))
  if [ "$left" -lt 10 ]; then
    record "$name" "SKIPPED (budget spent)" 0
    FAILED=1
    return 1
  fi
  [ "$limit" -le "$left" ] || limit=$left
  local log=$LOG_DIR/$name.log
  if [ "$DRY_RUN" = 1 ]; then
    printf 'gpu_check: [dry-run] %-10s (limit %ss):' "$name" "$limit"
    printf ' %q' "$@"
    echo
    record "$name" "dry-run" 0
    return 0
  fi
  printf 'gpu_check: %-10s ... ' "$name"
  local t=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
  local took=$((SECONDS - t)) state=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    state="TIMEOUT (${limit}s)"
  elif [ "$rc" != 0 ]; then
    state="FAILED (exit $rc)"
  fi
  echo "$state, ${took}s (log $log)"
  record "$name" "$state" "$took"
  if [ "$rc" != 0 ]; then
    FAILED=1
    tail -n 15 "$log" | sed 's/^/    | /'
  fi
  return "$rc"
}
record() {  # NAME STATE SECONDS, for the summary
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$LOG_DIR/phases.tsv"
}
skip_phase() {  # NAME WHY: a phase that cannot run because an earlier one failed
  echo "gpu_check: $1 skipped: $2"
  record "$1" "SKIPPED ($2)" 0
  FAILED=1
}

# ---- detect ------------------------------------------------------------------
ARCHS="" GPU_DESC="none (--cpu-only)"
if [ "$CPU_ONLY" = 0 ]; then
  command -v nvidia-smi >/dev/null ||
    die "no NVIDIA GPU: nvidia-smi not found (no driver?); use --cpu-only to check the CPU half"
  smi_out=$(timeout 30 nvidia-smi --query-gpu=index,name,compute_cap,memory.total,driver_version \
    --format=csv,noheader 2>&1) || die "no NVIDIA GPU: nvidia-smi failed: $(head -n 1 <<<"$smi_out")"
  [ -n "$smi_out" ] || die "no NVIDIA GPU: nvidia-smi lists none"
  echo "$smi_out" >"$LOG_DIR/nvidia-smi.csv"
  # compute_cap "9.0" -> CUDA architecture "90"; the kernels need sm_80 or newer (bf16 wmma).
  for cap in $(cut -d, -f3 <<<"$smi_out" | tr -d ' ' | sort -u); do
    [[ $cap =~ ^([0-9]+)\.([0-9]+)$ ]] || die "nvidia-smi gave compute capability '$cap' (expected e.g. 9.0)"
    [ "${BASH_REMATCH[1]}" -ge 8 ] || die "GPU compute capability $cap: difftron's CUDA kernels need 8.0 or newer"
    ARCHS+="${ARCHS:+;}${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
  done
  GPU_DESC="$(wc -l <<<"$smi_out") GPU(s): $(head -n 1 <<<"$smi_out" | cut -d, -f2- | sed 's/^ *//'); CUDA archs $ARCHS"
  record detect ok $((SECONDS - T0))
fi
echo "$GPU_DESC; $(nproc 2>/dev/null) cores; commit $(git describe --always --dirty 2>/dev/null || echo '?')" >"$LOG_DIR/gpu.txt"
echo "gpu_check: $(cat "$LOG_DIR/gpu.txt"); logs in $LOG_DIR"

# ---- configure (setup only if it fails) and build ----------------------------------
configure() {
  local cuda=ON
  [ "$CPU_ONLY" = 1 ] && cuda=OFF
  local args=(-S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DDIFFTRON_CUDA="$cuda" -DDIFFTRON_EMULATION_TESTS=OFF)
  [ -n "$ARCHS" ] && args+=(-DDIFFTRON_CUDA_ARCHS="$ARCHS")
  run_phase "$1" 120 cmake "${args[@]}"
}
BUILT=1
if [ "$NO_BUILD" = 0 ]; then
  failed_before=$FAILED
  if ! configure configure; then
    if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" = 0 ]; then
      # setup.sh is idempotent; without the network its apt-get fails (or the phase's
      # timeout stops it). Whether CMake then finds everything decides, not setup's exit
      # status: a tokenizer fetch that fails offline does not stop the check.
      run_phase setup 240 bash launch/setup.sh
      FAILED=$failed_before
      configure configure2 || BUILT=0
    else
      echo "gpu_check: configuring failed; run launch/setup.sh as root (needs the network) to install the dependencies" >&2
      BUILT=0
    fi
  fi
  if [ "$BUILT" = 1 ]; then
    run_phase build 330 cmake --build "$BUILD_DIR" -j "$JOBS" --target difftron difftron_tests bench_cuda || BUILT=0
  else
    skip_phase build "configure failed"
  fi
fi
DIFFTRON=$BUILD_DIR/difftron
TESTS_BIN=$BUILD_DIR/tests/difftron_tests
BENCH=$BUILD_DIR/bench_cuda
if [ "$DRY_RUN" = 0 ] && [ "$BUILT" = 1 ]; then
  for b in "$DIFFTRON" "$TESTS_BIN" "$BENCH"; do
    [ -x "$b" ] || { echo "gpu_check: $b is missing" >&2; BUILT=0; FAILED=1; }
  done
fi

# ---- tests ---------------------------------------------------------------------------
FILTER='Cuda*:*Nccl*:DatasheetPeak.*:GpuPeak.*'
if [ "$BUILT" = 1 ]; then
  run_phase tests 180 "$TESTS_BIN" --gtest_filter="$FILTER" \
    --gtest_output="xml:$LOG_DIR/tests.xml"
else
  skip_phase tests "no build"
fi

# ---- data: the repository's own text, byte tokenizer (offline, no Debian package) --
DATA=$LOG_DIR/data
# shellcheck disable=SC2317  # run through `bash -c` under timeout
make_data() {  # DIFFTRON DATA
  rm -rf "$2" && mkdir -p "$2/raw" || return 1
  local n=0 f
  while IFS= read -r f; do
    cp "$f" "$2/raw/$(printf '%04d' "$n")_${f//\//__}" || return 1
    n=$((n + 1))
  done < <(find README.md configs launch core kernels model comm data trainer checkpoint eval cli tools bench \
             tests/unit -type f \( -name '*.md' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' -o -name '*.cuh' \
             -o -name '*.yaml' -o -name '*.sh' \) -not -path 'data/corpus/*' 2>/dev/null | LC_ALL=C sort)
  echo "gpu_check data: $n files, $(du -sb "$2/raw" | cut -f1) bytes of the repository's text"
  "$1" prepare --input "$2/raw" --output "$2/shards" --tokenizer byte --force
}
export -f make_data
DATA_OK=0
if [ "$BUILT" = 1 ]; then
  run_phase data 60 bash -c 'make_data "$@"' _ "$DIFFTRON" "$DATA" && DATA_OK=1
else
  skip_phase data "no build"
fi

# ---- training runs: cuda, then cpu, same seed, data and steps --------------------
WARMUP=$((STEPS / 6))  # the config's 10 at the default 60 steps; fewer in a shorter run
[ "$WARMUP" -le 10 ] || WARMUP=10
[ "$WARMUP" -ge 1 ] || WARMUP=1
train() {  # PHASE DEVICE LIMIT
  if [ "$DATA_OK" = 1 ]; then
    rm -rf "$LOG_DIR/run-$2"
    run_phase "$1" "$3" "$DIFFTRON" train configs/gpu-check.yaml --set "data.datasets[0].path=$DATA/shards" \
      --set "train.run_dir=$LOG_DIR/run-$2" --set "train.max_steps=$STEPS" --set "train.warmup_steps=$WARMUP" \
      --set "runtime.device=$2"
  else
    skip_phase "$1" "no data"
  fi
}
[ "$CPU_ONLY" = 0 ] && train train-cuda cuda 150
train train-cpu cpu 200

# ---- bench_cuda, short mode ----------------------------------------------------------
if [ "$CPU_ONLY" = 0 ]; then
  if [ "$BUILT" = 1 ]; then
    run_phase bench 200 "$BENCH" --layers 2 --steps 3 --reps 3
  else
    skip_phase bench "no build"
  fi
fi

# ---- summary ---------------------------------------------------------------------------
[ "$DRY_RUN" = 1 ] && { echo "gpu_check: dry run, nothing measured"; exit 0; }
summary_args=("$LOG_DIR" --loss-tol "$LOSS_TOL")
[ "$CPU_ONLY" = 1 ] && summary_args+=(--cpu-only)
echo
bash "$ROOT/launch/gpu_check_summary.sh" "${summary_args[@]}" || FAILED=1
echo "gpu_check: $([ "$FAILED" = 0 ] && echo passed || echo FAILED) in $((SECONDS - T0)) s" | tee -a "$LOG_DIR/summary.txt"
echo "gpu_check: summary in $LOG_DIR/summary.txt"
exit "$FAILED"
