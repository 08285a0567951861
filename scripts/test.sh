#!/usr/bin/env bash
# The project's test command. In order:
#   1. build the workspace's tests in the release profile (the quick start's
#      `cargo run --release` build is reused, not a second build of every dependency);
#   2. fetch the default model, the evaluation text and gemma3-270m (its tokenizer and
#      blocks are tested; SHA-256 checked, cached under
#      $AIRINFER_HOME or ~/.cache/airinfer);
#   3. run every test of the workspace, every test binary even after a failure (--no-fail-fast);
#   4. run the kernel and model-equivalence tests once more per SIMD path this CPU has
#      (AIRINFER_SIMD=portable|avx2|avx512), saying which paths it could not test, and on an
#      emulated AVX2-only CPU (qemu-user, where installed);
#   5. build the Python package (py/) into .venv and run its pytest suite;
#   5b. model-check the decode thread team with loom (llm/spin);
#   6. our SDR solver against clarabel on 200 instances (`--features clarabel`), where the
#      system OpenBLAS is installed (libopenblas-dev, pkg-config, and gfortran for the
#      libgfortran.so it links);
#   7. the SoapySDR feature against our loopback module, where SoapySDR is installed;
#   8. the Slurm end-to-end test (a single-node cluster, a 4-task job array of
#      experiments/smoke.toml, merged and compared with the unsharded run; needs root);
# and close with one summary line over all of them. A test binary that started but printed no
# result (a crash, an abort) counts as a failed test in that line.
# Steps 4's emulated CPU (qemu), 6 (clarabel), 7 (soapy) and 8 (slurm) need system packages the
# default build does not; they are skipped, with a note, where those are missing.
# AIRINFER_TEST_STEPS=qemu,clarabel,… runs only the named ones (.ci/run: after installing the
# packages the first run lacked); the default, `all`, runs everything.
set -uo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# run CMD…: show its output, keep it for the summary, remember a failure
run() { "$@" 2>&1 | tee -a "$log"; local s=${PIPESTATUS[0]}; [ "$s" -eq 0 ] || status=1; return 0; }

steps="${AIRINFER_TEST_STEPS:-all}"
for s in ${steps//,/ }; do
  case "$s" in all | qemu | clarabel | soapy | slurm) ;; *)
    echo "AIRINFER_TEST_STEPS=$steps: expected all, or a list of qemu, clarabel, soapy, slurm" >&2
    exit 2
    ;;
  esac
done
# step NAME: is this optional step selected?
step() { [ "$steps" = all ] || [[ ",$steps," == *",$1,"* ]]; }
# lap NAME: the seconds since the last lap go to the closing "time per step" line
laps=()
t_lap=$SECONDS
lap() { laps+=("$1 $((SECONDS - t_lap)) s"); t_lap=$SECONDS; }
cargo test --workspace --release --no-run -q "$@" || exit 1
bin="$(pwd)/$target/release/airinfer"
"$bin" fetch smollm2-135m lee-news gemma3-270m || exit 1
lap "build+fetch"

export AIRINFER_REQUIRE_MODEL=1
if [ "$steps" = all ]; then
  run cargo test --workspace --release --no-fail-fast "$@"

  # every SIMD path this CPU has: kernels (llm: quantised mat-vec; phy: Gaussian generator,
  # AirComp Monte-Carlo block) and the model equivalences that run through them
  flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
  has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
  paths=(portable)
  untested=()
  if has avx2 fma f16c; then paths+=(avx2); else untested+=(avx2); fi
  if has avx2 fma f16c avx512f avx512vl avx512_vnni; then paths+=(avx512); else untested+=(avx512); fi
  echo "SIMD paths tested on this CPU: ${paths[*]}${untested:+; not available here, so not tested: ${untested[*]}}"
  for p in "${paths[@]}"; do
    echo "== AIRINFER_SIMD=$p"
    AIRINFER_SIMD=$p run cargo test --release --no-fail-fast -p airinfer-llm --lib --test smollm2 --test forward_reference --test arch_parity "$@" -- kernels:: tensor_parallel decode prefill greedy
    AIRINFER_SIMD=$p run cargo test --release --no-fail-fast -p airinfer-phy --lib "$@" -- fastrng aircomp::
  done
  lap "workspace+simd"
fi

# an AVX2-only CPU (no AVX-512 anywhere, the gemm crate's prefill kernels included), emulated by
# QEMU's Haswell model where qemu-user is installed (.ci/run installs it): the kernels and the
# tensor-parallel equivalences
if ! step qemu; then
  :
elif command -v qemu-x86_64 >/dev/null && [ "$(uname -m)" = x86_64 ]; then
  echo "== AVX2-only CPU (qemu-x86_64 -cpu Haswell)"
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="qemu-x86_64 -cpu Haswell" \
    run cargo test --release --no-fail-fast -p airinfer-llm --lib --test smollm2 --test forward_reference "$@" -- kernels:: tensor_parallel
  lap qemu
else
  echo "note: qemu-user missing, so the AVX2-only CPU model is not tested"
fi

