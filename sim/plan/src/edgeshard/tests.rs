use super::*;

use crate::pipeline::test_rng::Rng;

/// Both planners refuse `p` naming `field`.
fn expect_invalid(p: &PartitionProblem, field_name: &str) {
    for planner in [&EdgeShardLatency as &dyn Partitioner, &EdgeShardThroughput] {
        match planner.partition(p) {
            Err(PartitionError::Invalid { field, .. }) => assert_eq!(field, field_name),
            other => panic!("{}: {other:?}", planner.name()),
        }
    }
}

/// A problem with uniform links; callers adjust fields.
pub(super) fn problem(
    compute_s: Vec<Vec<f64>>,
    memory: Vec<f64>,
    capacity: Vec<f64>,
) -> PartitionProblem {
    let m = compute_s.len();
    let n = memory.len();
    PartitionProblem {
        devices: (0..m).map(|d| format!("dev{d}")).collect(),
        compute_s,
        memory,
        capacity,
        out_bytes: vec![1e6; n],
        residual: vec![],
        latency_s: vec![vec![0.01; m]; m],
        bandwidth: vec![vec![1e8; m]; m],
        source: 0,
    }
}

pub(super) fn random_problem(rng: &mut Rng, n: usize, m: usize) -> PartitionProblem {
    let integer = rng.coin(0.3); // many exact ties
    let compute_s: Vec<Vec<f64>> = (0..m)
        .map(|_| {
            let speed = 0.2 + 2.0 * rng.unif();
            (0..n)
                .map(|_| {
                    if integer {
                        rng.int(0, 3) as f64
                    } else {
                        speed * rng.unif()
                    }
                })
                .collect()
        })
        .collect();
    let memory: Vec<f64> = (0..n)
        .map(|_| {
            if integer {
                rng.int(1, 3) as f64
            } else {
                0.5 + rng.unif()
            }
        })
        .collect();
    let total: f64 = memory.iter().sum();
    let capacity: Vec<f64> = match rng.int(0, 3) {
        0 => vec![total; m],
        1 => (0..m)
            .map(|_| total / m as f64 * (0.7 + 0.9 * rng.unif()))
            .collect(),
        2 => (0..m).map(|_| total * rng.unif()).collect(),
        // Exactly the memory of a contiguous run: boundary cases of the memory test.
        _ => (0..m)
            .map(|_| {
                let a = rng.int(0, n - 1);
                let b = rng.int(a + 1, n);
                memory[a..b].iter().sum()
            })
            .collect(),
    };
    let out_bytes: Vec<f64> = (0..n)
        .map(|_| {
            if rng.coin(0.15) {
                0.0
            } else if integer {
                rng.int(1, 3) as f64 * 1e6
            } else {
                1e6 * rng.unif()
            }
        })
        .collect();
    let latency_s: Vec<Vec<f64>> = (0..m)
        .map(|_| {
            (0..m)
                .map(|_| if integer { 0.0 } else { 0.2 * rng.unif() })
                .collect()
        })
        .collect();
    let bandwidth: Vec<Vec<f64>> = (0..m)
        .map(|_| {
            (0..m)
                .map(|_| {
                    if integer {
                        [1e6, 2e6, 1e7][rng.int(0, 2)]
                    } else {
                        1e6 + 1e7 * rng.unif()
                    }
                })
                .collect()
        })
        .collect();
    PartitionProblem {
        devices: (0..m).map(|d| format!("dev{d}")).collect(),
        compute_s,
        memory,
        capacity,
        out_bytes,
        residual: vec![],
        latency_s,
        bandwidth,
        source: rng.int(0, m - 1),
    }
}

