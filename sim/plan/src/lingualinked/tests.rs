use super::*;

use crate::pipeline::test_rng::Rng;

fn random_problem(rng: &mut Rng, n: usize, m: usize) -> PartitionProblem {
    let speed: Vec<f64> = (0..m).map(|_| rng.range(0.5, 3.0)).collect();
    let compute_s = (0..m)
        .map(|d| {
            (0..n)
                .map(|_| {
                    if rng.chance(0.05) {
                        0.0
                    } else {
                        speed[d] * rng.range(0.2, 1.0)
                    }
                })
                .collect()
        })
        .collect();
    let memory: Vec<f64> = (0..n).map(|_| rng.range(0.5, 2.0)).collect();
    let total: f64 = memory.iter().sum();
    let capacity = (0..m)
        .map(|_| match rng.below(4) {
            0 => total,
            1 => rng.range(0.0, 1.0) * total,
            // exactly a run of units: tight
            2 => {
                let a = rng.below(n);
                let b = a + 1 + rng.below(n - a);
                memory[a..b].iter().sum()
            }
            _ => rng.range(0.3, 1.3) * total / m as f64,
        })
        .collect();
    let out_bytes = (0..n)
        .map(|_| {
            if rng.chance(0.1) {
                0.0
            } else {
                rng.range(0.0, 2.0)
            }
        })
        .collect();
    let mut residual = Vec::new();
    if n >= 3 {
        for _ in 0..rng.below(4) {
            let u = rng.below(n - 2);
            let v = u + 2 + rng.below(n - u - 2);
            residual.push((
                u,
                v,
                if rng.chance(0.1) {
                    0.0
                } else {
                    rng.range(0.0, 2.0)
                },
            ));
        }
    }
    let latency_s = (0..m)
        .map(|_| (0..m).map(|_| rng.range(0.0, 0.5)).collect())
        .collect();
    let bandwidth = (0..m)
        .map(|_| (0..m).map(|_| rng.range(0.5, 5.0)).collect())
        .collect();
    PartitionProblem {
        devices: (0..m).map(|d| format!("dev{d}")).collect(),
        compute_s,
        memory,
        capacity,
        out_bytes,
        residual,
        latency_s,
        bandwidth,
        source: rng.below(m),
    }
}

fn score(p: &PartitionProblem, obj: Objective, a: &Assignment) -> f64 {
    match obj {
        Objective::Latency => a.latency_s(p),
        Objective::Bottleneck => a.bottleneck_s(p),
    }
}

/// Every chain-ordered assignment: each device in chain order takes a possibly empty
/// segment, the source a non-empty one starting at unit 0, within the memory fraction.
fn exhaustive(p: &PartitionProblem, frac: f64, obj: Objective) -> Option<(f64, Assignment)> {
    fn rec(
        p: &PartitionProblem,
        frac: f64,
        obj: Objective,
        order: &[usize],
        b: usize,
        stages: &mut Vec<Stage>,
        best: &mut Option<(f64, Assignment)>,
    ) {
        let n = p.n_units();
        let Some((&d, rest)) = order.split_first() else {
            if b == n {
                let a = Assignment {
                    stages: stages.clone(),
                };
                let s = score(p, obj, &a);
                if best.as_ref().is_none_or(|(bs, _)| s < *bs) {
                    *best = Some((s, a));
                }
            }
            return;
        };
        let first = b == 0;
        for e in b..=n {
            if e == b {
                if !first {
                    rec(p, frac, obj, rest, b, stages, best);
                }
                continue;
            }
            if p.memory[b..e].iter().sum::<f64>() > frac * p.capacity[d] {
                break;
            }
            stages.push(Stage {
                device: d,
                units: b..e,
            });
            rec(p, frac, obj, rest, e, stages, best);
            stages.pop();
        }
    }
    let order: Vec<usize> = std::iter::once(p.source)
        .chain((0..p.n_devices()).filter(|&d| d != p.source))
        .collect();
    let mut best = None;
    rec(p, frac, obj, &order, 0, &mut Vec::new(), &mut best);
    best
}

