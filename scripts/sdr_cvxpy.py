#!/usr/bin/env python3
"""Solve the SDR instances of `airinfer bench phy` with cvxpy and compare with our Rust solver.

Input is the JSON written by `target/release/airinfer bench phy --sdr-instances FILE`:
    {"instances": [{"devices": K, "rx_antennas": n, "tx_antennas": t, "c": [c_k, ...],
                    "h": h[k][row][col] = [re, im]   (each H_k is n x t),
                    "primal": our certified upper bound, "dual": our certified lower bound}, ...]}

Each instance is the semidefinite relaxation
    minimise    real(trace(M))
    subject to  real(trace(M @ Q_k)) >= c_k,  Q_k = H_k H_k^H,  k = 1..K,
                M complex Hermitian n x n, M >= 0 (PSD).
The cvxpy problem is built per instance (no Parameters) and solved with cvxpy's default solver
for this problem class (the name is reported; cvxpy 1.9 routes every problem with a PSD cone to
SCS, with eps_abs = eps_rel = 1e-5; `--solver CLARABEL` overrides this, e.g. to compare against
an interior-point method at tighter accuracy). One untimed warm-up solve precedes the measurements so that first-call overheads
(lazy imports etc.) are not charged to the first instance.

Per instance we measure the wall time of the whole `prob.solve()` call (canonicalisation +
solver + unpacking) and the solver's own time (`prob.solver_stats.solve_time`, when the solver
reports it), and compare the optimal value v with our bracket [dual, primal]:
    relative difference  = (v - primal) / |primal|
    in bracket           = dual - 1e-6 |dual|  <=  v  <=  primal + 1e-6 |primal|
Results are grouped by (K, N_r, N_t). Our own solve rates are printed by the Rust bench; this
script prints cvxpy's.

Getting cvxpy (this script installs nothing itself):
    python3 -m venv /tmp/cvxpy-venv          # or $AIRINFER_HOME/venv-cvxpy, any directory
    /tmp/cvxpy-venv/bin/pip install cvxpy numpy
If `python3 -m venv` fails on Debian/Ubuntu (missing ensurepip), `apt-get install -y python3-venv`
first. (On the machine this was written on, plain `python3 -m venv` worked.)

Usage:
    target/release/airinfer bench phy --sdr-instances /tmp/sdr_instances.json
    /tmp/cvxpy-venv/bin/python scripts/sdr_cvxpy.py /tmp/sdr_instances.json [--limit N] [--json]
                                                    [--solver NAME]
"""
import argparse
import json
import sys
import time
from importlib import metadata

import numpy as np

try:
    import cvxpy as cp
except ImportError:
    sys.exit("cvxpy not found: see the docstring of this script for how to set up a venv")

BRACKET_SLACK = 1e-6
# cvxpy solver name -> PyPI distribution name, for version reporting
SOLVER_DIST = {"CLARABEL": "clarabel", "SCS": "scs", "MOSEK": "mosek", "CVXOPT": "cvxopt",
               "COPT": "coptpy", "SDPA": "sdpa-python"}


def channels(inst):
    """H_k as complex arrays of shape (n, t)."""
    h = np.asarray(inst["h"], dtype=float)  # (K, n, t, 2)
    return h[..., 0] + 1j * h[..., 1]


def build(inst):
    n = inst["rx_antennas"]
    m = cp.Variable((n, n), hermitian=True)
    cons = [m >> 0]
    for hk, ck in zip(channels(inst), inst["c"]):
        q = hk @ hk.conj().T
        cons.append(cp.real(cp.trace(m @ q)) >= ck)
    return cp.Problem(cp.Minimize(cp.real(cp.trace(m))), cons)


def solve(inst, solver=None):
    prob = build(inst)
    t0 = time.perf_counter()
    prob.solve(solver=solver)
    wall = time.perf_counter() - t0
    stats = prob.solver_stats
    return {
        "status": prob.status,
        "value": prob.value,
        "wall": wall,
        "solve_time": getattr(stats, "solve_time", None),
        "solver": getattr(stats, "solver_name", None),
    }


