//! Truncated, corrupt and hostile GGUF files give errors, never panics or out-of-bounds reads.

mod common;
use airinfer_llm::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue as V};
use airinfer_llm::model::Model;
use airinfer_llm::quant;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A small valid file exercising every metadata type and three tensor types.
fn sample() -> Vec<u8> {
    let mut w = GgufWriter::new(3);
    w.add_metadata("u8", V::U8(7))
        .add_metadata("i8", V::I8(-7))
        .add_metadata("u16", V::U16(700))
        .add_metadata("i16", V::I16(-700))
        .add_metadata("u32", V::U32(70000))
        .add_metadata("i32", V::I32(-70000))
        .add_metadata("f32", V::F32(1.5))
        .add_metadata("bool", V::Bool(true))
        .add_metadata("string", V::String("héllo".into()))
        .add_metadata(
            "array",
            V::Array(vec![V::String("a".into()), V::String("bc".into())]),
        )
        .add_metadata(
            "nested",
            V::Array(vec![
                V::Array(vec![V::I32(1), V::I32(2)]),
                V::Array(vec![V::I32(3)]),
            ]),
        )
        .add_metadata("u64", V::U64(1 << 40))
        .add_metadata("i64", V::I64(-(1 << 40)))
        .add_metadata("f64", V::F64(2.25));
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    w.add_f32("a", &[64], &x);
    w.add_tensor("b", &[32, 2], GgmlType::Q4_1, quant::quantize_q4_1(&x));
    w.add_tensor("c", &[64], GgmlType::Q8_0, quant::quantize_q8_0(&x));
    w.to_bytes()
}

/// Parse and, on success, touch every tensor's bytes and dequantise it; report a panic as Err.
fn parse_all(bytes: Vec<u8>) -> Result<bool, String> {
    catch_unwind(AssertUnwindSafe(|| match GgufFile::from_bytes(bytes) {
        Ok(g) => {
            for t in g.tensors() {
                let b = g.tensor_bytes(t);
                assert_eq!(b.len() as u64, t.n_bytes());
                let _ = g.tensor_f32(&t.name);
            }
            let _ = Model::load_single(&g);
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }))
    .map_err(|_| "panicked".to_string())
}

#[test]
fn the_sample_roundtrips_every_metadata_type() {
    let g = GgufFile::from_bytes(sample()).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.get("u8"), Some(&V::U8(7)));
    assert_eq!(g.get("i16"), Some(&V::I16(-700)));
    assert_eq!(g.get_u32("u32").unwrap(), 70000);
    assert!(g.get_u32("i32").is_err(), "negative values do not fit u32");
    assert_eq!(g.get_f32("f64").unwrap(), 2.25);
    assert!(g.get_bool("bool").unwrap());
    assert_eq!(g.get_str("string").unwrap(), "héllo");
    assert_eq!(g.get_string_array("array").unwrap(), vec!["a", "bc"]);
    assert_eq!(g.get("i64"), Some(&V::I64(-(1 << 40))));
    assert!(matches!(g.get("nested"), Some(V::Array(a)) if a.len() == 2));
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    assert_eq!(g.tensor_f32("a").unwrap(), x);
    let b = g.tensor_f32("b").unwrap();
    // Q4_1 of values in [−1, 1]: half a step (max − min)/30 ≤ 1/15 ≈ 0.067, plus the f16 scale
    // and min (≤ 3·2⁻¹¹ ≈ 0.0015): 0.08 covers it
    assert!(b.iter().zip(&x).all(|(p, q)| (p - q).abs() < 0.08));
    assert!(g.get_str("missing").is_err());
    assert!(g.tensor_f32("missing").is_err());
}

#[test]
fn version_2_is_read_and_version_1_rejected() {
    let mut w = GgufWriter::new(2);
    w.add_metadata("k", V::U32(1))
        .add_f32("t", &[4], &[1.0, 2.0, 3.0, 4.0]);
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(g.version(), 2);
    let mut b = w.to_bytes();
    b[4] = 1;
    assert!(GgufFile::from_bytes(b).is_err());
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let full = sample();
    for n in 0..full.len() {
        let r = parse_all(full[..n].to_vec());
        assert_eq!(r, Ok(false), "truncated to {n} of {} bytes", full.len());
    }
    assert_eq!(parse_all(full), Ok(true));
}

#[test]
fn flipped_bytes_never_panic() {
    let full = sample();
    for i in 0..full.len() {
        for v in [0x00u8, 0xFF, 0x80, full[i] ^ 0x01] {
            let mut b = full.clone();
            b[i] = v;
            assert!(parse_all(b).is_ok(), "panic with byte {i} set to {v:#x}");
        }
    }
}

