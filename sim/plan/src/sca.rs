//! Joint model assignment (the long timescale of Zhang et al. 2025): choose each device's model
//! share m (on the simplex) to minimise the expected AirComp all-reduce MSE over the channel
//! distribution, under per-device energy and memory budgets.
//!
//! Model. Device n holding a share m_n of every block computes `m_n F` FLOPs per token (F = the
//! whole model's) at `e_n` J/FLOP and sends `U = L₀/L` channel uses of all-reduce per token (L₀
//! complex values per token over L streams) with precoder B_n, spending `σ_n² tr(B_nB_nᴴ)` per
//! use over bandwidth B. Its per-token energy is the paper's
//! `e_n m_n F + (U/B) σ_n² tr(B_nB_nᴴ) ≤ E_n` (`e_n m_n s_tot + (L₀/L) tr(B_nB_nᴴ) ≤ P_n^max`),
//! for every channel realisation, and the radio caps the power per use at `p_n^max`.
//!
//! Signal model ([`SignalModel`]). The paper's (the default): every device's partial sums have
//! the same variance σ̄², whatever its share — the share reaches the MSE only through the energy
//! the device spends computing it, which the transmitter then lacks. Ours, labelled
//! `share_scaled`: `σ_n² = m_n σ̄²` (a sum over m_n of the model's independent terms), a
//! coupling the paper does not have.
//!
//! Two timescales. For one channel realisation (instantaneous CSI) the short timescale designs
//! the transceiver ([`aircomp::sca()`], any N_r, N_t and L streams) under the power per use the
//! energy constraint leaves, `p_n(m) = min(p_n^max, (E_n − e_n m_n F) B / U)`. The energy
//! constraint is linear in m_n and in the transmit power, so its surrogate in the long-timescale
//! step is exact: the feasible set of the shares is the capped simplex with `m_n ≤ 0.99 E_n /
//! (e_n F)` (the transmitter keeps at least 1 % of the budget), memory and an optional latency
//! cap, and the constraint's effect on the objective enters through `p_n(m)`. The designed
//! transceiver is zero-forcing: its MSE is `σ²‖A‖²_F` of the min-norm problem
//! `min ‖A‖²_F s.t. 1/tr((AᴴQ_nA)⁻¹) ≥ c_n(m) = σ_n²/p_n(m)` (Q_n = H_nH_nᴴ; for L = 1
//! `aᴴQ_na ≥ c_n`), whose sensitivity to c_n is σ² λ_n with λ the KKT multipliers (found by
//! non-negative least squares on the stationarity condition `A = Σ λ_n Q_nA X_n⁻² f_n²`,
//! `X_n = AᴴQ_nA`, `f_n = 1/tr X_n⁻¹`). Hence a stochastic gradient in m from long-term channel
//! statistics (sampled realisations).
//!
//! Algorithm: stochastic successive convex approximation (Liu, Scutari et al. style): at step t
//! draw a channel, form the recursive gradient estimate `d_t = (1 − ρ_t) d_{t−1} + ρ_t ∇f(m_t; H_t)`,
//! minimise the strongly convex surrogate `d_tᵀ(m − m_t) + τ‖m − m_t‖²` over the feasible set
//! (simplex ∩ per-device caps from energy and memory; a projection), and move
//! `m_{t+1} = (1 − γ_t) m_t + γ_t m̂_t` with `ρ_t = (t+1)^{-0.6}`, `γ_t = (t+1)^{-0.8}` (γ/ρ → 0)
//! and `τ_t = 2 f̄_t`, f̄ the running mean (weights ρ_t) of the sampled MSE (the gradient is
//! O(MSE), so the step is scale-free).

use crate::device::{DeviceProfile, Precision};
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::Shard;
use airinfer_phy::aircomp::{self, Problem};
use airinfer_phy::channel::{Mac, MacConfig, SmallScale};
use airinfer_phy::rng::{self, component};
use airinfer_phy::{CMat, C64};
use serde::{Deserialize, Serialize};

/// How a device's partial sums' variance depends on its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalModel {
    /// Zhang et al. 2025: every device sends partial sums of variance σ̄², whatever its share;
    /// the share moves the MSE only through the energy it costs.
    #[default]
    Paper,
    /// Ours: device n's partial sums have variance `m_n σ̄²` (a sum over m_n of the model's
    /// independent terms); not in the paper.
    ShareScaled,
}

