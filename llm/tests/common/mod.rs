//! Shared test helpers: a tiny random Llama written as a real GGUF file, and a naive f64
//! reference forward pass written independently of the engine.
#![allow(dead_code)]

use airinfer_llm::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue as V};
use airinfer_llm::quant;

pub struct Tiny {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub vocab: usize,
    pub tied: bool,
}

impl Default for Tiny {
    fn default() -> Self {
        // head_dim 32 so that a head is one quantisation block of the output projection
        Tiny {
            n_layer: 2,
            n_embd: 128,
            n_ff: 256,
            n_head: 4,
            n_head_kv: 2,
            vocab: 96,
            tied: true,
        }
    }
}

pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// Write a tiny random Llama GGUF (Q8_0 embedding, Q4_1 matrices, F32 norms) into memory.
pub fn tiny_gguf(t: &Tiny, seed: u64) -> GgufFile {
    let mut r = Lcg(seed);
    let mut w = GgufWriter::new(3);
    let hd = t.n_embd / t.n_head;
    let u = |x: usize| V::U32(x as u32);
    w.add_metadata("general.architecture", V::String("llama".into()))
        .add_metadata("general.name", V::String("tiny".into()))
        .add_metadata("llama.block_count", u(t.n_layer))
        .add_metadata("llama.context_length", u(64))
        .add_metadata("llama.embedding_length", u(t.n_embd))
        .add_metadata("llama.feed_forward_length", u(t.n_ff))
        .add_metadata("llama.attention.head_count", u(t.n_head))
        .add_metadata("llama.attention.head_count_kv", u(t.n_head_kv))
        .add_metadata("llama.rope.freq_base", V::F32(10000.0))
        .add_metadata("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5));
    let (d, ff, kv) = (t.n_embd as u64, t.n_ff as u64, (t.n_head_kv * hd) as u64);
    w.add_tensor(
        "token_embd.weight",
        &[d, t.vocab as u64],
        GgmlType::Q8_0,
        quant::quantize_q8_0(&r.vec(t.n_embd * t.vocab, 1.0)),
    );
    if !t.tied {
        w.add_tensor(
            "output.weight",
            &[d, t.vocab as u64],
            GgmlType::Q4_1,
            quant::quantize_q4_1(&r.vec(t.n_embd * t.vocab, 0.2)),
        );
    }
    let norm: Vec<f32> = (0..t.n_embd).map(|_| 1.0 + 0.2 * r.next()).collect();
    w.add_f32("output_norm.weight", &[d], &norm);
    let mat = |r: &mut Lcg, cols: u64, rows: u64, scale: f32| {
        quant::quantize_q4_1(&r.vec((cols * rows) as usize, scale))
    };
    for l in 0..t.n_layer {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        let an: Vec<f32> = (0..t.n_embd).map(|_| 1.0 + 0.2 * r.next()).collect();
        let fnn: Vec<f32> = (0..t.n_embd).map(|_| 1.0 + 0.2 * r.next()).collect();
        w.add_f32(&n("attn_norm"), &[d], &an);
        w.add_f32(&n("ffn_norm"), &[d], &fnn);
        w.add_tensor(
            &n("attn_q"),
            &[d, d],
            GgmlType::Q4_1,
            mat(&mut r, d, d, 0.3),
        );
        w.add_tensor(
            &n("attn_k"),
            &[d, kv],
            GgmlType::Q4_1,
            mat(&mut r, d, kv, 0.3),
        );
        w.add_tensor(
            &n("attn_v"),
            &[d, kv],
            GgmlType::Q4_1,
            mat(&mut r, d, kv, 0.3),
        );
        w.add_tensor(
            &n("attn_output"),
            &[d, d],
            GgmlType::Q4_1,
            mat(&mut r, d, d, 0.1),
        );
        w.add_tensor(
            &n("ffn_gate"),
            &[d, ff],
            GgmlType::Q4_1,
            mat(&mut r, d, ff, 0.2),
        );
        w.add_tensor(
            &n("ffn_up"),
            &[d, ff],
            GgmlType::Q4_1,
            mat(&mut r, d, ff, 0.2),
        );
        w.add_tensor(
            &n("ffn_down"),
            &[ff, d],
            GgmlType::Q4_1,
            mat(&mut r, ff, d, 0.1),
        );
    }
    GgufFile::from_bytes(w.to_bytes()).expect("tiny GGUF parses")
}

/// Emulate the engine's 8-bit activation quantisation (per 32-block, d = max|x|/127,
/// round half away from zero), written independently for the reference.
pub fn q8_roundtrip(x: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for b in x.chunks(32) {
        let xf: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let amax = xf.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        for v in xf {
            let q = (v * id).round().clamp(-127.0, 127.0);
            out.push(d as f64 * q as f64);
        }
    }
    out
}

/// Naive f64 Llama forward over `tokens` from position 0; returns logits for every position.
/// `quantise_acts`: emulate the engine's decode path (8-bit activations before every matrix).
pub fn reference_logits(
    g: &GgufFile,
    t: &Tiny,
    tokens: &[u32],
    quantise_acts: bool,
) -> Vec<Vec<f64>> {
    let get = |name: &str| -> Vec<f64> {
        g.tensor_f32(name)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect()
    };
    let (d, hd, nh, nkv, ff) = (t.n_embd, t.n_embd / t.n_head, t.n_head, t.n_head_kv, t.n_ff);
    let eps = 1e-5f64;
    let matvec = |w: &[f64], rows: usize, x: &[f64]| -> Vec<f64> {
        let x = if quantise_acts {
            q8_roundtrip(x)
        } else {
            x.to_vec()
        };
        let cols = x.len();
        (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] * x[c]).sum())
            .collect()
    };
    let rms = |x: &[f64], w: &[f64]| -> Vec<f64> {
        let ss = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let inv = 1.0 / (ss + eps).sqrt();
        x.iter().zip(w).map(|(a, b)| a * inv * b).collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        for h in 0..v.len() / hd {
            for j in 0..hd / 2 {
                let theta = pos as f64 * 10000f64.powf(-2.0 * j as f64 / hd as f64);
                let (s, c) = theta.sin_cos();
                let (a, b) = (v[h * hd + 2 * j], v[h * hd + 2 * j + 1]);
                v[h * hd + 2 * j] = a * c - b * s;
                v[h * hd + 2 * j + 1] = a * s + b * c;
            }
        }
    };
    let emb = get("token_embd.weight");
    let head = if t.tied {
        emb.clone()
    } else {
        get("output.weight")
    };
    let onorm = get("output_norm.weight");
    let layers: Vec<_> = (0..t.n_layer)
        .map(|l| {
            let n = |s: &str| get(&format!("blk.{l}.{s}.weight"));
            (
                n("attn_norm"),
                n("ffn_norm"),
                n("attn_q"),
                n("attn_k"),
                n("attn_v"),
                n("attn_output"),
                n("ffn_gate"),
                n("ffn_up"),
                n("ffn_down"),
            )
        })
        .collect();
    let mut kcache: Vec<Vec<Vec<f64>>> = vec![Vec::new(); t.n_layer];
    let mut vcache: Vec<Vec<Vec<f64>>> = vec![Vec::new(); t.n_layer];
    let mut out = Vec::new();
    for (pos, &tok) in tokens.iter().enumerate() {
        let mut x: Vec<f64> = emb[tok as usize * d..(tok as usize + 1) * d].to_vec();
        for (l, (an, fnw, wq, wk, wv, wo, wg, wu, wd)) in layers.iter().enumerate() {
            let xn = rms(&x, an);
            let mut q = matvec(wq, nh * hd, &xn);
            let mut k = matvec(wk, nkv * hd, &xn);
            let v = matvec(wv, nkv * hd, &xn);
            rope(&mut q, pos);
            rope(&mut k, pos);
            kcache[l].push(k);
            vcache[l].push(v);
            let mut att = vec![0.0f64; nh * hd];
            for h in 0..nh {
                let kvh = h / (nh / nkv);
                let qh = &q[h * hd..(h + 1) * hd];
                let scores: Vec<f64> = kcache[l]
                    .iter()
                    .map(|k| {
                        qh.iter()
                            .zip(&k[kvh * hd..(kvh + 1) * hd])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (p, w) in e.iter().enumerate() {
                    for j in 0..hd {
                        att[h * hd + j] += w / z * vcache[l][p][kvh * hd + j];
                    }
                }
            }
            let o = matvec(wo, d, &att);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let xn = rms(&x, fnw);
            let g = matvec(wg, ff, &xn);
            let u = matvec(wu, ff, &xn);
            let h: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let dn = matvec(wd, d, &h);
            x.iter_mut().zip(&dn).for_each(|(a, b)| *a += b);
        }
        let xn = rms(&x, &onorm);
        out.push(matvec(&head, t.vocab, &xn));
    }
    out
}

/// max |a − b| / max |b|.
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let m = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter()
        .zip(b)
        .fold(0.0f64, |e, (x, y)| e.max((*x as f64 - y).abs()))
        / m
}

