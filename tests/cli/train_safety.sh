#!/usr/bin/env bash
# No trained step is lost and no run is overwritten (issue 13, items 1-3, 5, 6,
# 13, 14). One process, a 2-layer model, one micro-batch of 4×64 tokens a step.
#  1. the last step is saved whatever every_steps is (max_steps and max_tokens);
#  2. a fresh run refuses a directory holding another run (--force replaces
#     it); a resumed run keeps metrics.jsonl free of repeated steps;
#  3. --resume auto skips a damaged newest checkpoint, never deletes one, and
#     stops when there are only damaged ones;
#  5. a full disk during a save: one line, no HDF5 stack, no crash, the
#     temporary removed, the previous checkpoint kept, a non-zero exit (or,
#     with checkpoint.retry_failed_save, training goes on); a full run
#     directory is an error, not empty files and exit 0;
#  6. ctrl-C finishes the step and saves; a second ctrl-C exits at once;
# 13. a resume that changes the seed or the batch shape is refused, a changed
#     step budget is noted;
# 14. a manifest claiming a step past the end is refused; a finished run has
#     nothing to train.
# Usage: train_safety.sh <difftron binary> <source dir>
source "$(dirname "$0")/lib/training.bash" "$@"
# The one error line of a failed run; none of HDF5's diagnostics, no crash.
one_error() {  # FILE RC WHAT
  [ "$2" -ne 0 ] || fail "$3: exit 0" "$1"
  [ "$2" -lt 128 ] || fail "$3: exit $2 (a crash)" "$1"
  [ "$(grep -cE '^difftron [a-z]+: (internal )?error' "$1")" -eq 1 ] || fail "$3: expected exactly one error line" "$1"
  ! grep -q 'HDF5' "$1" || fail "$3: HDF5 diagnostics printed" "$1"
}
steps_in() { grep -o '"step": [0-9]*' "$1" | awk '{print $2}' | tr '\n' ' '; }

# run DIR [ARGS...]: train into DIR (run_dir DIR, checkpoints DIR/ck).
run() {
  local dir=$1
  shift
  timeout 120 "$bin" train "$src/configs/tiny.yaml" --set "data.datasets=[{path: $tmp/shards, weight: 1.0}]" \
    --set model.n_layers=2 --set train.seq_len=64 --set train.global_batch_size=4 --set parallel.micro_batch_size=4 \
    --set train.warmup_steps=1 --set train.log_every=1 --set "train.run_dir=$dir" --set "checkpoint.dir=$dir/ck" \
    --set checkpoint.keep_last=3 "$@"
}

# 1. The last step is saved although 5 and 6 are not multiples of every_steps.
run "$tmp/a" --set train.max_steps=5 --set checkpoint.every_steps=100 >"$tmp/out" 2>&1 || fail "train 5 steps" "$tmp/out"
[ -f "$tmp/a/ck/step_00000005/manifest.yaml" ] || fail "no checkpoint of the last step (5, every_steps 100)" "$tmp/out"
pass "max_steps 5, every_steps 100: step_00000005 saved"
run "$tmp/t" --set train.max_steps=null --set train.max_tokens=1300 --set checkpoint.every_steps=4 >"$tmp/out" 2>&1 ||
  fail "train 1300 tokens" "$tmp/out"
[ -f "$tmp/t/ck/step_00000006/manifest.yaml" ] || fail "no checkpoint of the last step (max_tokens 1300 = 6 steps)" "$tmp/out"
pass "max_tokens 1300 (6 steps), every_steps 4: step_00000006 saved"

# 2. A fresh run into a directory that holds a run refuses and changes nothing.
before=$(cat "$tmp/a/metrics.jsonl" "$tmp/a/ck/step_00000005/manifest.yaml" | md5sum)
run "$tmp/a" --set train.max_steps=5 >"$tmp/out" 2>&1
rc=$?
one_error "$tmp/out" $rc "a fresh run into a used directory"
grep -q -- "--resume auto" "$tmp/out" && grep -q -- "--force" "$tmp/out" ||
  fail "the refusal does not suggest --resume auto or --force" "$tmp/out"
[ "$before" = "$(cat "$tmp/a/metrics.jsonl" "$tmp/a/ck/step_00000005/manifest.yaml" | md5sum)" ] ||
  fail "the refused run changed metrics.jsonl or step_00000005" "$tmp/out"
pass "a fresh run into a used run/checkpoint directory refuses with one line and writes nothing"
run "$tmp/a" --set train.max_steps=3 --force >"$tmp/out" 2>&1 || fail "--force" "$tmp/out"
[ -f "$tmp/a/ck/step_00000003/manifest.yaml" ] && [ ! -e "$tmp/a/ck/step_00000005" ] && [ "$(steps_in "$tmp/a/metrics.jsonl")" = "1 2 3 " ] ||
  fail "--force did not replace the previous run (metrics steps: $(steps_in "$tmp/a/metrics.jsonl"))" "$tmp/out"
