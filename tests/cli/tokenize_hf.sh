#!/usr/bin/env bash
# difftron tokenize and prepare with a Hugging Face tokenizer.json:
# usage: bash tokenize_hf.sh <difftron-binary> <source-dir>
# Uses the Llama-3-style fixture of tests/data/hf_tokenizer/ (ids derived by
# hand in tests/unit/test_hf_tokenizer.cpp): encode, --allow-special, --decode,
# a prepared shard that records the tokenizer's name, and the one-line error
# for an unsupported file.
set -euo pipefail
BIN=$1
SRC=$2
TOK=$SRC/tests/data/hf_tokenizer/llama3_style/tokenizer.json
WORK=$(mktemp -d /tmp/dt_cli_tokenize_hf_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# "hello" is vocab token 266 (ignore_merges), " world" 260; "12345" -> "123" 262, "4" "5".
got=$(printf 'hello world12345' | "$BIN" tokenize --tokenizer "$TOK")
[ "$got" = "266 260 262 52 53" ] || fail "encode gave '$got'"
got=$(printf '<|begin_of_text|>hello<|end_of_text|>' | "$BIN" tokenize --tokenizer "$TOK" --allow-special)
[ "$got" = "300 266 301" ] || fail "--allow-special gave '$got'"
got=$(printf '300 266 260 301' | "$BIN" tokenize --tokenizer "$TOK" --decode)
[ "$got" = "<|begin_of_text|>hello world" ] || fail "--decode gave '$got'"
"$BIN" tokenize --help | grep -q 'tokenizer.json' || fail "tokenize --help does not mention tokenizer.json"

mkdir -p "$WORK/text"
printf 'hello world\n' > "$WORK/text/a.txt"
"$BIN" prepare --input "$WORK/text" --output "$WORK/out" --tokenizer "$TOK" >"$WORK/log" 2>&1 \
  || fail "prepare failed: $(cat "$WORK/log")"
# "hello world\n": 266 260 10, then EOS.
grep -q 'tokenizer llama3_style/tokenizer.json,' "$WORK/log" || fail "prepare log does not name the tokenizer: $(cat "$WORK/log")"
grep -q '1 documents, 4 tokens' "$WORK/log" || fail "prepare did not count 4 tokens: $(cat "$WORK/log")"
if command -v h5dump >/dev/null; then
  h5dump -a /tokenizer "$WORK/out/shard_00000.h5" | grep -q '"llama3_style/tokenizer.json"' \
    || fail "shard does not record the tokenizer name"
fi

# An unsupported file: one line naming it.
sed 's/"type": "BPE"/"type": "Unigram"/' "$TOK" > "$WORK/tokenizer.json"
rc=0
printf 'x' | "$BIN" tokenize --tokenizer "$WORK/tokenizer.json" >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] || fail "an Unigram tokenizer.json was accepted"
[ "$(wc -l < "$WORK/err")" -eq 1 ] || fail "expected one error line: $(cat "$WORK/err")"
grep -q "$WORK/tokenizer.json: tokenizer.json model 'Unigram' is not supported (byte-level BPE only)" "$WORK/err" \
  || fail "unexpected error: $(cat "$WORK/err")"
echo "cli tokenize_hf: ok"
