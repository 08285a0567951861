use super::*;
use crate::device::Profiles;
use airinfer_llm::cost::presets;
use airinfer_phy::digital::BlerModel;
use airinfer_plan::pipeline::{Partitioner, Stage};
use airinfer_plan::simple::{EvenSplit, Mdi};

fn cost(devices: &[&str], kv_bytes: f64) -> CostSetup {
    let lib = Profiles::builtin();
    CostSetup {
        cfg: presets::smollm2_135m(),
        weights: WeightFormat::Q4_1,
        precision: Precision::F16,
        kv_bytes,
        profiles: devices
            .iter()
            .map(|d| lib.get(d).unwrap().clone())
            .collect(),
        wire: Wire::F16,
        ret: Return::Token,
        split: Split::Block,
    }
}

fn wired(n: usize, bw: f64, lat: f64) -> Network {
    Network::uniform(
        n,
        Link::Wired {
            bandwidth: bw,
            latency_s: lat,
        },
    )
}

fn run(c: &CostSetup, net: &Network, a: &Assignment, w: Workload, record: bool) -> PipelineReport {
    simulate(c, net, a, &w, &Background::default(), None, None, 7, record).unwrap()
}

#[test]
fn one_sample_follows_the_closed_form() {
    let c = cost(&["jetson-orin-nano", "raspberry-pi-5", "jetson-tx2"], 2.0);
    let net = wired(3, 12.5e6, 2e-3);
    let n = c.n_units();
    let a = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..9,
            },
            Stage {
                device: 1,
                units: 9..20,
            },
            Stage {
                device: 2,
                units: 20..n,
            },
        ],
    };
    let w = Workload {
        samples: 1,
        prompt_tokens: 8,
        gen_tokens: 5,
        micro_batch: 0,
        cold_start: false,
    };
    let r = run(&c, &net, &a, w, false);
    // step s: Σ unit times on their devices + two hand-offs + the 4-byte token home
    let mut t = 0.0;
    for step in 0..w.gen_tokens {
        let (tok, past) = if step == 0 { (8, 0) } else { (1, 8 + step - 1) };
        for s in &a.stages {
            t += s
                .units
                .clone()
                .map(|u| c.unit_time_s(s.device, u, tok, past))
                .sum::<f64>();
        }
        t += 2.0 * (2e-3 + c.hidden_bytes(tok) / 12.5e6) + (2e-3 + 4.0 / 12.5e6);
        // integer-ns event times: every scheduled arrival (two hand-offs and the token home
        // per step) rounds to the nearest ns, ≤ ½ ns each, and the next step starts at the
        // token's (whole-ns) time: ≤ 3·(step + 1)·½ ns (the bare 1e-7 it replaces was not
        // derived; measured ≤ 1.1 ns)
        let tol = 3.0 * (step + 1) as f64 * 0.5e-9 + 1e-12;
        assert!((r.token_times_s[0][step] - t).abs() <= tol, "step {step}");
    }
    assert!((r.ttft_s[0] - r.token_times_s[0][0]).abs() == 0.0);
}

