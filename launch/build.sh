#!/usr/bin/env bash
# Configures and builds difftron in build/ (Release). Extra arguments go to CMake,
# e.g. launch/build.sh -DDIFFTRON_CUDA=OFF. TARGETS="difftron" builds only those
# targets (the quickstart needs just the binary, not the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# shellcheck disable=SC2086
cmake --build build -j"${JOBS:-2}" ${TARGETS:+--target $TARGETS}
