//! Fuzz the GGUF parser: arbitrary bytes must give a file or an error, never a panic; on
//! success every tensor's bytes are touched, supported types dequantised, and a model load and
//! tokenizer build attempted.
#![no_main]
use airinfer_llm::gguf::GgufFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = GgufFile::from_bytes(data.to_vec()) {
        let mut sum = 0u64;
        for t in g.tensors() {
            let b = g.tensor_bytes(t);
            sum = sum.wrapping_add(b.iter().map(|&x| x as u64).sum::<u64>());
            if t.n_elements() <= 1 << 16 {
                let _ = g.tensor_f32(&t.name);
            }
        }
        std::hint::black_box(sum);
        for (k, _) in g.metadata() {
            let _ = g.get_u32(k);
            let _ = g.get_str(k);
            let _ = g.get_string_array(k);
            let _ = g.get_f32_array(k);
        }
        let _ = airinfer_llm::model::config_from_gguf(&g);
        let _ = airinfer_llm::tokenizer::Tokenizer::from_gguf(&g);
    }
});
