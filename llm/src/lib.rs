//! airinfer-llm: the language model. Reads GGUF files, tokenizes, runs the decoder forward pass
//! (Llama and its relatives: Qwen 2/3, Gemma 3) on one device or split tensor-parallel across K devices, and calls a
//! [`Collective`](tp::Collective) at every all-reduce so that a caller can put a channel there.
//!
//! This crate knows nothing of radios (see ARCHITECTURE.md's dependency rule).

pub mod config;
pub mod cost;
pub mod eval;
pub mod generate;
pub mod ggml_type;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod quant;
pub mod sampling;
pub mod synth;
pub use airinfer_spin as spin;
pub mod tokenizer;
pub mod tp;