/// Chain order, one segment per device, memory within the fraction.
fn check_chain(p: &PartitionProblem, frac: f64, a: &Assignment) {
    a.validate(p).expect("valid assignment");
    let rank = |d: usize| {
        if d == p.source {
            0
        } else {
            d + 1
        }
    };
    for w in a.stages.windows(2) {
        assert!(rank(w[0].device) < rank(w[1].device), "chain order: {a:?}");
    }
    for s in &a.stages {
        let need: f64 = p.memory[s.units.clone()].iter().sum();
        assert!(need <= frac * p.capacity[s.device], "memory: {a:?}");
    }
}

/// Relative closeness. The MILP is exact up to its relative 1e-9 pruning (mip_gap = 0) and
/// the rebalancer breaks ties at 1e-12, and every score is re-evaluated in f64 from the
/// assignment (rounding ~1e-15): the 1e-9 uses are rounding room, the 1e-6 ones loose.
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn name_is_lingualinked() {
    let ll = LinguaLinked {
        objective: Objective::Latency,
        memory_fraction: 1.0,
    };
    assert_eq!(ll.name(), "lingualinked");
}

#[test]
fn milp_matches_exhaustive_search() {
    let mut rng = Rng::new(7);
    let (mut feasible, mut infeasible, mut with_residual) = (0, 0, 0);
    for case in 0..200 {
        let n = 2 + rng.below(6);
        let m = 1 + rng.below(4);
        let p = random_problem(&mut rng, n, m);
        let frac = if rng.chance(0.5) {
            1.0
        } else {
            rng.range(0.5, 1.0)
        };
        with_residual += usize::from(!p.residual.is_empty());
        for obj in [Objective::Latency, Objective::Bottleneck] {
            let ll = LinguaLinked {
                objective: obj,
                memory_fraction: frac,
            };
            let want = exhaustive(&p, frac, obj);
            for accelerate in [false, true] {
                let got = ll.solve(&p, accelerate);
                match (&want, got) {
                        (None, Err(PartitionError::Infeasible(_))) => infeasible += 1,
                        (Some((best, _)), Ok(a)) => {
                            check_chain(&p, frac, &a);
                            let s = score(&p, obj, &a);
                            assert!(
                                close(s, *best, 1e-6),
                                "case {case} {obj:?} accelerate={accelerate}: MILP {s} vs exhaustive {best}\n{p:?}\n{a:?}"
                            );
                            feasible += 1;
                        }
                        (w, g) => panic!(
                            "case {case} {obj:?} accelerate={accelerate}: exhaustive {w:?} vs MILP {g:?}\n{p:?}"
                        ),
                    }
            }
        }
    }
    assert!(feasible >= 200 && infeasible >= 40 && with_residual >= 80);
}

/// Without residual links the dynamic programme is exact: a larger cross-check.
#[test]
fn milp_matches_dynamic_programme_on_34_units() {
    let mut rng = Rng::new(11);
    for case in 0..6 {
        let m = 2 + case % 3;
        let mut p = random_problem(&mut rng, 34, m);
        p.residual.clear();
        let total: f64 = p.memory.iter().sum();
        p.capacity = (0..m).map(|_| rng.range(0.3, 0.8) * total).collect();
        if Chain::new(&p, 0.9).greedy().is_err() {
            p.capacity = vec![total; m];
        }
        for obj in [Objective::Latency, Objective::Bottleneck] {
            let ll = LinguaLinked {
                objective: obj,
                memory_fraction: 0.9,
            };
            let ch = Chain::new(&p, 0.9);
            let dp = ch.dp(obj).expect("feasible");
            let a = ll.solve(&p, false).expect("MILP");
            check_chain(&p, 0.9, &a);
            let want = ch.score(obj, &dp);
            assert!(close(score(&p, obj, &a), want, 1e-6), "case {case} {obj:?}");
        }
    }
}

