//! Channel realisations from and to files (NumPy `.npy` through `npyz`, JSON).

use super::*;

/// Channel realisations from a file: NumPy `.npy` (complex64 or complex128, little- or
/// big-endian, C or Fortran order, shape (R, K, N_r, N_t); read with `npyz`) or JSON of the same
/// nesting with complex numbers as `[re, im]`. Returns R realisations of K matrices.
pub fn load_channels(path: &std::path::Path) -> Result<Vec<Vec<CMat>>, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    channels_from_bytes(&bytes).map_err(|e| format!("{name}: {e}"))
}

/// [`load_channels`] on a file's bytes (`.npy` when they start with NumPy's magic, else JSON);
/// errors without the file name.
pub fn channels_from_bytes(bytes: &[u8]) -> Result<Vec<Vec<CMat>>, String> {
    if bytes.starts_with(b"\x93NUMPY") {
        parse_npy(bytes)
    } else {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not .npy, and not JSON ({e})"))?;
        parse_json(&v)
    }
}

/// Writes R realisations of K equally sized N_r × N_t channel matrices as NumPy `.npy`:
/// complex128 (`'<c16'`), C order, shape (R, K, N_r, N_t) — the layout [`load_channels`] reads
/// and `numpy.load` returns.
pub fn save_channels_npy(path: &std::path::Path, channels: &[Vec<CMat>]) -> Result<(), String> {
    use npyz::WriterBuilder;
    let name = path.display();
    let (r, k) = (channels.len(), channels.first().map_or(0, Vec::len));
    let (nr, nt) = channels
        .first()
        .and_then(|d| d.first())
        .map_or((0, 0), |m| m.shape());
    if r == 0 || k == 0 || nr == 0 || nt == 0 {
        return Err(format!(
            "{name}: nothing to write ({r} realisations of {k} devices, {nr} × {nt})"
        ));
    }
    for (ri, devs) in channels.iter().enumerate() {
        if devs.len() != k {
            return Err(format!(
                "{name}: realisation {ri} has {} devices, realisation 0 has {k}",
                devs.len()
            ));
        }
        for (ki, m) in devs.iter().enumerate() {
            if m.shape() != (nr, nt) {
                return Err(format!(
                    "{name}: realisation {ri}, device {ki} is {} × {}, the first matrix is {nr} × {nt}",
                    m.nrows(),
                    m.ncols()
                ));
            }
        }
    }
    let io = |e: std::io::Error| format!("{name}: {e}");
    let file = std::fs::File::create(path).map_err(io)?;
    let dtype = npyz::DType::new_scalar("<c16".parse().expect("a valid type string"));
    let mut w = npyz::WriteOptions::<C64>::new()
        .dtype(dtype)
        .shape(&[r, k, nr, nt].map(|d| d as u64))
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    for m in channels.iter().flatten() {
        // C order: the column index runs fastest (nalgebra stores by columns, so walk by rows)
        for i in 0..nr {
            for j in 0..nt {
                w.push(&m[(i, j)]).map_err(io)?;
            }
        }
    }
    w.finish().map_err(io)
}

