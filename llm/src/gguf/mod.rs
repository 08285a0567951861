//! GGUF reader (versions 2 and 3) and writer.
//!
//! Layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata count, the
//! metadata key/value pairs, the tensor infos (name, n_dims, dims, type, offset), padding to
//! `general.alignment` (default 32), then the tensor data. Every count, length, offset and
//! dimension is checked against the bytes that are actually there before anything is allocated
//! or read, so a truncated, corrupt or hostile file gives a [`GgufError`], never a panic.
//!
//! The types and the tensor accessors are here; the parser in `read.rs`, the typed metadata
//! getters (`get_u32`, `get_str`, ...) in `meta.rs`, and [`GgufWriter`] in `write.rs`.

use std::collections::HashMap;

pub use self::write::GgufWriter;
pub use crate::ggml_type::GgmlType;

mod meta;
mod read;
mod write;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetadataValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetadataValue {
    /// The GGUF value-type id.
    pub fn type_id(&self) -> u32 {
        match self {
            MetadataValue::U8(_) => 0,
            MetadataValue::I8(_) => 1,
            MetadataValue::U16(_) => 2,
            MetadataValue::I16(_) => 3,
            MetadataValue::U32(_) => 4,
            MetadataValue::I32(_) => 5,
            MetadataValue::F32(_) => 6,
            MetadataValue::Bool(_) => 7,
            MetadataValue::String(_) => 8,
            MetadataValue::Array(_) => 9,
            MetadataValue::U64(_) => 10,
            MetadataValue::I64(_) => 11,
            MetadataValue::F64(_) => 12,
        }
    }

    /// Any integer value as i128 (None for non-integers).
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            MetadataValue::U8(v) => v as i128,
            MetadataValue::I8(v) => v as i128,
            MetadataValue::U16(v) => v as i128,
            MetadataValue::I16(v) => v as i128,
            MetadataValue::U32(v) => v as i128,
            MetadataValue::I32(v) => v as i128,
            MetadataValue::U64(v) => v as i128,
            MetadataValue::I64(v) => v as i128,
            _ => return None,
        })
    }

    /// Any numeric value as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v as f64),
            MetadataValue::F64(v) => Some(v),
            _ => self.as_int().map(|v| v as f64),
        }
    }
}

/// One tensor's description.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGML order: `dims[0]` is the row length (contiguous).
    pub dims: Vec<u64>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Bytes of data.
    pub fn n_bytes(&self) -> u64 {
        self.n_elements() / self.ggml_type.block_size() as u64 * self.ggml_type.type_size() as u64
    }
    /// Row length (`dims[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }
    /// Number of rows (product of the other dimensions).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

/// Everything that can be wrong with a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// I/O error opening or mapping the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a GGUF file.
    #[error("not a GGUF file (magic bytes are {0:02x?}, expected \"GGUF\")")]
    BadMagic([u8; 4]),
    /// Unsupported version.
    #[error("GGUF version {0} is not supported (only 2 and 3)")]
    Version(u32),
    /// The file ends before a structure is complete.
    #[error("file truncated at byte {offset}: {what} needs {need} more bytes, {have} left")]
    Truncated {
        /// Where.
        offset: u64,
        /// What was being read.
        what: String,
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// A structural value is invalid.
    #[error("invalid GGUF at byte {offset}: {reason}")]
    Invalid {
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's description is invalid.
    #[error("tensor '{name}': {reason}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A metadata key is missing.
    #[error("metadata key '{0}' is missing")]
    MissingKey(String),
    /// A metadata key has the wrong type or an out-of-range value.
    #[error("metadata key '{key}': {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor asked for is not in the file.
    #[error("tensor '{0}' not found")]
    MissingTensor(String),
    /// Dequantisation failed (unsupported type).
    #[error("tensor '{name}': {source}")]
    Quant {
        /// Tensor name.
        name: String,
        /// The cause.
        source: crate::quant::QuantError,
    },
}

enum Bytes {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file with its tensor data (memory-mapped or owned).
pub struct GgufFile {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetadataValue)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: u64,
    bytes: Bytes,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Data alignment.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, MetadataValue)] {
        &self.metadata
    }
    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }
    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    /// A tensor info by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }
    /// A tensor's raw bytes (bounds were checked when the file was opened).
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_start + t.offset) as usize;
        &self.bytes.as_slice()[start..start + t.n_bytes() as usize]
    }
    /// A tensor dequantised to f32.
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let t = self
            .tensor(name)
            .ok_or_else(|| GgufError::MissingTensor(name.into()))?;
        let mut out = vec![0.0f32; t.n_elements() as usize];
        crate::quant::dequantize(t.ggml_type, self.tensor_bytes(t), &mut out).map_err(
            |source| GgufError::Quant {
                name: name.into(),
                source,
            },
        )?;
        Ok(out)
    }
}
