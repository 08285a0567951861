use super::*;
use crate::device::{Precision, Profiles};
use crate::schemes::pipeline::{Background, CostSetup, Link, Network, Return, Split, Wire};
use crate::systems::{self, Setup, System};
use airinfer_llm::cost::{presets, WeightFormat};
use airinfer_plan::pipeline::{Assignment, Stage};

fn cost(devices: &[&str]) -> CostSetup {
    let lib = Profiles::builtin();
    CostSetup {
        cfg: presets::tinyllama_1_1b(),
        weights: WeightFormat::Bits(4.5),
        precision: Precision::F16,
        kv_bytes: 2.0,
        profiles: devices
            .iter()
            .map(|d| lib.get(d).unwrap().clone())
            .collect(),
        wire: Wire::F16,
        ret: Return::Token,
        split: Split::Block,
    }
}

fn never(_: &[bool]) -> Result<Assignment, airinfer_plan::pipeline::PartitionError> {
    unreachable!("no failure")
}

/// One device, one request at a time, one output token: each request's service is the same
/// prefill, so with Poisson arrivals the source's queue is M/D/1, whose mean wait is
/// ρ D / (2 (1 − ρ)) (Pollaczek–Khinchine with a deterministic service D).
#[test]
fn one_stage_queueing_delay_is_md1() {
    let c = cost(&["jetson-orin-nano"]);
    let net = Network::uniform(1, Link::Ideal);
    let stages = Assignment {
        stages: vec![Stage {
            device: 0,
            units: 0..c.n_units(),
        }],
    };
    let bg = Background::default();
    let policy = Policy {
        max_batch: 1,
        max_in_flight: 1,
        queue_capacity: 0,
        batching: Batching::Static,
    };
    let run = |requests: &[Request]| {
        serve(
            Executor::Pipeline {
                cost: &c,
                net: &net,
                stages: stages.clone(),
                background: &bg,
                replan: Box::new(never),
            },
            requests,
            &policy,
            &[],
            1,
            0,
            1,
        )
        .unwrap()
    };
    // the service time: a request alone
    let alone = run(&Arrivals::Poisson { rate_per_s: 1.0 }
        .requests(1, 64, 1, 0)
        .unwrap());
    let d = alone.records[0].e2e_s();
    assert!(d > 0.0 && alone.records[0].queue_s().abs() < 1e-9);
    for rho in [0.3, 0.5, 0.7] {
        let n = 300_000;
        let reqs = Arrivals::Poisson {
            rate_per_s: rho / d,
        }
        .requests(n, 64, 1, 7)
        .unwrap();
        let r = run(&reqs);
        assert_eq!(r.summary.finished, n);
        let waits: Vec<f64> = r.records.iter().map(|x| x.queue_s()).collect();
        let sim = waits.iter().sum::<f64>() / n as f64;
        let want = rho * d / (2.0 * (1.0 - rho));
        // the waits are correlated: the error from 30 batch means (each 10 000 requests, far
        // longer than the queue's memory at these loads)
        let b = n / 30;
        let means: Vec<f64> = waits
            .chunks(b)
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        let mu = means.iter().sum::<f64>() / means.len() as f64;
        let se = (means.iter().map(|m| (m - mu).powi(2)).sum::<f64>()
            / (means.len() * (means.len() - 1)) as f64)
            .sqrt();
        assert!(
            (sim - want).abs() < 4.0 * se + 1e-9 * d && (sim / want - 1.0).abs() < 0.05,
            "ρ = {rho}: simulated mean wait {sim} s, M/D/1 {want} s (± {se})"
        );
        // and each request's service is D: time in system = wait + D
        let x = &r.records[n / 2];
        assert!((x.e2e_s() - x.queue_s() - d).abs() < 2e-9);
    }
}

