"""airinfer from Python: experiment campaigns, AirComp transceiver designs and fading channels.

The numbers come from airinfer's Rust libraries (``airinfer-phy``; for campaigns the CLI crate
``airinfer`` itself), called as the ``airinfer`` command line calls them, so the same inputs and
seed give the same bits from both. Campaigns:

- :func:`run` -- run an experiment (a TOML file or a dict, with ``--set``-style overrides) as
  ``airinfer run`` does, in this process; returns :class:`Results` (``results`` and ``summary``
  as pandas DataFrames, ``config``, ``dir``);
- :func:`load` -- the same :class:`Results` of a finished results directory.

The model: :class:`Model` (``Model("smollm2-135m").eval(text, ctx=..., devices=..., link=...)``
and ``.generate(prompt, ...)``) runs the real model tensor-parallel with the ideal all-reduce,
the CLI's simulated radio, or your own Python callable as the all-reduce.

Submodules:

- :mod:`airinfer.aircomp` -- :func:`~airinfer.aircomp.design` (ZF, MMSE, SCA, SDR
  transceivers) and :func:`~airinfer.aircomp.mse` (closed-form MSE of given beamformers);
- :mod:`airinfer.channel` -- :func:`~airinfer.channel.mac` (Rayleigh / Rician MAC
  realisations with the CLI's seeding);
- :mod:`airinfer.experiment` -- :func:`run`, :func:`load`, :func:`~airinfer.experiment.to_toml`.

Channels are complex NumPy arrays of shape ``(R, K, N_r, N_t)``: R realisations of K devices'
``N_r x N_t`` channel matrices (AP antennas x device antennas). Errors from Rust are raised as
:class:`ValueError` with the CLI's one-line message. The GIL is released while Rust computes.
"""

from . import aircomp, channel, experiment, model
from ._airinfer import __version__
from .experiment import Results, load, run
from .model import Model

__all__ = ["aircomp", "channel", "experiment", "model", "run", "load", "Results", "Model", "__version__"]
