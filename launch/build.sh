#!/usr/bin/env bash
# Configures and builds difftron in build/ (Release). Extra arguments go to CMake,
# e.g. launch/build.sh -DDIFFTRON_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"${JOBS:-2}"
