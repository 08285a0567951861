//! Joint model assignment (the long timescale of Zhang et al. 2025): choose each device's model
//! share m (on the simplex) to minimise the expected AirComp all-reduce MSE over the channel
//! distribution, under per-device energy and memory budgets.
//!
//! Model. Device n holding a share m_n of every block computes `m_n F` FLOPs per token (F = the
//! whole model's) at `e_n` J/FLOP and sends `U` channel uses of all-reduce per token at power
//! p_n per use over bandwidth B (energy `U p_n / B`). Its per-token energy budget E_n couples the
//! two (the paper's `e_n m_n s_tot + (L₀/L) tr(B_nB_nᴴ) ≤ P_n^max`):
//! `p_n(m) = min(p_n^max, (E_n − e_n m_n F) B / U)`. Its partial sums have variance
//! `σ_n² = m_n σ̄²` (a sum over m_n of the model's independent terms). For one channel
//! realisation the short timescale designs the transceiver ([`aircomp::sca()`]); its MSE is that of
//! the min-norm problem `min σ²‖a‖² s.t. aᴴQ_na ≥ c_n(m) = σ_n²/p_n(m)`, whose sensitivity to
//! c_n is σ² λ_n (λ the KKT multipliers, found by non-negative least squares on the
//! stationarity condition `a = Σ λ_n Q_n a`). Hence a stochastic gradient in m.
//!
//! Algorithm: stochastic successive convex approximation (Liu, Scutari et al. style): at step t
//! draw a channel, form the recursive gradient estimate `d_t = (1 − ρ_t) d_{t−1} + ρ_t ∇f(m_t; H_t)`,
//! minimise the strongly convex surrogate `d_tᵀ(m − m_t) + τ‖m − m_t‖²` over the feasible set
//! (simplex ∩ per-device caps from energy and memory; a projection), and move
//! `m_{t+1} = (1 − γ_t) m_t + γ_t m̂_t` with `ρ_t = (t+1)^{-0.6}`, `γ_t = (t+1)^{-0.8}` (γ/ρ → 0).

use crate::device::{DeviceProfile, Precision};
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::Shard;
use airinfer_phy::aircomp::{self, Problem};
use airinfer_phy::channel::{Mac, MacConfig, SmallScale};
use airinfer_phy::rng::{self, component};
use airinfer_phy::CMat;
use serde::Serialize;

/// The long-timescale problem.
#[derive(Debug, Clone)]
pub struct PlanProblem {
    /// The MAC (devices, antennas, fading) whose realisations are sampled.
    pub mac: Mac,
    /// Large-scale gain of each device (linear).
    pub gains: Vec<f64>,
    /// Per-token energy budget E_n, J.
    pub energy_budget_j: Vec<f64>,
    /// Compute energy e_n, J/FLOP.
    pub energy_per_flop: Vec<f64>,
    /// Maximum transmit power per channel use p_n^max, W.
    pub max_power_w: Vec<f64>,
    /// Memory capacity, bytes.
    pub mem_capacity: Vec<f64>,
    /// FLOPs of the whole model per token, F.
    pub flops_per_token: f64,
    /// Bytes of the whole model's shardable weights.
    pub model_bytes: f64,
    /// All-reduce channel uses per token, U.
    pub uses_per_token: f64,
    /// Bandwidth, Hz.
    pub bandwidth_hz: f64,
    /// Receiver noise variance per channel use, W.
    pub noise_var: f64,
    /// Variance of the whole model's partial sum σ̄² (device n's is m_n σ̄²).
    pub signal_var: f64,
    /// Optional per-token compute-latency budget: device n's share must satisfy
    /// `m_n · full_model_time_s[n] ≤ budget` (decode time scales with the share held).
    pub latency_budget_s: Option<f64>,
    /// Time device n needs for the whole model's decode step, s (used with the latency budget).
    pub full_model_time_s: Vec<f64>,
}

/// Invalid planning input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// Bad parameters or an infeasible set.
    #[error("plan: {0}")]
    Invalid(String),
}

