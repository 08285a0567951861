//! `airinfer eval --scheme …`: the real model, tensor-parallel, every all-reduce through a
//! simulated radio link, with simulated latency.

use airinfer_llm::eval::PplOptions;
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::Model;
use airinfer_phy::channel::{SmallScale, TimeModel};
use airinfer_phy::digital::{Access, Quantiser, Rate};
use airinfer_sim::device::{Precision, Profiles};
use airinfer_sim::schemes::coupled;
use airinfer_sim::schemes::tp::{
    Broadcast, ComputeModel, Design, HeldEqual, RadioConfig, SchemeKind, TpCollective,
};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

/// Wire formats of the digital scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuantName {
    /// IEEE half.
    Fp16,
    /// bfloat16.
    Bf16,
    /// int8, one scale per 32 values.
    Int8,
    /// int4, one scale per 32 values.
    Int4,
}

/// Rate model of the digital scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateName {
    /// NR CQI link adaptation, HARQ, residual losses.
    Mcs,
    /// Shannon capacity, error-free (the paper's digital baseline).
    Shannon,
}

/// Uplink access of the digital scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessName {
    /// Time division.
    Tdma,
    /// Frequency division.
    Ofdma,
    /// CSMA/CA contention on one Wi-Fi channel (802.11 DCF).
    Csma,
}

