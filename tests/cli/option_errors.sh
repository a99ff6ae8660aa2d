#!/usr/bin/env bash
# Integer command-line options are read whole and range-checked, never wrapped
# modulo 2^32: an out-of-range or malformed value fails as one line on stderr
# naming the option and the allowed range, before any checkpoint or data is read.
# Usage: bash option_errors.sh <path-to-difftron> <source-dir>
set -u
bin=${1:?usage: option_errors.sh <path-to-difftron> <source-dir>}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# expect_error NAME TEXT COMMAND ARGS...: non-zero exit, one line on stderr holding TEXT.
expect_error() {
  local name=$1 text=$2
  shift 2
  timeout 60 "$bin" "$@" > "$work/out" 2> "$work/err" < /dev/null
  local rc=$? why=""
  if [ "$rc" -eq 0 ]; then why="exit code 0"
  elif [ "$rc" -ge 124 ]; then why="timed out or killed (rc $rc)"
  elif [ "$(wc -l < "$work/err")" -ne 1 ]; then why="stderr has $(wc -l < "$work/err") lines, expected exactly 1"
  elif ! grep -qF -- "$text" "$work/err"; then why="stderr does not say '$text'"
  fi
  if [ -n "$why" ]; then
    echo "FAIL $name: $why"
    echo "  stderr: $(cat "$work/err")"
    failures=$((failures + 1))
  else
    echo "ok   $name: $(cat "$work/err")"
  fi
}

ck=$work/no_such_checkpoint  # never opened: the options are checked first
# 2^32 + 10, 2^32 + 1 and 2^32 + 32 used to become 10, 1 and 32.
expect_error max_new_tokens_wraps "--max-new-tokens 4294967306: expected an integer in [0, " \
  generate "$ck" --prompt hi --max-new-tokens 4294967306
expect_error top_k_wraps "--top-k 4294967297: expected an integer in [0, " generate "$ck" --prompt hi --top-k 4294967297
expect_error seq_len_wraps "--seq-len 4294967328: expected an integer in [1, " eval "$ck" --data "$work" --seq-len 4294967328
expect_error batch_wraps "--batch 4294967297: expected an integer in [1, " eval "$ck" --data "$work" --batch 4294967297
expect_error seq_len_garbage "--seq-len 64k: expected an integer in [1, " eval "$ck" --data "$work" --seq-len 64k
expect_error max_tokens_huge "--max-tokens 99999999999999999999: expected an integer in [0, " \
  eval "$ck" --data "$work" --max-tokens 99999999999999999999
expect_error needles_above_max "--needles 5000: expected an integer in [1, 1000]" eval "$ck" --needle --haystack "$work" \
  --needles 5000
expect_error tokens_negative "--tokens -5: expected an integer in [1, " eval "$ck" --data "$work" --activation-stats \
  --tokens -5
expect_error prepare_threads "--threads 4294967297: expected an integer in [1, " prepare --input "$work" \
  --output "$work/out" --threads 4294967297
expect_error prepare_shard_tokens "--shard-tokens 12x: expected an integer in [1, " prepare --input "$work" \
  --output "$work/out" --shard-tokens 12x

if [ "$failures" -ne 0 ]; then
  echo "$failures option error case(s) failed"
  exit 1
fi
echo "all option error cases passed"
