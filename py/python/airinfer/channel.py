"""Fading channel realisations, drawn as the ``airinfer`` CLI draws them.

Every draw in airinfer comes from a random stream named by a path of integers; realisation r
of :func:`mac` is drawn from ``(seed, FADING, point, r)``, the stream ``airinfer aircomp mse
--seed SEED`` uses for realisation r of its sweep point ``point`` (0 = the first SNR value).
The result is the layout :func:`airinfer.aircomp.design` and ``airinfer aircomp design
--channels`` read: ``(R, K, N_r, N_t)``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import numpy.typing as npt

from . import _airinfer

__all__ = ["mac", "rayleigh"]


def mac(
    devices: int,
    rx_antennas: int,
    tx_antennas: int = 1,
    realisations: int = 1,
    seed: int = 0,
    *,
    point: int = 0,
    rician_k_db: Optional[float] = None,
    rx_correlation: float = 0.0,
    tx_correlation: float = 0.0,
) -> npt.NDArray[np.complex128]:
    """Small-scale multiple-access channel realisations (unit average power per entry).

    Args:
        devices: K.
        rx_antennas: AP antennas N_r.
        tx_antennas: antennas per device N_t.
        realisations: R.
        seed: the seed (``--seed`` of the CLI).
        point: the sweep point whose streams to use (the CLI's index into its SNR list).
        rician_k_db: Rician K-factor in dB (line of sight from angles spread over +-60
            degrees); Rayleigh (i.i.d. CN(0, 1)) when None.
        rx_correlation: exponential correlation between adjacent AP antennas (0 = independent).
        tx_correlation: exponential correlation between adjacent device antennas.

    Returns:
        complex128 array of shape ``(R, K, N_r, N_t)``.

    Raises:
        ValueError: a parameter out of range (the Rust message, e.g.
            ``channel parameter 'devices' = 0: need at least one device``).
    """
    return _airinfer.mac(
        int(devices),
        int(rx_antennas),
        int(tx_antennas),
        int(realisations),
        int(seed),
        int(point),
        None if rician_k_db is None else float(rician_k_db),
        float(rx_correlation),
        float(tx_correlation),
    )


def rayleigh(
    devices: int,
    rx_antennas: int,
    tx_antennas: int = 1,
    realisations: int = 1,
    seed: int = 0,
    *,
    point: int = 0,
) -> npt.NDArray[np.complex128]:
    """i.i.d. Rayleigh MAC realisations: :func:`mac` without line of sight or correlation."""
    return mac(devices, rx_antennas, tx_antennas, realisations, seed, point=point)