/// The coupled-system options of `airinfer eval`.
#[derive(Args, Debug, Clone)]
pub struct SchemeArgs {
    /// Send every all-reduce through this scheme (and report latency); absent: plain evaluation.
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeKind>,
    /// AirComp transceiver design: zf, zf-sum, mmse, sca, sdr.
    #[arg(long, value_parser = super::design_value::<Design>, default_value = "sca")]
    pub design: Design,
    /// Transmit SNR P/σ² per device and channel use, dB.
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    pub snr_db: f64,
    /// Device profiles: one name for all devices or one per device (see sim/plan/data/devices.toml).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["jetson-orin-nano".to_string()])]
    pub profiles: Vec<String>,
    /// Extra device profiles (TOML file of [name] tables with the same fields).
    #[arg(long)]
    pub profiles_file: Option<std::path::PathBuf>,
    /// Arithmetic of the matrix products for the compute-time model.
    #[arg(long, value_enum, default_value_t = PrecisionName::F16)]
    pub precision: PrecisionName,
    /// AP antennas N_r.
    #[arg(long, default_value_t = 4)]
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    #[arg(long, default_value_t = 1)]
    pub tx_antennas: usize,
    /// Streams L.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Bandwidth = symbol rate, MHz.
    #[arg(long, default_value_t = 10.0)]
    pub bandwidth_mhz: f64,
    /// Block-fading coherence time, ms (ignored with --doppler-hz).
    #[arg(long, default_value_t = 10.0)]
    pub coherence_ms: f64,
    /// Continuous Doppler evolution (Jakes correlation) instead of block fading.
    #[arg(long)]
    pub doppler_hz: Option<f64>,
    /// Rician K-factor, dB (Rayleigh when absent).
    #[arg(long, allow_hyphen_values = true)]
    pub rician_k_db: Option<f64>,
    /// CSI error variance (channel entries have unit power); 0 = perfect CSI.
    #[arg(long, default_value_t = 0.0)]
    pub csi_error_var: f64,
    /// Fixed cost per all-reduce round (sync, pilots, CSI), µs.
    #[arg(long, default_value_t = 50.0)]
    pub overhead_us: f64,
    /// Digital: wire format.
    #[arg(long, value_enum, default_value_t = QuantName::Int8)]
    pub quantiser: QuantName,
    /// Digital: uplink access.
    #[arg(long, value_enum, default_value_t = AccessName::Ofdma)]
    pub access: AccessName,
    /// Digital: rate model.
    #[arg(long, value_enum, default_value_t = RateName::Mcs)]
    pub rate: RateName,
    /// Digital / FDMA: what the baseline is held equal to against AirComp (per channel use
    /// power, energy per all-reduce, or uplink airtime).
    #[arg(long, value_enum, default_value_t = HeldEqual::Power)]
    pub held_equal: HeldEqual,
    /// AirComp / FDMA: how the AP returns the estimate (digital broadcast, analog, or ideal).
    #[arg(long, value_enum, default_value_t = Broadcast::Digital)]
    pub downlink: Broadcast,
    /// Large-scale gain of each device, dB (one for all or one per device; default 0).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub gains_db: Vec<f64>,
    /// `--shares sca|uniform|compute|memory`: per-token energy budget of each device, mJ (one
    /// or one per device; none: `airinfer plan`'s default, under which the constraint binds).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub energy_mj: Vec<f64>,
    /// `--shares` by name: signal model of the partial sums, paper (Zhang et al.) or
    /// share_scaled (ours: variance ∝ share).
    #[arg(long, default_value = "paper")]
    pub signal: String,
    /// `--shares sca`: stochastic SCA iterations.
    #[arg(long, default_value_t = 300)]
    pub plan_iterations: usize,
    /// `--shares sca`: validation channel realisations of the plan's expected MSE.
    #[arg(long, default_value_t = 128)]
    pub plan_validation: usize,
    /// Seed of every random draw (channel, noise, CSI error, designs, the plan).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prompt tokens of the latency run (time to first token).
    #[arg(long, default_value_t = 64)]
    pub prompt_tokens: usize,
    /// Tokens generated in the latency run (per-token latency).
    #[arg(long, default_value_t = 16)]
    pub gen_tokens: usize,
    /// Draw a Gantt chart of the devices and the channel over the first generated token
    /// (.png or .svg).
    #[arg(long)]
    pub timeline: Option<std::path::PathBuf>,
    /// Take the options above from a TOML file (keys as the flags with '_' for '-', e.g.
    /// `scheme = "aircomp"`, `snr_db = 10`, `profiles = ["jetson-orin-nx", "raspberry-pi-5"]`);
    /// values given in the file replace the flags' defaults.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// The TOML form of [`SchemeArgs`] (every key optional).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeToml {
    scheme: Option<String>,
    design: Option<String>,
    snr_db: Option<f64>,
    profiles: Option<Vec<String>>,
    profiles_file: Option<std::path::PathBuf>,
    precision: Option<String>,
    rx_antennas: Option<usize>,
    tx_antennas: Option<usize>,
    streams: Option<usize>,
    bandwidth_mhz: Option<f64>,
    coherence_ms: Option<f64>,
    doppler_hz: Option<f64>,
    rician_k_db: Option<f64>,
    csi_error_var: Option<f64>,
    overhead_us: Option<f64>,
    quantiser: Option<String>,
    access: Option<String>,
    rate: Option<String>,
    held_equal: Option<String>,
    downlink: Option<String>,
    gains_db: Option<Vec<f64>>,
    energy_mj: Option<Vec<f64>>,
    signal: Option<String>,
    plan_iterations: Option<usize>,
    plan_validation: Option<usize>,
    seed: Option<u64>,
    prompt_tokens: Option<usize>,
    gen_tokens: Option<usize>,
    timeline: Option<std::path::PathBuf>,
}

fn enum_value<T: ValueEnum>(file: &str, key: &str, v: &str) -> Result<T> {
    T::from_str(v, true).map_err(|_| {
        let ok: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        anyhow::anyhow!("{file}: {key} = \"{v}\": expected one of {}", ok.join(", "))
    })
}