#[test]
fn bad_input_is_rejected() {
    let mut rng = Rng::new(3);
    let mut p = random_problem(&mut rng, 5, 3);
    let total: f64 = p.memory.iter().sum();
    p.capacity = vec![total; 3];
    for f in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
        let ll = LinguaLinked {
            objective: Objective::Latency,
            memory_fraction: f,
        };
        match ll.partition(&p) {
            Err(PartitionError::Invalid { field, .. }) => assert_eq!(field, "memory_fraction"),
            other => panic!("fraction {f}: {other:?}"),
        }
    }
    // The model is larger than all memory together.
    let mut big = p.clone();
    big.capacity = vec![1.0; 3];
    for obj in [Objective::Latency, Objective::Bottleneck] {
        let ll = LinguaLinked {
            objective: obj,
            memory_fraction: 1.0,
        };
        assert!(matches!(
            ll.partition(&big),
            Err(PartitionError::Infeasible(_))
        ));
    }
    // It fits in full memory but not in half of it.
    let mut tight = p.clone();
    let total: f64 = tight.memory.iter().sum();
    tight.capacity = vec![total / 2.5; 3];
    let half = LinguaLinked {
        objective: Objective::Bottleneck,
        memory_fraction: 0.5,
    };
    assert!(tight.validate().is_ok());
    match half.partition(&tight) {
        Err(PartitionError::Infeasible(why)) => assert!(why.contains("unit")),
        other => panic!("{other:?}"),
    }
    // A malformed problem is reported by the problem's own check.
    let mut bad = p;
    bad.compute_s[0].pop();
    assert!(matches!(
        half.partition(&bad),
        Err(PartitionError::Invalid { .. })
    ));
}

#[test]
fn degenerate_costs_and_many_devices() {
    let (n, m) = (4, 8);
    let p = PartitionProblem {
        devices: (0..m).map(|d| format!("d{d}")).collect(),
        compute_s: vec![vec![0.0; n]; m],
        memory: vec![1.0; n],
        capacity: vec![1.0; m],
        out_bytes: vec![0.0; n],
        residual: vec![(0, 2, 0.0), (1, 3, 5.0)],
        latency_s: vec![vec![0.0; m]; m],
        bandwidth: vec![vec![f64::INFINITY; m]; m],
        source: 5,
    };
    for obj in [Objective::Latency, Objective::Bottleneck] {
        let ll = LinguaLinked {
            objective: obj,
            memory_fraction: 1.0,
        };
        let a = ll.partition(&p).expect("feasible");
        check_chain(&p, 1.0, &a);
        assert_eq!(a.stages.len(), 4);
        assert_eq!(a.stages[0].device, 5);
        assert_eq!(score(&p, obj, &a), 0.0);
    }
}

fn planned(rng: &mut Rng, n: usize, m: usize) -> (PartitionProblem, Assignment) {
    loop {
        let p = random_problem(rng, n, m);
        let ll = LinguaLinked {
            objective: Objective::Bottleneck,
            memory_fraction: rng.range(0.5, 1.0),
        };
        if let Ok(a) = ll.partition(&p) {
            return (p, a);
        }
    }
}

#[test]
fn overlap_contains_own_units_and_fits_memory() {
    let mut rng = Rng::new(5);
    for _ in 0..300 {
        let n = 2 + rng.below(12);
        let m = 1 + rng.below(5);
        let (p, a) = planned(&mut rng, n, m);
        let extra = rng.below(5);
        let pre = overlap(&p, &a, extra);
        assert_eq!(pre.len(), a.stages.len());
        for (s, r) in a.stages.iter().zip(&pre) {
            assert!(
                r.start <= s.units.start && s.units.end <= r.end,
                "{r:?} ⊉ {s:?}"
            );
            assert!(s.units.start - r.start <= extra && r.end - s.units.end <= extra);
            assert!(r.end <= n);
            let need: f64 = p.memory[r.clone()].iter().sum();
            assert!(
                need <= p.capacity[s.device],
                "{need} > {}",
                p.capacity[s.device]
            );
            // The rule, re-done directly (one stage per device in a chain plan).
            let cap = p.capacity[s.device];
            let (st, en) = (s.units.start, s.units.end);
            let (mut lo, mut hi) = (st.saturating_sub(extra), (en + extra).min(n));
            while p.memory[lo..hi].iter().sum::<f64>() > cap && (lo < st || hi > en) {
                if st - lo > hi - en {
                    lo += 1;
                } else {
                    hi -= 1;
                }
            }
            assert_eq!(*r, lo..hi);
        }
    }
}