#[test]
fn many_samples_in_flight_reach_the_planned_bottleneck() {
    // kv_bytes = 0: decode is memory-bound on weights only, so unit times do not depend on
    // the context and the planner's period is exact
    let c = cost(&["jetson-orin-nano", "raspberry-pi-5", "jetson-tx2"], 0.0);
    let net = wired(3, 12.5e6, 0.5e-3);
    let names: Vec<String> = (0..3).map(|i| format!("d{i}")).collect();
    let w = Workload {
        samples: 12,
        prompt_tokens: 4,
        gen_tokens: 60,
        micro_batch: 1,
        cold_start: false,
    };
    let p = c
        .problem(&names, &net, &w, 0, 1.0, PlanObjective::Decode)
        .unwrap();
    let a = EvenSplit::default().partition(&p).unwrap();
    let r = run(&c, &net, &a, w, false);
    let want = 1.0 / a.bottleneck_s(&p);
    // window quantisation: each sample's count in the window is off by < 1 token, 12 of
    // ≈ 12·55 counted ≈ 1.8 % (measured 0.02 %)
    assert!(
        (r.steady_tok_s / want - 1.0).abs() < 0.02,
        "steady {} tok/s vs 1/bottleneck {want}",
        r.steady_tok_s
    );
    // one sample alone: per-token time = the planner's latency
    let r1 = run(&c, &net, &a, Workload { samples: 1, ..w }, false);
    // each decode step rounds three arrivals to the ns (≤ ½ ns each) and starts at a whole
    // ns: the mean step time is within 1.5 ns of the closed form (the bare 1e-6 relative it
    // replaces was not derived)
    let lat = a.latency_s(&p);
    assert!((r1.per_token_s - lat).abs() <= 1.5e-9 + 1e-12 * lat);
    // the bottleneck device is (almost) always busy (> 0.97: effect size, measured 1.0;
    // ≤ 1 up to f64 rounding of the busy intervals)
    let u = r.utilisation.iter().cloned().fold(0.0, f64::max);
    assert!(u > 0.97 && u <= 1.0 + 1e-9, "{:?}", r.utilisation);
}

#[test]
fn mdi_recurrent_pipeline_fills_the_ring() {
    let c = cost(&["jetson-tx2"; 3], 2.0);
    let net = wired(3, 125e6, 0.2e-3);
    let names: Vec<String> = (0..3).map(|i| format!("tx2-{i}")).collect();
    let base = Workload {
        samples: 1,
        prompt_tokens: 16,
        gen_tokens: 48,
        micro_batch: 1,
        cold_start: false,
    };
    let p = c
        .problem(&names, &net, &base, 0, 1.0, PlanObjective::Decode)
        .unwrap();
    let a = Mdi::default().partition(&p).unwrap();
    let rates: Vec<f64> = (1..=5)
        .map(|s| run(&c, &net, &a, Workload { samples: s, ..base }, false).steady_tok_s)
        .collect();
    // rises with every sample up to the number of nodes …
    for s in 1..3 {
        assert!(rates[s] > rates[s - 1] * 1.3, "{rates:?}");
    }
    // … and once the hops are covered too (the ring has 4 hand-offs: one sample more), it
    // saturates at the slowest node's rate
    assert!(rates[3] >= rates[2], "{rates:?}");
    // TUNED: window quantisation allows ≈ 2.5 % per rate in principle (< 1 token per sample
    // of ≈ 40 in the window), two rates twice that; the periodic steady state makes it
    // ≈ 0.01 % (measured), so 2 % holds but is not derived
    assert!((rates[4] / rates[3] - 1.0).abs() < 0.02, "{rates:?}");
    let period = a.bottleneck_s(&p);
    // 5 % ≥ 2 × the ≈ 2.5 % window quantisation (measured 0.09 %)
    assert!(
        (rates[4] * period - 1.0).abs() < 0.05,
        "{rates:?} vs 1/{period}"
    );
    // then every node is busy most of the steady state
    let r = run(&c, &net, &a, Workload { samples: 4, ..base }, true);
    for (d, u) in r.utilisation.iter().enumerate() {
        assert!(
            *u > 0.85,
            "node {d} busy {u} of the steady state: {:?}",
            r.utilisation
        );
    }
    // the timeline never runs two jobs at once on one resource
    let mut by: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for b in &r.timeline {
        by.entry(&b.resource)
            .or_default()
            .push((b.start_s, b.end_s));
    }
    for (res, mut iv) in by {
        iv.sort_by(|x, y| x.0.total_cmp(&y.0));
        for w in iv.windows(2) {
            // start = max(now, free) and end = start + dur in f64: rounding room only
            assert!(w[1].0 >= w[0].1 - 1e-12, "{res} overlaps: {w:?}");
        }
    }
    // one sample alone leaves two of three nodes idle most of the time
    let r1 = run(&c, &net, &a, base, false);
    let mean = r1.utilisation.iter().sum::<f64>() / 3.0;
    assert!(mean < 0.45, "{:?}", r1.utilisation);
}

