#!/usr/bin/env bash
# Sets up, builds and runs every test (CTest). The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
bash launch/build.sh "$@"
cd build && ctest --output-on-failure -j2 --timeout 600
