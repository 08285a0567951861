#!/usr/bin/env bash
# Fuzz one of the parsers of untrusted input with libFuzzer (cargo-fuzz).
#   scripts/fuzz.sh TARGET [SECONDS]      TARGET: gguf_parse | experiment_toml | channel_file
# Needs `cargo install cargo-fuzz`; on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# sanitizer flags cargo-fuzz passes. Seeds: experiment_toml starts from experiments/*.toml,
# channel_file from small .npy (complex64/128, C and Fortran order, v1 and v2 headers) and JSON
# files written below; gguf_parse from fuzz/seeds/ when present. The log goes to
# fuzz/fuzz-TARGET.log; a crash leaves its input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target="${1:?usage: scripts/fuzz.sh gguf_parse|experiment_toml|channel_file [SECONDS]}"
secs="${2:-1800}"
corpus="corpus/$target"
mkdir -p "$corpus"
max_len=65536
case "$target" in
  gguf_parse)
    cp -n seeds/* "$corpus/" 2>/dev/null || true
    # tiny Llama GGUFs written here (v3 and v2, F32/F16 tensors, tokenizer metadata)
    python3 - "$corpus" <<'PY'
import os, struct, sys
out = sys.argv[1]
def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
def kv(k, t, v):
    body = {4: lambda: struct.pack("<I", v), 6: lambda: struct.pack("<f", v), 8: lambda: s(v)}
    if t == 9:
        et, items = v
        enc = {8: s, 4: lambda x: struct.pack("<I", x), 6: lambda x: struct.pack("<f", x), 5: lambda x: struct.pack("<i", x)}[et]
        return s(k) + struct.pack("<I", 9) + struct.pack("<IQ", et, len(items)) + b"".join(enc(i) for i in items)
    return s(k) + struct.pack("<I", t) + body[t]()
def gguf(name, version, f16):
    d, ff, vocab, layers = 8, 16, 6, 1
    meta = [kv("general.architecture", 8, "llama"), kv("llama.block_count", 4, layers),
            kv("llama.context_length", 4, 32), kv("llama.embedding_length", 4, d),
            kv("llama.feed_forward_length", 4, ff), kv("llama.attention.head_count", 4, 2),
            kv("llama.attention.head_count_kv", 4, 1), kv("llama.rope.freq_base", 6, 10000.0),
            kv("llama.attention.layer_norm_rms_epsilon", 6, 1e-5), kv("general.alignment", 4, 32),
            kv("tokenizer.ggml.model", 8, "gpt2"),
            kv("tokenizer.ggml.tokens", 9, (8, ["<s>", "a", "b", "ab", "Ġ", "c"])),
            kv("tokenizer.ggml.token_type", 9, (5, [3, 1, 1, 1, 1, 1])),
            kv("tokenizer.ggml.merges", 9, (8, ["a b"])), kv("tokenizer.ggml.bos_token_id", 4, 0)]
    shapes = [("token_embd.weight", [d, vocab]), ("output_norm.weight", [d])]
    for l in range(layers):
        shapes += [(f"blk.{l}.attn_norm.weight", [d]), (f"blk.{l}.ffn_norm.weight", [d]),
                   (f"blk.{l}.attn_q.weight", [d, d]), (f"blk.{l}.attn_k.weight", [d, d // 2]),
                   (f"blk.{l}.attn_v.weight", [d, d // 2]), (f"blk.{l}.attn_output.weight", [d, d]),
                   (f"blk.{l}.ffn_gate.weight", [d, ff]), (f"blk.{l}.ffn_up.weight", [d, ff]),
                   (f"blk.{l}.ffn_down.weight", [ff, d])]
    infos, data, off = b"", b"", 0
    for i, (n, dims) in enumerate(shapes):
        cnt = 1
        for x in dims: cnt *= x
        typ = 1 if (f16 and len(dims) == 2) else 0
        raw = b"".join(struct.pack("<e" if typ else "<f", ((i * 7 + j) % 11 - 5) / 10) for j in range(cnt))
        infos += s(n) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", x) for x in dims) + struct.pack("<IQ", typ, off)
        raw += b"\0" * ((-len(raw)) % 32)
        data += raw; off += len(raw)
    head = b"GGUF" + struct.pack("<IQQ", version, len(shapes), len(meta)) + b"".join(meta) + infos
    head += b"\0" * ((-len(head)) % 32)
    open(os.path.join(out, name), "wb").write(head + data)
gguf("tiny_v3_f32.gguf", 3, False)
gguf("tiny_v3_f16.gguf", 3, True)
gguf("tiny_v2_f32.gguf", 2, False)
PY
    ;;
  experiment_toml)
    max_len=16384
    for f in ../experiments/*.toml; do cp -n "$f" "$corpus/"; done ;;
  channel_file)
    python3 - "$corpus" <<'PY'
import json, os, struct, sys
out = sys.argv[1]
def npy(name, descr, shape, fortran, values, version=1):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    lenfmt, pre = ("<H", 10) if version == 1 else ("<I", 12)
    pad = (64 - (pre + len(hdr) + 1) % 64) % 64
    hdr = hdr + " " * pad + "\n"
    body = b"".join(struct.pack(descr[0] + ("dd" if descr[2:] == "16" else "ff"), re, im) for re, im in values)
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(hdr)) + hdr.encode() + body)
vals = [(0.3 * i - 1.0, 0.1 * i) for i in range(16)]
npy("c16_c.npy", "<c16", (1, 2, 4, 1), False, vals[:8])
npy("c8_f.npy", "<c8", (2, 2, 2, 1), True, vals[:8])
npy("c16_be.npy", ">c16", (1, 4, 2, 2), False, vals)
npy("c8_v2.npy", "<c8", (1, 2, 2, 2), False, vals[:8], version=2)
json.dump([[[[[1, 0]], [[0, 1]]], [[[0.5, -0.5]], [[2, 0]]]]], open(os.path.join(out, "k2.json"), "w"))
json.dump([[[[[1, 0], [0, 1]], [[1, 1], [0, 0]]], [[[0.2, 0.1], [1, 0]], [[0, 0], [1, 1]]]]], open(os.path.join(out, "nt2.json"), "w"))
PY
    ;;
  *) echo "unknown target $target (gguf_parse, experiment_toml, channel_file)" >&2; exit 2 ;;
esac
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- -max_total_time="$secs" \
  -max_len="$max_len" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=60 2>&1 | tee "fuzz-$target.log"