#[test]
fn wireless_link_airtime_and_losses() {
    let l = Link::Wireless {
        bandwidth_hz: 20e6,
        snr_db: 25.0,
        bler: BlerModel::default(),
        target_bler: 0.1,
        max_tx: 4,
        block_bytes: 1000,
        overhead_s: 1e-4,
        fading: None,
    };
    l.validate().unwrap();
    let mut r = rng::stream(1, &[9]);
    let n = 4000;
    let mean: f64 = (0..n).map(|_| l.send(10_000.0, &mut r).0).sum::<f64>() / n as f64;
    // the Monte-Carlo mean of the realised airtime matches the planners' expectation: at
    // 25 dB the top CQI's BLER is ≈ 1e-6, so the airtime is nearly deterministic (rel. SE
    // ≈ 5e-6 over 4000 sends) and 0.01 is loose
    assert!((mean / l.expected_s(10_000.0) - 1.0).abs() < 0.01, "{mean}");
    // at a very low SNR and one transmission most blocks are lost
    let bad = Link::Wireless {
        bandwidth_hz: 20e6,
        snr_db: -20.0,
        bler: BlerModel::default(),
        target_bler: 0.1,
        max_tx: 1,
        block_bytes: 1000,
        overhead_s: 1e-4,
        fading: None,
    };
    let (_, lost) = bad.send(10_000.0, &mut r);
    // BLER of the lowest CQI at −20 dB ≈ 1 − 4e-11: all 10 blocks are lost in practice
    assert!(lost.len() >= 8, "{lost:?}");
    assert!(Link::Wired {
        bandwidth: -1.0,
        latency_s: 0.0
    }
    .validate()
    .is_err());
}

/// Three Jetsons (memory-bound at the micro-batch sizes used here, so a unit's time does not
/// depend on the context and the closed forms below are exact), a third of the blocks each.
fn jetson_chain(kv_bytes: f64) -> (CostSetup, Assignment) {
    let c = cost(
        &["jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin"],
        kv_bytes,
    );
    let n = c.n_units();
    let a = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..11,
            },
            Stage {
                device: 1,
                units: 11..22,
            },
            Stage {
                device: 2,
                units: 22..n,
            },
        ],
    };
    (c, a)
}

/// Mean interval between consecutive tokens of sample 0 over its second half.
fn late_interval(r: &PipelineReport) -> f64 {
    let t = &r.token_times_s[0];
    let k0 = t.len() / 2;
    (t[t.len() - 1] - t[k0]) / (t.len() - 1 - k0) as f64
}

