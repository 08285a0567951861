//! Tests on the real default model (SmolLM2-135M-Instruct Q4_1). The model is looked up in the
//! airinfer cache (`$AIRINFER_HOME`, default ~/.cache/airinfer; `airinfer inspect` fetches it).
//! When it is absent the tests print a note and pass, unless `AIRINFER_REQUIRE_MODEL` is set
//! (CI sets it, after fetching the model).

mod common;
use airinfer_llm::eval::{perplexity, PplMode, PplOptions};
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::sampling::argmax;
use airinfer_llm::tokenizer::Tokenizer;
use airinfer_llm::tp::IdealCollective;

fn model_file() -> Option<GgufFile> {
    common::cached_model("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m")
}

#[test]
fn greedy_generation_names_paris() {
    let Some(g) = model_file() else { return };
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let model = Model::load_single(&g).unwrap();
    let prompt = tok.encode("The capital of France is", true, false);
    let mut s = model.new_session(64);
    let mut logits = model
        .forward(&mut s, &prompt, &mut IdealCollective, Logits::Last)
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..8 {
        let next = argmax(&logits).unwrap();
        out.push(next);
        logits = model
            .forward(&mut s, &[next], &mut IdealCollective, Logits::Last)
            .unwrap();
    }
    let text = tok.decode(&out);
    assert!(text.contains("Paris"), "continuation: {text:?}");
}

/// TP = one device on the real model, by the argument in `common` (lock-step): at every
/// reduction site the TP sum is within the reassociation bound of the single-device sum and
/// made of the same summands; on the 8-bit decode path (our kernels, row by row) every device's
/// KV cache is bit for bit the single device's (the prompt fed token by token, then 5 decode
/// steps); on the prefill path (the GEMMs) the sites are checked the same way. Uneven
/// shares including a zero share.
/// Run once per SIMD path by `scripts/test.sh` (`AIRINFER_SIMD`).
#[test]
fn tensor_parallel_smollm2_equals_single_device() {
    let Some(g) = model_file() else { return };
    common::assert_tp_equals_single_device(
        &g,
        &[vec![2.0, 1.0, 0.5], vec![0.3, 1.0, 0.0, 2.0, 0.7]],
    );
}

#[test]
fn smollm2_results_do_not_depend_on_the_thread_count() {
    let Some(g) = model_file() else { return };
    let model = Model::load_shares(&g, &[1.0, 2.0]).unwrap();
    let tokens: Vec<u32> = (0..96).map(|i| (i * 7919 + 11) % 49152).collect();
    let run = |n| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap();
        pool.install(|| {
            let mut s = model.new_session(128);
            let mut l = model
                .forward(&mut s, &tokens, &mut IdealCollective, Logits::From(90))
                .unwrap();
            l.extend(
                model
                    .forward(&mut s, &[5], &mut IdealCollective, Logits::Last)
                    .unwrap(),
            );
            l
        })
    };
    assert!(run(1) == run(2), "logits differ between 1 and 2 threads");
}

#[test]
fn tokenizer_roundtrips_the_lee_corpus_and_perplexity_is_sane() {
    let Some(g) = model_file() else { return };
    let Some(text) = common::lee_text() else {
        eprintln!("note: Lee corpus absent; skipped");
        return;
    };
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let ids = tok.encode(&text, true, false);
    assert_eq!(tok.decode(&ids), text);
    // ~1.26 tokens per word for English with a 49k vocabulary
    let words = text.split_whitespace().count();
    let ratio = ids.len() as f64 / words as f64;
    assert!((1.0..1.6).contains(&ratio), "tokens per word {ratio}");
    let model = Model::load_single(&g).unwrap();
    let opts = PplOptions {
        ctx: 128,
        max_chunks: Some(3),
        mode: PplMode::LlamaCpp,
        bos: None,
    };
    let r = perplexity(&model, &ids, &opts, &mut IdealCollective, &mut |_, _| {}).unwrap();
    assert_eq!(r.scored_tokens, 3 * 63);
    assert!(
        r.perplexity > 3.0 && r.perplexity < 100.0,
        "perplexity {}",
        r.perplexity
    );
    // perplexity runs through a tensor-parallel model too (TP = one device itself is tested by
    // the lock-step argument above). Prefill quantises activations to 8 bits, so it is not
    // continuous: a reassociation difference of an ulp at a reduction site can move an
    // activation across a rounding boundary, and with ~10⁷ quantised values per 3 chunks
    // hundreds do; each then differs by a quantisation step. TUNED: measured 0.77 % on these 3
    // chunks (the whole effect of the 8-bit activations, against f32 prefill, is 0.6 % here;
    // with AIRINFER_F32_PREFILL=1 the two agree to 2.4e-7) — a plumbing check
    let tp = Model::load_shares(&g, &[1.0, 1.0, 1.0]).unwrap();
    let r2 = perplexity(&tp, &ids, &opts, &mut IdealCollective, &mut |_, _| {}).unwrap();
    let rel = r2.perplexity / r.perplexity - 1.0;
    assert!(
        rel.abs() < 3e-2,
        "TP perplexity {} vs {}",
        r2.perplexity,
        r.perplexity
    );
}

