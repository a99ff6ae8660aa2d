#!/usr/bin/env bash
# A rank killed (SIGKILL, as by a node failure) while it writes a checkpoint
# loses nothing already saved (DESIGN §6, §7): the previous checkpoint stays
# complete, `latest` still names it, and `--resume auto` continues from it.
# DIFFTRON_KILL_DURING_SAVE=1:4 kills rank 1 at the deterministic worst moment:
# its HDF5 file is in step_4.tmp/, the manifest is not written yet.
# ZeRO-1 makes both ranks write a file, so the killed rank is a writer.
# Usage: checkpoint_crash.sh <difftron binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { echo "FAIL: $1"; echo "--- output ($2) ---"; cat "$2"; echo "$passed passed, 1 failed"; exit 1; }

"$bin" prepare --input /usr/share/common-licenses --output "$tmp/shards" >"$tmp/prepare" 2>&1 ||
  fail "prepare" "$tmp/prepare"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# configs/tiny.yaml with 2 layers and 64-token sequences: the same code paths, 4x less work per step.
common=(train "$src/configs/tiny.yaml" --set "data.datasets=[{path: $tmp/shards, weight: 1.0}]"
  --set model.n_layers=2 --set train.seq_len=64 --set train.warmup_steps=1 --set parallel.micro_batch=4
  --set "checkpoint.dir=$tmp/ck" --set checkpoint.every_steps=2 --set "train.run_dir=$tmp/run")

# 1. Two ranks, six steps; rank 1 dies while saving step 4.
DIFFTRON_KILL_DURING_SAVE=1:4 timeout 120 mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" "${common[@]}" \
  --set train.max_steps=6 --set parallel.zero=1 >"$tmp/crash" 2>&1
rc=$?
[ $rc -ne 124 ] || fail "the job hung after rank 1 died (killed by timeout)" "$tmp/crash"
[ $rc -ne 0 ] || fail "the job exited 0 although rank 1 was killed" "$tmp/crash"
grep -q "killing rank 1 during the save of step 4" "$tmp/crash" || fail "the kill hook did not fire" "$tmp/crash"
pass "the job went down (exit $rc) when rank 1 was killed during the save of step 4"

[ -f "$tmp/ck/step_2/manifest.yaml" ] || fail "step_2 is not complete" "$tmp/crash"
[ -d "$tmp/ck/step_4.tmp" ] && [ -f "$tmp/ck/step_4.tmp/shard_1.h5" ] ||
  fail "step_4.tmp/shard_1.h5 missing: the kill did not come after rank 1's write" "$tmp/crash"
[ ! -e "$tmp/ck/step_4.tmp/manifest.yaml" ] && [ ! -e "$tmp/ck/step_4" ] ||
  fail "the interrupted save of step 4 got a manifest or its final name" "$tmp/crash"
pass "step_2 is complete; step_4.tmp holds rank 1's file and no manifest"

latest=$(cat "$tmp/ck/latest" 2>/dev/null)
[ "$latest" = "step_2" ] || fail "latest is '$latest', expected step_2" "$tmp/crash"
pass "latest still names step_2"

# 2. One process resumes: it must pick step_2 (not the unfinished step_4.tmp),
# load it (the 2-rank ZeRO-1 checkpoint resharded onto one rank) and save step 4.
timeout 120 "$bin" "${common[@]}" --set train.max_steps=4 --resume auto >"$tmp/resume" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "the resumed run exited $rc" "$tmp/resume"
grep -q "resume: $tmp/ck/step_2 at step 2" "$tmp/resume" || fail "--resume auto did not pick step_2" "$tmp/resume"
pass "--resume auto loaded step_2: $(grep -o 'resume: .*' "$tmp/resume")"

[ -f "$tmp/ck/step_4/manifest.yaml" ] && [ ! -e "$tmp/ck/step_4.tmp" ] ||
  fail "the resumed run did not save a complete step_4 in place of step_4.tmp" "$tmp/resume"
[ "$(cat "$tmp/ck/latest")" = "step_4" ] || fail "latest is '$(cat "$tmp/ck/latest")', expected step_4" "$tmp/resume"
pass "the resumed run saved step_4 and latest names it"

echo "$passed passed, 0 failed"
