#!/usr/bin/env bash
# The project's test command: fetch the default model and evaluation text (SHA-256 checked,
# cached under $AIRINFER_HOME or ~/.cache/airinfer), then run every test of the workspace and
# close with one summary line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
# one build (the test profile, opt-level 3) serves both the fetch and the tests
cargo test --workspace --no-run -q "$@"
profile_dir=debug
for a in "$@"; do [ "$a" = "--release" ] && profile_dir=release; done
"${CARGO_TARGET_DIR:-target}/$profile_dir/airinfer" fetch smollm2-135m lee-news
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
AIRINFER_REQUIRE_MODEL=1 cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
