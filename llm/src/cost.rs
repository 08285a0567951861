//! Analytic cost of a Llama forward pass: FLOPs, weight bytes, KV-cache bytes and all-reduce
//! payload, per block and per tensor-parallel shard, for prefill and decode. Works for models too
//! large to run here (presets for Llama-2/3, SmolLM2, TinyLlama).
//!
//! Conventions: one multiply-add = 2 FLOPs; a matrix of `r × c` applied to T tokens costs
//! `2·T·r·c` FLOPs and is read once (`r·c·bits/8` bytes) per call; attention of one query over
//! `L` cached positions costs `2·L·head_dim` for QKᵀ plus `2·L·head_dim` for the weighted sum of V
//! per head; element-wise work (norms, RoPE, softmax, SwiGLU) is ignored (< 1 % for these models).

use crate::config::LlamaConfig;
use crate::tp::TpPlan;

/// Storage format of the weights, as bits per weight including block scales.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum WeightFormat {
    /// 32 bits.
    F32,
    /// 16 bits (F16 or BF16).
    F16,
    /// GGML Q8_0: 34 bytes per 32 weights = 8.5 bits.
    Q8_0,
    /// GGML Q4_0: 18 bytes per 32 weights = 4.5 bits.
    Q4_0,
    /// GGML Q4_1: 20 bytes per 32 weights = 5 bits.
    Q4_1,
    /// Any other format, in bits per weight.
    Bits(f64),
}

impl WeightFormat {
    /// Bits per weight including scales.
    pub fn bits(self) -> f64 {
        match self {
            WeightFormat::F32 => 32.0,
            WeightFormat::F16 => 16.0,
            WeightFormat::Q8_0 => 8.5,
            WeightFormat::Q4_0 => 4.5,
            WeightFormat::Q4_1 => 5.0,
            WeightFormat::Bits(b) => b,
        }
    }
}

/// What one device computes of a block: its query heads, KV heads and FFN columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shard {
    /// Query heads held.
    pub q_heads: usize,
    /// KV heads held (those of its query heads).
    pub kv_heads: usize,
    /// FFN columns held.
    pub ffn_cols: usize,
}

impl Shard {
    /// The whole block (one device).
    pub fn full(cfg: &LlamaConfig) -> Shard {
        Shard {
            q_heads: cfg.n_head,
            kv_heads: cfg.n_head_kv,
            ffn_cols: cfg.n_ff,
        }
    }

    /// Device `k`'s shard under `plan`.
    pub fn of_plan(plan: &TpPlan, k: usize) -> Shard {
        Shard {
            q_heads: plan.heads[k].len(),
            kv_heads: plan.kv_heads(k).len(),
            ffn_cols: plan.ffn[k].len(),
        }
    }

    /// Weights of this shard of one block: Q (d·h·hd), K and V (d·h_kv·hd each), O (h·hd·d),
    /// gate and up (d·f each), down (f·d). Norm weights are replicated and not counted.
    pub fn matrix_weights(&self, cfg: &LlamaConfig) -> u64 {
        let (d, hd) = (cfg.n_embd as u64, cfg.head_dim as u64);
        let (h, hkv, f) = (
            self.q_heads as u64,
            self.kv_heads as u64,
            self.ffn_cols as u64,
        );
        2 * d * h * hd + 2 * d * hkv * hd + 3 * d * f
    }
}

/// Cost of one block on one device for one forward call.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct BlockCost {
    /// Floating-point operations.
    pub flops: f64,
    /// Weight bytes read.
    pub weight_bytes: f64,
    /// KV-cache bytes read (attention over the cached positions).
    pub kv_read_bytes: f64,
    /// KV-cache bytes written (the new positions).
    pub kv_write_bytes: f64,
    /// Values all-reduced by this block (2 sites × n_embd per token), whatever the device count.
    pub allreduce_values: f64,
}

