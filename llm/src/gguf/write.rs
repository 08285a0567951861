//! The GGUF writer.

use super::{GgmlType, MetadataValue};
use std::path::Path;

/// Builds GGUF files (for tests, tools and tiny synthetic models).
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    /// A writer for GGUF `version` (2 or 3) with the default alignment of 32.
    pub fn new(version: u32) -> GgufWriter {
        GgufWriter {
            version,
            alignment: 32,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }
    /// Add a metadata key (a `general.alignment` key also sets the data alignment).
    pub fn add_metadata(&mut self, key: &str, value: MetadataValue) -> &mut Self {
        if key == "general.alignment" {
            if let Some(a) = value.as_int() {
                self.alignment = a.max(1) as u64;
            }
        }
        self.metadata.push((key.into(), value));
        self
    }
    /// Add a tensor with its raw data bytes (`dims` in GGML order).
    pub fn add_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors.push((name.into(), dims.to_vec(), ty, data));
        self
    }
    /// Add a tensor quantised to `ty` from f32 values by ggml's reference rule
    /// ([`crate::quant::quantize`]).
    pub fn add_quantized(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: &[f32],
    ) -> Result<&mut Self, crate::quant::QuantError> {
        let bytes = crate::quant::quantize(ty, data)?;
        Ok(self.add_tensor(name, dims, ty, bytes))
    }
    /// Add an f32 tensor.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], data: &[f32]) -> &mut Self {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_tensor(name, dims, GgmlType::F32, bytes)
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn put_value(out: &mut Vec<u8>, v: &MetadataValue) {
        match v {
            MetadataValue::U8(x) => out.push(*x),
            MetadataValue::I8(x) => out.push(*x as u8),
            MetadataValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::Bool(x) => out.push(*x as u8),
            MetadataValue::String(s) => Self::put_str(out, s),
            MetadataValue::Array(a) => {
                let et = a.first().map_or(0, |e| e.type_id());
                out.extend_from_slice(&et.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for e in a {
                    Self::put_value(out, e);
                }
            }
            MetadataValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            MetadataValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            Self::put_str(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            Self::put_value(&mut out, v);
        }
        let al = self.alignment;
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            Self::put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len() as u64).div_ceil(al) * al;
        }
        let data_start = (out.len() as u64).div_ceil(al) * al;
        out.resize(data_start as usize, 0);
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            out.extend_from_slice(data);
        }
        out
    }

    /// Write the file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}
