#!/usr/bin/env bash
# Build the airinfer-loopback SoapySDR module: build.sh OUT_DIR  ->  OUT_DIR/libairinferLoopback.so
# Needs: g++ pkg-config libsoapysdr-dev. Point SOAPY_SDR_PLUGIN_PATH at OUT_DIR to use it.
set -euo pipefail
out="${1:?usage: build.sh OUT_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
# shellcheck disable=SC2046  # pkg-config output must split into words
g++ -std=c++17 -O2 -Wall -Wextra -shared -fPIC \
    "$here/airinfer_loopback.cpp" -o "$out/libairinferLoopback.so" \
    $(pkg-config --cflags --libs SoapySDR)
echo "built $out/libairinferLoopback.so"
