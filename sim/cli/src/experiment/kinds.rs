//! What one run computes, per `kind`: rows of key columns (which metric set within the run) and
//! metrics.

use super::spec::{Kind, Spec};
use super::Run;
use crate::assets;
use airinfer_llm::cost::WeightFormat;
use airinfer_llm::eval::{PplMode, PplOptions, PplResult};
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::Model;
use airinfer_llm::tokenizer::Tokenizer;
use airinfer_llm::tp::{Collective, ReduceCtx, ReduceSite, TpPlan};
use airinfer_phy::rng::{self, component};
use airinfer_sim::schemes::coupled;
use airinfer_sim::schemes::tp::{
    fits_memory, simulate_decode, ComputeModel, RadioConfig, SharedRadio, TpCollective,
};
use anyhow::{Context, Result};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Version of what the kinds compute; part of every run hash, so results of an older
/// computation are redone rather than mixed with new ones.
pub const VERSION: u32 = 2;

/// One row of a run: key columns (text) and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Which metric set of the run (e.g. assignment and iteration of a plan trace).
    pub keys: Vec<(String, String)>,
    /// Metric name → value (NaN where undefined; stored as "NaN" / "inf" / "-inf", since JSON
    /// has no such numbers).
    #[serde(with = "metric_values")]
    pub metrics: Vec<(String, f64)>,
}

/// (De)serialise metric values with non-finite ones as strings (JSON has no NaN; serde_json
/// would write `null` and then refuse to read it back as a number).
mod metric_values {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum V {
        N(f64),
        S(String),
    }

    pub fn serialize<S: Serializer>(m: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(k, v)| {
                let v = if v.is_finite() {
                    V::N(*v)
                } else {
                    V::S(v.to_string())
                };
                (k.as_str(), v)
            })
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        Vec::<(String, Option<V>)>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                let x = match v {
                    None => f64::NAN,
                    Some(V::N(x)) => x,
                    Some(V::S(t)) => t.parse::<f64>().map_err(|_| {
                        serde::de::Error::custom(format!("metric {k}: '{t}' is not a number"))
                    })?,
                };
                Ok((k, x))
            })
            .collect()
    }
}

mod serving;
mod systems;
mod validity;
pub use systems::system_setup;
pub use validity::{inject_nan, numerical_failure};

#[cfg(test)]
mod tests;

/// Key columns and metrics a kind's rows have (plan rows also have `share_0`, `share_1`, …).
pub fn columns(kind: Kind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        Kind::Eval => (
            &["devices"],
            &[
                "perplexity",
                "reference_perplexity",
                "agreement",
                "nmse",
                "mse",
                "nmse_attn",
                "nmse_mlp",
                "ttft_ms",
                "ms_per_token",
                "airtime_ms_per_token",
                "compute_ms_per_token",
                "scored_tokens",
            ],
        ),
        Kind::Latency => (
            &["devices"],
            &[
                "ms_per_token",
                "airtime_ms_per_token",
                "compute_ms_per_token",
                "fits",
            ],
        ),
        Kind::Allreduce => (
            &["devices"],
            &[
                "nmse",
                "predicted_nmse",
                "mse",
                "airtime_us",
                "energy_uj",
                "bits_per_value",
            ],
        ),
        Kind::Plan => (&["assignment", "iteration"], &["expected_mse", "feasible"]),
        Kind::Systems => (
            &["devices", "stages"],
            &[
                "fits",
                "ttft_ms",
                "ms_per_token",
                "tok_s",
                "predicted_ms_per_token",
                "predicted_tok_s",
                "predicted_ttft_ms",
                "micro_batch",
                "load_ms",
                "mem_max_gb",
                "mem_total_gb",
                "util_min",
                "util_max",
                "rebalances",
                "perplexity",
                "reference_perplexity",
                "agreement",
                "handoff_nmse",
            ],
        ),
        Kind::Serving => (&["devices", "stages", "part", "t_s"], serving::METRICS),
    }
}