#[test]
fn overlap_shrinks_from_the_longer_side() {
    let p = PartitionProblem {
        devices: vec!["a".into(), "b".into(), "c".into()],
        compute_s: vec![vec![1.0; 9]; 3],
        memory: vec![1.0; 9],
        capacity: vec![4.0, 6.0, 9.0],
        out_bytes: vec![1.0; 9],
        residual: vec![],
        latency_s: vec![vec![0.0; 3]; 3],
        bandwidth: vec![vec![1.0; 3]; 3],
        source: 0,
    };
    let a = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..3,
            },
            Stage {
                device: 1,
                units: 3..6,
            },
            Stage {
                device: 2,
                units: 6..9,
            },
        ],
    };
    // a: 0..3 + 2 right = 5 > 4 → 0..4; b: 1..8 (7) > 6 → tie drops the right: 1..7;
    // c: 4..9 fits 9.
    assert_eq!(overlap(&p, &a, 2), vec![0..4, 1..7, 4..9]);
    assert_eq!(overlap(&p, &a, 0), vec![0..3, 3..6, 6..9]);
    // Own units are kept even when they alone overfill the device.
    let mut small = p.clone();
    small.capacity[1] = 1.0;
    assert_eq!(overlap(&small, &a, 2)[1], 3..6);
}

/// All boundary choices within the ranges, each stage non-empty; (bottleneck, latency).
fn all_rebalanced(
    p: &PartitionProblem,
    a: &Assignment,
    pre: &[Range<usize>],
) -> Vec<(f64, f64, Assignment)> {
    fn rec(
        p: &PartitionProblem,
        a: &Assignment,
        pre: &[Range<usize>],
        i: usize,
        start: usize,
        stages: &mut Vec<Stage>,
        out: &mut Vec<(f64, f64, Assignment)>,
    ) {
        let n = p.n_units();
        let k = a.stages.len();
        if i == k {
            if start == n {
                let b = Assignment {
                    stages: stages.clone(),
                };
                out.push((b.bottleneck_s(p), b.latency_s(p), b));
            }
            return;
        }
        if start < pre[i].start {
            return;
        }
        for end in start + 1..=pre[i].end.min(n) {
            stages.push(Stage {
                device: a.stages[i].device,
                units: start..end,
            });
            rec(p, a, pre, i + 1, end, stages, out);
            stages.pop();
        }
    }
    let mut out = Vec::new();
    rec(p, a, pre, 0, 0, &mut Vec::new(), &mut out);
    out
}

#[test]
fn rebalance_matches_enumeration_and_never_worsens() {
    let mut rng = Rng::new(9);
    let mut moved = 0;
    for case in 0..300 {
        let n = 2 + rng.below(10);
        let m = 1 + rng.below(5);
        let (mut p, a) = if rng.chance(0.3) {
            // Any assignment: devices may repeat, memory is not checked.
            let p = random_problem(&mut rng, n, m);
            let k = 1 + rng.below(n.min(5));
            let mut cuts: Vec<usize> = vec![0, n];
            while cuts.len() < k + 1 {
                let c = 1 + rng.below(n - 1);
                if !cuts.contains(&c) {
                    cuts.push(c);
                }
            }
            cuts.sort_unstable();
            let stages = cuts
                .windows(2)
                .enumerate()
                .map(|(i, w)| Stage {
                    device: if i == 0 { p.source } else { rng.below(m) },
                    units: w[0]..w[1],
                })
                .collect();
            (p, Assignment { stages })
        } else {
            planned(&mut rng, n, m)
        };
        let pre = overlap(&p, &a, rng.below(4));
        // Slow devices down (or speed them up) at runtime.
        for row in p.compute_s.iter_mut() {
            let f = rng.range(0.3, 4.0);
            row.iter_mut().for_each(|c| *c *= f);
        }
        let got = rebalance(&p, &a, &pre);
        let (b0, l0) = (a.bottleneck_s(&p), a.latency_s(&p));
        let (b, l) = (got.bottleneck_s(&p), got.latency_s(&p));
        // the rebalancer's own tie tolerance is 1e-12 relative
        assert!(b <= b0 * (1.0 + 1e-12), "case {case}: worse than current");
        assert_eq!(got.devices(), a.devices());
        got.validate(&p).expect("valid");
        for (s, r) in got.stages.iter().zip(&pre) {
            assert!(r.start <= s.units.start && s.units.end <= r.end);
        }
        let all = all_rebalanced(&p, &a, &pre);
        let bmin = all.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
        assert!(close(b, bmin, 1e-9), "case {case}: {b} vs optimum {bmin}");
        let lmin = all
            .iter()
            .filter(|t| close(t.0, bmin, 1e-9))
            .map(|t| t.1)
            .fold(f64::INFINITY, f64::min);
        assert!(close(l, lmin, 1e-9), "case {case}: latency {l} vs {lmin}");
        if got == a {
            assert!(b0 <= bmin * (1.0 + 1e-9));
        } else {
            moved += 1;
            assert!(
                b < b0 || (b <= b0 && l < l0),
                "case {case}: moved without gain"
            );
        }
    }
    assert!(moved >= 30, "only {moved} instances moved");
}