#[test]
fn micro_batches_meet_the_closed_pipeline_forms() {
    let (c, a) = jetson_chain(0.0);
    let (bw, lat) = (12.5e6, 2e-3);
    let net = wired(3, bw, lat);
    let b = 4;
    let ctx_max = 16 + 40;
    // per micro-batch of b: each stage's decode time (context-independent: checked), the
    // hand-offs' serialisation and the tokens' return
    let stage_s = |past: usize| -> Vec<f64> {
        a.stages
            .iter()
            .map(|s| {
                s.units
                    .clone()
                    .map(|u| c.unit_time_batch_s(s.device, u, b, 1, past))
                    .sum()
            })
            .collect()
    };
    let st = stage_s(16);
    assert_eq!(
        st,
        stage_s(ctx_max),
        "the closed forms need context-free unit times"
    );
    let hop = b as f64 * c.hidden_bytes(1) / bw;
    let ret = b as f64 * 4.0 / bw;
    let period = st.iter().cloned().fold(hop.max(ret), f64::max);
    // one micro-batch's round trip: every stage, two hand-offs and the return, each with the
    // link's latency (which delays it but does not occupy the link)
    let cycle = st.iter().sum::<f64>() + 2.0 * (hop + lat) + ret + lat;
    assert!(
        cycle > 4.0 * period,
        "the set-up must separate the two regimes"
    );
    // few micro-batches: the round trip limits (a micro-batch's step takes the cycle); many:
    // the slowest resource does (a step takes n_mb periods), however long the latency
    let few = 2;
    let many = (2.0 * cycle / period).ceil() as usize;
    for (n_mb, want) in [(few, cycle), (many, many as f64 * period)] {
        let w = Workload {
            samples: n_mb * b,
            prompt_tokens: 16,
            gen_tokens: 40,
            micro_batch: b,
            cold_start: false,
        };
        let r = run(&c, &net, &a, w, false);
        assert_eq!(r.micro_batch, b);
        // integer-ns durations: a step of the round trip rounds 6 of them (3 jobs, 2
        // hand-offs, the return) by ≤ ½ ns each; a step of the resource-bound regime n_mb
        // jobs of the bottleneck (measured: 10.5 ns over 22)
        let got = late_interval(&r);
        let tol = (n_mb.max(6) as f64) * 0.5e-9 + 1e-12 * want;
        assert!(
            (got - want).abs() <= tol,
            "{n_mb} micro-batches: step {got} s vs closed form {want} s"
        );
        // all b samples of a micro-batch share its tokens' times
        assert_eq!(r.token_times_s[0], r.token_times_s[b - 1]);
    }
    // batching pays: b samples per job against one at a time, in the resource-bound regime
    let w1 = Workload {
        samples: many * b,
        prompt_tokens: 16,
        gen_tokens: 40,
        micro_batch: 1,
        cold_start: false,
    };
    let wb = Workload {
        micro_batch: b,
        ..w1
    };
    let (r1, rb) = (run(&c, &net, &a, w1, false), run(&c, &net, &a, wb, false));
    assert!(
        rb.steady_tok_s > 2.0 * r1.steady_tok_s,
        "batched {} vs one by one {}",
        rb.steady_tok_s,
        r1.steady_tok_s
    );
}

#[test]
fn time_to_first_token_of_a_plan_follows_its_closed_form() {
    let (c, a) = jetson_chain(2.0);
    let (bw, lat) = (12.5e6, 2e-3);
    let net = wired(3, bw, lat);
    let (b, p) = (3, 24);
    let w = Workload {
        samples: 2 * b,
        prompt_tokens: p,
        gen_tokens: 3,
        micro_batch: b,
        cold_start: false,
    };
    let r = run(&c, &net, &a, w, false);
    // the first micro-batch never waits: its b prompts through every stage, two hand-offs of
    // b·p hidden rows and the tokens home
    let compute: f64 = a
        .stages
        .iter()
        .flat_map(|s| s.units.clone().map(move |u| (s.device, u)))
        .map(|(d, u)| c.unit_time_batch_s(d, u, b, p, 0))
        .sum();
    let want =
        compute + 2.0 * (lat + b as f64 * c.hidden_bytes(p) / bw) + lat + b as f64 * 4.0 / bw;
    // three ½-ns roundings of scheduled arrivals
    assert!(
        (r.ttft_s[0] - want).abs() <= 1.5e-9 + 1e-12 * want,
        "{} vs {want}",
        r.ttft_s[0]
    );
    // the planners' TTFT problem scores the same plan identically (one micro-batch of b)
    let names: Vec<String> = (0..3).map(|i| format!("d{i}")).collect();
    let pt = c
        .problem(&names, &net, &w, 0, 1.0, PlanObjective::Ttft)
        .unwrap();
    assert_eq!(w.plan_batch(3), b);
    let planned = a.latency_s(&pt);
    assert!(
        (planned - want).abs() <= 1e-12 * want,
        "{planned} vs {want}"
    );
    // on one device, micro-batch k waits for the k before it: TTFT_k = (k + 1) · prefill
    let one = Assignment {
        stages: vec![Stage {
            device: 0,
            units: 0..c.n_units(),
        }],
    };
    let r = run(
        &c,
        &net,
        &one,
        Workload {
            micro_batch: 2,
            ..w
        },
        false,
    );
    let pre: f64 = (0..c.n_units())
        .map(|u| c.unit_time_batch_s(0, u, 2, p, 0))
        .sum();
    for (s, t) in r.ttft_s.iter().enumerate() {
        let k = (s / 2 + 1) as f64;
        assert!(
            (t - k * pre).abs() <= 1e-9 * k + 1e-12,
            "sample {s}: {t} vs {}",
            k * pre
        );
    }
}

