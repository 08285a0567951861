//! `airinfer.Model`: the real language model, tensor-parallel, every all-reduce through the
//! ideal sum, the CLI's simulated radio (`--scheme`), or a Python callable.
//!
//! The options are `airinfer eval` / `airinfer generate`'s own, parsed by the CLI's parser from
//! the arguments `airinfer/model.py` builds, and the work is the CLI's function
//! ([`airinfer::cli::llm::eval_report`], [`airinfer_llm::generate::generate`]): the same
//! numbers as the command for the same options. The model file stays open and the last split
//! is kept, so a sweep over links or SNRs loads it once.

use airinfer::cli::llm::{
    eval_report, eval_split, eval_text, eval_tokens, generation_json, generation_setup,
    parse_eval_args, parse_generate_args, SharesArg,
};
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::Model;
use airinfer_llm::tokenizer::Tokenizer;
use airinfer_llm::tp::{ideal_sum, Collective, ReduceCtx, ReduceSite};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn value_error(e: anyhow::Error) -> PyErr {
    // the CLI prints `error: {e:#}`
    PyValueError::new_err(format!("{e:#}"))
}

/// The all-reduce of a Python callable `link(partials, site)`, or the ideal sum when there is
/// none; either way Ctrl-C (a pending signal) stops the forward pass at the next reduction.
/// The first exception is kept and raised when the call returns.
struct PyLink {
    f: Option<Py<PyAny>>,
    err: Option<PyErr>,
}

impl PyLink {
    fn new(f: Option<Py<PyAny>>) -> PyLink {
        PyLink { f, err: None }
    }

    /// The error of a failed call: the link's own exception if it raised, else `e`.
    fn error(&mut self, e: anyhow::Error) -> PyErr {
        self.err.take().unwrap_or_else(|| value_error(e))
    }

    fn call(&self, py: Python<'_>, ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) -> PyResult<()> {
        py.check_signals()?;
        let Some(f) = &self.f else {
            ideal_sum(buffers);
            return Ok(());
        };
        let (t, d) = (ctx.n_tokens, ctx.width);
        let site = 2 * ctx.layer + usize::from(ctx.site == ReduceSite::MlpDown);
        let parts = PyList::empty(py);
        for b in buffers.iter() {
            parts.append(PyArray1::from_slice(py, b).reshape([t, d])?)?;
        }
        let out = f.bind(py).call1((parts, site))?;
        let k = buffers.len();
        // one array for every device (a broadcast), or one per device
        let items: Vec<Bound<'_, PyAny>> = if out.is_instance(ndarray_type(py)?)? {
            vec![out]
        } else if let Ok(l) = out.cast::<PyList>() {
            l.iter().collect()
        } else if let Ok(l) = out.cast::<PyTuple>() {
            l.iter().collect()
        } else {
            return Err(PyValueError::new_err(format!(
                "link returned a {}: return a list of {k} arrays (one per device) or one array for all",
                out.get_type().name()?
            )));
        };
        if items.len() != 1 && items.len() != k {
            return Err(PyValueError::new_err(format!(
                "link returned {} arrays for {k} devices: return one per device, or one array for all",
                items.len()
            )));
        }
        let asarray = asarray_f32(py)?;
        for (i, x) in items.iter().enumerate() {
            let a = asarray.call1((x,))?;
            let a: PyReadonlyArrayDyn<'_, f32> = a.extract()?;
            if a.shape() != [t, d] {
                return Err(PyValueError::new_err(format!(
                    "link returned an array of shape {:?} at index {i}; the partials' shape is ({t}, {d}) (tokens, width)",
                    a.shape()
                )));
            }
            let v = a.as_slice()?;
            if items.len() == 1 {
                for b in buffers.iter_mut() {
                    b.copy_from_slice(v);
                }
            } else {
                buffers[i].copy_from_slice(v);
            }
        }
        Ok(())
    }
}

/// `numpy.ndarray`.
fn ndarray_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static T: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    T.import(py, "numpy", "ndarray")
}

/// `lambda x: numpy.ascontiguousarray(x, dtype=numpy.float32)`, as a function of numpy's.
fn asarray_f32(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = F.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let functools = py.import("functools")?;
        let np = py.import("numpy")?;
        let kw = pyo3::types::PyDict::new(py);
        kw.set_item("dtype", np.getattr("float32")?)?;
        Ok(functools
            .getattr("partial")?
            .call((np.getattr("ascontiguousarray")?,), Some(&kw))?
            .unbind())
    })?;
    Ok(f.bind(py).clone())
}