impl SignalModel {
    /// The option's value as written in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SignalModel::Paper => "paper",
            SignalModel::ShareScaled => "share_scaled",
        }
    }
}

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
    /// Variance σ̄² of a device's partial sums (the paper's model), or of the whole model's
    /// (`share_scaled`: device n's is m_n σ̄²).
    pub signal_var: f64,
    /// How the partial sums' variance depends on the share.
    pub signal: SignalModel,
    /// Streams L of the transceivers (1 ≤ L ≤ min(N_r, N_t)).
    pub streams: usize,
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
    /// Transmit power budget per channel use the energy constraint leaves each device at the
    /// final shares, `p_n(m)`, W.
    pub power_w: Vec<f64>,
    /// Whether each device's energy budget sets its power at the final shares (`p_n(m) <
    /// p_n^max`: the energy constraint is active), rather than the radio's maximum.
    pub energy_binds: Vec<bool>,
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
        let (nr, nt) = (self.mac.cfg.rx_antennas, self.mac.cfg.tx_antennas);
        if self.streams == 0 || self.streams > nr.min(nt) {
            return bad(format!(
                "streams = {}: need 1 ≤ L ≤ min(rx_antennas = {nr}, tx_antennas = {nt})",
                self.streams
            ));
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

    /// Whether device n's energy budget sets its power at share m (the energy constraint is
    /// active: `p_n(m) < p_n^max`).
    pub fn energy_binds(&self, n: usize, m: f64) -> bool {
        self.power(n, m) < self.max_power_w[n]
    }

    /// Variance of device n's partial sums at share m.
    fn variance(&self, m: f64) -> f64 {
        match self.signal {
            SignalModel::Paper => self.signal_var,
            SignalModel::ShareScaled => m.max(0.0) * self.signal_var,
        }
    }

    /// Channel realisation `i` of stream `seed`.
    pub fn channels(&self, seed: u64, i: u64) -> Vec<CMat> {
        let mut r = rng::stream(seed, &[component::FADING, i]);
        self.mac.realise(&self.gains, &mut r)
    }

    /// The short-timescale design at shares `m` on channel `h`: the transceiver with each
    /// device's signal variance and power budget (None when the design fails).
    fn design(&self, m: &[f64], h: &[CMat]) -> Option<(aircomp::Transceiver, Vec<f64>, Vec<f64>)> {
        let k = self.k();
        let var: Vec<f64> = m.iter().map(|x| self.variance(*x)).collect();
        let pw: Vec<f64> = (0..k).map(|n| self.power(n, m[n]).max(1e-30)).collect();
        let p = Problem {
            channels: h,
            signal_var: &var,
            power: &pw,
            noise_var: self.noise_var,
            streams: self.streams,
        };
        let t = aircomp::sca(&p, 50).ok()?;
        Some((t, var, pw))
    }

    /// MSE of one realisation at shares `m` and its gradient in m.
    pub fn mse_and_gradient(&self, m: &[f64], h: &[CMat]) -> (f64, Vec<f64>) {
        let k = self.k();
        let Some((t, var, pw)) = self.design(m, h) else {
            return (f64::INFINITY, vec![0.0; k]);
        };
        let a = &t.receive_beamformer;
        // KKT of min ‖A‖² s.t. f_n(A) = 1/tr((AᴴQ_nA)⁻¹) ≥ c_n: A = Σ λ_n ∇f_n, ∇f_n =
        // Q_nA X_n⁻² f_n² (for L = 1: Q_na), over the binding constraints
        let mut grads: Vec<CMat> = Vec::with_capacity(k);
        let mut f = vec![f64::INFINITY; k];
        for (n, hn) in h.iter().enumerate() {
            let ha = hn.adjoint() * a; // N_t × L
            let x = ha.adjoint() * &ha; // L × L
            match x.clone().try_inverse() {
                Some(xi) => {
                    let fn_ = 1.0 / xi.trace().re;
                    f[n] = fn_;
                    grads.push(hn * (ha * (&xi * &xi)) * C64::new(fn_ * fn_, 0.0));
                }
                None => grads.push(CMat::zeros(a.nrows(), a.ncols())),
            }
        }
        let c: Vec<f64> = (0..k).map(|n| var[n] / pw[n]).collect();
        let act: Vec<usize> = (0..k)
            .filter(|&n| c[n] > 0.0 && f[n] <= c[n] * (1.0 + 1e-6))
            .collect();
        let lambda = nnls(&grads, &act, a);
        // ∂c_n/∂m_n = σ_n²'/p_n − σ_n² p_n'/p_n², p_n' = −e_n F B / U while the energy binds,
        // σ_n²' = σ̄² for the share-scaled model and 0 for the paper's
        let dvar = match self.signal {
            SignalModel::Paper => 0.0,
            SignalModel::ShareScaled => self.signal_var,
        };
        let mut grad = vec![0.0; k];
        for (&n, &l) in act.iter().zip(&lambda) {
            let dp = if self.energy_binds(n, m[n]) {
                -self.energy_per_flop[n] * self.flops_per_token * self.bandwidth_hz
                    / self.uses_per_token
            } else {
                0.0
            };
            let dc = dvar / pw[n] - var[n] * dp / (pw[n] * pw[n]);
            grad[n] = self.noise_var * l * dc;
        }
        (t.analytic_mse, grad)
    }

    /// Mean per-token energy of each device at shares `m` over `n` realisations of stream
    /// `seed`: the compute `e_n m_n F` plus the transmit energy the designed transceivers spend,
    /// `(U/B) σ_n² tr(B_nB_nᴴ)`, J (never above the budget: the designs respect the power the
    /// constraint leaves).
    pub fn energy_use(&self, m: &[f64], seed: u64, n: usize) -> Vec<f64> {
        let k = self.k();
        let mut tx = vec![0.0; k];
        for i in 0..n as u64 {
            let h = self.channels(seed, i);
            if let Some((t, var, _)) = self.design(m, &h) {
                for (d, (b, v)) in t.precoders.iter().zip(&var).enumerate() {
                    tx[d] += v * b.norm_squared();
                }
            }
        }
        (0..k)
            .map(|d| {
                self.energy_per_flop[d] * m[d] * self.flops_per_token
                    + tx[d] / n.max(1) as f64 * self.uses_per_token / self.bandwidth_hz
            })
            .collect()
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
        let val_seed = validation_seed(seed);
        let every = (iterations / 20).max(1);
        let mut fbar = 0.0;
        trace.push(TraceStep {
            iteration: 0,
            expected_mse: self.expected_mse(&m, val_seed, validation),
            shares: m.clone(),
        });
        for t in 0..iterations {
            let h = self.channels(seed, 1_000_000 + t as u64);
            let (f, g) = self.mse_and_gradient(&m, &h);
            let rho = ((t + 1) as f64).powf(-0.6);
            let gamma = ((t + 1) as f64).powf(-0.8);
            for (di, gi) in d.iter_mut().zip(&g) {
                *di = (1.0 - rho) * *di + rho * gi;
            }
            // proximal weight τ = 2 × the running mean of the sampled MSE. The gradient's
            // components are O(MSE) (d ln MSE/dm_n = O(1) while the energy binds), so a
            // surrogate step moves the shares by O(0.25), less as the devices' gradients
            // equalise near a stationary point, and the scale follows the objective down as the
            // shares improve. TUNED: the factor 2 (1 let the noisiest draws throw the small
            // shares about by 3 % of MSE in `sca_decreases_the_objective…`). Fixed from the
            // first gradient instead, one outlier (a device pushed off its energy cap at
            // iteration 0, its gradient orders above the others') froze every later step.
            if f.is_finite() {
                fbar = (1.0 - rho) * fbar + rho * f;
            }
            let tau = (2.0 * fbar).max(1e-300);
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
            power_w: (0..k).map(|n| self.power(n, m[n])).collect(),
            energy_binds: (0..k).map(|n| self.energy_binds(n, m[n])).collect(),
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
    /// Per-token energy budget of each device, J; None: [`default_energy_budget`] (the
    /// constraint binds at equal shares).
    pub energy_budget_j: Option<&'a [f64]>,
    /// SNR of a device at full power and unit gain, per channel use, dB.
    pub snr_db: f64,
    /// AP antennas N_r.
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    pub tx_antennas: usize,
    /// Streams L, 1 ≤ L ≤ min(N_r, N_t).
    pub streams: usize,
    /// Small-scale fading of the MAC (Rayleigh or Rician).
    pub small_scale: SmallScale,
    /// How the partial sums' variance depends on the share.
    pub signal: SignalModel,
    /// Bandwidth, Hz.
    pub bandwidth_hz: f64,
    /// Bits per weight (memory check).
    pub weight_bits: f64,
    /// Optional per-token compute-latency budget, s.
    pub latency_budget_s: Option<f64>,
}

/// Shardable weights of the whole model (all blocks' matrices).
fn model_weights(cfg: &LlamaConfig) -> f64 {
    cfg.n_layer as f64 * Shard::full(cfg).matrix_weights(cfg) as f64
}

/// All-reduce channel uses per token `U = L₀/L`: two all-reduces per block (attention and MLP)
/// of `n_embd` real values each, two reals per complex symbol, over L streams.
pub fn uses_per_token(cfg: &LlamaConfig, streams: usize) -> f64 {
    cfg.n_layer as f64 * 2.0 * (cfg.n_embd as f64 / 2.0) / streams.max(1) as f64
}

/// The default per-token energy budget of each device, J: the compute energy of an equal share
/// plus half the energy of sending every all-reduce at the radio's maximum power,
/// `E_n = e_n F / K + ½ U p_n^max / B`. At equal shares every device then transmits at half its
/// maximum power: the energy constraint binds (moving share to a device lowers its power), which
/// it does not at a fixed budget of several mJ for a small model (compute and transmission of
/// SmolLM2-135M cost ~0.1–0.4 mJ per token).
pub fn default_energy_budget(
    cfg: &LlamaConfig,
    profiles: &[DeviceProfile],
    streams: usize,
    bandwidth_hz: f64,
) -> Vec<f64> {
    let k = profiles.len().max(1) as f64;
    let f = 2.0 * model_weights(cfg);
    let u = uses_per_token(cfg, streams);
    profiles
        .iter()
        .map(|p| p.energy_per_flop * f / k + 0.5 * u * p.max_tx_power_w() / bandwidth_hz)
        .collect()
}

impl PlanProblem {
    /// The problem for a model on devices: the MAC of the run (N_r, N_t, L streams, Rayleigh or
    /// Rician), noise set so that the strongest transmitter's full power gives `snr_db`, model
    /// cost from `llm::cost`.
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
        if !(s.bandwidth_hz.is_finite() && s.bandwidth_hz > 0.0) {
            return Err(invalid(format!(
                "bandwidth_hz = {}: must be positive",
                s.bandwidth_hz
            )));
        }
        if s.streams == 0 || s.streams > s.rx_antennas.min(s.tx_antennas) {
            return Err(invalid(format!(
                "streams = {}: need 1 ≤ L ≤ min(rx_antennas = {}, tx_antennas = {})",
                s.streams, s.rx_antennas, s.tx_antennas
            )));
        }
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: s.rx_antennas,
            tx_antennas: s.tx_antennas,
            small_scale: s.small_scale.clone(),
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .map_err(|e| invalid(e.to_string()))?;
        let cfg = s.cfg;
        let weights = model_weights(cfg);
        let max_power: Vec<f64> = s.profiles.iter().map(|p| p.max_tx_power_w()).collect();
        let pref = max_power.iter().cloned().fold(0.0, f64::max);
        let energy = match s.energy_budget_j {
            Some(e) => e.to_vec(),
            None => default_energy_budget(cfg, s.profiles, s.streams, s.bandwidth_hz),
        };
        let p = PlanProblem {
            mac,
            gains: s.gains.to_vec(),
            energy_budget_j: energy,
            energy_per_flop: s.profiles.iter().map(|p| p.energy_per_flop).collect(),
            max_power_w: max_power,
            mem_capacity: s.profiles.iter().map(|p| p.mem_capacity).collect(),
            flops_per_token: 2.0 * weights,
            model_bytes: weights * s.weight_bits / 8.0,
            uses_per_token: uses_per_token(cfg, s.streams),
            bandwidth_hz: s.bandwidth_hz,
            noise_var: pref * 10f64.powf(-s.snr_db / 10.0),
            signal_var: 1.0,
            signal: s.signal,
            streams: s.streams,
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

    /// The reference transmit power of `snr_db` (the strongest transmitter's maximum), W: a run
    /// whose devices send at unit power gives device n its planned power `p_n` as the relative
    /// transmit power `p_n / reference_power_w()`.
    pub fn reference_power_w(&self) -> f64 {
        self.max_power_w.iter().cloned().fold(0.0, f64::max)
    }
}

/// A baseline assignment by name (`uniform`, `compute` / `compute_proportional`, `memory` /
/// `memory_proportional`), or None.
pub fn baseline(name: &str, profiles: &[DeviceProfile]) -> Option<Vec<f64>> {
    let full = match name {
        "compute" => "compute_proportional",
        "memory" => "memory_proportional",
        n => n,
    };
    baselines(profiles)
        .into_iter()
        .find(|(n, _)| *n == full)
        .map(|(_, m)| m)
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
    // Re tr(xᴴy): the real inner product of the matrices as real vectors
    let dot = |x: &CMat, y: &CMat| x.iter().zip(y.iter()).map(|(p, q)| (p.conj() * q).re).sum();
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

/// The stream of the validation channels [`PlanProblem::optimise`] scores its trace on for
/// training seed `seed` (score other assignments on it to compare them with the trace).
pub fn validation_seed(seed: u64) -> u64 {
    seed ^ 0xA5A5_0000_0000_0001
}

/// Whether shares `m` are within the per-device `caps` (up to rounding).
pub fn within_caps(m: &[f64], caps: &[f64]) -> bool {
    m.iter().zip(caps).all(|(x, c)| *x <= c + 1e-9)
}

/// Shares `m` as a plan can use them: unchanged when within the caps, else projected onto
/// them ([`project_capped_simplex`]); and whether they were within.
pub fn onto_caps(m: Vec<f64>, caps: &[f64]) -> (Vec<f64>, bool) {
    if within_caps(&m, caps) {
        (m, true)
    } else {
        (project_capped_simplex(&m, caps), false)
    }
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
mod tests;
