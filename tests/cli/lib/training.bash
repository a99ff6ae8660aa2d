# Shared by the CLI tests that train (sourced, not run: CTest runs only
# tests/cli/*.sh). Usage in a test: `source "$(dirname "$0")/lib/training.bash" "$@"`.
# Sets bin and src from the test's arguments, a scratch directory $tmp (removed
# at exit, with the background job $pid killed), pass/fail reporting, and a
# prepared dataset in $tmp/shards; one OpenMP thread per process.
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0
failed=0
case_failed=0
# pass WHAT: the case that just ended passed (unless one of its checks failed).
pass() {
  [ $case_failed -eq 0 ] && passed=$((passed + 1)) && echo "ok: $1"
  case_failed=0
}
# fail WHAT OUTPUT_FILE: prints the output and exits; with KEEP_GOING=1 it
# goes on, to list every case that fails (e.g. on an older build).
fail() {
  failed=$((failed + 1))
  case_failed=1
  echo "FAIL: $1"
  [ -n "${KEEP_GOING:-}" ] && return 1
  echo "--- output ($2) ---"
  cat "$2"
  echo "$passed passed, 1 failed"
  exit 1
}
# The summary line and the exit status.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

"$bin" prepare --input /usr/share/common-licenses --output "$tmp/shards" >"$tmp/prepare" 2>&1 ||
  fail "prepare" "$tmp/prepare"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
