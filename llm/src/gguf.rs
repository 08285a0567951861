//! GGUF reader (versions 2 and 3) and writer.
//!
//! Layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata count, the
//! metadata key/value pairs, the tensor infos (name, n_dims, dims, type, offset), padding to
//! `general.alignment` (default 32), then the tensor data. Every count, length, offset and
//! dimension is checked against the bytes that are actually there before anything is allocated
//! or read, so a truncated, corrupt or hostile file gives a [`GgufError`], never a panic.

use std::collections::HashMap;
use std::path::Path;

pub use crate::ggml_type::GgmlType;

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

/// Maximum nesting of metadata arrays (hostile files could nest arbitrarily deep).
const MAX_ARRAY_DEPTH: usize = 8;
/// Maximum number of dimensions of a tensor (GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn need(&self, n: u64, what: &str) -> Result<(), GgufError> {
        let have = (self.b.len() - self.pos) as u64;
        if n > have {
            return Err(GgufError::Truncated {
                offset: self.pos as u64,
                what: what.into(),
                need: n,
                have,
            });
        }
        Ok(())
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        self.need(n as u64, what)?;
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, GgufError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, GgufError> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let at = self.pos as u64;
        let len = self.u64(what)?;
        self.need(len, what)?;
        let s = self.take(len as usize, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| GgufError::Invalid {
            offset: at,
            reason: format!("{what} is not valid UTF-8"),
        })
    }
    fn value(&mut self, ty: u32, depth: usize, what: &str) -> Result<MetadataValue, GgufError> {
        let at = self.pos as u64;
        Ok(match ty {
            0 => MetadataValue::U8(self.u8(what)?),
            1 => MetadataValue::I8(self.u8(what)? as i8),
            2 => MetadataValue::U16(self.u16(what)?),
            3 => MetadataValue::I16(self.u16(what)? as i16),
            4 => MetadataValue::U32(self.u32(what)?),
            5 => MetadataValue::I32(self.u32(what)? as i32),
            6 => MetadataValue::F32(f32::from_bits(self.u32(what)?)),
            7 => match self.u8(what)? {
                0 => MetadataValue::Bool(false),
                1 => MetadataValue::Bool(true),
                v => {
                    return Err(GgufError::Invalid {
                        offset: at,
                        reason: format!("{what}: boolean byte {v} is neither 0 nor 1"),
                    })
                }
            },
            8 => MetadataValue::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::Invalid {
                        offset: at,
                        reason: format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}"),
                    });
                }
                let elem_ty = self.u32(what)?;
                let n = self.u64(what)?;
                // every element takes at least one byte: bound n by the bytes left
                let min_size = match elem_ty {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10 | 11 | 12 => 8,
                    9 => 12,
                    t => {
                        return Err(GgufError::Invalid {
                            offset: at,
                            reason: format!("{what}: unknown array element type {t}"),
                        })
                    }
                };
                self.need(n.saturating_mul(min_size), what)?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(elem_ty, depth + 1, what)?);
                }
                MetadataValue::Array(v)
            }
            10 => MetadataValue::U64(self.u64(what)?),
            11 => MetadataValue::I64(self.u64(what)? as i64),
            12 => MetadataValue::F64(f64::from_bits(self.u64(what)?)),
            t => {
                return Err(GgufError::Invalid {
                    offset: at,
                    reason: format!("{what}: unknown value type {t}"),
                })
            }
        })
    }
}

