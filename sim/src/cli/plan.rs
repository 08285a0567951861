//! `airinfer plan`: the joint model assignment (long timescale) for a set of devices.

use crate::device::Profiles;
use crate::plan::{baselines, project_capped_simplex, PlanProblem, PlanSetup};
use airinfer_llm::cost::presets;
use airinfer_llm::tp::TpPlan;
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
    /// Per-token energy budget of each device, mJ (one or one per device).
    #[arg(long, value_delimiter = ',', default_values_t = vec![5.0])]
    pub energy_mj: Vec<f64>,
    /// SNR of a device at full power and 0 dB gain, per channel use, dB.
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    pub snr_db: f64,
    /// AP antennas.
    #[arg(long, default_value_t = 4)]
    pub rx_antennas: usize,
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
}

fn per_device(v: &[f64], k: usize, what: &str) -> Result<Vec<f64>> {
    match v.len() {
        1 => Ok(vec![v[0]; k]),
        n if n == k => Ok(v.to_vec()),
        n => bail!("--{what}: {n} values for {k} devices (give one, or one per device)"),
    }
}

pub fn run(a: PlanArgs) -> Result<()> {
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
    let energy = per_device(&a.energy_mj, k, "energy-mj")?;
    if !(a.weight_bits.is_finite() && a.weight_bits > 0.0) {
        bail!("--weight-bits {}: must be positive", a.weight_bits);
    }
    if a.iterations == 0 || a.validation == 0 {
        bail!("--iterations and --validation must be positive");
    }
    let p = PlanProblem::for_devices(&PlanSetup {
        cfg: &cfg,
        profiles: &profiles,
        gains: &gains
            .iter()
            .map(|g| 10f64.powf(g / 10.0))
            .collect::<Vec<_>>(),
        energy_budget_j: &energy.iter().map(|e| e * 1e-3).collect::<Vec<_>>(),
        snr_db: a.snr_db,
        rx_antennas: a.rx_antennas,
        bandwidth_hz: a.bandwidth_mhz * 1e6,
        weight_bits: a.weight_bits,
        latency_budget_s: a.latency_ms.map(|l| l * 1e-3),
    })?;
    let r = p.optimise(a.iterations, a.seed, a.validation)?;
    let val = a.seed ^ 0xA5A5_0000_0000_0001;
    let caps = p.caps();
    let baselines = baselines(&profiles);
    let feasible = |m: &[f64]| m.iter().zip(&caps).all(|(x, c)| *x <= c + 1e-9);
    let mut rows = vec![
        json!({"name": "sca", "shares": r.shares, "expected_mse": r.expected_mse, "feasible": feasible(&r.shares)}),
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