/// Same for two f32 vectors.
pub fn rel_err32(a: &[f32], b: &[f32]) -> f64 {
    let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    rel_err(a, &b64)
}

// ---- TP = one device, by argument: the lock-step check -------------------------------------
//
// A tensor-parallel forward differs from the single-device forward only at the two reduction
// sites of each block: there the same floating-point summands (block terms of the quantised
// mat-vec, or products of the f32 path) are added in another order — per device, then across
// devices. Everything else (Q/K/V and gate/up rows, attention per head, norms, the head) is the
// same arithmetic on the same inputs, row by row and head by head, on every kernel path. So:
//  1. at every site, |Σ_k partial_k − single| ≤ (γ_n + γ_{n+K}) · Σ|summands| (the standard
//     bound for recursive summation in any order, u = 2⁻²⁴, n roundings on the longest path);
//  2. the summands are the same: Σ_k magnitude_k = magnitude of the single device;
//  3. if every device is then handed the single-device sum (teacher forcing), the logits are
//     bit for bit those of the single device.
// Free-running, the 8-bit activation quantisation of the decode path is discontinuous, so a
// one-ulp difference can flip a rounding and grow over the steps; the lock-step test checks the
// argument itself, which holds on every CPU and kernel path.

use airinfer_llm::tp::{Collective, ReduceCtx, ReduceSite};