pass "--force replaces the previous run (its checkpoints and metrics)"
run "$tmp/m" --set train.max_steps=5 --set checkpoint.every_steps=2 >"$tmp/out" 2>&1 || fail "train 5 steps" "$tmp/out"
run "$tmp/m" --set train.max_steps=6 --resume "$tmp/m/ck/step_00000002" >"$tmp/out" 2>&1 || fail "resume from step_00000002" "$tmp/out"
[ "$(steps_in "$tmp/m/metrics.jsonl")" = "1 2 3 4 5 6 " ] ||
  fail "metrics.jsonl steps after resuming step_00000002: $(steps_in "$tmp/m/metrics.jsonl"), expected 1..6 once each" "$tmp/out"
pass "resuming step_00000002 of a 5-step run: metrics.jsonl holds steps 1..6 once each"

# 3. The newest checkpoint damaged (manifest deleted): resume auto takes the
#    older one, and neither retention nor the new save deletes the damaged one.
run "$tmp/d" --set train.max_steps=4 --set checkpoint.every_steps=2 >"$tmp/out" 2>&1 || fail "train 4 steps" "$tmp/out"
rm "$tmp/d/ck/step_00000004/manifest.yaml"
damaged=$(md5sum <"$tmp/d/ck/step_00000004/shard_0.h5")
run "$tmp/d" --set train.max_steps=6 --set checkpoint.every_steps=2 --set checkpoint.keep_last=1 --resume auto \
  >"$tmp/out" 2>&1 ||
  fail "resume auto with a damaged step_00000004" "$tmp/out"
grep -q "resume: .*step_00000002 at step 2" "$tmp/out" || fail "did not resume from step_00000002" "$tmp/out"
kept=0
for f in "$tmp/d/ck"/*/shard_0.h5; do [ "$(md5sum <"$f")" = "$damaged" ] && kept=1; done
[ $kept -eq 1 ] || fail "the damaged step_00000004's weights were deleted (by the new step_00000004 or by keep_last 1)" "$tmp/out"
pass "resume auto skips a damaged newest checkpoint and keeps it"
run "$tmp/e" --set train.max_steps=2 >"$tmp/out" 2>&1 || fail "train 2 steps" "$tmp/out"
rm "$tmp/e/ck/step_00000002/manifest.yaml"
run "$tmp/e" --set train.max_steps=4 --resume auto >"$tmp/out" 2>&1
rc=$?
one_error "$tmp/out" $rc "resume auto with only a damaged checkpoint"
grep -q "damaged" "$tmp/out" && [ -f "$tmp/e/ck/step_00000002/shard_0.h5" ] ||
  fail "expected a refusal naming the damaged checkpoint, which must be kept" "$tmp/out"
pass "resume auto with only damaged checkpoints stops with one line and keeps them"

# 13. What a resume may change.
run "$tmp/a" --set train.max_steps=4 --set train.seed=7 --resume auto >"$tmp/out" 2>&1
rc=$?
one_error "$tmp/out" $rc "resume with another seed"
grep -q "train.seed is 1234 in the checkpoint and 7 in the config" "$tmp/out" || fail "seed change not named" "$tmp/out"
run "$tmp/a" --set train.max_steps=4 --set train.global_batch_size=8 --resume auto >"$tmp/out" 2>&1
rc=$?
one_error "$tmp/out" $rc "resume with another batch size"
grep -q "train.global_batch_size is 4 in the checkpoint and 8" "$tmp/out" || fail "batch size change not named" "$tmp/out"
pass "a resume with another seed or batch size is refused with one line naming the key"
run "$tmp/a" --set train.max_steps=4 --set parallel.micro_batch_size=2 --resume auto >"$tmp/out" 2>&1 ||
  fail "resume with a longer budget and smaller micro-batches" "$tmp/out"
grep -q "changed since the checkpoint: train.max_steps: 3 -> 4" "$tmp/out" || fail "the new step budget is not noted" "$tmp/out"
pass "a resume may change the step budget (noted) and the micro-batch size"

# 14. A manifest claiming step 999 of a 4-step run; a finished run.
sed -i 's/^step: 4$/step: 999/' "$tmp/a/ck/step_00000004/manifest.yaml"
run "$tmp/a" --set train.max_steps=4 --resume "$tmp/a/ck/step_00000004" >"$tmp/out" 2>&1
rc=$?
one_error "$tmp/out" $rc "a manifest at step 999 of 4"
grep -q "past the end of training" "$tmp/out" || fail "step 999 of 4 not refused" "$tmp/out"
run "$tmp/m" --set train.max_steps=6 --resume auto >"$tmp/out" 2>&1 || fail "resume a finished run" "$tmp/out"
grep -q "nothing to train" "$tmp/out" && ! grep -q "training steps" "$tmp/out" || fail "a finished run trained" "$tmp/out"
pass "a checkpoint past the end is refused; a finished run has nothing to train"

# A checkpoint directory that cannot be created fails before the first step,
# not at the first save.
run "$tmp/p" --set train.max_steps=2 --set checkpoint.dir=/proc/difftron_ck >"$tmp/out" 2>&1
rc=$?
one_error "$tmp/out" $rc "an unwritable checkpoint.dir"
grep -q "checkpoint.dir /proc/difftron_ck: cannot create it" "$tmp/out" && ! grep -q "^step 1/" "$tmp/out" ||
  fail "an unwritable checkpoint.dir is not refused before training" "$tmp/out"
pass "an unwritable checkpoint.dir is refused before the first step"

# 6. ctrl-C: the first finishes the step and saves (exit 0), the second exits at once.
# The signal goes to difftron itself (not its `timeout` wrapper or the subshell).
trainer_pid() { pgrep -f "^$bin train .*run_dir=$tmp/${1:-s} " | head -1; }
run "$tmp/s" --set train.max_steps=100000 >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^step 2/' "$tmp/out" && break; sleep 0.1; done
kill -INT "$(trainer_pid)"
wait $pid
rc=$?
pid=""
[ $rc -eq 0 ] || fail "ctrl-C: exit $rc, expected 0 after saving" "$tmp/out"
step=$(sed -n 's/^stopping after step \([0-9]*\) on SIGINT.*/\1/p' "$tmp/out")
[ -n "$step" ] && [ -f "$tmp/s/ck/$(printf 'step_%08d' "$step")/manifest.yaml" ] || fail "ctrl-C saved no checkpoint" "$tmp/out"
pass "ctrl-C finished step $step, saved it and exited 0"
# The second ctrl-C comes during a long step (512 sequences, seconds):
# the process must exit at once, without finishing the step or saving.
run "$tmp/s2" --set train.max_steps=100000 --set train.global_batch_size=512 >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^step 1/' "$tmp/out" && break; sleep 0.1; done
victim=$(trainer_pid s2)
kill -INT "$victim"
sleep 0.3
kill -INT "$victim"
wait $pid
rc=$?
pid=""
[ $rc -eq 130 ] && grep -q "second SIGINT" "$tmp/out" && ! grep -q "^stopping after step" "$tmp/out" ||
  fail "a second ctrl-C: exit $rc, expected 130 with no step finished and nothing saved" "$tmp/out"