def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("instances", help="JSON file from `airinfer bench phy --sdr-instances`")
    ap.add_argument("--limit", type=int, default=None, help="at most N instances per size")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--solver", default=None,
                    help="cvxpy solver name to use instead of cvxpy's default (e.g. CLARABEL)")
    args = ap.parse_args()

    with open(args.instances) as f:
        instances = json.load(f)["instances"]
    groups = {}
    for inst in instances:
        key = (inst["devices"], inst["rx_antennas"], inst["tx_antennas"])
        g = groups.setdefault(key, [])
        if args.limit is None or len(g) < args.limit:
            g.append(inst)
    if not groups:
        sys.exit("no instances")

    solve(instances[0], args.solver)  # warm-up, not measured

    sizes = []
    solvers = set()
    for (k, nr, nt), insts in sorted(groups.items()):
        wall, stime, rel, inside, failed, inaccurate, names = 0.0, 0.0, [], 0, 0, 0, set()
        stime_ok = True
        for inst in insts:
            r = solve(inst, args.solver)
            names.add(r["solver"])
            wall += r["wall"]
            if r["solve_time"] is None:
                stime_ok = False
            else:
                stime += r["solve_time"]
            if r["status"] not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or r["value"] is None:
                failed += 1
                continue
            inaccurate += r["status"] == cp.OPTIMAL_INACCURATE
            v, p, d = r["value"], inst["primal"], inst["dual"]
            rel.append((v - p) / abs(p))
            lo, hi = d - BRACKET_SLACK * abs(d), p + BRACKET_SLACK * abs(p)
            inside += lo <= v <= hi
        solvers |= names
        n = len(insts)
        worst = max(rel, key=abs) if rel else None
        sizes.append({
            "devices": k, "rx_antennas": nr, "tx_antennas": nt,
            "instances": n,
            "solver": ",".join(sorted(map(str, names))),
            "solves_per_s_wall": n / wall,
            "solves_per_s_solver": n / stime if stime_ok and stime > 0 else None,
            "worst_rel_diff": worst,
            "max_abs_rel_diff": abs(worst) if worst is not None else None,
            "in_bracket": inside,
            "inaccurate": inaccurate,
            "failed": failed,
        })

    out = {
        "cvxpy": cp.__version__,
        "numpy": np.__version__,
        "solver_requested": args.solver or "cvxpy default",
        "solver_versions": {s: version(SOLVER_DIST.get(str(s), str(s).lower())) for s in sorted(map(str, solvers))},
        "bracket_slack_rel": BRACKET_SLACK,
        "sizes": sizes,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return

    vers = ", ".join(f"{s} {v}" for s, v in out["solver_versions"].items())
    print(f"cvxpy {out['cvxpy']}, numpy {out['numpy']}, solver {vers}")
    fmt = "{:>2} {:>4} {:>4} {:>5} {:>9} {:>12} {:>14} {:>15} {:>10} {:>10} {:>6}"
    print(fmt.format("K", "N_r", "N_t", "inst", "solver", "solves/s wall", "solves/s solver",
                     "worst rel diff", "in bracket", "inaccurate", "failed"))
    for s in sizes:
        sv = s["solves_per_s_solver"]
        wr = s["worst_rel_diff"]
        print(fmt.format(s["devices"], s["rx_antennas"], s["tx_antennas"], s["instances"],
                         s["solver"], f"{s['solves_per_s_wall']:.1f}",
                         "n/a" if sv is None else f"{sv:.1f}",
                         "n/a" if wr is None else f"{wr:+.2e}",
                         f"{s['in_bracket']}/{s['instances']}", s["inaccurate"], s["failed"]))


if __name__ == "__main__":
    main()