/// Every memory-feasible assignment: ordered sequences of distinct devices starting at the
/// source, times every composition of the units into that many non-empty parts.
fn exhaustive(p: &PartitionProblem) -> Vec<Assignment> {
    fn sequences(p: &PartitionProblem, seq: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(seq.clone());
        if seq.len() == p.n_units() {
            return;
        }
        for d in 0..p.n_devices() {
            if !seq.contains(&d) {
                seq.push(d);
                sequences(p, seq, out);
                seq.pop();
            }
        }
    }
    fn compositions(
        n: usize,
        k: usize,
        start: usize,
        cuts: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if k == 1 {
            let mut c = cuts.clone();
            c.push(n);
            out.push(c);
            return;
        }
        for end in start + 1..=n - (k - 1) {
            cuts.push(end);
            compositions(n, k - 1, end, cuts, out);
            cuts.pop();
        }
    }
    let mut seqs = Vec::new();
    sequences(p, &mut vec![p.source], &mut seqs);
    let mut all = Vec::new();
    for seq in seqs {
        let mut comps = Vec::new();
        compositions(p.n_units(), seq.len(), 0, &mut Vec::new(), &mut comps);
        for ends in comps {
            let mut start = 0;
            let stages = seq
                .iter()
                .zip(&ends)
                .map(|(&device, &end)| {
                    let st = Stage {
                        device,
                        units: start..end,
                    };
                    start = end;
                    st
                })
                .collect();
            let a = Assignment { stages };
            if a.memory_violation(p).is_none() {
                all.push(a);
            }
        }
    }
    all
}

/// The DP and the brute force evaluate the same f64 score, summed in different orders
/// (rounding ~n·ε ≈ 1e-15 relative): 1e-9 is rounding room.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

/// The planner's answer is a valid, memory-feasible, one-stage-per-device assignment.
fn assert_well_formed(p: &PartitionProblem, a: &Assignment) {
    assert!(a.validate(p).is_ok(), "{a:?} invalid: {:?}", a.validate(p));
    assert_eq!(a.memory_violation(p), None, "{a:?}");
    let devs = a.devices();
    for (k, d) in devs.iter().enumerate() {
        assert!(!devs[..k].contains(d), "device {d} used twice in {a:?}");
    }
}

/// Compare both planners with exhaustive search on random instances; returns
/// (feasible, infeasible) counts.
fn compare_random(
    seed: u64,
    cases: usize,
    units: (usize, usize),
    devs: (usize, usize),
) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let (mut feasible, mut infeasible) = (0, 0);
    for case in 0..cases {
        let n = rng.int(units.0, units.1);
        let m = rng.int(devs.0, devs.1);
        let p = random_problem(&mut rng, n, m);
        let all = exhaustive(&p);
        let lat = EdgeShardLatency.partition(&p);
        let thr = EdgeShardThroughput.partition(&p);
        if all.is_empty() {
            infeasible += 1;
            assert!(
                matches!(lat, Err(PartitionError::Infeasible(_))),
                "case {case}: {lat:?}\n{p:?}"
            );
            assert!(
                matches!(thr, Err(PartitionError::Infeasible(_))),
                "case {case}: {thr:?}\n{p:?}"
            );
            continue;
        }
        feasible += 1;
        let (lat, thr) = match (lat, thr) {
            (Ok(l), Ok(t)) => (l, t),
            other => panic!("case {case}: feasible but {other:?}\n{p:?}"),
        };
        assert_well_formed(&p, &lat);
        assert_well_formed(&p, &thr);

        let best_lat = all
            .iter()
            .map(|a| a.latency_s(&p))
            .fold(f64::INFINITY, f64::min);
        assert!(
            close(lat.latency_s(&p), best_lat),
            "case {case}: latency {} vs exhaustive {best_lat}\n{lat:?}\n{p:?}",
            lat.latency_s(&p)
        );

        let best_b = all
            .iter()
            .map(|a| a.bottleneck_s(&p))
            .fold(f64::INFINITY, f64::min);
        assert!(
            close(thr.bottleneck_s(&p), best_b),
            "case {case}: bottleneck {} vs exhaustive {best_b}\n{thr:?}\n{p:?}",
            thr.bottleneck_s(&p)
        );
        // The DP's terms are computed exactly as `bottleneck_s` computes them, so the
        // optimal period is matched bit for bit and ties can be compared exactly.
        assert_eq!(thr.bottleneck_s(&p), best_b, "case {case}");
        let best_lat_at_b = all
            .iter()
            .filter(|a| a.bottleneck_s(&p) == best_b)
            .map(|a| a.latency_s(&p))
            .fold(f64::INFINITY, f64::min);
        assert!(
                close(thr.latency_s(&p), best_lat_at_b),
                "case {case}: latency at the optimal period {} vs exhaustive {best_lat_at_b}\n{thr:?}\n{p:?}",
                thr.latency_s(&p)
            );
    }
    (feasible, infeasible)
}