/// Columns a kind makes per device (plan: `share_<k>`; systems: `mem_gb_<k>`; eval and
/// latency with `model.shares` by name: `share_<k>`, `tx_power_mw_<k>`, `shares_feasible`).
pub fn is_dynamic_column(kind: Kind, c: &str) -> bool {
    let prefixes: &[&str] = match kind {
        Kind::Plan => &["share_"],
        Kind::Systems => &["mem_gb_"],
        Kind::Eval | Kind::Latency => {
            if c == "shares_feasible" {
                return true;
            }
            &["share_", "tx_power_mw_"]
        }
        _ => return false,
    };
    prefixes.iter().any(|prefix| {
        c.strip_prefix(prefix)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|x| x.is_ascii_digit()))
    })
}

/// `model.shares` by name: plan the shares and powers on `cfg`, put them into `d` and the
/// radio's `tx_power` (each device's planned power relative to the reference), and return the
/// columns.
fn apply_named(
    spec: &Spec,
    cfg: &airinfer_llm::config::LlamaConfig,
    d: &mut super::spec::Devices,
    radio: &mut RadioConfig,
) -> Result<Vec<(String, f64)>> {
    let Some(name) = d.named.clone() else {
        return Ok(Vec::new());
    };
    let p = super::planned::plan(spec, cfg, d, &name).map_err(invalid)?;
    d.shares = p.shares.clone();
    radio.tx_power = p.power_factors();
    Ok(p.columns())
}

/// The architecture of an eval run's model file (for planning its shares).
fn eval_config(
    spec: &Spec,
    dir: &dyn Fn(&str) -> PathBuf,
    ws: &Workspace,
) -> Result<airinfer_llm::config::LlamaConfig> {
    let path = match spec.model_file(dir).map_err(invalid)? {
        Some(p) => p,
        None => assets::resolve_model(&spec.model.name, ws.quiet)?,
    };
    let g =
        GgufFile::open(&path).with_context(|| format!("reading model file {}", path.display()))?;
    airinfer_llm::model::config_from_gguf(&g)
        .with_context(|| format!("reading the architecture of {}", path.display()))
}

/// What runs share: the loaded model, tokenised texts and error-free references (a campaign
/// evaluates one model many times; loading and the reference do not depend on the scheme).
#[derive(Default)]
pub struct Workspace {
    /// Progress and fetch messages off.
    pub quiet: bool,
    model: Option<(String, GgufFile, Model)>,
    tokens: HashMap<String, std::sync::Arc<Vec<u32>>>,
    references: HashMap<String, PplResult>,
}

impl Workspace {
    /// An empty workspace.
    pub fn new(quiet: bool) -> Workspace {
        Workspace {
            quiet,
            ..Default::default()
        }
    }
}

/// A row of a run on `devices` devices.
fn row(devices: usize, metrics: Vec<(&str, f64)>) -> Row {
    Row {
        keys: vec![("devices".into(), devices.to_string())],
        metrics: metrics
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// Execute `run` of an experiment whose relative paths resolve through `dir`.
pub fn execute(run: &Run, dir: &dyn Fn(&str) -> PathBuf, ws: &mut Workspace) -> Result<Vec<Row>> {
    let spec = &run.point.spec;
    match spec.kind {
        Kind::Eval => eval(spec, run.seed, dir, ws),
        Kind::Latency => latency(spec, run.seed, dir),
        Kind::Allreduce => allreduce(spec, run.seed, dir),
        Kind::Plan => plan(spec, run.seed, dir),
        Kind::Systems => systems::systems(spec, run.seed, dir, ws),
        Kind::Serving => serving::serving(spec, run.seed, dir),
    }
}

fn invalid(e: (String, String)) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.0, e.1)
}