/// One step of the trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceStep {
    /// Iteration.
    pub iteration: usize,
    /// Expected MSE on the validation channels.
    pub expected_mse: f64,
    /// Shares.
    pub shares: Vec<f64>,
}

/// The result of the optimisation.
#[derive(Debug, Clone, Serialize)]
pub struct PlanResult {
    /// Final shares.
    pub shares: Vec<f64>,
    /// Expected MSE of the final shares on the validation channels.
    pub expected_mse: f64,
    /// Objective along the iterations.
    pub trace: Vec<TraceStep>,
    /// Upper bound on each share (energy and memory).
    pub caps: Vec<f64>,
}

impl PlanProblem {
    fn k(&self) -> usize {
        self.mac.cfg.devices
    }

    /// Check the inputs.
    pub fn validate(&self) -> Result<(), PlanError> {
        let k = self.k();
        let bad = |m: String| Err(PlanError::Invalid(m));
        for (name, v) in [
            ("gains", &self.gains),
            ("energy_budget_j", &self.energy_budget_j),
            ("energy_per_flop", &self.energy_per_flop),
            ("max_power_w", &self.max_power_w),
            ("mem_capacity", &self.mem_capacity),
        ] {
            if v.len() != k {
                return bad(format!("{name}: {} values for {k} devices", v.len()));
            }
            if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                return bad(format!("{name}: {x} must be finite and ≥ 0"));
            }
        }
        for (name, v) in [
            ("flops_per_token", self.flops_per_token),
            ("model_bytes", self.model_bytes),
            ("uses_per_token", self.uses_per_token),
            ("bandwidth_hz", self.bandwidth_hz),
            ("noise_var", self.noise_var),
            ("signal_var", self.signal_var),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} = {v}: must be positive"));
            }
        }
        if let Some(b) = self.latency_budget_s {
            if !(b.is_finite() && b > 0.0) || self.full_model_time_s.len() != k {
                return bad(format!(
                    "latency_budget_s = {b} needs to be positive with one full_model_time_s per device ({} given)",
                    self.full_model_time_s.len()
                ));
            }
        }
        let caps = self.caps();
        if caps.iter().sum::<f64>() < 1.0 {
            return bad(format!(
                "the devices' energy, memory and latency budgets cannot hold the whole model (caps {caps:?} sum below 1)"
            ));
        }
        Ok(())
    }

    /// Largest share each device can take: memory `mem/model_bytes`, energy (leave at least
    /// 1 % of the budget for transmission), and the latency budget if any.
    pub fn caps(&self) -> Vec<f64> {
        (0..self.k())
            .map(|n| {
                let lat = match (self.latency_budget_s, self.full_model_time_s.get(n)) {
                    (Some(b), Some(&t)) if t > 0.0 => b / t,
                    _ => f64::INFINITY,
                };
                let mem = (self.mem_capacity[n] / self.model_bytes).min(lat);
                let e = if self.energy_per_flop[n] > 0.0 {
                    0.99 * self.energy_budget_j[n]
                        / (self.energy_per_flop[n] * self.flops_per_token)
                } else {
                    f64::INFINITY
                };
                mem.min(e).clamp(0.0, 1.0)
            })
            .collect()
    }

    /// Transmit power per use of device n at share m_n.
    pub fn power(&self, n: usize, m: f64) -> f64 {
        let left = self.energy_budget_j[n] - self.energy_per_flop[n] * m * self.flops_per_token;
        (left * self.bandwidth_hz / self.uses_per_token)
            .min(self.max_power_w[n])
            .max(0.0)
    }

    fn channels(&self, seed: u64, i: u64) -> Vec<CMat> {
        let mut r = rng::stream(seed, &[component::FADING, i]);
        self.mac.realise(&self.gains, &mut r)
    }

    /// MSE of one realisation at shares `m` and its gradient in m.
    pub fn mse_and_gradient(&self, m: &[f64], h: &[CMat]) -> (f64, Vec<f64>) {
        let k = self.k();
        let var: Vec<f64> = m.iter().map(|x| x.max(0.0) * self.signal_var).collect();
        let pw: Vec<f64> = (0..k).map(|n| self.power(n, m[n]).max(1e-30)).collect();
        let p = Problem {
            channels: h,
            signal_var: &var,
            power: &pw,
            noise_var: self.noise_var,
            streams: 1,
        };
        let Ok(t) = aircomp::sca(&p, 50) else {
            return (f64::INFINITY, vec![0.0; k]);
        };
        let a = &t.receive_beamformer;
        // KKT: a = Σ λ_n Q_n a over the binding constraints (c_n = σ_n²/p_n)
        let qa: Vec<CMat> = h.iter().map(|hn| hn * (hn.adjoint() * a)).collect();
        let c: Vec<f64> = (0..k).map(|n| var[n] / pw[n]).collect();
        let act: Vec<usize> = (0..k)
            .filter(|&n| c[n] > 0.0 && (a.adjoint() * &qa[n])[(0, 0)].re <= c[n] * (1.0 + 1e-6))
            .collect();
        let lambda = nnls(&qa, &act, a);
        // ∂c_n/∂m_n = σ̄²/p_n − σ_n² p_n'/p_n², p_n' = −e_n F B / U while the energy binds
        let mut grad = vec![0.0; k];
        for (&n, &l) in act.iter().zip(&lambda) {
            let binding = self.power(n, m[n]) < self.max_power_w[n];
            let dp = if binding {
                -self.energy_per_flop[n] * self.flops_per_token * self.bandwidth_hz
                    / self.uses_per_token
            } else {
                0.0
            };
            let dc = self.signal_var / pw[n] - var[n] * dp / (pw[n] * pw[n]);
            grad[n] = self.noise_var * l * dc;
        }
        (t.analytic_mse, grad)
    }

    /// Expected MSE over `n` validation realisations (common random numbers: stream `seed`).
    pub fn expected_mse(&self, m: &[f64], seed: u64, n: usize) -> f64 {
        (0..n as u64)
            .map(|i| self.mse_and_gradient(m, &self.channels(seed, i)).0)
            .sum::<f64>()
            / n as f64
    }

    /// Stochastic SCA from the uniform (projected) shares.
    pub fn optimise(
        &self,
        iterations: usize,
        seed: u64,
        validation: usize,
    ) -> Result<PlanResult, PlanError> {
        self.validate()?;
        let k = self.k();
        let caps = self.caps();
        let mut m = project_capped_simplex(&vec![1.0 / k as f64; k], &caps);
        let mut d = vec![0.0; k];
        let mut trace = Vec::new();
        let val_seed = seed ^ 0xA5A5_0000_0000_0001;
        let every = (iterations / 20).max(1);
        trace.push(TraceStep {
            iteration: 0,
            expected_mse: self.expected_mse(&m, val_seed, validation),
            shares: m.clone(),
        });
        let mut scale: Option<f64> = None;
        for t in 0..iterations {
            let h = self.channels(seed, 1_000_000 + t as u64);
            let (_, g) = self.mse_and_gradient(&m, &h);
            let rho = ((t + 1) as f64).powf(-0.6);
            let gamma = ((t + 1) as f64).powf(-0.8);
            for (di, gi) in d.iter_mut().zip(&g) {
                *di = (1.0 - rho) * *di + rho * gi;
            }
            // proximal weight τ set once from the first gradient's size (so a surrogate step
            // moves the shares by O(1) at most)
            let tau = *scale
                .get_or_insert_with(|| d.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-300));
            let target: Vec<f64> = m
                .iter()
                .zip(&d)
                .map(|(mi, di)| mi - di / (2.0 * tau))
                .collect();
            let hat = project_capped_simplex(&target, &caps);
            for (mi, hi) in m.iter_mut().zip(&hat) {
                *mi = (1.0 - gamma) * *mi + gamma * hi;
            }
            if (t + 1) % every == 0 || t + 1 == iterations {
                trace.push(TraceStep {
                    iteration: t + 1,
                    expected_mse: self.expected_mse(&m, val_seed, validation),
                    shares: m.clone(),
                });
            }
        }
        Ok(PlanResult {
            expected_mse: trace.last().map_or(f64::NAN, |s| s.expected_mse),
            shares: m,
            trace,
            caps,
        })
    }
}