/// γ_n = n·u / (1 − n·u), u = 2⁻²⁴ (f32 unit roundoff).
pub fn gamma(n: usize) -> f64 {
    let nu = n as f64 * 2f64.powi(-24);
    nu / (1.0 - nu)
}

/// Roundings on the longest summation path of one output element at a site whose input has
/// `cols` values. Quantised weights, mat-vec (decode): a SIMD kernel adds, per lane, one term
/// per 32-block (≤ cols/32), then a horizontal sum (3) and the offset total (1), which itself
/// adds one term per block; the portable kernel adds 2 terms per block in sequence. Quantised
/// weights, integer GEMM (prefill): per token and row one term per block (two for Q8S's
/// halves), the offset terms apart, then their sum. Dense (f32) weights: `cols` products in
/// some order. Each summand carries ≤ 2 roundings of its own (d_w·d_x, then the product with
/// the integer sum or the fused multiply-add).
/// `packed`: the site's weights are in a packed quantised format (else held as f32, as the
/// GEMM path multiplies them all with `AIRINFER_F32_PREFILL=1`).
pub fn roundings(cols: usize, n_tokens: usize, packed: bool) -> usize {
    let f32_gemm = gemm_path(n_tokens) && airinfer_llm::kernels::f32_prefill();
    let path = if !packed || f32_gemm {
        cols
    } else {
        2 * cols / 32 + 4
    };
    path + 2
}

