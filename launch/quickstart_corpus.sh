#!/usr/bin/env bash
# Makes the quickstart's English corpus from files already on the machine (no
# network) and tokenizes it into data/corpus/quickstart/ (byte tokenizer).
# data/corpus/bench is a link to the same shards.
#
# Source: the Linux kernel's reStructuredText documentation from Debian's
# linux-doc-6.1 package (installed by launch/setup.sh; stored gzipped), minus
# translations/; files are taken in byte order of their paths until the text
# reaches CORPUS_BYTES. Without that package, /usr/share/common-licenses/*.
# Each source file is one document in data/corpus/raw/.
#
# Environment: DIFFTRON (default build/difftron), CORPUS_BYTES (default 8000000).
set -euo pipefail
cd "$(dirname "$0")/.."
DIFFTRON=${DIFFTRON:-build/difftron}
CORPUS_BYTES=${CORPUS_BYTES:-8000000}
DOCS=/usr/share/doc/linux-doc-6.1/Documentation
RAW=data/corpus/raw

[ -x "$DIFFTRON" ] || { echo "quickstart_corpus: $DIFFTRON not found; build first (launch/build.sh)" >&2; exit 1; }
rm -rf "$RAW"
mkdir -p "$RAW"

total=0
count=0
if [ -d "$DOCS" ]; then
  source="linux-doc-6.1 ($DOCS)"
  while IFS= read -r f; do
    rel=${f#"$DOCS"/}
    rel=${rel%.gz}
    out="$RAW/$(printf '%05d' "$count")_${rel//\//__}"
    case "$f" in
      *.gz) gzip -dc "$f" > "$out" ;;
      *) cp "$f" "$out" ;;
    esac
    total=$((total + $(stat -c %s "$out")))
    count=$((count + 1))
    [ "$total" -lt "$CORPUS_BYTES" ] || break
  done < <(find "$DOCS" \( -name '*.rst' -o -name '*.rst.gz' \) -not -path "$DOCS/translations/*" \
             \( -type f -o -type l \) | LC_ALL=C sort)
else
  source="/usr/share/common-licenses (linux-doc-6.1 is not installed; launch/setup.sh installs it)"
  for f in /usr/share/common-licenses/*; do
    [ -f "$f" ] || continue
    out="$RAW/$(printf '%05d' "$count")_$(basename "$f")"
    cat "$f" > "$out"
    total=$((total + $(stat -c %s "$out")))
    count=$((count + 1))
  done
fi
[ "$count" -gt 0 ] || { echo "quickstart_corpus: found no source text in $source" >&2; exit 1; }
echo "quickstart_corpus: $count documents, $total bytes of text from $source"

"$DIFFTRON" prepare --input "$RAW" --output data/corpus/quickstart --tokenizer byte --force

# The CPU benchmark reads the same shards (byte ids fit its 8192-entry vocabulary).
if [ -e data/corpus/bench ] && [ ! -L data/corpus/bench ]; then rm -rf data/corpus/bench; fi
ln -sfn quickstart data/corpus/bench
echo "quickstart_corpus: data/corpus/quickstart ready (data/corpus/bench links to it)"