/// The run's scheme on `compute` and `radio` (resolved once per run), drawing from `seed`; at
/// waveform level through `hardware` when the run has a radio.
fn collective(
    spec: &Spec,
    compute: &ComputeModel,
    radio: &RadioConfig,
    hardware: Option<&Arc<SharedRadio>>,
    seed: u64,
) -> Result<TpCollective> {
    let c = TpCollective::new(
        spec.scheme.kind,
        spec.scheme.design,
        radio.clone(),
        compute.clone(),
        seed,
    )?;
    match spec.waveform_level(compute.shards.len()).map_err(invalid)? {
        None => Ok(c),
        Some(mut w) => {
            w.radio = hardware.cloned();
            Ok(c.with_waveform(w).context("waveform")?)
        }
    }
}

/// The run's hardware radio (None: symbol level or the emulator), opened and configured.
fn open_hardware(spec: &Spec) -> Result<Option<Arc<SharedRadio>>> {
    let w = &spec.waveform;
    if w.level != super::spec::Level::Waveform || !w.is_hardware() {
        return Ok(None);
    }
    #[cfg(feature = "soapy")]
    {
        use airinfer_phy::radio::{Radio, RadioSettings};
        let mut r = airinfer_phy::radio::soapy::SoapyRadio::open(&w.radio)
            .with_context(|| format!("waveform.radio = '{}'", w.radio))?;
        r.configure(&RadioSettings {
            frequency_hz: w.frequency_hz,
            sample_rate: spec.channel.bandwidth_hz,
            tx_gain_db: w.tx_gain_db,
            rx_gain_db: w.rx_gain_db,
        })
        .with_context(|| format!("waveform.radio = '{}'", w.radio))?;
        Ok(Some(SharedRadio::new(Box::new(r))))
    }
    #[cfg(not(feature = "soapy"))]
    anyhow::bail!(
        "waveform.radio = '{}': this airinfer was built without SoapySDR; rebuild with \
         `cargo build --release --features soapy` (needs libsoapysdr-dev)",
        w.radio
    )
}

/// A hardware failure during the run, as the run's error.
fn check_hardware(hw: &Option<Arc<SharedRadio>>, radio: &str) -> Result<()> {
    match hw.as_ref().and_then(|h| h.failure()) {
        Some(e) => anyhow::bail!("waveform.radio = '{radio}': {e}"),
        None => Ok(()),
    }
}

/// What an evaluation on the real model shares between runs.
struct Loaded {
    tokens: std::sync::Arc<Vec<u32>>,
    opts: PplOptions,
    ref_key: String,
    weights: WeightFormat,
}