fn patch_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn absurd_counts_lengths_offsets_and_dimensions_are_errors() {
    let full = sample();
    // header: magic(4) version(4) n_tensors(8) n_kv(8)
    for v in [u64::MAX, 1 << 40, 1 << 20] {
        let mut b = full.clone();
        patch_u64(&mut b, 8, v);
        assert_eq!(parse_all(b), Ok(false), "tensor count {v}");
        let mut b = full.clone();
        patch_u64(&mut b, 16, v);
        assert_eq!(parse_all(b), Ok(false), "kv count {v}");
        // first key's length
        let mut b = full.clone();
        patch_u64(&mut b, 24, v);
        assert_eq!(parse_all(b), Ok(false), "key length {v}");
    }
    // hostile tensor infos, built with the writer
    let mk = |dims: &[u64], ty: GgmlType, data: Vec<u8>| {
        let mut w = GgufWriter::new(3);
        w.add_tensor("t", dims, ty, data);
        w.to_bytes()
    };
    assert_eq!(
        parse_all(mk(&[u64::MAX, 2], GgmlType::F32, vec![0; 8])),
        Ok(false),
        "overflowing dims"
    );
    assert_eq!(
        parse_all(mk(&[1 << 40], GgmlType::F32, vec![0; 8])),
        Ok(false),
        "data past the end"
    );
    assert_eq!(
        parse_all(mk(&[33], GgmlType::Q8_0, vec![0; 34])),
        Ok(false),
        "row not a block multiple"
    );
    assert_eq!(
        parse_all(mk(&[0], GgmlType::F32, vec![])),
        Ok(false),
        "no elements"
    );
    assert_eq!(
        parse_all(mk(&[1, 1, 1, 1, 1], GgmlType::F32, vec![0; 4])),
        Ok(false),
        "5 dims"
    );
    // an unknown type id, a misaligned and an overlapping offset: patch the tensor info
    let b = mk(&[8], GgmlType::F32, vec![0; 32]);
    // tensor info starts at 24: name len(8) "t"(1) n_dims(4) dim(8) type(4) offset(8)
    let ty_at = 24 + 8 + 1 + 4 + 8;
    let mut x = b.clone();
    x[ty_at..ty_at + 4].copy_from_slice(&99u32.to_le_bytes());
    assert_eq!(parse_all(x), Ok(false), "unknown type");
    let mut x = b.clone();
    patch_u64(&mut x, ty_at + 4, 3);
    assert_eq!(parse_all(x), Ok(false), "misaligned offset");
    // an aligned offset whose sum with the data start overflows 64 bits (found by the fuzzer:
    // an overflow panic with checks on; wrapped, the span looked inside the file)
    let mut x = b.clone();
    patch_u64(&mut x, ty_at + 4, u64::MAX - 63);
    assert_eq!(parse_all(x), Ok(false), "offset past 2^64");
    let mut w = GgufWriter::new(3);
    w.add_f32("a", &[8], &[0.0; 8])
        .add_f32("b", &[8], &[0.0; 8]);
    let mut x = w.to_bytes();
    // second tensor info's offset → 0 (overlaps the first)
    let second = 24 + (8 + 1 + 4 + 8 + 4 + 8);
    patch_u64(&mut x, second + 8 + 1 + 4 + 8 + 4, 0);
    assert_eq!(parse_all(x), Ok(false), "overlapping tensors");
    // duplicate keys and names
    let mut w = GgufWriter::new(3);
    w.add_metadata("k", V::U8(1)).add_metadata("k", V::U8(2));
    assert_eq!(parse_all(w.to_bytes()), Ok(false), "duplicate key");
    let mut w = GgufWriter::new(3);
    w.add_f32("a", &[8], &[0.0; 8])
        .add_f32("a", &[8], &[0.0; 8]);
    assert_eq!(parse_all(w.to_bytes()), Ok(false), "duplicate tensor");
    // deeply nested arrays
    let mut v = V::U8(0);
    for _ in 0..20 {
        v = V::Array(vec![v]);
    }
    let mut w = GgufWriter::new(3);
    w.add_metadata("deep", v);
    assert_eq!(parse_all(w.to_bytes()), Ok(false), "deep nesting");
}

