#!/usr/bin/env python3
"""Vectorised NumPy reference for `airinfer bench phy` (a): AirComp Monte-Carlo trials per second.

One trial: draw a Rayleigh channel (K = 8 single-antenna devices, N_r = 4 AP antennas), design
zero-forcing transceivers with the sum-of-channel-directions receive beamformer (unit power
budgets and signal variances, noise variance 0.1), send 288 Gaussian symbols per device,
combine, and measure the MSE of the sum. Trials are vectorised in batches.

Usage: python3 scripts/bench_aircomp_numpy.py [SECONDS]
"""
import sys
import time

import numpy as np

K, NR, SYMBOLS, NOISE = 8, 4, 288, 0.1


def trials(rng, batch):
    cn = lambda *s: (rng.standard_normal(s) + 1j * rng.standard_normal(s)) / np.sqrt(2)
    h = cn(batch, K, NR)  # (B, K, N_r)
    # principal direction of each device's channel, phase-aligned on antenna 0, then summed
    u = h / np.linalg.norm(h, axis=2, keepdims=True)
    u = u * (np.conj(u[:, :, :1]) / np.abs(u[:, :, :1]))
    f = u.sum(axis=1)
    f /= np.linalg.norm(f, axis=1, keepdims=True)  # (B, N_r)
    g = np.abs(np.einsum("bn,bkn->bk", np.conj(f), h)) ** 2  # |fᴴh_k|²
    c2 = np.max(1.0 / g, axis=1)  # σ_k² / (P_k g_k), unit σ and P
    a = f * np.sqrt(c2)[:, None]
    ah = np.einsum("bn,bkn->bk", np.conj(a), h)
    b = np.conj(ah) / np.abs(ah) ** 2  # ZF precoders
    s = cn(batch, K, SYMBOLS)
    y = np.einsum("bkn,bk,bks->bns", h, b, s) + np.sqrt(NOISE) * cn(batch, NR, SYMBOLS)
    est = np.einsum("bn,bns->bs", np.conj(a), y)
    return np.mean(np.abs(est - s.sum(axis=1)) ** 2, axis=1)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rng = np.random.default_rng(1)
    trials(rng, 64)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        trials(rng, 256)
        n += 256
    print(f"numpy {np.__version__}: {n / (time.perf_counter() - t0):.0f} AirComp trials/s "
          f"(K={K}, N_r={NR}, {SYMBOLS} symbols, ZF sum-direction)")


if __name__ == "__main__":
    main()
