//! The engine's forward pass against a naive f64 reference, and tensor-parallel invariants.

mod common;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::tp::{Collective, IdealCollective, ReduceCtx, ReduceSite};
use common::*;
use proptest::prelude::*;

const TOKENS: [u32; 7] = [3, 17, 95, 0, 42, 42, 7];

/// Prefill (the integer GEMM for the quantised matrices) against the f64 reference with the
/// same 8-bit activation quantisation. The emulation is exact only while no activation lands
/// within rounding distance of a quantiser boundary, where the f32 engine and the f64 reference
/// may round it to neighbouring steps; with a few thousand quantised values per forward that
/// happens for some seeds (seen: untied seed 1, ≈ 1e-2 at every position, on decode too). So
/// each variant runs three models and at least two must agree to 1e-4: a fault of the GEMM
/// shows on every model, a boundary flip on one.
#[test]
fn prefill_matches_the_reference_with_the_same_activation_quantisation() {
    for tied in [true, false] {
        let mut worst = Vec::new();
        for seed in 1..=3u64 {
            let t = Tiny {
                tied,
                ..Default::default()
            };
            let g = tiny_gguf(&t, seed);
            let model = Model::load_single(&g).unwrap();
            let mut s = model.new_session(64);
            let logits = model
                .forward(&mut s, &TOKENS, &mut IdealCollective, Logits::From(0))
                .unwrap();
            let want = reference_logits(&g, &t, &TOKENS, true);
            let e = want
                .iter()
                .enumerate()
                .map(|(p, w)| rel_err(&logits[p * t.vocab..(p + 1) * t.vocab], w))
                .fold(0.0f64, f64::max);
            worst.push(e);
        }
        // TUNED: each product is within γ_n·Σ|summands| of exact, but the growth through 2
        // layers of norms, attention and SiLU is not bounded; measured ≤ 4.3e-7 on the models
        // without a boundary flip
        let agree = worst.iter().filter(|&&e| e < 1e-4).count();
        assert!(agree >= 2, "tied={tied}: worst relative errors {worst:?}");
    }
}

#[test]
fn decode_matches_the_reference_with_the_same_activation_quantisation() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 2);
    let model = Model::load_single(&g).unwrap();
    let mut s = model.new_session(64);
    let want = reference_logits(&g, &t, &TOKENS, true);
    for (p, &tok) in TOKENS.iter().enumerate() {
        let l = model
            .forward(&mut s, &[tok], &mut IdealCollective, Logits::Last)
            .unwrap();
        let e = rel_err(&l, &want[p]);
        // TUNED: as for prefill (measured ≤ 2.3e-7 on every kernel path), and it also relies on
        // no activation landing so close to a rounding boundary of the 8-bit quantiser that the
        // f32 engine and the f64 reference round it differently (a flip moves a value by a step)
        assert!(e < 1e-4, "position {p}: relative error {e}");
    }
    // and without the emulation the difference is visible (the test can tell the two apart)
    let plain = reference_logits(&g, &t, &TOKENS, false);
    let mut s = model.new_session(64);
    let mut worst = 0.0f64;
    for (p, &tok) in TOKENS.iter().enumerate() {
        let l = model
            .forward(&mut s, &[tok], &mut IdealCollective, Logits::Last)
            .unwrap();
        worst = worst.max(rel_err(&l, &plain[p]));
    }
    // the quantisation effect (measured 0.024) is far above the 1e-4 used above
    assert!(
        worst > 1e-4,
        "8-bit activations should differ from f32 ones by more than 1e-4 ({worst})"
    );
}

#[test]
fn prefill_then_decode_continues_the_same_sequence() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 3);
    let model = Model::load_single(&g).unwrap();
    let want = reference_logits(&g, &t, &TOKENS, true);
    // prefill 5 tokens with the GEMM path, then the 6th and 7th through the decode path
    let mut s = model.new_session(64);
    model
        .forward(&mut s, &TOKENS[..5], &mut IdealCollective, Logits::None)
        .unwrap();
    for p in 5..7 {
        let l = model
            .forward(
                &mut s,
                &TOKENS[p..p + 1],
                &mut IdealCollective,
                Logits::Last,
            )
            .unwrap();
        // both paths quantise the activations as the reference does. TUNED: as for the
        // prefill test above
        assert!(rel_err(&l, &want[p]) < 1e-4, "position {p}");
    }
}

