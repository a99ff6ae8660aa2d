#!/usr/bin/env bash
# A checkpoint read as untrusted input, and export's output path (issue 13):
# usage: bash checkpoint_security.sh <difftron-binary> <source-dir>
# A crafted manifest (a range or slice that disagrees with its tensor or its
# dataset, a file outside the checkpoint, a file without a checksum entry, a
# symlink or a device) makes inspect, export, generate and train --resume fail
# with one line: never a crash (exit 134, 139), a hang or foreign weights
# loaded. Export never writes through a symlink, replaces a device or writes
# into the checkpoint it reads, and a failed export leaves no temporary.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_checkpoint_security_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

PASSED=0
fail() { echo "FAIL: $*" >&2; echo "$PASSED passed, 1 failed"; exit 1; }
pass() { PASSED=$((PASSED + 1)); }
# A command that must be refused: a non-zero exit within 20 s (124: it hung),
# not a crash (>= 128: killed by a signal), and one error line on stderr
# (train logs its setup there first: then the error is its one last line).
refused() {
  local rc=0
  timeout 20 "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || rc=$?
  [ "$rc" -ne 0 ] || fail "'$*' exited 0, expected it refused"
  [ "$rc" -ne 124 ] || fail "'$*' hung (killed after 20 s)"
  [ "$rc" -lt 128 ] || fail "'$*' crashed (exit $rc): $(tail -3 "$WORK/err")"
  if [ "$2" = train ]; then
    [ "$(grep -c 'error' "$WORK/err")" -eq 1 ] && tail -1 "$WORK/err" | grep -q 'error: ' \
      || fail "'$*': expected one error line, last: $(tail -5 "$WORK/err")"
  else
    [ "$(wc -l <"$WORK/err")" -eq 1 ] \
      || fail "'$*' printed $(wc -l <"$WORK/err") lines on stderr, expected one: $(head -5 "$WORK/err")"
    grep -q 'error: ' "$WORK/err" || fail "'$*': no error line: $(cat "$WORK/err")"
  fi
}
# inspect, export and generate refuse `dir`, naming `what`; with a third
# argument, train --resume too (the unit tests resume every case: a trainer
# takes seconds to set up here).
all_refuse() {
  local dir=$1 what=$2
  refused "$BIN" inspect "$dir"
  grep -q -- "$what" "$WORK/err" || fail "inspect $dir: '$what' not in: $(cat "$WORK/err")"
  refused "$BIN" export "$dir" --format safetensors "$WORK/refused.safetensors"
  [ ! -e "$WORK/refused.safetensors" ] || fail "export of $dir wrote its output"
  refused "$BIN" generate "$dir" --prompt "the " --max-new-tokens 2 --temperature 0
  [ $# -lt 3 ] && return
  refused "$BIN" train "$WORK/tiny.yaml" --resume "$dir" --set train.max_steps=3 \
    --set checkpoint.dir="$WORK/resumed" --set train.run_dir="$WORK/run_resumed"
  grep -q -- "$what" "$WORK/err" || fail "train --resume $dir: '$what' not in: $(cat "$WORK/err")"
}
# A copy of the checkpoint as $WORK/<name>/step_00000002 with `sed -e <script>` applied to its manifest.
crafted() {
  local name=$1 script=$2
  mkdir -p "$WORK/$name"
  cp -r "$WORK/ckpt/step_00000002" "$WORK/$name/"
  sed -i -e "$script" "$WORK/$name/step_00000002/manifest.yaml"
  cmp -s "$WORK/ckpt/step_00000002/manifest.yaml" "$WORK/$name/step_00000002/manifest.yaml" && fail "crafted $name: sed changed nothing"
  echo "$WORK/$name/step_00000002"
}

# ---- a tiny checkpoint: 2 steps of a 1-layer model, saved at step 2
"$BIN" prepare --input /usr/share/common-licenses --output "$WORK/shards" >/dev/null 2>"$WORK/log" \
  || fail "prepare failed: $(cat "$WORK/log")"
cat >"$WORK/tiny.yaml" <<EOF
model: {vocab_size: 320, d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 2, ffn_hidden: 88}
train: {seq_len: 16, global_batch_size: 4, max_steps: 2, lr: 1.0e-3, warmup_steps: 1, log_every: 1, run_dir: $WORK/run}
data: {datasets: [{path: $WORK/shards}]}
parallel: {micro_batch_size: 4}
checkpoint: {dir: $WORK/ckpt, every_steps: 2}
EOF
"$BIN" train "$WORK/tiny.yaml" >/dev/null 2>"$WORK/log" || fail "train failed: $(cat "$WORK/log")"
C=$WORK/ckpt/step_00000002
[ -f "$C/manifest.yaml" ] && [ -f "$C/shard_0.h5" ] || fail "no checkpoint written"
"$BIN" inspect "$C" >/dev/null 2>"$WORK/err" || fail "the intact checkpoint does not inspect: $(cat "$WORK/err")"
EMBED='name: embed.weight, kind: param, shape: \[320, 32\], dtype: f32'
grep -q "$EMBED, slice: \[0, 320, 0, 32\], range: \[0, 10240\], file: shard_0.h5" "$C/manifest.yaml" \
  || fail "unexpected manifest layout: $(grep -m1 embed.weight "$C/manifest.yaml")"
pass

# ---- a range or slice that disagrees with the tensor's shape or its dataset (item 7)
all_refuse "$(crafted range_past_slice "s/\($EMBED, slice: [^]]*\], range:\) \[0, 10240\]/\1 [0, 20480]/")" \
  'range \[0, 20480\]'
