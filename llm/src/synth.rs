//! Small random-weight models of every supported architecture, written as real GGUF files that
//! borrow a real tokenizer from another model file. They exist for one purpose: to be run
//! through both airinfer and llama.cpp (`scripts/arch_parity.sh`, `llm/tests/arch_parity.rs`)
//! so that each architecture's options (biases, Q/K norms, NeoX RoPE, RoPE scaling, sliding
//! windows, post-norms) and each weight type are checked against an independent engine where
//! no real model of that kind is at hand. Their outputs mean nothing; their weights are scaled
//! so that attention and the next-token distribution are peaked, which makes a perplexity
//! sensitive to any difference in the arithmetic.

use crate::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue as V};
use crate::quant;

/// One synthetic model.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// File stem, e.g. `qwen2-q8_0`.
    pub name: &'static str,
    /// `general.architecture`.
    pub arch: &'static str,
    /// Blocks.
    pub n_layer: usize,
    /// Residual width.
    pub n_embd: usize,
    /// MLP width.
    pub n_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// KV heads.
    pub n_head_kv: usize,
    /// Head width (written as `key_length` when it is not `n_embd / n_head`).
    pub head_dim: usize,
    /// Type of the matrices and the token embedding (F32, F16, Q8_0, Q4_0, Q4_1).
    pub weight_type: GgmlType,
    /// A separate output head (else tied to the embedding).
    pub untied: bool,
    /// RoPE base.
    pub rope_base: f32,
    /// Llama 3's per-frequency RoPE divisors (`rope_freqs.weight`).
    pub rope_freqs: bool,
    /// Linear RoPE scaling factor.
    pub rope_linear: Option<f32>,
    /// Q/K/V biases.
    pub qkv_bias: bool,
    /// Sliding window (Gemma 3) and the period of the global layers.
    pub sliding_window: Option<(usize, usize)>,
    /// RNG seed.
    pub seed: u64,
}

/// A plain two-block Llama of width 128 (GQA 4/2, untied head, F32) that the sets vary.
fn base() -> SynthSpec {
    SynthSpec {
        name: "",
        arch: "llama",
        n_layer: 2,
        n_embd: 128,
        n_ff: 256,
        n_head: 4,
        n_head_kv: 2,
        head_dim: 32,
        weight_type: GgmlType::F32,
        untied: true,
        rope_base: 10000.0,
        rope_freqs: false,
        rope_linear: None,
        qkv_bias: false,
        sliding_window: None,
        seed: 1,
    }
}

/// The parity set: each architecture, each option, each weight type airinfer writes.
pub fn parity_models() -> Vec<SynthSpec> {
    let base = base();
    vec![
        SynthSpec {
            name: "llama-q4_0",
            weight_type: GgmlType::Q4_0,
            ..base.clone()
        },
        SynthSpec {
            name: "llama3-rope-freqs-q8_0",
            weight_type: GgmlType::Q8_0,
            // (Llama 3's base is 5e5; at 10⁴ the divided frequencies turn visibly within the
            // 128-token chunks, so the divisors matter to the perplexity)
            rope_freqs: true,
            seed: 2,
            ..base.clone()
        },
        SynthSpec {
            name: "llama-linear-rope-f16",
            weight_type: GgmlType::F16,
            rope_linear: Some(4.0),
            seed: 3,
            ..base.clone()
        },
        SynthSpec {
            name: "qwen2-q8_0",
            arch: "qwen2",
            weight_type: GgmlType::Q8_0,
            untied: false,
            qkv_bias: true,
            seed: 4,
            ..base.clone()
        },
        SynthSpec {
            name: "qwen3-q4_1",
            arch: "qwen3",
            weight_type: GgmlType::Q4_1,
            head_dim: 64,
            seed: 5,
            ..base.clone()
        },
        SynthSpec {
            name: "gemma3-f32",
            arch: "gemma3",
            n_head_kv: 1,
            head_dim: 64,
            untied: false,
            rope_base: 1_000_000.0,
            sliding_window: Some((32, 2)),
            seed: 6,
            ..base
        },
    ]
}

/// F32 models whose every row is a whole number of 256-value k-quant blocks, for llama.cpp's
/// `llama-quantize` to turn into each k-quant and IQ type (one per RoPE style).
pub fn kquant_sources() -> Vec<SynthSpec> {
    let base = SynthSpec {
        name: "llama-kq-f32",
        n_embd: 256,
        n_ff: 512,
        head_dim: 64,
        seed: 11,
        ..base()
    };
    vec![
        base.clone(),
        SynthSpec {
            name: "qwen3-kq-f32",
            arch: "qwen3",
            seed: 12,
            ..base
        },
    ]
}

/// SplitMix64: a seeded stream of uniform values in [−1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// Encode `x` as `ty` (the types this crate quantises).
fn encode(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => quant::f32_to_f16_bytes(x),
        GgmlType::Q8_0 => quant::quantize_q8_0(x),
        GgmlType::Q4_0 => quant::quantize_q4_0(x),
        GgmlType::Q4_1 => quant::quantize_q4_1(x),
        other => {
            panic!("synthetic models are written in F32, F16, Q8_0, Q4_0 or Q4_1, not {other:?}")
        }
    }
}