fn logits_with(model: &Model, tokens: &[u32], decode: bool) -> Vec<f32> {
    let mut s = model.new_session(64);
    if decode {
        let mut all = Vec::new();
        for &tok in tokens {
            all.extend(
                model
                    .forward(&mut s, &[tok], &mut IdealCollective, Logits::Last)
                    .unwrap(),
            );
        }
        all
    } else {
        model
            .forward(&mut s, tokens, &mut IdealCollective, Logits::From(0))
            .unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    /// For K = 1..6 and random uneven shares (zeros allowed), tensor-parallel prefill equals the
    /// single-device prefill (the only difference is the order in which partial sums are
    /// added), checked by the reassociation argument of `common` in lock-step: at every
    /// reduction site the TP sum is within (γ_n + γ_{n+K})·Σ|summands| of the single device's,
    /// and handed the single device's sums the TP logits are bit for bit the single device's.
    /// (This replaces a free-running comparison at a bare relative 1e-4, which no bound gave.)
    #[test]
    fn tensor_parallel_equals_single_device(shares in prop::collection::vec(0.0f64..3.0, 1..=6), zero_first in any::<bool>()) {
        let mut shares = shares;
        if zero_first { shares[0] = 0.0; }
        prop_assume!(shares.iter().sum::<f64>() > 0.05);
        let t = Tiny::default();
        let g = tiny_gguf(&t, 4);
        let single = Model::load_single(&g).unwrap();
        let tp = Model::load_shares(&g, &shares).unwrap();
        prop_assert_eq!(tp.n_devices(), shares.len());
        let (mut a, mut b) = (single.new_session(64), tp.new_session(64));
        a.record_magnitudes = true;
        b.record_magnitudes = true;
        let mut rec = Record::default();
        let la = single.forward(&mut a, &TOKENS, &mut rec, Logits::From(0)).unwrap();
        let mut ls = Lockstep::new(&rec, &single);
        let lb = tp.forward(&mut b, &TOKENS, &mut ls, Logits::From(0)).unwrap();
        prop_assert_eq!(ls.next, rec.sums.len());
        prop_assert!(la == lb, "shares {:?}: logits differ under lock-step", shares);
    }
}

/// The decode path quantises activations to 8 bits: free-running, a one-ulp difference in a
/// partial sum can move a value across a rounding boundary, so tensor-parallel decode agrees
/// with single-device decode only to the size of one quantisation step, and no bound fixes how
/// far that goes (a bare relative 2e-2 stood here). Checked in lock-step instead, token by
/// token: every reduction site within the γ-bound of `common`, the TP logits bit for bit the
/// single device's once handed its sums, and every device's KV cache exactly the single
/// device's keys and values.
#[test]
fn tensor_parallel_decode_agrees_within_activation_quantisation() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 4);
    let single = Model::load_single(&g).unwrap();
    for shares in [
        vec![1.0, 1.0],
        vec![2.0, 0.0, 1.0],
        vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
    ] {
        let tp = Model::load_shares(&g, &shares).unwrap();
        let (mut a, mut b) = (single.new_session(64), tp.new_session(64));
        a.record_magnitudes = true;
        b.record_magnitudes = true;
        let mut st = LockstepStats::default();
        for (step, &tok) in TOKENS.iter().enumerate() {
            let what = format!("decode step {step}, shares {shares:?}");
            lockstep_decode_step(&single, &mut a, &tp, &mut b, tok, &what, &mut st);
        }
        eprintln!(
            "decode, shares {shares:?}: worst |Δ|/bound {:.3}, {} of {} sites not bit-identical",
            st.worst, st.differing, st.sites
        );
    }
}

