#!/usr/bin/env bash
# difftron prepare as a user runs it: usage: bash prepare.sh <difftron-binary> <source-dir>
# Writes a small text corpus, prepares it, and checks the shard, the refusal
# to overwrite without --force, a bad JSON-lines line and --help.
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

printf '{"text": "fine"}\n{"text": "unterminated}\n' > "$WORK/bad.jsonl"
expect_one_line_error 1 "$BIN" prepare --input "$WORK/bad.jsonl" --output "$WORK/out2"
grep -q "bad.jsonl:2:" "$WORK/err" || fail "bad JSON line not reported as file:line: $(cat "$WORK/err")"
[ -z "$(ls "$WORK/out2" 2>/dev/null)" ] || fail "a failed prepare left files in its output"

expect_one_line_error 2 "$BIN" prepare --input "$WORK/text" --output "$WORK/out3" --no-such-option

"$BIN" prepare --help > "$WORK/help" || fail "--help exited non-zero"
grep -q -- '--shard-tokens' "$WORK/help" || fail "--help does not list --shard-tokens"
echo "cli.prepare: ok"