/// Whether a forward call of `n_tokens` takes the GEMM path (else the mat-vec kernels).
pub fn gemm_path(n_tokens: usize) -> bool {
    n_tokens > 1 || std::env::var("AIRINFER_GEMM_DECODE").as_deref() == Ok("1")
}

/// Records what the single-device model's reduction sites produce (K = 1: the full vectors).
#[derive(Default)]
pub struct Record {
    pub sums: Vec<Vec<f32>>,
    pub mags: Vec<Vec<f32>>,
}

impl Collective for Record {
    fn all_reduce(&mut self, _ctx: &ReduceCtx, _buffers: &mut [Vec<f32>]) {
        panic!("the recording session must record magnitudes");
    }
    fn all_reduce_with_magnitudes(
        &mut self,
        _ctx: &ReduceCtx,
        buffers: &mut [Vec<f32>],
        magnitudes: &[Vec<f32>],
    ) {
        assert_eq!(buffers.len(), 1, "record the single-device model");
        self.sums.push(buffers[0].clone());
        self.mags.push(magnitudes[0].clone());
    }
}

/// Replays a [`Record`] against a tensor-parallel model: checks 1. and 2. above at every site,
/// then hands every device the single-device sum.
pub struct Lockstep<'a> {
    pub record: &'a Record,
    /// Input widths of the two sites: (n_head · head_dim, n_ff).
    pub cols: (usize, usize),
    /// Whether the sites' weights are packed ([`Model::site_weights_packed`]).
    pub packed: bool,
    pub next: usize,
    /// Largest |difference| / bound seen (≤ 1 passes).
    pub worst: f64,
    /// Sites where the TP sum differed from the single device at all (not bit-identical).
    pub differing: usize,
}

impl<'a> Lockstep<'a> {
    pub fn new(record: &'a Record, model: &airinfer_llm::model::Model) -> Self {
        let cfg = &model.cfg;
        Lockstep {
            record,
            cols: (cfg.n_head * cfg.head_dim, cfg.n_ff),
            packed: model.site_weights_packed(),
            next: 0,
            worst: 0.0,
            differing: 0,
        }
    }
}

