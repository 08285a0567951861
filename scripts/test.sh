#!/usr/bin/env bash
# The project's test command: fetch the default model and evaluation text (SHA-256 checked,
# cached under $AIRINFER_HOME or ~/.cache/airinfer), run every test of the workspace, then the
# Slurm end-to-end test (a single-node cluster, a 4-task job array of experiments/smoke.toml,
# merged and compared with the unsharded run; needs root, skipped with a note otherwise), and
# close with one summary line over all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
# one build (the test profile, opt-level 3) serves the fetch, the tests and the Slurm test
cargo test --workspace --no-run -q "$@"
profile_dir=debug
for a in "$@"; do [ "$a" = "--release" ] && profile_dir=release; done
bin="$(pwd)/${CARGO_TARGET_DIR:-target}/$profile_dir/airinfer"
"$bin" fetch smollm2-135m lee-news
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
AIRINFER_REQUIRE_MODEL=1 cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
# the SoapySDR path: build our loopback device module, then the `soapy` feature and its tests
# against it (skipped with a note where SoapySDR's headers or g++ are missing)
if pkg-config --exists SoapySDR 2>/dev/null && command -v g++ >/dev/null; then
  modules="$(pwd)/${CARGO_TARGET_DIR:-target}/soapy-modules"
  bash phy/soapy/build.sh "$modules" >/dev/null
  SOAPY_SDR_PLUGIN_PATH="$modules" SoapySDRUtil --find="driver=airinfer-loopback" | grep -q airinfer-loopback
  SOAPY_SDR_PLUGIN_PATH="$modules" cargo test -p airinfer-phy --features soapy --test soapy_loopback "$@" 2>&1 | tee -a "$log" || status=$?
  # the same experiment through SoapySDR end to end: `airinfer run --radio driver=airinfer-loopback`
  SOAPY_SDR_PLUGIN_PATH="$modules" cargo test -p airinfer-sim --features soapy --test soapy_hil "$@" 2>&1 | tee -a "$log" || status=$?
else
  echo "note: SoapySDR (libsoapysdr-dev) or g++ missing, so the soapy feature is not tested"
fi
if [ "$(id -u)" -eq 0 ]; then
  AIRINFER="$bin" bash scripts/slurm/test.sh 2>&1 | tee -a "$log" || status=1
else
  echo "note: not root, so the Slurm test (scripts/slurm/test.sh) is skipped"
fi
passed=$(grep -E '^(test result:|slurm: )' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^(test result:|slurm: )' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
