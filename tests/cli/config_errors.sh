#!/usr/bin/env bash
# Bad configs fail as a user sees them: `difftron train bad.yaml` exits non-zero
# and prints exactly one line on stderr, naming the file and the key path.
# Usage: bash config_errors.sh <path-to-difftron> <source-dir>
set -u
bin=${1:?usage: config_errors.sh <path-to-difftron> <source-dir>}
src=${2:?usage: config_errors.sh <path-to-difftron> <source-dir>}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# A valid config: every error below comes from one change to it.
base='model:
  vocab_size: 320
  d_model: 128
  n_layers: 2
  n_heads: 2
  n_kv_heads: 2
  ffn_hidden: 344
train:
  seq_len: 64
  global_batch_size: 8
  max_steps: 10
  run_dir: RUNDIR
data:
  datasets:
    - {path: data/corpus/quickstart, weight: 1.0}'
base=${base//RUNDIR/$work/run}

# expect_error NAME KEY_PATH CONFIG_TEXT [EXTRA ARGS...]
expect_error() {
  local name=$1 key=$2 text=$3
  shift 3
  local cfg="$work/$name.yaml"
  printf '%s\n' "$text" > "$cfg"
  expect_train_error "$name" "$key" "$cfg" "$@"
}

# expect_train_error NAME KEY_PATH CONFIG_PATH [EXTRA ARGS...]
# Under an 8 GB address-space limit: a run the memory check misses fails fast
# instead of pushing this machine into swap.
expect_train_error() {
  local name=$1 key=$2 cfg=$3
  shift 3
  (ulimit -v 8000000; exec timeout 120 "$bin" train "$cfg" "$@") > "$work/out" 2> "$work/err" < /dev/null
  local rc=$? lines
  lines=$(wc -l < "$work/err")
  local err
  err=$(cat "$work/err")
  local why=""
  if [ "$rc" -eq 0 ]; then why="exit code 0"
  elif [ "$rc" -eq 124 ]; then why="timed out"
  elif [ "$rc" -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif [ "$lines" -ne 1 ]; then why="stderr has $lines lines, expected exactly 1"
  elif ! grep -qF "difftron train: error: " "$work/err"; then why="stderr is not 'difftron train: error: ...'"
  elif ! grep -qF "$cfg" "$work/err"; then why="stderr does not name the file $cfg"
  elif ! grep -qF "$key" "$work/err"; then why="stderr does not name the key $key"
  fi
  if [ -n "$why" ]; then
    echo "FAIL $name: $why (rc=$rc)"
    echo "  stderr: $err"
    failures=$((failures + 1))
  else
    echo "ok   $name: $err"
  fi
}

expect_error unknown_key model.n_kv_head "${base/n_kv_heads/n_kv_head}"
expect_error unknown_section optimizer "$base
optimizer:
  lr: 1.0e-3"
expect_error unknown_dataset_key 'data.datasets[0].wieght' "${base/weight: 1.0/wieght: 1.0}"
expect_error wrong_type train.global_batch_size "${base/global_batch_size: 8/global_batch_size: eight}"
expect_error float_for_int model.n_layers "${base/n_layers: 2/n_layers: 2.5}"
expect_error head_dim_not_integer model.n_heads "${base/n_heads: 2/n_heads: 3}"
expect_error heads_not_multiple_of_kv model.n_kv_heads "${base/n_kv_heads: 2/n_kv_heads: 3}"
expect_error steps_and_tokens train.max_steps "${base/max_steps: 10/max_steps: 10
  max_tokens: 100000}"
expect_error unknown_enum model.attention "$base" --set model.attention=linear
expect_error unknown_set_key train.lrr "$base" --set train.lrr=1.0e-3
# The batch keys of earlier versions name their new names (Megatron-LM's).
expect_error old_batch_name train.global_batch_size "${base/global_batch_size: 8/batch_size: 8}"
expect_error old_micro_batch_name parallel.micro_batch_size "$base" --set parallel.micro_batch=2
expect_error yaml_syntax "YAML syntax error" "${base/n_layers: 2/n_layers: [2}"
expect_error negative_bucket parallel.grad_bucket_mb "$base" --set parallel.grad_bucket_mb=-1
expect_error cuda_head_dim model.n_heads "$base" --set runtime.device=cuda --set model.n_heads=1 --set model.n_kv_heads=1 --set model.d_model=96
# runtime.device: cuda where no GPU can be used (none visible, or a build without CUDA).
if ! nvidia-smi -L > /dev/null 2>&1; then
  expect_error cuda_without_gpu runtime.device "$base" --set runtime.device=cuda --set model.n_heads=1 --set model.n_kv_heads=1
fi

# With real shards, so that nothing but the check stops these runs.
"$bin" prepare --input /usr/share/common-licenses --output "$work/shards" > /dev/null 2>&1 || {
  echo "FAIL: prepare"
  exit 1
}
runnable=${base//data\/corpus\/quickstart/$work/shards}
# A run that cannot fit in this machine's memory is refused before anything is
# allocated, with the figure; 64-bit size arithmetic that would overflow is refused too.
expect_error too_big_for_memory "model.n_layers 1000000000" "$runnable" --set model.n_layers=1000000000
grep -qF "available" "$work/err" || { echo "FAIL too_big_for_memory: no available memory named"; failures=$((failures + 1)); }
expect_error size_overflows "model.d_model 1000000000" "$runnable" --set model.d_model=1000000000
grep -qF "overflows" "$work/err" || { echo "FAIL size_overflows: no overflow named"; failures=$((failures + 1)); }
expect_error huge_batch train.global_batch_size "$runnable" --set train.global_batch_size=4000000000000
# More threads than this process has cores would oversubscribe them and inflate the MFU peak.
expect_error threads_above_cores runtime.threads "$runnable" --set runtime.threads=100000
# A directory, and a file of several YAML documents, are not one config.
mkdir -p "$work/dir.yaml"
expect_train_error config_is_directory "is a directory" "$work/dir.yaml"
expect_error two_documents "2 YAML documents" "$runnable
---
model:
  d_model: 64"

# The shipped quickstart config passes the loader: any failure is not about the config.
if [ -f "$src/configs/tiny.yaml" ]; then
  timeout 120 "$bin" train "$src/configs/tiny.yaml" --set train.lrr=1 > /dev/null 2> "$work/err" < /dev/null
  if ! grep -qF "train.lrr" "$work/err"; then
    echo "FAIL shipped tiny.yaml with a bad --set: $(cat "$work/err")"
    failures=$((failures + 1))
  fi
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures config error case(s) failed"
  exit 1
fi
echo "all config error cases passed"
