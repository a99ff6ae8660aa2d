#!/usr/bin/env bash
# Checkpoints survive the ways a run dies (DESIGN §6, §7).
# A. A rank killed (SIGKILL, as by a node failure) while it writes a checkpoint
#    loses nothing already saved: the previous checkpoint stays complete,
#    `latest` still names it, and `--resume auto` continues from it.
#    DIFFTRON_KILL_DURING_SAVE=1:4 kills rank 1 at the deterministic worst
#    moment: its HDF5 file is in step_00000004.tmp/, the manifest is not written yet.
#    ZeRO-1 makes both ranks write a file, so the killed rank is a writer.
# B. SIGTERM (what Slurm sends before preemption) makes a run finish its step,
#    save and exit 0 promptly; `--resume auto` continues from that step.
# Usage: checkpoint_crash.sh <difftron binary> <source dir>
source "$(dirname "$0")/lib/training.bash" "$@"
# configs/tiny.yaml with 2 layers and 64-token sequences: the same code paths, 4x less work per step.
tiny=(train "$src/configs/tiny.yaml" --set "data.datasets=[{path: $tmp/shards, weight: 1.0}]"
  --set model.n_layers=2 --set train.seq_len=64 --set train.warmup_steps=1 --set parallel.micro_batch_size=4)

# A1. Two ranks, six steps, a checkpoint every 2; rank 1 dies while saving step 4.
common=("${tiny[@]}" --set "checkpoint.dir=$tmp/ck" --set checkpoint.every_steps=2 --set "train.run_dir=$tmp/run")
DIFFTRON_KILL_DURING_SAVE=1:4 timeout 120 mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" "${common[@]}" \
  --set train.max_steps=6 --set parallel.zero=1 >"$tmp/crash" 2>&1
rc=$?
[ $rc -ne 124 ] || fail "the job hung after rank 1 died (killed by timeout)" "$tmp/crash"
[ $rc -ne 0 ] || fail "the job exited 0 although rank 1 was killed" "$tmp/crash"
grep -q "killing rank 1 during the save of step 4" "$tmp/crash" || fail "the kill hook did not fire" "$tmp/crash"
pass "the job went down (exit $rc) when rank 1 was killed during the save of step 4"

[ -f "$tmp/ck/step_00000002/manifest.yaml" ] || fail "step_00000002 is not complete" "$tmp/crash"
[ -d "$tmp/ck/step_00000004.tmp" ] && [ -f "$tmp/ck/step_00000004.tmp/shard_1.h5" ] ||
  fail "step_00000004.tmp/shard_1.h5 missing: the kill did not come after rank 1's write" "$tmp/crash"
[ ! -e "$tmp/ck/step_00000004.tmp/manifest.yaml" ] && [ ! -e "$tmp/ck/step_00000004" ] ||
  fail "the interrupted save of step 4 got a manifest or its final name" "$tmp/crash"
pass "step_00000002 is complete; step_00000004.tmp holds rank 1's file and no manifest"

latest=$(cat "$tmp/ck/latest" 2>/dev/null)
[ "$latest" = "step_00000002" ] || fail "latest is '$latest', expected step_00000002" "$tmp/crash"
pass "latest still names step_00000002"

# A2. One process resumes: it must pick step_00000002 (not the unfinished step_00000004.tmp),
# load it (the 2-rank ZeRO-1 checkpoint resharded onto one rank) and save step 4.
timeout 120 "$bin" "${common[@]}" --set train.max_steps=4 --resume auto >"$tmp/resume" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "the resumed run exited $rc" "$tmp/resume"
grep -q "resume: $tmp/ck/step_00000002 at step 2" "$tmp/resume" || fail "--resume auto did not pick step_00000002" "$tmp/resume"
pass "--resume auto loaded step_00000002: $(grep -o 'resume: .*' "$tmp/resume")"

[ -f "$tmp/ck/step_00000004/manifest.yaml" ] && [ ! -e "$tmp/ck/step_00000004.tmp" ] ||
  fail "the resumed run did not save a complete step_00000004 in place of step_00000004.tmp" "$tmp/resume"
[ "$(cat "$tmp/ck/latest")" = "step_00000004" ] || fail "latest is '$(cat "$tmp/ck/latest")', expected step_00000004" "$tmp/resume"
pass "the resumed run saved step_00000004 and latest names it"

# B1. One process, a long run without periodic saves (the only checkpoint is the
# one the signal asks for), stopped by SIGTERM once it has logged 3 steps.
common=("${tiny[@]}" --set "checkpoint.dir=$tmp/ck_term" --set checkpoint.every_steps=0
  --set train.log_every=1 --set "train.run_dir=$tmp/run_term")
"$bin" "${common[@]}" --set train.max_steps=200 >"$tmp/term1" 2>&1 &
pid=$!
for _ in $(seq 1200); do  # up to 120 s for 3 steps
  [ -f "$tmp/run_term/metrics.jsonl" ] && [ "$(wc -l <"$tmp/run_term/metrics.jsonl")" -ge 3 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "the run ended before it was signalled" "$tmp/term1"
kill -TERM "$pid"
# It has one step to finish and a checkpoint to write: 60 s is a hang, not slowness.
for _ in $(seq 600); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -9 "$pid"
  fail "the run did not exit within 60 s of SIGTERM" "$tmp/term1"
fi
wait "$pid"
rc=$?
pid=""
[ $rc -eq 0 ] || fail "the signalled run exited $rc, expected 0" "$tmp/term1"
pass "the run exited 0 after SIGTERM"

n=$(sed -n 's/^stopping after step \([0-9]*\) on SIGTERM.*/\1/p' "$tmp/term1")
[ -n "$n" ] || fail "no 'stopping after step N on SIGTERM' line" "$tmp/term1"
[ "$n" -ge 3 ] && [ "$n" -lt 200 ] || fail "stopped after step $n, expected 3 <= N < 200" "$tmp/term1"
sn=$(printf 'step_%08d' "$n")
[ -f "$tmp/ck_term/$sn/manifest.yaml" ] && [ "$(cat "$tmp/ck_term/latest")" = "$sn" ] ||
  fail "no complete $sn named by latest" "$tmp/term1"
pass "stopped after step $n and saved $sn"

# B2. --resume auto continues from step N for two more steps.
timeout 120 "$bin" "${common[@]}" --set train.max_steps=$((n + 2)) --resume auto >"$tmp/term2" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "the resumed run exited $rc" "$tmp/term2"
grep -q "resume: $tmp/ck_term/$sn at step $n" "$tmp/term2" || fail "--resume auto did not pick $sn" "$tmp/term2"
grep -q "training steps $((n + 1))\.\.$((n + 2)) " "$tmp/term2" && grep -q "^done: $((n + 2)) steps" "$tmp/term2" ||
  fail "the resumed run did not train steps $((n + 1))..$((n + 2))" "$tmp/term2"
pass "--resume auto continued from step $n to $((n + 2))"

finish