#[test]
fn device_message_costs_and_the_returned_logits_follow_the_closed_form() {
    let (mut c, a) = jetson_chain(2.0);
    let (fixed, per_byte) = (1.5e-3, 2e-9);
    for p in &mut c.profiles {
        p.msg_overhead_s = fixed;
        p.msg_overhead_s_per_byte = per_byte;
    }
    c.ret = Return::Logits;
    let (bw, lat) = (12.5e6, 2e-3);
    let net = wired(3, bw, lat);
    let w = Workload {
        samples: 1,
        prompt_tokens: 8,
        gen_tokens: 4,
        micro_batch: 0,
        cold_start: false,
    };
    let r = run(&c, &net, &a, w, false);
    let msg = |bytes: f64| fixed + per_byte * bytes;
    let logits = Wire::F16.bytes(c.cfg.vocab_size);
    assert_eq!(c.return_bytes(), logits);
    let mut t = 0.0;
    for step in 0..w.gen_tokens {
        let (tok, past) = if step == 0 { (8, 0) } else { (1, 8 + step - 1) };
        let h = c.hidden_bytes(tok);
        for s in &a.stages {
            t += s
                .units
                .clone()
                .map(|u| c.unit_time_s(s.device, u, tok, past))
                .sum::<f64>();
        }
        // two hand-offs (sender and receiver each pay), the logits home (the last stage pays
        // to send, the source to receive: before its next step's work)
        t += 2.0 * (2.0 * msg(h) + lat + h / bw) + msg(logits) + lat + logits / bw;
        if step > 0 {
            t += msg(logits);
        }
        let tol = 3.0 * (step + 1) as f64 * 0.5e-9 + 1e-12;
        assert!(
            (r.token_times_s[0][step] - t).abs() <= tol,
            "step {step}: {} vs {t}",
            r.token_times_s[0][step]
        );
    }
}

#[test]
fn half_blocks_split_each_block_without_losing_any_of_it() {
    let (mut c, _) = jetson_chain(2.0);
    let blocks = c.clone();
    c.split = Split::Half;
    let l = c.cfg.n_layer;
    assert_eq!(c.n_units(), 2 * l + 2);
    assert_eq!(c.unit(1), Unit::Attn(0));
    assert_eq!(c.unit(2 * l), Unit::Mlp(l - 1));
    assert_eq!(c.unit(2 * l + 1), Unit::Head);
    assert_eq!(c.layers_of(&(2..5)), 0..2);
    assert_eq!(c.layers_of(&(0..1)), 0..0);
    assert_eq!(c.residual_links()[1], (2, 4));
    // weights and caches: the halves add up to the block exactly
    for b in 1..=l {
        let (a, m) = (2 * b - 1, 2 * b);
        let w = c.unit_weight_bytes(a) + c.unit_weight_bytes(m);
        assert_eq!(w, blocks.unit_weight_bytes(b));
        assert_eq!(
            c.unit_kv_bytes(a, 3, 40) + c.unit_kv_bytes(m, 3, 40),
            blocks.unit_kv_bytes(b, 3, 40)
        );
    }
    // time: on a memory-bound device the halves' rooflines add up to the block's (the
    // block's 7 kernels are the halves' 4 + 3); f64 sums of three terms
    for (t, past) in [(1, 30), (1, 0)] {
        let (a, m) = (c.unit_time_s(0, 1, t, past), c.unit_time_s(0, 2, t, past));
        let whole = blocks.unit_time_s(0, 1, t, past);
        assert!(
            (a + m - whole).abs() <= 1e-12 * whole,
            "{a} + {m} vs {whole}"
        );
    }
}

