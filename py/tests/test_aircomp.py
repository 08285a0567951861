"""airinfer.aircomp and airinfer.channel against their definitions and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import airinfer
from airinfer import aircomp, channel

REPO = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("AIRINFER_CLI", REPO / "target" / "release" / "airinfer"))
needs_cli = pytest.mark.skipif(
    not CLI.is_file(), reason=f"no CLI at {CLI} (cargo build --release, or set AIRINFER_CLI)"
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=300)


def closed_form_mse(H, A, B, noise_var, signal_var=1.0):
    """sum_k s_k ||A^H H_k B_k - I||_F^2 + noise ||A||_F^2 per realisation, in NumPy."""
    R, K = H.shape[:2]
    L = A.shape[-1]
    s = np.broadcast_to(np.asarray(signal_var, dtype=float), (K,))
    out = np.empty(R)
    for r in range(R):
        ah = A[r].conj().T
        mis = sum(s[k] * np.linalg.norm(ah @ H[r, k] @ B[r, k] - np.eye(L)) ** 2 for k in range(K))
        out[r] = mis + noise_var * np.linalg.norm(A[r]) ** 2
    return out


# --- (a) shapes and dtypes -------------------------------------------------------------------


@pytest.mark.parametrize("name", aircomp.DESIGNS)
def test_shapes_and_dtypes(name):
    R, K, Nr, Nt, L = 3, 4, 3, 2, 1 if name == "sdr" else 2
    H = channel.mac(K, Nr, Nt, realisations=R, seed=7)
    assert H.shape == (R, K, Nr, Nt) and H.dtype == np.complex128
    d = aircomp.design(H, name, power_budget=1.0, noise_var=0.1, streams=L, seed=3)
    assert d.receive_beamformer.shape == (R, Nr, L)
    assert d.precoders.shape == (R, K, Nt, L)
    assert d.mse.shape == (R,) and d.power.shape == (R, K)
    assert d.receive_beamformer.dtype == np.complex128 and d.precoders.dtype == np.complex128
    assert d.mse.dtype == np.float64 and d.power.dtype == np.float64
    # the returned MSE is the closed form of the returned beamformers, within budgets
    np.testing.assert_allclose(d.mse, closed_form_mse(H, *d[:2], 0.1), rtol=1e-10)
    np.testing.assert_allclose(d.mse, aircomp.mse(H, *d[:2], noise_var=0.1), rtol=1e-12)
    assert np.all(d.power <= 1.0 + 1e-9)


def test_layouts_and_dtypes_of_h_give_the_same_design():
    H = channel.mac(5, 4, 2, realisations=2, seed=11)
    ref = aircomp.design(H, "sca", noise_var=0.3)
    fortran = np.asfortranarray(H)
    strided = np.zeros((2, 5, 4, 4), complex)
    strided[..., ::2] = H  # a non-contiguous view
    for h in (fortran, strided[..., ::2], H.tolist()):
        d = aircomp.design(h, "sca", noise_var=0.3)
        for x, y in zip(d, ref):
            assert x.tobytes() == y.tobytes()
    # complex64 is read as the CLI reads it (widened exactly)
    h32 = H.astype(np.complex64)
    a = aircomp.design(h32, "zf", noise_var=0.3)
    b = aircomp.design(h32.astype(np.complex128), "zf", noise_var=0.3)
    assert a.mse.tobytes() == b.mse.tobytes()


def test_per_device_parameters_and_seeds():
    H = channel.mac(3, 4, realisations=2, seed=2)
    d = aircomp.design(H, "zf", power_budget=[1.0, 2.0, 0.5], signal_var=[1, 1, 2], noise_var=0.1)
    np.testing.assert_allclose(
        d.mse, closed_form_mse(H, *d[:2], 0.1, signal_var=[1, 1, 2]), rtol=1e-10
    )
    assert np.all(d.power <= np.array([1.0, 2.0, 0.5]) + 1e-9)
    # channels: same seed, same bits; another seed or point, other draws
    assert channel.mac(3, 4, realisations=2, seed=2).tobytes() == H.tobytes()
    assert not np.array_equal(channel.mac(3, 4, realisations=2, seed=3), H)
    assert not np.array_equal(channel.mac(3, 4, realisations=2, seed=2, point=1), H)
    # realisation r does not depend on R
    assert np.array_equal(channel.mac(3, 4, realisations=5, seed=2)[:2], H)
    np.testing.assert_allclose(np.mean(np.abs(channel.mac(4, 4, 2, 2000, seed=0)) ** 2), 1, atol=0.02)


# --- (b) invalid input: ValueError with one line naming the problem ---------------------------


@pytest.mark.parametrize(
    "H, match",
    [
        (np.zeros((2, 3, 4), complex), r"shape \(2, 3, 4\) — expected 4 dimensions"),
        (np.zeros((1, 0, 2, 1), complex), r"every dimension must be ≥ 1"),
        (np.ones((1, 2, 2, 1)), r"dtype '<f8': expected complex64"),
        (np.full((1, 2, 2, 1), np.nan, complex), r"realisation 0, device 0: non-finite entry"),
    ],
)
def test_bad_channels_raise_value_error(H, match):
    with pytest.raises(ValueError, match=match) as e:
        aircomp.design(H, "zf")
    assert "\n" not in str(e.value)


def test_bad_parameters_raise_value_error():
    H = channel.mac(3, 2, realisations=1, seed=0)
    cases = [
        (dict(design="zf", streams=2), r"2 streams: need 1 ≤ L ≤ min\(N_r = 2, N_t = 1\)"),
        (dict(design="zf", noise_var=0.0), r"noise variance 0 must be finite and > 0"),
        (dict(design="zf", power_budget=[1, 2]), r"power_budget: 2 values for 3 devices"),
        (dict(design="nope"), r"unknown design `nope`, expected one of `zf`"),
        (dict(design="fast"), r'design "fast" is now called "sca"'),
    ]
    for kw, match in cases:
        with pytest.raises(ValueError, match=match):
            aircomp.design(H, **kw)
    d = aircomp.design(H, "zf")
    with pytest.raises(ValueError, match=r"receive_beamformer has shape \(1, 3, 1\); expected"):
        aircomp.mse(H, np.zeros((1, 3, 1)), d.precoders)
    with pytest.raises(ValueError, match=r"precoders has shape \(1, 3, 2, 1\); expected"):
        aircomp.mse(H, d.receive_beamformer, np.zeros((1, 3, 2, 1)))
    with pytest.raises(ValueError, match=r"channel parameter 'devices' = 0"):
        channel.mac(0, 2)


# --- (c) the same bits as the CLI ---------------------------------------------------------------


def cli_design(path, name, **kw):
    args = ["aircomp", "design", "--channels", str(path), "--design", name.replace("_", "-"), "--json"]
    for k, v in kw.items():
        v = ",".join(map(repr, v)) if isinstance(v, (list, tuple)) else repr(v)
        args += [f"--{k.replace('_', '-')}", v]
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["realisations"]


def as_complex(x):
    a = np.asarray(x, dtype=np.float64)
    return a[..., 0] + 1j * a[..., 1]


@needs_cli
@pytest.mark.parametrize(
    "name, shape, streams, kw",
    [
        ("zf", (3, 6, 4, 1), 1, dict(noise_var=0.1)),
        ("zf_sum", (3, 6, 4, 1), 1, dict(noise_var=0.1)),
        ("mmse", (2, 4, 3, 2), 2, dict(noise_var=0.05, power_budget=[1.0, 0.5, 2.0, 1.0])),
        ("sca", (3, 8, 4, 2), 1, dict(noise_var=0.2, signal_var=[1, 2, 1, 1, 1, 1, 3, 1])),
        ("sdr", (3, 12, 4, 1), 1, dict(noise_var=0.1, seed=42)),
        ("sdr", (2, 12, 4, 2), 2, dict(noise_var=0.1, seed=7)),
    ],
)
def test_design_equals_cli_bit_for_bit(tmp_path, name, shape, streams, kw):
    R, K, Nr, Nt = shape
    H = channel.mac(K, Nr, Nt, realisations=R, seed=sum(shape))
    np.save(tmp_path / "h.npy", H)
    ref = cli_design(tmp_path / "h.npy", name, streams=streams, **kw)
    d = aircomp.design(H, name, streams=streams, **kw)
    assert len(ref) == R
    for r, rr in enumerate(ref):
        # JSON floats are printed shortest-round-trip, so parsing them back is exact
        assert np.float64(rr["mse"]).tobytes() == d.mse[r].tobytes()
        assert as_complex(rr["receive_beamformer"]).tobytes() == d.receive_beamformer[r].tobytes()
        assert as_complex(rr["precoders"]).tobytes() == d.precoders[r].tobytes()
        assert np.asarray(rr["power"], dtype=np.float64).tobytes() == d.power[r].tobytes()
    if name == "sdr" and streams == 1:  # the seed matters here: it picks the candidates
        other = aircomp.design(H, name, streams=streams, **{**kw, "seed": kw["seed"] + 1})
        assert other.receive_beamformer.tobytes() != d.receive_beamformer.tobytes()


@needs_cli
@pytest.mark.parametrize("rician", [None, 3.0])
def test_channels_equal_cli_draws(rician):
    """`aircomp mse` averages the analytic MSE over its own draws (seed, FADING, point, r):
    the same mean from channel.mac + aircomp.design, summed in the same order, is the same
    float only if every channel and design bit matches."""
    K, Nr, R, seed = 6, 4, 8, 5
    args = ["aircomp", "mse", "--devices", str(K), "--rx-antennas", str(Nr), "--snr-db", "0,10",
            "--designs", "zf,sdr", "--realisations", str(R), "--symbols", "1",
            "--seed", str(seed), "--json"]
    if rician is not None:
        args += ["--rician-k-db", str(rician)]
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    points = json.loads(p.stdout)["points"]
    assert len(points) == 2
    for point, (snr, row) in enumerate(zip([0.0, 10.0], points)):
        H = channel.mac(K, Nr, 1, realisations=R, seed=seed, point=point, rician_k_db=rician)
        for name in ("zf", "sdr"):
            d = aircomp.design(H, name, noise_var=10.0 ** (-snr / 10.0), seed=seed)
            total = 0.0
            for m in d.mse:  # left to right, as the CLI sums
                total += float(m)
            assert total / R == row[name]["analytic_mse"], (point, name)


@needs_cli
def test_error_messages_equal_cli(tmp_path):
    # every device on the same antenna, the design's direction orthogonal to device 0
    H = np.zeros((1, 2, 2, 1), complex)
    np.save(tmp_path / "h.npy", H)
    p = cli("aircomp", "design", "--channels", str(tmp_path / "h.npy"), "--design", "zf", "--json")
    assert p.returncode != 0
    with pytest.raises(ValueError) as e:
        aircomp.design(H, "zf")
    assert p.stderr.strip() == f"error: {e.value}"
    # file errors: the CLI prefixes the file name
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4), complex))
    p = cli("aircomp", "design", "--channels", str(tmp_path / "bad.npy"), "--json")
    with pytest.raises(ValueError) as e:
        aircomp.design(np.zeros((2, 3, 4), complex))
    assert p.stderr.strip() == f"error: {tmp_path / 'bad.npy'}: {e.value}"


# --- (d) ZF on channels of known structure ------------------------------------------------------


def test_zf_single_stream_aligned_channels():
    """h_k = g_k e_1: A ∝ e_1, B_k = 1/(c g_k), c² = max_k σ_k²/(P_k |g_k|²), MSE = σ² c²."""
    g = np.array([1.0, 0.5j, -2.0, 0.8 + 0.6j])
    H = np.zeros((1, 4, 3, 1), complex)
    H[0, :, 0, 0] = g
    P, s, noise = np.array([1.0, 2.0, 0.5, 1.0]), np.array([1.0, 1.0, 1.0, 3.0]), 0.1
    d = aircomp.design(H, "zf", power_budget=P, signal_var=s, noise_var=noise)
    c2 = np.max(s / (P * np.abs(g) ** 2))
    np.testing.assert_allclose(d.mse, [noise * c2], rtol=1e-12)
    a = d.receive_beamformer[0, :, 0]
    np.testing.assert_allclose(np.abs(a), [np.sqrt(c2), 0, 0], atol=1e-12)
    for k in range(4):  # unbiased: a^H h_k b_k = 1
        np.testing.assert_allclose(a.conj() @ H[0, k] @ d.precoders[0, k], [1.0], atol=1e-12)
    np.testing.assert_allclose(d.power[0], s / (c2 * np.abs(g) ** 2), rtol=1e-12)
    assert np.isclose(d.power[0] / P, 1).any()  # the tightest budget is met with equality


def test_zf_two_streams_scaled_identity():
    """H_k = g_k I (2 × 2), L = 2: tr((GᴴH_kH_kᴴG)⁻¹) = 2/|g_k|², MSE = σ² L max_k 2σ_k²/(P_k|g_k|²)."""
    g = np.array([1.0, 0.5, 1.5j])
    H = g[None, :, None, None] * np.eye(2)[None, None]
    noise = 0.1
    d = aircomp.design(H, "zf", streams=2, noise_var=noise)
    c2 = np.max(2 / np.abs(g) ** 2)
    np.testing.assert_allclose(d.mse, [noise * c2 * 2], rtol=1e-12)
    np.testing.assert_allclose(d.mse, closed_form_mse(H, *d[:2], noise), rtol=1e-12)
    # MMSE is never worse than ZF
    assert aircomp.design(H, "mmse", streams=2, noise_var=noise).mse[0] <= d.mse[0] * (1 + 1e-12)


def test_gil_is_released():
    """Python code runs while a long design computes in another thread."""
    import threading
    import time

    H = channel.mac(16, 24, realisations=128, seed=0)
    t0 = time.perf_counter()
    aircomp.design(H, "sdr", noise_var=0.1)
    alone = time.perf_counter() - t0
    done, ticks = threading.Event(), 0
    th = threading.Thread(target=lambda: (aircomp.design(H, "sdr", noise_var=0.1), done.set()))
    th.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    th.join()
    # with the GIL held the loop would be stuck for the whole design; released, it ticks
    # about once per millisecond
    assert ticks >= max(3, alone * 1000 / 10), (ticks, alone)


def test_version():
    assert isinstance(airinfer.__version__, str)
