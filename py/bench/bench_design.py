#!/usr/bin/env python3
"""AirComp transceiver designs: airinfer (Python and CLI) against an independent cvxpy SDR.

For each size (K devices, N_r AP antennas; N_t = 1, L = 1) the script draws R i.i.d. Rayleigh
realisations ``H ~ CN(0, 1)`` (NumPy ``default_rng`` with a fixed seed) and designs on the SAME
channels:

* ``airinfer.aircomp.design(H, d, ...)`` for d in sdr, sca, zf, mmse (rayon over realisations,
  all cores; again in a subprocess with ``RAYON_NUM_THREADS=1``);
* the CLI ``airinfer aircomp design --channels H.npy --design d ... --json`` (all cores and
  ``--threads 1``), whose MSEs must equal the Python ones bit for bit (checked for every design);
* cvxpy: the SDR that airinfer's "sdr" solves (phy/src/aircomp/sdr.rs, sdp.rs), written from its
  definition, for single-stream ZF transceivers

      min tr(M)  s.t.  tr(M H_k H_k^H) >= signal_var_k / power_budget_k,  M >= 0 (Hermitian),

  solved by cvxpy + Clarabel (by default), then the same post-processing as sdr.rs: candidates
  [principal eigenvector u_1 | U Lambda^{1/2} Z] (Z ~ CN(0, I), 100 draws), each scaled by the
  smallest t with t ||H_k^H a||^2 >= c_k for all k, the one with the least noise_var t ||a||^2
  kept, ZF precoders b_k = (a^H H_k)^H / ||a^H H_k||^2, and its closed-form MSE by
  ``airinfer.aircomp.mse`` (checked against a NumPy evaluation of the formula).

The Hermitian SDP is passed to cvxpy in its real form (W = [[X, -Y], [Y, X]] of M = X + iY, a
real symmetric 2N_r x 2N_r variable; tr(Q M) = tr(Q~ W)/2): with a `hermitian=True` variable
cvxpy/Clarabel stops with "optimal_inaccurate" on most of these instances, while the real form
solves every one. The SDP bound reported is noise_var * c^T y for cvxpy's dual y, scaled down
until I - sum_k y_k Q_k is verified PSD (a lower bound on the MSE of every ZF design, by weak
duality; airinfer computes the same certificate internally but does not expose it).

Table columns: ms per realisation (wall, median of repeats for airinfer; the CLI includes process
start and reading the .npy; cvxpy includes canonicalisation, solve and randomisation), mean MSE,
mean of (MSE - MSE_cvxpy)/MSE_cvxpy per realisation, mean of (MSE - bound)/bound per realisation.
A second table compares the SDR designs realisation by realisation: CLI = Python bit for bit,
SDP solutions of rank one (where the principal eigenvector is optimal and both must hit the bound),
how often and by how much airinfer's MSE is above / below cvxpy's, and the seed-to-seed spread of
cvxpy's 100-candidate randomisation (and a 10000-candidate one) around airinfer's mean.

cvxpy 1.9's automatic choice for this SDP is SCS (first-order, ~1e-5 gaps here); the script asks
for Clarabel (interior point, 1e-8 tolerances) unless --solver says otherwise.

    /tmp/pyvenv/bin/python py/bench/bench_design.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import airinfer
from airinfer import aircomp

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CLI = Path(os.environ.get("AIRINFER_CLI", REPO / "target" / "release" / "airinfer"))
DESIGNS = ("sdr", "sca", "zf", "mmse")
CANDIDATES = 100  # Gaussian randomisations, as named.rs gives sdr()


# --- channels and the closed form ----------------------------------------------------------


def rayleigh(R: int, K: int, Nr: int, Nt: int, seed: int) -> np.ndarray:
    """H ~ CN(0, 1) i.i.d., shape (R, K, Nr, Nt), complex128."""
    rng = np.random.default_rng([seed, K, Nr, Nt])
    return (rng.standard_normal((R, K, Nr, Nt)) + 1j * rng.standard_normal((R, K, Nr, Nt))) / np.sqrt(2)


def closed_form_mse(H, A, B, noise_var, signal_var):
    """sum_k s_k ||A^H H_k B_k - I||_F^2 + noise ||A||_F^2 per realisation (aircomp.py's formula)."""
    R, K = H.shape[:2]
    L = A.shape[-1]
    out = np.empty(R)
    for r in range(R):
        ah = A[r].conj().T
        mis = sum(signal_var * np.linalg.norm(ah @ H[r, k] @ B[r, k] - np.eye(L)) ** 2 for k in range(K))
        out[r] = mis + noise_var * np.linalg.norm(A[r]) ** 2
    return out


# --- cvxpy SDR -----------------------------------------------------------------------------


class CvxpySdr:
    """The SDR of sdr.rs for one size, as a DPP-parametrised cvxpy problem (compiled once)."""

    def __init__(self, K: int, Nr: int, c: float, solver: str):
        import cvxpy as cp

        self.cp, self.K, self.n, self.c, self.solver = cp, K, Nr, c, solver
        n2 = 2 * Nr
        self.W = cp.Variable((n2, n2), symmetric=True)
        self.Q = [cp.Parameter((n2, n2), symmetric=True) for _ in range(K)]
        self.cons = [0.5 * cp.trace(q @ self.W) >= c for q in self.Q]
        self.prob = cp.Problem(cp.Minimize(0.5 * cp.trace(self.W)), [self.W >> 0, *self.cons])
        assert self.prob.is_dpp()

    def solve(self, h: np.ndarray):
        """h: (K, Nr, Nt). Returns (M complex Hermitian, primal value, certified dual c^T y, info)."""
        qs = [hk @ hk.conj().T for hk in h]
        for p, q in zip(self.Q, qs):
            p.value = np.block([[q.real, -q.imag], [q.imag, q.real]])
        self.prob.solve(solver=self.solver)
        st = self.prob.solver_stats
        info = {"status": self.prob.status, "solve_time": st.solve_time, "iters": st.num_iters}
        if self.prob.status not in ("optimal", "optimal_inaccurate"):
            raise RuntimeError(f"cvxpy: {self.prob.status}")
        W = self.W.value
        n = self.n
        M = 0.5 * (W[:n, :n] + W[n:, n:]) + 0.5j * (W[n:, :n] - W[:n, n:])
        M = 0.5 * (M + M.conj().T)
        # dual certificate: y >= 0 with S = I - sum y_k Q_k >= 0 (scaled down until verified)
        y = np.maximum(np.array([float(np.asarray(con.dual_value)) for con in self.cons]), 0.0)
        S = np.eye(n) - sum(yk * q for yk, q in zip(y, qs))
        lmin = np.linalg.eigvalsh(0.5 * (S + S.conj().T)).min()
        alpha = 1.0 / (1.0 - lmin) if lmin < 0 else 1.0
        info["dual_scale"] = alpha
        return M, float(self.prob.value), float(alpha * self.c * y.sum()), info


def randomise(M, h, c, noise_var, rng, candidates=CANDIDATES):
    """sdr.rs's post-processing: best of [u_1 | U Lambda^{1/2} Z], scaled to the budgets; ZF B."""
    n = M.shape[0]
    lam, U = np.linalg.eigh(M)
    root = U * np.sqrt(np.maximum(lam, 0.0))
    Z = (rng.standard_normal((n, candidates)) + 1j * rng.standard_normal((n, candidates))) / np.sqrt(2)
    cands = np.concatenate([U[:, [np.argmax(lam)]], root @ Z], axis=1)  # (n, 1 + candidates)
    hs = h[:, :, 0]  # (K, n), N_t = 1
    gains = np.abs(hs.conj() @ cands) ** 2  # |h_k^H a|^2, (K, 1 + candidates)
    with np.errstate(divide="ignore"):
        t = np.max(c / gains, axis=0)
    mse = noise_var * t * np.sum(np.abs(cands) ** 2, axis=0)
    best = int(np.argmin(mse))
    a = cands[:, best] * np.sqrt(t[best])
    ah = hs.conj() @ a  # h_k^H a = (a^H h_k)^H
    b = (ah / np.abs(ah) ** 2).reshape(-1, 1, 1)  # b_k = (a^H h_k)^H / |a^H h_k|^2
    return a.reshape(n, 1), b, best, lam[::-1]


def cvxpy_sdr(H, noise_var, signal_var, power_budget, seed, solver):
    R, K, Nr, Nt = H.shape
    c = signal_var / power_budget
    t0 = time.perf_counter()
    sdp = CvxpySdr(K, Nr, c, solver)
    A = np.empty((R, Nr, 1), complex)
    B = np.empty((R, K, Nt, 1), complex)
    primal, bound, solve_time, statuses, rank1, eig_pick, first = [], [], 0.0, [], 0, 0, None
    rank1_mask, Ms = [], []
    for r in range(R):
        M, pv, dv, info = sdp.solve(H[r])
        if first is None:
            first = time.perf_counter() - t0  # includes compiling the DPP problem
        rng = np.random.default_rng([seed, r])
        a, b, best, lam = randomise(M, H[r], c, noise_var, rng)
        A[r], B[r] = a, b
        Ms.append(M)
        primal.append(noise_var * pv)
        bound.append(noise_var * dv)
        solve_time += info["solve_time"]
        statuses.append(info["status"])
        rank1_mask.append(bool(lam[1] <= 1e-6 * lam[0]))
        rank1 += rank1_mask[-1]
        eig_pick += best == 0
    wall = time.perf_counter() - t0
    return {
        "A": A,
        "B": B,
        "sdp_primal": np.array(primal),
        "bound": np.array(bound),
        "wall_s": wall,
        "first_s": first,
        "solver_s": solve_time,
        "statuses": {s: statuses.count(s) for s in set(statuses)},
        "rank1": int(rank1),
        "eigvec_chosen": int(eig_pick),
        "rank1_mask": np.array(rank1_mask),
        "M": Ms,
    }


def randomisation_spread(M_list, H, noise_var, c, seeds, candidates):
    """Mean MSE over realisations of the randomisation of cvxpy's M, for several seeds."""
    out = []
    for s in seeds:
        m = []
        for r, M in enumerate(M_list):
            a, _, _, _ = randomise(M, H[r], c, noise_var, np.random.default_rng([s, r]), candidates)
            m.append(noise_var * np.sum(np.abs(a) ** 2))
        out.append(np.array(m))
    return np.array(out)  # (seeds, R)


# --- airinfer ------------------------------------------------------------------------------


def timed(f, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return out, float(np.median(ts))


SINGLE_THREAD = r"""
import json, sys, time, numpy as np
from airinfer import aircomp
path, designs, nv, sv, pb, seed, reps = sys.argv[1], sys.argv[2].split(","), *map(float, sys.argv[3:6]), int(sys.argv[6]), int(sys.argv[7])
H = np.load(path)
out = {}
for d in designs:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        m = aircomp.design(H, d, power_budget=pb, noise_var=nv, signal_var=sv, seed=seed).mse
        ts.append(time.perf_counter() - t)
    out[d] = {"s": float(np.median(ts)), "mse_hex": [float(x).hex() for x in m]}
print(json.dumps(out))
"""


def python_one_thread(path, designs, args, reps):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    p = subprocess.run(
        [sys.executable, "-c", SINGLE_THREAD, str(path), ",".join(designs), str(args.noise_var),
         str(args.signal_var), str(args.power_budget), str(args.seed), str(reps)],
        capture_output=True, text=True, env=env, check=True,
    )
    return json.loads(p.stdout)


def cli_design(cli, path, design, args, threads=None, repeats=1):
    cmd = [str(cli), "aircomp", "design", "--channels", str(path), "--design", design,
           "--power-budget", repr(args.power_budget), "--signal-var", repr(args.signal_var),
           "--noise-var", repr(args.noise_var), "--streams", "1", "--seed", str(args.seed), "--json"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
    wall = float(np.median(walls))
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    doc = json.loads(p.stdout)
    return np.array([x["mse"] for x in doc["realisations"]]), wall


# --- the benchmark -------------------------------------------------------------------------


def bench_size(K, Nr, args, workdir):
    R, Nt = args.realisations, 1
    H = rayleigh(R, K, Nr, Nt, args.channel_seed)
    path = Path(workdir) / f"H_{K}x{Nr}.npy"
    np.save(path, H)
    kw = dict(power_budget=args.power_budget, noise_var=args.noise_var, signal_var=args.signal_var, seed=args.seed)
    rows, checks = [], {}

    # cvxpy reference first: everything else is compared with it
    ref = cvxpy_sdr(H, args.noise_var, args.signal_var, args.power_budget, args.seed, args.solver)
    ref_mse = aircomp.mse(H, ref["A"], ref["B"], noise_var=args.noise_var, signal_var=args.signal_var)
    np_mse = closed_form_mse(H, ref["A"], ref["B"], args.noise_var, args.signal_var)
    checks["cvxpy_mse_numpy_vs_airinfer_max_rel"] = float(np.max(np.abs(np_mse / ref_mse - 1)))
    checks["cvxpy_zf_mse_is_noise_norm_a_max_rel"] = float(
        np.max(np.abs(args.noise_var * np.sum(np.abs(ref["A"]) ** 2, axis=(1, 2)) / ref_mse - 1)))
    bound = ref["bound"]
    checks["cvxpy"] = {k: ref[k] for k in ("statuses", "rank1", "eigvec_chosen", "first_s", "solver_s")}
    checks["cvxpy"]["primal_minus_bound_max_rel"] = float(np.max((ref["sdp_primal"] - bound) / bound))

    def row(method, design, secs, mse, extra=None):
        rel = (mse - ref_mse) / ref_mse
        r = {
            "K": K, "N_r": Nr, "N_t": Nt, "R": R, "method": method, "design": design,
            "ms_per_realisation": 1e3 * secs / R,
            "mean_mse": float(np.mean(mse)),
            "mean_rel_gap_to_cvxpy": float(np.mean(rel)),
            "mean_gap_to_bound": float(np.mean((mse - bound) / bound)),
            "mse": [float(x) for x in mse],
        }
        r.update(extra or {})
        rows.append(r)
        return r

    row(f"cvxpy {args.solver} SDR", "sdr", ref["wall_s"], ref_mse,
        {"solver_ms_per_realisation": 1e3 * ref["solver_s"] / R})
    one = python_one_thread(path, DESIGNS, args, args.repeats)
    for d in DESIGNS:
        res, secs = timed(lambda: aircomp.design(H, d, **kw), args.repeats)
        mse = res.mse
        reps = args.repeats if d == "sdr" else 1
        cli_mse, cli_s = cli_design(args.cli, path, d, args, repeats=reps)
        cli1_mse, cli1_s = cli_design(args.cli, path, d, args, threads=1, repeats=reps)
        same = (cli_mse.tobytes() == mse.tobytes() and cli1_mse.tobytes() == mse.tobytes()
                and [float(x).hex() for x in mse] == one[d]["mse_hex"])
        checks[f"{d}_cli_python_bit_identical"] = bool(same)
        threads = os.cpu_count()
        row(f"airinfer py ({threads} thr)", d, secs, mse)
        row("airinfer py (1 thr)", d, one[d]["s"], mse)
        if d == "sdr":
            row(f"airinfer CLI ({threads} thr)", d, cli_s, cli_mse)
            row("airinfer CLI (1 thr)", d, cli1_s, cli1_mse)
            rel = (mse - ref_mse) / ref_mse
            c = args.signal_var / args.power_budget
            spread = randomisation_spread(ref["M"], H, args.noise_var, c,
                                          range(1000, 1000 + args.spread_seeds), CANDIDATES)
            big = randomisation_spread(ref["M"], H, args.noise_var, c, [7], args.many_candidates)[0]
            means = spread.mean(axis=1)
            r1 = ref["rank1_mask"]
            checks["sdr_vs_cvxpy"] = {
                "airinfer_worse_count": int(np.sum(rel > 1e-6)),  # relative, beyond solver tolerance
                "airinfer_better_count": int(np.sum(rel < -1e-6)),
                "max_rel_worse": float(rel.max()),
                "max_rel_better": float(-rel.min()),
                "min_airinfer_mse_over_bound": float(np.min(mse / bound)),
                "rank1_realisations": int(r1.sum()),
                "rank1_max_abs_airinfer_mse_over_bound_minus_1":
                    float(np.max(np.abs(mse[r1] / bound[r1] - 1))) if r1.any() else None,
                "airinfer_mean_mse": float(mse.mean()),
                "cvxpy_mean_mse_seed_spread_min_median_max":
                    [float(means.min()), float(np.median(means)), float(means.max())],
                "spread_seeds": args.spread_seeds,
                "cvxpy_mean_mse_many_candidates": float(big.mean()),
                "many_candidates": args.many_candidates,
                # (seed, realisation) pairs: airinfer's MSE below / above cvxpy's (beyond 1e-6)
                "frac_pairs_airinfer_below": float(np.mean(mse[None, :] < spread * (1 - 1e-6))),
                "frac_pairs_airinfer_above": float(np.mean(mse[None, :] > spread * (1 + 1e-6))),
            }
    return rows, checks


def markdown(rows):
    out = ["| size (K, N_r) | design | method | ms / realisation | mean MSE | mean rel. MSE gap to cvxpy | mean gap to SDP bound |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ms = f"{r['ms_per_realisation']:.3f}"
        if "solver_ms_per_realisation" in r:
            ms += f" (solver {r['solver_ms_per_realisation']:.2f})"
        out.append(f"| ({r['K']}, {r['N_r']}) | {r['design']} | {r['method']} | {ms} | {r['mean_mse']:.5f} "
                   f"| {100 * r['mean_rel_gap_to_cvxpy']:+.3f} % | {100 * r['mean_gap_to_bound']:+.3f} % |")
    return "\n".join(out)


def sdr_markdown(all_checks):
    out = ["| size (K, N_r) | CLI = Python (bits) | rank-1 SDP solutions | airinfer worse / better than cvxpy (> 1e-6 rel.) | max rel. worse / better "
           "| airinfer mean MSE | cvxpy mean MSE over seeds (min / median / max) | cvxpy, many candidates |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for size, c in all_checks.items():
        v = c["sdr_vs_cvxpy"]
        same = all(c[f"{d}_cli_python_bit_identical"] for d in DESIGNS)
        lo, med, hi = v["cvxpy_mean_mse_seed_spread_min_median_max"]
        K, Nr = size.split("x")
        out.append(f"| ({K}, {Nr}) | {'yes' if same else 'NO'} (all 4 designs) | {v['rank1_realisations']} "
                   f"| {v['airinfer_worse_count']} / {v['airinfer_better_count']} "
                   f"| {100 * v['max_rel_worse']:.1f} % / {100 * v['max_rel_better']:.1f} % "
                   f"| {v['airinfer_mean_mse']:.5f} | {lo:.5f} / {med:.5f} / {hi:.5f} ({v['spread_seeds']} seeds) "
                   f"| {v['cvxpy_mean_mse_many_candidates']:.5f} ({v['many_candidates']}) |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="R = 3, size (4, 4), one repeat (< 30 s)")
    ap.add_argument("--sizes", default="4x4,8x8,16x8", help="K x N_r pairs (N_t = L = 1)")
    ap.add_argument("--realisations", type=int, default=50)
    ap.add_argument("--power-budget", type=float, default=1.0)
    ap.add_argument("--noise-var", type=float, default=0.1)
    ap.add_argument("--signal-var", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1, help="SDR randomisation seed (airinfer and cvxpy)")
    ap.add_argument("--channel-seed", type=int, default=2026)
    ap.add_argument("--spread-seeds", type=int, default=20,
                    help="cvxpy randomisation re-run with this many seeds (seed-to-seed spread)")
    ap.add_argument("--many-candidates", type=int, default=10000,
                    help="cvxpy randomisation with this many candidates (how far 100 is from more)")
    ap.add_argument("--repeats", type=int, default=5, help="airinfer timings: median of this many")
    ap.add_argument("--solver", default="CLARABEL", help="cvxpy solver (CLARABEL or SCS)")
    ap.add_argument("--cli", type=Path, default=DEFAULT_CLI)
    ap.add_argument("--json", type=Path, help="write rows, checks and environment here")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.realisations, args.repeats, args.spread_seeds = "4x4", 3, 1, 3
    import cvxpy as cp

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    env = {
        "python": sys.version.split()[0], "numpy": np.__version__, "cvxpy": cp.__version__,
        "solver": args.solver, "airinfer": getattr(airinfer, "__version__", "?"),
        "cpus": os.cpu_count(), "machine": platform.machine(),
        "argv": sys.argv,
    }
    try:
        env["cpu_model"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    t0 = time.perf_counter()
    all_rows, all_checks = [], {}
    with tempfile.TemporaryDirectory() as wd:
        for K, Nr in sizes:
            rows, checks = bench_size(K, Nr, args, wd)
            all_rows += rows
            all_checks[f"{K}x{Nr}"] = checks
    env["total_s"] = time.perf_counter() - t0
    print(f"R = {args.realisations} Rayleigh realisations, N_t = L = 1, power budget {args.power_budget}, "
          f"noise var {args.noise_var}, signal var {args.signal_var}; cvxpy {cp.__version__} + {args.solver}; "
          f"{env.get('cpu_model', '?')} ({env['cpus']} CPUs)\n")
    print(markdown(all_rows))
    print("\nSDP bound: noise_var * c^T y for cvxpy's dual y (verified I - sum y_k Q_k >= 0): a lower bound for"
          " zero-forcing (unbiased) designs only; MMSE, being biased, may go below it.\n")
    print(sdr_markdown(all_checks))
    print()
    for size, c in all_checks.items():
        print(f"{size}: {json.dumps(c)}")
    print(f"\ntotal {env['total_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"env": env, "rows": all_rows, "checks": all_checks}, indent=1))


if __name__ == "__main__":
    main()
