"""airinfer from Python: AirComp transceiver designs and fading channels.

The numbers come from airinfer's Rust libraries (``airinfer-phy``), called as the
``airinfer`` command line calls them, so the same inputs and seed give the same bits from
both. Submodules:

- :mod:`airinfer.aircomp` -- :func:`~airinfer.aircomp.design` (ZF, MMSE, SCA, SDR
  transceivers) and :func:`~airinfer.aircomp.mse` (closed-form MSE of given beamformers);
- :mod:`airinfer.channel` -- :func:`~airinfer.channel.mac` (Rayleigh / Rician MAC
  realisations with the CLI's seeding).

Channels are complex NumPy arrays of shape ``(R, K, N_r, N_t)``: R realisations of K devices'
``N_r x N_t`` channel matrices (AP antennas x device antennas). Errors from Rust are raised as
:class:`ValueError` with the CLI's one-line message. The GIL is released while Rust computes.
"""

from . import aircomp, channel
from ._airinfer import __version__

__all__ = ["aircomp", "channel", "__version__"]