/// A shape as Python prints it: `(2, 3, 4)`, `(5,)`.
fn py_shape(shape: &[u64]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The dimensions (R, K, N_r, N_t) of a channel array: four of them, each ≥ 1.
fn channel_dims(shape: &[u64]) -> Result<[u64; 4], String> {
    let &[r, k, nr, nt] = shape else {
        return Err(format!(
            "shape {} — expected 4 dimensions (realisations, devices, N_r, N_t)",
            py_shape(shape)
        ));
    };
    if [r, k, nr, nt].contains(&0) {
        return Err(format!(
            "shape {}: every dimension must be ≥ 1",
            py_shape(shape)
        ));
    }
    Ok([r, k, nr, nt])
}

/// The largest channel coefficient magnitude accepted from a file: |h| = 10¹⁵, a power gain of
/// +300 dB (the SNR range of the models). Beamforming products such as |aᴴH_k|² and their
/// inverses stay inside f64 below it; physical path gains are below 1.
pub const MAX_CHANNEL_GAIN: f64 = 1e15;

/// R realisations of K N_r × N_t matrices, entry (i, j) of realisation r, device k being
/// `at(r, k, i, j)`; every entry must be finite.
fn shape_to_channels(
    [r, k, nr, nt]: [usize; 4],
    at: impl Fn(usize, usize, usize, usize) -> C64,
) -> Result<Vec<Vec<CMat>>, String> {
    let mut out = Vec::with_capacity(r);
    for ri in 0..r {
        let mut devs = Vec::with_capacity(k);
        for ki in 0..k {
            let m = CMat::from_fn(nr, nt, |i, j| at(ri, ki, i, j));
            if m.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
                return Err(format!("realisation {ri}, device {ki}: non-finite entry"));
            }
            if let Some(v) = m.iter().find(|v| v.norm() > MAX_CHANNEL_GAIN) {
                return Err(format!(
                    "realisation {ri}, device {ki}: entry {:e}{:+e}i has |h| = {:e}, beyond {MAX_CHANNEL_GAIN:e} (a power gain of +{:.0} dB, where products of channels overflow f64)",
                    v.re,
                    v.im,
                    v.norm(),
                    20.0 * MAX_CHANNEL_GAIN.log10()
                ));
            }
            devs.push(m);
        }
        out.push(devs);
    }
    Ok(out)
}

/// The integers of the `'shape': (…)` tuple of a `.npy` header's text: None without such a
/// tuple (npyz names what is missing), `Some(Err)` when its entries are not plain decimal
/// integers (npyz would read `0+1000…` as a number and overflow multiplying it; numpy never
/// writes one).
fn shape_in_header(text: &[u8]) -> Option<Result<Vec<u64>, String>> {
    let text = std::str::from_utf8(text).ok()?;
    let at = text.find("'shape'").or_else(|| text.find("\"shape\""))?;
    let rest = &text[at..];
    let open = rest.find('(')?;
    let close = rest[open..].find(')')? + open;
    let inner = &rest[open + 1..close];
    Some(
        inner
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                if d.bytes().all(|c| c.is_ascii_digit()) {
                    d.parse::<u64>().map_err(|_| ())
                } else {
                    Err(())
                }
            })
            .collect::<Result<Vec<u64>, ()>>()
            .map_err(|()| {
                format!("malformed .npy header: shape ({inner}) is not a tuple of decimal integers")
            }),
    )
}

