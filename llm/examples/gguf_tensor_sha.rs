//! Print the type and the SHA-256 of one tensor's bytes in a GGUF file (used by
//! `scripts/arch_parity.sh` to record what `llama-quantize` wrote). Usage: gguf_tensor_sha FILE NAME

use airinfer_llm::gguf::GgufFile;
use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, name] = args.as_slice() else {
        return Err("usage: gguf_tensor_sha FILE NAME".into());
    };
    let g = GgufFile::open(std::path::Path::new(file)).map_err(|e| format!("{file}: {e}"))?;
    let t = g
        .tensor(name)
        .ok_or_else(|| format!("{file}: no tensor {name}"))?;
    let sha: String = Sha256::digest(g.tensor_bytes(t))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{:?} {sha}", t.ggml_type);
    Ok(())
}
