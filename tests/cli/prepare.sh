#!/usr/bin/env bash
# difftron prepare as a user runs it: usage: bash prepare.sh <difftron-binary> <source-dir>
# Writes a small text corpus, prepares it, and checks the shard, the refusal
# to overwrite without --force, bad JSON lines with and without --skip-bad,
# gzip JSON lines, --separator, thread-count independence, the progress and
# summary lines, option errors and --help; then that a --force run which fails
# or is interrupted (SIGINT, SIGTERM) leaves the previous dataset as it was,
# that train refuses a dataset without its manifest (an unfinished prepare),
# and that a truncated shard is one line on stderr.
set -euo pipefail
BIN=$1
WORK=$(mktemp -d /tmp/dt_cli_prepare_XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# Runs a command that must fail with exit code $1 and exactly one line on stderr.
expect_one_line_error() {
  local want_rc=$1; shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq "$want_rc" ] || fail "'$*' exited $rc, expected $want_rc; stderr: $(cat "$WORK/err")"
  local errs
  errs=$(grep -c 'error' "$WORK/err" || true)
  [ "$errs" -eq 1 ] || fail "'$*' printed $errs error lines, expected one: $(cat "$WORK/err")"
}

mkdir -p "$WORK/text/sub"
printf 'The first document.\nIt has two lines.\n' > "$WORK/text/a.txt"
printf 'A second document, one directory down.' > "$WORK/text/sub/b.txt"
printf 'Third: non-ASCII caf\xc3\xa9 and a stray byte \xff.' | gzip > "$WORK/text/c.txt.gz"

"$BIN" prepare --input "$WORK/text" --output "$WORK/out1" 2>"$WORK/log" >"$WORK/summary" \
  || fail "prepare failed: $(cat "$WORK/log")"
[ -f "$WORK/out1/shard_00000.h5" ] || fail "no shard written"
ls "$WORK/out1" | grep -q '\.tmp' && fail "a .tmp file was left behind"
grep -q '3 documents' "$WORK/summary" || fail "summary does not count 3 documents: $(cat "$WORK/summary")"
if command -v h5dump >/dev/null; then
  h5dump -a /format "$WORK/out1/shard_00000.h5" | grep -q '"difftron-tokens"' || fail "format attribute missing"
  h5dump -a /num_docs "$WORK/out1/shard_00000.h5" | grep -q '(0): 3' || fail "num_docs is not 3"
fi

expect_one_line_error 1 "$BIN" prepare --input "$WORK/text" --output "$WORK/out1"
grep -q 'force' "$WORK/err" || fail "refusal does not mention --force: $(cat "$WORK/err")"
"$BIN" prepare --input "$WORK/text" --output "$WORK/out1" --force >/dev/null 2>&1 || fail "--force did not overwrite"

# An output directory that cannot be written (under /proc, even for root): one line
# naming it, not difftron's source file, and no HDF5 noise after it.
expect_one_line_error 1 "$BIN" prepare --input "$WORK/text" --output /proc/difftron_prepare_test
grep -q '/proc/difftron_prepare_test' "$WORK/err" || fail "unwritable output: the directory is not named: $(cat "$WORK/err")"
grep -q '\.cpp:' "$WORK/err" && fail "unwritable output: the message shows a source file: $(cat "$WORK/err")"
[ "$(grep -vc '^prepare: ' "$WORK/err")" -eq 1 ] || fail "unwritable output: more than the error line: $(cat "$WORK/err")"

printf '{"text": "fine"}\n{"text": "unterminated}\n' > "$WORK/bad.jsonl"
expect_one_line_error 1 "$BIN" prepare --input "$WORK/bad.jsonl" --output "$WORK/out2"
grep -q "bad.jsonl:2:" "$WORK/err" || fail "bad JSON line not reported as file:line: $(cat "$WORK/err")"
[ -z "$(ls "$WORK/out2" 2>/dev/null)" ] || fail "a failed prepare left files in its output"

expect_one_line_error 2 "$BIN" prepare --input "$WORK/text" --output "$WORK/out3" --no-such-option

# --skip-bad: 3 good lines and 2 bad ones -> 3 documents, 2 skipped, a warning each.
printf '{"text": "one"}\n{"text": "unterminated}\n{"text": "two"}\n{"body": "no text"}\n{"text": "three"}\n' \
  > "$WORK/mixed.jsonl"
"$BIN" prepare --input "$WORK/mixed.jsonl" --output "$WORK/out4" --skip-bad >"$WORK/summary" 2>"$WORK/log" \
  || fail "--skip-bad failed: $(cat "$WORK/log")"
grep -q ' 3 documents, .* 2 skipped' "$WORK/summary" || fail "--skip-bad summary: $(cat "$WORK/summary")"
[ "$(grep -c 'warning: skipped .*mixed.jsonl:[24]: ' "$WORK/log")" -eq 2 ] || fail "--skip-bad warnings: $(cat "$WORK/log")"
# ... and a corrupt gzip file is skipped as a whole, counted once.
printf '\037\213\010\125garbage' > "$WORK/broken.txt.gz"
"$BIN" prepare --input "$WORK/mixed.jsonl" --input "$WORK/broken.txt.gz" --output "$WORK/out4" --skip-bad --force \
  >"$WORK/summary" 2>"$WORK/log" || fail "--skip-bad with a broken gzip failed: $(cat "$WORK/log")"