impl SchemeArgs {
    /// Apply `--config FILE` (if given) over these options.
    pub fn with_config(self) -> Result<SchemeArgs> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let f = path.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {f}"))?;
        self.with_config_text(&text, &f)
    }

    /// Apply the TOML `text` of a `--config` file (named `f` in errors) over these options.
    pub fn with_config_text(mut self, text: &str, f: &str) -> Result<SchemeArgs> {
        let t: SchemeToml = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{f}: {}", e.to_string().trim().replace('\n', " ")))?;
        if let Some(v) = t.scheme {
            self.scheme = Some(enum_value(f, "scheme", &v)?);
        }
        if let Some(v) = t.design {
            if let Some(new) = airinfer_sim::links::aircomp::renamed(&v) {
                anyhow::bail!("{f}: design = \"{v}\": now called \"{new}\"");
            }
            self.design = enum_value(f, "design", &v)?;
        }
        if let Some(v) = t.precision {
            self.precision = enum_value(f, "precision", &v)?;
        }
        if let Some(v) = t.quantiser {
            self.quantiser = enum_value(f, "quantiser", &v)?;
        }
        if let Some(v) = t.access {
            self.access = enum_value(f, "access", &v)?;
        }
        if let Some(v) = t.rate {
            self.rate = enum_value(f, "rate", &v)?;
        }
        if let Some(v) = t.held_equal {
            self.held_equal = enum_value(f, "held_equal", &v)?;
        }
        if let Some(v) = t.downlink {
            self.downlink = enum_value(f, "downlink", &v)?;
        }
        macro_rules! take {
            ($($k:ident),*) => { $( if let Some(v) = t.$k { self.$k = v; } )* };
        }
        take!(
            snr_db,
            profiles,
            rx_antennas,
            tx_antennas,
            streams,
            bandwidth_mhz,
            coherence_ms,
            csi_error_var,
            overhead_us,
            seed,
            prompt_tokens,
            gen_tokens,
            gains_db,
            energy_mj,
            signal,
            plan_iterations,
            plan_validation
        );
        if t.profiles_file.is_some() {
            self.profiles_file = t.profiles_file;
        }
        if t.doppler_hz.is_some() {
            self.doppler_hz = t.doppler_hz;
        }
        if t.rician_k_db.is_some() {
            self.rician_k_db = t.rician_k_db;
        }
        if t.timeline.is_some() {
            self.timeline = t.timeline;
        }
        Ok(self)
    }
}

/// Precision names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionName {
    /// FP32.
    F32,
    /// FP16.
    F16,
    /// INT8.
    Int8,
}

