//! The engine's forward pass against a naive f64 reference, and tensor-parallel invariants.

mod common;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::tp::{Collective, IdealCollective, ReduceCtx, ReduceSite};
use common::*;
use proptest::prelude::*;

const TOKENS: [u32; 7] = [3, 17, 95, 0, 42, 42, 7];

#[test]
fn prefill_matches_the_f32_reference() {
    for tied in [true, false] {
        let t = Tiny {
            tied,
            ..Default::default()
        };
        let g = tiny_gguf(&t, 1);
        let model = Model::load_single(&g).unwrap();
        let mut s = model.new_session(64);
        let logits = model
            .forward(&mut s, &TOKENS, &mut IdealCollective, Logits::From(0))
            .unwrap();
        let want = reference_logits(&g, &t, &TOKENS, false);
        for (p, w) in want.iter().enumerate() {
            let e = rel_err(&logits[p * t.vocab..(p + 1) * t.vocab], w);
            assert!(e < 1e-4, "tied={tied} position {p}: relative error {e}");
        }
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
    let want = reference_logits(&g, &t, &TOKENS, false);
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
        // decode quantises activations: agree with the f32 reference to ~1e-2
        assert!(rel_err(&l, &want[p]) < 3e-2, "position {p}");
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
    /// For K = 1..6 and random uneven shares (zeros allowed), tensor-parallel logits with the
    /// ideal all-reduce equal the single-device logits (f32 path: the only difference is the
    /// order in which partial sums are added).
    #[test]
    fn tensor_parallel_equals_single_device(shares in prop::collection::vec(0.0f64..3.0, 1..=6), zero_first in any::<bool>()) {
        let decode = false;
        let mut shares = shares;
        if zero_first { shares[0] = 0.0; }
        prop_assume!(shares.iter().sum::<f64>() > 0.05);
        let t = Tiny::default();
        let g = tiny_gguf(&t, 4);
        let single = Model::load_single(&g).unwrap();
        let tp = Model::load_shares(&g, &shares).unwrap();
        prop_assert_eq!(tp.n_devices(), shares.len());
        let a = logits_with(&single, &TOKENS, decode);
        let b = logits_with(&tp, &TOKENS, decode);
        let e = rel_err32(&b, &a);
        prop_assert!(e < 1e-4, "shares {:?}: relative error {}", shares, e);
    }
}

/// The decode path quantises activations to 8 bits: a one-ulp difference in a partial sum can
/// move a value across a rounding boundary, so tensor-parallel decode agrees with single-device
/// decode to the size of one quantisation step, not to float precision.
#[test]
fn tensor_parallel_decode_agrees_within_activation_quantisation() {
    let t = Tiny::default();
    let g = tiny_gguf(&t, 4);
    let single = Model::load_single(&g).unwrap();
    let a = logits_with(&single, &TOKENS, true);
    for shares in [
        vec![1.0, 1.0],
        vec![2.0, 0.0, 1.0],
        vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
    ] {
        let tp = Model::load_shares(&g, &shares).unwrap();
        let b = logits_with(&tp, &TOKENS, true);
        let e = rel_err32(&b, &a);
        assert!(e < 2e-2, "shares {shares:?}: relative error {e}");
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
    assert!(rel_err32(&noisy, &clean) > 1e-3);
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