/// Load (or reuse) the model split by `shares`, the tokenised text and the error-free reference.
fn load_eval(
    spec: &Spec,
    dir: &dyn Fn(&str) -> PathBuf,
    ws: &mut Workspace,
    shares: &[f64],
) -> Result<Loaded> {
    let model_path = match spec.model_file(dir).map_err(invalid)? {
        Some(p) => p,
        None => assets::resolve_model(&spec.model.name, ws.quiet)?,
    };
    let text_path = match spec.text_file(dir).map_err(invalid)? {
        Some(p) => p,
        None => assets::resolve_text(&spec.eval.text, ws.quiet)?,
    };
    let model_key = format!("{}|{shares:?}", model_path.display());
    if ws.model.as_ref().is_none_or(|(k, _, _)| *k != model_key) {
        ws.model = None; // free the previous split before loading the next
        let g = GgufFile::open(&model_path)
            .with_context(|| format!("reading model file {}", model_path.display()))?;
        let m = Model::load_shares(&g, shares)
            .with_context(|| format!("loading model {}", model_path.display()))?;
        ws.model = Some((model_key.clone(), g, m));
    }
    let (_, g, model) = ws.model.as_ref().expect("loaded above");
    let e = &spec.eval;
    if let Err((key, msg)) = e.within_context(model.cfg.context_length) {
        anyhow::bail!("{key} = {msg}");
    }
    let text_key = format!(
        "{}|{}|{:?}",
        model_path.display(),
        text_path.display(),
        e.max_tokens
    );
    let tok = Tokenizer::from_gguf(g).context("building the tokenizer from the model file")?;
    let tokens = match ws.tokens.get(&text_key) {
        Some(t) => t.clone(),
        None => {
            let text = assets::read_text(&text_path)?;
            let mut t = tok.encode(&text, true, false);
            if let Some(m) = e.max_tokens {
                t.truncate(m);
            }
            let t = std::sync::Arc::new(t);
            ws.tokens.insert(text_key.clone(), t.clone());
            t
        }
    };
    let opts = PplOptions {
        ctx: e.ctx_tokens,
        max_chunks: e.chunks,
        mode: match e.sliding_stride {
            Some(stride) => PplMode::Sliding { stride },
            None => PplMode::LlamaCpp,
        },
        bos: if tok.add_bos() { tok.bos_id() } else { None },
    };
    let ref_key = format!(
        "{model_key}|{text_key}|{}|{:?}|{:?}",
        e.ctx_tokens, e.chunks, e.sliding_stride
    );
    if !ws.references.contains_key(&ref_key) {
        let r = coupled::reference(model, &tokens, &opts, &mut |_, _| {})?;
        ws.references.insert(ref_key.clone(), r);
    }
    Ok(Loaded {
        tokens,
        opts,
        ref_key,
        weights: coupled::weight_format(g),
    })
}

fn eval(
    spec: &Spec,
    seed: u64,
    dir: &dyn Fn(&str) -> PathBuf,
    ws: &mut Workspace,
) -> Result<Vec<Row>> {
    let mut d = spec.devices(dir).map_err(invalid)?;
    let mut radio = spec.radio(d.profiles.len()).map_err(invalid)?;
    let planned = if d.named.is_some() {
        let cfg = eval_config(spec, dir, ws)?;
        apply_named(spec, &cfg, &mut d, &mut radio)?
    } else {
        Vec::new()
    };
    let hw = open_hardware(spec)?;
    let l = load_eval(spec, dir, ws, &d.shares)?;
    let (_, _, model) = ws.model.as_ref().expect("loaded");
    let (tokens, opts) = (&l.tokens, &l.opts);
    let e = &spec.eval;
    let reference = &ws.references[&l.ref_key];
    let compute = ComputeModel::new(
        &model.cfg,
        &model.plan,
        d.profiles,
        spec.devices.precision,
        l.weights,
    );
    let r = coupled::evaluate(
        model,
        tokens,
        opts,
        reference,
        &|s| collective(spec, &compute, &radio, hw.as_ref(), s),
        seed,
        e.prompt_tokens,
        e.gen_tokens,
        false,
        &mut |_, _| {},
    )?;
    check_hardware(&hw, &spec.waveform.radio)?;
    let per_tok = |x: f64| x / r.gen_tokens as f64 * 1e3;
    let mut out = row(
        model.n_devices(),
        vec![
            ("perplexity", r.perplexity),
            ("reference_perplexity", r.reference_perplexity),
            ("agreement", r.agreement),
            ("nmse", r.nmse_all),
            ("mse", r.mse_all),
            ("nmse_attn", r.nmse[0]),
            ("nmse_mlp", r.nmse[1]),
            ("ttft_ms", r.ttft_s * 1e3),
            ("ms_per_token", r.per_token_s * 1e3),
            ("airtime_ms_per_token", per_tok(r.decode.airtime_s)),
            (
                "compute_ms_per_token",
                per_tok(r.decode.compute_s.iter().cloned().fold(0.0, f64::max)),
            ),
            ("scored_tokens", r.scored_tokens as f64),
        ],
    );
    out.metrics.extend(planned);
    Ok(vec![out])
}

