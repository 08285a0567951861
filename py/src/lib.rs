//! `airinfer._airinfer`: the Rust half of the Python package `airinfer`.
//!
//! An adapter only: every number comes from `airinfer-phy`, called the way the `airinfer` CLI
//! calls it (`airinfer aircomp design`, `airinfer aircomp mse`), so that the same inputs and seed
//! give the same bits from both fronts. Channels arrive as the bytes of a `.npy` file (written by
//! NumPy's own `np.lib.format.write_array` in `airinfer/aircomp.py`) and are read by
//! [`channel::channels_from_bytes`], the reader of the CLI's `--channels`: same checks, same
//! one-line messages. Errors become `ValueError` with the Rust message unchanged; the GIL is
//! released while Rust computes.
//!
//! Experiment campaigns (`airinfer/experiment.py`) run through `airinfer run`'s own function
//! ([`airinfer::cli::experiment::run`], the CLI crate as a library), and Python dicts become
//! TOML through the CLI's `toml` crate, so a dict is the same document as the file it stands for.

use airinfer_phy::aircomp::{self, NamedDesign, Problem, Transceiver};
use airinfer_phy::channel::{self, Mac, MacConfig, SmallScale};
use airinfer_phy::rng::{self, component};
use airinfer_phy::{CMat, C64};
use numpy::ndarray::{Array1, Array2, Array3, Array4};
use numpy::{IntoPyArray, PyArray1, PyArray4, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};
use rayon::prelude::*;

mod model;
use std::path::PathBuf;

fn value_error(msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(msg.to_string())
}

/// One value for every device, or one per device (the CLI's `per_device`).
fn per_device(v: &[f64], k: usize, what: &str) -> Result<Vec<f64>, String> {
    match v.len() {
        1 => Ok(vec![v[0]; k]),
        n if n == k => Ok(v.to_vec()),
        n => Err(format!(
            "{what}: {n} values for {k} devices (give one, or one per device)"
        )),
    }
}

fn load(channels_npy: &[u8]) -> Result<Vec<Vec<CMat>>, String> {
    channel::channels_from_bytes(channels_npy)
}

/// Design transceivers for every realisation of a channel file's bytes.
///
/// Returns a dict of NumPy arrays: `receive_beamformer` (R, N_r, L), `precoders`
/// (R, K, N_t, L), `mse` (R,), `power` (R, K).
#[pyfunction]
#[pyo3(signature = (channels_npy, design, power_budget, signal_var, noise_var, streams, seed))]
#[allow(clippy::too_many_arguments)]
fn design<'py>(
    py: Python<'py>,
    channels_npy: &[u8],
    design: &str,
    power_budget: Vec<f64>,
    signal_var: Vec<f64>,
    noise_var: f64,
    streams: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let name = NamedDesign::parse(design).map_err(value_error)?;
    let out = py.detach(|| -> Result<_, String> {
        let reals = load(channels_npy)?;
        let k = reals[0].len();
        let power = per_device(&power_budget, k, "power_budget")?;
        let var = per_device(&signal_var, k, "signal_var")?;
        // realisations are independent (each SDR draws from its own stream): in parallel
        let designs: Vec<(Transceiver, Vec<f64>)> = reals
            .par_iter()
            .enumerate()
            .map(|(r, h)| {
                let p = Problem {
                    channels: h,
                    signal_var: &var,
                    power: &power,
                    noise_var,
                    streams,
                };
                let t = name
                    .run(&p, seed, r as u64)
                    .map_err(|e| format!("realisation {r}: {e}"))?;
                let pw = aircomp::powers(&p, &t.precoders);
                Ok((t, pw))
            })
            .collect::<Result<_, String>>()?;
        let (r, nr, nt) = (reals.len(), reals[0][0].nrows(), reals[0][0].ncols());
        let l = streams;
        let a = Array3::from_shape_fn((r, nr, l), |(ri, i, j)| {
            designs[ri].0.receive_beamformer[(i, j)]
        });
        let b = Array4::from_shape_fn((r, k, nt, l), |(ri, ki, i, j)| {
            designs[ri].0.precoders[ki][(i, j)]
        });
        let mse = Array1::from_shape_fn(r, |ri| designs[ri].0.analytic_mse);
        let pw = Array2::from_shape_fn((r, k), |(ri, ki)| designs[ri].1[ki]);
        Ok((a, b, mse, pw))
    });
    let (a, b, mse, pw) = out.map_err(value_error)?;
    let d = PyDict::new(py);
    d.set_item("receive_beamformer", a.into_pyarray(py))?;
    d.set_item("precoders", b.into_pyarray(py))?;
    d.set_item("mse", mse.into_pyarray(py))?;
    d.set_item("power", pw.into_pyarray(py))?;
    Ok(d)
}