#[test]
fn matches_exhaustive_search_small() {
    let (feasible, infeasible) = compare_random(1, 600, (2, 7), (1, 4));
    println!("small: {feasible} feasible, {infeasible} infeasible");
    assert!(feasible >= 200, "{feasible} feasible");
    assert!(infeasible >= 20, "{infeasible} infeasible");
}

#[test]
fn matches_exhaustive_search_medium() {
    let (feasible, infeasible) = compare_random(2, 40, (8, 11), (4, 6));
    println!("medium: {feasible} feasible, {infeasible} infeasible");
    assert!(feasible >= 10, "{feasible} feasible");
}

#[test]
fn names() {
    assert_eq!(EdgeShardLatency.name(), "edgeshard-latency");
    assert_eq!(EdgeShardThroughput.name(), "edgeshard-throughput");
}

#[test]
fn fastest_source_keeps_everything() {
    let n = 6;
    let mut p = problem(
        vec![vec![1.0; n], vec![1.5; n], vec![3.0; n]],
        vec![1.0; n],
        vec![10.0; 3],
    );
    p.latency_s = vec![vec![1.0; 3]; 3];
    let want = Assignment {
        stages: vec![Stage {
            device: 0,
            units: 0..n,
        }],
    };
    assert_eq!(EdgeShardLatency.partition(&p), Ok(want.clone()));
    // For the period a split can pay even with 1 s links (3 units on dev1 take 4.5 s < 6 s),
    // and a link's latency does not occupy it: make every hand-off's serialisation (1 MB at
    // 100 kB/s = 10 s) longer than the whole model.
    p.bandwidth = vec![vec![1e5; 3]; 3];
    assert_eq!(EdgeShardThroughput.partition(&p), Ok(want));
}

#[test]
fn slow_source_offloads_to_fast_neighbour() {
    let n = 10;
    let mut p = problem(
        vec![vec![1.0; n], vec![0.1; n], vec![0.5; n]],
        vec![1.0; n],
        vec![10.0; 3],
    );
    p.source = 0;
    p.latency_s = vec![vec![1e-3; 3]; 3];
    let want = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..1,
            },
            Stage {
                device: 1,
                units: 1..n,
            },
        ],
    };
    let a = EdgeShardLatency.partition(&p).expect("feasible");
    assert_eq!(a, want);
    // hand bound: 1 s on the source + 9 × 0.1 s on the neighbour + < 0.1 s of links
    assert!(a.latency_s(&p) < 1.0 + 0.9 + 0.1);
    // Device 2 stays unused: joint device selection.
    assert!(!a.devices().contains(&2));
}

#[test]
fn memory_forces_a_split() {
    let n = 8;
    let mut p = problem(
        vec![vec![1.0; n], vec![1.0; n]],
        (1..=n).map(|u| u as f64).collect(),
        vec![0.0, 0.0],
    );
    // The source holds exactly units 0..3, device 1 exactly units 3..8.
    p.capacity = vec![1.0 + 2.0 + 3.0, 4.0 + 5.0 + 6.0 + 7.0 + 8.0];
    let want = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..3,
            },
            Stage {
                device: 1,
                units: 3..n,
            },
        ],
    };
    assert_eq!(EdgeShardLatency.partition(&p), Ok(want.clone()));
    assert_eq!(EdgeShardThroughput.partition(&p), Ok(want));
}

#[test]
fn throughput_balances_where_latency_does_not() {
    let n = 8;
    let mut p = problem(
        vec![vec![1.0; n], vec![1.0; n]],
        vec![1.0; n],
        vec![100.0; 2],
    );
    p.latency_s = vec![vec![0.1; 2]; 2];
    p.bandwidth = vec![vec![f64::INFINITY; 2]; 2];
    let lat = EdgeShardLatency.partition(&p).expect("feasible");
    assert_eq!(lat.stages.len(), 1);
    assert!(close(lat.latency_s(&p), 8.0));
    let thr = EdgeShardThroughput.partition(&p).expect("feasible");
    assert_eq!(
        thr.stages,
        vec![
            Stage {
                device: 0,
                units: 0..4
            },
            Stage {
                device: 1,
                units: 4..n
            }
        ]
    );
    assert!(close(thr.bottleneck_s(&p), 4.0));
}

