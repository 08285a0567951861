//! Every supported architecture against llama.cpp, on small synthetic models
//! (`airinfer_llm::synth::parity_models`: random weights, SmolLM2's tokenizer, each
//! architecture's options and each weight type airinfer writes). The fixture
//! `data/ppl_llamacpp_synth.json` holds llama.cpp's perplexity of each file on the Lee corpus
//! and the file's SHA-256 (`scripts/arch_parity.sh` writes both); the test rebuilds each file,
//! checks it is the same file, and compares. It then checks that the comparison can fail (the
//! same weights read without the architecture's options are far off), that tensor parallelism
//! equals one device, and that decoding continues what prefill computes.
//!
//! Needs the cached SmolLM2 model (its tokenizer) and the Lee corpus, like `smollm2.rs`.

mod common;
use airinfer_llm::eval::{perplexity, PplMode, PplOptions};
use airinfer_llm::gguf::{GgufFile, GgufWriter, MetadataValue};
use airinfer_llm::model::Model;
use airinfer_llm::synth::{parity_models, synth_gguf, SynthSpec};
use airinfer_llm::tokenizer::Tokenizer;
use airinfer_llm::tp::IdealCollective;
use sha2::{Digest, Sha256};

fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("data/ppl_llamacpp_synth.json")).unwrap()
}

fn tokenizer_source() -> Option<GgufFile> {
    common::cached_model("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m")
}

/// Perplexity on the Lee corpus under llama.cpp's protocol.
fn ppl(g: &GgufFile, text: &str, ctx: usize, chunks: usize) -> f64 {
    let tok = Tokenizer::from_gguf(g).unwrap();
    let ids = tok.encode(text, true, false);
    let model = Model::load_single(g).unwrap();
    let opts = PplOptions {
        ctx,
        max_chunks: Some(chunks),
        mode: PplMode::LlamaCpp,
        bos: if tok.add_bos() { tok.bos_id() } else { None },
    };
    perplexity(&model, &ids, &opts, &mut IdealCollective, &mut |_, _| {})
        .unwrap()
        .perplexity
}

/// `g` rewritten: metadata entries changed or dropped by `meta`, tensors kept where `keep`.
fn rewrite(
    g: &GgufFile,
    meta: impl Fn(&str, &MetadataValue) -> Option<(String, MetadataValue)>,
    keep: impl Fn(&str) -> bool,
) -> GgufFile {
    let mut w = GgufWriter::new(3);
    for (k, v) in g.metadata() {
        if let Some((k, v)) = meta(k, v) {
            w.add_metadata(&k, v);
        }
    }
    for t in g.tensors() {
        if keep(&t.name) {
            w.add_tensor(&t.name, &t.dims, t.ggml_type, g.tensor_bytes(t).to_vec());
        }
    }
    GgufFile::from_bytes(w.to_bytes()).unwrap()
}

/// The same weights without what makes `s` more than a plain Llama: another architecture read
/// as `llama` (adjacent RoPE, no Q/K norms, no post-norms, no embedding scale, no window), the
/// RoPE divisors or scaling dropped.
fn without_options(s: &SynthSpec, g: &GgufFile) -> Option<GgufFile> {
    let same = |k: &str, v: &MetadataValue| Some((k.to_string(), v.clone()));
    if s.arch != "llama" {
        let prefix = format!("{}.", s.arch);
        return Some(rewrite(
            g,
            |k, v| match (k, k.strip_prefix(&prefix)) {
                ("general.architecture", _) => {
                    Some((k.into(), MetadataValue::String("llama".into())))
                }
                (_, Some(rest)) => Some((format!("llama.{rest}"), v.clone())),
                _ => same(k, v),
            },
            |_| true,
        ));
    }
    if s.rope_freqs {
        return Some(rewrite(g, same, |t| t != "rope_freqs.weight"));
    }
    if s.rope_linear.is_some() {
        return Some(rewrite(
            g,
            |k, v| {
                if k.contains("rope.scaling") {
                    None
                } else {
                    same(k, v)
                }
            },
            |_| true,
        ));
    }
    None
}

