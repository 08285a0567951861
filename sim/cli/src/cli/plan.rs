//! `airinfer plan`: the joint model assignment (long timescale) for a set of devices.

use crate::experiment::spec::Spec;
use airinfer_llm::cost::presets;
use airinfer_llm::tp::TpPlan;
use airinfer_plan::{baselines, project_capped_simplex, validation_seed, within_caps, SignalModel};
use airinfer_sim::device::Profiles;
use airinfer_sim::schemes::tp::{Span, SpanKind};
use airinfer_sim::systems::System;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

/// Options of `airinfer plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Model architecture (a cost preset: llama2-7b, smollm2-135m, …).
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// Device profiles, one per device.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["jetson-agx-orin".to_string(), "jetson-orin-nx".to_string(), "jetson-orin-nano".to_string(), "raspberry-pi-5".to_string()])]
    pub profiles: Vec<String>,
    /// Large-scale gain of each device, dB (one value for all or one per device).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_values_t = vec![0.0, -3.0, -6.0, -10.0])]
    pub gains_db: Vec<f64>,
    /// Per-token energy budget of each device, mJ (one or one per device; none: the compute
    /// energy of an equal share plus half the energy of sending every all-reduce at the
    /// device's maximum power, so that the energy constraint binds).
    #[arg(long, value_delimiter = ',')]
    pub energy_mj: Vec<f64>,
    /// Signal model of the partial sums: paper (Zhang et al.: variance independent of the
    /// share) or share_scaled (ours: variance ∝ share).
    #[arg(long, default_value = "paper")]
    pub signal: String,
    /// SNR of a device at full power and 0 dB gain, per channel use, dB.
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    pub snr_db: f64,
    /// AP antennas.
    #[arg(long, default_value_t = 4)]
    pub rx_antennas: usize,
    /// Antennas per device (the AirComp plan; pipeline systems ignore it).
    #[arg(long, default_value_t = 1)]
    pub tx_antennas: usize,
    /// Streams L of the AirComp transceivers, 1 ≤ L ≤ min(rx, tx antennas).
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Rician K-factor, dB (absent: Rayleigh).
    #[arg(long, allow_hyphen_values = true)]
    pub rician_k_db: Option<f64>,
    /// Bandwidth, MHz.
    #[arg(long, default_value_t = 10.0)]
    pub bandwidth_mhz: f64,
    /// Weight bits for the memory check (Q4_1 = 5).
    #[arg(long, default_value_t = 5.0)]
    pub weight_bits: f64,
    /// Per-token compute-latency budget, ms (a device's share × its whole-model decode time).
    #[arg(long)]
    pub latency_ms: Option<f64>,
    /// SCA iterations.
    #[arg(long, default_value_t = 300)]
    pub iterations: usize,
    /// Validation channel realisations for the expected MSE.
    #[arg(long, default_value_t = 128)]
    pub validation: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Plan a layer split or a tensor-parallel system instead of the AirComp shares:
    /// edgeshard-latency, edgeshard-throughput, lingualinked, lingualinked-throughput, mdi,
    /// single, best-single, even, aircomp-tp, digital-tp. Prints the stages with the predicted
    /// and simulated latency and throughput.
    #[arg(long, value_enum)]
    pub system: Option<System>,
    /// Take model, devices, channel, links and workload from a `kind = "systems"` experiment
    /// file (its first run); other options below are then ignored, `--system` overrides its
    /// `[system] name`.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// Pipeline links: wired, wireless (at --snr-db over --bandwidth-mhz) or ideal.
    #[arg(long, default_value = "wireless")]
    pub link: String,
    /// Wired link rate, Mbit/s.
    #[arg(long, default_value_t = 950.0)]
    pub link_mbps: f64,
    /// Per-message cost of every link, ms.
    #[arg(long, default_value_t = 0.0)]
    pub link_latency_ms: f64,
    /// Add a cloud server with this profile behind a slow wired link.
    #[arg(long)]
    pub cloud: Option<String>,
    /// Rate of the link to the cloud, Mbit/s.
    #[arg(long, default_value_t = 10.0)]
    pub cloud_mbps: f64,
    /// Per-message cost of the link to the cloud, ms.
    #[arg(long, default_value_t = 20.0)]
    pub cloud_latency_ms: f64,
    /// Requests in flight (default 1); also overrides `--file`'s.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Prompt tokens per request.
    #[arg(long, default_value_t = 32)]
    pub prompt_tokens: usize,
    /// Generated tokens per request.
    #[arg(long, default_value_t = 32)]
    pub gen_tokens: usize,
    /// Source device (holds the prompt, samples).
    #[arg(long, default_value_t = 0)]
    pub source: usize,
    /// Fraction of each device's memory the model may use.
    #[arg(long, default_value_t = 1.0)]
    pub memory_fraction: f64,
    /// Samples per micro-batch of a pipeline (default: the size with the best closed-form
    /// throughput for the plan); also overrides `--file`'s.
    #[arg(long)]
    pub micro_batch: Option<usize>,
    /// What the pipeline planners minimise: decode (default), ttft, request, or a number w in
    /// [0, 1] (w · TTFT + (1 − w) · decode step); also overrides `--file`'s.
    #[arg(long)]
    pub objective: Option<String>,
    /// Draw the simulated timeline of a pipeline system (a Gantt chart, .png or .svg): ten
    /// pipeline periods of the steady state, one lane per device and one for the links.
    #[arg(long)]
    pub timeline: Option<std::path::PathBuf>,
}

