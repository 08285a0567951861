//! Write the synthetic parity models (`airinfer_llm::synth::parity_models`) into a directory,
//! borrowing the tokenizer of a real model file; print one line per model: name, path, SHA-256.
//! With `--kquant-sources`, the F32 models whose rows fit k-quant blocks, for `llama-quantize`.
//! Used by `scripts/arch_parity.sh`. Usage: synth_models TOKENIZER_GGUF OUT_DIR [--kquant-sources]

use airinfer_llm::gguf::GgufFile;
use airinfer_llm::synth::{kquant_sources, parity_models, synth_gguf};
use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (tok, out, models) = match args.as_slice() {
        [_, tok, out] => (tok, out, parity_models()),
        [_, tok, out, flag] if flag == "--kquant-sources" => (tok, out, kquant_sources()),
        _ => return Err("usage: synth_models TOKENIZER_GGUF OUT_DIR [--kquant-sources]".into()),
    };
    let g = GgufFile::open(std::path::Path::new(tok)).map_err(|e| format!("{tok}: {e}"))?;
    std::fs::create_dir_all(out)?;
    for s in models {
        let bytes = synth_gguf(&s, &g).to_bytes();
        let path = std::path::Path::new(out).join(format!("{}.gguf", s.name));
        std::fs::write(&path, &bytes)?;
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("{} {} {}", s.name, path.display(), sha);
    }
    Ok(())
}
