#!/usr/bin/env bash
# Sets up, builds, prepares the quickstart corpus and trains configs/tiny.yaml
# on the CPU. The README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
bash launch/build.sh
[ -f data/corpus/quickstart/dataset.yaml ] || bash launch/quickstart_corpus.sh
./build/difftron train configs/tiny.yaml "$@"