#[test]
fn a_residual_link_joins_its_stage_with_the_chain() {
    let (mut c, _) = jetson_chain(2.0);
    c.split = Split::Half;
    let n = c.n_units();
    // stage 1 is block 1's attention half alone: block 1's input (unit 2's output) reaches
    // the MLP half on device 2 straight from device 0, beside the chain 0 → 1 → 2
    let a = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..3,
            },
            Stage {
                device: 1,
                units: 3..4,
            },
            Stage {
                device: 2,
                units: 4..n,
            },
        ],
    };
    for (lat02, bw02) in [(2e-3, 12.5e6), (40e-3, 1e6)] {
        let mut net = wired(3, 12.5e6, 2e-3);
        net.links[0][2] = Link::Wired {
            bandwidth: bw02,
            latency_s: lat02,
        };
        let w = Workload {
            samples: 1,
            prompt_tokens: 8,
            gen_tokens: 3,
            micro_batch: 0,
            cold_start: false,
        };
        let r = run(&c, &net, &a, w, false);
        let mut t = 0.0;
        for step in 0..w.gen_tokens {
            let (tok, past) = if step == 0 { (8, 0) } else { (1, 8 + step - 1) };
            let st = |i: usize| -> f64 {
                let s = &a.stages[i];
                s.units
                    .clone()
                    .map(|u| c.unit_time_s(s.device, u, tok, past))
                    .sum()
            };
            let h = c.hidden_bytes(tok);
            let chain = 2e-3 + h / 12.5e6 + st(1) + 2e-3 + h / 12.5e6;
            let direct = lat02 + h / bw02;
            t += st(0) + chain.max(direct) + st(2) + 2e-3 + 4.0 / 12.5e6;
            let tol = 4.0 * (step + 1) as f64 * 0.5e-9 + 1e-12;
            assert!(
                (r.token_times_s[0][step] - t).abs() <= tol,
                "step {step}: {} vs {t}",
                r.token_times_s[0][step]
            );
        }
        // the planners' latency counts the residual transfer in series (LinguaLinked's
        // model): never below the simulated overlap
        let names: Vec<String> = (0..3).map(|i| format!("d{i}")).collect();
        let p = c
            .problem(&names, &net, &w, 0, 1.0, PlanObjective::Decode)
            .unwrap();
        assert_eq!(p.residual.len(), c.cfg.n_layer);
        assert!(a.latency_s(&p) > 0.0);
    }
}

#[test]
fn a_cold_start_overlaps_loading_with_compute() {
    let mut c = cost(&["phone-midrange"], 2.0);
    let n = c.n_units();
    let net = wired(1, 1e9, 0.0);
    let one = Assignment {
        stages: vec![Stage {
            device: 0,
            units: 0..n,
        }],
    };
    let w = Workload {
        samples: 1,
        prompt_tokens: 16,
        gen_tokens: 4,
        micro_batch: 0,
        cold_start: false,
    };
    let warm = run(&c, &net, &one, w, false);
    let cold_w = Workload {
        cold_start: true,
        ..w
    };
    let bytes: Vec<f64> = (0..n).map(|u| c.unit_weight_bytes(u)).collect();
    let pre: Vec<f64> = (0..n).map(|u| c.unit_time_s(0, u, 16, 0)).collect();
    let ns = |s: f64| Time::from_secs(s).secs();
    // slow storage: every unit computes faster than the next one loads, so the prefill ends
    // one unit's compute after the last load
    c.profiles[0].storage_bandwidth = 20e6;
    let load: Vec<f64> = bytes.iter().map(|b| ns(b / 20e6)).collect();
    assert!((1..n).all(|u| pre[u - 1] < load[u]), "load-bound set-up");
    let r = run(&c, &net, &one, cold_w, false);
    let want = load.iter().sum::<f64>() + pre[n - 1];
    assert!(
        (r.ttft_s[0] - want).abs() <= n as f64 * 1e-9,
        "{} vs {want}",
        r.ttft_s[0]
    );
    assert!((r.loaded_s - load.iter().sum::<f64>()).abs() <= 1e-12);
    // fast storage: only the embedding's load comes first; the rest loads ahead of compute
    c.profiles[0].storage_bandwidth = 1e15;
    let r = run(&c, &net, &one, cold_w, false);
    let want = warm.ttft_s[0] + ns(bytes[0] / 1e15);
    assert!(
        (r.ttft_s[0] - want).abs() <= n as f64 * 1e-9,
        "{} vs {want}",
        r.ttft_s[0]
    );
    // decode after the load is the warm run's (a cold job rounds each unit's time to the ns,
    // a warm one their sum: ≤ ½ ns per unit)
    assert!((r.per_token_s - warm.per_token_s).abs() <= n as f64 * 0.5e-9);
    // no storage rate: the cold start is refused, naming the field
    c.profiles[0].storage_bandwidth = 0.0;
    let e = simulate(
        &c,
        &net,
        &one,
        &cold_w,
        &Background::default(),
        None,
        None,
        7,
        false,
    );
    assert!(
        matches!(e, Err(PartitionError::Invalid { field, .. }) if field == "storage_bandwidth")
    );
}