#[test]
fn rebalance_relieves_a_slowed_device() {
    let n = 14;
    let m = 3;
    let mut p = PartitionProblem {
        devices: vec!["phone".into(), "tablet".into(), "laptop".into()],
        compute_s: vec![vec![0.01; n]; m],
        memory: vec![1.0; n],
        capacity: vec![10.0; m],
        out_bytes: vec![1e3; n],
        residual: vec![(2, 9, 1e3)],
        latency_s: vec![vec![1e-3; m]; m],
        bandwidth: vec![vec![1e7; m]; m],
        source: 0,
    };
    let ll = LinguaLinked {
        objective: Objective::Bottleneck,
        memory_fraction: 0.6,
    };
    let a = ll.partition(&p).expect("plan");
    assert_eq!(a.stages.len(), 3);
    let pre = overlap(&p, &a, 2);
    // Nothing to gain before the slow-down.
    assert_eq!(rebalance(&p, &a, &pre), a);
    p.compute_s[1].iter_mut().for_each(|c| *c *= 3.0);
    let before = a.bottleneck_s(&p);
    let b = rebalance(&p, &a, &pre);
    // a strict gain, beyond f64 rounding of a score ≈ 0.1 s
    assert!(
        b.bottleneck_s(&p) < before - 1e-9,
        "{before} → {}",
        b.bottleneck_s(&p)
    );
    assert!(b.stages[1].units.len() < a.stages[1].units.len());
}

#[test]
fn rebalance_returns_current_on_bad_input() {
    let mut rng = Rng::new(13);
    let (p, a) = planned(&mut rng, 6, 3);
    assert_eq!(rebalance(&p, &a, &[]), a);
    let mut bad = p.clone();
    bad.out_bytes.pop();
    let pre = overlap(&p, &a, 1);
    assert_eq!(rebalance(&bad, &a, &pre), a);
}

/// A Llama-like instance: embedding, `blocks` decoder blocks, head; heterogeneous phones
/// over Wi-Fi; per-unit profile noise; optional residual links every `skip` blocks.
fn llama(rng: &mut Rng, blocks: usize, m: usize, skip: Option<usize>) -> PartitionProblem {
    let n = blocks + 2;
    let block_mem = 13.5e9 / blocks as f64 * 0.5;
    let mut memory = vec![block_mem; n];
    memory[0] = 0.25e9;
    memory[n - 1] = 0.5e9;
    let total: f64 = memory.iter().sum();
    let speed: Vec<f64> = (0..m).map(|_| rng.range(1.0, 3.0)).collect();
    let compute_s = (0..m)
        .map(|d| {
            (0..n)
                .map(|u| {
                    let base = if u == 0 {
                        1e-4
                    } else if u == n - 1 {
                        0.03
                    } else {
                        0.012
                    };
                    base * speed[d] * rng.range(0.95, 1.05)
                })
                .collect()
        })
        .collect();
    let capacity = (0..m).map(|_| rng.range(0.35, 0.8) * total).collect();
    let mut out_bytes = vec![8192.0; n];
    out_bytes[n - 1] = 4.0;
    let residual = skip.map_or_else(Vec::new, |k| {
        (1..blocks)
            .step_by(k)
            .filter(|&u| u + 2 < n)
            .map(|u| (u, u + 2, 8192.0))
            .collect()
    });
    PartitionProblem {
        devices: (0..m).map(|d| format!("phone{d}")).collect(),
        compute_s,
        memory,
        capacity,
        out_bytes,
        residual,
        latency_s: (0..m)
            .map(|_| (0..m).map(|_| rng.range(2e-3, 1e-2)).collect())
            .collect(),
        bandwidth: (0..m)
            .map(|_| (0..m).map(|_| rng.range(2e7, 1e8)).collect())
            .collect(),
        source: 0,
    }
}