/// The planners' objective named by `--objective`.
fn objective_flag(v: &str) -> Result<airinfer_sim::schemes::pipeline::PlanObjective> {
    use airinfer_sim::schemes::pipeline::PlanObjective as O;
    Ok(match v {
        "decode" => O::Decode,
        "ttft" => O::Ttft,
        "request" => O::Request,
        w => match w.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => O::Mix(x),
            _ => bail!("--objective {w}: expected decode, ttft, request or a weight in [0, 1]"),
        },
    })
}

/// The signal model named by `--signal`.
pub(crate) fn signal_model(name: &str) -> Result<SignalModel> {
    match name {
        "paper" => Ok(SignalModel::Paper),
        "share_scaled" => Ok(SignalModel::ShareScaled),
        o => bail!("--signal {o}: expected paper or share_scaled"),
    }
}

/// A spec error of the plan problem built from flags, as the flag that set the key (the plan
/// problem's own errors, e.g. caps below the whole model, name the budgets' flags).
pub(crate) fn as_flag((key, msg): (String, String)) -> anyhow::Error {
    if key == "plan" {
        return anyhow::anyhow!("{msg} (--energy-mj, --latency-ms, --profiles)");
    }
    let field = key.rsplit('.').next().unwrap_or(&key).to_string();
    let flag = match field.as_str() {
        "bandwidth_hz" => "bandwidth-mhz".to_string(),
        f => f.replace('_', "-"),
    };
    anyhow::anyhow!("--{flag}: {msg}")
}

fn per_device(v: &[f64], k: usize, what: &str) -> Result<Vec<f64>> {
    match v.len() {
        1 => Ok(vec![v[0]; k]),
        n if n == k => Ok(v.to_vec()),
        n => bail!("--{what}: {n} values for {k} devices (give one, or one per device)"),
    }
}