#[test]
fn poisson_and_mmpp_arrivals_have_their_rates() {
    let n = 200_000;
    let p = Arrivals::Poisson { rate_per_s: 4.0 }
        .requests(n, 8, 8, 3)
        .unwrap();
    let gaps: Vec<f64> = p
        .windows(2)
        .map(|w| w[1].arrival_s - w[0].arrival_s)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    // exponential gaps: mean 1/λ, coefficient of variation 1 (standard errors ~0.2 %)
    assert!((mean * 4.0 - 1.0).abs() < 0.01, "{mean}");
    assert!((var.sqrt() / mean - 1.0).abs() < 0.02);
    // MMPP-2: long-run rate Σ r_i d_i / Σ d_i, and burstier than Poisson (CV > 1)
    let m = Arrivals::Mmpp {
        rates_per_s: vec![10.0, 1.0],
        mean_dwell_s: vec![2.0, 8.0],
    };
    assert!((m.mean_rate() - 2.8).abs() < 1e-12);
    let r = m.requests(n, 8, 8, 4).unwrap();
    let rate = n as f64 / r.last().unwrap().arrival_s;
    // ~56 000 switches of the chain: a few % at most
    assert!((rate / 2.8 - 1.0).abs() < 0.03, "{rate}");
    let gaps: Vec<f64> = r
        .windows(2)
        .map(|w| w[1].arrival_s - w[0].arrival_s)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    assert!(var.sqrt() / mean > 1.2);
    // same seed, same arrivals
    assert_eq!(r, m.requests(n, 8, 8, 4).unwrap());
}

#[test]
fn nearest_rank_percentiles() {
    let p = Percentiles::of((1..=100).map(|x| x as f64).chain([f64::NAN]));
    assert_eq!((p.p50, p.p95, p.p99, p.mean), (50.0, 95.0, 99.0, 50.5));
    let one = Percentiles::of([3.0]);
    assert_eq!((one.p50, one.p99), (3.0, 3.0));
    assert!(Percentiles::of([]).p50.is_nan());
}

#[test]
fn traces_are_read_with_their_errors_named() {
    let t = "# a trace\narrival_s, gen_tokens, prompt_tokens, user\n0.5, 4, 16, a\n1.25, 2, 8, b\n";
    let r = parse_trace(t).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[1].arrival_s, r[1].prompt_tokens, r[1].gen_tokens),
        (1.25, 8, 2)
    );
    let e = parse_trace("arrival_s,prompt_tokens\n0,1\n").unwrap_err();
    assert!(e.contains("gen_tokens"), "{e}");
    let e = parse_trace("arrival_s,prompt_tokens,gen_tokens\n0,1,1\nx,1,1\n").unwrap_err();
    assert!(e.contains("line 3"), "{e}");
    let e = parse_trace("arrival_s,prompt_tokens,gen_tokens\n2,1,1\n1,1,1\n").unwrap_err();
    assert!(e.contains("sort"), "{e}");
}

fn phones() -> Setup {
    let lib = Profiles::builtin();
    let names = [
        "phone-flagship",
        "phone-midrange",
        "phone-midrange",
        "phone-flagship",
    ];
    Setup {
        cfg: presets::tinyllama_1_1b(),
        weights: WeightFormat::Bits(4.5),
        precision: Precision::F16,
        names: names.iter().map(|s| s.to_string()).collect(),
        profiles: names.iter().map(|d| lib.get(d).unwrap().clone()).collect(),
        net: Network::uniform(
            4,
            Link::Wired {
                bandwidth: 50e6,
                latency_s: 2e-3,
            },
        ),
        radio: Default::default(),
        design: crate::schemes::tp::Design::ZfSum,
        workload: crate::schemes::pipeline::Workload {
            samples: 1,
            prompt_tokens: 32,
            gen_tokens: 16,
            micro_batch: 1,
            cold_start: false,
        },
        source: 0,
        memory_fraction: 0.25,
        wire: Wire::F16,
        overlap: 0,
        balance_every: 0,
        slowdowns: Vec::new(),
        objective: Default::default(),
        ret: Return::Token,
        split: Split::Block,
    }
}

