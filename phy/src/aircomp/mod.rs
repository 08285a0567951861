//! Over-the-air computation (AirComp) of a sum over a fading MAC.
//!
//! System (Zhang, He, Song, Zhang, Letaief 2025, eq. (5)–(8)): device k sends `B_k s_k`,
//! `s_k ∈ C^L` with `E[s_k s_kᴴ] = σ_k² I`; the AP receives `y = Σ_k H_k B_k s_k + n`,
//! `n ~ CN(0, σ² I)`, and estimates the sum as `ŝ = Aᴴ y`. Its mean-squared error is
//!
//! `MSE(A, {B_k}) = Σ_k σ_k² ‖AᴴH_kB_k − I‖²_F + σ² ‖A‖²_F`,
//!
//! under the per-device power budgets `σ_k² tr(B_kB_kᴴ) ≤ P_k` (per channel use).
//! Designs here: zero-forcing inversion with a simple receive beamformer (principal eigen-
//! directions or the sum of channel directions), and MMSE transceivers by alternating
//! optimisation (not forced to be unbiased, so their MSE is at most the ZF one).
//!
//! Layout: the shared problem statement, closed forms and budget scaling live here; each design
//! has its own file — `zf` (zero-forcing inversion and its direction refinement), `mmse`
//! (alternating MMSE), `sca` (the SCA design [`sca()`]), `sdr` with its SDP solver [`sdp`],
//! [`fdma`] (the orthogonal baseline) — next to `ota` (the over-the-air sum and all-reduce),
//! `montecarlo` (Monte-Carlo MSE estimates) and `downlink` (handing the sum back).

use crate::{CMat, C64};

mod downlink;
pub mod fdma;
mod mmse;
mod montecarlo;
mod named;
mod ota;
mod sca;
pub mod sdp;
#[cfg(feature = "clarabel")]
pub mod sdp_clarabel;
pub mod sdr;
mod zf;
pub use downlink::*;
pub use fdma::{fdma_sum, simulate_fdma_mse, uncoded_fdma, FdmaDesign};
pub use mmse::{mmse, refine_mmse};
pub use montecarlo::simulate_mse;
pub use named::NamedDesign;
pub use ota::{
    centre_stats, over_the_air_all_reduce, over_the_air_sum, AllReduceOutcome, OtaLink, OtaOutcome,
};
pub use sca::{sca, sca_warm};
pub use sdr::{sdr, SdrDesign};
pub use zf::{
    refine_zf_directions, refine_zf_directions_warm, zero_forcing, zf_precoders, zf_with_directions,
};

// the symbol packing of the over-the-air sum, shared with the FDMA baseline
pub(crate) use ota::{check_partials, pack, unpack};

#[cfg(test)]
use crate::channel::cn_matrix;
#[cfg(test)]
use mmse::best_response_precoder;

/// Invalid AirComp inputs.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AirCompError {
    /// A parameter is out of range or shapes disagree.
    #[error("aircomp: {0}")]
    Invalid(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, AirCompError> {
    Err(AirCompError::Invalid(msg.into()))
}

/// What a transceiver design is given.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// Channel of each device, N_r × N_t.
    pub channels: &'a [CMat],
    /// Signal variance σ_k² of each device's symbols (per complex symbol).
    pub signal_var: &'a [f64],
    /// Power budget P_k of each device per channel use.
    pub power: &'a [f64],
    /// Receiver noise variance σ².
    pub noise_var: f64,
    /// Number of streams L.
    pub streams: usize,
}

impl Problem<'_> {
    /// Check shapes and ranges.
    pub fn validate(&self) -> Result<(), AirCompError> {
        let k = self.channels.len();
        if k == 0 {
            return bad("no devices (K = 0)");
        }
        let (nr, nt) = (self.channels[0].nrows(), self.channels[0].ncols());
        if nr == 0 || nt == 0 {
            return bad(format!(
                "channel matrices are {nr} × {nt}; need N_r ≥ 1 and N_t ≥ 1"
            ));
        }
        for (i, h) in self.channels.iter().enumerate() {
            if h.shape() != (nr, nt) {
                return bad(format!(
                    "channel {i} is {:?}, channel 0 is {:?}",
                    h.shape(),
                    (nr, nt)
                ));
            }
            if h.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
                return bad(format!("channel {i} holds a non-finite entry"));
            }
            if let Some(v) = h
                .iter()
                .find(|v| v.norm() > crate::channel::MAX_CHANNEL_GAIN)
            {
                return bad(format!(
                    "channel {i} holds |h| = {:e}, beyond {:e} (a power gain of +300 dB, where the design's products overflow f64)",
                    v.norm(),
                    crate::channel::MAX_CHANNEL_GAIN
                ));
            }
        }
        if self.signal_var.len() != k || self.power.len() != k {
            return bad(format!(
                "{} signal variances and {} power budgets for {k} devices",
                self.signal_var.len(),
                self.power.len()
            ));
        }
        for (i, (&s, &p)) in self.signal_var.iter().zip(self.power).enumerate() {
            if !(s.is_finite() && s >= 0.0) {
                return bad(format!(
                    "signal variance of device {i} is {s}; must be finite and ≥ 0"
                ));
            }
            if !(p.is_finite() && p > 0.0) {
                return bad(format!(
                    "power budget of device {i} is {p}; must be finite and > 0"
                ));
            }
        }
        if !(self.noise_var.is_finite() && self.noise_var > 0.0) {
            return bad(format!(
                "noise variance {} must be finite and > 0",
                self.noise_var
            ));
        }
        if self.streams == 0 || self.streams > nr || self.streams > nt {
            return bad(format!(
                "{} streams: need 1 ≤ L ≤ min(N_r = {nr}, N_t = {nt})",
                self.streams
            ));
        }
        Ok(())
    }
}