impl Collective for Lockstep<'_> {
    fn all_reduce(&mut self, _ctx: &ReduceCtx, _buffers: &mut [Vec<f32>]) {
        panic!("the tensor-parallel session must record magnitudes");
    }
    fn all_reduce_with_magnitudes(
        &mut self,
        ctx: &ReduceCtx,
        buffers: &mut [Vec<f32>],
        magnitudes: &[Vec<f32>],
    ) {
        let i = self.next;
        self.next += 1;
        let (want, want_mag) = (&self.record.sums[i], &self.record.mags[i]);
        let k = buffers.len();
        let cols = match ctx.site {
            ReduceSite::AttnOutput => self.cols.0,
            ReduceSite::MlpDown => self.cols.1,
        };
        let n = roundings(cols, ctx.n_tokens, self.packed);
        // On the GEMM (prefill) path the site's inputs may come from f32 GEMMs (dense weights,
        // attention) whose kernel and k-blocking depend on the matrix shape (a device's rows vs
        // all rows), so each input element carries a reassociation error of its own: dot
        // products of length n_embd (Q/K/V, gate/up) feed it, so we allow γ_{n_embd} relative
        // on the summands. (Seen on an AVX2-only CPU: 1.6e-6 relative, against γ_576 =
        // 3.4e-5.) On the decode path the inputs are bit-identical (our kernels work row by
        // row), so no allowance; the integer GEMM works row by row too.
        let input = if gemm_path(ctx.n_tokens) {
            gamma(ctx.width)
        } else {
            0.0
        };
        let g = gamma(n) + gamma(n + k) + input;
        let mut differs = false;
        for e in 0..want.len() {
            // the ideal all-reduce: Σ_k in device order, in f32
            let sum = buffers.iter().fold(0.0f32, |a, b| a + b[e]);
            let mag_tp: f64 = magnitudes.iter().map(|m| m[e] as f64).sum();
            let mag = want_mag[e] as f64;
            // 2.: same summands; each magnitude is an f64 sum rounded up to f32 (≤ 2⁻²³ rel.)
            assert!(
                (mag_tp - mag).abs()
                    <= ((k as f64 + 1.0) * 2f64.powi(-22) + input) * mag + f64::MIN_POSITIVE,
                "site {i} ({:?}, layer {}), element {e}: the devices' summands add up to \
                 {mag_tp}, the single device's to {mag}",
                ctx.site,
                ctx.layer
            );
            // 1.: the reassociation bound
            let diff = (sum as f64 - want[e] as f64).abs();
            let bound = g * mag * (1.0 + 2f64.powi(-22));
            if diff > 0.0 {
                differs = true;
                self.worst = self.worst.max(diff / bound);
            }
            assert!(
                diff <= bound,
                "site {i} ({:?}, layer {}), element {e}: TP {sum} vs single {}: |Δ| = {diff:e} \
                 > γ-bound {bound:e} (Σ|summands| = {mag:e})",
                ctx.site,
                ctx.layer,
                want[e]
            );
        }
        self.differing += usize::from(differs);
        for b in buffers.iter_mut() {
            b.copy_from_slice(want);
        }
    }
}

/// Checks that every device's KV cache holds exactly (bit for bit) the single device's keys and
/// values of its KV heads: the per-row arithmetic that produced them is the same.
pub fn assert_same_kv(
    single: &airinfer_llm::model::Model,
    a: &airinfer_llm::model::Session,
    tp: &airinfer_llm::model::Model,
    b: &airinfer_llm::model::Session,
    what: &str,
) {
    let cfg = &single.cfg;
    let (hd, nkv) = (cfg.head_dim, cfg.n_head_kv);
    for l in 0..cfg.n_layer {
        let (ks, vs) = a.kv(0, l);
        let pos = ks.len() / (nkv * hd);
        for k in 0..tp.n_devices() {
            let heads = tp.plan.kv_heads(k);
            let (kt, vt) = b.kv(k, l);
            let w = heads.len() * hd;
            for p in 0..pos {
                let lo = (p * nkv + heads.start) * hd;
                assert!(
                    kt[p * w..(p + 1) * w] == ks[lo..lo + w] && vt[p * w..(p + 1) * w] == vs[lo..lo + w],
                    "{what}: device {k}, layer {l}, position {p}: cached keys/values differ from one device's"
                );
            }
        }
    }
}

/// Totals of a lock-step run (for the test's report and its "the check is live" assertion).
#[derive(Default)]
pub struct LockstepStats {
    pub worst: f64,
    pub differing: usize,
    pub sites: usize,
}

/// One decode step of `tok` through `single` (session `a`) and `tp` (session `b`) in lock-step:
/// every reduction site checked by [`Lockstep`], the logits and every device's KV cache bit for
/// bit the single device's. Both sessions must record magnitudes. Returns the logits.
pub fn lockstep_decode_step(
    single: &airinfer_llm::model::Model,
    a: &mut airinfer_llm::model::Session,
    tp: &airinfer_llm::model::Model,
    b: &mut airinfer_llm::model::Session,
    tok: u32,
    what: &str,
    stats: &mut LockstepStats,
) -> Vec<f32> {
    use airinfer_llm::model::Logits;
    let mut rec = Record::default();
    let la = single.forward(a, &[tok], &mut rec, Logits::Last).unwrap();
    let mut ls = Lockstep::new(&rec, single);
    let lb = tp.forward(b, &[tok], &mut ls, Logits::Last).unwrap();
    assert_eq!(ls.next, rec.sums.len());
    assert!(la == lb, "{what}: logits differ under lock-step");
    assert_same_kv(single, a, tp, b, "decode");
    stats.worst = stats.worst.max(ls.worst);
    stats.differing += ls.differing;
    stats.sites += ls.next;
    la
}