/// Build the collective the options describe for `model`, each device sending at `tx_power`
/// times the reference power (empty: all at the reference; a planned assignment's powers).
pub fn collective(
    s: &SchemeArgs,
    model: &Model,
    g: &GgufFile,
    seed: u64,
    tx_power: &[f64],
) -> Result<TpCollective> {
    let k = model.n_devices();
    let mut lib = Profiles::builtin();
    if let Some(f) = &s.profiles_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading device profiles {}", f.display()))?;
        lib.extend(Profiles::parse(&text, &f.display().to_string())?);
    }
    let names: Vec<String> = match s.profiles.len() {
        1 => vec![s.profiles[0].clone(); k],
        n if n == k => s.profiles.clone(),
        n => bail!("--profiles: {n} names for {k} devices (give one, or one per device)"),
    };
    let profiles = names
        .iter()
        .map(|n| lib.get(n).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    let precision = match s.precision {
        PrecisionName::F32 => Precision::F32,
        PrecisionName::F16 => Precision::F16,
        PrecisionName::Int8 => Precision::Int8,
    };
    let compute = ComputeModel::new(
        &model.cfg,
        &model.plan,
        profiles,
        precision,
        coupled::weight_format(g),
    );
    if !(s.bandwidth_mhz.is_finite() && s.bandwidth_mhz > 0.0) {
        bail!("--bandwidth-mhz {}: must be positive", s.bandwidth_mhz);
    }
    if !(s.overhead_us.is_finite() && s.overhead_us >= 0.0) {
        bail!("--overhead-us {}: must be ≥ 0", s.overhead_us);
    }
    let time = match s.doppler_hz {
        Some(f) => TimeModel::Jakes { doppler_hz: f },
        None => TimeModel::Block {
            coherence_time_s: s.coherence_ms * 1e-3,
        },
    };
    let radio = RadioConfig {
        rx_antennas: s.rx_antennas,
        tx_antennas: s.tx_antennas,
        streams: s.streams,
        small_scale: match s.rician_k_db {
            None => SmallScale::Rayleigh,
            Some(k) => SmallScale::Rician {
                k_factor_db: k,
                aoa_deg: vec![],
            },
        },
        time,
        snr_db: s.snr_db,
        bandwidth_hz: s.bandwidth_mhz * 1e6,
        round_overhead_s: s.overhead_us * 1e-6,
        csi_error_var: s.csi_error_var,
        quantiser: match s.quantiser {
            QuantName::Fp16 => Quantiser::Fp16,
            QuantName::Bf16 => Quantiser::Bf16,
            QuantName::Int8 => Quantiser::Int8 { block: 32 },
            QuantName::Int4 => Quantiser::Int4 { block: 32 },
        },
        access: match s.access {
            AccessName::Tdma => Access::Tdma,
            AccessName::Ofdma => Access::Ofdma,
            AccessName::Csma => Access::Csma,
        },
        rate: match s.rate {
            RateName::Mcs => Rate::Mcs,
            RateName::Shannon => Rate::Shannon,
        },
        held_equal: s.held_equal,
        downlink: s.downlink,
        gains: s.gains(k)?,
        tx_power: tx_power.to_vec(),
        ..RadioConfig::default()
    };
    let scheme = s.scheme.unwrap_or(SchemeKind::Ideal);
    Ok(TpCollective::new(scheme, s.design, radio, compute, seed)?)
}

impl SchemeArgs {
    /// The linear large-scale gain of each of `k` devices from `--gains-db` (empty: 0 dB).
    pub fn gains(&self, k: usize) -> Result<Vec<f64>> {
        if self.gains_db.is_empty() {
            return Ok(Vec::new());
        }
        // the experiment's `channel.gains_db` rules, errors named as the flag
        let mut spec: crate::experiment::spec::Spec = toml::from_str("kind = \"eval\"")?;
        spec.channel.gains_db = self.gains_db.clone();
        spec.gains(k).map_err(super::plan::as_flag)
    }

    /// Plan the assignment `name` (`sca`, `uniform`, `compute`, `memory`) for model `cfg` of
    /// catalogue name or path `model_name` over `k` devices: the problem `airinfer plan` and an
    /// experiment's `[model] shares = "sca"` solve, built from these options (devices, gains,
    /// channel, `--energy-mj`, `--signal`, `--plan-iterations`, `--plan-validation`, `--seed`).
    pub fn plan(
        &self,
        cfg: &airinfer_llm::config::LlamaConfig,
        model_name: &str,
        k: usize,
        name: &str,
    ) -> Result<crate::experiment::planned::Planned> {
        use crate::experiment::spec::Spec;
        if self.scheme != Some(SchemeKind::Aircomp) {
            bail!(
                "--shares {name}: plans shares and power for AirComp's energy model; add --scheme aircomp (not {}), or give the shares as numbers",
                self.scheme.map_or("none".to_string(), |x| format!("{x:?}").to_lowercase())
            );
        }
        let mut spec: Spec = toml::from_str("kind = \"eval\"\n[scheme]\nkind = \"aircomp\"")?;
        spec.seed = self.seed;
        spec.model.name = model_name.to_string();
        spec.devices.count = Some(k);
        spec.devices.profiles = match self.profiles.len() {
            1 => vec![self.profiles[0].clone(); k],
            _ => self.profiles.clone(),
        };
        spec.devices.profiles_file = self.profiles_file.as_ref().map(|p| p.display().to_string());
        spec.channel.gains_db = self.gains_db.clone();
        spec.channel.snr_db = self.snr_db;
        spec.channel.rx_antennas = self.rx_antennas;
        spec.channel.tx_antennas = self.tx_antennas;
        spec.channel.streams = self.streams;
        spec.channel.rician_k_db = self.rician_k_db;
        spec.channel.bandwidth_hz = self.bandwidth_mhz * 1e6;
        spec.channel.csi_error_var = self.csi_error_var;
        spec.plan.energy_mj = self.energy_mj.clone();
        spec.plan.signal = super::plan::signal_model(&self.signal)?;
        spec.plan.iterations = self.plan_iterations;
        spec.plan.validation = self.plan_validation;
        let as_flag = |(key, msg): (String, String)| match key.as_str() {
            "plan.iterations" => anyhow::anyhow!("--plan-iterations: {msg}"),
            "plan.validation" => anyhow::anyhow!("--plan-validation: {msg}"),
            "model.shares" => anyhow::anyhow!("--shares {name}: {msg}"),
            _ => super::plan::as_flag((key, msg)),
        };
        let dir = |p: &str| std::path::PathBuf::from(p);
        let d = spec.devices(&dir).map_err(as_flag)?;
        crate::experiment::planned::plan(&spec, cfg, &d, name).map_err(as_flag)
    }
}