impl Collective for PyLink {
    fn all_reduce(&mut self, ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) {
        if self.err.is_some() {
            return;
        }
        if let Err(e) = Python::attach(|py| self.call(py, ctx, buffers)) {
            self.err = Some(e);
        }
    }

    fn failure(&self) -> Option<String> {
        self.err
            .as_ref()
            .map(|_| "the Python link raised an exception".to_string())
    }
}

/// A model file, open, with the last tensor-parallel split of it.
#[pyclass(module = "airinfer._airinfer", name = "Model", frozen)]
pub struct PyModel {
    path: PathBuf,
    g: GgufFile,
    tok: Tokenizer,
    split: Mutex<Option<(Vec<f64>, Arc<Model>)>>,
    /// The last evaluation text and its tokens (a sweep evaluates one text many times).
    text: Mutex<Option<(String, Arc<Vec<u32>>)>>,
}

impl PyModel {
    /// The model split by `shares`: the last one if it is the same.
    fn split(&self, shares: &[f64]) -> anyhow::Result<Arc<Model>> {
        let mut s = self.split.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, m)) = s.as_ref() {
            if k == shares {
                return Ok(m.clone());
            }
        }
        *s = None; // free the old split before loading the new one
        let m = Arc::new(
            Model::load_shares(&self.g, shares)
                .map_err(anyhow::Error::from)
                .map_err(|e| e.context(format!("loading model {}", self.path.display())))?,
        );
        *s = Some((shares.to_vec(), m.clone()));
        Ok(m)
    }

    /// The tokens of `text`: the last ones if it is the same text.
    fn tokens(&self, text: String) -> Arc<Vec<u32>> {
        let mut c = self.text.lock().unwrap_or_else(|p| p.into_inner());
        match c.as_ref() {
            Some((t, ids)) if *t == text => ids.clone(),
            _ => {
                let ids = Arc::new(eval_tokens(&self.tok, &text));
                *c = Some((text, ids.clone()));
                ids
            }
        }
    }

    fn argv(&self, args: Vec<String>) -> Vec<String> {
        let mut v = vec!["--model".to_string(), self.path.display().to_string()];
        v.extend(args);
        v
    }
}

#[pymethods]
impl PyModel {
    /// Open a model: a catalogue name (fetched and cached on first use) or a GGUF path.
    #[new]
    #[pyo3(signature = (path_or_name, quiet = true))]
    fn new(py: Python<'_>, path_or_name: &str, quiet: bool) -> PyResult<PyModel> {
        py.detach(|| -> anyhow::Result<PyModel> {
            airinfer_llm::kernels::simd_cap().map_err(|e| anyhow::anyhow!("environment: {e}"))?;
            let path = airinfer::assets::resolve_model(path_or_name, quiet)?;
            let g = GgufFile::open(&path)
                .map_err(anyhow::Error::from)
                .map_err(|e| e.context(format!("reading model file {}", path.display())))?;
            // what every command needs of it: an architecture and a tokenizer
            airinfer_llm::model::config_from_gguf(&g)
                .map_err(anyhow::Error::from)
                .map_err(|e| {
                    e.context(format!("reading the architecture of {}", path.display()))
                })?;
            let tok = Tokenizer::from_gguf(&g)
                .map_err(anyhow::Error::from)
                .map_err(|e| e.context("building the tokenizer from the model file"))?;
            Ok(PyModel {
                path,
                g,
                tok,
                split: Mutex::new(None),
                text: Mutex::new(None),
            })
        })
        .map_err(value_error)
    }

