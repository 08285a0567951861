//! Half-block (sub-block) pipeline pieces and batched decode on the real default model
//! (SmolLM2-135M-Instruct Q4_1; Gemma 3 270M too for the post-norms and sliding-window layers),
//! against [`Model::forward`] on one session. Skipped with a note when a model is not cached,
//! unless `AIRINFER_REQUIRE_MODEL` is set.
//!
//! * cutting the chain `embed, attn 0, mlp 0, …, head` anywhere (between a block's halves too)
//!   gives the forward pass's logits bit for bit, for a prefill and then decode steps;
//! * a batched decode step of sessions at different positions gives each session's own decode
//!   step: bit for bit for one session; for several bit for bit when single steps take the
//!   GEMM too (`AIRINFER_GEMM_DECODE=1`, checked in a child process), and in the default
//!   arithmetic within the 8-bit requantisation differences prefill and decode also show
//!   (greedy tokens the same), a row never depending on the rest of its batch;
//! * bad input is an error, not a panic, and leaves the sessions as they were.

mod common;
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::{Hidden, Logits, Model, ModelError, Session};
use airinfer_llm::sampling::argmax;
use airinfer_llm::tp::IdealCollective;
use std::sync::OnceLock;

fn smollm2() -> Option<&'static Model> {
    static M: OnceLock<Option<Model>> = OnceLock::new();
    M.get_or_init(|| {
        common::cached_model("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m")
            .map(|g| Model::load_single(&g).unwrap())
    })
    .as_ref()
}

fn smollm2_file() -> Option<GgufFile> {
    common::cached_model("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m")
}

/// A prefill of several tokens, then three single-token decode steps.
const STEPS: [&[u32]; 4] = [&[1, 17, 400, 9, 33, 2048, 5], &[77], &[3000], &[12]];

/// A small deterministic generator (the cut points).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// One step through stages cut at `cuts` (`0 = c_0 ≤ c_1 ≤ … ≤ c_m = 2·n_layer`, empty stages
/// allowed), stage `i` running half-blocks `c_i .. c_{i+1}` on its own session; the stream and
/// the branch are handed on as a pipeline would send them (copies).
fn pipeline_step(
    model: &Model,
    sessions: &mut [Session],
    cuts: &[usize],
    tokens: &[u32],
    want: Logits,
) -> Vec<f32> {
    assert_eq!(sessions.len() + 1, cuts.len());
    let mut h = model.embed(sessions[0].pos, tokens).unwrap();
    let mut branch: Option<Hidden> = None;
    for (i, s) in sessions.iter_mut().enumerate() {
        let (mut h_in, mut b_in) = (h.clone(), branch.clone());
        model
            .run_halves(s, &mut h_in, &mut b_in, cuts[i]..cuts[i + 1])
            .unwrap();
        assert_eq!(b_in.is_some(), cuts[i + 1] % 2 == 1, "cuts {cuts:?}");
        (h, branch) = (h_in, b_in);
        assert_eq!(
            s.pos,
            h.pos + tokens.len(),
            "stage {i} advanced its session"
        );
    }
    assert!(branch.is_none());
    model.head(&h, want)
}

/// The same step by the primitives alone, one session for every block (its `pos` untouched).
fn primitives_step(
    model: &Model,
    s: &mut Session,
    pos: usize,
    tokens: &[u32],
    want: Logits,
) -> Vec<f32> {
    let mut h = model.embed(pos, tokens).unwrap();
    for l in 0..model.cfg.n_layer {
        let a = model.attn_half(s, &h, l).unwrap();
        assert_eq!((a.pos, a.n_tokens), (h.pos, h.n_tokens));
        h = model.mlp_half(&h, &a, l).unwrap();
    }
    assert_eq!(s.pos, 0, "the primitives leave s.pos alone");
    model.head(&h, want)
}

