#!/usr/bin/env bash
# SIGTERM (what Slurm sends before preemption) makes a run finish its step,
# save a checkpoint and exit 0 promptly; `--resume auto` continues from that
# step (DESIGN §6). Single process, no mpirun.
# Usage: checkpoint_sigterm.sh <difftron binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { echo "FAIL: $1"; echo "--- output ($2) ---"; cat "$2"; echo "$passed passed, 1 failed"; exit 1; }

"$bin" prepare --input /usr/share/common-licenses --output "$tmp/shards" >"$tmp/prepare" 2>&1 ||
  fail "prepare" "$tmp/prepare"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# configs/tiny.yaml with 2 layers and 64-token sequences: the same code paths, 4x less work per step.
# every_steps 0: the only checkpoint is the one the signal asks for.
common=(train "$src/configs/tiny.yaml" --set "data.datasets=[{path: $tmp/shards, weight: 1.0}]"
  --set model.n_layers=2 --set train.seq_len=64 --set train.warmup_steps=1 --set parallel.micro_batch=4
  --set "checkpoint.dir=$tmp/ck" --set checkpoint.every_steps=0 --set train.log_every=1
  --set "train.run_dir=$tmp/run")

# 1. A long run, stopped by SIGTERM once it has logged 3 steps.
"$bin" "${common[@]}" --set train.max_steps=200 >"$tmp/run1" 2>&1 &
pid=$!
for _ in $(seq 1200); do  # up to 120 s for 3 steps
  [ -f "$tmp/run/metrics.jsonl" ] && [ "$(wc -l <"$tmp/run/metrics.jsonl")" -ge 3 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "the run ended before it was signalled" "$tmp/run1"
kill -TERM "$pid"
# It has one step to finish and a checkpoint to write: 60 s is a hang, not slowness.
for _ in $(seq 600); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -9 "$pid"
  fail "the run did not exit within 60 s of SIGTERM" "$tmp/run1"
fi
wait "$pid"
rc=$?
pid=""
[ $rc -eq 0 ] || fail "the signalled run exited $rc, expected 0" "$tmp/run1"
pass "the run exited 0 after SIGTERM"

n=$(sed -n 's/^stopping after step \([0-9]*\) on signal 15.*/\1/p' "$tmp/run1")
[ -n "$n" ] || fail "no 'stopping after step N on signal 15' line" "$tmp/run1"
[ "$n" -ge 3 ] && [ "$n" -lt 200 ] || fail "stopped after step $n, expected 3 <= N < 200" "$tmp/run1"
[ -f "$tmp/ck/step_$n/manifest.yaml" ] && [ "$(cat "$tmp/ck/latest")" = "step_$n" ] ||
  fail "no complete step_$n named by latest" "$tmp/run1"
pass "stopped after step $n and saved step_$n"

# 2. --resume auto continues from step N for two more steps.
timeout 120 "$bin" "${common[@]}" --set train.max_steps=$((n + 2)) --resume auto >"$tmp/run2" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "the resumed run exited $rc" "$tmp/run2"
grep -q "resume: $tmp/ck/step_$n at step $n" "$tmp/run2" || fail "--resume auto did not pick step_$n" "$tmp/run2"
grep -q "training steps $((n + 1))\.\.$((n + 2)) " "$tmp/run2" && grep -q "^done: $((n + 2)) steps" "$tmp/run2" ||
  fail "the resumed run did not train steps $((n + 1))..$((n + 2))" "$tmp/run2"
pass "--resume auto continued from step $n to $((n + 2))"

echo "$passed passed, 0 failed"