/// Cost of block work for `tokens` new positions after `past` cached ones (decode: tokens = 1).
/// `kv_bytes_per_value`: 4 for an f32 cache (airinfer), 2 for f16 (llama.cpp's default).
pub fn block_cost(
    cfg: &LlamaConfig,
    shard: &Shard,
    tokens: usize,
    past: usize,
    w: WeightFormat,
    kv_bytes_per_value: f64,
) -> BlockCost {
    let t = tokens as f64;
    let hd = cfg.head_dim as f64;
    let mats = shard.matrix_weights(cfg) as f64;
    // attended positions summed over the new tokens: Σ_{i=1..T} (past + i)
    let attended = t * past as f64 + t * (t + 1.0) / 2.0;
    let attn_flops = 4.0 * shard.q_heads as f64 * hd * attended;
    let kv_width = 2.0 * shard.kv_heads as f64 * hd; // K and V values per position
    BlockCost {
        flops: 2.0 * t * mats + attn_flops,
        weight_bytes: mats * w.bits() / 8.0,
        // each new token reads the whole cache so far (the GEMM path reads it once per call;
        // this is the decode-style upper bound)
        kv_read_bytes: kv_width
            * kv_bytes_per_value
            * if tokens == 1 {
                (past + 1) as f64
            } else {
                (past + tokens) as f64
            },
        kv_write_bytes: kv_width * kv_bytes_per_value * t,
        allreduce_values: 2.0 * cfg.n_embd as f64 * t,
    }
}

/// Cost of the output head for `rows` positions that need logits (1 when generating, all
/// scored positions for perplexity): `2·rows·vocab·d` FLOPs, the head matrix read once.
pub fn head_cost(cfg: &LlamaConfig, rows: usize, w: WeightFormat) -> BlockCost {
    let (v, d) = (cfg.vocab_size as f64, cfg.n_embd as f64);
    BlockCost {
        flops: 2.0 * rows as f64 * v * d,
        weight_bytes: v * d * w.bits() / 8.0,
        ..Default::default()
    }
}

/// Parameter count: embedding, output head (unless tied), per block the matrices and two norm
/// vectors, and the final norm.
pub fn param_count(cfg: &LlamaConfig) -> u64 {
    let (v, d) = (cfg.vocab_size as u64, cfg.n_embd as u64);
    let emb = v * d * if cfg.tied_embeddings { 1 } else { 2 };
    let block = Shard::full(cfg).matrix_weights(cfg) + 2 * d;
    emb + cfg.n_layer as u64 * block + d
}

#[allow(clippy::too_many_arguments)]
/// Whole-model cost of one forward call on one device holding `shard` of every block
/// (embedding lookups ignored; head on this device when `logits_rows > 0`).
pub fn forward_cost(
    cfg: &LlamaConfig,
    shard: &Shard,
    tokens: usize,
    past: usize,
    logits_rows: usize,
    w: WeightFormat,
    head: WeightFormat,
    kv_bytes_per_value: f64,
) -> BlockCost {
    let b = block_cost(cfg, shard, tokens, past, w, kv_bytes_per_value);
    let n = cfg.n_layer as f64;
    let mut c = BlockCost {
        flops: b.flops * n,
        weight_bytes: b.weight_bytes * n,
        kv_read_bytes: b.kv_read_bytes * n,
        kv_write_bytes: b.kv_write_bytes * n,
        allreduce_values: b.allreduce_values * n,
    };
    if logits_rows > 0 {
        let h = head_cost(cfg, logits_rows, head);
        c.flops += h.flops;
        c.weight_bytes += h.weight_bytes;
    }
    c
}

/// Published configurations (Hugging Face `config.json` of each model).
pub mod presets {
    use crate::config::LlamaConfig;

    #[allow(clippy::too_many_arguments)]
    fn cfg(
        name: &str,
        n_layer: usize,
        n_embd: usize,
        n_ff: usize,
        n_head: usize,
        n_head_kv: usize,
        vocab: usize,
        ctx: usize,
        rope: f32,
        eps: f32,
        tied: bool,
    ) -> LlamaConfig {
        LlamaConfig {
            name: name.into(),
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim: n_embd / n_head,
            vocab_size: vocab,
            context_length: ctx,
            rope_freq_base: rope,
            rms_norm_eps: eps,
            tied_embeddings: tied,
            arch: Default::default(),
        }
    }

