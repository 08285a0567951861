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
  gguf_parse) cp -n seeds/* "$corpus/" 2>/dev/null || true ;;
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
