"""airinfer.run / airinfer.load against `airinfer run` (the CLI binary) on the same experiments."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airinfer
from airinfer import experiment

pd = pytest.importorskip("pandas")
tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else None

REPO = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("AIRINFER_CLI", REPO / "target" / "release" / "airinfer"))
SMOKE = REPO / "experiments" / "smoke.toml"  # 8 runs of an all-reduce, well under a second
needs_cli = pytest.mark.skipif(
    not CLI.is_file(), reason=f"no CLI at {CLI} (cargo build --release, or set AIRINFER_CLI)"
)
needs_tomllib = pytest.mark.skipif(tomllib is None, reason="tomllib needs Python >= 3.11")


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def cli_run(file: Path, out: Path, *sets: str) -> None:
    args = ["run", str(file), "--out", str(out), "--quiet"]
    for s in sets:
        args += ["--set", s]
    p = cli(*args)
    assert p.returncode == 0, p.stderr


def cli_error(*args: str) -> str:
    """The CLI's message: its stderr's `error: <message>` line, without `error: `."""
    p = cli(*args)
    assert p.returncode == 1
    (line,) = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
    return line[len("error: ") :]


def hashes(d: Path) -> tuple:
    m = json.loads((d / "experiment.json").read_text())
    return m["experiment_hash"], m["run_hashes"]


def same_directories(a: Path, b: Path) -> None:
    """The same campaign results: CSV bytes and hashes (experiment.json also holds times and
    the experiment file's path, which differ)."""
    for f in ("results.csv", "summary.csv"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert hashes(a) == hashes(b)


def smoke_dict() -> dict:
    with open(SMOKE, "rb") as f:
        return tomllib.load(f)


# --- (1) run = `airinfer run`, byte for byte ----------------------------------------------------


@needs_cli
def test_run_equals_the_cli_byte_for_byte(tmp_path):
    r = airinfer.run(SMOKE, out=tmp_path / "py")
    cli_run(SMOKE, tmp_path / "cli")
    assert r.dir == tmp_path / "py"
    same_directories(tmp_path / "py", tmp_path / "cli")
    # the same figures, too
    for f in ("nmse_vs_snr.svg", "nmse_vs_snr.png"):
        assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f
    assert r.results.shape[0] == 8 and r.summary.shape[0] == 4
    assert r.meta["runs"] == 8 and r.meta["finished_at"] is not None
    assert r.config["name"] == "smoke" and r.config["devices"]["count"] == 4


@needs_cli
def test_default_out_is_the_clis(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert airinfer.run(SMOKE).dir == Path("results/smoke")
    r = airinfer.run(SMOKE, {"channel.rx_antennas": 2, "scheme.design": "zf"})
    # where `airinfer check --set …` says `run --set …` writes
    p = cli("check", str(SMOKE), "--set", "channel.rx_antennas=2", "--set", 'scheme.design="zf"')
    assert p.returncode == 0, p.stderr
    assert p.stdout.rstrip().endswith(f"results go to {r.dir}")
    assert r.dir.is_dir() and (r.dir / "results.csv").is_file()


def test_rerun_resumes(tmp_path):
    a = airinfer.run(SMOKE, out=tmp_path)
    runs = sorted((tmp_path / "runs").iterdir())
    stamps = [f.stat().st_mtime_ns for f in runs]
    b = airinfer.run(SMOKE, out=tmp_path)
    assert [f.stat().st_mtime_ns for f in runs] == stamps  # nothing redone
    pd.testing.assert_frame_equal(a.results, b.results)


@needs_cli
def test_ctrl_c_stops_a_campaign_between_runs_and_a_rerun_completes_it(tmp_path, monkeypatch):
    import _thread
    import threading

    # every run 200 ms longer (the campaign's test hook), so that Ctrl-C lands mid-campaign
    monkeypatch.setenv("AIRINFER_TEST_RUN_DELAY_MS", "200")
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        airinfer.run(SMOKE, out=tmp_path / "py")
    timer.cancel()
    done = len(list((tmp_path / "py" / "runs").iterdir()))
    assert 0 < done < 8, f"{done} runs finished before the interrupt took effect"
    monkeypatch.delenv("AIRINFER_TEST_RUN_DELAY_MS")
    airinfer.run(SMOKE, out=tmp_path / "py")  # resumes
    cli_run(SMOKE, tmp_path / "cli")
    same_directories(tmp_path / "py", tmp_path / "cli")


# --- (2) a dict with overrides = the TOML edited the same way --------------------------------


@needs_cli
@needs_tomllib
def test_dict_with_override_equals_the_edited_toml(tmp_path):
    text = SMOKE.read_text()
    assert "rx_antennas = 4\n" in text and 'design = "zf_sum"' in text
    edited = tmp_path / "smoke.toml"
    edited.write_text(text.replace("rx_antennas = 4\n", "rx_antennas = 2\n").replace(
        '"channel.snr_db" = [0, 20]', '"channel.snr_db" = [5, 10, 30]'
    ))
    cli_run(edited, tmp_path / "cli")
    overrides = {"channel.rx_antennas": 2, 'sweep."channel.snr_db"': [5, 10, 30]}
    r = airinfer.run(smoke_dict(), overrides, out=tmp_path / "dict")
    same_directories(tmp_path / "dict", tmp_path / "cli")
    assert list(r.summary["channel.snr_db"].unique()) == ["5", "10", "30"]
    assert r.config["channel"]["rx_antennas"] == 2
    # the file with the same overrides, and the CLI's --set
    airinfer.run(SMOKE, overrides, out=tmp_path / "file")
    cli_run(SMOKE, tmp_path / "cli-set", "channel.rx_antennas=2", 'sweep."channel.snr_db"=[5, 10, 30]')
    same_directories(tmp_path / "file", tmp_path / "cli")
    same_directories(tmp_path / "cli-set", tmp_path / "cli")
    # the dict edited instead of overridden
    d = smoke_dict()
    d["channel"]["rx_antennas"] = 2
    d["sweep"]["channel.snr_db"] = [5, 10, 30]
    airinfer.run(d, out=tmp_path / "edited-dict")
    same_directories(tmp_path / "edited-dict", tmp_path / "cli")


@needs_tomllib
def test_to_toml_reads_back_as_the_dict():
    d = smoke_dict()
    assert tomllib.loads(experiment.to_toml(d)) == d
    d = {"name": "x", "seed": 2**63 - 1, "a": {"f": 0.1, "b": True, "l": [1, 2.5, "s"]}}
    assert tomllib.loads(experiment.to_toml(d)) == d


# --- (3) load reads back the same tables --------------------------------------------------------


def test_load_reads_back_the_same_tables(tmp_path):
    r = airinfer.run(SMOKE, out=tmp_path)
    back = airinfer.load(tmp_path)
    assert back.dir == r.dir
    pd.testing.assert_frame_equal(back.results, r.results)
    pd.testing.assert_frame_equal(back.summary, r.summary)
    assert back.config == r.config == json.loads((tmp_path / "experiment.json").read_text())["config"]
    res, summ = back.results, back.summary
    # dtypes: run columns integers (the seed exact), parameters and keys as written, metrics float
    assert res["run"].dtype == "int64" and res["seed"].dtype == "uint64"
    assert summ["replications"].dtype == "int64" and summ["point"].dtype == "int64"
    for df in (res, summ):
        for c in ("scheme.kind", "channel.snr_db", "devices"):
            assert pd.api.types.is_string_dtype(df[c]), c
    for c in ("nmse", "airtime_us", "bits_per_value"):
        assert res[c].dtype == "float64" and summ[c].dtype == summ[f"{c}_ci95"].dtype == "float64"
    # the numbers are the CSV's text, parsed; "NaN" (AirComp has no bits per value) is NaN
    raw = pd.read_csv(tmp_path / "results.csv", dtype=str, keep_default_na=False)
    assert [int(s) for s in raw["seed"]] == [int(s) for s in res["seed"]]
    for c in ("nmse", "mse", "bits_per_value"):
        for text, x in zip(raw[c], res[c]):
            assert (math.isnan(x) and text == "NaN") or float(text) == x
    assert res.loc[res["scheme.kind"] == "aircomp", "bits_per_value"].isna().all()
    assert not res.loc[res["scheme.kind"] == "digital", "bits_per_value"].isna().any()


def test_load_of_a_directory_without_results(tmp_path):
    with pytest.raises(ValueError, match="not a results directory"):
        airinfer.load(tmp_path)


# --- (4) errors: the CLI's message ---------------------------------------------------------------


@needs_cli
@needs_tomllib
def test_bad_key_in_a_dict_has_the_clis_message(tmp_path):
    d = smoke_dict()
    d["channel"]["snr_dB"] = 10
    with pytest.raises(ValueError) as e:
        airinfer.run(d, out=tmp_path / "py")
    # the CLI on the file run() wrote: the same text after the file's path, which is the
    # temporary file's (gone after the run, so run() names it <dict>)
    f = tmp_path / "experiment.toml"
    f.write_text(experiment.to_toml(d))
    want = cli_error("run", str(f), "--out", str(tmp_path / "cli"), "--quiet")
    assert want.startswith(f"{f}:")
    assert str(e.value) == experiment.DICT_NAME + want[len(str(f)) :]
    assert "channel.snr_dB: unknown field `snr_dB`" in str(e.value)
    assert not (tmp_path / "py").exists()


@needs_cli
@pytest.mark.parametrize(
    "overrides, sets",
    [
        ({"channel.snr_dB": 10}, ["channel.snr_dB=10"]),  # unknown key
        ({"channel.snr_db": 10}, ["channel.snr_db=10"]),  # a swept key
        ({"devices.count": "four"}, ['devices.count="four"']),  # wrong type
    ],
)
def test_bad_override_has_the_clis_message(tmp_path, overrides, sets):
    with pytest.raises(ValueError) as e:
        airinfer.run(SMOKE, overrides, out=tmp_path / "py")
    args = ["run", str(SMOKE), "--out", str(tmp_path / "cli"), "--quiet"]
    for s in sets:
        args += ["--set", s]
    assert str(e.value) == cli_error(*args)


@needs_cli
def test_missing_file_has_the_clis_message(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ValueError) as e:
        airinfer.run(missing, out=tmp_path / "py")
    assert str(e.value) == cli_error("run", str(missing), "--out", str(tmp_path / "cli"))
    assert "cannot read the experiment file" in str(e.value)


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "channel.snr_db: None has no TOML value"),
        (2**64, "channel.snr_db: 18446744073709551616 is beyond TOML's signed 64-bit integers"),
        (object(), "channel.snr_db: a value of type object has no TOML value"),
    ],
)
def test_values_without_toml(tmp_path, value, message):
    with pytest.raises(ValueError, match=message):
        airinfer.run(SMOKE, {"channel.snr_db": value}, out=tmp_path)
    with pytest.raises(ValueError, match="channel.x"):
        experiment.to_toml({"channel": {"x": None}})
