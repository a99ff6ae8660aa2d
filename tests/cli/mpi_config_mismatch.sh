#!/usr/bin/env bash
# Ranks started with different configs (mpirun's MPMD syntax, `A : B`) stop at
# start-up, promptly, with one line naming the first key that differs, instead
# of running into each other's buffers.
# Usage: mpi_config_mismatch.sh <difftron binary> <source dir>
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" prepare --input /usr/share/common-licenses --output "$tmp/shards" >/dev/null 2>&1 || { echo "prepare failed"; exit 1; }
cat > "$tmp/a.yaml" <<YAML
model: {vocab_size: 320, d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 2, ffn_hidden: 176}
train: {seq_len: 32, global_batch_size: 4, max_steps: 2, run_dir: $tmp/run}
data: {datasets: [{path: $tmp/shards, weight: 1.0}]}
parallel: {micro_batch_size: 2}
YAML
export OMP_NUM_THREADS=1
mpi="mpirun --oversubscribe --allow-run-as-root"
timeout 60 $mpi -np 1 "$bin" train "$tmp/a.yaml" : -np 1 "$bin" train "$tmp/a.yaml" --set model.d_model=128 \
  > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then echo "FAIL: job exited 0 with different configs on its ranks"; cat "$tmp/out"; exit 1; fi
if [ $rc -eq 124 ]; then echo "FAIL: job hung (killed by timeout)"; cat "$tmp/out"; exit 1; fi
if ! grep -q "error on rank 1: .*model.d_model.*128.*64" "$tmp/out"; then
  echo "FAIL: no one-line error naming model.d_model and both values"; cat "$tmp/out"; exit 1
fi
if [ "$(grep -c "difftron train: " "$tmp/out")" -ne 1 ]; then
  echo "FAIL: expected exactly one error line"; cat "$tmp/out"; exit 1
fi
echo "ok: $(grep 'error on rank' "$tmp/out")"

# The same config on every rank passes the check and trains.
if ! timeout 120 $mpi -np 2 "$bin" train "$tmp/a.yaml" > "$tmp/out" 2>&1; then
  echo "FAIL: identical configs did not train"; cat "$tmp/out"; exit 1
fi
echo "ok: identical configs train"
echo "2 passed, 0 failed"
