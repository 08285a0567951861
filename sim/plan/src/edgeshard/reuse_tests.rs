//! Tests of [`EdgeShardLatencyReuse`] and [`CloudEdgeOpt`].

use super::tests::{problem, random_problem};
use super::*;

use crate::pipeline::test_rng::Rng;

/// The assignment of a unit → device map, runs on one device merged into a stage.
fn from_map(dev: &[usize]) -> Assignment {
    Assignment::from_device_map(dev)
}

/// Every memory-feasible assignment with reuse: every map of units to devices with unit 0 on
/// the source.
fn every_map(p: &PartitionProblem) -> Vec<Assignment> {
    let (n, m) = (p.n_units(), p.n_devices());
    let mut dev = vec![0; n];
    dev[0] = p.source;
    let mut all = Vec::new();
    loop {
        let a = from_map(&dev);
        if a.memory_violation(p).is_none() {
            all.push(a);
        }
        // Next map in odometer order over units 1..n.
        let mut u = 1;
        while u < n && dev[u] == m - 1 {
            dev[u] = 0;
            u += 1;
        }
        if u == n {
            return all;
        }
        dev[u] += 1;
    }
}

/// Equal up to rounding (the planner and `latency_s` sum in different orders).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// `a` is a valid, memory-feasible assignment whose consecutive stages are on different
/// devices.
fn assert_feasible(p: &PartitionProblem, a: &Assignment) {
    assert!(a.validate(p).is_ok(), "{a:?} invalid: {:?}", a.validate(p));
    assert_eq!(a.memory_violation(p), None, "{a:?}");
    for w in a.stages.windows(2) {
        assert_ne!(w[0].device, w[1].device, "unmerged stages in {a:?}");
    }
}

/// The reuse planner on `p` against every map: `Infeasible` exactly when no map fits, else a
/// feasible assignment as fast as the best map. Its latency, when feasible.
fn check_exhaustive(case: usize, p: &PartitionProblem) -> Option<f64> {
    let all = every_map(p);
    let got = EdgeShardLatencyReuse.partition(p);
    if all.is_empty() {
        assert!(
            matches!(got, Err(PartitionError::Infeasible(_))),
            "case {case}: {got:?}\n{p:?}"
        );
        return None;
    }
    let a = match got {
        Ok(a) => a,
        Err(e) => panic!("case {case}: feasible but {e:?}\n{p:?}"),
    };
    assert_feasible(p, &a);
    let best = all
        .iter()
        .map(|a| a.latency_s(p))
        .fold(f64::INFINITY, f64::min);
    let lat = a.latency_s(p);
    assert!(
        close(lat, best),
        "case {case}: latency {lat} vs exhaustive {best}\n{a:?}\n{p:?}"
    );
    Some(lat)
}

/// Compare the reuse planner with every map on random instances; returns (feasible,
/// infeasible, instances where reuse beats the no-reuse planner).
fn compare_random(
    seed: u64,
    cases: usize,
    units: (usize, usize),
    devs: (usize, usize),
) -> (usize, usize, usize) {
    let mut rng = Rng::new(seed);
    let (mut feasible, mut infeasible, mut better) = (0, 0, 0);
    for case in 0..cases {
        let n = rng.int(units.0, units.1);
        let m = rng.int(devs.0, devs.1);
        let p = random_problem(&mut rng, n, m);
        let Some(lat) = check_exhaustive(case, &p) else {
            infeasible += 1;
            continue;
        };
        feasible += 1;
        // Never worse than the planner without reuse, whose answers are among ours.
        if let Ok(b) = EdgeShardLatency.partition(&p) {
            let no_reuse = b.latency_s(&p);
            assert!(
                lat <= no_reuse * (1.0 + 1e-12),
                "case {case}: {lat} > {no_reuse} without reuse\n{p:?}"
            );
            if lat < no_reuse * (1.0 - 1e-9) {
                better += 1;
            }
        } else {
            better += 1;
        }
    }
    (feasible, infeasible, better)
}

#[test]
fn reuse_matches_exhaustive_search() {
    let (feasible, infeasible, better) = compare_random(11, 500, (2, 7), (1, 4));
    println!("{feasible} feasible, {infeasible} infeasible, reuse better on {better}");
    assert!(feasible >= 300, "{feasible} feasible");
    assert!(infeasible >= 10, "{infeasible} infeasible");
    assert!(better >= 20, "reuse better on only {better}");
}