/// What [`PlanProblem::for_devices`] needs: a model, devices and the radio.
#[derive(Debug, Clone)]
pub struct PlanSetup<'a> {
    /// The model architecture.
    pub cfg: &'a LlamaConfig,
    /// Each device's profile (compute energy, memory, transmit power).
    pub profiles: &'a [DeviceProfile],
    /// Large-scale gain of each device, linear.
    pub gains: &'a [f64],
    /// Per-token energy budget of each device, J.
    pub energy_budget_j: &'a [f64],
    /// SNR of a device at full power and unit gain, per channel use, dB.
    pub snr_db: f64,
    /// AP antennas.
    pub rx_antennas: usize,
    /// Bandwidth, Hz.
    pub bandwidth_hz: f64,
    /// Bits per weight (memory check).
    pub weight_bits: f64,
    /// Optional per-token compute-latency budget, s.
    pub latency_budget_s: Option<f64>,
}

impl PlanProblem {
    /// The problem for a model on devices: Rayleigh MAC with single-antenna devices, noise set
    /// so that the strongest transmitter's full power gives `snr_db`, model cost from `llm::cost`.
    pub fn for_devices(s: &PlanSetup) -> Result<PlanProblem, PlanError> {
        let k = s.profiles.len();
        let invalid = |e: String| PlanError::Invalid(e);
        if k == 0 {
            return Err(invalid("need at least one device".into()));
        }
        if !(s.weight_bits.is_finite() && s.weight_bits > 0.0) {
            return Err(invalid(format!(
                "weight_bits = {}: must be positive",
                s.weight_bits
            )));
        }
        if !s.snr_db.is_finite() {
            return Err(invalid(format!("snr_db = {}: must be finite", s.snr_db)));
        }
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: s.rx_antennas,
            tx_antennas: 1,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .map_err(|e| invalid(e.to_string()))?;
        let cfg = s.cfg;
        let full = Shard::full(cfg);
        let weights = cfg.n_layer as f64 * full.matrix_weights(cfg) as f64;
        let max_power: Vec<f64> = s.profiles.iter().map(|p| p.max_tx_power_w()).collect();
        let pref = max_power.iter().cloned().fold(0.0, f64::max);
        let p = PlanProblem {
            mac,
            gains: s.gains.to_vec(),
            energy_budget_j: s.energy_budget_j.to_vec(),
            energy_per_flop: s.profiles.iter().map(|p| p.energy_per_flop).collect(),
            max_power_w: max_power,
            mem_capacity: s.profiles.iter().map(|p| p.mem_capacity).collect(),
            flops_per_token: 2.0 * weights,
            model_bytes: weights * s.weight_bits / 8.0,
            uses_per_token: cfg.n_layer as f64 * 2.0 * cfg.n_embd as f64 / 2.0,
            bandwidth_hz: s.bandwidth_hz,
            noise_var: pref * 10f64.powf(-s.snr_db / 10.0),
            signal_var: 1.0,
            latency_budget_s: s.latency_budget_s,
            full_model_time_s: s
                .profiles
                .iter()
                .map(|p| {
                    p.compute_time_s(
                        2.0 * weights,
                        weights * s.weight_bits / 8.0,
                        8 * cfg.n_layer,
                        Precision::F16,
                    )
                })
                .collect(),
        };
        p.validate()?;
        Ok(p)
    }
}

