#!/usr/bin/env bash
# Build llama.cpp from the source vendored in the PyPI sdist of llama-cpp-python (the package
# registries are reachable where GitHub may not be), then run the comparisons of BENCHMARKS.md.
# Nothing of llama.cpp is committed. Usage: scripts/llamacpp_reference.sh [WORKDIR]
# With AIRINFER_SIMD=avx2 both sides are held to AVX2 + FMA (llama.cpp built without AVX-512,
# airinfer's kernels capped), which is what an AVX2-only CPU (e.g. AMD EPYC before Zen 4) runs.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/llamacpp-ref}"
mkdir -p "$work" && cd "$work"
if [ ! -d llama.cpp ]; then
  python3 -m pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d .
  tar xzf llama_cpp_python-0.3.36.tar.gz
  mv llama_cpp_python-0.3.36/vendor/llama.cpp llama.cpp
fi
command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake; }
if [ "${AIRINFER_SIMD:-}" = avx2 ]; then
  build=build-avx2
  simd=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF)
else
  build=build
  simd=(-DGGML_NATIVE=ON)
fi
cmake -S llama.cpp -B "llama.cpp/$build" -DCMAKE_BUILD_TYPE=Release "${simd[@]}" -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF
cmake --build "llama.cpp/$build" -j2 --target llama-bench llama-perplexity llama-tokenize
bin="$work/llama.cpp/$build/bin"
cd "$here"
model="$(cargo run --release -q -- fetch smollm2-135m)"
text="$(cargo run --release -q -- fetch lee-news)"
"$bin/llama-bench" -m "$model" -p 512 -n 128 -t 1,2 -r 3
cargo run --release -q -- bench llm --reps 3
"$bin/llama-perplexity" -m "$model" -f "$text" -c 512 --chunks 40 -t 2 2>&1 | grep -E "Final estimate"
cargo run --release -q -- eval --text lee-news --ctx 512 --chunks 40