fn shape_str(s: &[usize]) -> String {
    match s {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            s.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The closed-form MSE `Σ_k σ_k² ‖AᴴH_kB_k − I‖²_F + σ² ‖A‖²_F` of given beamformers, per
/// realisation: (R,) float64.
#[pyfunction]
#[pyo3(signature = (channels_npy, receive_beamformer, precoders, signal_var, noise_var))]
fn mse<'py>(
    py: Python<'py>,
    channels_npy: &[u8],
    receive_beamformer: PyReadonlyArrayDyn<'py, C64>,
    precoders: PyReadonlyArrayDyn<'py, C64>,
    signal_var: Vec<f64>,
    noise_var: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    // copies, made with the GIL held, so that nothing can change them while it is released
    let a = receive_beamformer.as_array().to_owned();
    let b = precoders.as_array().to_owned();
    let out = py.detach(|| -> Result<Vec<f64>, String> {
        let reals = load(channels_npy)?;
        let (r, k) = (reals.len(), reals[0].len());
        let (nr, nt) = reals[0][0].shape();
        let a_ok = a.ndim() == 3 && a.shape()[..2] == [r, nr] && a.shape()[2] >= 1;
        if !a_ok {
            return Err(format!(
                "receive_beamformer has shape {}; expected (R, N_r, L) = ({r}, {nr}, L) with L ≥ 1",
                shape_str(a.shape())
            ));
        }
        let l = a.shape()[2];
        if b.shape() != [r, k, nt, l] {
            return Err(format!(
                "precoders has shape {}; expected (R, K, N_t, L) = ({r}, {k}, {nt}, {l})",
                shape_str(b.shape())
            ));
        }
        let var = per_device(&signal_var, k, "signal_var")?;
        let ones = vec![1.0; k]; // the budgets do not enter the MSE; validate() wants some
        reals
            .iter()
            .enumerate()
            .map(|(ri, h)| {
                let p = Problem {
                    channels: h,
                    signal_var: &var,
                    power: &ones,
                    noise_var,
                    streams: l,
                };
                p.validate().map_err(|e| format!("realisation {ri}: {e}"))?;
                let am = CMat::from_fn(nr, l, |i, j| a[[ri, i, j]]);
                let bm: Vec<CMat> = (0..k)
                    .map(|ki| CMat::from_fn(nt, l, |i, j| b[[ri, ki, i, j]]))
                    .collect();
                Ok(aircomp::mse(&p, &am, &bm))
            })
            .collect()
    });
    Ok(out.map_err(value_error)?.into_pyarray(py))
}

/// Small-scale MAC realisations (R, K, N_r, N_t) complex128, realisation r drawn from the
/// stream (seed, FADING, point, r): the channels `airinfer aircomp mse --seed seed` draws at
/// its point `point` (0 for the first SNR).
#[pyfunction]
#[pyo3(signature = (devices, rx_antennas, tx_antennas, realisations, seed, point, rician_k_db, rx_correlation, tx_correlation))]
#[allow(clippy::too_many_arguments)]
fn mac<'py>(
    py: Python<'py>,
    devices: usize,
    rx_antennas: usize,
    tx_antennas: usize,
    realisations: usize,
    seed: u64,
    point: u64,
    rician_k_db: Option<f64>,
    rx_correlation: f64,
    tx_correlation: f64,
) -> PyResult<Bound<'py, PyArray4<C64>>> {
    if realisations == 0 {
        return Err(value_error("realisations must be ≥ 1"));
    }
    let small_scale = match rician_k_db {
        None => SmallScale::Rayleigh,
        Some(k) => SmallScale::Rician {
            k_factor_db: k,
            aoa_deg: vec![],
        },
    };
    let out = py.detach(|| -> Result<Array4<C64>, String> {
        let mac = Mac::new(MacConfig {
            devices,
            rx_antennas,
            tx_antennas,
            small_scale,
            rx_correlation,
            tx_correlation,
        })
        .map_err(|e| e.to_string())?;
        let hs: Vec<Vec<CMat>> = (0..realisations)
            .into_par_iter()
            .map(|r| {
                mac.small_scale(&mut rng::stream(
                    seed,
                    &[component::FADING, point, r as u64],
                ))
            })
            .collect();
        Ok(Array4::from_shape_fn(
            (realisations, devices, rx_antennas, tx_antennas),
            |(r, k, i, j)| hs[r][k][(i, j)],
        ))
    });
    Ok(out.map_err(value_error)?.into_pyarray(py))
}

// --- experiment campaigns -------------------------------------------------------------------

/// `key` for messages: `channel.snr_db`, `plot[0].x`; the whole document is `(top level)`.
fn key_name(key: &str) -> &str {
    if key.is_empty() {
        "(top level)"
    } else {
        key
    }
}

