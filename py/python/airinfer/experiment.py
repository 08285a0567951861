"""Experiment campaigns: :func:`run` an experiment as ``airinfer run FILE`` does, in this process,
and :func:`load` a results directory, as pandas DataFrames.

A campaign is run by the CLI's own function (the ``airinfer`` crate as a library): the same
checks, messages, results directory layout (``experiment.json``, ``results.csv``,
``summary.csv``, ``runs/``, figures), resume and locking, and the same bytes in
``results.csv`` as ``airinfer run`` on the same file. The GIL is released while it runs.

An experiment given as a dict (the structure of the TOML file, e.g. from ``tomllib.load``) is
written as TOML by the CLI's ``toml`` crate (:func:`to_toml`) into a temporary file, which is
run; its relative paths (``extends``, model and text files) are therefore taken from that
temporary directory: give absolute ones, or run the file itself with ``overrides``. Without a
``name`` key, a dict's experiment is named ``experiment``.

``overrides`` are ``airinfer run --set KEY=VALUE``: dotted key paths into the document
(``"channel.snr_db"``, ``'sweep."channel.snr_db"'``) set before it is checked, tables merged.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from . import _airinfer

if TYPE_CHECKING:  # pandas is imported when a table is read
    import pandas as pd

__all__ = ["Results", "load", "run", "to_toml"]

#: Columns of every results row before the parameters (``RUN_COLUMNS`` in the CLI), integers.
RUN_COLUMNS = ("run", "point", "replication", "seed")

#: The name of a dict's temporary file in messages (its path is gone after the run).
DICT_NAME = "<dict>"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Results:
    """A results directory read back: its tables and its configuration."""

    dir: Path
    """The results directory."""
    results: "pd.DataFrame" = field(repr=False)
    """``results.csv``: one row per run (and per key of a kind's rows)."""
    summary: "pd.DataFrame" = field(repr=False)
    """``summary.csv``: per point (and key), replications and each metric's mean and
    ``<metric>_ci95`` (95 % CI half-width)."""
    config: dict = field(repr=False)
    """The resolved configuration (``extends`` merged, overrides applied), from
    ``experiment.json``."""
    meta: dict = field(repr=False)
    """The whole ``experiment.json`` (name, hashes, seeds, times, plots, ...)."""

    def __repr__(self) -> str:
        return (
            f"Results(dir={str(self.dir)!r}, name={self.meta.get('name')!r}, "
            f"{len(self.results)} result rows, {len(self.summary)} summary rows)"
        )


def to_toml(config: Mapping[str, Any]) -> str:
    """``config`` (a dict of bool, int, float, str, dict, list values) as the text of a TOML file,
    written by the CLI's ``toml`` crate. ``None`` has no TOML value: leave such keys out."""
    if not isinstance(config, Mapping):
        raise ValueError(f"an experiment is a dict (a TOML table), not a {type(config).__name__}")
    return _airinfer.toml_document(dict(config))


def _sets(overrides: Optional[Mapping[str, Any]]) -> list[str]:
    sets = []
    for key, value in (overrides or {}).items():
        if not isinstance(key, str):
            raise ValueError(f"overrides: the key {key!r} is not a string (a dotted key path)")
        sets.append(f"{key}={_airinfer.toml_value(value, key)}")
    return sets


def run(
    experiment: Union[PathLike, Mapping[str, Any]],
    overrides: Optional[Mapping[str, Any]] = None,
    out: Optional[PathLike] = None,
    *,
    force: bool = False,
    quiet: bool = True,
) -> Results:
    """Run an experiment campaign as ``airinfer run`` does and return its results.

    Args:
        experiment: an experiment file (TOML), or a dict with its structure.
        overrides: dotted key path → value, as ``airinfer run --set KEY=VALUE``
            (``{"channel.snr_db": 10, "system.name": "mdi"}``); a swept key is overridden
            through its sweep: ``{'sweep."channel.snr_db"': [10, 20]}``.
        out: the results directory (``--out``); by default the CLI's: ``results/<name>``
            relative to the current directory, ``results/<name>/set-<overrides>`` with overrides.
        force: redo finished runs, and write into a directory of another experiment (``--force``).
        quiet: print nothing (``--quiet``); otherwise the CLI's progress and final table go to the
            process's stderr and stdout.

    Re-running into the same directory resumes: finished runs of the same configuration are
    kept. Ctrl-C (KeyboardInterrupt) stops the campaign before its next run, the finished ones
    kept. Errors (a bad file or key, a failed run) raise :class:`ValueError` with the CLI's
    message (without ``error:``); for a dict, its temporary file is named ``<dict>``.
    """
    sets = _sets(overrides)
    out_arg = None if out is None else os.fspath(out)
    if isinstance(experiment, Mapping):
        text = to_toml(experiment)
        with tempfile.TemporaryDirectory(prefix="airinfer-") as tmp:
            file = os.path.join(tmp, "experiment.toml")
            with open(file, "w", encoding="utf-8") as f:
                f.write(text)
            try:
                d = _airinfer.run_experiment(file, sets, out_arg, force, quiet)
            except ValueError as e:
                raise ValueError(str(e).replace(file, DICT_NAME)) from None
    else:
        d = _airinfer.run_experiment(os.fspath(experiment), sets, out_arg, force, quiet)
    return load(d)


def _table(path: Path, metrics: set[str]) -> "pd.DataFrame":
    """A CSV of the CLI as written: integers for the run columns, float64 for ``metrics``
    (``NaN``, ``inf`` as such, an empty cell as NaN), str for the rest (parameters and keys,
    exactly as written)."""
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    for c in df.columns:
        if c == "seed":
            df[c] = df[c].astype("uint64")
        elif c in RUN_COLUMNS or c == "replications":
            df[c] = df[c].astype("int64")
        elif c in metrics:
            df[c] = df[c].replace("", "NaN").astype("float64")
    return df


def load(results_dir: PathLike) -> Results:
    """Read a results directory (of ``airinfer run``, ``merge`` or :func:`run`).

    ``results`` and ``summary`` are its CSV files as DataFrames: metric columns (those with a
    ``<metric>_ci95`` in ``summary.csv``) and their CIs as float64 (``NaN`` for ``NaN``); ``run``,
    ``point``, ``replication``, ``replications`` as int64 and ``seed`` as uint64 (a float would
    round it); parameter and key columns (``scheme.kind``, ``channel.snr_db``, ``devices``, ...)
    as str, exactly as written (``df["channel.snr_db"].astype(float)`` for numbers).
    """
    d = Path(results_dir)
    try:
        with open(d / "experiment.json", encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{d}: not a results directory (no experiment.json)") from None
    import pandas as pd

    header = list(pd.read_csv(d / "summary.csv", nrows=0).columns)
    metrics = {c for c in header if f"{c}_ci95" in header}
    summary = _table(d / "summary.csv", metrics | {f"{m}_ci95" for m in metrics})
    results = _table(d / "results.csv", metrics)
    return Results(
        dir=d, results=results, summary=summary, config=meta.get("config", {}), meta=meta
    )