    /// meta-llama/Llama-2-7b-hf.
    pub fn llama2_7b() -> LlamaConfig {
        cfg(
            "Llama-2-7B",
            32,
            4096,
            11008,
            32,
            32,
            32000,
            4096,
            10000.0,
            1e-5,
            false,
        )
    }
    /// meta-llama/Llama-2-13b-hf.
    pub fn llama2_13b() -> LlamaConfig {
        cfg(
            "Llama-2-13B",
            40,
            5120,
            13824,
            40,
            40,
            32000,
            4096,
            10000.0,
            1e-5,
            false,
        )
    }
    /// meta-llama/Llama-2-70b-hf (GQA, 8 KV heads).
    pub fn llama2_70b() -> LlamaConfig {
        cfg(
            "Llama-2-70B",
            80,
            8192,
            28672,
            64,
            8,
            32000,
            4096,
            10000.0,
            1e-5,
            false,
        )
    }
    /// meta-llama/Meta-Llama-3-8B.
    pub fn llama3_8b() -> LlamaConfig {
        cfg(
            "Llama-3-8B",
            32,
            4096,
            14336,
            32,
            8,
            128256,
            8192,
            500000.0,
            1e-5,
            false,
        )
    }
    /// meta-llama/Meta-Llama-3-70B.
    pub fn llama3_70b() -> LlamaConfig {
        cfg(
            "Llama-3-70B",
            80,
            8192,
            28672,
            64,
            8,
            128256,
            8192,
            500000.0,
            1e-5,
            false,
        )
    }
    /// HuggingFaceTB/SmolLM2-135M.
    pub fn smollm2_135m() -> LlamaConfig {
        cfg(
            "SmolLM2-135M",
            30,
            576,
            1536,
            9,
            3,
            49152,
            8192,
            100000.0,
            1e-5,
            true,
        )
    }
    /// HuggingFaceTB/SmolLM2-360M.
    pub fn smollm2_360m() -> LlamaConfig {
        cfg(
            "SmolLM2-360M",
            32,
            960,
            2560,
            15,
            5,
            49152,
            8192,
            100000.0,
            1e-5,
            true,
        )
    }
    /// HuggingFaceTB/SmolLM2-1.7B.
    pub fn smollm2_1_7b() -> LlamaConfig {
        cfg(
            "SmolLM2-1.7B",
            24,
            2048,
            8192,
            32,
            32,
            49152,
            8192,
            130000.0,
            1e-5,
            true,
        )
    }
    /// TinyLlama/TinyLlama-1.1B-Chat-v1.0.
    pub fn tinyllama_1_1b() -> LlamaConfig {
        cfg(
            "TinyLlama-1.1B",
            22,
            2048,
            5632,
            32,
            4,
            32000,
            2048,
            10000.0,
            1e-5,
            false,
        )
    }

    /// Every preset with the names users type.
    pub fn all() -> Vec<(&'static str, LlamaConfig)> {
        vec![
            ("llama2-7b", llama2_7b()),
            ("llama2-13b", llama2_13b()),
            ("llama2-70b", llama2_70b()),
            ("llama3-8b", llama3_8b()),
            ("llama3-70b", llama3_70b()),
            ("smollm2-135m", smollm2_135m()),
            ("smollm2-360m", smollm2_360m()),
            ("smollm2-1.7b", smollm2_1_7b()),
            ("tinyllama-1.1b", tinyllama_1_1b()),
        ]
    }

