"""Type stubs of the Rust extension (use airinfer.aircomp, airinfer.channel, airinfer.run)."""

from pathlib import Path
from typing import Any, Callable, Mapping, Optional, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

class _DesignDict(TypedDict):
    receive_beamformer: npt.NDArray[np.complex128]
    precoders: npt.NDArray[np.complex128]
    mse: npt.NDArray[np.float64]
    power: npt.NDArray[np.float64]

def design(
    channels_npy: bytes,
    design: str,
    power_budget: list[float],
    signal_var: list[float],
    noise_var: float,
    streams: int,
    seed: int,
) -> _DesignDict: ...
def mse(
    channels_npy: bytes,
    receive_beamformer: npt.NDArray[np.complex128],
    precoders: npt.NDArray[np.complex128],
    signal_var: list[float],
    noise_var: float,
) -> npt.NDArray[np.float64]: ...
def mac(
    devices: int,
    rx_antennas: int,
    tx_antennas: int,
    realisations: int,
    seed: int,
    point: int,
    rician_k_db: Optional[float],
    rx_correlation: float,
    tx_correlation: float,
) -> npt.NDArray[np.complex128]: ...
def toml_document(config: Mapping[str, Any]) -> str: ...
def toml_value(value: Any, key: str) -> str: ...
def run_experiment(
    file: str,
    sets: list[str],
    out: Optional[str],
    force: bool,
    quiet: bool,
) -> Path: ...

class Model:
    """A GGUF model, open (use :class:`airinfer.Model`)."""

    def __init__(self, path_or_name: str, quiet: bool = True) -> None: ...
    @property
    def path(self) -> Path: ...
    @property
    def config(self) -> dict[str, Any]: ...
    def eval(
        self,
        args: list[str],
        config: Optional[str] = None,
        link: Optional[Callable[[list[npt.NDArray[np.float32]], int], Any]] = None,
        quiet: bool = True,
    ) -> str: ...
    def generate(
        self,
        args: list[str],
        link: Optional[Callable[[list[npt.NDArray[np.float32]], int], Any]] = None,
        quiet: bool = True,
    ) -> str: ...

def link_seconds_per_call(
    link: Optional[Callable[[list[npt.NDArray[np.float32]], int], Any]],
    devices: int,
    n_tokens: int,
    width: int,
    iters: int,
) -> float: ...
