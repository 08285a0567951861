"""examples/python/aircomp_link.py runs (its quick form) and its numbers keep their invariants."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "python" / "aircomp_link.py"
pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def test_the_example_runs_and_mmse_is_never_worse_than_zf(tmp_path):
    home = Path(os.environ.get("AIRINFER_HOME", Path.home() / ".cache" / "airinfer"))
    if not (home / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file() and not os.environ.get(
        "AIRINFER_REQUIRE_MODEL"
    ):
        pytest.skip("smollm2-135m is not cached (airinfer fetch smollm2-135m)")
    p = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "aircomp_link.png").stat().st_size > 10_000
    df = pd.read_csv(tmp_path / "aircomp_link.csv")
    assert list(df.design) == ["zf", "mmse"]
    # a forward pass of SmolLM2 (30 blocks) makes 60 all-reduces; --quick evaluates one chunk
    assert (df.all_reduces == 60).all()
    assert all(math.isfinite(x) and x > 1 for x in df.perplexity)
    zf, mmse = df.set_index("design").loc["zf"], df.set_index("design").loc["mmse"]
    # the MMSE design starts from the best ZF design and never increases the MSE
    assert mmse.design_mse <= zf.design_mse
    # the noise reached the model: the over-the-air all-reduce is not exact
    assert zf.link_nmse > 0 and mmse.link_nmse > 0