/// A mixed pipeline: blocks `0..3` by `run_layers`, half-blocks `6..2n−5` by `run_halves`
/// (ending after the attention half of block n−3), the rest by the primitives.
fn mixed_step(model: &Model, s: &mut [Session; 3], tokens: &[u32], want: Logits) -> Vec<f32> {
    let n = model.cfg.n_layer;
    let mut h = model.embed(s[0].pos, tokens).unwrap();
    model
        .run_layers(&mut s[0], &mut h, 0..3, &mut IdealCollective)
        .unwrap();
    let mut branch = None;
    model
        .run_halves(&mut s[1], &mut h, &mut branch, 6..2 * n - 5)
        .unwrap();
    let a = branch.expect("ends after an attention half");
    let mut h = model.mlp_half(&h, &a, n - 3).unwrap();
    for l in n - 2..n {
        let a = model.attn_half(&mut s[2], &h, l).unwrap();
        h = model.mlp_half(&h, &a, l).unwrap();
    }
    s[2].pos += tokens.len();
    model.head(&h, want)
}

/// Every cut pattern against the whole forward pass, bit for bit, over [`STEPS`].
fn assert_halves_equal_forward(model: &Model, random_patterns: usize, want: Logits) {
    let n = 2 * model.cfg.n_layer;
    let mut patterns: Vec<Vec<usize>> = Vec::new();
    // every half-block its own stage: every boundary is a cut
    patterns.push((0..=n).collect());
    // one cut at each half boundary of blocks 4..7 (between the halves and between blocks)
    for c in 8..=14 {
        patterns.push(vec![0, c, n]);
    }
    // random cuts from a fixed seed (repeats make empty stages)
    let mut rng = Rng(0x5eed_2024);
    for _ in 0..random_patterns {
        let k = 1 + rng.below(6);
        let mut c: Vec<usize> = (0..k).map(|_| rng.below(n + 1)).collect();
        c.push(0);
        c.push(n);
        c.sort_unstable();
        patterns.push(c);
    }
    assert!(patterns.iter().any(|c| c.iter().any(|u| u % 2 == 1)));

    let limit = 16;
    let mut whole = model.new_session(limit);
    let mut stages: Vec<Vec<Session>> = patterns
        .iter()
        .map(|c| (1..c.len()).map(|_| model.new_session(limit)).collect())
        .collect();
    let mut prim = model.new_session(limit);
    let mut mixed = [(); 3].map(|_| model.new_session(limit));
    for (step, tokens) in STEPS.iter().enumerate() {
        let pos = whole.pos;
        let want_logits = model
            .forward(&mut whole, tokens, &mut IdealCollective, want)
            .unwrap();
        assert!(!want_logits.is_empty());
        for (cuts, sessions) in patterns.iter().zip(stages.iter_mut()) {
            let got = pipeline_step(model, sessions, cuts, tokens, want);
            assert!(
                bits(&got) == bits(&want_logits),
                "{}: step {step}, cuts {cuts:?}: the half-block pipeline differs from forward",
                model.cfg.name
            );
        }
        let got = primitives_step(model, &mut prim, pos, tokens, want);
        assert!(
            bits(&got) == bits(&want_logits),
            "{}: step {step}: attn_half/mlp_half differ from forward",
            model.cfg.name
        );
        let got = mixed_step(model, &mut mixed, tokens, want);
        assert!(
            bits(&got) == bits(&want_logits),
            "{}: step {step}: the mixed pipeline differs from forward",
            model.cfg.name
        );
    }
    // the caches are the whole session's, bit for bit
    for l in 0..model.cfg.n_layer {
        let (k, v) = whole.kv(0, l);
        let (pk, pv) = prim.kv(0, l);
        assert!(
            bits(k) == bits(pk) && bits(v) == bits(pv),
            "block {l}'s cache"
        );
    }
}

#[test]
fn halves_equal_forward_bit_for_bit() {
    let Some(model) = smollm2() else { return };
    assert_halves_equal_forward(model, 8, Logits::From(0));
}

/// Gemma 3: post-attention and post-FFN norms (the branch is normalised in the MLP half), an
/// output bias-free attention with Q/K norms, and sliding-window layers.
#[test]
fn halves_equal_forward_bit_for_bit_gemma3() {
    let Some(g) = common::cached_model("gemma-3-270m-q4_k_m.gguf", "gemma3-270m") else {
        return;
    };
    let model = Model::load_single(&g).unwrap();
    assert!(model.cfg.arch.sliding_window.is_some());
    assert_halves_equal_forward(&model, 3, Logits::Last);
}