pass "a second ctrl-C exits at once (130)"

# 5. A full disk, on a 9 MB tmpfs in a private mount namespace: step_00000002 (5.7 MB)
#    fits, step_00000004 does not.
if ! unshare -rm true 2>/dev/null && ! unshare -m true 2>/dev/null; then
  echo "SKIP: the disk-full cases need a private mount namespace (unshare -m), not available here"
  echo "$passed passed"
  exit 77
fi
cat >"$tmp/full.sh" <<EOF
mount -t tmpfs -o size=\$1 tmpfs "$tmp/mnt" || exit 99
shift
"\$@"
rc=\$?
echo "exit \$rc"
ls -R "$tmp/mnt"
EOF
mkdir -p "$tmp/mnt"
in_tmpfs() { if unshare -rm true 2>/dev/null; then unshare -rm bash "$tmp/full.sh" "$@"; else unshare -m bash "$tmp/full.sh" "$@"; fi; }
export -f run
export bin src tmp
in_tmpfs 9m bash -c 'run "$tmp/mnt" --set train.max_steps=6 --set checkpoint.every_steps=2' >"$tmp/out" 2>&1
rc=$(sed -n 's/^exit //p' "$tmp/out")
one_error "$tmp/out" "$rc" "a full disk during the save of step 4"
grep -q "cannot save step 4" "$tmp/out" || fail "the error does not name the failed save" "$tmp/out"
grep -q "step_00000002:" "$tmp/out" && grep -q "manifest.yaml" "$tmp/out" && ! grep -q "step_00000004" <(sed -n '/^exit/,$p' "$tmp/out") ||
  fail "expected step_00000002 complete and no step_00000004 or step_00000004.tmp left" "$tmp/out"
pass "disk full while saving step 4: one line, exit $rc, step_00000004.tmp removed, step_00000002 kept"
in_tmpfs 9m bash -c 'run "$tmp/mnt" --set train.max_steps=5 --set checkpoint.every_steps=2 --set checkpoint.retry_failed_save=true' \
  >"$tmp/out" 2>&1
rc=$(sed -n 's/^exit //p' "$tmp/out")
grep -q "training continues and tries again" "$tmp/out" && grep -q "^step 5/5" "$tmp/out" ||
  fail "retry_failed_save: training did not go on after the failed save of step 4" "$tmp/out"
one_error "$tmp/out" "$rc" "retry_failed_save with the final save failing"
grep -q "the save of the final step 5 failed; the newest checkpoint is step_00000002" "$tmp/out" ||
  fail "the failed final save is not reported" "$tmp/out"
pass "retry_failed_save: training goes on, and a failed final save still exits $rc"
in_tmpfs 4k bash -c 'run "$tmp/mnt" --set train.max_steps=2 --set "checkpoint.dir=$tmp/ck_full"' >"$tmp/out" 2>&1
rc=$(sed -n 's/^exit //p' "$tmp/out")
one_error "$tmp/out" "$rc" "a full run directory"
grep -q "cannot write .*No space left on device" "$tmp/out" || fail "the full run directory is not named" "$tmp/out"
pass "a full run directory: one line naming the file, exit $rc"
finish