#[test]
fn a_mixed_objective_scores_every_plan_as_the_mix_of_its_scores() {
    let (c, a) = jetson_chain(2.0);
    let net = wired(3, 12.5e6, 2e-3);
    let names: Vec<String> = (0..3).map(|i| format!("d{i}")).collect();
    let w = Workload {
        samples: 6,
        prompt_tokens: 24,
        gen_tokens: 9,
        micro_batch: 2,
        cold_start: false,
    };
    let prob = |o| c.problem(&names, &net, &w, 0, 1.0, o).unwrap();
    let (pd, pt) = (prob(PlanObjective::Decode), prob(PlanObjective::Ttft));
    let (dec, ttft) = (a.latency_s(&pd), a.latency_s(&pt));
    assert!(
        ttft > dec,
        "a 24-token prefill of 2 samples outlasts a decode step"
    );
    for x in [0.0, 0.3, 1.0] {
        let mix = a.latency_s(&prob(PlanObjective::Mix(x)));
        let want = x * ttft + (1.0 - x) * dec;
        // sums of a few dozen terms, each mixed before summing: f64 rounding only
        assert!(
            (mix - want).abs() <= 1e-12 * want,
            "w = {x}: {mix} vs {want}"
        );
    }
    // a request: the first token and 8 more steps, i.e. 9 × the mix with w = 1/9
    let req = a.latency_s(&prob(PlanObjective::Request));
    let want = (ttft + 8.0 * dec) / 9.0;
    assert!((req - want).abs() <= 1e-12 * want, "{req} vs {want}");
    assert!(c
        .problem(&names, &net, &w, 0, 1.0, PlanObjective::Mix(1.5))
        .is_err());
}

#[test]
fn fading_links_vary_the_hand_off_airtime_deterministically() {
    use crate::links::handoff::{LinkFading, LinkSmallScale};
    use airinfer_phy::channel::TimeModel;
    let c = cost(&["jetson-orin-nano", "raspberry-pi-5"], 2.0);
    let n = c.n_units();
    let a = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..12,
            },
            Stage {
                device: 1,
                units: 12..n,
            },
        ],
    };
    let w = Workload {
        samples: 1,
        prompt_tokens: 8,
        gen_tokens: 30,
        micro_batch: 0,
        cold_start: false,
    };
    // at 30 dB the top CQI's BLER is ≈ 1e-9: without fading every hand-off of the same size
    // takes the same airtime; with Rayleigh fading around it the MCS follows the channel
    let link = |fading| Link::Wireless {
        bandwidth_hz: 1e6,
        snr_db: 30.0,
        bler: BlerModel::default(),
        target_bler: 0.1,
        max_tx: 4,
        block_bytes: 1000,
        overhead_s: 0.0,
        fading,
    };
    let fading = Some(LinkFading {
        small_scale: LinkSmallScale::Rayleigh,
        time: TimeModel::Block {
            coherence_time_s: 5e-3,
        },
    });
    let airtimes = |r: &PipelineReport| {
        let mut d: Vec<u64> = r
            .timeline
            .iter()
            .filter(|b| b.resource == "link 0→1" && b.step > 0)
            .map(|b| ((b.end_s - b.start_s) * 1e12).round() as u64)
            .collect();
        d.sort();
        d.dedup();
        d.len()
    };
    let still = run(&c, &Network::uniform(2, link(None)), &a, w, true);
    let faded = run(&c, &Network::uniform(2, link(fading)), &a, w, true);
    assert_eq!(airtimes(&still), 1);
    assert!(airtimes(&faded) > 3, "{}", airtimes(&faded));
    // the same seed, the same channel
    let again = run(&c, &Network::uniform(2, link(fading)), &a, w, true);
    assert_eq!(faded.token_times_s, again.token_times_s);
    assert_ne!(faded.token_times_s, still.token_times_s);
}