#[test]
fn synthetic_models_match_llama_cpp() {
    let Some(tok) = tokenizer_source() else {
        return;
    };
    let Some(text) = common::lee_text() else {
        return;
    };
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    let specs = parity_models();
    assert_eq!(
        cases.len(),
        specs.len(),
        "regenerate the fixture: scripts/arch_parity.sh"
    );
    for (s, case) in specs.iter().zip(cases) {
        assert_eq!(case["name"].as_str().unwrap(), s.name);
        let bytes = synth_gguf(s, &tok).to_bytes();
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sha,
            case["sha256"].as_str().unwrap(),
            "{}: not the file llama.cpp ran (regenerate the fixture: scripts/arch_parity.sh)",
            s.name
        );
        let g = GgufFile::from_bytes(bytes).unwrap();
        let (ctx, chunks) = (
            case["ctx"].as_u64().unwrap() as usize,
            case["chunks"].as_u64().unwrap() as usize,
        );
        let want = case["ppl"].as_f64().unwrap();
        let got = ppl(&g, &text, ctx, chunks);
        // Within 1 %: llama.cpp quantises activations per 256 values (Q8_K) for k-quant
        // weights where ours are per 32, and keeps its KV cache in f16. At these perplexities (mean NLL
        // ≈ 15 nats) 1 % is 0.01 nats per token.
        let rel = got / want - 1.0;
        eprintln!(
            "{}: {got:.6e} vs llama.cpp {want:.6e} ({:+.3} %)",
            s.name,
            100.0 * rel
        );
        assert!(rel.abs() < 0.01, "{}: {got} vs llama.cpp {want}", s.name);
        // the comparison can fail: without the architecture's options, far off
        if let Some(plain) = without_options(s, &g) {
            let off = ppl(&plain, &text, ctx, chunks) / want - 1.0;
            eprintln!("{} without its options: {:+.1} %", s.name, 100.0 * off);
            // (three times the tolerance: the plain reading would fail the check above)
            assert!(
                off.abs() > 0.03,
                "{}: options make no difference ({off})",
                s.name
            );
        }
    }
}

/// TP = one device (the lock-step argument of `common`), decode = prefill, and a pipeline of
/// layer ranges = the whole forward pass, on every architecture: Qwen 2's biases sliced with
/// their heads, Gemma 3's one KV head on every device, its post-norms on the reduced sums, its
/// sliding window (32) crossed while decoding, its local layers' RoPE in a later stage.
#[test]
fn synthetic_models_split_and_decode_consistently() {
    let Some(tok) = tokenizer_source() else {
        return;
    };
    for s in parity_models() {
        eprintln!("{}", s.name);
        let g = GgufFile::from_bytes(synth_gguf(&s, &tok).to_bytes()).unwrap();
        common::assert_tp_equals_single_device(&g, &[vec![1.0, 1.0], vec![0.5, 0.0, 2.0]]);
        common::assert_decode_agrees_with_prefill(
            &g,
            "Over-the-air computation sums the partial activations of every device at once.",
            28,
        );
        assert_pipeline_equals_forward(&g);
    }
}

