"""Over-the-air computation (AirComp): transceiver designs and their MSE.

System (Zhang, He, Song, Zhang, Letaief 2025, eq. (5)-(8)): device k sends ``B_k s_k`` with
``s_k`` in C^L, ``E[s_k s_k^H] = signal_var_k I``; the AP receives
``y = sum_k H_k B_k s_k + n``, ``n ~ CN(0, noise_var I)``, and estimates the sum as
``A^H y``. The mean-squared error is

    MSE(A, {B_k}) = sum_k signal_var_k ||A^H H_k B_k - I||_F^2 + noise_var ||A||_F^2

under the budgets ``signal_var_k tr(B_k B_k^H) <= power_budget_k`` (per channel use).

Channel layout
--------------
``H`` has shape ``(R, K, N_r, N_t)``: ``H[r, k]`` is device k's ``N_r x N_t`` channel
(AP antennas x device antennas) in realisation r, complex64 or complex128, any memory order.
Sionna's channel tensors put the receiver first, ``[batch, num_rx, num_rx_ant, num_tx,
num_tx_ant, ...]``; for one AP (``num_rx = 1``) and one time step / subcarrier::

    h = h_sionna[:, 0, :, :, :, 0, 0]          # (batch, N_r, K, N_t)
    H = np.transpose(h, (0, 2, 1, 3))          # (R = batch, K, N_r, N_t)

It is read by the same code as the CLI's ``airinfer aircomp design --channels file.npy``, with
the same checks and messages.
"""

from __future__ import annotations

import io
from typing import NamedTuple, Sequence, Union

import numpy as np
import numpy.typing as npt

from . import _airinfer

__all__ = ["DESIGNS", "Design", "design", "mse"]

#: The design names :func:`design` accepts (``"zf-sum"`` is accepted for ``"zf_sum"``).
DESIGNS = ("zf", "zf_sum", "mmse", "sca", "sdr")

PerDevice = Union[float, Sequence[float], npt.ArrayLike]


class Design(NamedTuple):
    """A designed transceiver per realisation (R realisations, K devices, L streams)."""

    receive_beamformer: npt.NDArray[np.complex128]
    """``A``, shape ``(R, N_r, L)``."""
    precoders: npt.NDArray[np.complex128]
    """``B_k``, shape ``(R, K, N_t, L)``."""
    mse: npt.NDArray[np.float64]
    """Closed-form MSE of each realisation's design, shape ``(R,)``."""
    power: npt.NDArray[np.float64]
    """Power each device spends per channel use, ``signal_var_k tr(B_k B_k^H)``, ``(R, K)``."""


def _npy_bytes(H: npt.ArrayLike) -> bytes:
    """``H`` as the bytes of a ``.npy`` file (NumPy's own writer), for the CLI's reader."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(H), allow_pickle=False)
    return buf.getvalue()


def _per_device(v: PerDevice, what: str) -> list[float]:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim > 1:
        raise ValueError(f"{what}: a number or a 1-D sequence (one per device), not shape {a.shape}")
    return [float(x) for x in a.reshape(-1)]


def design(
    H: npt.ArrayLike,
    design: str = "sca",
    *,
    power_budget: PerDevice = 1.0,
    noise_var: float = 1.0,
    signal_var: PerDevice = 1.0,
    streams: int = 1,
    seed: int = 0,
) -> Design:
    """Design AirComp transceivers for every realisation of ``H``.

    Equal, bit for bit, to ``airinfer aircomp design --channels H.npy --design DESIGN
    --power-budget ... --signal-var ... --noise-var ... --streams ... --seed ... --json``.

    Args:
        H: channels, complex, shape ``(R, K, N_r, N_t)`` (see the module docstring).
        design: ``"zf"`` (zero-forcing along the principal eigen-directions of
            ``sum_k H_k H_k^H``), ``"zf_sum"`` (zero-forcing along the sum of the channel
            directions), ``"mmse"`` (alternating MMSE optimisation, 100 iterations),
            ``"sca"`` (successive convex approximation, 100 iterations) or ``"sdr"``
            (semidefinite relaxation with 100 Gaussian randomisations).
        power_budget: per channel use; one value for all devices or one per device.
        noise_var: receiver noise variance (> 0).
        signal_var: signal variance of each device's symbols; one value or one per device.
        streams: number of streams L, ``1 <= L <= min(N_r, N_t)``.
        seed: seed of the SDR randomisation; realisation r draws from the stream
            ``(seed, RANDOMISATION, r)`` as the CLI does. The other designs are deterministic.

    Returns:
        :class:`Design` with ``receive_beamformer`` ``(R, N_r, L)``, ``precoders``
        ``(R, K, N_t, L)``, ``mse`` ``(R,)`` and ``power`` ``(R, K)``.

    Raises:
        ValueError: invalid channels, parameters or design name, or a realisation the design
            cannot serve (``"realisation r: aircomp: ..."``), with the CLI's message.
    """
    out = _airinfer.design(
        _npy_bytes(H),
        design,
        _per_device(power_budget, "power_budget"),
        _per_device(signal_var, "signal_var"),
        float(noise_var),
        int(streams),
        int(seed),
    )
    return Design(out["receive_beamformer"], out["precoders"], out["mse"], out["power"])


def mse(
    H: npt.ArrayLike,
    receive_beamformer: npt.ArrayLike,
    precoders: npt.ArrayLike,
    *,
    noise_var: float = 1.0,
    signal_var: PerDevice = 1.0,
) -> npt.NDArray[np.float64]:
    """Closed-form MSE ``sum_k signal_var_k ||A^H H_k B_k - I||_F^2 + noise_var ||A||_F^2``.

    Args:
        H: channels, complex, shape ``(R, K, N_r, N_t)``.
        receive_beamformer: ``A``, shape ``(R, N_r, L)``.
        precoders: ``B_k``, shape ``(R, K, N_t, L)``.
        noise_var: receiver noise variance (> 0).
        signal_var: one value or one per device.

    Returns:
        The MSE of each realisation, float64, shape ``(R,)``.

    Raises:
        ValueError: shapes that disagree or invalid parameters (one line naming the problem).
    """
    return _airinfer.mse(
        _npy_bytes(H),
        np.asarray(receive_beamformer, dtype=np.complex128),
        np.asarray(precoders, dtype=np.complex128),
        _per_device(signal_var, "signal_var"),
        float(noise_var),
    )