/// On one shared channel no two wireless transfers overlap in time, and sharing it (TDMA), then
/// contending for it (CSMA), costs throughput against a channel per link; the dedicated
/// channels of the same run do overlap.
#[test]
fn a_shared_channel_carries_one_transfer_at_a_time() {
    let c = cost(
        &["jetson-orin-nano", "jetson-orin-nano", "jetson-orin-nano"],
        2.0,
    );
    let n = c.n_units();
    let a = Assignment {
        stages: vec![
            Stage {
                device: 0,
                units: 0..n / 3,
            },
            Stage {
                device: 1,
                units: n / 3..2 * n / 3,
            },
            Stage {
                device: 2,
                units: 2 * n / 3..n,
            },
        ],
    };
    let link = Link::Wireless {
        bandwidth_hz: 5e6,
        snr_db: 15.0,
        bler: BlerModel::default(),
        target_bler: 0.1,
        max_tx: 4,
        block_bytes: 1500,
        overhead_s: 0.0,
        fading: None,
    };
    let w = Workload {
        samples: 6,
        prompt_tokens: 32,
        gen_tokens: 12,
        micro_batch: 1,
        cold_start: false,
    };
    let on = |medium| {
        let net = Network {
            medium,
            ..Network::uniform(3, link.clone())
        };
        run(&c, &net, &a, w, true)
    };
    let overlaps = |r: &PipelineReport| {
        let mut iv: Vec<(f64, f64)> = r
            .timeline
            .iter()
            .filter(|b| b.resource.starts_with("link"))
            .map(|b| (b.start_s, b.end_s))
            .collect();
        iv.sort_by(|x, y| x.0.total_cmp(&y.0));
        iv.windows(2).filter(|p| p[1].0 < p[0].1 - 1e-9).count()
    };
    let (own, tdma, csma) = (on(Medium::Dedicated), on(Medium::Tdma), on(Medium::Csma));
    assert!(
        overlaps(&own) > 0,
        "the dedicated links overlap in this run"
    );
    assert_eq!(overlaps(&tdma), 0);
    assert_eq!(overlaps(&csma), 0);
    assert!(tdma.throughput_tok_s < own.throughput_tok_s);
    assert!(csma.throughput_tok_s < tdma.throughput_tok_s);
    // the same bytes cross the air whatever the access
    assert_eq!(own.bytes_sent, tdma.bytes_sent);
    // a transfer on the CSMA channel carries its frames' preamble, SIFS, ack and DIFS (and
    // the contention) on top of its airtime: the shortest takes longer than those overheads
    let min_link = |r: &PipelineReport| {
        r.timeline
            .iter()
            .filter(|b| b.resource.starts_with("link"))
            .map(|b| b.end_s - b.start_s)
            .fold(f64::INFINITY, f64::min)
    };
    let overheads = (40.0 + 16.0 + 32.0 + 34.0) * 1e-6;
    assert!(
        min_link(&csma) > min_link(&tdma) + overheads,
        "{} vs {}",
        min_link(&csma),
        min_link(&tdma)
    );
}
