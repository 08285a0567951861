//! Typed metadata getters of [`GgufFile`].

use super::{GgufError, GgufFile, MetadataValue};

impl GgufFile {
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