/// TP = one device on a real model, by the argument above (lock-step): at every reduction
/// site the TP sum is within the reassociation bound of the single-device sum and made of the
/// same summands; on the decode path (our kernels, row by row) every device's KV cache is bit
/// for bit the single device's (the prompt fed token by token, then 5 decode steps); on the
/// prefill path (the GEMMs) the sites are checked the same way. Run once per SIMD
/// path by `scripts/test.sh` (`AIRINFER_SIMD`).
pub fn assert_tp_equals_single_device(g: &GgufFile, share_sets: &[Vec<f64>]) {
    use airinfer_llm::model::{Logits, Model};
    use airinfer_llm::sampling::argmax;
    use airinfer_llm::tokenizer::Tokenizer;
    let tok = Tokenizer::from_gguf(g).unwrap();
    let single = Model::load_single(g).unwrap();
    let prompt = tok.encode(
        "Over-the-air computation sums the partial activations.",
        true,
        false,
    );
    eprintln!("kernel path: {}", airinfer_llm::kernels::kernel_name());
    for shares in share_sets {
        let tp = Model::load_shares(g, shares).unwrap();
        // the f32 path: the whole prompt at once
        let (mut a, mut b) = (single.new_session(64), tp.new_session(64));
        a.record_magnitudes = true;
        b.record_magnitudes = true;
        let mut rec = Record::default();
        let la = single
            .forward(&mut a, &prompt, &mut rec, Logits::From(0))
            .unwrap();
        let mut ls = Lockstep::new(&rec, &single);
        let lb = tp
            .forward(&mut b, &prompt, &mut ls, Logits::From(0))
            .unwrap();
        assert_eq!(ls.next, rec.sums.len());
        assert!(
            la == lb,
            "prefill, shares {shares:?}: logits differ under lock-step"
        );
        // (no bitwise KV check here: the GEMM crate picks its kernel and k-blocking by matrix
        // shape, so a device's Q/K/V rows are the single device's up to reassociation too)
        eprintln!(
            "prefill, shares {shares:?}: worst |Δ|/bound {:.3}, {} of {} sites not bit-identical",
            ls.worst, ls.differing, ls.next
        );
        // the 8-bit decode path: prompt token by token, then 5 greedy steps
        let (mut a, mut b) = (single.new_session(64), tp.new_session(64));
        a.record_magnitudes = true;
        b.record_magnitudes = true;
        let mut st = LockstepStats::default();
        let mut next = prompt[0];
        for step in 0..prompt.len() + 5 {
            let what = format!("decode step {step}, shares {shares:?}");
            let la = lockstep_decode_step(&single, &mut a, &tp, &mut b, next, &what, &mut st);
            next = prompt
                .get(step + 1)
                .copied()
                .unwrap_or_else(|| argmax(&la).unwrap());
        }
        let (worst, differing, sites) = (st.worst, st.differing, st.sites);
        eprintln!(
            "decode, shares {shares:?}: worst |Δ|/bound {worst:.3}, {differing} of {sites} sites not bit-identical"
        );
        // the check can fail: a TP split whose sums differ from one device's is caught
        assert!(
            differing > 0,
            "no site differed at all: is the split in use?"
        );
    }
}

