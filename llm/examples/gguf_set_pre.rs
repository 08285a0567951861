//! Copy a GGUF file with `tokenizer.ggml.pre` set to another pre-tokenizer name (to make
//! llama-tokenize fixtures for a pre-tokenizer no small model file carries). Usage:
//! gguf_set_pre IN.gguf PRE OUT.gguf

use airinfer_llm::gguf::{GgufFile, GgufWriter, MetadataValue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, pre, out] = args.as_slice() else {
        return Err("usage: gguf_set_pre IN.gguf PRE OUT.gguf".into());
    };
    let g = GgufFile::open(std::path::Path::new(input)).map_err(|e| format!("{input}: {e}"))?;
    let mut w = GgufWriter::new(g.version());
    for (k, v) in g.metadata() {
        let v = if k == "tokenizer.ggml.pre" {
            MetadataValue::String(pre.clone())
        } else {
            v.clone()
        };
        w.add_metadata(k, v);
    }
    for t in g.tensors() {
        w.add_tensor(&t.name, &t.dims, t.ggml_type, g.tensor_bytes(t).to_vec());
    }
    w.write(std::path::Path::new(out))?;
    Ok(())
}