# the Python package (py/): built once in release into the virtual environment .venv (created
# here; `. .venv/bin/activate` then `import airinfer`), sharing this target directory, then its
# pytest suite (the CLI comparisons use the release binary built above)
if [ "$steps" = all ]; then
  if python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "== Python package (py/) into .venv"
    out="$( { [ -x .venv/bin/python ] || python3 -m venv .venv; } 2>&1 &&
      .venv/bin/python -m pip install -q --upgrade pip 2>&1 &&
      .venv/bin/python -m pip install -q maturin numpy pandas matplotlib pytest 2>&1 &&
      CARGO_TARGET_DIR="$(pwd)/$target" .venv/bin/python -m pip install -q ./py 2>&1 &&
      AIRINFER_CLI="$bin" .venv/bin/python -m pytest py/tests -q -p no:cacheprovider 2>&1)"
    pystatus=$?
    printf '%s\n' "$out"
    p="$(grep -oE '[0-9]+ passed' <<<"$out" | tail -1 | grep -oE '[0-9]+' || true)"
    f="$(grep -oE '[0-9]+ (failed|errors?)' <<<"$out" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')"
    if [ "$pystatus" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then f=1; fi
    echo "python: ${p:-0} passed, ${f:-0} failed" | tee -a "$log"
    lap python
  else
    echo "note: python3 with venv/ensurepip (python3-venv) missing, so the Python package is not tested"
  fi
fi

# the decode team's protocol, every interleaving (loom; its own target directory, so the cfg
# does not rebuild the main one)
if [ "$steps" = all ]; then
  RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$target/loom" run cargo test --release -p airinfer-spin --lib
  lap loom
fi

# our SDR solver against clarabel, which links the system OpenBLAS (phy's `clarabel` feature)
# and, through it, libgfortran (Debian's OpenBLAS is built with gfortran)
gfortran_lib="$(cc -print-file-name=libgfortran.so 2>/dev/null || true)"
if ! step clarabel; then
  :
elif pkg-config --exists openblas 2>/dev/null && [ -e "$gfortran_lib" ]; then
  run cargo test --release -p airinfer-phy --features clarabel --test sdp_crosscheck "$@"
  lap clarabel
else
  echo "note: OpenBLAS or libgfortran (libopenblas-dev, pkg-config, gfortran) missing, so the clarabel cross-check is not run"
fi

# the SoapySDR path: build our loopback device module, then the `soapy` feature and its tests
# against it (skipped with a note where SoapySDR's headers or g++ are missing)
if ! step soapy; then
  :
elif pkg-config --exists SoapySDR 2>/dev/null && command -v g++ >/dev/null; then
  modules="$(pwd)/$target/soapy-modules"
  # SoapySDRUtil's output is captured whole before it is searched: `| grep -q` would close the
  # pipe at the first match and, under pipefail, SoapySDRUtil's next line (SIGPIPE) would fail
  # the step now and then (1 in 200 on a loaded machine)
  found="$(bash phy/soapy/build.sh "$modules" 2>&1 &&
    SOAPY_SDR_PLUGIN_PATH="$modules" SoapySDRUtil --find="driver=airinfer-loopback" 2>&1)"
  if [[ "$found" == *"driver = airinfer-loopback"* ]]; then
    SOAPY_SDR_PLUGIN_PATH="$modules" run cargo test --release -p airinfer-phy --features soapy --test soapy_loopback "$@"
    # the same experiment through SoapySDR end to end: `airinfer run --radio driver=airinfer-loopback`
    SOAPY_SDR_PLUGIN_PATH="$modules" run cargo test --release -p airinfer --features soapy --test soapy_hil "$@"
    lap soapy
  else
    printf '%s\n' "$found"
    echo "soapy: 0 passed, 1 failed (the loopback module did not build or was not found)" | tee -a "$log"
    status=1
  fi
else
  echo "note: SoapySDR (libsoapysdr-dev) or g++ missing, so the soapy feature is not tested"
fi

if ! step slurm; then
  :
elif [ "$(id -u)" -eq 0 ]; then
  AIRINFER="$bin" run bash scripts/slurm/test.sh
  lap slurm
else
  echo "note: not root, so the Slurm test (scripts/slurm/test.sh) is skipped"
fi

# the summary: every "test result:" line (and the Slurm/soapy lines), plus one failure for
# every test binary that started ("Running …", "Doc-tests …") without printing a result
results=$(grep -cE '^test result:' "$log")
started=$(grep -cE '^ *(Running |Doc-tests )' "$log")
passed=$(grep -E '^(test result:|slurm: |soapy: |python: )' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^(test result:|slurm: |soapy: |python: )' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
if [ "$started" -gt "$results" ]; then
  echo "note: $((started - results)) test binaries started but printed no result (crashed?)"
  failed=$((failed + started - results))
  status=1
fi
[ "$failed" -eq 0 ] || status=1
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "note: a step failed without a failing test (a build error?)"
  failed=1
fi
echo "time per step: $(IFS=,; echo "${laps[*]}" | sed 's/,/, /g') (total $SECONDS s)"
echo "tests: $passed passed, $failed failed"
exit "$status"