pub fn run(a: PlanArgs) -> Result<()> {
    if a.system.is_some() || a.file.is_some() {
        return run_system(&a);
    }
    let cfg = presets::by_name(&a.model).with_context(|| {
        format!(
            "--model {}: not a cost preset (known: {})",
            a.model,
            presets::all()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let k = a.profiles.len();
    if k == 0 {
        bail!("--profiles: at least one device");
    }
    let lib = Profiles::builtin();
    let profiles = a
        .profiles
        .iter()
        .map(|n| lib.get(n).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    let gains = per_device(&a.gains_db, k, "gains-db")?;
    if !a.energy_mj.is_empty() {
        per_device(&a.energy_mj, k, "energy-mj")?;
    }
    if !(a.weight_bits.is_finite() && a.weight_bits > 0.0) {
        bail!("--weight-bits {}: must be positive", a.weight_bits);
    }
    if a.iterations == 0 || a.validation == 0 {
        bail!("--iterations and --validation must be positive");
    }
    let signal = signal_model(&a.signal)?;
    // the same problem as an experiment's: a `kind = "plan"` spec of these options
    let mut spec: Spec = toml::from_str("kind = \"plan\"")?;
    spec.model.name = a.model.clone();
    spec.model.weight_bits = a.weight_bits;
    spec.devices.count = Some(k);
    spec.devices.profiles = a.profiles.clone();
    spec.channel.gains_db = gains;
    spec.channel.snr_db = a.snr_db;
    spec.channel.rx_antennas = a.rx_antennas;
    spec.channel.tx_antennas = a.tx_antennas;
    spec.channel.streams = a.streams;
    spec.channel.rician_k_db = a.rician_k_db;
    spec.channel.bandwidth_hz = a.bandwidth_mhz * 1e6;
    spec.plan.energy_mj = a.energy_mj.clone();
    spec.plan.signal = signal;
    spec.plan.latency_ms = a.latency_ms;
    let dir = |_: &str| std::path::PathBuf::from(".");
    let d = spec.devices(&dir).map_err(as_flag)?;
    let p = crate::experiment::planned::problem(&spec, &cfg, &d).map_err(as_flag)?;
    let r = p.optimise(a.iterations, a.seed, a.validation)?;
    let val = validation_seed(a.seed);
    let caps = p.caps();
    let baselines = baselines(&profiles);
    let feasible = |m: &[f64]| within_caps(m, &caps);
    let mut rows = vec![
        json!({"name": "sca", "shares": r.shares, "expected_mse": r.expected_mse, "feasible": feasible(&r.shares),
               "tx_power_w": r.power_w, "energy_binds": r.energy_binds}),
    ];
    for (name, m) in &baselines {
        let proj = project_capped_simplex(m, &caps);
        rows.push(json!({"name": name, "shares": m, "expected_mse": if feasible(m) { p.expected_mse(m, val, a.validation) } else { f64::NAN },
            "feasible": feasible(m), "projected_shares": proj, "projected_expected_mse": p.expected_mse(&proj, val, a.validation)}));
    }
    // what the shares become as whole heads and 32-column FFN blocks
    let plan = TpPlan::from_shares(&cfg, &r.shares, 32)?;
    let realised: Vec<serde_json::Value> = (0..k)
        .map(|d| {
            json!({"heads": plan.heads[d].len() as f64 / cfg.n_head as f64,
                   "ffn": plan.ffn[d].len() as f64 / cfg.n_ff as f64})
        })
        .collect();
    if a.json {
        println!(
            "{}",
            json!({"model": a.model, "profiles": a.profiles, "caps": caps, "results": rows,
                   "energy_budget_mj": p.energy_budget_j.iter().map(|e| e * 1e3).collect::<Vec<_>>(),
                   "signal": signal.name(),
                   "rounded_to_plan": realised, "trace": r.trace})
        );
        return Ok(());
    }
    println!(
        "{} on {k} devices, SNR {} dB, {} SCA iterations, expected MSE over {} channels",
        a.model, a.snr_db, a.iterations, a.validation
    );
    println!(
        "{:<22} {:>12} {:>9}  shares",
        "assignment", "E[MSE]", "feasible"
    );
    for row in &rows {
        println!(
            "{:<22} {:>12.4e} {:>9}  {}",
            row["name"].as_str().unwrap_or(""),
            row["expected_mse"].as_f64().unwrap_or(f64::NAN),
            row["feasible"],
            row["shares"]
                .as_array()
                .map(|v| v
                    .iter()
                    .map(|x| format!("{:.3}", x.as_f64().unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        );
    }
    println!(
        "signal model {}; energy budget per token (mJ): {}; transmit power of the SCA shares (mW): {}; energy constraint active: {:?}",
        signal.name(),
        p.energy_budget_j
            .iter()
            .map(|e| format!("{:.4}", e * 1e3))
            .collect::<Vec<_>>()
            .join(" "),
        r.power_w
            .iter()
            .map(|w| format!("{:.1}", w * 1e3))
            .collect::<Vec<_>>()
            .join(" "),
        r.energy_binds
    );
    println!(
        "caps (energy, memory, latency): {}",
        caps.iter()
            .map(|c| format!("{c:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "rounded to whole heads / FFN blocks: {}",
        realised
            .iter()
            .map(|v| format!(
                "{:.3}/{:.3}",
                v["heads"].as_f64().unwrap_or(0.0),
                v["ffn"].as_f64().unwrap_or(0.0)
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "trace: {}",
        r.trace
            .iter()
            .map(|s| format!("{}:{:.3e}", s.iteration, s.expected_mse))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// `airinfer plan --system …`: plan and time one system.
fn run_system(a: &PlanArgs) -> Result<()> {
    if a.tx_antennas != 1 || a.streams != 1 || a.rician_k_db.is_some() || a.signal != "paper" {
        bail!("--tx-antennas, --streams, --rician-k-db and --signal apply to the AirComp share plan, not to --system / --file (set them in the experiment file's [channel])");
    }
    use crate::experiment::kinds::system_setup;
    use crate::experiment::spec::{Kind, LinkSpec, LinkType};
    use crate::experiment::Experiment;
    use airinfer_llm::cost::WeightFormat;
    let (spec, base): (Spec, std::path::PathBuf) = match &a.file {
        Some(f) => {
            let e = Experiment::load(f).map_err(|e| anyhow::anyhow!("{e}"))?;
            if e.kind() != Kind::Systems {
                bail!(
                    "{}: kind = \"{}\", but airinfer plan --file needs kind = \"systems\"",
                    f.display(),
                    format!("{:?}", e.kind()).to_lowercase()
                );
            }
            let run = e.run(0);
            let dir = e.dir(run.point, "model.name");
            (run.point.spec.clone(), dir)
        }
        None => {
            let mut s: Spec = toml::from_str("kind = \"systems\"")?;
            s.model.name = a.model.clone();
            s.model.weight_bits = a.weight_bits;
            let mut profiles = a.profiles.clone();
            if profiles.is_empty() {
                bail!("--profiles: at least one device");
            }
            if let Some(c) = &a.cloud {
                profiles.push(c.clone());
            }
            s.devices.count = Some(profiles.len());
            s.devices.profiles = profiles.clone();
            s.channel.snr_db = a.snr_db;
            s.channel.bandwidth_hz = a.bandwidth_mhz * 1e6;
            s.channel.rx_antennas = a.rx_antennas;
            let kind = match a.link.as_str() {
                "wired" => LinkType::Wired,
                "wireless" => LinkType::Wireless,
                "ideal" => LinkType::Ideal,
                other => bail!("--link {other}: expected wired, wireless or ideal"),
            };
            s.system.link = LinkSpec {
                kind,
                bandwidth_mbps: Some(a.link_mbps),
                latency_ms: a.link_latency_ms,
                ..Default::default()
            };
            if a.cloud.is_some() {
                let c = profiles.len() - 1;
                for d in 0..c {
                    s.system.links.push(LinkSpec {
                        kind: LinkType::Wired,
                        from: Some(d),
                        to: Some(c),
                        bandwidth_mbps: Some(a.cloud_mbps),
                        latency_ms: a.cloud_latency_ms,
                        ..Default::default()
                    });
                }
            }
            s.system.samples = 1;
            s.system.prompt_tokens = a.prompt_tokens;
            s.system.gen_tokens = a.gen_tokens;
            s.system.source = a.source;
            s.system.memory_fraction = a.memory_fraction;
            (s, std::path::PathBuf::from("."))
        }
    };
    let mut spec = spec;
    if let Some(sys) = a.system {
        spec.system.name = sys;
    }
    if let Some(n) = a.samples {
        spec.system.samples = n;
    }
    if let Some(b) = a.micro_batch {
        spec.system.micro_batch = b;
    }
    if let Some(o) = &a.objective {
        spec.system.objective = objective_flag(o)?;
    }
    spec.system.perplexity = false;
    let dir = |_: &str| base.clone();
    spec.validate(&dir)
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let cfg = spec
        .preset()
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let setup = system_setup(
        &spec,
        &dir,
        &cfg,
        WeightFormat::Bits(spec.model.weight_bits),
    )?;
    let system = spec.system.name;
    if let Some(t) = &a.timeline {
        crate::plot::format_of(t)?;
    }
    let out = airinfer_sim::systems::run(system, &setup, a.seed, a.timeline.is_some())
        .map_err(|e| anyhow::anyhow!("{}: {e}", system.name()))?;
    if let (Some(path), Some(r)) = (&a.timeline, &out.report) {
        let m = setup.names.len();
        // the steady state: from the last first token, ten periods
        let lo = r.ttft_s.iter().cloned().fold(0.0, f64::max);
        let hi = lo + 10.0 * out.predicted_period_s;
        let spans: Vec<Span> = r
            .timeline
            .iter()
            .filter(|b| b.end_s > lo && b.start_s < hi)
            .map(|b| Span {
                lane: b
                    .resource
                    .strip_prefix("dev")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(m),
                kind: if b.resource.starts_with("dev") {
                    SpanKind::Compute
                } else {
                    SpanKind::Air
                },
                start_s: b.start_s.max(lo),
                end_s: b.end_s.min(hi),
            })
            .collect();
        crate::plot::gantt(
            &spans,
            m,
            &format!(
                "{} on {} devices, {} samples in flight (steady state)",
                system.name(),
                m,
                setup.workload.samples
            ),
            path,
        )?;
        eprintln!("timeline → {}", path.display());
    }
    let cost = setup.cost();
    let stages: Vec<serde_json::Value> = out
        .stages
        .iter()
        .flat_map(|a| a.stages.iter())
        .map(|s| {
            let layers = cost.layers_of(&s.units);
            json!({"device": s.device, "profile": setup.names[s.device],
                   "units": [s.units.start, s.units.end],
                   "blocks": [layers.start, layers.end.max(layers.start)],
                   "embedding": s.units.start == 0, "head": s.units.end == cost.n_units()})
        })
        .collect();
    let mem: Vec<f64> = out.memory_bytes.iter().map(|b| b / 1e9).collect();
    if a.json {
        println!(
            "{}",
            json!({"system": system.name(), "model": spec.model.name, "devices": setup.names,
                   "stages": stages,
                   "predicted": {"latency_ms_per_token": out.predicted_latency_s * 1e3,
                                 "throughput_tok_s": out.micro_batch as f64 / out.predicted_period_s,
                                 "ttft_ms": out.predicted_ttft_s * 1e3},
                   "simulated": {"samples": setup.workload.samples,
                                 "micro_batch": out.micro_batch, "ttft_ms": out.ttft_s * 1e3,
                                 "ms_per_token": out.per_token_s * 1e3, "tok_s": out.tok_s,
                                 "memory_gb": mem, "utilisation": out.utilisation}})
        );
        return Ok(());
    }
    println!(
        "{} on {} ({} devices), {} request(s) in flight, {} + {} tokens",
        system.name(),
        spec.model.name,
        setup.names.len(),
        setup.workload.samples,
        setup.workload.prompt_tokens,
        setup.workload.gen_tokens
    );
    for s in &stages {
        println!(
            "  device {:>2} {:<18} blocks {:>3}..{:<3}{}{}",
            s["device"],
            s["profile"].as_str().unwrap_or(""),
            s["blocks"][0],
            s["blocks"][1],
            if s["embedding"] == true {
                " +embedding"
            } else {
                ""
            },
            if s["head"] == true { " +head" } else { "" }
        );
    }
    if out.stages.is_some() {
        println!(
            "predicted: {:.3} ms per token alone, {:.1} tok/s pipelined, time to first token {:.3} ms",
            out.predicted_latency_s * 1e3,
            out.micro_batch as f64 / out.predicted_period_s,
            out.predicted_ttft_s * 1e3
        );
    }
    println!(
        "simulated ({} per micro-batch): time to first token {:.3} ms, {:.3} ms per token, {:.1} tok/s; memory GB per device {}",
        out.micro_batch,
        out.ttft_s * 1e3,
        out.per_token_s * 1e3,
        out.tok_s,
        mem.iter().map(|m| format!("{m:.3}")).collect::<Vec<_>>().join(" ")
    );
    Ok(())
}

/// Options of `airinfer bench plan`.
#[derive(Args, Debug)]
pub struct BenchPlanArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Solve times of every pipeline planner on Llama-2-70B (82 units) over 4, 6 and 8 devices
/// (mixed Jetsons with an RTX 3090 server, 950 Mbit/s links), and the speed of the event-driven
/// simulation (MDI ring, 8 samples, 512 tokens each).
pub fn bench(a: BenchPlanArgs) -> Result<()> {
    use airinfer_sim::schemes::pipeline::{Link, Network, Wire, Workload};
    use airinfer_sim::systems::{Setup, System};
    use std::time::Instant;
    let lib = Profiles::builtin();
    let pool = [
        "jetson-orin-nx",
        "jetson-agx-orin",
        "rtx-3090-server",
        "jetson-agx-orin",
        "jetson-orin-nx",
        "jetson-orin-nano",
        "jetson-agx-orin",
        "jetson-orin-nx",
    ];
    let setup = |m: usize, samples: usize, gen: usize| -> Result<Setup> {
        let names: Vec<String> = pool[..m].iter().map(|s| s.to_string()).collect();
        Ok(Setup {
            cfg: presets::llama2_70b(),
            weights: airinfer_llm::cost::WeightFormat::Q4_1,
            precision: airinfer_sim::device::Precision::F16,
            profiles: names
                .iter()
                .map(|n| lib.get(n).cloned())
                .collect::<Result<_, _>>()?,
            names,
            net: Network::uniform(
                m,
                Link::Wired {
                    bandwidth: 950e6 / 8.0,
                    latency_s: 1e-3,
                },
            ),
            radio: Default::default(),
            design: airinfer_sim::schemes::tp::Design::ZfSum,
            workload: Workload {
                samples,
                prompt_tokens: 32,
                gen_tokens: gen,
                micro_batch: 1,
                cold_start: false,
            },
            source: 0,
            memory_fraction: 1.0,
            wire: Wire::F16,
            overlap: 0,
            balance_every: 0,
            slowdowns: vec![],
            objective: Default::default(),
            ret: Default::default(),
            split: Default::default(),
        })
    };
    let mut rows = Vec::new();
    for m in [4usize, 6, 8] {
        let p = setup(m, 1, 32)?.problem()?;
        for sys in [
            System::EdgeshardLatency,
            System::EdgeshardLatencyReuse,
            System::CloudEdgeOpt,
            System::EdgeshardThroughput,
            System::Lingualinked,
            System::LingualinkedThroughput,
            System::Mdi,
        ] {
            let planner = sys.partitioner(1.0).expect("pipeline system");
            // best of 3
            let mut best = f64::INFINITY;
            let mut period = f64::NAN;
            for _ in 0..3 {
                let t = Instant::now();
                let a = planner.partition(&p);
                best = best.min(t.elapsed().as_secs_f64());
                period = a.map_or(f64::NAN, |a| a.bottleneck_s(&p));
            }
            rows.push(
                json!({"planner": sys.name(), "devices": m, "units": p.n_units(),
                             "solve_ms": best * 1e3, "period_ms": period * 1e3}),
            );
        }
    }
    let s = setup(4, 8, 512)?;
    let t = Instant::now();
    let out = airinfer_sim::systems::run(System::Mdi, &s, 1, false)?;
    let secs = t.elapsed().as_secs_f64();
    let jobs = 8 * 512 * (out.stages.as_ref().map_or(0, |a| a.stages.len()) * 2);
    let sim = json!({"system": "mdi", "devices": 4, "samples": 8, "tokens_per_sample": 512,
                     "jobs": jobs, "seconds": secs, "jobs_per_s": jobs as f64 / secs});
    if a.json {
        println!("{}", json!({"planners": rows, "simulation": sim}));
        return Ok(());
    }
    println!("Llama-2-70B, 82 units; best of 3 solves");
    println!(
        "{:<26} {:>8} {:>12} {:>12}",
        "planner", "devices", "solve ms", "period ms"
    );
    for r in &rows {
        println!(
            "{:<26} {:>8} {:>12.3} {:>12.2}",
            r["planner"].as_str().unwrap_or(""),
            r["devices"],
            r["solve_ms"].as_f64().unwrap_or(f64::NAN),
            r["period_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "simulation: MDI ring of 4, 8 samples × 512 tokens: {} compute + transfer jobs in {:.3} s ({:.0} jobs/s)",
        jobs,
        secs,
        jobs as f64 / secs
    );
    Ok(())
}
