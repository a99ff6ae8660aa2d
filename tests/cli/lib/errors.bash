# Shared by the CLI tests that check results and one-line errors (sourced, not
# run: CTest runs only tests/cli/*.sh). Usage in a test, after setting WORK (a
# scratch directory): `source "$(dirname "$0")/lib/errors.bash"`.
passed=0
# fail WHAT: prints the failure and the summary, and exits.
fail() { echo "FAIL: $*" >&2; echo "$passed passed, 1 failed"; exit 1; }
# ok WHAT: one more check passed.
ok() { passed=$((passed + 1)); echo "ok: $*"; }
# expect_one_line_error COMMAND...: the command must exit non-zero with exactly
# one line on stderr, an error line (DESIGN §7), which $WORK/err then holds.
expect_one_line_error() {
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "'$*' succeeded; expected an error"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "'$*' printed $(wc -l <"$WORK/err") lines on stderr, expected one: $(cat "$WORK/err")"
  grep -q 'error' "$WORK/err" || fail "'$*': no error line: $(cat "$WORK/err")"
}