/// Max |a − b| over the row, relative to the row's max |b|.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale
}

/// Whether single-token steps take the GEMM (`AIRINFER_GEMM_DECODE=1`): then a batched row is
/// its single decode step bit for bit.
fn gemm_decode() -> bool {
    std::env::var("AIRINFER_GEMM_DECODE").as_deref() == Ok("1")
}

/// How far a batched row's logits (and cached keys and values) may be from its single decode
/// step's, relative to the row's largest: the integer GEMM adds the mat-vec's exact block dots
/// in another float order (≈1e-7 relative per linear), and where that moves a value across an
/// 8-bit rounding boundary of the next activation the difference grows to one code step; over
/// 30 blocks this is the size by which prefill and decode of the same tokens differ (2–5e-2 on
/// this model). With f32 prefill arithmetic the batched rows are not quantised at all while
/// the single steps are: more.
fn batch_tolerance() -> f64 {
    if airinfer_llm::kernels::f32_prefill() {
        0.15
    } else {
        6e-2
    }
}

/// Sessions at positions 6, 3 and 0 (different prompts, one empty), stepped together by
/// `decode_batch` and each alone by `forward` for six steps (one session reset and prefilled
/// anew half way); `check(step, row, batched, single)` on every row. Also checks, bit for bit,
/// that a row does not depend on the rest of its batch (8-bit arithmetic).
fn batch_against_single(model: &Model, mut check: impl FnMut(usize, usize, &[f32], &[f32])) {
    let vocab = model.cfg.vocab_size;
    let prompts: [&[u32]; 3] = [&[1, 504, 3458, 282, 4649, 314], &[1, 2, 3], &[]];
    let mut batch: Vec<Session> = Vec::new();
    let mut refs: Vec<Session> = Vec::new();
    let mut next: Vec<u32> = Vec::new();
    for p in prompts {
        let mut s = model.new_session(32);
        if p.is_empty() {
            next.push(1);
        } else {
            let l = model
                .forward(&mut s, p, &mut IdealCollective, Logits::Last)
                .unwrap();
            next.push(argmax(&l).unwrap());
        }
        refs.push(s.clone());
        batch.push(s);
    }
    for step in 0..6 {
        if step == 3 {
            // session 1 starts a new sequence (reset, a prefill by forward), its reference too
            for s in [&mut batch[1], &mut refs[1]] {
                s.reset();
                model
                    .forward(s, &[1, 9, 99, 999], &mut IdealCollective, Logits::None)
                    .unwrap();
            }
            next[1] = 42;
        }
        let positions: Vec<usize> = batch.iter().map(|s| s.pos).collect();
        if !airinfer_llm::kernels::f32_prefill() {
            // rows 2 and 0 in a batch of their own, in another order: the same bits
            let mut pair = [batch[2].clone(), batch[0].clone()];
            let got = model
                .decode_batch(
                    &mut pair.iter_mut().collect::<Vec<_>>(),
                    &[next[2], next[0]],
                    Logits::Last,
                )
                .unwrap();
            let mut whole = batch.clone();
            let all = model
                .decode_batch(
                    &mut whole.iter_mut().collect::<Vec<_>>(),
                    &next,
                    Logits::Last,
                )
                .unwrap();
            assert!(
                bits(&got[..vocab]) == bits(&all[2 * vocab..])
                    && bits(&got[vocab..]) == bits(&all[..vocab]),
                "step {step}: a row depends on the rest of its batch"
            );
        }
        let got = model
            .decode_batch(
                &mut batch.iter_mut().collect::<Vec<_>>(),
                &next,
                Logits::Last,
            )
            .unwrap();
        assert_eq!(got.len(), 3 * vocab);
        for (b, r) in refs.iter_mut().enumerate() {
            let want = model
                .forward(r, &[next[b]], &mut IdealCollective, Logits::Last)
                .unwrap();
            check(step, b, &got[b * vocab..(b + 1) * vocab], &want);
            assert_eq!(batch[b].pos, r.pos);
            assert_eq!(batch[b].pos, positions[b] + 1);
            next[b] = argmax(&want).unwrap();
        }
    }
    for (b, (s, r)) in batch.iter().zip(&refs).enumerate() {
        for l in 0..model.cfg.n_layer {
            let ((k, v), (rk, rv)) = (s.kv(0, l), r.kv(0, l));
            assert_eq!((k.len(), v.len()), (rk.len(), rv.len()));
            check(usize::MAX, b, k, rk);
            check(usize::MAX, b, v, rv);
        }
    }
}