/// A Python value as a TOML value: bool, int, float, str, dict (a table; str keys, in their
/// order), list or tuple (an array); NumPy scalars through `__index__` / `__float__`.
fn to_toml(v: &Bound<'_, PyAny>, key: &str) -> Result<toml::Value, String> {
    if v.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(
            v.extract::<bool>().map_err(|e| e.to_string())?,
        ));
    }
    if v.is_instance_of::<PyInt>() {
        return v.extract::<i64>().map(toml::Value::Integer).map_err(|_| {
            format!(
                "{}: {v} is beyond TOML's signed 64-bit integers (write a larger seed as a string)",
                key_name(key)
            )
        });
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(
            v.extract::<f64>().map_err(|e| e.to_string())?,
        ));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(toml::Value::String(s.to_string()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, x) in d.iter() {
            let Ok(k) = k.cast::<PyString>().map(|k| k.to_string()) else {
                return Err(format!(
                    "{}: the key {k:?} is not a string (TOML keys are)",
                    key_name(key)
                ));
            };
            let path = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            t.insert(k, to_toml(&x, &path)?);
        }
        return Ok(toml::Value::Table(t));
    }
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(l) = v.cast::<PyList>() {
        Some(l.iter().collect())
    } else if let Ok(t) = v.cast::<PyTuple>() {
        Some(t.iter().collect())
    } else {
        None
    };
    if let Some(items) = items {
        return items
            .iter()
            .enumerate()
            .map(|(i, x)| to_toml(x, &format!("{key}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(toml::Value::Array);
    }
    if v.is_none() {
        return Err(format!(
            "{}: None has no TOML value (leave the key out for its default)",
            key_name(key)
        ));
    }
    // NumPy scalars and other numbers: integers first (np.int64 has __index__), then floats
    if v.hasattr("__index__").unwrap_or(false) {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(toml::Value::Integer(i));
        }
    }
    if let Ok(x) = v.extract::<f64>() {
        return Ok(toml::Value::Float(x));
    }
    let ty = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    Err(format!(
        "{}: a value of type {ty} has no TOML value (bool, int, float, str, dict, list)",
        key_name(key)
    ))
}

/// An experiment as a Python dict → the text of its TOML file, written by the CLI's `toml`.
#[pyfunction]
fn toml_document(config: &Bound<'_, PyDict>) -> PyResult<String> {
    let toml::Value::Table(t) = to_toml(config.as_any(), "").map_err(value_error)? else {
        unreachable!("a dict is a table")
    };
    toml::to_string(&t).map_err(value_error)
}

/// One value as inline TOML (the VALUE of `--set KEY=VALUE`; `key` names it in errors).
#[pyfunction]
#[pyo3(signature = (value, key))]
fn toml_value(value: &Bound<'_, PyAny>, key: &str) -> PyResult<String> {
    Ok(to_toml(value, key).map_err(value_error)?.to_string())
}

thread_local! {
    /// The exception of a signal handler (Ctrl-C's KeyboardInterrupt) that stopped a campaign.
    static STOPPED_BY: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// A campaign's stop hook: Python's pending signals, checked before each run on the thread
/// that runs the campaign (the caller's); a handler's exception is kept for the caller.
fn signalled() -> Option<String> {
    let e = Python::attach(|py| py.check_signals()).err()?;
    STOPPED_BY.with(|s| *s.borrow_mut() = Some(e));
    Some("interrupted".to_string())
}

/// `airinfer run FILE [--set KEY=VALUE …] [--out OUT] [--force] [--quiet]`, in this process:
/// returns the results directory. Ctrl-C stops it before its next run (finished runs kept;
/// running it again resumes) with KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (file, sets, out, force, quiet))]
fn run_experiment(
    py: Python<'_>,
    file: PathBuf,
    sets: Vec<String>,
    out: Option<PathBuf>,
    force: bool,
    quiet: bool,
) -> PyResult<PathBuf> {
    use airinfer::cli::experiment::{out_dir, run, RunArgs};
    use airinfer::experiment::Experiment;
    STOPPED_BY.with(|s| s.borrow_mut().take());
    let r = py.detach(|| -> Result<PathBuf, String> {
        // what `airinfer` checks before any command
        airinfer_llm::kernels::simd_cap().map_err(|e| format!("environment: {e}"))?;
        let out = match out {
            Some(o) => o,
            None => {
                let exp = Experiment::load_with(&file, None, &sets).map_err(|e| e.to_string())?;
                out_dir(&exp, None, None, &sets)
            }
        };
        run(RunArgs {
            file,
            out: Some(out.clone()),
            shard: None,
            force,
            quiet,
            radio: None,
            sets,
            max_memory: None,
            stop: Some(signalled),
        })
        // the CLI prints `error: {e:#}`
        .map_err(|e| format!("{e:#}"))?;
        Ok(out)
    });
    r.map_err(|e| {
        STOPPED_BY
            .with(|s| s.borrow_mut().take())
            .unwrap_or_else(|| value_error(e))
    })
}

/// The Rust extension of the `airinfer` package (use `airinfer.aircomp`, `airinfer.channel`,
/// `airinfer.run`).
#[pymodule]
fn _airinfer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(design, m)?)?;
    m.add_function(wrap_pyfunction!(mse, m)?)?;
    m.add_function(wrap_pyfunction!(mac, m)?)?;
    m.add_function(wrap_pyfunction!(toml_document, m)?)?;
    m.add_function(wrap_pyfunction!(toml_value, m)?)?;
    m.add_function(wrap_pyfunction!(run_experiment, m)?)?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(model::link_seconds_per_call, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
