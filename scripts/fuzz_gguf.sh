#!/usr/bin/env bash
# Fuzz the GGUF parser with libFuzzer (cargo-fuzz). Usage: scripts/fuzz_gguf.sh [SECONDS]
# Needs `cargo install cargo-fuzz`; on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-1200}"
mkdir -p corpus/gguf_parse
cp -n seeds/* corpus/gguf_parse/ 2>/dev/null || true
RUSTC_BOOTSTRAP=1 cargo fuzz run gguf_parse corpus/gguf_parse -- -max_total_time="$secs" -jobs=1 -max_len=65536