grep -q ' 3 documents, .* 3 skipped' "$WORK/summary" || fail "broken gzip not skipped: $(cat "$WORK/summary")"
grep -q 'broken.txt.gz: read failed' "$WORK/log" || fail "broken gzip not named: $(cat "$WORK/log")"
expect_one_line_error 1 "$BIN" prepare --input "$WORK/broken.txt.gz" --output "$WORK/out5"

# gzip JSON lines with another text field; --separator splits a text file.
printf '{"body": "first"}\n{"body": "second"}\n' | gzip > "$WORK/docs.jsonl.gz"
"$BIN" prepare --input "$WORK/docs.jsonl.gz" --text-field body --output "$WORK/out6" >"$WORK/summary" 2>/dev/null \
  || fail "gzip JSON lines failed"
grep -q ' 2 documents, 13 tokens' "$WORK/summary" || fail "gzip JSON lines: $(cat "$WORK/summary")"
printf 'alpha\n\nbeta\n\n\n\ngamma' > "$WORK/split.txt"
"$BIN" prepare --input "$WORK/split.txt" --separator '\n\n' --output "$WORK/out7" >"$WORK/summary" 2>/dev/null \
  || fail "--separator failed"
grep -q ' 3 documents, 17 tokens' "$WORK/summary" || fail "--separator: $(cat "$WORK/summary")"

# The shards do not depend on --threads; progress lines and the summary carry their numbers.
for t in 1 2; do
  "$BIN" prepare --input "$WORK/text" --input "$WORK/mixed.jsonl" --skip-bad --shard-tokens 60 --threads $t \
    --progress-seconds 0 --output "$WORK/threads$t" >"$WORK/summary$t" 2>"$WORK/log$t" || fail "--threads $t failed"
done
# Progress lines go to stdout with the summary (a batch job's .out file shows them).
grep -Eq 'documents \([0-9]+/s\), .* MB \([0-9.]+ MB/s\), .*ETA ' "$WORK/summary2" ||
  fail "no progress line on stdout: $(cat "$WORK/summary2")"
grep -Eq '^prepare: 6 documents, [0-9]+ tokens, [0-9]+ bytes, [0-9]+ shards, 2 skipped, [0-9.]+ s, [0-9.]+ MB/s' \
  "$WORK/summary2" || fail "summary line: $(cat "$WORK/summary2")"