/// The coupled evaluation's report and what it was run with.
pub struct Evaluated<'a> {
    /// The options.
    pub s: &'a SchemeArgs,
    /// The simulation's numbers.
    pub r: airinfer_sim::schemes::coupled::CoupledReport,
    /// The assignment the shares came from when `--shares` named one.
    pub planned: Option<&'a crate::experiment::planned::Planned>,
    /// Devices.
    pub devices: usize,
}

/// Run the coupled evaluation (and draw `--timeline`); `planned`: the assignment the shares
/// came from when `--shares` named one (its powers go to the radio, its numbers to the report).
pub fn evaluate<'a>(
    s: &'a SchemeArgs,
    model: &Model,
    g: &GgufFile,
    tokens: &[u32],
    opts: &PplOptions,
    planned: Option<&'a crate::experiment::planned::Planned>,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Evaluated<'a>> {
    if s.gen_tokens == 0 || s.prompt_tokens == 0 {
        bail!("--prompt-tokens and --gen-tokens must be positive");
    }
    let context = model.cfg.context_length;
    if s.prompt_tokens.saturating_add(s.gen_tokens) > context {
        bail!(
            "--gen-tokens {}: with --prompt-tokens {} the latency run needs {} positions, the model's context is {context} tokens",
            s.gen_tokens,
            s.prompt_tokens,
            s.prompt_tokens.saturating_add(s.gen_tokens)
        );
    }
    let scheme = s.scheme.unwrap_or(SchemeKind::Ideal);
    let tx_power = planned.map_or(Vec::new(), |p| p.power_factors());
    // the error-free reference of the same split
    let reference =
        coupled::reference(model, tokens, opts, &mut |d, t| progress("reference", d, t))?;
    let r = coupled::evaluate(
        model,
        tokens,
        opts,
        &reference,
        &|seed| collective(s, model, g, seed, &tx_power),
        s.seed,
        s.prompt_tokens,
        s.gen_tokens,
        s.timeline.is_some(),
        &mut |d, t| progress("scheme", d, t),
    )?;
    if let Some(path) = &s.timeline {
        crate::plot::gantt(
            &r.first_token_spans,
            model.n_devices(),
            &format!(
                "one decoded token, {} devices, {:?} at {} dB",
                model.n_devices(),
                scheme,
                s.snr_db
            ),
            path,
        )?;
    }
    Ok(Evaluated {
        s,
        r,
        planned,
        devices: model.n_devices(),
    })
}

