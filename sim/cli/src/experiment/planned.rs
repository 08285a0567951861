//! The joint model assignment of a run (Zhang et al. 2025, item 3 of issue 19): the plan problem
//! built from the run's own model, devices, channel and `[plan]` settings — the same problem
//! for `kind = "plan"`, `airinfer plan` and an `eval` / `latency` run with `[model] shares =
//! "sca"` (or a baseline by name) — and the shares and transmit powers it gives.

use super::spec::{Devices, Invalid, Level, Spec};
use airinfer_llm::config::LlamaConfig;
use airinfer_plan::{baseline, onto_caps, PlanProblem, PlanSetup};
use airinfer_sim::schemes::tp::SchemeKind;

fn bad<T>(key: &str, msg: impl Into<String>) -> Result<T, Invalid> {
    Err((key.to_string(), msg.into()))
}

/// The plan problem of `spec` on architecture `cfg` over the devices `d`: the run's MAC (N_r,
/// N_t, L streams, Rayleigh or Rician `channel.rician_k_db`), SNR, bandwidth and gains, and
/// `[plan]` energy budget, latency budget and signal model. What the plan cannot model is
/// refused with the key that asks for it.
pub fn problem(spec: &Spec, cfg: &LlamaConfig, d: &Devices) -> Result<PlanProblem, Invalid> {
    let k = d.profiles.len();
    let c = &spec.channel;
    // the run's radio: the same range checks (antennas, streams, SNR, bandwidth, K-factor), its
    // gains and fading
    let radio = spec.radio(k)?;
    if c.csi_error_var != 0.0 {
        return bad(
            "channel.csi_error_var",
            format!(
                "{}: the plan designs its transceivers with perfect CSI (set 0, or give model.shares as numbers)",
                c.csi_error_var
            ),
        );
    }
    let e = &spec.plan.energy_mj;
    let energy: Option<Vec<f64>> = match e.len() {
        0 => None,
        1 => Some(vec![e[0] * 1e-3; k]),
        n if n == k => Some(e.iter().map(|x| x * 1e-3).collect()),
        n => {
            return bad(
                "plan.energy_mj",
                format!("{n} budgets for {k} devices (give one for all, or one per device)"),
            )
        }
    };
    if let Some(v) = &energy {
        for (i, x) in v.iter().enumerate() {
            if !(x.is_finite() && *x > 0.0) {
                return bad(
                    &format!("plan.energy_mj[{i}]"),
                    format!("{}: must be positive", x * 1e3),
                );
            }
        }
    }
    if let Some(l) = spec.plan.latency_ms {
        if !(l.is_finite() && l > 0.0) {
            return bad("plan.latency_ms", format!("{l}: must be positive"));
        }
    }
    PlanProblem::for_devices(&PlanSetup {
        cfg,
        profiles: &d.profiles,
        gains: &radio.gains,
        energy_budget_j: energy.as_deref(),
        snr_db: c.snr_db,
        rx_antennas: c.rx_antennas,
        tx_antennas: c.tx_antennas,
        streams: c.streams,
        small_scale: radio.small_scale,
        signal: spec.plan.signal,
        bandwidth_hz: c.bandwidth_hz,
        weight_bits: spec.model.weight_bits,
        latency_budget_s: spec.plan.latency_ms.map(|l| l * 1e-3),
    })
    .map_err(|e| ("plan".to_string(), e.to_string()))
}

/// A named assignment, planned.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Model share of each device.
    pub shares: Vec<f64>,
    /// Transmit power per channel use each device's energy budget leaves at its share, W.
    pub power_w: Vec<f64>,
    /// The reference power of `channel.snr_db` (the strongest device's maximum), W.
    pub reference_w: f64,
    /// Whether the named shares were within the energy / memory / latency caps (else projected
    /// onto them).
    pub feasible: bool,
}

impl Planned {
    /// Device n's transmit power relative to the reference power of `channel.snr_db` (the
    /// run's `tx_power`): `p_n / reference`.
    pub fn power_factors(&self) -> Vec<f64> {
        self.power_w.iter().map(|p| p / self.reference_w).collect()
    }

    /// The run's `share_<k>`, `shares_feasible` (0: the named shares broke a cap and were
    /// projected onto the caps) and `tx_power_mw_<k>` columns.
    pub fn columns(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .shares
            .iter()
            .enumerate()
            .map(|(i, x)| (format!("share_{i}"), *x))
            .collect();
        v.push(("shares_feasible".into(), self.feasible as u8 as f64));
        v.extend(
            self.power_w
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("tx_power_mw_{i}"), p * 1e3)),
        );
        v
    }
}

/// What a named assignment needs of the run besides the plan problem: AirComp at symbol level,
/// positive SCA sizes (checked by `airinfer check` too).
pub fn check(spec: &Spec, name: &str) -> Result<(), Invalid> {
    if spec.scheme.kind != SchemeKind::Aircomp {
        return bad(
            "model.shares",
            format!(
                "\"{name}\" plans shares and power for AirComp's energy model: set scheme.kind = \"aircomp\" (not {:?}), or give the shares as numbers",
                spec.scheme.kind
            ),
        );
    }
    if spec.waveform.level != Level::Symbol {
        return bad(
            "model.shares",
            format!("\"{name}\" is planned at symbol level: set waveform.level = \"symbol\", or give the shares as numbers"),
        );
    }
    if name == "sca" && (spec.plan.iterations == 0 || spec.plan.validation == 0) {
        return bad(
            if spec.plan.iterations == 0 {
                "plan.iterations"
            } else {
                "plan.validation"
            },
            "0: must be positive for shares = \"sca\"",
        );
    }
    Ok(())
}

/// Plan the assignment `name` (`sca`, `uniform`, `compute`, `memory`) for `spec` on `cfg` over
/// devices `d`: SCA with `[plan] iterations` and `validation` from the file's `seed` (every
/// replication and sweep point of the same settings gets the same plan), a baseline projected
/// onto the caps when it breaks them. Needs AirComp at symbol level.
pub fn plan(spec: &Spec, cfg: &LlamaConfig, d: &Devices, name: &str) -> Result<Planned, Invalid> {
    check(spec, name)?;
    let p = problem(spec, cfg, d)?;
    let caps = p.caps();
    let (shares, feasible) = if name == "sca" {
        let r = p
            .optimise(spec.plan.iterations, spec.seed, spec.plan.validation)
            .map_err(|e| ("plan".to_string(), e.to_string()))?;
        (r.shares, true)
    } else {
        let Some(m) = baseline(name, &d.profiles) else {
            return bad(
                "model.shares",
                format!("'{name}': not an assignment (sca, uniform, compute, memory)"),
            );
        };
        onto_caps(m, &caps)
    };
    Ok(Planned {
        power_w: (0..shares.len()).map(|n| p.power(n, shares[n])).collect(),
        reference_w: p.reference_power_w(),
        shares,
        feasible,
    })
}
