#!/usr/bin/env python3
"""Write llm/tests/data/quant_fixtures.json: blocks of every GGML block type airinfer reads,
random bytes with finite f16 scales, and their values dequantised by an independent
implementation, the `gguf` Python package (gguf.quants.dequantize, numpy).

    python3 -m venv /tmp/ggufenv && /tmp/ggufenv/bin/pip install gguf
    /tmp/ggufenv/bin/python scripts/quant_fixtures.py
"""
import json

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf import quants

try:
    from importlib.metadata import version

    GGUF_VERSION = version("gguf")
except Exception:  # pragma: no cover
    GGUF_VERSION = "unknown"

# byte offsets of each block's f16 scales (d, dmin, m): random bytes there could be inf/NaN
F16_FIELDS = {
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q8_0": [0],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
    "IQ4_NL": [0],
    "IQ4_XS": [0],
}
BLOCKS = 3


def main() -> None:
    rng = np.random.default_rng(20)
    out = {"tool": f"python gguf package {GGUF_VERSION} (gguf.quants.dequantize)", "types": {}}
    for name, fields in F16_FIELDS.items():
        t = T[name]
        bs, ts = GGML_QUANT_SIZES[t]
        raw = rng.integers(0, 256, size=BLOCKS * ts, dtype=np.uint8)
        for b in range(BLOCKS):
            for off in fields:
                v = np.float16(rng.uniform(-0.05, 0.05) if off else rng.uniform(0.001, 0.05))
                raw[b * ts + off : b * ts + off + 2] = np.frombuffer(v.tobytes(), dtype=np.uint8)
        vals = quants.dequantize(raw.reshape(1, -1), t).reshape(-1).astype(np.float32)
        assert vals.size == BLOCKS * bs and np.all(np.isfinite(vals)), name
        out["types"][name] = {
            "hex": raw.tobytes().hex(),
            "values": [float(x) for x in vals],
        }
    with open("llm/tests/data/quant_fixtures.json", "w") as f:
        json.dump(out, f, indent=0)


if __name__ == "__main__":
    main()
