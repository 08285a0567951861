#!/usr/bin/env python3
"""The cost of a Python callable link per all-reduce, on the real model.

``Model.eval`` / ``Model.generate`` with the built-in ideal all-reduce against the same call
with a Python callable as the all-reduce, on SmolLM2-135M split over K devices:

* ``pass``: ``lambda parts, site: parts`` -- the crossing alone (K partials copied into fresh
  NumPy arrays, the call with the GIL taken, K arrays converted and copied back);
* ``np.add``: ``functools.reduce(np.add, parts)`` -- the ideal sum written in NumPy, returned as
  one array for every device (bit-identical to the built-in link).

1. One all-reduce alone, timed in Rust (``_airinfer.link_seconds_per_call``: the link called the
   way the forward pass calls it, the GIL released between calls), per partial size: 1 token
   (decode), 64 and ``ctx`` tokens (prefill).
2. In the model: decode steps of ``generate`` (1 x n_embd per partial; the rate generate
   reports) and prefill chunks of ``eval`` (ctx x n_embd); the overhead per all-reduce is
   (t_link - t_ideal) / (2 per block per forward pass), best of ``--reps``, the two interleaved.

    /tmp/pyvenv/bin/python py/bench/bench_link.py [--quick] [--devices 2 4]
"""

from __future__ import annotations

import argparse
import functools
import platform
import subprocess
import time

import numpy as np

import airinfer
from airinfer import _airinfer


def best(reps, f):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, nargs="+", default=[2, 4])
    p.add_argument("--gen-tokens", type=int, default=64)
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--chunks", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.devices, a.gen_tokens, a.ctx, a.chunks, a.reps = [2], 8, 64, 1, 1

    m = airinfer.Model("smollm2-135m")
    n_layer, d = m.config["n_layer"], m.config["n_embd"]
    links = {
        "pass": lambda parts, site: parts,
        "np.add": lambda parts, site: functools.reduce(np.add, parts),
    }
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True).stdout
    print(f"# {cpu.split(':', 1)[-1].strip()}, Python {platform.python_version()}, numpy {np.__version__}")

    # 1. one all-reduce, as the forward pass calls it (GIL released between calls)
    print("\n| K | tokens x n_embd | built-in ideal µs | `pass` µs | `np.add` µs |")
    print("|--:|--:|--:|--:|--:|")
    for k in a.devices:
        for t in sorted({1, 64, a.ctx}):
            iters = max(20, 20000 // t) if not a.quick else 10
            us = [
                1e6 * min(
                    _airinfer.link_seconds_per_call(f, k, t, d, iters) for _ in range(a.reps)
                )
                for f in [None, *links.values()]
            ]
            print(f"| {k} | {t} x {d} | {us[0]:.2f} | {us[1]:.1f} | {us[2]:.1f} |", flush=True)

    # 2. in the model: decode steps (generate) and prefill chunks (eval)
    print("\n| K | phase | ideal ms | `np.add` link ms | overhead µs per all-reduce | overhead % |")
    print("|--:|---|--:|--:|--:|--:|")
    prompt = "The history of wireless communication began"
    f = links["np.add"]
    for k in a.devices:
        gen = lambda link: m.generate(prompt, max_tokens=a.gen_tokens, devices=k, link=link)
        ev = lambda link: m.eval(ctx=a.ctx, chunks=a.chunks, devices=k, link=link)
        gen(None)  # load the split, warm the caches
        ev(None)

        def per_step(link):
            # the decode steps alone: generate reports their rate; best of reps
            r = [gen(link) for _ in range(a.reps)]
            return min(1.0 / x["decode_tok_s"] for x in r)

        def per_chunk(link):
            return best(a.reps, lambda: ev(link)) / a.chunks

        for phase, timed in [("decode (1 token)", per_step), (f"prefill ({a.ctx} tokens)", per_chunk)]:
            # interleaved, so that a slow spell of the machine hits both
            ti, tl = [], []
            for _ in range(2):
                ti.append(timed(None))
                tl.append(timed(f))
            t_ideal, t = min(ti), min(tl)
            over = (t - t_ideal) / (2 * n_layer)
            print(f"| {k} | {phase} | {t_ideal * 1e3:.2f} | {t * 1e3:.2f} | {over * 1e6:.1f} | "
                  f"{100 * (t - t_ideal) / t_ideal:.1f} |", flush=True)


if __name__ == "__main__":
    main()