/// Batched rows against each session's own decode step in the default arithmetic: within
/// [`batch_tolerance`], the same greedy token unless the single step's top two are closer
/// than the difference.
#[test]
fn decode_batch_equals_each_sessions_own_decode() {
    let Some(model) = smollm2() else { return };
    let (mut exact, mut worst) = (true, 0.0f64);
    batch_against_single(model, |step, b, row, want| {
        let d = rel_diff(row, want);
        exact &= bits(row) == bits(want);
        if step == usize::MAX {
            // keys and values
            assert!(
                d <= batch_tolerance(),
                "row {b}'s cache: relative difference {d:e}"
            );
            return;
        }
        worst = worst.max(d);
        assert!(
            d <= batch_tolerance(),
            "step {step}, row {b}: relative difference {d:e}"
        );
        let (i, j) = (argmax(row).unwrap(), argmax(want).unwrap());
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        assert!(
            i == j || (want[j as usize] - want[i as usize]) as f64 <= 2.0 * d * scale,
            "step {step}, row {b}: the batch picks {i}, the single step {j}"
        );
    });
    if gemm_decode() {
        assert!(
            exact,
            "with AIRINFER_GEMM_DECODE=1 the rows are bit for bit"
        );
    }
    eprintln!(
        "batched rows vs single decode: {} (worst relative logit difference {worst:e})",
        if exact {
            "bit for bit"
        } else {
            "not bit for bit"
        }
    );
}