/// After a device fails mid-run every request is still answered exactly once, the stages
/// after the failure are the planner's for the devices left, and after it rejoins the
/// original plan is back.
#[test]
fn a_failure_loses_and_duplicates_nothing_and_replans_with_the_planner() {
    let setup = phones();
    let policy = Policy {
        max_batch: 2,
        ..Policy::default()
    };
    let requests = Arrivals::Poisson { rate_per_s: 6.0 }
        .requests(80, 32, 16, 11)
        .unwrap();
    let failures = vec![Failure {
        device: 2,
        at_s: 3.0,
        rejoin_s: Some(8.0),
    }];
    let mut used = 0;
    for system in [
        System::EdgeshardLatency,
        System::Even,
        System::Lingualinked,
        System::Mdi,
    ] {
        let s = systems::ServingSetup {
            requests: requests.clone(),
            policy,
            failures: failures.clone(),
        };
        let r = systems::serve(system, &setup, &s, 5).unwrap();
        // nothing lost, nothing twice: every request got exactly its tokens, and the steps
        // that returned carried exactly that many tokens in all
        assert_eq!(r.summary.finished, requests.len(), "{system:?}");
        assert_eq!(r.summary.unfinished + r.summary.rejected, 0);
        for x in &r.records {
            assert_eq!(x.tokens, x.request.gen_tokens);
            assert!(x.done_s >= x.first_token_s && x.first_token_s > x.request.arrival_s);
        }
        let logged: usize = r.token_log.iter().map(|t| t.1).sum();
        assert_eq!(logged, requests.len() * 16);
        assert!(r.summary.retries > 0, "the failure hit requests in flight");
        // the plan after the failure: the planner's own, on a setup of the three devices left
        // (built here by hand, device 2 removed, indices 0, 1, 3 → 0, 1, 2)
        let three = ["phone-flagship", "phone-midrange", "phone-flagship"];
        let lib = Profiles::builtin();
        let left = Setup {
            names: three.iter().map(|s| s.to_string()).collect(),
            profiles: three.iter().map(|d| lib.get(d).unwrap().clone()).collect(),
            net: Network::uniform(
                3,
                Link::Wired {
                    bandwidth: 50e6,
                    latency_s: 2e-3,
                },
            ),
            workload: crate::schemes::pipeline::Workload {
                samples: 2 * 3,
                micro_batch: 2,
                ..setup.workload
            },
            ..setup.clone()
        };
        let want = system
            .partitioner(1.0)
            .unwrap()
            .partition(&left.problem().unwrap())
            .unwrap();
        let back = [0, 1, 3];
        let want = Assignment {
            stages: want
                .stages
                .into_iter()
                .map(|s| Stage {
                    device: back[s.device],
                    units: s.units,
                })
                .collect(),
        };
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0].what, "fail dev2");
        assert_eq!(r.events[0].plan, systems::stages_text(&want), "{system:?}");
        assert!(!r.events[0].plan.contains("2:"), "{}", r.events[0].plan);
        let before = systems::serving_plan(system, &setup, &policy).unwrap();
        assert_eq!(r.events[1].plan, systems::stages_text(&before));
        // when the failed device held units, reading them elsewhere takes time
        if before.stages.iter().any(|s| s.device == 2) {
            assert!(r.events[0].ready_s > 3.0, "{system:?}");
            used += 1;
        }
        assert!(r.lost_work_s > 0.0);
    }
    assert!(used > 0, "no plan used the device that fails");
}