/// Solve times on Llama-like instances: `cargo test --release -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing() {
    for (blocks, m) in [(32, 4), (80, 4), (32, 6), (80, 6)] {
        for skip in [None, Some(4), Some(1)] {
            for obj in [Objective::Latency, Objective::Bottleneck] {
                for accelerate in [true, false] {
                    let mut rng = Rng::new(1);
                    let (mut worst, mut sum, mut count) = (0.0f64, 0.0, 0);
                    while count < 5 {
                        let p = llama(&mut rng, blocks, m, skip);
                        let ll = LinguaLinked {
                            objective: obj,
                            memory_fraction: 0.9,
                        };
                        let t = std::time::Instant::now();
                        let r = ll.solve(&p, accelerate);
                        let dt = t.elapsed().as_secs_f64();
                        if r.is_err() {
                            continue;
                        }
                        worst = worst.max(dt);
                        sum += dt;
                        count += 1;
                    }
                    println!(
                            "{}x{m} residual={skip:?} {obj:?} accelerate={accelerate}: mean {:.3} s, max {:.3} s",
                            blocks + 2,
                            sum / count as f64,
                            worst
                        );
                }
            }
        }
    }
    // The balancer with wide overlaps.
    for (blocks, m, extra) in [(32, 4, 4), (80, 6, 4), (80, 6, 10), (80, 8, 10)] {
        let mut rng = Rng::new(3);
        let mut p = llama(&mut rng, blocks, m, Some(4));
        let total: f64 = p.memory.iter().sum();
        p.capacity = vec![total / (m as f64 - 1.0) * 2.0; m];
        let ll = LinguaLinked {
            objective: Objective::Bottleneck,
            memory_fraction: 0.5,
        };
        let a = ll.partition(&p).expect("plan");
        let pre = overlap(&p, &a, extra);
        p.compute_s[1].iter_mut().for_each(|c| *c *= 3.0);
        let t = std::time::Instant::now();
        let b = rebalance(&p, &a, &pre);
        println!(
            "rebalance {}x{m} ({} stages) extra {extra}: {:.4} s, bottleneck {:.4} → {:.4}",
            blocks + 2,
            a.stages.len(),
            t.elapsed().as_secs_f64(),
            a.bottleneck_s(&p),
            b.bottleneck_s(&p)
        );
    }
    // Random profiles (no structure), homogeneous devices (symmetry), tight memory: the
    // bare and the accelerated MILP must agree.
    for (n, m) in [(34, 4), (82, 4), (34, 6)] {
        for kind in ["random", "homogeneous"] {
            for obj in [Objective::Latency, Objective::Bottleneck] {
                let mut rng = Rng::new(2);
                let mut times = [0.0f64; 2];
                let mut count = 0;
                while count < 5 {
                    let mut p = random_problem(&mut rng, n, m);
                    if kind == "homogeneous" {
                        p.compute_s = vec![vec![0.01; n]; m];
                        p.memory = vec![1.0; n];
                        p.capacity = vec![(n as f64 / (m as f64 - 1.5)).ceil(); m];
                    }
                    let ll = LinguaLinked {
                        objective: obj,
                        memory_fraction: 1.0,
                    };
                    let mut scores = [0.0; 2];
                    let mut ok = true;
                    for (i, accelerate) in [true, false].into_iter().enumerate() {
                        let t = std::time::Instant::now();
                        match ll.solve(&p, accelerate) {
                            Ok(a) => scores[i] = score(&p, obj, &a),
                            Err(_) => ok = false,
                        }
                        times[i] = times[i].max(t.elapsed().as_secs_f64());
                    }
                    if ok {
                        assert!(close(scores[0], scores[1], 1e-6), "{scores:?}");
                        count += 1;
                    }
                }
                println!(
                    "{kind} {n}x{m} {obj:?}: max {:.3} s accelerated, {:.3} s bare",
                    times[0], times[1]
                );
            }
        }
    }
}
