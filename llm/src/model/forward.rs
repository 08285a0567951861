//! The forward pass: sessions, [`Model::forward`] and its pipeline pieces [`Model::embed`],
//! [`Model::run_layers`] and [`Model::head`], and the MLP.

use super::ops::{linear, linear_magnitudes, linear_many, rmsnorm, rmsnorm_rows};
use super::{Hidden, KvCache, Logits, Model, ModelError, Session};
use crate::config::Activation;
use crate::kernels::QActs;
use crate::tp::{Collective, ReduceCtx, ReduceSite};
use std::ops::Range;

impl Model {
    /// A new, empty sequence whose caches may grow to `limit` positions.
    pub fn new_session(&self, limit: usize) -> Session {
        Session {
            pos: 0,
            record_magnitudes: false,
            limit,
            caches: self
                .devices
                .iter()
                .map(|d| (0..d.blocks.len()).map(|_| KvCache::default()).collect())
                .collect(),
        }
    }

    /// Run `tokens` (positions `session.pos ..`) through the model, calling `collective` at the
    /// two reduction sites of every block, and return logits (`rows × vocab`, row-major) for the
    /// positions `want` asks for. One token uses the quantised mat-vec path; several tokens the
    /// GEMM path (8-bit activations against quantised weights, f32 against dense ones). The same as [`Model::embed`], [`Model::run_layers`] over every block and
    /// [`Model::head`] (what a pipeline stage runs a piece of).
    pub fn forward(
        &self,
        s: &mut Session,
        tokens: &[u32],
        collective: &mut dyn Collective,
        want: Logits,
    ) -> Result<Vec<f32>, ModelError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut h = self.embed(s.pos, tokens)?;
        self.run_layers(s, &mut h, 0..self.cfg.n_layer, collective)?;
        Ok(self.head(&h, want))
    }

    /// Token embedding of `tokens` at positions `pos ..`: the first pipeline stage's work. Every
    /// tensor-parallel device starts from the same rows.
    pub fn embed(&self, pos: usize, tokens: &[u32]) -> Result<Hidden, ModelError> {
        let d = self.cfg.n_embd;
        if let Some(&id) = tokens
            .iter()
            .find(|&&id| id as usize >= self.cfg.vocab_size)
        {
            return Err(ModelError::BadToken {
                id,
                vocab: self.cfg.vocab_size,
            });
        }
        let mut x0 = vec![0.0f32; tokens.len() * d];
        for (i, &tok) in tokens.iter().enumerate() {
            self.token_embd
                .dequantize_row(tok as usize, &mut x0[i * d..(i + 1) * d]);
        }
        let scale = self.cfg.arch.embd_scale;
        if scale != 1.0 {
            x0.iter_mut().for_each(|v| *v *= scale);
        }
        Ok(Hidden {
            pos,
            n_tokens: tokens.len(),
            xs: vec![x0; self.devices.len()],
        })
    }

    /// Run blocks `layers` on the hidden state `h` (whose first token must sit at `s.pos`),
    /// appending their keys and values to `s`'s caches, and advance `s.pos` (an empty range only
    /// advances it). A pipeline stage owns a session of
    /// its own, so its KV caches live with it.
    pub fn run_layers(
        &self,
        s: &mut Session,
        h: &mut Hidden,
        layers: Range<usize>,
        collective: &mut dyn Collective,
    ) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let (t, d, n_dev) = (h.n_tokens, cfg.n_embd, self.devices.len());
        if layers.end > cfg.n_layer || layers.start > layers.end {
            return Err(ModelError::Config {
                key: "layers".into(),
                reason: format!(
                    "{layers:?} is not a range of the model's {} blocks",
                    cfg.n_layer
                ),
            });
        }
        if h.xs.len() != n_dev || h.xs.iter().any(|x| x.len() != t * d) {
            return Err(ModelError::Config {
                key: "hidden".into(),
                reason: format!("expected {n_dev} streams of {t} × {d} values"),
            });
        }
        if s.pos != h.pos {
            return Err(ModelError::Config {
                key: "session".into(),
                reason: format!(
                    "the hidden state is at position {} but the session's caches at {}",
                    h.pos, s.pos
                ),
            });
        }
        if t == 0 {
            return Ok(());
        }
        if s.pos + t > s.limit {
            return Err(ModelError::ContextFull {
                len: s.pos + t,
                limit: s.limit,
            });
        }
        let pos0 = s.pos;
        let xs = &mut h.xs; // per-device residual streams (T, n_embd)
        let mut partials: Vec<Vec<f32>> = vec![vec![0.0f32; t * d]; n_dev];
        let mut mags: Vec<Vec<f32>> = if s.record_magnitudes {
            vec![vec![0.0f32; t * d]; n_dev]
        } else {
            Vec::new()
        };
        let rope = self.rope_table(&self.rope_freqs, pos0, t);
        let rope_swa = layers
            .clone()
            .any(|l| cfg.is_local(l))
            .then(|| self.rope_table(&self.rope_freqs_swa, pos0, t));

        for l in layers {
            let (rope, window) = match &rope_swa {
                Some(r) if cfg.is_local(l) => (r, cfg.arch.sliding_window),
                _ => (&rope, None),
            };
            // attention: each device computes its heads and its slice of the output projection
            for k in 0..n_dev {
                self.attention(
                    k,
                    l,
                    &xs[k],
                    pos0,
                    t,
                    rope,
                    window,
                    &mut s.caches[k][l],
                    &mut partials[k],
                    mags.get_mut(k).map(|m| m.as_mut_slice()),
                );
            }
            // all-reduce of the attention output, then the residual add
            let ctx = ReduceCtx {
                layer: l,
                site: ReduceSite::AttnOutput,
                n_tokens: t,
                pos: pos0,
                width: d,
            };
            reduce(collective, &ctx, &mut partials, &mags);
            let b0 = &self.devices[0].blocks[l];
            for (x, p) in xs.iter_mut().zip(partials.iter_mut()) {
                if let Some(bo) = &b0.bo {
                    for row in p.chunks_mut(d) {
                        add_assign(row, bo);
                    }
                }
                self.residual_add(x, p, b0.post_attn_norm.as_deref());
            }
            // MLP: each device computes its FFN columns and its slice of the down projection
            for k in 0..n_dev {
                self.mlp(
                    k,
                    l,
                    &xs[k],
                    t,
                    &mut partials[k],
                    mags.get_mut(k).map(|m| m.as_mut_slice()),
                );
            }
            // all-reduce of the MLP output, then the residual add
            let ctx = ReduceCtx {
                layer: l,
                site: ReduceSite::MlpDown,
                n_tokens: t,
                pos: pos0,
                width: d,
            };
            reduce(collective, &ctx, &mut partials, &mags);
            let post = self.devices[0].blocks[l].post_ffn_norm.as_deref();
            for (x, p) in xs.iter_mut().zip(partials.iter_mut()) {
                self.residual_add(x, p, post);
            }
        }
        s.pos += t;
        Ok(())
    }

    /// Final norm and output head on device 0's stream (the device that samples): the last
    /// pipeline stage's work. Returns logits for the rows `want` asks for.
    pub fn head(&self, h: &Hidden, want: Logits) -> Vec<f32> {
        let (cfg, t, d) = (&self.cfg, h.n_tokens, self.cfg.n_embd);
        let from = match want {
            Logits::None => return Vec::new(),
            Logits::Last => t.saturating_sub(1),
            Logits::From(f) => f.min(t),
        };
        let rows = t - from;
        let mut xn = vec![0.0f32; rows * d];
        for i in 0..rows {
            rmsnorm(
                &mut xn[i * d..(i + 1) * d],
                &h.xs[0][(from + i) * d..(from + i + 1) * d],
                &self.output_norm,
                cfg.rms_norm_eps,
            );
        }
        let head = self.output.as_ref().unwrap_or(&self.token_embd);
        let mut logits = vec![0.0f32; rows * cfg.vocab_size];
        linear(head, &xn, rows, &mut logits, &mut QActs::default());
        if let Some(c) = cfg.arch.final_logit_softcap {
            logits.iter_mut().for_each(|v| *v = c * (*v / c).tanh());
        }
        logits
    }

    /// `x += p`, or `x += rmsnorm(p)` with the post-norm's weights (Gemma 3), row by row:
    /// after the reduction, so each device normalises what it received.
    fn residual_add(&self, x: &mut [f32], p: &mut [f32], post_norm: Option<&[f32]>) {
        match post_norm {
            None => add_assign(x, p),
            Some(w) => {
                let n = rmsnorm_rows(p, w, self.cfg.rms_norm_eps);
                add_assign(x, &n);
            }
        }
    }

    /// One device's MLP for block `l`: writes its partial down projection into `out`.
    fn mlp(
        &self,
        k: usize,
        l: usize,
        x: &[f32],
        t: usize,
        out: &mut [f32],
        mags: Option<&mut [f32]>,
    ) {
        let cfg = &self.cfg;
        let dev = &self.devices[k];
        let b = &dev.blocks[l];
        let f = dev.ffn.len();
        if f == 0 {
            out.fill(0.0);
            if let Some(m) = mags {
                m.fill(0.0);
            }
            return;
        }
        let mut xq = QActs::default();
        // ffn rmsnorm
        let xn = rmsnorm_rows(x, &b.ffn_norm, cfg.rms_norm_eps);
        // gate and up matmuls (this device's FFN columns)
        let mut gate = vec![0.0f32; t * f];
        let mut up = vec![0.0f32; t * f];
        linear_many(
            &mut [(&b.w_gate, &mut gate), (&b.w_up, &mut up)],
            &xn,
            t,
            &mut xq,
        );
        // SwiGLU: silu(gate) ⊙ up, or GeGLU: gelu(gate) ⊙ up
        // (element-wise: split over the rows of a prefill, the same numbers on any thread count)
        let act = |g: &mut [f32], u: &[f32]| match cfg.arch.activation {
            Activation::Silu => {
                for (g, u) in g.iter_mut().zip(u) {
                    *g = *g / (1.0 + (-*g).exp()) * u;
                }
            }
            Activation::GeluTanh => geglu(g, u),
        };
        if t > 1 {
            use rayon::prelude::*;
            gate.par_chunks_mut(f)
                .zip(up.par_chunks(f))
                .for_each(|(g, u)| act(g, u));
        } else {
            act(&mut gate, &up);
        }
        // down projection: this device's slice of the inputs → a partial n_embd vector
        linear(&b.w_down, &gate, t, out, &mut xq);
        if let Some(m) = mags {
            linear_magnitudes(&b.w_down, &gate, &xq, t, m);
        }
    }
}