#[test]
fn throughput_prefers_lower_latency_among_equal_periods() {
    // Unit 0 costs 9 s on the source whatever happens, so every assignment that moves the
    // rest elsewhere has a 9 s period. Device 1 (lower index, found first) is slower than
    // device 2: a bottleneck-only DP with first-wins ties would return device 1; the
    // planner must return the fastest assignment with the optimal period, on device 2.
    let n = 4;
    let mut p = problem(
        vec![
            vec![9.0, 1.0, 1.0, 1.0],
            vec![9.0, 2.0, 2.0, 2.0],
            vec![9.0, 1.0, 1.0, 1.0],
        ],
        vec![1.0; n],
        vec![10.0; 3],
    );
    p.latency_s = vec![vec![0.5; 3]; 3];
    let thr = EdgeShardThroughput.partition(&p).expect("feasible");
    assert_eq!(
        thr.stages,
        vec![
            Stage {
                device: 0,
                units: 0..1
            },
            Stage {
                device: 2,
                units: 1..n
            }
        ]
    );
    assert!(close(thr.bottleneck_s(&p), 9.0));
    assert!(close(thr.latency_s(&p), 9.0 + 0.51 + 3.0 + 0.51));
    // The latency planner keeps everything on the source (12 s < 13.02 s).
    let lat = EdgeShardLatency.partition(&p).expect("feasible");
    assert_eq!(lat.devices(), vec![0]);
}

#[test]
fn single_device_and_nonzero_source() {
    let p = problem(vec![vec![0.5; 3]], vec![1.0; 3], vec![3.0]);
    let a = EdgeShardLatency.partition(&p).expect("feasible");
    assert_eq!(a.stages.len(), 1);
    let mut p = problem(
        vec![vec![1.0; 5], vec![2.0; 5], vec![0.1; 5]],
        vec![1.0; 5],
        vec![5.0; 3],
    );
    p.source = 2;
    for planner in [&EdgeShardLatency as &dyn Partitioner, &EdgeShardThroughput] {
        let a = planner.partition(&p).expect("feasible");
        assert_eq!(a.devices(), vec![2], "{}", planner.name());
    }
}

#[test]
fn deterministic() {
    let mut rng = Rng::new(7);
    for _ in 0..20 {
        let p = random_problem(&mut rng, 9, 5);
        assert_eq!(
            EdgeShardLatency.partition(&p),
            EdgeShardLatency.partition(&p)
        );
        assert_eq!(
            EdgeShardThroughput.partition(&p),
            EdgeShardThroughput.partition(&p)
        );
    }
}

#[test]
fn residual_links_are_refused() {
    let mut p = problem(vec![vec![1.0; 4]], vec![1.0; 4], vec![4.0]);
    p.residual = vec![(0, 2, 1e3)];
    expect_invalid(&p, "residual");
}

#[test]
fn no_devices_is_invalid() {
    let mut p = problem(vec![], vec![1.0; 4], vec![]);
    p.source = 0;
    expect_invalid(&p, "devices");
}

