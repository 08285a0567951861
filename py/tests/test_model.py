"""airinfer.Model against `airinfer eval` / `airinfer generate` (the CLI binary) on the real
model, and the contract of a Python callable link."""

from __future__ import annotations

import _thread
import functools
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import airinfer

REPO = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("AIRINFER_CLI", REPO / "target" / "release" / "airinfer"))
needs_cli = pytest.mark.skipif(
    not CLI.is_file(), reason=f"no CLI at {CLI} (cargo build --release, or set AIRINFER_CLI)"
)
# wall-clock fields: the only ones that may differ between two runs of the same evaluation
TIMES = {"seconds", "tokens_per_s", "prefill_tok_s", "decode_tok_s"}


def cached_model() -> bool:
    home = Path(os.environ.get("AIRINFER_HOME", Path.home() / ".cache" / "airinfer"))
    return (home / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()


@pytest.fixture(scope="module")
def model() -> airinfer.Model:
    # scripts/test.sh fetches the model and sets AIRINFER_REQUIRE_MODEL=1: then it must be there
    if not cached_model() and not os.environ.get("AIRINFER_REQUIRE_MODEL"):
        pytest.skip("smollm2-135m is not cached (airinfer fetch smollm2-135m)")
    return airinfer.Model("smollm2-135m")


def cli_json(*args: str) -> dict:
    p = subprocess.run([str(CLI), *args, "--json"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def cli_error(*args: str) -> str:
    p = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=600)
    assert p.returncode != 0
    (line,) = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
    return line[len("error: ") :]


def without_times(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in TIMES}


def device_order_sum(parts, site):
    """The ideal all-reduce written in Python: float32 sums in device order."""
    return functools.reduce(np.add, parts)


@needs_cli
def test_eval_equals_the_cli(model):
    for kw, flags in [
        (dict(devices=2), ["--devices", "2"]),
        (dict(shares=[2, 1, 1]), ["--shares", "2,1,1"]),
        (dict(sliding=64, devices=3, max_tokens=400), ["--sliding", "64", "--devices", "3", "--max-tokens", "400"]),
    ]:
        r = model.eval(ctx=128, chunks=2, **kw)
        want = cli_json("eval", "--ctx", "128", "--chunks", "2", *flags)
        assert without_times(r) == without_times(want), kw
        assert set(r) == set(want)


@needs_cli
def test_eval_with_a_scheme_equals_the_cli(model):
    link = {"scheme": "aircomp", "snr_db": 5.0, "design": "mmse", "seed": 3}
    r = model.eval(ctx=64, chunks=1, devices=2, link=link)
    want = cli_json(
        "eval", "--ctx", "64", "--chunks", "1", "--devices", "2",
        "--scheme", "aircomp", "--snr-db", "5", "--design", "mmse", "--seed", "3",
    )
    assert r == want
    # the radio did something: noise at 5 dB moves the perplexity off the error-free one
    assert r["perplexity"] != r["reference_perplexity"]


@needs_cli
def test_generate_equals_the_cli(model):
    for kw, flags in [
        (dict(), []),
        (dict(temperature=0.8, top_k=40, top_p=0.9, seed=7, devices=2), ["--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "--seed", "7", "--devices", "2"]),
        (dict(chat=True), ["--chat"]),
    ]:
        r = model.generate("The capital of France is", max_tokens=12, **kw)
        want = cli_json("generate", "--prompt", "The capital of France is", "--max-tokens", "12", *flags)
        assert without_times(r) == without_times(want), kw


def test_a_python_sum_in_device_order_is_the_ideal_link_bit_for_bit(model):
    ideal = model.eval(ctx=128, chunks=2, shares=[2, 1, 1])
    mine = model.eval(ctx=128, chunks=2, shares=[2, 1, 1], link=device_order_sum)
    assert mine["perplexity"] == ideal["perplexity"]
    assert mine["running_ppl"] == ideal["running_ppl"]
    g = model.generate("Once upon a time", max_tokens=10, devices=2)
    h = model.generate("Once upon a time", max_tokens=10, devices=2, link=device_order_sum)
    assert g["token_ids"] == h["token_ids"]


def test_the_link_sees_every_site_in_order_with_every_devices_partial(model):
    n_layer, n_embd = model.config["n_layer"], model.config["n_embd"]
    calls = []

    def spy(parts, site):
        calls.append((site, len(parts), [p.shape for p in parts], {p.dtype for p in parts}))
        return [p.copy() for p in device_order_sum(parts, site)[None].repeat(len(parts), 0)]

    model.generate("Hello", max_tokens=2, devices=3, link=spy)
    prompt = model.generate("Hello", max_tokens=1)["prompt_tokens"]
    # the prompt's prefill, then one decode step: 2 * n_layer sites each, in order
    assert [c[0] for c in calls] == list(range(2 * n_layer)) * 2
    assert all(c[1] == 3 and c[3] == {np.dtype(np.float32)} for c in calls)
    assert calls[0][2] == [(prompt, n_embd)] * 3
    assert calls[-1][2] == [(1, n_embd)] * 3


def test_what_the_link_returns_reaches_the_output(model):
    ideal = model.eval(ctx=128, chunks=1, devices=2)
    rng = np.random.default_rng(0)

    def noisy(parts, site):
        s = device_order_sum(parts, site)
        return s + rng.normal(0.0, 0.5 * float(np.std(s)), size=s.shape)  # float64: cast back

    r = model.eval(ctx=128, chunks=1, devices=2, link=noisy)
    assert r["perplexity"] > ideal["perplexity"] * 1.01
    # each device goes on from what it received: zeros at device 1 alone (device 0 gets the
    # exact sum and makes the logits) wreck its next partials, and so everyone's sum
    r = model.eval(ctx=128, chunks=1, devices=2, link=lambda p, s: [sum(p), 0 * p[1]])
    assert r["perplexity"] > 2 * ideal["perplexity"]


def test_an_exception_in_the_link_comes_out_unchanged_and_stops_the_pass(model):
    calls = []

    class Boom(Exception):
        pass

    def link(parts, site):
        calls.append(site)
        if site == 5:
            raise Boom("my decoder failed")
        return sum(parts)

    with pytest.raises(Boom, match="my decoder failed"):
        model.eval(ctx=128, chunks=2, devices=2, link=link)
    assert calls == list(range(6)), "the forward pass went on after the exception"
    with pytest.raises(Boom):
        model.generate("Hi", max_tokens=4, devices=2, link=link)
    # the model is still usable
    assert model.eval(ctx=128, chunks=1, devices=2)["perplexity"] > 1


def test_a_link_returning_the_wrong_thing_is_a_clear_error(model):
    cases = [
        (lambda p, s: None, "link returned a NoneType: return a list of 2 arrays"),
        (lambda p, s: [p[0]] * 3, "link returned 3 arrays for 2 devices"),
        (lambda p, s: sum(p)[:, :10], r"shape \[128, 10\] at index 0; the partials' shape is \(128, 576\)"),
        (lambda p, s: [sum(p), sum(p).T], r"at index 1"),
    ]
    for f, msg in cases:
        with pytest.raises(ValueError, match=msg):
            model.eval(ctx=128, chunks=1, devices=2, link=f)


@needs_cli
def test_bad_options_raise_the_cli_message(model):
    for kw, flags in [
        (dict(ctx=2), ["--ctx", "2"]),
        (dict(ctx=128, devices=0), ["--ctx", "128", "--devices", "0"]),
        (dict(ctx=128, text="/nonexistent/text.txt"), ["--ctx", "128", "--text", "/nonexistent/text.txt"]),
        (dict(ctx=128, shares="sca", devices=2), ["--ctx", "128", "--shares", "sca", "--devices", "2"]),
    ]:
        with pytest.raises(ValueError) as e:
            model.eval(**kw)
        assert str(e.value) == cli_error("eval", *flags), kw
    with pytest.raises(ValueError) as e:
        model.generate("Hi", temperature=-1)
    assert str(e.value) == cli_error("generate", "--prompt", "Hi", "--temperature=-1")
    with pytest.raises(ValueError) as e:
        airinfer.Model("/nonexistent/model.gguf")
    assert str(e.value) == cli_error("eval", "--model", "/nonexistent/model.gguf")
    with pytest.raises(ValueError, match="scheme = \"nope\""):
        model.eval(ctx=128, chunks=1, devices=2, link={"scheme": "nope"})


def test_the_gil_is_released_while_rust_computes(model):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    t0 = time.perf_counter()
    model.eval(ctx=256, chunks=2, devices=2)
    took = time.perf_counter() - t0
    stop.set()
    t.join()
    # a thread that needs the GIL every millisecond ran all along (with the GIL held it could
    # not tick at all); a tenth of the ideal count leaves room for a loaded machine
    assert ticks > 0.1 * took / 0.001, (ticks, took)


def test_ctrl_c_stops_an_evaluation(model):
    t0 = time.perf_counter()
    model.eval(ctx=512, devices=2, chunks=1)
    chunk = time.perf_counter() - t0
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # the whole text: about 150 chunks
        model.eval(ctx=512, devices=2)
    timer.cancel()
    # stopped at an all-reduce soon after, inside the chunk it was in (a chunk makes 60)
    took = time.perf_counter() - t0
    assert took < 0.3 + 2 * chunk + 0.5, (took, chunk)
