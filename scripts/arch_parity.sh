#!/usr/bin/env bash
# Architecture and quant-type parity with llama.cpp: the synthetic models of every supported
# architecture (airinfer_llm::synth::parity_models, random weights, SmolLM2's tokenizer) and the
# real Gemma 3 270M, perplexity on the Lee corpus through llama-perplexity and airinfer eval.
# Writes llm/tests/data/ppl_llamacpp_synth.json (the fixture llm/tests/arch_parity.rs checks)
# and prints the BENCHMARKS.md parity table. K-quant and other llama.cpp-only types are made
# from an F32 synthetic model by llama-quantize (table only: the test cannot rebuild them).
# Usage: scripts/arch_parity.sh [LLAMACPP_WORKDIR]   (build it with scripts/llamacpp_reference.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/llamacpp-ref}"
bin="$work/llama.cpp/build/bin"
[ -x "$bin/llama-quantize" ] || cmake --build "$work/llama.cpp/build" -j2 --target llama-quantize llama-perplexity
cd "$here"
cargo build --release -q -p airinfer -p airinfer-llm --example synth_models --example gguf_tensor_sha
air=target/release/airinfer
tokmodel="$($air fetch smollm2-135m)"
text="$($air fetch lee-news)"
out="$(mktemp -d)"
ctx=128; chunks=8
ppl_cpp() { "$bin/llama-perplexity" -m "$1" -f "$text" -c "$2" --chunks "$3" -t 2 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.e+]*\).*/\1/p'; }
ppl_air() { "$air" eval --model "$1" --text lee-news --ctx "$2" --chunks "$3" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])'; }
row() { python3 -c "a,b=float('$3'),float('$4'); print(f'| $1 | $2 | {b:.6g} | {a:.6g} | {100*(a/b-1):+.3f} % |')"; }
echo "| model | weights | llama.cpp PPL | airinfer PPL | difference |"
echo "| --- | --- | ---: | ---: | ---: |"
cases=()
while read -r name path sha; do
  c=$(ppl_cpp "$path" $ctx $chunks); a=$(ppl_air "$path" $ctx $chunks)
  row "$name (synthetic)" "${name##*-}" "$a" "$c"
  cases+=("{\"name\": \"$name\", \"sha256\": \"$sha\", \"ctx\": $ctx, \"chunks\": $chunks, \"ppl\": $c}")
done < <(target/release/examples/synth_models "$tokmodel" "$out")
( IFS=,; echo "{\"text\": \"lee_background.cor\", \"tokenizer\": \"SmolLM2-135M-Instruct.Q4_1.gguf\", \"command\": \"llama-perplexity -m MODEL -f lee_background.cor -c CTX --chunks N -t 2 (llama.cpp vendored in llama-cpp-python 0.3.36); models from target/release/examples/synth_models\", \"cases\": [${cases[*]}]}" ) \
  | python3 -m json.tool > llm/tests/data/ppl_llamacpp_synth.json
# llama.cpp's own quantiser on a k-quant-sized model (rows of 256)
while read -r name src sha; do
  for ty in Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K Q5_0 Q5_1 IQ4_NL IQ4_XS; do
    f="$out/${name%-f32}-$ty.gguf"
    "$bin/llama-quantize" "$src" "$f" "$ty" >/dev/null 2>&1
    c=$(ppl_cpp "$f" $ctx $chunks); a=$(ppl_air "$f" $ctx $chunks)
    row "${name%-f32} (synthetic, llama-quantize)" "$ty" "$a" "$c"
  done
done < <(target/release/examples/synth_models "$tokmodel" "$out/kq" --kquant-sources)
# the quantisers' fixture: llama-quantize --pure's bytes of one tensor per type
tensor=blk.0.ffn_up.weight
shas=()
for ty in Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS; do
  "$bin/llama-quantize" --pure "$out/kq/llama-kq-f32.gguf" "$out/pure-$ty.gguf" "$ty" >/dev/null 2>&1
  shas+=("\"$ty\": \"$(target/release/examples/gguf_tensor_sha "$out/pure-$ty.gguf" $tensor | cut -d' ' -f2)\"")
done
( IFS=,; echo "{\"source\": \"synthetic llama-kq-f32 (airinfer_llm::synth::kquant_sources()[0], SmolLM2's tokenizer), tensor $tensor (512 x 256 f32)\", \"command\": \"llama-quantize --pure llama-kq-f32.gguf OUT.gguf TYPE (llama.cpp vendored in llama-cpp-python 0.3.36), then the SHA-256 of the tensor's bytes (target/release/examples/gguf_tensor_sha); scripts/arch_parity.sh\", \"tensor\": \"$tensor\", \"sha256\": {${shas[*]}}}" ) \
  | python3 -m json.tool > llm/tests/data/quantize_llamacpp.json
gemma="$($air fetch gemma3-270m)"
for c in "512 4" "2048 3"; do
  set -- $c
  row "Gemma 3 270M, ctx $1" "Q4_K_M" "$(ppl_air "$gemma" $1 $2)" "$(ppl_cpp "$gemma" $1 $2)"
done
rm -rf "$out"