all_refuse "$(crafted slice_past_shape "s/\($EMBED\), slice: \[0, 320, 0, 32\], range: \[0, 10240\]/\1, slice: [0, 640, 0, 32], range: [0, 20480]/")" \
  'slice \[0, 640, 0, 32\]'
all_refuse "$(crafted range_short_of_dataset "s/\($EMBED, slice: [^]]*\], range:\) \[0, 10240\]/\1 [0, 5120]/")" \
  '/param/embed.weight holds 10240' resume
all_refuse "$(crafted zero_dim "s/\(name: embed.weight, kind: param, shape:\) \[320, 32\]/\1 [0, 32]/")" \
  'shape \[0, 32\]'
pass

# ---- names outside the checkpoint, files without a checksum, symlinks, devices (item 8)
mkdir -p "$WORK/other" && cp -r "$C" "$WORK/other/"
D=$(crafted foreign 's|file: shard_0.h5|file: ../../other/step_00000002/shard_0.h5|; /- {name: shard_0.h5, crc32:/d')
all_refuse "$D" 'plain file name' resume
all_refuse "$(crafted no_checksum '/- {name: shard_0.h5, crc32:/d')" 'shard_0.h5.*no checksum entry'
D=$(crafted passwd 's|^files:$|files:\n  - {name: ../../../../../../../../../../etc/passwd, crc32: 1, bytes: 1}|')
refused "$BIN" inspect "$D"
grep -q 'plain file name' "$WORK/err" || fail "passwd: $(cat "$WORK/err")"
! grep -q "$(stat -c %s /etc/passwd) bytes" "$WORK/err" || fail "the size of /etc/passwd leaked: $(cat "$WORK/err")"
D=$(crafted dev_zero 's|^files:$|files:\n  - {name: ../../../../../../../../../../dev/zero, crc32: 1, bytes: 1}|')
refused "$BIN" inspect "$D"
D=$(crafted zero_link 's|^files:$|files:\n  - {name: zero.h5, crc32: 1, bytes: 1}|')
ln -s /dev/zero "$D/zero.h5"
refused "$BIN" inspect "$D"
grep -q "$D/zero.h5: not a regular file" "$WORK/err" || fail "zero.h5 -> /dev/zero: $(cat "$WORK/err")"
mkdir -p "$WORK/symlinked" && cp -r "$C" "$WORK/symlinked/"
D=$WORK/symlinked/step_00000002
mv "$D/shard_0.h5" "$WORK/outside.h5" && ln -s "$WORK/outside.h5" "$D/shard_0.h5"
all_refuse "$D" 'shard_0.h5: not a regular file' resume
pass