/// Stages of one block each (their own sessions, as pipeline stages hold their KV caches), a
/// prefill then two decode steps: the logits bit for bit those of the whole forward pass.
fn assert_pipeline_equals_forward(g: &GgufFile) {
    use airinfer_llm::model::Logits;
    let model = Model::load_single(g).unwrap();
    let n = model.cfg.n_layer;
    let steps: [&[u32]; 3] = [&[1, 17, 400, 9, 33, 2048, 5], &[77], &[3000]];
    let mut whole = model.new_session(16);
    let mut stages: Vec<_> = (0..n).map(|_| model.new_session(16)).collect();
    for tokens in steps {
        let want = model
            .forward(&mut whole, tokens, &mut IdealCollective, Logits::From(0))
            .unwrap();
        let mut h = model.embed(stages[0].pos, tokens).unwrap();
        for (l, s) in stages.iter_mut().enumerate() {
            model
                .run_layers(s, &mut h, l..l + 1, &mut IdealCollective)
                .unwrap();
        }
        let got = model.head(&h, Logits::From(0));
        assert!(
            got == want,
            "{}: pipeline stages differ from the whole forward pass",
            model.cfg.name
        );
    }
}

/// The quantisers write what llama.cpp's `llama-quantize --pure` writes (ggml's reference
/// rules, no importance matrix) for the same f32 weights, byte for byte
/// (`data/quantize_llamacpp.json`: the SHA-256 of llama.cpp's tensor bytes per type).
#[test]
fn quantisers_write_what_llama_quantize_writes() {
    use airinfer_llm::gguf::GgmlType;
    use airinfer_llm::synth::kquant_sources;
    let Some(tok) = tokenizer_source() else {
        return;
    };
    let fx: serde_json::Value =
        serde_json::from_str(include_str!("data/quantize_llamacpp.json")).unwrap();
    let g = GgufFile::from_bytes(synth_gguf(&kquant_sources()[0], &tok).to_bytes()).unwrap();
    let name = fx["tensor"].as_str().unwrap();
    let x = g.tensor_f32(name).unwrap();
    for (ty, want) in fx["sha256"].as_object().unwrap() {
        let t = match ty.as_str() {
            "Q5_0" => GgmlType::Q5_0,
            "Q5_1" => GgmlType::Q5_1,
            "IQ4_NL" => GgmlType::IQ4_NL,
            "IQ4_XS" => GgmlType::IQ4_XS,
            "Q2_K" => GgmlType::Q2_K,
            "Q3_K" => GgmlType::Q3_K,
            "Q4_K" => GgmlType::Q4_K,
            "Q5_K" => GgmlType::Q5_K,
            "Q6_K" => GgmlType::Q6_K,
            other => panic!("{other}"),
        };
        let bytes = airinfer_llm::quant::quantize(t, &x).unwrap();
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            &sha,
            want.as_str().unwrap(),
            "{ty}: not llama-quantize's bytes"
        );
    }
}

/// The Qwen 2 and Llama 3 pre-tokenizers (regexes as llama.cpp's `llama-vocab.cpp`) equal
/// `llama-tokenize` on the SmolLM2 fixture strings, run on a synthetic model whose
/// `tokenizer.ggml.pre` names them (`examples/gguf_set_pre`; fixtures
/// `data/tok_llamacpp_pre_*.json`). They split differently from SmolLM2's own pre-tokenizer on
/// some of the strings, so the check sees the regex.
#[test]
fn qwen2_and_llama3_pre_tokenizers_match_llama_cpp() {
    use airinfer_llm::synth::parity_models;
    let Some(tok) = tokenizer_source() else {
        return;
    };
    let g = GgufFile::from_bytes(synth_gguf(&parity_models()[0], &tok).to_bytes()).unwrap();
    for (pre, fixture) in [
        ("qwen2", include_str!("data/tok_llamacpp_pre_qwen2.json")),
        (
            "llama-bpe",
            include_str!("data/tok_llamacpp_pre_llama_bpe.json"),
        ),
    ] {
        let g2 = rewrite(
            &g,
            |k, v| {
                if k == "tokenizer.ggml.pre" {
                    Some((k.into(), MetadataValue::String(pre.into())))
                } else {
                    Some((k.into(), v.clone()))
                }
            },
            |_| true,
        );
        let t = Tokenizer::from_gguf(&g2).unwrap();
        common::assert_tokenizes_as_llama_cpp(&t, fixture, true);
    }
}
