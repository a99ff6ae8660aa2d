#!/usr/bin/env bash
# Sets up, builds the difftron binary, prepares the quickstart corpus and trains
# configs/tiny.yaml on the CPU. The README's first command. Run again, it
# continues the run from its newest checkpoint (or says there is nothing to do).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
TARGETS=difftron bash launch/build.sh
[ -f data/corpus/quickstart/dataset.yaml ] || bash launch/quickstart_corpus.sh
./build/difftron train configs/tiny.yaml --resume auto "$@"
