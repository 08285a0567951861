#!/usr/bin/env bash
# The project's test command: fetch the default model and evaluation text (SHA-256 checked,
# cached under $AIRINFER_HOME or ~/.cache/airinfer), then run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -- fetch smollm2-135m lee-news
AIRINFER_REQUIRE_MODEL=1 cargo test --workspace "$@"
