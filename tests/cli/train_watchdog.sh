#!/usr/bin/env bash
# A rank that stops making progress ends the job (issue 13, item 15), and the
# stop message names the signal a rank received (item 14).
# A. Two ranks, runtime.step_timeout_s 3; rank 1 is frozen with SIGSTOP (as a
#    stuck node would be). Rank 0's watchdog must end the job within the
#    timeout plus teardown, printing one line that names rank 0, the step and
#    the phase it was in, exit non-zero, and leave no process behind; a resume
#    then continues from the last checkpoint.
# B. SIGTERM to rank 1 only: the job saves and stops, and rank 0's message
#    names SIGTERM (it used to print its own "signal 0").
# Usage: train_watchdog.sh <difftron binary> <source dir>
source "$(dirname "$0")/lib/training.bash" "$@"
cleanup() {
  pkill -CONT -f "^$bin train .*$tmp" 2>/dev/null
  pkill -KILL -f "^$bin train .*$tmp" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

train=(train "$src/configs/tiny.yaml" --set "data.datasets=[{path: $tmp/shards, weight: 1.0}]"
  --set model.n_layers=2 --set train.seq_len=64 --set train.global_batch_size=4 --set parallel.micro_batch_size=2
  --set train.warmup_steps=1 --set train.log_every=1 --set "train.run_dir=$tmp/run" --set "checkpoint.dir=$tmp/run/ck"
  --set checkpoint.every_steps=2 --set train.max_steps=100000 --set runtime.step_timeout_s=3)
# The pid of world rank $1 of the job writing into $tmp.
rank_pid() {
  for p in $(pgrep -f "^$bin train .*$tmp"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
  done
}
wait_for_step() {  # N FILE
  for _ in $(seq 900); do grep -qE "^(\[rank [0-9]+\] )?step $1/" "$2" && return 0; sleep 0.1; done
  fail "step $1 never came" "$2"
}

# A. Freeze rank 1 at step 3.
timeout 300 mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" "${train[@]}" >"$tmp/a" 2>&1 &
pid=$!
wait_for_step 3 "$tmp/a"
victim=$(rank_pid 1)
[ -n "$victim" ] || fail "could not find rank 1's process" "$tmp/a"
kill -STOP "$victim"
stopped=$(date +%s)
wait $pid
rc=$?
pid=""
took=$(($(date +%s) - stopped))
[ $rc -ne 124 ] || fail "the job hung with rank 1 stopped (killed by timeout after 300 s)" "$tmp/a"
[ $rc -ne 0 ] || fail "the job exited 0 with rank 1 stopped" "$tmp/a"
[ $took -le 60 ] || fail "the job took $took s to end after rank 1 stopped (timeout 3 s)" "$tmp/a"
line=$(grep "watchdog on rank 0" "$tmp/a")
[ "$(grep -c "watchdog on rank" "$tmp/a")" -eq 1 ] && [ -n "$line" ] ||
  fail "expected one watchdog line, from rank 0" "$tmp/a"
echo "$line" | grep -qE "step [0-9]+ made no progress in 3 s \(runtime.step_timeout_s\); last phase: .+; ending the job" ||
  fail "the watchdog line does not name the step, the timeout and the phase" "$tmp/a"
sleep 1
[ -z "$(pgrep -f "^$bin train .*$tmp")" ] || fail "a rank outlived the job" "$tmp/a"
pass "rank 1 stopped: rank 0's watchdog ended the job in $took s (exit $rc): ${line#*: }"

timeout 300 mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" "${train[@]}" --resume auto >"$tmp/b" 2>&1 &
pid=$!
for _ in $(seq 900); do grep -q "training steps" "$tmp/b" && break; sleep 0.1; done
at=$(sed -n 's/.*resume: .*step_[0-9]* at step \([0-9]*\) .*/\1/p' "$tmp/b")
[ -n "$at" ] || fail "the restarted job did not resume" "$tmp/b"
wait_for_step $((at + 2)) "$tmp/b"
pass "the restarted job resumed with --resume auto at step $at and trained on"

# B. SIGTERM to rank 1 alone.
kill -TERM "$(rank_pid 1)"
wait $pid
rc=$?
pid=""
[ $rc -eq 0 ] || fail "SIGTERM to rank 1: exit $rc, expected 0 after saving" "$tmp/b"
grep -qE "stopping after step [0-9]+ on SIGTERM" "$tmp/b" && ! grep -q "signal 0" "$tmp/b" ||
  fail "rank 0's stop message does not name SIGTERM" "$tmp/b"
pass "SIGTERM to rank 1: the job saved and stopped; rank 0 names SIGTERM"
finish
