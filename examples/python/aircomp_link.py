#!/usr/bin/env python3
"""Your own over-the-air all-reduce inside the real model, from Python.

Sionna-style channels (made here with NumPy, in Sionna's tensor layout) -> AirComp
transceivers from ``airinfer.aircomp.design`` -> a Python link that sends every all-reduce of
the tensor-parallel model over those channels -> ``Model.eval`` perplexity -> a pandas table
and a matplotlib figure.

    . .venv/bin/activate          # made by `bash scripts/test.sh` (see README.md)
    python examples/python/aircomp_link.py            # ~2 minutes on 2 cores
    python examples/python/aircomp_link.py --quick    # a few seconds

Writes ``aircomp_link.csv`` and ``aircomp_link.png`` into ``--out`` (default
``examples/python/out``).

The set-up (ours, for the example): K devices at 20-60 m from an AP with an N_r-antenna
half-wavelength ULA, 3GPP UMi-like path loss, Rician fading with K-factor 3 dB whose line of
sight comes from each device's direction; the large-scale gains are normalised to a mean of 1,
so ``snr_db`` is the mean receive SNR of one device at full power. Every all-reduce takes a new
channel realisation (block fading with one all-reduce per block), the devices scale their
partial sums by one common factor (side information, not counted) so that the complex symbols
have unit variance, two real values per complex symbol, and every device receives the AP's
estimate (an ideal downlink).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import airinfer


def sionna_style_channels(rng, realisations, devices, rx_antennas, k_factor_db=3.0):
    """Channel coefficients in Sionna's layout ``[batch, num_rx, num_rx_ant, num_tx,
    num_tx_ant, num_paths, num_time_steps]`` (one AP, single-antenna devices, one path and
    time step after OFDM/narrowband reduction)."""
    dist = rng.uniform(20.0, 60.0, size=devices)
    # 3GPP UMi street canyon LoS-like path loss at 3.5 GHz, dB (32.4 + 21 log10 d + 20 log10 fc)
    pl_db = 32.4 + 21.0 * np.log10(dist) + 20.0 * np.log10(3.5)
    beta = 10.0 ** (-pl_db / 10.0)
    beta /= beta.mean()  # snr_db is the mean receive SNR
    theta = rng.uniform(-np.pi / 3, np.pi / 3, size=devices)
    n = np.arange(rx_antennas)
    steer = np.exp(1j * np.pi * np.outer(n, np.sin(theta)))  # (N_r, K)
    kf = 10.0 ** (k_factor_db / 10.0)
    nlos = (rng.standard_normal((realisations, rx_antennas, devices))
            + 1j * rng.standard_normal((realisations, rx_antennas, devices))) / np.sqrt(2.0)
    h = np.sqrt(beta) * (np.sqrt(kf / (kf + 1.0)) * steer + np.sqrt(1.0 / (kf + 1.0)) * nlos)
    return h[:, None, :, :, None, None, None]  # (batch, 1, N_r, K, 1, 1, 1)


class AirCompLink:
    """The all-reduce over the air: ``y = sum_k H_k b_k z_k + n``, estimate ``A^H y``."""

    def __init__(self, H, design, noise_var, seed):
        self.noise_var = noise_var
        self.rng = np.random.default_rng(seed)
        # effective channel of each device in each realisation: H_k b_k, (R, K, N_r)
        self.hb = np.einsum("rkij,rkj->rki", H, design.precoders[..., 0])
        self.a = design.receive_beamformer[..., 0]  # (R, N_r)
        self.calls = 0
        self.err = 0.0
        self.ref = 0.0

    def __call__(self, partials, site):
        r = self.calls % len(self.a)
        self.calls += 1
        x = np.stack(partials).astype(np.float64)  # (K, tokens, width)
        exact = x.sum(axis=0)
        # one common scale so that each device's complex symbols have variance <= 1
        c = np.sqrt(2.0 * (x ** 2).mean(axis=(1, 2)).max()) or 1.0
        z = (x[..., 0::2] + 1j * x[..., 1::2]).reshape(len(x), -1) / c  # (K, n)
        y = self.hb[r].T @ z  # (N_r, n)
        y += np.sqrt(self.noise_var / 2.0) * (
            self.rng.standard_normal(y.shape) + 1j * self.rng.standard_normal(y.shape))
        s = (self.a[r].conj() @ y) * c  # (n,)
        est = np.empty_like(exact)
        est[..., 0::2] = s.real.reshape(exact[..., 0::2].shape)
        est[..., 1::2] = s.imag.reshape(exact[..., 1::2].shape)
        self.err += float(((est - exact) ** 2).sum())
        self.ref += float((exact ** 2).sum())
        return est.astype(np.float32)  # every device receives the estimate


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr-db", type=float, nargs="+", default=[20.0, 30.0, 40.0, 50.0])
    p.add_argument("--designs", nargs="+", default=["zf", "mmse", "sca"])
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--rx-antennas", type=int, default=8)
    p.add_argument("--realisations", type=int, default=64)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--chunks", type=int, default=2)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    p.add_argument("--quick", action="store_true", help="one SNR, two designs, a short text")
    a = p.parse_args()
    if a.quick:
        a.snr_db, a.designs, a.realisations, a.ctx, a.chunks = [40.0], ["zf", "mmse"], 8, 64, 1

    import pandas as pd  # noqa: E402 (after argparse: --help works without them)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(a.seed)
    h = sionna_style_channels(rng, a.realisations, a.devices, a.rx_antennas)
    # the one transpose: Sionna's [batch, rx, rx_ant, tx, tx_ant, path, time] -> (R, K, N_r, N_t)
    H = np.transpose(h[:, 0, :, :, :, 0, 0], (0, 2, 1, 3))

    model = airinfer.Model(a.model)
    ideal = model.eval(ctx=a.ctx, chunks=a.chunks, devices=a.devices)
    t0 = time.perf_counter()
    ideal = model.eval(ctx=a.ctx, chunks=a.chunks, devices=a.devices)  # timed: the split is loaded
    print(f"ideal all-reduce: perplexity {ideal['perplexity']:.3f} in {time.perf_counter() - t0:.2f} s")
    rows = []
    for design in a.designs:
        for snr in a.snr_db:
            noise_var = 10.0 ** (-snr / 10.0)
            t0 = time.perf_counter()
            d = airinfer.aircomp.design(H, design, power_budget=1.0, noise_var=noise_var,
                                        signal_var=1.0, seed=a.seed)
            t_design = time.perf_counter() - t0
            link = AirCompLink(H, d, noise_var, seed=a.seed)
            t0 = time.perf_counter()
            r = model.eval(ctx=a.ctx, chunks=a.chunks, devices=a.devices, link=link)
            rows.append(dict(design=design, snr_db=snr, design_mse=float(d.mse.mean()),
                             link_nmse=link.err / link.ref, perplexity=r["perplexity"],
                             ideal_perplexity=ideal["perplexity"], all_reduces=link.calls,
                             design_s=t_design, eval_s=time.perf_counter() - t0))
            print(f"{design:>5} {snr:5.1f} dB: design MSE {rows[-1]['design_mse']:.3e}, "
                  f"NMSE of the all-reduce {rows[-1]['link_nmse']:.3e}, "
                  f"perplexity {r['perplexity']:.3f} (ideal {ideal['perplexity']:.3f})", flush=True)
    df = pd.DataFrame(rows)
    a.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out / "aircomp_link.csv", index=False)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    styles = ["o-", "s--", "^:", "d-.", "v-"]
    for (design, g), st in zip(df.groupby("design", sort=False), styles * 5):
        ax1.semilogy(g.snr_db, g.design_mse, st, label=design, mfc="none")
        ax2.semilogy(g.snr_db, g.perplexity, st, label=design, mfc="none")
    ax2.axhline(ideal["perplexity"], color="k", ls="--", label="ideal all-reduce")
    ax1.set(xlabel="mean receive SNR (dB)", ylabel="designed MSE per symbol",
            title=f"aircomp.design, K={a.devices}, N_r={a.rx_antennas}")
    ax2.set(xlabel="mean receive SNR (dB)", ylabel="perplexity",
            title=f"{Path(model.path).stem.split('.')[0]}, all-reduces over the air")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / "aircomp_link.png", dpi=120)
    print(df.to_string(index=False))
    print(f"wrote {a.out / 'aircomp_link.csv'} and {a.out / 'aircomp_link.png'}")


if __name__ == "__main__":
    main()