    /// The model file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The architecture: `n_layer`, `n_embd`, `n_head`, `n_head_kv`, `n_ff`, `vocab_size`,
    /// `context_length`, `architecture`.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let c =
            airinfer_llm::model::config_from_gguf(&self.g).map_err(|e| value_error(e.into()))?;
        let d = pyo3::types::PyDict::new(py);
        d.set_item("architecture", &c.arch.name)?;
        d.set_item("n_layer", c.n_layer)?;
        d.set_item("n_embd", c.n_embd)?;
        d.set_item("n_head", c.n_head)?;
        d.set_item("n_head_kv", c.n_head_kv)?;
        d.set_item("n_ff", c.n_ff)?;
        d.set_item("vocab_size", c.vocab_size)?;
        d.set_item("context_length", c.context_length)?;
        Ok(d)
    }

    /// `airinfer eval ARGS --json` on this model, every all-reduce through `link` (a callable)
    /// when given; `config`: the TOML text of `--config` (the scheme's options). Returns the
    /// JSON text the command prints.
    #[pyo3(signature = (args, config = None, link = None, quiet = true))]
    fn eval(
        &self,
        py: Python<'_>,
        args: Vec<String>,
        config: Option<String>,
        link: Option<Py<PyAny>>,
        quiet: bool,
    ) -> PyResult<String> {
        let custom = link.is_some();
        let mut link = PyLink::new(link);
        let r = py.detach(|| -> anyhow::Result<String> {
            let a = parse_eval_args(&self.argv(args))?;
            let mut radio = a.radio.clone().with_config()?;
            if let Some(text) = &config {
                radio = radio.with_config_text(text, "link")?;
            }
            let (model, planned) = match &a.model.shares {
                Some(SharesArg::Named(_)) => {
                    let (m, p) = eval_split(&a, &radio, &self.g, &self.path)?;
                    (Arc::new(m), p)
                }
                _ => (self.split(&a.model.shares()?)?, None),
            };
            // the ideal sum goes through the link too, for Ctrl-C; a scheme has its own
            let l: Option<&mut dyn Collective> = match (custom, radio.scheme.is_some()) {
                (false, true) => None,
                _ => Some(&mut link),
            };
            let tokens = self.tokens(eval_text(&a, quiet)?);
            let r = eval_report(
                &a,
                &radio,
                (&self.g, &self.tok),
                &tokens,
                &model,
                planned.as_ref(),
                l,
                quiet,
                false,
            )?;
            Ok(r.to_string())
        });
        r.map_err(|e| link.error(e))
    }

    /// `airinfer generate ARGS --json` on this model, every all-reduce through `link` when
    /// given. Returns the JSON text the command prints.
    #[pyo3(signature = (args, link = None, quiet = true))]
    fn generate(
        &self,
        py: Python<'_>,
        args: Vec<String>,
        link: Option<Py<PyAny>>,
        quiet: bool,
    ) -> PyResult<String> {
        let mut link = PyLink::new(link);
        let r = py.detach(|| -> anyhow::Result<String> {
            let a = parse_generate_args(&self.argv(args))?;
            let model = self.split(&a.model.shares()?)?;
            let tok = &self.tok;
            let (sampler, prompt) = generation_setup(&a, &self.g, tok, &model, quiet)?;
            let r = airinfer_llm::generate::generate(
                &model,
                tok,
                &prompt,
                a.max_tokens,
                sampler,
                &mut link,
                &mut |_| {},
            )?;
            Ok(generation_json(tok, prompt.len(), &r).to_string())
        });
        r.map_err(|e| link.error(e))
    }

    fn __repr__(&self) -> String {
        format!("airinfer.Model('{}')", self.path.display())
    }
}

/// Seconds per all-reduce of `link` (a callable, or None: the built-in ideal sum) on `devices`
/// partials of `n_tokens × width` values, over `iters` calls made as the forward pass makes
/// them (GIL released between calls): the benchmark of a Python link's overhead
/// (`py/bench/bench_link.py`).
#[pyfunction]
#[pyo3(signature = (link, devices, n_tokens, width, iters))]
pub fn link_seconds_per_call(
    py: Python<'_>,
    link: Option<Py<PyAny>>,
    devices: usize,
    n_tokens: usize,
    width: usize,
    iters: usize,
) -> PyResult<f64> {
    if devices == 0 || n_tokens == 0 || width == 0 || iters == 0 {
        return Err(PyValueError::new_err(
            "devices, n_tokens, width and iters must be ≥ 1",
        ));
    }
    let custom = link.is_some();
    let mut link = PyLink::new(link);
    let r = py.detach(|| {
        // zeros: what the sums write back stays finite however many calls there are
        let mut bufs = vec![vec![0.0f32; n_tokens * width]; devices];
        let t0 = std::time::Instant::now();
        for i in 0..iters {
            let ctx = ReduceCtx {
                layer: i / 2,
                site: if i % 2 == 0 {
                    ReduceSite::AttnOutput
                } else {
                    ReduceSite::MlpDown
                },
                n_tokens,
                pos: 0,
                width,
            };
            if custom {
                link.all_reduce(&ctx, &mut bufs);
                if link.failure().is_some() {
                    break;
                }
            } else {
                ideal_sum(&mut bufs);
            }
        }
        t0.elapsed().as_secs_f64() / iters as f64
    });
    match link.err.take() {
        Some(e) => Err(e),
        None => Ok(r),
    }
}
