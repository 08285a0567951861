//! The GGUF parser: every count, length, offset and dimension checked against the bytes that
//! are there.

use super::{Bytes, GgmlType, GgufError, GgufFile, MetadataValue, TensorInfo};
use std::collections::HashMap;
use std::path::Path;

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
            // offset and size are each below 2^64 but their sum with the data start need not be
            // (found by the fuzzer): checked, so a wrapped span cannot pass as inside the file
            let span = data_start
                .checked_add(t.offset)
                .and_then(|start| Some((start, start.checked_add(t.n_bytes())?)));
            let Some((start, end)) = span.filter(|&(_, end)| end <= file_len) else {
                return Err(GgufError::BadTensor {
                    name: t.name.clone(),
                    reason: format!(
                        "data at offset {} + {} bytes runs past the end of the file ({file_len} bytes, data from {data_start})",
                        t.offset,
                        t.n_bytes()
                    ),
                });
            };
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
}