#[test]
fn model_loading_rejects_inconsistent_models() {
    use common::{tiny_gguf, Tiny};
    let t = Tiny::default();
    let g = tiny_gguf(&t, 1);
    assert!(Model::load_single(&g).is_ok());
    assert!(Model::load_shares(&g, &[]).is_err());
    assert!(Model::load_shares(&g, &[1.0, -1.0]).is_err());
    assert!(Model::load_shares(&g, &[0.0, 0.0]).is_err());
    assert!(Model::load_shares(&g, &[f64::NAN]).is_err());
    // a model whose metadata says 3 layers but holds 2
    let mut w = GgufWriter::new(3);
    for (k, v) in g.metadata() {
        let v = if k == "llama.block_count" {
            V::U32(3)
        } else {
            v.clone()
        };
        w.add_metadata(k, v);
    }
    for ti in g.tensors() {
        w.add_tensor(
            &ti.name,
            &ti.dims,
            ti.ggml_type,
            g.tensor_bytes(ti).to_vec(),
        );
    }
    let g3 = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let e = Model::load_single(&g3).unwrap_err().to_string();
    assert!(e.contains("blk.2"), "{e}");
}

/// `g` with metadata `key` set to `v` (tensors unchanged).
fn with_meta(g: &GgufFile, key: &str, v: V) -> GgufFile {
    let mut w = GgufWriter::new(3);
    for (k, x) in g.metadata() {
        w.add_metadata(k, if k == key { v.clone() } else { x.clone() });
    }
    for ti in g.tensors() {
        w.add_tensor(
            &ti.name,
            &ti.dims,
            ti.ggml_type,
            g.tensor_bytes(ti).to_vec(),
        );
    }
    GgufFile::from_bytes(w.to_bytes()).unwrap()
}

#[test]
fn sizes_in_the_metadata_are_bounded_by_the_tensors_before_allocation() {
    use common::{tiny_gguf, Tiny};
    let g = tiny_gguf(&Tiny::default(), 1);
    // 4e9 blocks over a file of 2: a clear error instead of allocating terabytes per layer
    for (key, v, want) in [
        (
            "llama.block_count",
            V::U32(4_000_000_000),
            "'llama.block_count': 4000000000 blocks, but the file holds tensors of only 2: blk.2 is missing",
        ),
        ("llama.block_count", V::U32(3), "blk.2 is missing"),
        (
            "llama.attention.head_count",
            V::U32(4_000_000_000),
            "not a multiple of the head count 4000000000",
        ),
        (
            "llama.attention.head_count_kv",
            V::U32(4_000_000_000),
            "not a multiple of 4000000000 KV heads",
        ),
        ("llama.embedding_length", V::U32(4_000_000_000), "token_embd.weight"),
        ("llama.feed_forward_length", V::U32(4_000_000_000), "ffn_gate"),
    ] {
        let e = Model::load_single(&with_meta(&g, key, v))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{key}: {e}");
    }
    // a huge context is only a limit: nothing is allocated for it
    let m = Model::load_single(&with_meta(&g, "llama.context_length", V::U32(u32::MAX))).unwrap();
    assert_eq!(m.cfg.context_length, u32::MAX as usize);
}

/// Writes the fuzzer's seed corpus (`fuzz/seeds/`): `cargo test -p airinfer-llm --test
/// gguf_corrupt -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    use common::{tiny_gguf, Tiny};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sample.gguf"), sample()).unwrap();
    let t = Tiny {
        n_layer: 1,
        n_embd: 64,
        n_ff: 64,
        n_head: 2,
        n_head_kv: 1,
        vocab: 8,
        tied: true,
    };
    let g = tiny_gguf(&t, 1);
    let mut w = GgufWriter::new(3);
    for (k, v) in g.metadata() {
        w.add_metadata(k, v.clone());
    }
    w.add_metadata("tokenizer.ggml.model", V::String("gpt2".into()))
        .add_metadata("tokenizer.ggml.pre", V::String("smollm".into()))
        .add_metadata(
            "tokenizer.ggml.tokens",
            V::Array(
                ["a", "b", "ab", "Ġ", "<|im_end|>", "c", "d", "e"]
                    .iter()
                    .map(|s| V::String(s.to_string()))
                    .collect(),
            ),
        )
        .add_metadata(
            "tokenizer.ggml.token_type",
            V::Array(
                [1, 1, 1, 1, 3, 1, 1, 1]
                    .iter()
                    .map(|&i| V::I32(i))
                    .collect(),
            ),
        )
        .add_metadata(
            "tokenizer.ggml.merges",
            V::Array(vec![V::String("a b".into())]),
        )
        .add_metadata("tokenizer.ggml.eos_token_id", V::U32(4));
    for ti in g.tensors() {
        w.add_tensor(
            &ti.name,
            &ti.dims,
            ti.ggml_type,
            g.tensor_bytes(ti).to_vec(),
        );
    }
    std::fs::write(dir.join("tiny_llama.gguf"), w.to_bytes()).unwrap();
    let mut w2 = GgufWriter::new(2);
    w2.add_metadata("general.alignment", V::U32(64))
        .add_f32("x", &[3, 2], &[1.0; 6]);
    std::fs::write(dir.join("v2_align64.gguf"), w2.to_bytes()).unwrap();
}