/// Tensor parallelism re-splits over the devices left and still answers every request once.
#[test]
fn tensor_parallelism_resplits_after_a_failure() {
    let setup = Setup {
        memory_fraction: 1.0,
        ..phones()
    };
    let requests = Arrivals::Poisson { rate_per_s: 3.0 }
        .requests(20, 32, 8, 2)
        .unwrap();
    let s = systems::ServingSetup {
        requests: requests.clone(),
        policy: Policy::default(),
        failures: vec![Failure {
            device: 1,
            at_s: 1.0,
            rejoin_s: None,
        }],
    };
    let r = systems::serve(System::DigitalTp, &setup, &s, 3).unwrap();
    assert_eq!(r.summary.finished, requests.len());
    assert!(r.records.iter().all(|x| x.tokens == 8));
    assert_eq!(r.events[0].plan, "3 equal shares");
    // a device with a larger share reads the difference from storage
    assert!(r.events[0].ready_s > 1.0);
    // the source cannot fail
    let bad = systems::ServingSetup {
        failures: vec![Failure {
            device: 0,
            at_s: 1.0,
            rejoin_s: None,
        }],
        ..s
    };
    let e = systems::serve(System::DigitalTp, &setup, &bad, 3).unwrap_err();
    assert!(e.to_string().contains("source"), "{e}");
}

/// Continuous batching lets a waiting request join at the next step; static batching makes it
/// wait for the whole batch: with the same load, static batching's time to first token is the
/// longer one.
#[test]
fn continuous_batching_starts_requests_sooner_than_static() {
    let setup = phones();
    let requests = Arrivals::Poisson { rate_per_s: 8.0 }
        .requests(100, 32, 16, 9)
        .unwrap();
    let run = |batching| {
        let s = systems::ServingSetup {
            requests: requests.clone(),
            policy: Policy {
                max_batch: 4,
                max_in_flight: 1,
                batching,
                ..Policy::default()
            },
            failures: vec![],
        };
        systems::serve(System::Even, &setup, &s, 1).unwrap().summary
    };
    let (c, st) = (run(Batching::Continuous), run(Batching::Static));
    assert_eq!((c.finished, st.finished), (100, 100));
    assert!(c.ttft.mean < st.ttft.mean, "{:?} vs {:?}", c.ttft, st.ttft);
}

/// A re-plan to fewer stages leaves fewer micro-batch places: the events still on their way
/// for the places that are gone are dropped, and every request is still answered once.
#[test]
fn a_replan_to_fewer_stages_drops_the_events_of_the_places_gone() {
    let c = cost(&["jetson-orin-nano", "jetson-orin-nano", "jetson-orin-nano"]);
    let n = c.n_units();
    let net = Network::uniform(
        3,
        Link::Wired {
            bandwidth: 20e6,
            latency_s: 5e-3,
        },
    );
    let three = Assignment {
        stages: (0..3)
            .map(|d| Stage {
                device: d,
                units: d * n / 3..(d + 1) * n / 3,
            })
            .collect(),
    };
    let bg = Background::default();
    let mut calls = 0;
    let replan = Box::new(|alive: &[bool]| {
        calls += 1;
        assert!(!alive[2]);
        Ok(Assignment {
            stages: vec![Stage {
                device: 0,
                units: 0..n,
            }],
        })
    });
    // arrivals fast enough that every place is busy when device 2 leaves
    let requests = Arrivals::Poisson { rate_per_s: 50.0 }
        .requests(60, 16, 6, 1)
        .unwrap();
    let r = serve(
        Executor::Pipeline {
            cost: &c,
            net: &net,
            stages: three,
            background: &bg,
            replan,
        },
        &requests,
        &Policy {
            max_batch: 2,
            ..Policy::default()
        },
        &[Failure {
            device: 2,
            at_s: 0.3,
            rejoin_s: None,
        }],
        3,
        0,
        1,
    )
    .unwrap();
    assert_eq!(r.summary.finished, 60);
    assert!(r.records.iter().all(|x| x.tokens == 6));
    assert_eq!(r.events[0].plan, format!("0:0-{n}"));
    assert!(r.events[0].retried >= 3, "{}", r.events[0].retried);
}
