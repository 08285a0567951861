//! A model whose weights are in the 5-bit, non-linear and k-quant formats loads and runs: its
//! prefill logits on the f32 path (`AIRINFER_F32_PREFILL=1`: f32 activations times the weights
//! the packed blocks dequantise to) equal, bit for bit, those of the same model written with
//! the weights already dequantised to F32 (the
//! dequantisers themselves are checked against the `gguf` Python package in `quant::tests`), on
//! one device and tensor-parallel with splits that do not fall on the k-quants' 256-value
//! blocks. (The decode mat-vec and the default prefill GEMM multiply the packed blocks with 8-bit
//! activations: checked against the files' values in `kernels::tests`, and on a real k-quant
//! model in `gemma3.rs`.) This file holds one test, so the variable it sets is read by nothing
//! else.

use airinfer_llm::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue as V};
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::quant;
use airinfer_llm::tp::IdealCollective;

mod common;
use common::Lcg;

/// Byte offsets of each format's f16 scales in a block (random bytes there could be inf/NaN).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q5_0 | GgmlType::IQ4_NL | GgmlType::IQ4_XS => &[0],
        GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => unreachable!("{ty:?}"),
    }
}

/// Random blocks of `ty` for `n` values whose values stay small (f16 scales ~1e-4).
fn random_blocks(ty: GgmlType, n: usize, r: &mut Lcg) -> Vec<u8> {
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let mut b: Vec<u8> = (0..n / bs * ts)
        .map(|_| ((r.next() + 1.0) * 127.9) as u8)
        .collect();
    for blk in b.chunks_exact_mut(ts) {
        for (i, &off) in f16_fields(ty).iter().enumerate() {
            let v = if i == 0 {
                2e-4 + 1e-4 * r.next()
            } else {
                1e-4 * r.next()
            };
            blk[off..off + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    b
}

const N_EMBD: usize = 256;
const N_FF: usize = 512;
const N_HEAD: usize = 4;
const N_HEAD_KV: usize = 2;
const VOCAB: usize = 64;

/// The same random model written twice: weights in the formats under test, and the same
/// weights dequantised, as F32.
struct Twins {
    kq: GgufWriter,
    f: GgufWriter,
}

impl Twins {
    fn matrix(&mut self, name: &str, cols: usize, rows: usize, ty: GgmlType, r: &mut Lcg) {
        let bytes = random_blocks(ty, cols * rows, r);
        let mut x = vec![0.0f32; cols * rows];
        quant::dequantize(ty, &bytes, &mut x).unwrap();
        assert!(x.iter().all(|v| v.is_finite()));
        self.kq
            .add_tensor(name, &[cols as u64, rows as u64], ty, bytes);
        self.f.add_f32(name, &[cols as u64, rows as u64], &x);
    }

    fn norm(&mut self, name: &str, r: &mut Lcg) {
        let v: Vec<f32> = (0..N_EMBD).map(|_| 1.0 + 0.2 * r.next()).collect();
        self.kq.add_f32(name, &[N_EMBD as u64], &v);
        self.f.add_f32(name, &[N_EMBD as u64], &v);
    }
}

fn twins() -> (GgufFile, GgufFile) {
    let mut r = Lcg(77);
    let mut t = Twins {
        kq: GgufWriter::new(3),
        f: GgufWriter::new(3),
    };
    for w in [&mut t.kq, &mut t.f] {
        let u = |x: usize| V::U32(x as u32);
        w.add_metadata("general.architecture", V::String("llama".into()))
            .add_metadata("llama.block_count", u(2))
            .add_metadata("llama.context_length", u(64))
            .add_metadata("llama.embedding_length", u(N_EMBD))
            .add_metadata("llama.feed_forward_length", u(N_FF))
            .add_metadata("llama.attention.head_count", u(N_HEAD))
            .add_metadata("llama.attention.head_count_kv", u(N_HEAD_KV))
            .add_metadata("llama.rope.freq_base", V::F32(10000.0))
            .add_metadata("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5));
    }
    let kv = N_HEAD_KV * N_EMBD / N_HEAD;
    t.matrix("token_embd.weight", N_EMBD, VOCAB, GgmlType::Q6_K, &mut r);
    use GgmlType::*;
    let layers = [
        [Q4_K, Q5_K, Q6_K, Q3_K, Q2_K, IQ4_XS, Q5_0],
        [Q5_1, IQ4_NL, Q4_K, Q6_K, Q5_K, Q4_K, Q6_K],
    ];
    for (l, types) in layers.iter().enumerate() {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        let shapes = [
            ("attn_q", N_EMBD, N_EMBD),
            ("attn_k", N_EMBD, kv),
            ("attn_v", N_EMBD, kv),
            ("attn_output", N_EMBD, N_EMBD),
            ("ffn_gate", N_EMBD, N_FF),
            ("ffn_up", N_EMBD, N_FF),
            ("ffn_down", N_FF, N_EMBD),
        ];
        for ((role, cols, rows), ty) in shapes.into_iter().zip(types) {
            t.matrix(&n(role), cols, rows, *ty, &mut r);
        }
        t.norm(&n("attn_norm"), &mut r);
        t.norm(&n("ffn_norm"), &mut r);
    }
    t.norm("output_norm.weight", &mut r);
    (
        GgufFile::from_bytes(t.kq.to_bytes()).unwrap(),
        GgufFile::from_bytes(t.f.to_bytes()).unwrap(),
    )
}

fn logits(m: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut s = m.new_session(64);
    m.forward(&mut s, tokens, &mut IdealCollective, Logits::From(0))
        .unwrap()
}

#[test]
fn k_quant_models_equal_their_dequantised_twins_on_one_device_and_split() {
    std::env::set_var("AIRINFER_F32_PREFILL", "1");
    let (kq, f) = twins();
    let tokens = [1u32, 7, 3, 60, 2, 9];
    for shares in [
        vec![1.0],
        vec![1.0, 1.0, 1.0],
        vec![3.0, 1.0],
        vec![1.0, 0.0, 2.0],
    ] {
        let a = Model::load_shares(&kq, &shares).unwrap();
        // the same split (the packed model's FFN slices fall on 32-value blocks)
        let b = Model::load(&f, a.plan.clone()).unwrap();
        let (la, lb) = (logits(&a, &tokens), logits(&b, &tokens));
        assert!(la.iter().all(|x| x.is_finite()));
        assert!(
            la == lb,
            "shares {shares:?}: the k-quant model's logits differ from its twin's"
        );
    }
    // and the split is really not on 256-value blocks: 3 devices over 512 FFN columns
    let tp = Model::load_shares(&kq, &[1.0, 1.0, 1.0]).unwrap();
    assert!(
        tp.plan.ffn.iter().any(|c| c.len() % 256 != 0),
        "{:?}",
        tp.plan.ffn.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
}
