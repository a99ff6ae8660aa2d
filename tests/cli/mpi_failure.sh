#!/usr/bin/env bash
# A rank that fails brings the whole job down: every rank exits, the job's
# exit status is non-zero, and the failing rank's one-line message is printed.
# Usage: mpi_failure.sh <difftron binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" prepare --input /usr/share/common-licenses --output "$tmp/shards" >/dev/null 2>&1 || { echo "prepare failed"; exit 1; }
export OMP_NUM_THREADS=1 DIFFTRON_INJECT_FAILURE=1:3
start=$(date +%s)
timeout 120 mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" train "$src/configs/tiny.yaml" \
  --set "data.datasets=[{path: $tmp/shards, weight: 1.0}]" --set train.max_steps=50 \
  --set parallel.micro_batch_size=4 --set "train.run_dir=$tmp/run" --set checkpoint.every_steps=0 >"$tmp/out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
if [ $rc -eq 0 ]; then echo "FAIL: job exited 0 although rank 1 failed"; cat "$tmp/out"; exit 1; fi
if [ $rc -eq 124 ]; then echo "FAIL: job hung (killed by timeout)"; cat "$tmp/out"; exit 1; fi
if ! grep -q "error on rank 1: injected failure at step 3" "$tmp/out"; then
  echo "FAIL: the failing rank's message is missing"; cat "$tmp/out"; exit 1
fi
echo "job went down with exit $rc in ${elapsed}s; message: $(grep 'error on rank 1' "$tmp/out")"
echo "1 passed, 0 failed"