/// A collective that records every call, and perturbs the sum seen by one device.
struct Spy {
    calls: Vec<(usize, ReduceSite, usize, usize)>,
    perturb: Option<usize>,
}
impl Collective for Spy {
    fn all_reduce(&mut self, ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) {
        self.calls
            .push((ctx.layer, ctx.site, ctx.n_tokens, buffers.len()));
        airinfer_llm::tp::ideal_sum(buffers);
        if let Some(k) = self.perturb {
            for v in buffers[k].iter_mut() {
                *v += 0.5;
            }
        }
    }
}

#[test]
fn every_reduction_site_is_intercepted_and_errors_reach_the_output() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 5);
    let model = Model::load_shares(&g, &[1.0, 2.0, 1.0]).unwrap();
    let mut spy = Spy {
        calls: vec![],
        perturb: None,
    };
    let mut s = model.new_session(64);
    let clean = model
        .forward(&mut s, &TOKENS, &mut spy, Logits::Last)
        .unwrap();
    let want: Vec<_> = (0..t.n_layer)
        .flat_map(|l| {
            [
                (l, ReduceSite::AttnOutput, 7, 3),
                (l, ReduceSite::MlpDown, 7, 3),
            ]
        })
        .collect();
    assert_eq!(spy.calls, want);
    // an error in what device 0 (the one that produces logits) receives changes the logits
    let mut spy = Spy {
        calls: vec![],
        perturb: Some(0),
    };
    let mut s = model.new_session(64);
    let noisy = model
        .forward(&mut s, &TOKENS, &mut spy, Logits::Last)
        .unwrap();
    // +0.5 on every value of the residual stream moves the logits by O(1) relative (measured
    // 1.1), far above any rounding (~1e-6): 1e-3 only has to tell "reached" from "not"
    assert!(rel_err32(&noisy, &clean) > 1e-3);
}

/// A collective that gives up after `ok` reductions (a user's Python link that raised).
struct Quits {
    ok: usize,
    calls: usize,
}

impl Collective for Quits {
    fn all_reduce(&mut self, _ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) {
        self.calls += 1;
        airinfer_llm::tp::ideal_sum(buffers);
    }
    fn failure(&self) -> Option<String> {
        (self.calls > self.ok).then(|| format!("quit after {} reductions", self.ok))
    }
}

#[test]
fn a_collective_that_fails_stops_the_forward_pass_with_its_message() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 5);
    let model = Model::load_shares(&g, &[1.0, 1.0]).unwrap();
    let sites = 2 * t.n_layer;
    // never failing: the same logits as the ideal all-reduce
    let mut s = model.new_session(64);
    let mut q = Quits {
        ok: usize::MAX,
        calls: 0,
    };
    let a = model
        .forward(&mut s, &TOKENS, &mut q, Logits::Last)
        .unwrap();
    let mut s = model.new_session(64);
    let b = model
        .forward(&mut s, &TOKENS, &mut IdealCollective, Logits::Last)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(q.calls, sites);
    // failing at every site in turn: the error carries the message, no reduction after it runs
    for ok in 0..sites {
        let mut s = model.new_session(64);
        let mut q = Quits { ok, calls: 0 };
        let e = model
            .forward(&mut s, &TOKENS, &mut q, Logits::Last)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the all-reduce failed: quit after {ok} reductions")
        );
        assert_eq!(q.calls, ok + 1, "reductions run after the failure");
        assert_eq!(s.pos, 0, "a failed call must not advance the session");
    }
}

#[test]
fn bad_tokens_and_context_overflow_are_errors() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 6);
    let model = Model::load_single(&g).unwrap();
    let mut s = model.new_session(4);
    assert!(model
        .forward(&mut s, &[999], &mut IdealCollective, Logits::Last)
        .is_err());
    assert!(model
        .forward(&mut s, &[1, 2, 3, 4, 5], &mut IdealCollective, Logits::Last)
        .is_err());
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 7);
    let model = Model::load_shares(&g, &[1.0, 1.0]).unwrap();
    let run = |n| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap();
        pool.install(|| {
            (
                logits_with(&model, &TOKENS, false),
                logits_with(&model, &TOKENS, true),
            )
        })
    };
    assert_eq!(run(1), run(2));
}