[ "$(ls "$WORK/threads1")" = "$(ls "$WORK/threads2")" ] || fail "--threads 1 and 2 wrote different shard files"
[ "$(ls "$WORK/threads1" | wc -l)" -gt 1 ] || fail "--shard-tokens 60 wrote one shard"
if command -v h5dump >/dev/null; then
  for f in "$WORK"/threads1/*.h5; do
    for d in /tokens /doc_offsets; do
      h5dump -d $d "$f" | tail -n +3 > "$WORK/d1"
      h5dump -d $d "$WORK/threads2/$(basename "$f")" | tail -n +3 > "$WORK/d2"
      cmp -s "$WORK/d1" "$WORK/d2" || fail "$d of $(basename "$f") differs between --threads 1 and 2"
    done
  done
fi

expect_one_line_error 2 "$BIN" prepare --input "$WORK/text" --output "$WORK/out3" --threads 0
expect_one_line_error 2 "$BIN" prepare --input "$WORK/text" --output "$WORK/out3" --threads two
expect_one_line_error 2 "$BIN" prepare --input "$WORK/text" --output "$WORK/out3" --progress-seconds -1

"$BIN" prepare --help > "$WORK/help" || fail "--help exited non-zero"
for opt in --input --output --tokenizer --shard-tokens --format --text-field --separator --threads --skip-bad \
           --progress-seconds --force --help; do
  grep -q -- "  $opt" "$WORK/help" || fail "--help does not list $opt"
done

# ---- a replaced dataset survives a failed or interrupted --force run ----
# One training step reads a dataset: it must load and train.
cat >"$WORK/train.yaml" <<YAML
model: {vocab_size: 320, d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, ffn_hidden: 88}
train: {seq_len: 32, global_batch_size: 2, max_steps: 1, run_dir: $WORK/run}
data: {datasets: [{path: $WORK/keep, weight: 1.0}]}
parallel: {micro_batch_size: 2}
YAML
train_on() {
  OMP_NUM_THREADS=1 "$BIN" train "$WORK/train.yaml" --set "data.datasets=[{path: $1, weight: 1.0}]" \
    >"$WORK/train.log" 2>&1
}
"$BIN" prepare --input /usr/share/common-licenses --shard-tokens 100000 --output "$WORK/keep" >/dev/null 2>&1 \
  || fail "prepare of the licence texts failed"
[ -f "$WORK/keep/dataset.yaml" ] || fail "prepare wrote no dataset.yaml manifest: $(ls "$WORK/keep")"
snapshot() { (cd "$WORK/keep" && ls -l --time-style=+%s.%N && md5sum ./*) ; }
snapshot >"$WORK/keep.before"
cp -r "$WORK/keep" "$WORK/nomark"
cp -r "$WORK/keep" "$WORK/cut"
leftovers() { ls -d "$WORK"/keep.* 2>/dev/null | grep -v '/keep\.before$' || true; }

# A bad input after a good one: the run fails with one line, the old dataset is untouched.
expect_one_line_error 1 "$BIN" prepare --input /usr/share/common-licenses --input "$WORK/bad.jsonl" \
  --shard-tokens 50000 --output "$WORK/keep" --force
grep -q "bad.jsonl:2:" "$WORK/err" || fail "failed --force run does not name the bad line: $(cat "$WORK/err")"
snapshot | cmp -s - "$WORK/keep.before" || fail "a failed prepare --force changed the old dataset: $(ls "$WORK/keep")"
[ -z "$(leftovers)" ] || fail "a failed prepare --force left $(leftovers)"

# SIGINT and SIGTERM in the middle of a long run: it stops, removes its
# unfinished output, exits 128+signal, and the old dataset is untouched. The
# input is 300 MB of one-line documents, far more than a run gets through
# before the signal: 30 copies of a 10 MB gzip member (gzip reads them as one).
{ yes 'The quick brown fox jumps over the lazy dog, again and again.' || true; } | head -c 10000000 | gzip -1 \
  >"$WORK/lines.gz"
for _ in $(seq 30); do cat "$WORK/lines.gz"; done >"$WORK/long.txt.gz"
# (env: a background job of a script starts with SIGINT ignored, and prepare keeps an ignored signal ignored.)
for sig in INT TERM; do
  env --default-signal=$sig "$BIN" prepare --input "$WORK/long.txt.gz" --separator '\n' --progress-seconds 0 \
    --threads 2 --output "$WORK/keep" --force >"$WORK/out" 2>"$WORK/err" &
  pid=$!
  for _ in $(seq 100); do grep -q 'documents (' "$WORK/out" && break; sleep 0.1; done
  grep -q 'documents (' "$WORK/out" || { kill -KILL $pid; fail "prepare made no progress line: $(cat "$WORK/out")"; }
  kill -$sig $pid
  rc=0
  timeout 20 tail -s 0.1 --pid=$pid -f /dev/null || { kill -KILL $pid; fail "prepare did not stop on SIG$sig"; }
  wait $pid || rc=$?
  want=$((128 + $(kill -l $sig)))
  [ "$rc" -eq "$want" ] || fail "prepare exited $rc on SIG$sig, expected $want: $(tail -2 "$WORK/err")"
  tail -1 "$WORK/err" | grep -q "interrupted by SIG$sig" ||
    fail "no interruption line on SIG$sig: $(tail -2 "$WORK/err")"
  snapshot | cmp -s - "$WORK/keep.before" || fail "SIG$sig during prepare --force changed the old dataset"
  [ -z "$(leftovers)" ] || fail "SIG$sig during prepare --force left $(leftovers)"
done
train_on "$WORK/keep" || fail "the old dataset does not train after those runs: $(tail -3 "$WORK/train.log")"

# A successful --force run replaces the dataset as a whole.
"$BIN" prepare --input "$WORK/text" --output "$WORK/keep" --force >/dev/null 2>&1 || fail "--force over keep failed"
[ "$(ls "$WORK/keep")" = "$(printf 'dataset.yaml\nshard_00000.h5')" ] ||
  fail "--force left old files: $(ls "$WORK/keep")"
[ -z "$(leftovers)" ] || fail "prepare --force left $(leftovers)"

# train on a broken dataset: exit 1 (not a crash) and exactly one line on stderr, naming $2.
expect_train_refuses() {
  local rc=0
  OMP_NUM_THREADS=1 "$BIN" train "$WORK/train.yaml" --set "data.datasets=[{path: $1, weight: 1.0}]" \
    >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq 1 ] || fail "train on $1 exited $rc, expected 1: $(cat "$WORK/err")"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] ||
    fail "train on $1 printed $(wc -l <"$WORK/err") lines, expected one: $(cat "$WORK/err")"
  grep -qF -- "$2" "$WORK/err" || fail "train on $1 does not say '$2': $(cat "$WORK/err")"
}

# A dataset without its manifest (what an interrupted prepare of older versions
# left) is refused, however complete its shards look.
rm -f "$WORK/nomark/dataset.yaml"
expect_train_refuses "$WORK/nomark" "incomplete dataset (no $WORK/nomark/dataset.yaml"

# A truncated shard: difftron's line alone, not HDF5's "infinite loop closing library" after it.
head -c 2000 "$WORK/nomark/shard_00001.h5" >"$WORK/cut/shard_00001.h5"
expect_train_refuses "$WORK/cut" "shard $WORK/cut/shard_00001.h5: cannot open as HDF5 (truncated"
echo "cli.prepare: ok"
