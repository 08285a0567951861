//! Llama-architecture hyper-parameters.

use serde::{Deserialize, Serialize};

/// Hyper-parameters of a Llama-architecture decoder (Llama-2/3, SmolLM2, TinyLlama, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Model name, e.g. "SmolLM2-135M".
    pub name: String,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Residual stream width (hidden size).
    pub n_embd: usize,
    /// MLP inner width (SwiGLU: gate and up are n_embd → n_ff, down is n_ff → n_embd).
    pub n_ff: usize,
    /// Number of query heads.
    pub n_head: usize,
    /// Number of key/value heads (GQA: n_head is a multiple of n_head_kv).
    pub n_head_kv: usize,
    /// Per-head width (usually n_embd / n_head).
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Training context length.
    pub context_length: usize,
    /// RoPE frequency base θ.
    pub rope_freq_base: f32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Output head shares the token-embedding matrix.
    pub tied_embeddings: bool,
}

impl LlamaConfig {
    /// Query heads per KV head.
    pub fn gqa_group(&self) -> usize {
        self.n_head / self.n_head_kv
    }
    /// Width of the K (or V) projection: n_head_kv · head_dim.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    /// Width of the Q projection: n_head · head_dim.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
}