/// The baseline assignments: uniform, compute-proportional (FP16 peak) and memory-proportional.
pub fn baselines(profiles: &[DeviceProfile]) -> Vec<(&'static str, Vec<f64>)> {
    let k = profiles.len();
    let norm = |v: Vec<f64>| {
        let s: f64 = v.iter().sum();
        v.into_iter().map(|x| x / s).collect::<Vec<f64>>()
    };
    vec![
        ("uniform", vec![1.0 / k as f64; k]),
        (
            "compute_proportional",
            norm(profiles.iter().map(|p| p.peak(Precision::F16)).collect()),
        ),
        (
            "memory_proportional",
            norm(profiles.iter().map(|p| p.mem_capacity).collect()),
        ),
    ]
}

/// Non-negative least squares `min_{λ≥0} ‖a − Σ_j λ_j v_j‖²` over the vectors `v[act[j]]`
/// (complex, as real 2n-vectors), by projected coordinate descent.
fn nnls(v: &[CMat], act: &[usize], a: &CMat) -> Vec<f64> {
    let n = act.len();
    let dot = |x: &CMat, y: &CMat| (x.adjoint() * y)[(0, 0)].re;
    let g: Vec<Vec<f64>> = act
        .iter()
        .map(|&i| act.iter().map(|&j| dot(&v[i], &v[j])).collect())
        .collect();
    let b: Vec<f64> = act.iter().map(|&i| dot(&v[i], a)).collect();
    let mut l = vec![0.0; n];
    for _ in 0..500 {
        let mut change = 0.0f64;
        for j in 0..n {
            if g[j][j] <= 0.0 {
                continue;
            }
            let r: f64 = b[j]
                - (0..n)
                    .filter(|&i| i != j)
                    .map(|i| g[j][i] * l[i])
                    .sum::<f64>();
            let new = (r / g[j][j]).max(0.0);
            change = change.max((new - l[j]).abs());
            l[j] = new;
        }
        if change < 1e-14 {
            break;
        }
    }
    l
}