# ---- export never writes through what is already at its output (item 9)
# A failed export removes its temporary: lm_head.weight, the last tensor written, disagrees with its dataset.
D=$(crafted late_failure 's/\(name: lm_head.weight, kind: param, .*range:\) \[0, 10240\]/\1 [0, 5120]/')
mkdir "$WORK/exports"
refused "$BIN" export "$D" --format safetensors "$WORK/exports/m.safetensors"
grep -q 'lm_head.weight' "$WORK/err" || fail "late failure: $(cat "$WORK/err")"
[ -z "$(ls -A "$WORK/exports")" ] || fail "a failed export left: $(ls -A "$WORK/exports")"
pass

# A stray OUT.tmp symlink is not followed; OUT a symlink, fifo, device or
# directory is refused and left as it was; so is OUT inside the checkpoint read.
cp "$C/shard_0.h5" "$WORK/shard_0.h5.orig"
echo "keep me" >"$WORK/victim"
OUT=$WORK/model.safetensors
ln -s "$WORK/victim" "$OUT.tmp"
"$BIN" export "$C" --format safetensors "$OUT" >/dev/null 2>"$WORK/err" \
  || fail "export with a stray $OUT.tmp symlink failed: $(cat "$WORK/err")"
[ "$(cat "$WORK/victim")" = "keep me" ] && [ -L "$OUT.tmp" ] || fail "export wrote through the symlink $OUT.tmp"
[ -f "$OUT" ] && [ ! -L "$OUT" ] || fail "export did not write $OUT"
ln -s "$WORK/victim" "$WORK/link.safetensors"
refused "$BIN" export "$C" --format safetensors "$WORK/link.safetensors"
grep -q "$WORK/link.safetensors.*not a regular file" "$WORK/err" || fail "symlink OUT: $(cat "$WORK/err")"
[ -L "$WORK/link.safetensors" ] && [ "$(cat "$WORK/victim")" = "keep me" ] || fail "export replaced the symlink OUT"
mkfifo "$WORK/fifo"
refused "$BIN" export "$C" --format safetensors "$WORK/fifo"
[ -p "$WORK/fifo" ] || fail "export replaced a fifo"
# A device node like /dev/full, made here (root only) so that a regression cannot replace the real one.
if mknod "$WORK/full" c 1 7 2>/dev/null; then
  refused "$BIN" export "$C" --format safetensors "$WORK/full"
  [ -c "$WORK/full" ] || fail "export replaced a device node"
fi
mkdir "$WORK/dir.safetensors"
refused "$BIN" export "$C" --format safetensors "$WORK/dir.safetensors"
ln -s "$C" "$WORK/alias"
for out in "$C/shard_0.h5" "$C/manifest.yaml" "$C/new.safetensors" "$C/../step_00000002/shard_0.h5" \
           "$WORK/alias/shard_0.h5" "$WORK/alias/new.safetensors"; do
  refused "$BIN" export "$C" --format safetensors "$out"
  grep -q "inside the checkpoint" "$WORK/err" || fail "export to $out: $(cat "$WORK/err")"
done
refused "$BIN" export "$WORK/ckpt" --format safetensors "$C/shard_0.h5"
cmp -s "$C/shard_0.h5" "$WORK/shard_0.h5.orig" || fail "export destroyed the checkpoint it read"
[ ! -e "$C/new.safetensors" ] && [ -z "$(find "$C" -name '*.tmp*')" ] || fail "export left files in the checkpoint"
"$BIN" inspect "$C" >/dev/null 2>"$WORK/err" || fail "the checkpoint no longer inspects: $(cat "$WORK/err")"
pass

echo "$PASSED passed, 0 failed"