impl Evaluated<'_> {
    fn per_tok(&self, v: &[f64]) -> Vec<f64> {
        v.iter()
            .map(|x| x / self.s.gen_tokens as f64 * 1e3)
            .collect()
    }

    /// The report as `airinfer eval --scheme … --json` prints it.
    pub fn json(&self) -> serde_json::Value {
        let (s, r) = (self.s, &self.r);
        let scheme = s.scheme.unwrap_or(SchemeKind::Ideal);
        let planned_json = self.planned.map(|p| {
            json!({"shares": p.shares, "tx_power_mw": p.power_w.iter().map(|w| w * 1e3).collect::<Vec<_>>(),
                   "feasible": p.feasible})
        });
        let (prefill, decode) = (&r.prefill, &r.decode);
        json!({
            "scheme": format!("{scheme:?}").to_lowercase(),
            "design": format!("{:?}", s.design).to_lowercase(),
            "planned": planned_json,
            "snr_db": s.snr_db,
            "devices": self.devices,
            "perplexity": r.perplexity,
            "reference_perplexity": r.reference_perplexity,
            "agreement": r.agreement,
            "nmse": {"attn_output": r.nmse[0], "mlp_down": r.nmse[1], "all": r.nmse_all},
            "mse": r.mse_all,
            "ttft_ms": r.ttft_s * 1e3,
            "ms_per_token": r.per_token_s * 1e3,
            "scored_tokens": r.scored_tokens,
            "prompt_tokens": r.prompt_tokens,
            "gen_tokens": s.gen_tokens,
            "prefill": {"compute_ms": prefill.compute_s.iter().map(|x| x * 1e3).collect::<Vec<_>>(),
                        "idle_ms": prefill.idle_s.iter().map(|x| x * 1e3).collect::<Vec<_>>(),
                        "airtime_ms": prefill.airtime_s * 1e3},
            "decode_per_token": {"compute_ms": self.per_tok(&decode.compute_s), "idle_ms": self.per_tok(&decode.idle_s),
                        "airtime_ms": decode.airtime_s / s.gen_tokens as f64 * 1e3,
                        "rounds": decode.rounds / s.gen_tokens as u64},
        })
    }

    /// The report as `airinfer eval --scheme …` prints it.
    pub fn print(&self) {
        let (s, r) = (self.s, &self.r);
        let scheme = s.scheme.unwrap_or(SchemeKind::Ideal);
        let decode = &r.decode;
        println!(
            "{} devices, scheme {:?} ({:?}), SNR {} dB",
            self.devices, scheme, s.design, s.snr_db
        );
        if let Some(p) = self.planned {
            println!(
                "planned shares {} ({}), transmit power (mW) {}",
                p.shares
                    .iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                if p.feasible {
                    "within every cap"
                } else {
                    "broke a cap, projected onto the caps"
                },
                p.power_w
                    .iter()
                    .map(|w| format!("{:.1}", w * 1e3))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        println!(
            "perplexity {:.4} (error-free {:.4}), top-1 agreement {:.4} over {} tokens",
            r.perplexity, r.reference_perplexity, r.agreement, r.scored_tokens
        );
        println!(
            "normalised MSE per reduction: attention output {:.3e}, MLP down {:.3e}; MSE of the \
             aggregate per value {:.3e}",
            r.nmse[0], r.nmse[1], r.mse_all
        );
        println!(
            "time to first token {:.2} ms ({} prompt tokens), {:.3} ms per token",
            r.ttft_s * 1e3,
            r.prompt_tokens,
            r.per_token_s * 1e3
        );
        println!("per decoded token:   device  compute ms    idle ms");
        let (compute, idle) = (
            self.per_tok(&decode.compute_s),
            self.per_tok(&decode.idle_s),
        );
        for d in 0..self.devices {
            println!(
                "                     {d:>6} {:>11.4} {:>10.4}",
                compute[d], idle[d]
            );
        }
        println!(
            "                     airtime {:.4} ms in {} all-reduce rounds",
            decode.airtime_s / s.gen_tokens as f64 * 1e3,
            decode.rounds / s.gen_tokens as u64
        );
    }
}