#[test]
fn reuse_matches_exhaustive_search_tight_memory() {
    // Capacities of a third to a half of the model on every device: memory binds.
    let mut rng = Rng::new(12);
    let mut checked = 0;
    for case in 0..300 {
        let n = rng.int(4, 7);
        let m = rng.int(2, 4);
        let mut p = random_problem(&mut rng, n, m);
        let total: f64 = p.memory.iter().sum();
        p.capacity = (0..m).map(|_| total * rng.range(0.3, 0.6)).collect();
        if check_exhaustive(case, &p).is_some() {
            checked += 1;
        }
    }
    assert!(checked >= 150, "{checked} feasible");
}

#[test]
fn reuse_matches_exhaustive_search_llama_like() {
    // Equal blocks between an embedding and a head, a slow source and fast devices of a fifth
    // to two fifths of the model: the structure the quantized bound tracks in whole blocks.
    let mut rng = Rng::new(15);
    let mut checked = 0;
    for case in 0..60 {
        let blocks = rng.int(4, 7);
        let m = rng.int(3, 4);
        let binding = rng.int(1, m - 1);
        let p = edge_cloud(blocks, m, binding, rng.coin(0.5), 100 + case);
        if check_exhaustive(case as usize, &p).is_some() {
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} feasible");
}

#[test]
fn reuse_never_worse_than_no_reuse_medium() {
    let mut rng = Rng::new(13);
    for case in 0..60 {
        let n = rng.int(8, 14);
        let m = rng.int(3, 6);
        let p = random_problem(&mut rng, n, m);
        let (Ok(a), Ok(b)) = (
            EdgeShardLatencyReuse.partition(&p),
            EdgeShardLatency.partition(&p),
        ) else {
            continue;
        };
        assert_feasible(&p, &a);
        assert!(
            a.latency_s(&p) <= b.latency_s(&p) * (1.0 + 1e-12),
            "case {case}: {} > {}",
            a.latency_s(&p),
            b.latency_s(&p)
        );
    }
}

#[test]
fn reuse_names() {
    assert_eq!(EdgeShardLatencyReuse.name(), "edgeshard-latency-reuse");
    assert_eq!(CloudEdgeOpt::default().name(), "cloud-edge-opt");
}

#[test]
fn reuse_returns_to_the_source_when_it_pays() {
    // Units 0..5; the source is fast on units 0, 2, 4, the server on 1 and 3; a hand-off takes
    // 0.1 s. Every unit on its faster device costs 0 + 1 + 1 + 1 + 0 = 3 s of compute and four
    // hand-offs (src → srv → src → srv → src), 3.4 s; any other map pays at least 9 s more
    // compute. Without reuse the server holds a suffix: at best units 1..5 (0 + 1 + 10 +
    // 1 + 5 + 0.2 = 17.2 s) or 3..5 (0 + 10 + 1 + 1 + 5 + 0.2 = 17.2 s).
    let mut p = problem(
        vec![
            vec![0.0, 10.0, 1.0, 10.0, 0.0],
            vec![5.0, 1.0, 10.0, 1.0, 5.0],
        ],
        vec![1.0; 5],
        vec![5.0, 5.0],
    );
    // Every hand-off costs exactly its 0.1 s per-message latency.
    p.out_bytes = vec![1.0; 5];
    p.latency_s = vec![vec![0.1; 2]; 2];
    p.bandwidth = vec![vec![f64::INFINITY; 2]; 2];
    let a = EdgeShardLatencyReuse.partition(&p).expect("feasible");
    assert_eq!(a, from_map(&[0, 1, 0, 1, 0]));
    assert!(close(a.latency_s(&p), 3.4), "{}", a.latency_s(&p));
    let b = EdgeShardLatency.partition(&p).expect("feasible");
    assert!(close(b.latency_s(&p), 17.2), "{}", b.latency_s(&p));
}

#[test]
fn reuse_fills_a_small_fast_server_with_middle_blocks() {
    // Embedding, four blocks, head. The server runs a block in 1 s (the source in 3 s) but
    // holds only two units; the embedding and head are free on the source. Without reuse the
    // server can only hold a suffix, which contains the head: at best blocks 4 and the head,
    // 0 + 3 · 3 + (1 + 1) + 2 · 0.1 = 11.2 s (everything on the source: 12 s). With reuse it
    // holds two consecutive blocks in the middle and hands back: 0 + 2 · 3 + 2 · 1 + 2 · 0.1
    // = 8.2 s, the optimum (two units is all it holds, and each block there saves 2 s).
    let mut p = problem(
        vec![
            vec![0.0, 3.0, 3.0, 3.0, 3.0, 0.0],
            vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ],
        vec![1.0; 6],
        vec![6.0, 2.0],
    );
    // Every hand-off costs exactly its 0.1 s per-message latency.
    p.out_bytes = vec![1.0; 6];
    p.latency_s = vec![vec![0.1; 2]; 2];
    p.bandwidth = vec![vec![f64::INFINITY; 2]; 2];
    let b = EdgeShardLatency.partition(&p).expect("feasible");
    assert!(close(b.latency_s(&p), 11.2), "{}", b.latency_s(&p));
    let a = EdgeShardLatencyReuse.partition(&p).expect("feasible");
    assert_feasible(&p, &a);
    assert!(close(a.latency_s(&p), 8.2), "{}", a.latency_s(&p));
    assert_eq!(a.devices(), vec![0, 1, 0]);
    assert_eq!(a.stages[1].units.len(), 2);
    assert!(a.stages[1].units.start >= 1 && a.stages[1].units.end <= 5);
    // Deterministic tie-breaking: the same answer every time.
    assert_eq!(EdgeShardLatencyReuse.partition(&p), Ok(a));
}

#[test]
fn reuse_fits_where_contiguous_shards_cannot() {
    // 2 + 3 + 2 + 1 on two devices of 4: no contiguous split fits, units {0, 2} and {1, 3}
    // do.
    let mut p = problem(
        vec![vec![1.0; 4]; 2],
        vec![2.0, 3.0, 2.0, 1.0],
        vec![4.0; 2],
    );
    assert!(matches!(
        EdgeShardLatency.partition(&p),
        Err(PartitionError::Infeasible(_))
    ));
    let a = EdgeShardLatencyReuse
        .partition(&p)
        .expect("feasible with reuse");
    assert_eq!(a, from_map(&[0, 1, 0, 1]));
    // 4.5 and 3.5: the second device holds at most 3 of units 1..4, leaving 5 > 4.5 on the
    // source.
    p.capacity = vec![4.5, 3.5];
    match EdgeShardLatencyReuse.partition(&p) {
        Err(PartitionError::Infeasible(why)) => {
            assert!(why.contains("any number of stages"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reuse_infeasible_reasons() {
    let planner = EdgeShardLatencyReuse;
    // Bigger than all the memory.
    let p = problem(vec![vec![1.0; 4]; 2], vec![1.0; 4], vec![1.5; 2]);
    match planner.partition(&p) {
        Err(PartitionError::Infeasible(why)) => assert!(why.contains("GB"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The embedding does not fit on the source.
    let mut p = problem(
        vec![vec![1.0; 4]; 2],
        vec![2.0, 1.0, 1.0, 1.0],
        vec![1.0, 10.0],
    );
    match planner.partition(&p) {
        Err(PartitionError::Infeasible(why)) => {
            assert!(why.contains("unit 0") && why.contains("dev0"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // One unit fits no device.
    p.memory = vec![1.0, 1.0, 6.0, 1.0];
    p.capacity = vec![5.0, 5.0];
    match planner.partition(&p) {
        Err(PartitionError::Infeasible(why)) => assert!(why.contains("unit 2"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reuse_invalid_instances_name_the_field() {
    let expect = |p: &PartitionProblem, name: &str| match EdgeShardLatencyReuse.partition(p) {
        Err(PartitionError::Invalid { field, .. }) => assert_eq!(field, name),
        other => panic!("{name}: {other:?}"),
    };
    let base = problem(vec![vec![1.0; 4]; 2], vec![1.0; 4], vec![4.0; 2]);
    let mut p = base.clone();
    p.residual = vec![(0, 2, 1e3)];
    expect(&p, "residual");
    let p = problem(vec![], vec![1.0; 4], vec![]);
    expect(&p, "devices");
    let m = MAX_REUSE_DEVICES + 1;
    let p = problem(vec![vec![1.0; 4]; m], vec![1.0; 4], vec![4.0; m]);
    expect(&p, "devices");
    let mut p = base.clone();
    p.source = 2;
    expect(&p, "source");
    let mut p = base.clone();
    p.compute_s[1].pop();
    expect(&p, "compute_s");
    let mut p = base.clone();
    p.bandwidth[0][1] = 0.0;
    expect(&p, "bandwidth[0][1]");
    let mut p = base;
    p.memory[1] = f64::NAN;
    expect(&p, "memory");
}

#[test]
fn reuse_search_limits_give_a_solver_error() {
    // Three binding devices of similar speed: many partial assignments trade memory.
    let p = edge_cloud(80, 5, 3, false, 1);
    let limits = |labels, tests| reuse::Limits { labels, tests };
    let a = reuse::solve(&p, limits(MAX_LABELS, MAX_DOMINANCE_TESTS)).expect("feasible");
    assert_feasible(&p, &a);
    for (labels, tests) in [(5, MAX_DOMINANCE_TESTS), (MAX_LABELS, 0)] {
        match reuse::solve(&p, limits(labels, tests)) {
            Err(PartitionError::Solver(why)) => assert!(why.contains("exceeded"), "{why}"),
            other => panic!("{labels} labels, {tests} tests: {other:?}"),
        }
    }
}

#[test]
fn reuse_deterministic() {
    let mut rng = Rng::new(14);
    for _ in 0..20 {
        let p = random_problem(&mut rng, 10, 5);
        assert_eq!(
            EdgeShardLatencyReuse.partition(&p),
            EdgeShardLatencyReuse.partition(&p)
        );
    }
}

/// An edge–cloud instance of `blocks` decoder blocks on `m` devices: a slow source holding a
/// third of the model, `binding` fast devices that each hold a fifth to two fifths of it, and
/// slower devices that hold all of it. With `noisy`, per-unit compute varies ±10 % (real
/// profiles repeat one block time).
fn edge_cloud(blocks: usize, m: usize, binding: usize, noisy: bool, seed: u64) -> PartitionProblem {
    let mut rng = Rng::new(seed);
    let n = blocks + 2;
    let mut memory = vec![0.4e9; n];
    memory[0] = 0.25e9;
    memory[n - 1] = 0.25e9;
    let total: f64 = memory.iter().sum();
    let mut speed = Vec::new();
    let mut capacity = Vec::new();
    for d in 0..m {
        let (v, c) = if d == 0 {
            (3.0, total / 3.0)
        } else if d <= binding {
            (rng.range(0.4, 1.0), total * rng.range(0.2, 0.4))
        } else {
            (rng.range(1.5, 3.0), total)
        };
        speed.push(v);
        capacity.push(c);
    }
    let compute_s = speed
        .iter()
        .map(|&v| {
            (0..n)
                .map(|u| {
                    let base = if u == 0 {
                        1e-4
                    } else if u == n - 1 {
                        3e-3
                    } else {
                        2e-3
                    };
                    base * v * if noisy { rng.range(0.9, 1.1) } else { 1.0 }
                })
                .collect()
        })
        .collect();
    let mut p = problem(compute_s, memory, capacity);
    p.out_bytes = vec![8192.0; n];
    p.out_bytes[n - 1] = 4.0;
    p.latency_s = (0..m)
        .map(|_| (0..m).map(|_| rng.range(1e-3, 5e-3)).collect())
        .collect();
    p.bandwidth = (0..m)
        .map(|_| (0..m).map(|_| rng.range(1e7, 1e8)).collect())
        .collect();
    p
}

#[test]
fn reuse_edge_cloud_instances_beat_or_match_no_reuse() {
    for (blocks, m, binding, noisy, seed) in [(32, 4, 2, false, 1), (40, 5, 3, true, 2)] {
        let p = edge_cloud(blocks, m, binding, noisy, seed);
        let a = EdgeShardLatencyReuse.partition(&p).expect("feasible");
        assert_feasible(&p, &a);
        let b = EdgeShardLatency.partition(&p).expect("feasible");
        assert!(a.latency_s(&p) <= b.latency_s(&p) * (1.0 + 1e-12));
    }
}

/// `cargo test -p airinfer-plan --release -- --ignored --nocapture reuse_timing`
#[test]
#[ignore]
fn reuse_timing() {
    let cases = [
        (32, 4, 2, false),
        (32, 4, 2, true),
        (40, 5, 2, false),
        (40, 5, 3, true),
        (80, 5, 2, false),
        (80, 5, 2, true),
        (80, 5, 3, false),
        (80, 5, 3, true),
        (80, 6, 3, false),
        (80, 6, 3, true),
        (80, 6, 4, true),
        (80, 8, 4, true),
        (80, 8, 6, true),
        (120, 6, 4, true),
        (80, 12, 8, true),
        (80, 16, 12, true),
    ];
    for (blocks, m, binding, noisy) in cases {
        for seed in 1..=3 {
            let p = edge_cloud(blocks, m, binding, noisy, seed);
            let t = std::time::Instant::now();
            let a = EdgeShardLatencyReuse.partition(&p);
            let dt = t.elapsed();
            let t = std::time::Instant::now();
            let b = EdgeShardLatency.partition(&p);
            let dt_b = t.elapsed();
            let lat = |a: &Result<Assignment, PartitionError>| {
                a.as_ref().map_or(f64::NAN, |a| a.latency_s(&p) * 1e3)
            };
            println!(
                "{:>3} units × {m} devices, {binding} binding{}, seed {seed}: reuse {:>9.3} ms \
                 ({:.3} ms latency, {} stages), no reuse {:>8.3} ms ({:.3} ms latency){}",
                blocks + 2,
                if noisy { ", noisy" } else { "" },
                dt.as_secs_f64() * 1e3,
                lat(&a),
                a.as_ref().map_or(0, |a| a.stages.len()),
                dt_b.as_secs_f64() * 1e3,
                lat(&b),
                match &a {
                    Err(e) => format!(" [{e}]"),
                    Ok(_) => String::new(),
                }
            );
        }
    }
}

// ---- Cloud-Edge-Opt ----

#[test]
fn cloud_edge_matches_two_device_search() {
    let mut rng = Rng::new(21);
    let mut feasible = 0;
    for case in 0..400 {
        let n = rng.int(2, 9);
        let m = rng.int(1, 4);
        let p = random_problem(&mut rng, n, m);
        let cloud = if rng.coin(0.5) {
            None
        } else {
            Some(rng.int(0, m - 1))
        };
        let c = cloud.unwrap_or(m - 1);
        let s = p.source;
        // Every assignment on the two devices: the source alone, or units 0..k on the source
        // and k..n on the cloud.
        let mut all = vec![from_map(&vec![s; n])];
        if c != s {
            for k in 1..n {
                let mut dev = vec![s; n];
                dev[k..].fill(c);
                all.push(from_map(&dev));
            }
        }
        all.retain(|a| a.memory_violation(&p).is_none());
        let got = CloudEdgeOpt { cloud }.partition(&p);
        if all.is_empty() {
            assert!(
                matches!(got, Err(PartitionError::Infeasible(_))),
                "case {case}: {got:?}"
            );
            continue;
        }
        feasible += 1;
        let a = got.expect("feasible");
        assert_feasible(&p, &a);
        assert!(a.devices().iter().all(|&d| d == s || d == c), "{a:?}");
        let best = all
            .iter()
            .map(|a| a.latency_s(&p))
            .fold(f64::INFINITY, f64::min);
        assert!(
            (a.latency_s(&p) - best).abs() <= 1e-9 * best.abs(),
            "case {case}: {} vs {best}\n{a:?}\n{p:?}",
            a.latency_s(&p)
        );
    }
    assert!(feasible >= 150, "{feasible} feasible");
}

#[test]
fn cloud_edge_with_the_source_as_cloud_is_the_source_alone() {
    let mut p = problem(
        vec![vec![3.0; 5], vec![0.1; 5], vec![0.1; 5]],
        vec![1.0; 5],
        vec![5.0; 3],
    );
    p.source = 1;
    let a = CloudEdgeOpt { cloud: Some(1) }.partition(&p).expect("fits");
    assert_eq!(a, from_map(&[1; 5]));
    // The default cloud is the last device, and it pays to offload to it from a slow source.
    p.source = 0;
    let a = CloudEdgeOpt::default().partition(&p).expect("fits");
    assert_eq!(a.devices(), vec![0, 2]);
    // The source alone does not fit: infeasible, with the two devices named.
    p.source = 1;
    p.capacity = vec![5.0, 4.0, 5.0];
    match (CloudEdgeOpt { cloud: Some(1) }).partition(&p) {
        Err(PartitionError::Infeasible(why)) => assert!(why.contains("dev1"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cloud_edge_invalid_cloud() {
    let p = problem(vec![vec![1.0; 4]; 2], vec![1.0; 4], vec![4.0; 2]);
    match (CloudEdgeOpt { cloud: Some(2) }).partition(&p) {
        Err(PartitionError::Invalid { field, .. }) => assert_eq!(field, "cloud"),
        other => panic!("{other:?}"),
    }
    let mut p = p;
    p.residual = vec![(0, 2, 1.0)];
    match CloudEdgeOpt::default().partition(&p) {
        Err(PartitionError::Invalid { field, .. }) => assert_eq!(field, "residual"),
        other => panic!("{other:?}"),
    }
}
