//! `airinfer table1`: Table I of Zhang et al. 2025 (per-token generation time of Llama models on
//! 1/2/4/8 devices), from the analytic cost model, the device profiles and the simulated
//! all-reduce (the same `TpCollective` that `eval --scheme` uses, fed vectors of the model's
//! width), beside the paper's values.

use airinfer_llm::cost::{presets, WeightFormat};
use airinfer_llm::tp::TpPlan;
use airinfer_sim::device::{Precision, Profiles};
use airinfer_sim::schemes::tp::{
    fits_memory, simulate_decode, ComputeModel, Design, RadioConfig, SchemeKind, TpCollective,
};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

/// Options of `airinfer table1`.
#[derive(Args, Debug)]
pub struct Table1Args {
    /// Device profile of every device.
    #[arg(long, default_value = "jetson-agx-orin")]
    pub profile: String,
    /// Weight format (bits per weight incl. scales): q8_0 = 8.5, f16 = 16, q4_0 = 4.5.
    #[arg(long, default_value_t = 8.5)]
    pub weight_bits: f64,
    /// SNR per device and channel use, dB.
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    pub snr_db: f64,
    /// Bandwidth, MHz.
    #[arg(long, default_value_t = 10.0)]
    pub bandwidth_mhz: f64,
    /// Fixed cost per all-reduce round, µs.
    #[arg(long, default_value_t = 50.0)]
    pub overhead_us: f64,
    /// Context already in the KV cache when the token is generated.
    #[arg(long, default_value_t = 128)]
    pub past: usize,
    /// Tokens simulated per entry (averaged).
    #[arg(long, default_value_t = 2)]
    pub tokens: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The paper's Table I, ms per token on 1/2/4/8 devices (None: does not fit).
const PAPER: [(&str, [Option<f64>; 4]); 4] = [
    (
        "llama2-7b",
        [Some(114.2), Some(69.7), Some(45.7), Some(37.8)],
    ),
    (
        "llama2-13b",
        [Some(217.3), Some(128.5), Some(81.3), Some(66.4)],
    ),
    ("llama2-70b", [None, Some(660.9), Some(423.0), Some(354.2)]),
    ("llama3-70b", [None, Some(746.8), Some(477.1), Some(406.0)]),
];

pub fn run(a: Table1Args) -> Result<()> {
    if a.tokens == 0 {
        bail!("--tokens must be positive");
    }
    if !(a.weight_bits.is_finite() && a.weight_bits > 0.0) {
        bail!("--weight-bits {}: must be positive", a.weight_bits);
    }
    let prof = Profiles::builtin().get(&a.profile)?.clone();
    let radio = RadioConfig {
        snr_db: a.snr_db,
        bandwidth_hz: a.bandwidth_mhz * 1e6,
        round_overhead_s: a.overhead_us * 1e-6,
        ..RadioConfig::default()
    };
    let mut rows = Vec::new();
    for (name, paper) in PAPER {
        let cfg = presets::by_name(name).expect("preset exists");
        for (i, k) in [1usize, 2, 4, 8].into_iter().enumerate() {
            let plan = TpPlan::from_shares(&cfg, &vec![1.0; k], 32)?;
            let profiles = vec![prof.clone(); k];
            let fits = fits_memory(&cfg, &plan, &profiles, a.weight_bits, a.past);
            let mut entry =
                json!({"model": name, "devices": k, "paper_ms": paper[i], "fits": fits});
            if fits {
                for scheme in [SchemeKind::Aircomp, SchemeKind::Digital] {
                    let compute = ComputeModel::new(
                        &cfg,
                        &plan,
                        profiles.clone(),
                        Precision::F16,
                        WeightFormat::Bits(a.weight_bits),
                    );
                    let mut c =
                        TpCollective::new(scheme, Design::ZfSum, radio.clone(), compute, a.seed)?;
                    simulate_decode(&mut c, &cfg, a.past, a.tokens, a.seed);
                    let ms = c.now_s() / a.tokens as f64 * 1e3;
                    let air = c.totals.airtime_s / a.tokens as f64 * 1e3;
                    let key = if scheme == SchemeKind::Aircomp {
                        "aircomp"
                    } else {
                        "digital"
                    };
                    entry[key] = json!({"ms_per_token": ms, "airtime_ms": air});
                }
            }
            rows.push(entry);
        }
    }
    if a.json {
        println!(
            "{}",
            json!({"profile": a.profile, "weight_bits": a.weight_bits, "snr_db": a.snr_db,
                   "bandwidth_mhz": a.bandwidth_mhz, "overhead_us": a.overhead_us, "past": a.past, "rows": rows})
        );
        return Ok(());
    }
    println!(
        "Per-token generation time, ms (every device a {}; {} bits/weight; SNR {} dB; {} MHz; {} µs per round; ZF sum-direction AirComp vs int8 OFDMA digital)",
        a.profile, a.weight_bits, a.snr_db, a.bandwidth_mhz, a.overhead_us
    );
    println!(
        "{:<12} {:>2}  {:>8}  {:>9}  {:>9}  {:>8}",
        "model", "K", "paper", "AirComp", "digital", "speed-up"
    );
    for r in &rows {
        let f = |v: &serde_json::Value| v.as_f64().map_or("—".to_string(), |x| format!("{x:.1}"));
        let air = r["aircomp"]["ms_per_token"].as_f64();
        let dig = r["digital"]["ms_per_token"].as_f64();
        println!(
            "{:<12} {:>2}  {:>8}  {:>9}  {:>9}  {:>8}",
            r["model"].as_str().unwrap_or(""),
            r["devices"],
            f(&r["paper_ms"]),
            air.map_or("—".into(), |x| format!("{x:.1}")),
            dig.map_or("—".into(), |x| format!("{x:.1}")),
            match (air, dig) {
                (Some(x), Some(y)) if x > 0.0 => format!("{:.2}×", y / x),
                _ => "—".into(),
            }
        );
    }
    Ok(())
}
