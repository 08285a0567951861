//! Attention: the QKV projections, RoPE, the KV cache and causal multi-head attention (GQA).

use super::ops::{linear, linear_magnitudes, linear_many, rmsnorm_rows, softmax};
use super::Model;
use crate::config::RopeStyle;
use crate::kernels::{self, QActs};
use rayon::prelude::*;

/// Query rows per block of the prefill attention.
const QUERY_BLOCK: usize = 64;

/// One device's cached keys and values of one block, each `(pos, kv_heads_k, head_dim)`
/// row-major (the device's KV heads only).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl KvCache {
    /// Append the keys and values of new positions (each `(t, kv_heads_k, head_dim)`).
    pub fn append(&mut self, keys: &[f32], values: &[f32]) {
        self.keys.extend_from_slice(keys);
        self.values.extend_from_slice(values);
    }

    /// The cached keys.
    pub fn keys(&self) -> &[f32] {
        &self.keys
    }

    /// The cached values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Forget every position, keeping the allocations.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
    }

    /// Bytes held by the cached keys and values.
    pub fn bytes(&self) -> usize {
        4 * (self.keys.len() + self.values.len())
    }
}

impl Model {
    /// One device's attention for block `l`: writes its partial output projection into `out`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attention(
        &self,
        k: usize,
        l: usize,
        x: &[f32],
        pos0: usize,
        t: usize,
        rope: &RopeTable,
        window: Option<usize>,
        cache: &mut KvCache,
        out: &mut [f32],
        mags: Option<&mut [f32]>,
    ) {
        let cfg = &self.cfg;
        let dev = &self.devices[k];
        let b = &dev.blocks[l];
        let hd = cfg.head_dim;
        let (nh, nkv) = (dev.heads.len(), dev.kv_heads.len());
        if nh == 0 {
            out.fill(0.0);
            if let Some(m) = mags {
                m.fill(0.0);
            }
            return;
        }
        let mut xq = QActs::default();
        let (q, kk, v) = self.qkv(k, l, x, t, rope, &mut xq);
        // append keys and values to this device's cache
        cache.append(&kk, &v);
        let (kc, vc) = (cache.keys(), cache.values());
        let len = pos0 + t; // cached positions

        // multi-head attention (causal) over the cache; GQA: query head h uses KV head h / group.
        // A local layer's query at position p sees positions p − window + 1 ..= p.
        let scale = cfg.attn_scale();
        let first_visible = |p: usize| window.map_or(0, |w| (p + 1).saturating_sub(w));
        let group = cfg.gqa_group();
        let mut att = vec![0.0f32; t * nh * hd]; // (T, heads_k, head_dim)
        let kv_of = |i: usize| (dev.heads.start + i) / group - dev.kv_heads.start;
        if t == 1 {
            self.attend_one(k, &q, cache, pos0, window, &mut att);
        } else {
            // per head: S = Q_h K_hᵀ (T × len), causal mask, softmax, O_h = S V_h
            let heads_out: Vec<Vec<f32>> = (0..nh)
                .into_par_iter()
                .map(|i| {
                    let kvh = kv_of(i);
                    let mut qh = vec![0.0f32; t * hd];
                    for r in 0..t {
                        qh[r * hd..(r + 1) * hd]
                            .copy_from_slice(&q[(r * nh + i) * hd..(r * nh + i + 1) * hd]);
                    }
                    let mut kh = vec![0.0f32; len * hd];
                    let mut vh = vec![0.0f32; len * hd];
                    for p in 0..len {
                        kh[p * hd..(p + 1) * hd]
                            .copy_from_slice(&kc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd]);
                        vh[p * hd..(p + 1) * hd]
                            .copy_from_slice(&vc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd]);
                    }
                    // blocks of query rows, each against only the keys its rows can see
                    // (causal, and the sliding window): about half the work of the whole
                    // T × len score matrix
                    let mut oh = vec![0.0f32; t * hd];
                    for r0 in (0..t).step_by(QUERY_BLOCK) {
                        let r1 = (r0 + QUERY_BLOCK).min(t);
                        let (k0, k1) = (first_visible(pos0 + r0), pos0 + r1);
                        let (m, n) = (r1 - r0, k1 - k0);
                        let mut sc = vec![0.0f32; m * n];
                        kernels::sgemm_abt_serial(
                            m,
                            n,
                            hd,
                            &qh[r0 * hd..r1 * hd],
                            &kh[k0 * hd..k1 * hd],
                            &mut sc,
                        );
                        for r in r0..r1 {
                            let visible = pos0 + r + 1 - k0;
                            let from = first_visible(pos0 + r) - k0;
                            let row = &mut sc[(r - r0) * n..(r - r0 + 1) * n];
                            for s in row[from..visible].iter_mut() {
                                *s *= scale;
                            }
                            softmax(&mut row[from..visible]);
                            row[..from].fill(0.0);
                            row[visible..].fill(0.0);
                        }
                        kernels::sgemm_ab(
                            m,
                            hd,
                            n,
                            &sc,
                            &vh[k0 * hd..k1 * hd],
                            &mut oh[r0 * hd..r1 * hd],
                        );
                    }
                    oh
                })
                .collect();
            for (i, oh) in heads_out.iter().enumerate() {
                for r in 0..t {
                    att[(r * nh + i) * hd..(r * nh + i + 1) * hd]
                        .copy_from_slice(&oh[r * hd..(r + 1) * hd]);
                }
            }
        }
        // output projection: this device's slice of the inputs → a partial n_embd vector
        linear(&b.wo, &att, t, out, &mut xq);
        if let Some(m) = mags {
            linear_magnitudes(&b.wo, &att, &xq, t, m);
        }
    }

    /// Device `k`'s queries, keys and values of block `l` for the `t` rows of `x`: the attention
    /// rmsnorm, the QKV matmuls (one token the mat-vec, several the GEMM), biases, the per-head
    /// Q/K norms and RoPE (row `i` at the position of `rope`'s row `i`). Each `(t, heads, hd)`.
    fn qkv(
        &self,
        k: usize,
        l: usize,
        x: &[f32],
        t: usize,
        rope: &RopeTable,
        xq: &mut QActs,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let cfg = &self.cfg;
        let dev = &self.devices[k];
        let b = &dev.blocks[l];
        let hd = cfg.head_dim;
        let (nh, nkv) = (dev.heads.len(), dev.kv_heads.len());
        // attention rmsnorm
        let xn = rmsnorm_rows(x, &b.attn_norm, cfg.rms_norm_eps);
        // qkv matmuls (this device's heads only)
        let mut q = vec![0.0f32; t * nh * hd]; // (T, heads_k, head_dim)
        let mut kk = vec![0.0f32; t * nkv * hd]; // (T, kv_k, head_dim)
        let mut v = vec![0.0f32; t * nkv * hd];
        linear_many(
            &mut [(&b.wq, &mut q), (&b.wk, &mut kk), (&b.wv, &mut v)],
            &xn,
            t,
            xq,
        );
        // biases (this device's slices)
        for (y, bias) in [(&mut q, &b.bq), (&mut kk, &b.bk), (&mut v, &b.bv)] {
            if let Some(bias) = bias {
                for row in y.chunks_mut(bias.len()) {
                    for (a, c) in row.iter_mut().zip(bias) {
                        *a += c;
                    }
                }
            }
        }
        // per-head RMSNorm of queries and keys
        for (y, w) in [(&mut q, &b.q_norm), (&mut kk, &b.k_norm)] {
            if let Some(w) = w {
                *y = rmsnorm_rows(y, w, cfg.rms_norm_eps);
            }
        }
        // RoPE on queries and keys
        let style = cfg.arch.rope;
        rope.apply(&mut q, t, nh, hd, style);
        rope.apply(&mut kk, t, nkv, hd, style);
        (q, kk, v)
    }

    /// Device `k`'s attention of one query row `q` (`heads_k × head_dim`) at position `pos`
    /// over the first `pos + 1` positions of `cache` (its own key already appended), the
    /// sliding `window` if any: adds the heads' outputs into `att` (zeroed by the caller).
    /// The decode step's attention, shared by [`Model::forward`] and the batched decode.
    fn attend_one(
        &self,
        k: usize,
        q: &[f32],
        cache: &KvCache,
        pos: usize,
        window: Option<usize>,
        att: &mut [f32],
    ) {
        let cfg = &self.cfg;
        let dev = &self.devices[k];
        let hd = cfg.head_dim;
        let (nh, nkv) = (dev.heads.len(), dev.kv_heads.len());
        let (kc, vc) = (cache.keys(), cache.values());
        let len = pos + 1;
        let scale = cfg.attn_scale();
        let group = cfg.gqa_group();
        let kv_of = |i: usize| (dev.heads.start + i) / group - dev.kv_heads.start;
        let from = window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let mut scores = vec![0.0f32; len - from];
        for i in 0..nh {
            let kvh = kv_of(i);
            let qh = &q[i * hd..(i + 1) * hd];
            for (j, sc) in scores.iter_mut().enumerate() {
                let p = from + j;
                *sc = kernels::dot_f32(qh, &kc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd])
                    * scale;
            }
            softmax(&mut scores);
            let o = &mut att[i * hd..(i + 1) * hd];
            for (j, &w) in scores.iter().enumerate() {
                let p = from + j;
                let vr = &vc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd];
                for (a, bv) in o.iter_mut().zip(vr) {
                    *a += w * bv;
                }
            }
        }
    }

    /// Single-device attention of block `l` for a batch of one-token rows `x` (`B × n_embd`),
    /// row `b` the next token of the sequence whose block-`l` cache is `caches[b]` (holding
    /// `positions[b]` positions; `rope`'s row `b` at that position): the QKV and output
    /// projections once over all rows (the GEMM path when `B > 1`), each row's key and value
    /// appended to its own cache and its query attending to that cache only. Writes the output
    /// projection (`B × n_embd`, no bias) into `out`. With `B = 1` the same arithmetic as
    /// [`Model::forward`]'s decode step.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attention_batch(
        &self,
        l: usize,
        x: &[f32],
        positions: &[usize],
        rope: &RopeTable,
        window: Option<usize>,
        caches: &mut [&mut KvCache],
        out: &mut [f32],
    ) {
        let (cfg, dev) = (&self.cfg, &self.devices[0]);
        let rows = positions.len();
        let hd = cfg.head_dim;
        let (nh, nkv) = (dev.heads.len(), dev.kv_heads.len());
        let mut xq = QActs::default();
        let (q, kk, v) = self.qkv(0, l, x, rows, rope, &mut xq);
        let kw = nkv * hd;
        for (r, c) in caches.iter_mut().enumerate() {
            c.append(&kk[r * kw..(r + 1) * kw], &v[r * kw..(r + 1) * kw]);
        }
        let qw = nh * hd;
        let mut att = vec![0.0f32; rows * qw];
        let views: Vec<&KvCache> = caches.iter().map(|c| &**c).collect();
        let one = |(r, a): (usize, &mut [f32])| {
            self.attend_one(
                0,
                &q[r * qw..(r + 1) * qw],
                views[r],
                positions[r],
                window,
                a,
            )
        };
        if rows > 1 {
            // each row alone, by the same serial code: the thread count changes nothing
            att.par_chunks_mut(qw).enumerate().for_each(one);
        } else {
            att.chunks_mut(qw).enumerate().for_each(one);
        }
        linear(&self.devices[0].blocks[l].wo, &att, rows, out, &mut xq);
    }

    /// cos/sin of positions `pos0 .. pos0 + t` at frequencies `freqs`.
    pub(super) fn rope_table(&self, freqs: &[f32], pos0: usize, t: usize) -> RopeTable {
        self.rope_rows(freqs, pos0..pos0 + t)
    }

    /// cos/sin of the given positions (one table row each) at frequencies `freqs`.
    pub(super) fn rope_rows(
        &self,
        freqs: &[f32],
        positions: impl ExactSizeIterator<Item = usize>,
    ) -> RopeTable {
        let half = freqs.len();
        let t = positions.len();
        let mut cos = vec![0.0f32; t * half];
        let mut sin = vec![0.0f32; t * half];
        for (i, pos) in positions.enumerate() {
            let p = pos as f32;
            for (j, &f) in freqs.iter().enumerate() {
                let (s, c) = (p * f).sin_cos();
                cos[i * half + j] = c;
                sin[i * half + j] = s;
            }
        }
        RopeTable { cos, sin, half }
    }
}