/// `gate ← gelu(gate) ⊙ up`, GELU in its tanh approximation
/// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`, written as `x · σ(2z)` = `x / (1 + e^(−2z))`
/// with the branch-free [`exp_poly`] so that the loop vectorises (libm's `tanhf` was 15 % of a
/// Gemma prefill). Relative error a few ulps (llama.cpp reads GELU from an f16 table).
fn geglu(gate: &mut [f32], up: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g;
        let z2 = 2.0 * SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x * x);
        *g = x / (1.0 + exp_poly(-z2)) * u;
    }
}

/// `e^x` for f32 without branches (vectorisable): `2^k · p(r)`, `k = round(x·log₂e)`,
/// `r = x − k·ln2` in two parts, `p` the degree-6 Taylor polynomial (|r| ≤ ln2/2: truncation
/// ≤ 2.2e-8 relative); `x` clamped to [−87, 88] (e^−87 ≈ 1.6e-38 stays normal).
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // round to nearest by the 1.5·2²³ trick (exact for |v| < 2²²)
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + MAGIC) - MAGIC;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(p.to_bits().wrapping_add(((k as i32) << 23) as u32))
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// The all-reduce of one site, with the magnitudes when the session records them.
fn reduce(
    collective: &mut dyn Collective,
    ctx: &ReduceCtx,
    partials: &mut [Vec<f32>],
    mags: &[Vec<f32>],
) {
    if mags.is_empty() {
        collective.all_reduce(ctx, partials);
    } else {
        collective.all_reduce_with_magnitudes(ctx, partials, mags);
    }
}

#[cfg(test)]
mod tests {
    use super::{exp_poly, geglu};

    /// The polynomial exp against f64 over the whole clamped range: within 4 ulps.
    #[test]
    fn exp_poly_is_within_a_few_ulps() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp_poly(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.000_37;
        }
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
    }

    /// GeGLU against the tanh formula in f64, including the saturated tails.
    #[test]
    fn geglu_matches_the_tanh_formula() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.005).collect();
        let mut g = xs.clone();
        geglu(&mut g, &vec![1.0; xs.len()]);
        for (x, got) in xs.iter().zip(&g) {
            let x = *x as f64;
            let want = 0.5
                * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
            assert!(
                (*got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "x {x}: {got} vs {want}"
            );
        }
        let mut big = vec![-100.0f32, 100.0, 0.0];
        geglu(&mut big, &[1.0, 1.0, 1.0]);
        // the tails saturate: gelu(−100) = −100·σ(−160·…) underflows to (nearly) 0
        assert!(
            big[0].abs() < 1e-30 && big[1] == 100.0 && big[2] == 0.0,
            "{big:?}"
        );
    }
}