fn latency(spec: &Spec, seed: u64, dir: &dyn Fn(&str) -> PathBuf) -> Result<Vec<Row>> {
    let cfg = spec.preset().map_err(invalid)?;
    let mut d = spec.devices(dir).map_err(invalid)?;
    let k = d.profiles.len();
    let mut radio = spec.radio(k).map_err(invalid)?;
    let planned = apply_named(spec, &cfg, &mut d, &mut radio)?;
    let plan = TpPlan::from_shares(&cfg, &d.shares, 32)?;
    let l = &spec.latency;
    if !fits_memory(
        &cfg,
        &plan,
        &d.profiles,
        spec.model.weight_bits,
        l.past_tokens,
    ) {
        let mut out = row(
            k,
            vec![
                ("ms_per_token", f64::NAN),
                ("airtime_ms_per_token", f64::NAN),
                ("compute_ms_per_token", f64::NAN),
                ("fits", 0.0),
            ],
        );
        out.metrics.extend(planned);
        return Ok(vec![out]);
    }
    let compute = ComputeModel::new(
        &cfg,
        &plan,
        d.profiles,
        spec.devices.precision,
        WeightFormat::Bits(spec.model.weight_bits),
    );
    let hw = open_hardware(spec)?;
    let mut c = collective(spec, &compute, &radio, hw.as_ref(), seed)?;
    simulate_decode(&mut c, &cfg, l.past_tokens, l.tokens, seed);
    check_hardware(&hw, &spec.waveform.radio)?;
    let n = l.tokens as f64;
    let mut out = row(
        k,
        vec![
            ("ms_per_token", c.now_s() / n * 1e3),
            ("airtime_ms_per_token", c.totals.airtime_s / n * 1e3),
            (
                "compute_ms_per_token",
                c.totals.compute_s.iter().cloned().fold(0.0, f64::max) / n * 1e3,
            ),
            ("fits", 1.0),
        ],
    );
    out.metrics.extend(planned);
    Ok(vec![out])
}

fn allreduce(spec: &Spec, seed: u64, dir: &dyn Fn(&str) -> PathBuf) -> Result<Vec<Row>> {
    let cfg = spec.preset().map_err(invalid)?;
    let d = spec.devices(dir).map_err(invalid)?;
    let k = d.profiles.len();
    let plan = TpPlan::from_shares(&cfg, &d.shares, 32)?;
    let n = spec.allreduce.values.unwrap_or(cfg.n_embd);
    let std = spec.device_std(k).map_err(invalid)?;
    let weights = WeightFormat::Bits(spec.model.weight_bits);
    let radio = spec.radio(k).map_err(invalid)?;
    let compute = ComputeModel::new(&cfg, &plan, d.profiles, spec.devices.precision, weights);
    let hw = open_hardware(spec)?;
    // one independent channel, noise and data draw per realisation, in parallel (one after
    // another through hardware); summed in order
    let max_power: Vec<f64> = compute
        .profiles
        .iter()
        .map(|p| p.max_tx_power_w())
        .collect();
    let one = |r: u64| -> Result<[f64; 7]> {
        let mut c = collective(
            spec,
            &compute,
            &radio,
            hw.as_ref(),
            rng::stream(seed, &[r]).next_u64(),
        )?;
        let mut data = rng::stream(seed, &[component::DATA, r]);
        let mut bufs: Vec<Vec<f32>> = std
            .iter()
            .map(|sd| {
                (0..n)
                    .map(|_| {
                        let x: f64 = StandardNormal.sample(&mut data);
                        (sd * x) as f32
                    })
                    .collect()
            })
            .collect();
        let ctx = ReduceCtx {
            layer: 0,
            site: ReduceSite::MlpDown,
            n_tokens: 1,
            pos: 0,
            width: n,
        };
        c.all_reduce(&ctx, &mut bufs);
        let s = &c.stats[1];
        let pred = if s.pred_values == s.values {
            s.pred2
        } else {
            f64::NAN
        };
        // transmit energy per device at its maximum power, J (mean over devices)
        let energy = c
            .totals
            .tx_energy
            .iter()
            .zip(&max_power)
            .map(|(e, p)| e * p)
            .sum::<f64>()
            / k as f64;
        let t = &c.totals;
        Ok([
            s.err2,
            s.sig2,
            pred,
            t.airtime_s,
            energy,
            t.wire_bits,
            t.wire_values as f64,
        ])
    };
    let n_real = spec.allreduce.realisations as u64;
    let per: Vec<[f64; 7]> = if hw.is_some() {
        (0..n_real).map(one).collect::<Result<_>>()?
    } else {
        (0..n_real)
            .into_par_iter()
            .map(one)
            .collect::<Result<_>>()?
    };
    check_hardware(&hw, &spec.waveform.radio)?;
    // summed in realisation order (the same numbers whatever the thread count)
    let mut sum = [0.0; 7];
    for x in &per {
        for (a, b) in sum.iter_mut().zip(x) {
            *a += b;
        }
    }
    let [err2, sig2, pred2, air, energy, wire_bits, wire_values] = sum;
    // err2 sums the squared error of each value of the sum (averaged over devices), sig2 the
    // sum's energy: NMSE = err2/sig2 and the aggregate's MSE = err2/values
    let values = n as f64 * n_real as f64;
    Ok(vec![row(
        k,
        vec![
            ("nmse", err2 / sig2),
            ("predicted_nmse", pred2 / sig2),
            ("mse", err2 / values),
            ("airtime_us", air / n_real as f64 * 1e6),
            ("energy_uj", energy / n_real as f64 * 1e6),
            // digital links only (NaN for the analog ones, which send no bits)
            (
                "bits_per_value",
                if wire_values > 0.0 {
                    wire_bits / wire_values
                } else {
                    f64::NAN
                },
            ),
        ],
    )])
}