/// With `AIRINFER_GEMM_DECODE=1` (single steps take the GEMM as the batch does) the batched
/// rows, logits and caches, are the single steps' bit for bit: the batching itself (positions,
/// caches, row isolation) adds nothing. Run in a child process with the variable set (it is
/// read once per process) unless this process has it.
#[test]
fn decode_batch_is_bit_for_bit_single_decode_in_gemm_arithmetic() {
    const NAME: &str = "decode_batch_is_bit_for_bit_single_decode_in_gemm_arithmetic";
    if airinfer_llm::kernels::f32_prefill() {
        // the f32 GEMM (the `gemm` crate) may take other kernels for 1 and for B rows
        eprintln!("note: f32 prefill arithmetic: the 8-bit GEMM's exactness not tested");
        return;
    }
    if gemm_decode() {
        let Some(model) = smollm2() else { return };
        batch_against_single(model, |step, b, row, want| {
            assert!(
                bits(row) == bits(want),
                "step {step}, row {b}: differs (relative {:e})",
                rel_diff(row, want)
            );
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("AIRINFER_GEMM_DECODE", "1")
        .output()
        .expect("run the test binary again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the child run failed:\n{text}"
    );
}

/// One session in the batch: exactly [`Model::forward`]'s decode step, logits and caches.
#[test]
fn decode_batch_of_one_equals_forward_exactly() {
    let Some(model) = smollm2() else { return };
    let mut s = model.new_session(32);
    let mut r = model.new_session(32);
    for x in [&mut s, &mut r] {
        model
            .forward(x, &[1, 504, 3458, 282], &mut IdealCollective, Logits::None)
            .unwrap();
    }
    let mut tok = 4649;
    for step in 0..4 {
        if step == 2 {
            s.reset();
            r.reset();
        }
        let got = model
            .decode_batch(&mut [&mut s], &[tok], Logits::Last)
            .unwrap();
        let want = model
            .forward(&mut r, &[tok], &mut IdealCollective, Logits::Last)
            .unwrap();
        assert!(
            bits(&got) == bits(&want),
            "step {step}: B = 1 differs from forward"
        );
        assert_eq!(s.pos, r.pos);
        tok = argmax(&want).unwrap();
    }
    for l in 0..model.cfg.n_layer {
        let ((k, v), (rk, rv)) = (s.kv(0, l), r.kv(0, l));
        assert!(
            bits(k) == bits(rk) && bits(v) == bits(rv),
            "block {l}'s cache"
        );
    }
    // no logits asked: none given, the session still advances
    let pos = s.pos;
    let none = model
        .decode_batch(&mut [&mut s], &[5], Logits::None)
        .unwrap();
    assert!(none.is_empty() && s.pos == pos + 1);
}

/// The batched pipeline piece: blocks in two stages equal `decode_batch` in one, bit for bit.
#[test]
fn run_layers_batch_in_stages_equals_decode_batch() {
    let Some(model) = smollm2() else { return };
    let n = model.cfg.n_layer;
    let prompts: [&[u32]; 2] = [&[1, 2, 3, 4, 5], &[1, 7]];
    let mut whole: Vec<Session> = Vec::new();
    let mut st0: Vec<Session> = Vec::new();
    let mut st1: Vec<Session> = Vec::new();
    for p in prompts {
        let mut s = model.new_session(16);
        model
            .forward(&mut s, p, &mut IdealCollective, Logits::None)
            .unwrap();
        let mut a = model.new_session(16);
        let mut b = model.new_session(16);
        let mut h = model.embed(0, p).unwrap();
        model
            .run_layers(&mut a, &mut h, 0..n / 2, &mut IdealCollective)
            .unwrap();
        model
            .run_layers(&mut b, &mut h, n / 2..n, &mut IdealCollective)
            .unwrap();
        whole.push(s);
        st0.push(a);
        st1.push(b);
    }
    for tokens in [[10u32, 20], [30, 40]] {
        let want = model
            .decode_batch(
                &mut whole.iter_mut().collect::<Vec<_>>(),
                &tokens,
                Logits::Last,
            )
            .unwrap();
        let mut h = model.embed(0, &tokens).unwrap();
        model
            .run_layers_batch(&mut st0.iter_mut().collect::<Vec<_>>(), &mut h, 0..n / 2)
            .unwrap();
        model
            .run_layers_batch(&mut st1.iter_mut().collect::<Vec<_>>(), &mut h, n / 2..n)
            .unwrap();
        let got = model.head(&h, Logits::From(0));
        assert!(bits(&got) == bits(&want), "staged batch differs");
    }
}

fn is_config_err(r: Result<impl std::fmt::Debug, ModelError>, key: &str) -> String {
    match r {
        Err(ModelError::Config { key: k, reason }) if k == key => reason,
        other => panic!("expected a '{key}' error, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let Some(model) = smollm2() else { return };
    let (n, d) = (model.cfg.n_layer, model.cfg.n_embd);
    let mut s = model.new_session(8);
    let x = model.embed(0, &[1, 2, 3]).unwrap();

    // layers and half-block ranges out of the model
    is_config_err(model.attn_half(&mut s, &x, n), "layer");
    is_config_err(model.mlp_half(&x, &x, n), "layer");
    let mut h = x.clone();
    is_config_err(
        model.run_halves(&mut s, &mut h, &mut None, 0..2 * n + 1),
        "halves",
    );
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 4..2;
    is_config_err(
        model.run_halves(&mut s, &mut h, &mut None, backwards),
        "halves",
    );

    // shapes: a branch of other positions or length, a stream of the wrong width
    let short = model.embed(0, &[1, 2]).unwrap();
    is_config_err(model.mlp_half(&x, &short, 0), "branch");
    let moved = model.embed(1, &[1, 2, 3]).unwrap();
    is_config_err(model.mlp_half(&x, &moved, 0), "branch");
    let mut bad = x.clone();
    bad.xs[0].pop();
    is_config_err(model.attn_half(&mut s, &bad, 0), "x_in");
    is_config_err(model.mlp_half(&bad, &x, 0), "x_in");
    is_config_err(model.mlp_half(&x, &bad, 0), "branch");
    let mut two = x.clone();
    two.xs.push(x.xs[0].clone());
    is_config_err(model.mlp_half(&two, &x, 0), "x_in");
    let mut h = bad.clone();
    is_config_err(model.run_halves(&mut s, &mut h, &mut None, 0..2), "hidden");

    // the branch must come exactly when the range starts with an MLP half
    let mut h = x.clone();
    is_config_err(model.run_halves(&mut s, &mut h, &mut None, 1..4), "branch");
    is_config_err(
        model.run_halves(&mut s, &mut h, &mut Some(x.clone()), 2..4),
        "branch",
    );
    assert_eq!(h, x, "a failed call leaves the stream as it was");

    // positions: the session elsewhere, a cache already holding these positions
    let mut h = moved.clone();
    is_config_err(model.run_halves(&mut s, &mut h, &mut None, 0..2), "session");
    model.attn_half(&mut s, &x, 0).unwrap();
    let kv = s.kv_bytes(0);
    let reason = is_config_err(model.attn_half(&mut s, &x, 0), "session");
    assert!(reason.contains("block 0"), "{reason}");
    assert_eq!(
        s.kv_bytes(0),
        kv,
        "a failed call leaves the caches as they were"
    );
    // run_layers over a block whose cache is ahead of the session: an error, not a panic
    let mut h = x.clone();
    is_config_err(
        model.run_layers(&mut s, &mut h, 0..2, &mut IdealCollective),
        "session",
    );
    assert_eq!(s.pos, 0);

    // a full context
    let mut small = model.new_session(2);
    assert!(matches!(
        model.attn_half(&mut small, &x, 0),
        Err(ModelError::ContextFull { len: 3, limit: 2 })
    ));
    let mut h = x.clone();
    assert!(matches!(
        model.run_halves(&mut small, &mut h, &mut None, 0..2),
        Err(ModelError::ContextFull { .. })
    ));
    let mut full = model.new_session(1);
    model
        .forward(&mut full, &[1], &mut IdealCollective, Logits::None)
        .unwrap();
    let mut fresh = model.new_session(8);
    assert!(matches!(
        model.decode_batch(&mut [&mut fresh, &mut full], &[1, 2], Logits::Last),
        Err(ModelError::ContextFull { len: 2, limit: 1 })
    ));
    assert_eq!((fresh.pos, fresh.kv_bytes(0)), (0, 0), "no session changed");

    // batched decode: counts, tokens, rows
    is_config_err(
        model.decode_batch(&mut [&mut fresh], &[1, 2], Logits::Last),
        "tokens",
    );
    assert!(matches!(
        model.decode_batch(&mut [&mut fresh], &[u32::MAX], Logits::Last),
        Err(ModelError::BadToken { .. })
    ));
    let mut rows = model.embed(0, &[1, 2]).unwrap();
    is_config_err(
        model.run_layers_batch(&mut [&mut fresh], &mut rows, 0..1),
        "hidden",
    );
    is_config_err(
        model.run_layers_batch(&mut [&mut fresh], &mut rows, 0..n + 1),
        "layers",
    );
    assert_eq!((fresh.pos, fresh.kv_bytes(0)), (0, 0));
    assert_eq!(rows.xs[0].len(), 2 * d);

    // a tensor-parallel model: every sub-block and batched entry point refuses
    let g = smollm2_file().unwrap();
    let tp = Model::load_shares(&g, &[1.0, 1.0]).unwrap();
    let mut ts = tp.new_session(8);
    let tx = tp.embed(0, &[1, 2, 3]).unwrap();
    is_config_err(tp.attn_half(&mut ts, &tx, 0), "devices");
    is_config_err(tp.mlp_half(&tx, &tx, 0), "devices");
    let mut th = tx.clone();
    is_config_err(tp.run_halves(&mut ts, &mut th, &mut None, 0..2), "devices");
    is_config_err(
        tp.decode_batch(&mut [&mut ts], &[1], Logits::Last),
        "devices",
    );
    let mut one = tp.embed(0, &[1]).unwrap();
    is_config_err(
        tp.run_layers_batch(&mut [&mut ts], &mut one, 0..1),
        "devices",
    );
    // and a session of the tensor-parallel model does not fit the single-device one
    let mut h = x.clone();
    is_config_err(
        model.run_halves(&mut ts, &mut h, &mut None, 0..2),
        "session",
    );
    is_config_err(
        model.decode_batch(&mut [&mut ts], &[1], Logits::Last),
        "session",
    );
}