#[test]
fn too_many_devices_is_invalid() {
    let m = MAX_DEVICES + 1;
    let p = problem(vec![vec![1.0; 4]; m], vec![1.0; 4], vec![4.0; m]);
    for planner in [&EdgeShardLatency as &dyn Partitioner, &EdgeShardThroughput] {
        match planner.partition(&p) {
            Err(PartitionError::Invalid { field, reason }) => {
                assert_eq!(field, "devices");
                assert!(reason.contains("at most 16"), "{reason}");
            }
            other => panic!("{}: {other:?}", planner.name()),
        }
    }
    // Too many states for the allocation limit.
    let n = 2000;
    let p = problem(vec![vec![1.0; n]; 16], vec![1.0; n], vec![n as f64; 16]);
    match EdgeShardLatency.partition(&p) {
        Err(PartitionError::Invalid { field, .. }) => assert_eq!(field, "devices"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn infeasible_reasons() {
    let planners = [&EdgeShardLatency as &dyn Partitioner, &EdgeShardThroughput];
    // The model is bigger than all the memory (caught by validate).
    let p = problem(vec![vec![1.0; 4]; 2], vec![1.0; 4], vec![1.5; 2]);
    for planner in planners {
        match planner.partition(&p) {
            Err(PartitionError::Infeasible(why)) => assert!(why.contains("GB"), "{why}"),
            other => panic!("{}: {other:?}", planner.name()),
        }
    }
    // The embedding does not fit on the source.
    let mut p = problem(
        vec![vec![1.0; 4]; 2],
        vec![2.0, 1.0, 1.0, 1.0],
        vec![1.0, 10.0],
    );
    for planner in planners {
        match planner.partition(&p) {
            Err(PartitionError::Infeasible(why)) => {
                assert!(why.contains("unit 0") && why.contains("dev0"), "{why}")
            }
            other => panic!("{}: {other:?}", planner.name()),
        }
    }
    // One unit fits no device.
    p.memory = vec![1.0, 1.0, 6.0, 1.0];
    p.capacity = vec![5.0, 5.0];
    for planner in planners {
        match planner.partition(&p) {
            Err(PartitionError::Infeasible(why)) => assert!(why.contains("unit 2"), "{why}"),
            other => panic!("{}: {other:?}", planner.name()),
        }
    }
    // Enough memory in total, but not in one contiguous shard per device.
    p.memory = vec![2.0, 3.0, 2.0, 1.0];
    p.capacity = vec![4.0, 4.0];
    for planner in planners {
        match planner.partition(&p) {
            Err(PartitionError::Infeasible(why)) => {
                assert!(why.contains("contiguous"), "{why}")
            }
            other => panic!("{}: {other:?}", planner.name()),
        }
    }
    // …which one more device fixes.
    p.compute_s.push(vec![1.0; 4]);
    p.capacity.push(4.0);
    p.latency_s = vec![vec![0.01; 3]; 3];
    p.bandwidth = vec![vec![1e8; 3]; 3];
    p.devices.push("dev2".into());
    for planner in planners {
        let a = planner.partition(&p).expect("feasible with three devices");
        assert_well_formed(&p, &a);
        assert_eq!(a.stages.len(), 3);
    }
}

/// A Llama-like instance: embedding, `blocks` equal blocks, head; heterogeneous devices.
/// With `roomy`, every device could hold the whole model (the most reachable states).
fn llama_like(blocks: usize, m: usize, seed: u64, roomy: bool) -> PartitionProblem {
    let mut rng = Rng::new(seed);
    let n = blocks + 2;
    let mut memory = vec![1.7e9; n];
    memory[0] = 0.5e9;
    memory[n - 1] = 0.5e9;
    let total: f64 = memory.iter().sum();
    let compute_s = (0..m)
        .map(|_| {
            let speed = 0.5 + rng.unif();
            (0..n)
                .map(|u| if u == 0 { 1e-4 } else { 0.01 * speed })
                .collect()
        })
        .collect();
    let capacity = (0..m)
        .map(|_| {
            if roomy {
                total
            } else {
                total / m as f64 * (0.8 + 0.8 * rng.unif())
            }
        })
        .collect();
    let mut p = problem(compute_s, memory, capacity);
    p.out_bytes = vec![16384.0; n];
    p.out_bytes[n - 1] = 4.0;
    p.latency_s = (0..m)
        .map(|_| (0..m).map(|_| 0.005 * rng.unif()).collect())
        .collect();
    p.bandwidth = (0..m)
        .map(|_| (0..m).map(|_| 1e7 + 1e8 * rng.unif()).collect())
        .collect();
    p.source = rng.int(0, m - 1);
    p
}

/// `cargo test --release -- --ignored --nocapture timing`
#[test]
#[ignore]
fn timing() {
    for (blocks, m, roomy) in [
        (80, 6, false),
        (80, 6, true),
        (32, 10, false),
        (32, 10, true),
        (80, 10, false),
        (80, 10, true),
        (32, 16, true),
        (80, 16, false),
        (80, 16, true),
    ] {
        let p = llama_like(blocks, m, 42 + m as u64, roomy);
        for planner in [&EdgeShardLatency as &dyn Partitioner, &EdgeShardThroughput] {
            let t = std::time::Instant::now();
            let a = planner.partition(&p);
            let dt = t.elapsed();
            let stages = a.as_ref().map(|a| a.stages.len()).unwrap_or(0);
            println!(
                "{:>21} {:>3} units × {:>2} devices{}: {:>9.3} ms ({} stages{})",
                planner.name(),
                blocks + 2,
                m,
                if roomy { ", roomy" } else { ", tight" },
                dt.as_secs_f64() * 1e3,
                stages,
                if a.is_err() { ", infeasible" } else { "" }
            );
        }
    }
}