/// A designed transceiver: receive beamformer A (N_r × L), precoders B_k (N_t × L).
#[derive(Debug, Clone)]
pub struct Transceiver {
    /// A.
    pub receive_beamformer: CMat,
    /// B_k per device.
    pub precoders: Vec<CMat>,
    /// MSE by the closed form.
    pub analytic_mse: f64,
}

impl Transceiver {
    /// This design, or an error when a number in it is NaN or infinite: a channel so weak
    /// along the receive direction that the design's scale overflows f64 (an effective gain
    /// near 1e-300), which must not come out as a design with NaN entries.
    pub(crate) fn finite(self, design: &str) -> Result<Transceiver, AirCompError> {
        let ok = self.analytic_mse.is_finite()
            && self
                .receive_beamformer
                .iter()
                .all(|v| v.re.is_finite() && v.im.is_finite())
            && self
                .precoders
                .iter()
                .all(|b| b.iter().all(|v| v.re.is_finite() && v.im.is_finite()));
        if ok {
            Ok(self)
        } else {
            bad(format!(
                "{design}: the design overflows f64 (MSE {:e}): a device's channel is too weak along the receive direction to be served",
                self.analytic_mse
            ))
        }
    }
}

/// Keep `t` in `best` when it has the lower analytic MSE (or `best` is empty).
pub(crate) fn keep_best(best: &mut Option<Transceiver>, t: Transceiver) {
    if best
        .as_ref()
        .is_none_or(|b| t.analytic_mse < b.analytic_mse)
    {
        *best = Some(t);
    }
}

/// `Σ_k σ_k² ‖AᴴH_kB_k − I‖²_F + σ² ‖A‖²_F`.
pub fn mse(p: &Problem, a: &CMat, b: &[CMat]) -> f64 {
    let l = a.ncols();
    let eye = CMat::identity(l, l);
    let mis: f64 = p
        .channels
        .iter()
        .zip(b)
        .zip(p.signal_var)
        .map(|((h, bk), s)| s * (a.adjoint() * h * bk - &eye).norm_squared())
        .sum();
    mis + p.noise_var * a.norm_squared()
}

/// Power each device spends per channel use: σ_k² tr(B_kB_kᴴ).
pub fn powers(p: &Problem, b: &[CMat]) -> Vec<f64> {
    b.iter()
        .zip(p.signal_var)
        .map(|(bk, s)| s * bk.norm_squared())
        .collect()
}

/// How the zero-forcing design picks the receive direction(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiveDirection {
    /// Principal L eigenvectors of Σ_k H_kH_kᴴ.
    Eigen,
    /// Normalised sum of the devices' principal channel directions (L = 1), topped up with
    /// eigen-directions for L > 1.
    SumDirections,
}

/// Scale `a` so that the tightest budget `‖H_kᴴa‖² = aᴴQ_ka ≥ c_k` holds with equality (the ZF
/// precoders' power), or None when one cannot be met (`H_kᴴa = 0` with `c_k > 0`). O(n·N_t) per
/// device through the channel `H_k` itself rather than `Q_k = H_kH_kᴴ`.
pub(crate) fn scale_to_budgets(a: &CMat, h: &[CMat], c: &[f64]) -> Option<CMat> {
    let t = budget_scale(
        h.iter()
            .map(|hk| hk.ad_mul(a).norm_squared())
            .zip(c.iter().copied()),
    )?;
    Some(a * C64::new(t.sqrt(), 0.0))
}

/// The smallest power scale t with `t·g_k ≥ c_k` for every device, from (gain `g_k =
/// ‖H_kᴴa‖²`, budget `c_k`) pairs; None when a budget cannot be met (`g_k = 0 < c_k`) or none
/// needs power (t = 0).
pub(crate) fn budget_scale(gains: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let mut t: f64 = 0.0;
    for (g, ck) in gains {
        if g <= 0.0 {
            if ck > 0.0 {
                return None;
            }
            continue;
        }
        t = t.max(ck / g);
    }
    (t > 0.0).then_some(t)
}

#[cfg(test)]
mod tests;