/// The decode path (one token at a time: the 8-bit mat-vec of packed weights, the single-query
/// attention loop and its sliding window) continues what the prefill path (the GEMMs, the
/// masked attention matrix) computes: greedy decoding of `steps` tokens from `prompt` (special
/// tokens parsed), then the prompt and the generated tokens prefilled at once give the same
/// next-token choices wherever the prefill's top two logits are not nearly tied (0.1 apart:
/// the two paths add the same 8-bit products in other orders, and an activation that lands on a
/// rounding boundary of the quantiser may go either way).
pub fn assert_decode_agrees_with_prefill(g: &GgufFile, prompt: &str, steps: usize) {
    use airinfer_llm::model::{Logits, Model};
    use airinfer_llm::sampling::argmax;
    use airinfer_llm::tokenizer::Tokenizer;
    use airinfer_llm::tp::IdealCollective;
    let tok = Tokenizer::from_gguf(g).unwrap();
    let model = Model::load_single(g).unwrap();
    let prompt = tok.encode(prompt, true, true);
    let limit = prompt.len() + steps;
    let mut s = model.new_session(limit);
    let mut logits = model
        .forward(&mut s, &prompt, &mut IdealCollective, Logits::Last)
        .unwrap();
    let mut all = prompt.clone();
    let mut decoded = Vec::new();
    for _ in 0..steps {
        let next = argmax(&logits).unwrap();
        decoded.push(next);
        all.push(next);
        logits = model
            .forward(&mut s, &[next], &mut IdealCollective, Logits::Last)
            .unwrap();
    }
    let mut s = model.new_session(limit);
    let v = model.cfg.vocab_size;
    let pre = model
        .forward(
            &mut s,
            &all[..all.len() - 1],
            &mut IdealCollective,
            Logits::From(prompt.len() - 1),
        )
        .unwrap();
    let mut compared = 0;
    for (i, row) in pre.chunks(v).enumerate() {
        let mut sorted = row.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 0.1 {
            assert_eq!(argmax(row).unwrap(), decoded[i], "step {i}");
            compared += 1;
        }
    }
    assert!(
        2 * compared >= steps,
        "only {compared} of {steps} steps compared"
    );
}

/// The airinfer cache (`$AIRINFER_HOME`, default ~/.cache/airinfer).
pub fn cache() -> std::path::PathBuf {
    std::env::var_os("AIRINFER_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/airinfer")
        })
}

/// The Lee corpus from the airinfer cache (fetched with the default text), if present.
pub fn lee_text() -> Option<String> {
    let p = cache().join("texts/lee_background.cor");
    let t = std::fs::read_to_string(&p).ok();
    if t.is_none() {
        eprintln!("note: {} absent; skipped", p.display());
    }
    t
}

/// The cached catalogue model `models/FILE` (`airinfer fetch NAME` puts it there); absent, a
/// note and None, unless `AIRINFER_REQUIRE_MODEL` is set (scripts/test.sh fetches the models
/// and sets it), which makes a missing file a failure.
pub fn cached_model(file: &str, name: &str) -> Option<GgufFile> {
    let p = cache().join("models").join(file);
    if !p.is_file() {
        if std::env::var_os("AIRINFER_REQUIRE_MODEL").is_some() {
            panic!("{} is missing (run `airinfer fetch {name}`)", p.display());
        }
        eprintln!("note: {} absent; test skipped", p.display());
        return None;
    }
    Some(GgufFile::open(&p).expect("the cached model parses"))
}

/// `tok` against a fixture of `llama-tokenize` ids (`cases` without and `special_cases` with
/// special-token parsing); `round_trip`: decoding the ids of the plain cases gives the text back.
pub fn assert_tokenizes_as_llama_cpp(
    tok: &airinfer_llm::tokenizer::Tokenizer,
    fixture: &str,
    round_trip: bool,
) {
    let fixture: serde_json::Value = serde_json::from_str(fixture).unwrap();
    for (key, special) in [("cases", false), ("special_cases", true)] {
        for case in fixture[key].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let got = tok.encode(text, true, special);
            assert_eq!(got, want, "text {text:?} (parse_special {special})");
            if round_trip && !special {
                assert_eq!(tok.decode(&got), text);
            }
        }
    }
}