fn parse_npy(b: &[u8]) -> Result<Vec<Vec<CMat>>, String> {
    // npyz allocates the header text at the length the preamble claims (up to 4 GiB for
    // versions 2 and 3) before reading it: hold that length against the file first.
    let claimed = match b.get(6..12) {
        Some(&[1, _, l0, l1, ..]) => 10 + usize::from(u16::from_le_bytes([l0, l1])),
        Some(&[2 | 3, _, l0, l1, l2, l3]) => 12 + u32::from_le_bytes([l0, l1, l2, l3]) as usize,
        _ => 0, // too short, or a version npyz names in its error
    };
    if claimed > b.len() {
        return Err(format!(
            "truncated .npy header ({claimed} bytes claimed, the file has {})",
            b.len()
        ));
    }
    // npyz's header parser backtracks exponentially on nested brackets (the channel-file fuzzer
    // found a 260-byte header that ran for over a minute): a channel file's header is one flat
    // dict with one shape tuple, so anything nested deeper is refused before npyz sees it.
    let text_start = if b.get(6) == Some(&1) { 10 } else { 12 };
    if let Some(text) = b.get(text_start.min(claimed)..claimed) {
        let count = |c: u8| text.iter().filter(|&&x| x == c).count();
        if count(b'{') > 1 || count(b'(') > 1 || count(b'[') > 0 {
            return Err(
                "malformed .npy header: expected one flat dict {'descr': …, 'fortran_order': …, 'shape': (…)} with a plain complex dtype"
                    .into(),
            );
        }
        // npyz multiplies the shape out unchecked (a panic with overflow checks on, a wrapped
        // size without): multiply it here first
        if let Some(dims) = shape_in_header(text) {
            let dims = dims?;
            // without the zeros: npyz's strides multiply the trailing dimensions even when a
            // leading one is 0 (found by the fuzzer)
            if dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d.max(1)))
                .is_none()
            {
                return Err(format!(
                    "malformed .npy header: shape {} has more than 2^64 elements",
                    py_shape(&dims)
                ));
            }
        }
    }
    // npyz multiplies the shape out unchecked; with overflow checks on (debug builds) a shape
    // whose size overflows 64 bits panics there instead of erring.
    let parsed = std::panic::catch_unwind(|| {
        let mut rest = b;
        npyz::NpyHeader::from_reader(&mut rest).map(|h| (h, rest))
    });
    let (header, data) = match parsed {
        Ok(Ok(hd)) => hd,
        Ok(Err(e)) => return Err(format!("truncated or malformed .npy header ({e})")),
        Err(_) => return Err("malformed .npy header (its shape overflows 64 bits)".into()),
    };
    let elem_bytes = match header.dtype() {
        npyz::DType::Plain(t)
            if t.type_char() == npyz::TypeChar::Complex && matches!(t.size_field(), 8 | 16) =>
        {
            t.size_field()
        }
        d => {
            return Err(format!(
                "dtype {}: expected complex64 ('<c8') or complex128 ('<c16')",
                d.descr()
            ))
        }
    };
    let dims = channel_dims(header.shape())?;
    // the size against the bytes present, before anything is allocated for the data
    let need = dims.iter().try_fold(elem_bytes, |a, &d| a.checked_mul(d));
    if need != Some(data.len() as u64) {
        return Err(format!(
            "shape {} needs {} bytes of data, the file holds {}",
            py_shape(header.shape()),
            need.map_or("more than 2^64".into(), |n| n.to_string()),
            data.len()
        ));
    }
    // the element count fits, so do the strides (element steps per axis; C or Fortran order)
    let s: [usize; 4] = std::array::from_fn(|a| header.strides()[a] as usize);
    let file = npyz::NpyFile::with_header(header, data);
    let flat: Vec<C64> = if elem_bytes == 16 {
        file.into_vec::<C64>()
    } else {
        file.into_vec::<num_complex::Complex32>().map(|v| {
            v.into_iter()
                .map(|z| C64::new(z.re.into(), z.im.into()))
                .collect()
        })
    }
    .map_err(|e| format!("reading the data: {e}"))?;
    shape_to_channels(dims.map(|d| d as usize), |ri, ki, i, j| {
        flat[ri * s[0] + ki * s[1] + i * s[2] + j * s[3]]
    })
}