#[test]
fn cost_preset_matches_the_real_model() {
    let Some(g) = model_file() else { return };
    let elements: u64 = g.tensors().iter().map(|t| t.n_elements()).sum();
    let preset = airinfer_llm::cost::presets::smollm2_135m();
    assert_eq!(airinfer_llm::cost::param_count(&preset), elements);
    let real = airinfer_llm::model::config_from_gguf(&g).unwrap();
    assert_eq!(
        (
            real.n_layer,
            real.n_embd,
            real.n_ff,
            real.n_head,
            real.n_head_kv,
            real.vocab_size,
            real.tied_embeddings
        ),
        (
            preset.n_layer,
            preset.n_embd,
            preset.n_ff,
            preset.n_head,
            preset.n_head_kv,
            preset.vocab_size,
            preset.tied_embeddings
        )
    );
    assert_eq!(real.rope_freq_base, preset.rope_freq_base);
}

#[test]
fn tokenizer_matches_llama_cpp() {
    let Some(g) = model_file() else { return };
    let tok = Tokenizer::from_gguf(&g).unwrap();
    common::assert_tokenizes_as_llama_cpp(
        &tok,
        include_str!("data/tok_llamacpp_smollm2.json"),
        true,
    );
}

#[test]
fn real_gguf_structure_and_dequantisation_match_the_python_gguf_package() {
    let Some(g) = model_file() else { return };
    use airinfer_llm::gguf::GgmlType;
    assert_eq!(g.version(), 3);
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.metadata().len(), 33, "the header's kv count");
    assert_eq!(g.get_u32("llama.block_count").unwrap(), 30);
    let count = |ty| g.tensors().iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!(
        (
            count(GgmlType::Q4_1),
            count(GgmlType::Q8_0),
            count(GgmlType::F32)
        ),
        (210, 1, 61)
    );
    // reference values from `gguf.quants.dequantize` (independent implementation)
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("data/dequant_smollm2.json")).unwrap();
    for (name, want) in fixture["tensors"].as_object().unwrap() {
        let got = g.tensor_f32(name).unwrap();
        assert_eq!(got.len() as u64, want["n"].as_u64().unwrap(), "{name}");
        for (i, w) in want["first"].as_array().unwrap().iter().enumerate() {
            assert_eq!(got[i], w.as_f64().unwrap() as f32, "{name}[{i}]");
        }
        let sum: f64 = got.iter().map(|&v| v as f64).sum();
        let abs: f64 = got.iter().map(|&v| (v as f64).abs()).sum();
        let sumsq: f64 = got.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let (ws, wq) = (
            want["sum"].as_f64().unwrap(),
            want["sumsq"].as_f64().unwrap(),
        );
        // both sides sum the same f32 values in f64 in different orders (NumPy pairwise, ours
        // sequential): each is within γ_n·Σ|x| of the exact sum (n values, u = 2⁻⁵³)
        let n = got.len() as f64;
        let gamma = n * 2f64.powi(-53) / (1.0 - n * 2f64.powi(-53));
        assert!(
            (sum - ws).abs() <= 2.0 * gamma * abs,
            "{name}: sum {sum} vs {ws}"
        );
        assert!(
            (sumsq - wq).abs() <= 2.0 * (gamma + 2f64.powi(-53)) * wq,
            "{name}: sum of squares {sumsq} vs {wq}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, .. Default::default() })]
    /// decode(encode(text)) == text for arbitrary UTF-8 on the real vocabulary (emoji, CJK,
    /// control characters, runs of spaces, digits and newlines included by the generator).
    #[test]
    fn smollm2_tokenizer_roundtrips_any_utf8(text in "\\PC*", ws in "[ \t\r\n]{0,20}", digits in "[0-9]{0,25}") {
        static TOK: std::sync::OnceLock<Option<Tokenizer>> = std::sync::OnceLock::new();
        if let Some(tok) = TOK.get_or_init(|| model_file().map(|g| Tokenizer::from_gguf(&g).unwrap())) {
            let s = format!("{ws}{text}{digits}{ws}");
            proptest::prop_assert_eq!(tok.decode(&tok.encode(&s, false, false)), s);
        }
    }
}