impl GgufFile {
    /// Open and memory-map a GGUF file.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.display().to_string(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; airinfer never writes the model file while it runs. If
        // another process truncates it, reads may fault — the usual caveat of mmap-based readers.
        let m = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
        Self::parse(Bytes::Mmap(m))
    }

    /// Parse a GGUF held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<GgufFile, GgufError> {
        let b = bytes.as_slice();
        let mut r = Reader { b, pos: 0 };
        let magic = r.take(4, "magic")?;
        if magic != b"GGUF" {
            return Err(GgufError::BadMagic([
                magic[0], magic[1], magic[2], magic[3],
            ]));
        }
        let version = r.u32("version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::Version(version));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        // each kv needs ≥ 8 (key len) + 4 (type) + 1 bytes; each tensor info ≥ 8 + 4 + 4 + 8
        r.need(n_kv.saturating_mul(13), "metadata")?;
        r.need(n_tensors.saturating_mul(24), "tensor infos")?;
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let at = r.pos as u64;
            let key = r.string(&format!("metadata key #{i}"))?;
            let ty = r.u32(&format!("type of '{key}'"))?;
            let v = r.value(ty, 0, &format!("value of '{key}'"))?;
            if index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::Invalid {
                    offset: at,
                    reason: format!("duplicate metadata key '{key}'"),
                });
            }
            metadata.push((key, v));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => 32,
            Some((_, v)) => match v.as_int() {
                Some(a) if a > 0 && a <= 1 << 20 && (a as u64).is_power_of_two() => a as u64,
                _ => {
                    return Err(GgufError::BadValue {
                        key: "general.alignment".into(),
                        reason: format!("{v:?} is not a power of two in 1..=2^20"),
                    })
                }
            },
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let at = r.pos as u64;
            let name = r.string(&format!("tensor #{i} name"))?;
            let bad = |reason: String| GgufError::BadTensor {
                name: name.clone(),
                reason,
            };
            let n_dims = r.u32(&format!("tensor '{name}' n_dims"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(bad(format!("{n_dims} dimensions (must be 1..={MAX_DIMS})")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&format!("tensor '{name}' dims"))?);
            }
            let ty_id = r.u32(&format!("tensor '{name}' type"))?;
            let ggml_type =
                GgmlType::from_id(ty_id).ok_or_else(|| bad(format!("unknown type id {ty_id}")))?;
            let offset = r.u64(&format!("tensor '{name}' offset"))?;
            let mut n: u64 = 1;
            for &d in &dims {
                n = n
                    .checked_mul(d)
                    .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
            }
            if n == 0 {
                return Err(bad(format!("dimensions {dims:?} hold no elements")));
            }
            if dims[0] % ggml_type.block_size() as u64 != 0 {
                return Err(bad(format!(
                    "row length {} is not a multiple of the {ggml_type:?} block size {}",
                    dims[0],
                    ggml_type.block_size()
                )));
            }
            if offset % alignment != 0 {
                return Err(bad(format!(
                    "data offset {offset} is not aligned to {alignment}"
                )));
            }
            let info = TensorInfo {
                name: name.clone(),
                dims,
                ggml_type,
                offset,
            };
            // checked size: n / block · type_size, without overflow
            (n / ggml_type.block_size() as u64)
                .checked_mul(ggml_type.type_size() as u64)
                .and_then(|s| s.checked_add(offset))
                .ok_or_else(|| bad("data size overflows".into()))?;
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::Invalid {
                    offset: at,
                    reason: format!("duplicate tensor name '{name}'"),
                });
            }
            tensors.push(info);
        }
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
        let file_len = b.len() as u64;
        if n_tensors > 0 && data_start > file_len {
            return Err(GgufError::Truncated {
                offset: r.pos as u64,
                what: "padding before tensor data".into(),
                need: data_start - r.pos as u64,
                have: file_len - r.pos as u64,
            });
        }
        // every tensor inside the file, and no two overlapping
        let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            let start = data_start + t.offset;
            let end = start + t.n_bytes();
            if end > file_len {
                return Err(GgufError::BadTensor {
                    name: t.name.clone(),
                    reason: format!(
                        "data {start}..{end} runs past the end of the file ({file_len} bytes)"
                    ),
                });
            }
            spans.push((start, end, i));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(GgufError::BadTensor {
                    name: tensors[w[1].2].name.clone(),
                    reason: format!("data overlaps tensor '{}'", tensors[w[0].2].name),
                });
            }
        }
        Ok(GgufFile {
            version,
            alignment,
            metadata,
            index,
            tensors,
            tensor_index,
            data_start,
            bytes,
        })
    }

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

    fn bad(key: &str, reason: String) -> GgufError {
        GgufError::BadValue {
            key: key.into(),
            reason,
        }
    }

    /// An integer value that fits u32; `None` if absent.
    pub fn get_u32_opt(&self, key: &str) -> Result<Option<u32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_int() {
                Some(i) if (0..=u32::MAX as i128).contains(&i) => Ok(Some(i as u32)),
                Some(i) => Err(Self::bad(
                    key,
                    format!("{i} does not fit an unsigned 32-bit integer"),
                )),
                None => Err(Self::bad(key, format!("expected an integer, found {v:?}"))),
            },
        }
    }
    /// An integer value that fits u32.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.get_u32_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
    /// A float value (any numeric type); `None` if absent.
    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|x| Some(x as f32))
                .ok_or_else(|| Self::bad(key, format!("expected a number, found {v:?}"))),
        }
    }
    /// A float value.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        self.get_f32_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
    /// A boolean; `None` if absent.
    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(MetadataValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Self::bad(key, format!("expected a boolean, found {v:?}"))),
        }
    }
    /// A boolean.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        self.get_bool_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
    /// A string; `None` if absent.
    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(MetadataValue::String(s)) => Ok(Some(s)),
            Some(v) => Err(Self::bad(
                key,
                format!("expected a string, found {}", short(v)),
            )),
        }
    }
    /// A string.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.get_str_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
    fn array(&self, key: &str) -> Result<Option<&[MetadataValue]>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(MetadataValue::Array(a)) => Ok(Some(a)),
            Some(v) => Err(Self::bad(
                key,
                format!("expected an array, found {}", short(v)),
            )),
        }
    }
    /// An array of strings; `None` if absent.
    pub fn get_string_array_opt(&self, key: &str) -> Result<Option<Vec<&str>>, GgufError> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| match v {
                MetadataValue::String(s) => Ok(s.as_str()),
                v => Err(Self::bad(
                    key,
                    format!("element {i} is {}, expected a string", short(v)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
    /// An array of strings.
    pub fn get_string_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        self.get_string_array_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
    /// An array of numbers as f32; `None` if absent.
    pub fn get_f32_array_opt(&self, key: &str) -> Result<Option<Vec<f32>>, GgufError> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64().map(|x| x as f32).ok_or_else(|| {
                    Self::bad(
                        key,
                        format!("element {i} is {}, expected a number", short(v)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
    /// An array of numbers as f32.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        self.get_f32_array_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
    /// An array of integers that fit i32; `None` if absent.
    pub fn get_i32_array_opt(&self, key: &str) -> Result<Option<Vec<i32>>, GgufError> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| match v.as_int() {
                Some(x) if (i32::MIN as i128..=i32::MAX as i128).contains(&x) => Ok(x as i32),
                _ => Err(Self::bad(
                    key,
                    format!("element {i} is {}, expected a 32-bit integer", short(v)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
    /// An array of integers that fit i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        self.get_i32_array_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.into()))
    }
}

fn short(v: &MetadataValue) -> String {
    match v {
        MetadataValue::Array(a) => format!("an array of {} values", a.len()),
        MetadataValue::String(s) if s.len() > 40 => format!("a string of {} bytes", s.len()),
        v => format!("{v:?}"),
    }
}

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