fn parse_json(v: &serde_json::Value) -> Result<Vec<Vec<CMat>>, String> {
    fn dims(v: &serde_json::Value, depth: usize, shape: &mut Vec<usize>) {
        if depth == 4 {
            return;
        }
        if let Some(a) = v.as_array() {
            shape.push(a.len());
            if let Some(f) = a.first() {
                dims(f, depth + 1, shape);
            }
        }
    }
    let mut shape = Vec::new();
    dims(v, 0, &mut shape);
    if shape.len() != 4 {
        return Err(format!(
            "JSON nesting depth {} (shape {shape:?}): expected [R][K][N_r][N_t] of [re, im]",
            shape.len()
        ));
    }
    let mut flat = Vec::with_capacity(shape.iter().product());
    for (ri, r) in v.as_array().into_iter().flatten().enumerate() {
        let r = r
            .as_array()
            .filter(|a| a.len() == shape[1])
            .ok_or(format!("realisation {ri}: expected {} devices", shape[1]))?;
        for (ki, k) in r.iter().enumerate() {
            let rows = k.as_array().filter(|a| a.len() == shape[2]).ok_or(format!(
                "realisation {ri}, device {ki}: expected {} rows",
                shape[2]
            ))?;
            for (i, row) in rows.iter().enumerate() {
                let cols = row
                    .as_array()
                    .filter(|a| a.len() == shape[3])
                    .ok_or(format!(
                        "realisation {ri}, device {ki}, row {i}: expected {} entries",
                        shape[3]
                    ))?;
                for (j, z) in cols.iter().enumerate() {
                    let pair = z.as_array().filter(|a| a.len() == 2).ok_or(format!(
                        "realisation {ri}, device {ki}, entry ({i},{j}): expected [re, im]"
                    ))?;
                    let re = pair[0].as_f64().ok_or("non-numeric real part")?;
                    let im = pair[1].as_f64().ok_or("non-numeric imaginary part")?;
                    flat.push(C64::new(re, im));
                }
            }
        }
    }
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let [r, k, nr, nt] = channel_dims(&shape)?.map(|d| d as usize);
    shape_to_channels([r, k, nr, nt], |ri, ki, i, j| {
        flat[((ri * k + ki) * nr + i) * nt + j]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use npyz::WriterBuilder;

    /// A fresh directory per test (the tests run in parallel).
    fn scratch(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("airinfer-chan-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// (R, K, N_r, N_t) = (2, 3, 2, 3) with entry (i, j) of realisation r, device k equal to
    /// 100r + 10k + i + (j/2)·1i: every value distinct and exact in f32.
    fn sample() -> Vec<Vec<CMat>> {
        (0..2)
            .map(|r| {
                (0..3)
                    .map(|k| {
                        CMat::from_fn(2, 3, |i, j| {
                            C64::new((100 * r + 10 * k + i) as f64, j as f64 * 0.5)
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// A v1 .npy file by hand: header dict text, padded as NumPy does, then the data.
    fn npy_by_hand(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut h = dict.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
        npy.extend_from_slice(h.as_bytes());
        npy.extend_from_slice(data);
        npy
    }

    /// `sample()` through npyz's writer with the given dtype and order, `conv` turning each
    /// entry into the stored element type.
    fn write_with<T: npyz::Serialize>(
        path: &std::path::Path,
        descr: &str,
        order: npyz::Order,
        conv: impl Fn(C64) -> T,
    ) {
        let c = sample();
        let (r, k, nr, nt) = (2, 3, 2, 3);
        let mut w = npyz::WriteOptions::<T>::new()
            .dtype(npyz::DType::new_scalar(descr.parse().unwrap()))
            .shape(&[r as u64, k as u64, nr as u64, nt as u64])
            .order(order)
            .writer(std::io::BufWriter::new(
                std::fs::File::create(path).unwrap(),
            ))
            .begin_nd()
            .unwrap();
        let mut push = |ri: usize, ki: usize, i: usize, j: usize| {
            w.push(&conv(c[ri][ki][(i, j)])).unwrap();
        };
        match order {
            // last index fastest
            npyz::Order::C => {
                for ri in 0..r {
                    for ki in 0..k {
                        for i in 0..nr {
                            for j in 0..nt {
                                push(ri, ki, i, j);
                            }
                        }
                    }
                }
            }
            // first index fastest
            npyz::Order::Fortran => {
                for j in 0..nt {
                    for i in 0..nr {
                        for ki in 0..k {
                            for ri in 0..r {
                                push(ri, ki, i, j);
                            }
                        }
                    }
                }
            }
        }
        w.finish().unwrap();
    }

    #[test]
    fn npy_round_trip_is_complex128_c_order_and_json_agrees() {
        let dir = scratch("round-trip");
        let c = sample();
        let path = dir.join("h.npy");
        save_channels_npy(&path, &c).unwrap();
        assert_eq!(load_channels(&path).unwrap(), c);
        // what NumPy will see: a v1 header for a complex128 C-order (2, 3, 2, 3) array
        let bytes = std::fs::read(&path).unwrap();
        let data_at = bytes.len() - 2 * 3 * 2 * 3 * 16;
        assert_eq!(data_at % 64, 0, "NumPy aligns the data to 64 bytes");
        let header = String::from_utf8_lossy(&bytes[10..data_at]);
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
        assert!(header.contains("'descr': '<c16'"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
        // npyz writes `(2, 3, 2, 3, )`, which Python reads as the same tuple
        assert!(header.contains("'shape': (2, 3, 2, 3,"), "{header}");
        // the fifth complex128 is realisation 0, device 0, entry (1, 1): 1 + 0.5i
        let f = |o: usize| f64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        assert_eq!((f(data_at + 4 * 16), f(data_at + 4 * 16 + 8)), (1.0, 0.5));
        // the same as JSON (the JSON reader is unchanged)
        let small: Vec<Vec<CMat>> = vec![(0..2)
            .map(|k| CMat::from_fn(2, 1, |i, _| C64::new((k * 10 + i) as f64, 0.5)))
            .collect()];
        save_channels_npy(&dir.join("small.npy"), &small).unwrap();
        std::fs::write(
            dir.join("h.json"),
            "[[[[[0,0.5]],[[1,0.5]]],[[[10,0.5]],[[11,0.5]]]]]",
        )
        .unwrap();
        let from_json = load_channels(&dir.join("h.json")).unwrap();
        assert_eq!(from_json, small);
        assert_eq!(load_channels(&dir.join("small.npy")).unwrap(), small);
        std::fs::write(
            dir.join("bad.json"),
            "[[[[[0,0.5]],[[1,0.5]]],[[[10,0.5]]]]]",
        )
        .unwrap();
        assert!(load_channels(&dir.join("bad.json")).is_err());
        // the writer refuses what the layout cannot hold
        assert!(save_channels_npy(&dir.join("e.npy"), &[]).is_err());
        let mut ragged = sample();
        ragged[1].pop();
        let e = save_channels_npy(&dir.join("e.npy"), &ragged).unwrap_err();
        assert!(e.contains("realisation 1 has 2 devices"), "{e}");
        let mut mixed = sample();
        mixed[1][2] = CMat::zeros(3, 2);
        let e = save_channels_npy(&dir.join("e.npy"), &mixed).unwrap_err();
        assert!(e.contains("device 2 is 3 × 2"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn npy_complex64_fortran_order_and_big_endian_load_to_the_same_matrices() {
        let dir = scratch("orders");
        let c = sample();
        let c64 = |z: C64| num_complex::Complex32::new(z.re as f32, z.im as f32);
        for (file, descr, order) in [
            ("c8-c.npy", "<c8", npyz::Order::C),
            ("c8-f.npy", "<c8", npyz::Order::Fortran),
            ("c16-f.npy", "<c16", npyz::Order::Fortran),
            ("c16-be.npy", ">c16", npyz::Order::C),
        ] {
            let path = dir.join(file);
            if descr.ends_with("c8") {
                write_with(&path, descr, order, c64);
            } else {
                write_with(&path, descr, order, |z| z);
            }
            assert_eq!(load_channels(&path).unwrap(), c, "{file}");
        }
        // a Fortran-order file by hand, independent of npyz's writer: shape (1, 2, 2, 1) puts
        // element (r, k, i, j) at r + 1·(k + 2·(i + 2·j)), so storage runs
        // (k, i) = (0, 0), (1, 0), (0, 1), (1, 1); values 10k + i + 0.5i
        let mut data = Vec::new();
        for (k, i) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            data.extend_from_slice(&((k * 10 + i) as f64).to_le_bytes());
            data.extend_from_slice(&0.5f64.to_le_bytes());
        }
        let npy = npy_by_hand(
            "{'descr': '<c16', 'fortran_order': True, 'shape': (1, 2, 2, 1), }",
            &data,
        );
        std::fs::write(dir.join("hand-f.npy"), npy).unwrap();
        let h = load_channels(&dir.join("hand-f.npy")).unwrap();
        let want: Vec<Vec<CMat>> = vec![(0..2)
            .map(|k| CMat::from_fn(2, 1, |i, _| C64::new((k * 10 + i) as f64, 0.5)))
            .collect()];
        assert_eq!(h, want);
        // the same header without spaces (a valid Python literal, as other writers emit it):
        // the order is read from the dict, not matched as text (it once bypassed the check)
        let npy = npy_by_hand(
            "{'descr':'<c16','fortran_order':True,'shape':(1,2,2,1)}",
            &data,
        );
        std::fs::write(dir.join("hand-f-tight.npy"), npy).unwrap();
        assert_eq!(load_channels(&dir.join("hand-f-tight.npy")).unwrap(), want);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn npy_shape_dtype_and_truncation_errors_name_the_file_and_never_panic() {
        let dir = scratch("errors");
        let load = |file: &str, bytes: &[u8]| {
            let path = dir.join(file);
            std::fs::write(&path, bytes).unwrap();
            let e = load_channels(&path).unwrap_err();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            e
        };
        let c16 = |n: usize| vec![0u8; 16 * n];
        // three dimensions
        let e = load(
            "h3.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (2, 3, 4), }",
                &c16(24),
            ),
        );
        assert!(
            e.ends_with(
                "h3.npy: shape (2, 3, 4) — expected 4 dimensions (realisations, devices, N_r, N_t)"
            ),
            "{e}"
        );
        let e = load(
            "h1.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (5,), }",
                &c16(5),
            ),
        );
        assert!(e.contains("shape (5,) — expected 4 dimensions"), "{e}");
        // an empty dimension
        let e = load(
            "h0.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1, 0, 2, 2), }",
                &[],
            ),
        );
        assert!(
            e.contains("shape (1, 0, 2, 2): every dimension must be ≥ 1"),
            "{e}"
        );
        // real dtypes are named
        let e = load(
            "f8.npy",
            &npy_by_hand(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 2), }",
                &[0; 16],
            ),
        );
        assert!(e.contains("dtype '<f8'"), "{e}");
        assert!(
            e.contains("expected complex64 ('<c8') or complex128 ('<c16')"),
            "{e}"
        );
        let e = load(
            "c32.npy",
            &npy_by_hand(
                "{'descr': '<c32', 'fortran_order': False, 'shape': (1, 1, 1, 1), }",
                &[0; 32],
            ),
        );
        assert!(e.contains("dtype '<c32'"), "{e}");
        // nested brackets (found by the fuzzer: npyz's parser backtracked for over a minute on
        // 100 of them): refused at once
        let nested = format!(
            "{{'descr': '<c16', 'fortran_order': False, 'shape': (1, 2,{} 4, 1), }}",
            "{".repeat(100)
        );
        let e = load("nested.npy", &npy_by_hand(&nested, &c16(8)));
        assert!(e.contains("expected one flat dict"), "{e}");
        // a huge shape over a few bytes: refused before anything is allocated for it
        let e = load(
            "huge.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1000000, 1000000, 64, 64), }",
                &c16(1),
            ),
        );
        assert!(
            e.contains("shape (1000000, 1000000, 64, 64) needs 65536000000000000 bytes of data, the file holds 16"),
            "{e}"
        );
        // a shape whose size overflows 64 bits
        let e = load(
            "overflow.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296, 1), }",
                &c16(1),
            ),
        );
        assert!(
            e.contains("overflows") || e.contains("more than 2^64"),
            "{e}"
        );
        // a zero dimension before ones whose product overflows (npyz's strides multiply them)
        let e = load(
            "zero-overflow.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296, 4294967296), }",
                &[],
            ),
        );
        assert!(e.contains("more than 2^64"), "{e}");
        // a shape entry that is not a plain integer (npyz reads `0+1000…`, then overflows)
        let e = load(
            "plus.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1, 2, 2, 0+100000000000000000002), }",
                &c16(4),
            ),
        );
        assert!(e.contains("not a tuple of decimal integers"), "{e}");
        // a version-2 preamble claiming a 4 GiB header in a 16-byte file
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        v2.extend_from_slice(b"{'de");
        let e = load("v2.npy", &v2);
        assert!(e.contains("truncated .npy header"), "{e}");
        // extra bytes after the data
        let path = dir.join("good.npy");
        save_channels_npy(&path, &sample()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut long = good.clone();
        long.push(0);
        let e = load("long.npy", &long);
        assert!(
            e.contains("needs 576 bytes of data, the file holds 577"),
            "{e}"
        );
        // every truncation of a good file is an error (in the header or the data), no panic
        for cut in 0..good.len() {
            let e = load("cut.npy", &good[..cut]);
            if cut >= good.len() - 576 {
                assert!(e.contains("bytes of data, the file holds"), "{cut}: {e}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