/// cos/sin of every (position, frequency) of one forward call.
pub(super) struct RopeTable {
    cos: Vec<f32>, // (T, head_dim/2)
    sin: Vec<f32>,
    half: usize,
}

impl RopeTable {
    /// Rotate pairs of every head by angle pos·θ_j: adjacent pairs (x[2j], x[2j+1]) (GGML
    /// "normal" RoPE, which Llama GGUFs expect: the converter permutes Q/K rows accordingly), or
    /// halves (x[j], x[j + d/2]) (NeoX: Qwen, Gemma).
    fn apply(&self, x: &mut [f32], t: usize, n_heads: usize, hd: usize, style: RopeStyle) {
        let half = hd / 2;
        for i in 0..t {
            let (c, s) = (
                &self.cos[i * self.half..(i + 1) * self.half],
                &self.sin[i * self.half..(i + 1) * self.half],
            );
            for h in 0..n_heads {
                let v = &mut x[(i * n_heads + h) * hd..(i * n_heads + h + 1) * hd];
                for j in 0..half {
                    let (ja, jb) = match style {
                        RopeStyle::Adjacent => (2 * j, 2 * j + 1),
                        RopeStyle::Neox => (j, j + half),
                    };
                    let (a, b) = (v[ja], v[jb]);
                    v[ja] = a * c[j] - b * s[j];
                    v[jb] = a * s[j] + b * c[j];
                }
            }
        }
    }
}