fn plan(spec: &Spec, seed: u64, dir: &dyn Fn(&str) -> PathBuf) -> Result<Vec<Row>> {
    use airinfer_plan::{baselines, onto_caps, validation_seed};
    let cfg = spec.preset().map_err(invalid)?;
    let d = spec.devices(dir).map_err(invalid)?;
    let p = super::planned::problem(spec, &cfg, &d).map_err(invalid)?;
    let r = p.optimise(spec.plan.iterations, seed, spec.plan.validation)?;
    let caps = r.caps.clone();
    let shares_metrics = |m: &[f64]| -> Vec<(String, f64)> {
        m.iter()
            .enumerate()
            .map(|(i, x)| (format!("share_{i}"), *x))
            .collect()
    };
    let mut rows: Vec<Row> = r
        .trace
        .iter()
        .map(|s| {
            let mut metrics = vec![
                ("expected_mse".to_string(), s.expected_mse),
                ("feasible".to_string(), 1.0),
            ];
            metrics.extend(shares_metrics(&s.shares));
            Row {
                keys: vec![
                    ("assignment".into(), "sca".into()),
                    ("iteration".into(), s.iteration.to_string()),
                ],
                metrics,
            }
        })
        .collect();
    // baselines: constant along the iterations (rows at the first and last iteration); an
    // infeasible one is projected onto the constraints first
    let val_seed = validation_seed(seed);
    let last = r.trace.last().map_or(0, |s| s.iteration);
    for (name, m) in baselines(&d.profiles) {
        let (m, feasible) = onto_caps(m, &caps);
        let mse = p.expected_mse(&m, val_seed, spec.plan.validation);
        for it in [0, last] {
            let mut metrics = vec![
                ("expected_mse".to_string(), mse),
                ("feasible".to_string(), feasible as u8 as f64),
            ];
            metrics.extend(shares_metrics(&m));
            rows.push(Row {
                keys: vec![
                    ("assignment".into(), name.into()),
                    ("iteration".into(), it.to_string()),
                ],
                metrics,
            });
        }
    }
    Ok(rows)
}