/// Euclidean projection onto `{m : Σ m = 1, 0 ≤ m_n ≤ cap_n}` (bisection on the shift).
pub fn project_capped_simplex(x: &[f64], caps: &[f64]) -> Vec<f64> {
    let f = |s: f64| -> f64 {
        x.iter()
            .zip(caps)
            .map(|(v, c)| (v - s).clamp(0.0, *c))
            .sum()
    };
    let lo0 = x.iter().cloned().fold(f64::INFINITY, f64::min) - 1.0;
    let hi0 = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = (lo0, hi0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 1.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = 0.5 * (lo + hi);
    x.iter()
        .zip(caps)
        .map(|(v, c)| (v - s).clamp(0.0, *c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airinfer_phy::channel::{MacConfig, SmallScale};

    fn hetero() -> PlanProblem {
        let k = 4;
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: 4,
            tx_antennas: 1,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .unwrap();
        PlanProblem {
            mac,
            // two near devices, two far ones (10 dB weaker)
            gains: vec![1.0, 1.0, 0.1, 0.1],
            // per token: 0.2 J each; compute efficiencies differ 4×
            energy_budget_j: vec![0.2; k],
            energy_per_flop: vec![1e-12, 4e-12, 1e-12, 4e-12],
            max_power_w: vec![1.0; k],
            mem_capacity: vec![8e9, 8e9, 8e9, 2e9],
            flops_per_token: 3e10,
            model_bytes: 4e9,
            uses_per_token: 30.0 * 2.0 * 288.0,
            bandwidth_hz: 10e6,
            noise_var: 1e-3,
            signal_var: 1.0,
            latency_budget_s: None,
            full_model_time_s: vec![],
        }
    }

    #[test]
    fn projection_onto_the_capped_simplex() {
        let caps = [0.5, 0.5, 0.2];
        let p = project_capped_simplex(&[0.9, 0.9, 0.9], &caps);
        // 200 bisection steps reach f64 resolution and clamp() keeps the caps exactly: the sum
        // is off by a few ε (also below)
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p
            .iter()
            .zip(&caps)
            .all(|(v, c)| *v >= 0.0 && *v <= c + 1e-12));
        // already feasible points stay put
        let q = project_capped_simplex(&[0.4, 0.4, 0.2], &caps);
        assert!(q
            .iter()
            .zip([0.4, 0.4, 0.2])
            .all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let p = hetero();
        let h = p.channels(3, 0);
        let m = [0.3, 0.2, 0.3, 0.2];
        let (f0, g) = p.mse_and_gradient(&m, &h);
        // the directional derivative along a simplex direction (move share from 0 to 2)
        let dir = [1.0, 0.0, -1.0, 0.0];
        let eps = 1e-5;
        let mp: Vec<f64> = m.iter().zip(&dir).map(|(a, b)| a + eps * b).collect();
        let mm: Vec<f64> = m.iter().zip(&dir).map(|(a, b)| a - eps * b).collect();
        let fd = (p.mse_and_gradient(&mp, &h).0 - p.mse_and_gradient(&mm, &h).0) / (2.0 * eps);
        let an: f64 = g.iter().zip(&dir).map(|(a, b)| a * b).sum();
        assert!(f0 > 0.0);
        // central difference: truncation O(eps²·f''') and rounding ε·|f|/eps ≈ 2e-11 relative
        // (measured 2.3e-10 in all): 5 % is loose on purpose, it catches a wrong gradient (sign,
        // factor, missing term), not rounding
        assert!(
            (fd - an).abs() < 0.05 * fd.abs().max(an.abs()) + 1e-12,
            "fd {fd} vs {an}"
        );
    }

    #[test]
    fn sca_decreases_the_objective_and_beats_the_baselines_within_the_constraints() {
        let p = hetero();
        let r = p.optimise(200, 7, 64).unwrap();
        let first = r.trace.first().unwrap().expected_mse;
        assert!(r.expected_mse < first, "{} vs {first}", r.expected_mse);
        // non-increasing along the trace, up to Monte-Carlo-free noise of the common validation set
        // TUNED: the steps descend on the training draws, the trace is scored on separate
        // validation draws (64 each); 2 % is not derived (measured ≤ 0.87 %)
        for w in r.trace.windows(2) {
            assert!(
                w[1].expected_mse <= w[0].expected_mse * 1.02,
                "{:?}",
                r.trace
            );
        }
        // feasibility: simplex, caps (memory and energy), positive transmit power (the shares
        // come from the bisection projection: exact to a few ε, 1e-9/1e-12 are rounding room)
        assert!((r.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        for (n, (&m, &c)) in r.shares.iter().zip(&r.caps).enumerate() {
            assert!(m >= -1e-12 && m <= c + 1e-9);
            assert!(m * p.model_bytes <= p.mem_capacity[n] * (1.0 + 1e-9));
            assert!(p.energy_per_flop[n] * m * p.flops_per_token < p.energy_budget_j[n]);
        }
        let uniform = vec![0.25; 4];
        let compute: Vec<f64> = {
            let s: f64 = p.energy_per_flop.iter().map(|e| 1.0 / e).sum();
            p.energy_per_flop.iter().map(|e| 1.0 / e / s).collect()
        };
        let val = 0xA5A5_0000_0000_0001 ^ 7;
        let mu = p.expected_mse(&uniform, val, 64);
        let mc = p.expected_mse(&compute, val, 64);
        eprintln!(
            "SCA {} uniform {mu} compute-proportional {mc} shares {:?}",
            r.expected_mse, r.shares
        );
        assert!(r.expected_mse < mu && r.expected_mse < mc);
        // a latency budget caps the fast near devices: the plan must move share to the others
        let tight = PlanProblem {
            latency_budget_s: Some(0.03),
            full_model_time_s: vec![0.1; 4],
            ..p.clone()
        };
        let t = tight.optimise(100, 7, 32).unwrap();
        // cap 0.03 / 0.1 = 0.3 up to rounding
        assert!(t.shares.iter().all(|&m| m <= 0.3 + 1e-9), "{:?}", t.shares);
        // a logical bound (a tighter problem cannot do better) with 2 % room for SCA's local
        // optimum and the validation draws; measured 4.2×, so the room is never used
        assert!(t.expected_mse >= r.expected_mse * 0.98);
        let impossible = PlanProblem {
            latency_budget_s: Some(0.01),
            full_model_time_s: vec![0.1; 4],
            ..p
        };
        assert!(impossible.optimise(10, 7, 4).is_err());
    }
}