/// The model `s` as a GGUF, with every `tokenizer.*` key of `tokenizer` (whose vocabulary
/// sets the embedding's size).
pub fn synth_gguf(s: &SynthSpec, tokenizer: &GgufFile) -> GgufWriter {
    let mut r = Rng(s.seed);
    let mut w = GgufWriter::new(3);
    let a = s.arch;
    let u = |x: usize| V::U32(x as u32);
    let vocab = match tokenizer.get("tokenizer.ggml.tokens") {
        Some(V::Array(t)) => t.len(),
        _ => panic!("the tokenizer source has no tokenizer.ggml.tokens"),
    };
    w.add_metadata("general.architecture", V::String(a.into()))
        .add_metadata("general.name", V::String(format!("synthetic {}", s.name)))
        .add_metadata(&format!("{a}.block_count"), u(s.n_layer))
        .add_metadata(&format!("{a}.context_length"), u(4096))
        .add_metadata(&format!("{a}.embedding_length"), u(s.n_embd))
        .add_metadata(&format!("{a}.feed_forward_length"), u(s.n_ff))
        .add_metadata(&format!("{a}.attention.head_count"), u(s.n_head))
        .add_metadata(&format!("{a}.attention.head_count_kv"), u(s.n_head_kv))
        .add_metadata(&format!("{a}.rope.freq_base"), V::F32(s.rope_base))
        .add_metadata(&format!("{a}.rope.dimension_count"), u(s.head_dim))
        .add_metadata(
            &format!("{a}.attention.layer_norm_rms_epsilon"),
            V::F32(1e-6),
        );
    if s.head_dim * s.n_head != s.n_embd {
        w.add_metadata(&format!("{a}.attention.key_length"), u(s.head_dim))
            .add_metadata(&format!("{a}.attention.value_length"), u(s.head_dim));
    }
    if let Some(f) = s.rope_linear {
        w.add_metadata(
            &format!("{a}.rope.scaling.type"),
            V::String("linear".into()),
        )
        .add_metadata(&format!("{a}.rope.scaling.factor"), V::F32(f));
    }
    if let Some((window, period)) = s.sliding_window {
        w.add_metadata(&format!("{a}.attention.sliding_window"), u(window))
            .add_metadata(&format!("{a}.attention.sliding_window_pattern"), u(period));
    }
    for (k, v) in tokenizer.metadata() {
        if k.starts_with("tokenizer.") {
            w.add_metadata(k, v.clone());
        }
    }
    let (d, ff, hd) = (s.n_embd, s.n_ff, s.head_dim);
    let (q, kv) = (s.n_head * hd, s.n_head_kv * hd);
    let ty = s.weight_type;
    // uniform weights of standard deviation 1/√fan-in (× gain): unit-scale outputs
    let mat = |w: &mut GgufWriter, r: &mut Rng, name: &str, cols: usize, rows: usize, gain: f32| {
        let x = r.vec(rows * cols, gain * (3.0 / cols as f32).sqrt());
        w.add_tensor(name, &[cols as u64, rows as u64], ty, encode(ty, &x));
    };
    let norm =
        |r: &mut Rng, n: usize| -> Vec<f32> { (0..n).map(|_| 1.0 + 0.2 * r.next()).collect() };
    // the embedding: entries of rms ≈ 0.6 (Gemma's √n_embd scale then makes the stream large,
    // which its norms undo)
    let emb = r.vec(vocab * d, 1.0);
    w.add_tensor(
        "token_embd.weight",
        &[d as u64, vocab as u64],
        ty,
        encode(ty, &emb),
    );
    if s.untied {
        // logits of standard deviation ≈ 3: a peaked next-token distribution
        mat(&mut w, &mut r, "output.weight", d, vocab, 3.0);
    }
    w.add_f32("output_norm.weight", &[d as u64], &norm(&mut r, d));
    if s.rope_freqs {
        // Llama 3's shape: 1 for the fast frequencies, rising to 8 for the slowest
        let half = hd / 2;
        let f: Vec<f32> = (0..half)
            .map(|i| 1.0 + 7.0 * i as f32 / (half - 1) as f32)
            .collect();
        w.add_f32("rope_freqs.weight", &[half as u64], &f);
    }
    for l in 0..s.n_layer {
        let n = |t: &str| format!("blk.{l}.{t}");
        w.add_f32(&n("attn_norm.weight"), &[d as u64], &norm(&mut r, d));
        // queries and keys scaled up: attention scores of a few units, a peaked softmax
        mat(&mut w, &mut r, &n("attn_q.weight"), d, q, 2.0);
        mat(&mut w, &mut r, &n("attn_k.weight"), d, kv, 2.0);
        mat(&mut w, &mut r, &n("attn_v.weight"), d, kv, 1.0);
        mat(&mut w, &mut r, &n("attn_output.weight"), q, d, 1.0);
        if s.qkv_bias {
            for (t, len) in [("attn_q.bias", q), ("attn_k.bias", kv), ("attn_v.bias", kv)] {
                w.add_f32(&n(t), &[len as u64], &r.vec(len, 0.5));
            }
        }
        if matches!(s.arch, "qwen3" | "gemma3") {
            w.add_f32(&n("attn_q_norm.weight"), &[hd as u64], &norm(&mut r, hd));
            w.add_f32(&n("attn_k_norm.weight"), &[hd as u64], &norm(&mut r, hd));
        }
        if s.arch == "gemma3" {
            w.add_f32(
                &n("post_attention_norm.weight"),
                &[d as u64],
                &norm(&mut r, d),
            );
            w.add_f32(&n("post_ffw_norm.weight"), &[d as u64], &norm(&mut r, d));
        }
        w.add_f32(&n("ffn_norm.weight"), &[d as u64], &norm(&mut r, d));
        mat(&mut w, &mut r, &n("ffn_gate.weight"), d, ff, 1.0);
        mat(&mut w, &mut r, &n("ffn_up.weight"), d, ff, 1.0);
        mat(&mut w, &mut r, &n("ffn_down.weight"), ff, d, 1.0);
    }
    w
}