    /// A preset by name (case-insensitive).
    pub fn by_name(name: &str) -> Option<LlamaConfig> {
        let n = name.to_ascii_lowercase();
        all().into_iter().find(|(k, _)| *k == n).map(|(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_parameter_counts() {
        // Llama-2-7B: 6.74 B (Touvron et al. 2023, Table 1 rounds to 7B; HF reports 6,738,415,616)
        assert_eq!(param_count(&presets::llama2_7b()), 6_738_415_616);
        // Llama-2-13B: 13,015,864,320; Llama-2-70B: 68,976,648,192 (Hugging Face model cards)
        assert_eq!(param_count(&presets::llama2_13b()), 13_015_864_320);
        assert_eq!(param_count(&presets::llama2_70b()), 68_976_648_192);
        // Llama-3-8B: 8,030,261,248; TinyLlama: 1,100,048,384
        assert_eq!(param_count(&presets::llama3_8b()), 8_030_261_248);
        assert_eq!(param_count(&presets::tinyllama_1_1b()), 1_100_048_384);
    }

    #[test]
    fn hand_count_of_a_tiny_config() {
        // d = 8, ff = 16, 2 heads of 4, 1 KV head, vocab 10, 1 layer, tied
        let mut c = presets::smollm2_135m();
        c.n_layer = 1;
        c.n_embd = 8;
        c.n_ff = 16;
        c.n_head = 2;
        c.n_head_kv = 1;
        c.head_dim = 4;
        c.vocab_size = 10;
        // embedding 80; q 64, k 32, v 32, o 64, gate 128, up 128, down 128; norms 8+8; final 8
        assert_eq!(param_count(&c), 80 + 64 + 32 + 32 + 64 + 3 * 128 + 16 + 8);
        // decode at past = 0: 2 FLOPs per matrix weight + attention 4·2 heads·4·1
        let b = block_cost(&c, &Shard::full(&c), 1, 0, WeightFormat::F32, 4.0);
        assert_eq!(
            b.flops,
            2.0 * (64 + 32 + 32 + 64 + 3 * 128) as f64 + 4.0 * 2.0 * 4.0
        );
        assert_eq!(b.weight_bytes, 4.0 * (64 + 32 + 32 + 64 + 3 * 128) as f64);
        assert_eq!(b.allreduce_values, 16.0);
    }

    #[test]
    fn decode_flops_are_about_twice_the_parameters() {
        for (name, c) in presets::all() {
            let f = forward_cost(
                &c,
                &Shard::full(&c),
                1,
                16,
                1,
                WeightFormat::Q4_1,
                WeightFormat::Q8_0,
                2.0,
            );
            let p = param_count(&c) as f64;
            // embedding lookup costs nothing; with a tied head it is counted once as head
            let ratio = f.flops / (2.0 * p);
            // an untied input embedding is parameters without FLOPs (≤ 6.5 % of the parameters
            // of these presets) and attention over 16 positions adds a little: a structural
            // range, not a rounding tolerance
            assert!((0.85..1.05).contains(&ratio), "{name}: {ratio}");
        }
    }

    #[test]
    fn shards_sum_to_the_whole() {
        let c = presets::llama2_70b();
        let plan = TpPlan::from_shares(&c, &[3.0, 1.0, 2.0, 0.5], 32).unwrap();
        let whole = block_cost(&c, &Shard::full(&c), 7, 100, WeightFormat::Q4_0, 2.0);
        let mut flops = 0.0;
        let mut bytes = 0.0;
        for k in 0..4 {
            let b = block_cost(
                &c,
                &Shard::of_plan(&plan, k),
                7,
                100,
                WeightFormat::Q4_0,
                2.0,
            );
            flops += b.flops;
            bytes += b.weight_bytes;
        }
        // query heads and FFN columns split exactly; KV heads shared by split groups are
        // computed twice, so the shards can only cost more: 3 boundaries duplicate at most 3 of
        // the 8 KV heads, 3/8 of the K/V projections ≈ 0.7 % of a block, under the 2 %
        assert!(flops >= whole.flops && flops < whole.flops * 1.02);
        assert!(bytes >= whole.weight_bytes && bytes < whole.weight_bytes * 1.02);
    }
}
