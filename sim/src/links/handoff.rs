//! Pipeline hand-offs: the hidden state (or a returning token, or a KV cache being moved) from one
//! device to the next over a directed link — ideal, wired (bandwidth + per-message latency) or a
//! digital radio link (NR CQI link adaptation, HARQ per transport block, a block still lost after
//! the last transmission arriving as zeros) — in a number format on the wire ([`Wire`]).
//! [`crate::schemes::pipeline`] times them on the event queue and applies them to the real
//! hidden state.
//!
//! A radio link may fade ([`LinkFading`]): its `snr_db` is then the mean SNR, and a
//! transmission at simulated time t sees `snr_db + 10·log10|h(t)|²`, h a unit-power SISO
//! coefficient (Rayleigh or Rician) that evolves in time (block fading or Jakes' Gauss–Markov
//! process) and is shared by the two directions of a pair ([`FadingState`]). Link adaptation
//! picks the MCS for the instantaneous SNR (perfect CSI at the transmitter) and HARQ draws use
//! the BLER there; planners use the rate averaged over the fading distribution
//! ([`HandoffLink::planner_terms`]).

use super::{Call, Carried, Link};
use crate::des::Time;
use airinfer_phy::channel::{bessel_j0, cn01, TimeModel};
use airinfer_phy::digital::{harq_draw, mcs_airtime, BlerModel, Quantiser, NR_CQI_TABLE1_SE};
use airinfer_phy::rng;
use airinfer_phy::C64;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

/// Number format of the hidden state on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// 32-bit floats: exact.
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// 8-bit integers with an f32 scale per 32 values.
    Int8,
}

impl Wire {
    /// Bytes for `n` values.
    pub fn bytes(self, n: usize) -> f64 {
        match self {
            Wire::F32 => 4.0 * n as f64,
            Wire::F16 => Quantiser::Fp16.bits(n) as f64 / 8.0,
            Wire::Int8 => Quantiser::Int8 { block: 32 }.bits(n) as f64 / 8.0,
        }
    }

    /// What the receiver reconstructs.
    pub fn roundtrip(self, x: &mut [f32]) {
        let q = match self {
            Wire::F32 => return,
            Wire::F16 => Quantiser::Fp16.roundtrip(x),
            Wire::Int8 => Quantiser::Int8 { block: 32 }.roundtrip(x),
        };
        x.copy_from_slice(&q);
    }
}

/// One directed link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HandoffLink {
    /// No time, no error.
    Ideal,
    /// A wire (Ethernet, or a fixed-rate path such as the Internet to a cloud).
    Wired {
        /// Bytes per second.
        bandwidth: f64,
        /// Per-message cost (propagation, protocol stack), s.
        latency_s: f64,
    },
    /// A digital radio link: NR CQI link adaptation to `target_bler`, HARQ up to `max_tx`.
    Wireless {
        /// Bandwidth, Hz.
        bandwidth_hz: f64,
        /// Average SNR, dB (with `fading`, the mean over the fading distribution).
        snr_db: f64,
        /// Block-error curves.
        bler: BlerModel,
        /// Link-adaptation target.
        target_bler: f64,
        /// Transmissions per block at most.
        max_tx: u32,
        /// Payload bytes per transport block (the unit of retransmission and loss).
        block_bytes: usize,
        /// Fixed cost per message (scheduling, headers), s.
        overhead_s: f64,
        /// Small-scale fading in time (None: the SNR is `snr_db` throughout).
        #[serde(skip_serializing_if = "Option::is_none")]
        fading: Option<LinkFading>,
    },
}

/// Distribution of a fading link's unit-power SISO coefficient h.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum LinkSmallScale {
    /// h ~ CN(0, 1): |h|² exponential with mean 1.
    Rayleigh,
    /// `h = sqrt(K/(K+1)) + sqrt(1/(K+1))·g`, g ~ CN(0, 1) (a fixed line of sight plus
    /// scattering; E|h|² = 1).
    Rician {
        /// K-factor in dB (power of the line of sight over the scattered power).
        k_factor_db: f64,
    },
}

/// How a wireless hand-off link fades: the coefficient's distribution and its evolution in
/// simulated time (the scattered part g follows `time`: a new independent draw every coherence
/// interval, or Gauss–Markov with lag-τ correlation J₀(2π f_D τ)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFading {
    /// Distribution of h.
    pub small_scale: LinkSmallScale,
    /// Evolution in time.
    pub time: TimeModel,
}

impl LinkFading {
    /// Check the numbers; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let LinkSmallScale::Rician { k_factor_db } = self.small_scale {
            if !(k_factor_db.is_finite() && k_factor_db.abs() <= super::MAX_SNR_DB) {
                return Err(format!(
                    "k_factor_db = {k_factor_db}: must be finite (within ±{} dB)",
                    super::MAX_SNR_DB
                ));
            }
        }
        match self.time {
            TimeModel::Block { coherence_time_s } => {
                if !(coherence_time_s.is_finite() && coherence_time_s > 0.0) {
                    return Err(format!(
                        "coherence_time_s = {coherence_time_s}: must be positive"
                    ));
                }
            }
            TimeModel::Jakes { doppler_hz } => {
                if !(doppler_hz.is_finite() && doppler_hz >= 0.0) {
                    return Err(format!("doppler_hz = {doppler_hz}: must be ≥ 0"));
                }
            }
        }
        Ok(())
    }

    /// Amplitudes of the line of sight and of the scattered part, `(sqrt(K/(K+1)),
    /// sqrt(1/(K+1)))` ((0, 1) for Rayleigh).
    fn weights(&self) -> (f64, f64) {
        match self.small_scale {
            LinkSmallScale::Rayleigh => (0.0, 1.0),
            LinkSmallScale::Rician { k_factor_db } => {
                let k = 10f64.powf(k_factor_db / 10.0);
                ((k / (k + 1.0)).sqrt(), (1.0 / (k + 1.0)).sqrt())
            }
        }
    }

    /// The coefficient h for the scattered part `g` (CN(0, 1)).
    pub fn coefficient(&self, g: C64) -> C64 {
        let (los, scatter) = self.weights();
        C64::new(los, 0.0) + g * scatter
    }

    /// One independent draw of the power gain |h|² (mean 1).
    pub fn draw_power<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.coefficient(cn01(rng)).norm_sqr()
    }

    /// Quadrature of the power gain's distribution: `(x, w)` pairs with Σ w = 1 such that
    /// `E[f(|h|²)] ≈ Σ w f(x)` — a midpoint rule on `QUAD_NODES` points evenly spaced in dB
    /// over the distribution's support (−80 … +20 dB for Rayleigh, ±12 standard deviations
    /// around 1 for a strong line of sight), weighted by the density (exponential, or the
    /// non-central χ² of a Rician channel) and normalised. Beyond K = 60 dB, one node at 1.
    pub fn power_quadrature(&self) -> Vec<(f64, f64)> {
        let (lo_db, hi_db, k) = match self.small_scale {
            LinkSmallScale::Rayleigh => (-80.0, 20.0, 0.0),
            LinkSmallScale::Rician { k_factor_db } if k_factor_db > 60.0 => {
                // |h|² within 0.14 % (0.006 dB, one standard deviation) of 1: no fading
                return vec![(1.0, 1.0)];
            }
            LinkSmallScale::Rician { k_factor_db } => {
                let k = 10f64.powf(k_factor_db / 10.0);
                // standard deviation of |h|² = sqrt(2K + 1) / (K + 1)
                let sd = (2.0 * k + 1.0).sqrt() / (k + 1.0);
                let lo = if 1.0 - 12.0 * sd > 1e-8 {
                    10.0 * (1.0 - 12.0 * sd).log10()
                } else {
                    -80.0
                };
                (lo, 20f64.min(10.0 * (1.0 + 12.0 * sd).log10()), k)
            }
        };
        let step = (hi_db - lo_db) / QUAD_NODES as f64;
        let mut nodes: Vec<(f64, f64)> = (0..QUAD_NODES)
            .map(|n| {
                let x = 10f64.powf((lo_db + (n as f64 + 0.5) * step) / 10.0);
                // density in ln x: f(x)·x
                let f = if k == 0.0 {
                    (-x).exp()
                } else {
                    let z = 2.0 * (k * (k + 1.0) * x).sqrt();
                    (k + 1.0) * (z - k - (k + 1.0) * x).exp() * bessel_i0e(z)
                };
                (x, f * x)
            })
            .collect();
        let total: f64 = nodes.iter().map(|n| n.1).sum();
        for n in &mut nodes {
            n.1 /= total;
        }
        nodes
    }
}

/// Points of [`LinkFading::power_quadrature`].
pub const QUAD_NODES: usize = 10_000;

/// Exponentially scaled modified Bessel function of order 0, `e^{−z} I₀(z)` for z ≥ 0
/// (Abramowitz & Stegun 9.8.1–9.8.2, relative error < 2e-7).
fn bessel_i0e(z: f64) -> f64 {
    if z <= 3.75 {
        let t = (z / 3.75).powi(2);
        (-z).exp()
            * (1.0
                + t * (3.515_622_9
                    + t * (3.089_942_4
                        + t * (1.206_749_2
                            + t * (0.265_973_2 + t * (0.036_076_8 + t * 0.004_581_3))))))
    } else {
        let t = 3.75 / z;
        (0.398_942_28
            + t * (0.013_285_92
                + t * (0.002_253_19
                    + t * (-0.001_575_65
                        + t * (0.009_162_81
                            + t * (-0.020_577_06
                                + t * (0.026_355_37 + t * (-0.016_476_33 + t * 0.003_923_77))))))))
            / z.sqrt()
    }
}

impl HandoffLink {
    /// Check the numbers; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {v}: must be positive"))
            }
        };
        let nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {v}: must be ≥ 0"))
            }
        };
        match *self {
            HandoffLink::Ideal => Ok(()),
            HandoffLink::Wired {
                bandwidth,
                latency_s,
            } => {
                pos("bandwidth", bandwidth)?;
                nonneg("latency", latency_s)
            }
            HandoffLink::Wireless {
                bandwidth_hz,
                snr_db,
                target_bler,
                max_tx,
                block_bytes,
                overhead_s,
                fading,
                ..
            } => {
                pos("bandwidth_hz", bandwidth_hz)?;
                if let Some(f) = fading {
                    f.validate().map_err(|e| format!("fading: {e}"))?;
                }
                if !(snr_db.is_finite() && snr_db.abs() <= super::MAX_SNR_DB) {
                    return Err(format!(
                        "snr_db = {snr_db:e}: must be within ±{} dB",
                        super::MAX_SNR_DB
                    ));
                }
                if !(0.0..1.0).contains(&target_bler) {
                    return Err(format!("target_bler = {target_bler}: must be in [0, 1)"));
                }
                if max_tx == 0 {
                    return Err("max_tx = 0: at least one transmission".into());
                }
                if block_bytes == 0 {
                    return Err("block_bytes = 0: must be positive".into());
                }
                nonneg("overhead_s", overhead_s)
            }
        }
    }

    /// (spectral efficiency, BLER) of the MCS link adaptation picks at `snr_db`.
    fn mcs_at(&self, snr_db: f64) -> Option<(f64, f64)> {
        match *self {
            HandoffLink::Wireless {
                bler,
                target_bler,
                max_tx,
                ..
            } => {
                let o = mcs_airtime(1, 1.0, snr_db, &bler, target_bler, max_tx).ok()?;
                let se = NR_CQI_TABLE1_SE[o.cqi.unwrap_or(0)];
                Some((se, bler.bler(se, snr_db)))
            }
            _ => None,
        }
    }

    /// The mean SNR of a wireless link, dB (None for the others).
    pub fn mean_snr_db(&self) -> Option<f64> {
        match *self {
            HandoffLink::Wireless { snr_db, .. } => Some(snr_db),
            _ => None,
        }
    }

    /// The fading of a wireless link (None: no fading, or not a radio link).
    pub fn fading(&self) -> Option<&LinkFading> {
        match self {
            HandoffLink::Wireless { fading, .. } => fading.as_ref(),
            _ => None,
        }
    }

    /// Expected time to send `bytes` (what planners use): per-message cost + bytes / effective
    /// rate (wireless: the MCS rate divided by the expected transmissions per block, averaged
    /// over the fading distribution when the link fades).
    pub fn expected_s(&self, bytes: f64) -> f64 {
        let (lat, bw) = self.planner_terms();
        if bytes <= 0.0 {
            0.0
        } else {
            lat + bytes / bw
        }
    }

    /// (per-message cost s, effective bytes/s) for the planners' `latency + bytes / bandwidth`.
    /// A wireless link's rate is `se·B / E[transmissions]` of the MCS link adaptation picks;
    /// on a fading link its expectation over the distribution of the instantaneous SNR (the
    /// long-run bits per second of airtime of a busy link when the channel visits its
    /// distribution), by quadrature over the power gain ([`LinkFading::power_quadrature`],
    /// memoised per link parameters).
    pub fn planner_terms(&self) -> (f64, f64) {
        match *self {
            HandoffLink::Ideal => (0.0, f64::MAX),
            HandoffLink::Wired {
                bandwidth,
                latency_s,
            } => (latency_s, bandwidth),
            HandoffLink::Wireless {
                bandwidth_hz,
                max_tx,
                overhead_s,
                fading: None,
                ..
            } => {
                let (se, b) = self.mcs().unwrap_or((NR_CQI_TABLE1_SE[0], 1.0));
                let tx: f64 = (0..max_tx).map(|n| b.powi(n as i32)).sum();
                (overhead_s, se * bandwidth_hz / 8.0 / tx)
            }
            HandoffLink::Wireless {
                bandwidth_hz,
                overhead_s,
                ..
            } => (overhead_s, self.mean_effective_se() * bandwidth_hz / 8.0),
        }
    }

    /// (spectral efficiency, BLER) at the mean SNR.
    fn mcs(&self) -> Option<(f64, f64)> {
        self.mcs_at(self.mean_snr_db()?)
    }

    /// Effective spectral efficiency `se / E[transmissions]` (bit/s/Hz of airtime) at `snr_db`.
    fn effective_se_at(&self, snr_db: f64) -> f64 {
        let max_tx = match *self {
            HandoffLink::Wireless { max_tx, .. } => max_tx,
            _ => 1,
        };
        let (se, b) = self.mcs_at(snr_db).unwrap_or((NR_CQI_TABLE1_SE[0], 1.0));
        let tx: f64 = (0..max_tx).map(|n| b.powi(n as i32)).sum();
        se / tx
    }

    /// [`Self::effective_se_at`] averaged over the fading distribution (at the mean SNR
    /// without fading), memoised by the parameters it depends on.
    fn mean_effective_se(&self) -> f64 {
        let HandoffLink::Wireless {
            snr_db,
            bler,
            target_bler,
            max_tx,
            fading: Some(f),
            ..
        } = *self
        else {
            return self.effective_se_at(self.mean_snr_db().unwrap_or(0.0));
        };
        let k = match f.small_scale {
            LinkSmallScale::Rayleigh => f64::NEG_INFINITY,
            LinkSmallScale::Rician { k_factor_db } => k_factor_db,
        };
        let key = [
            snr_db.to_bits(),
            bler.gap_db.to_bits(),
            bler.slope_per_db.to_bits(),
            target_bler.to_bits(),
            max_tx as u64,
            k.to_bits(),
        ];
        static MEMO: OnceLock<Mutex<HashMap<[u64; 6], f64>>> = OnceLock::new();
        let memo = MEMO.get_or_init(Default::default);
        if let Some(v) = memo.lock().map(|m| m.get(&key).copied()).ok().flatten() {
            return v;
        }
        let v: f64 = f
            .power_quadrature()
            .iter()
            .map(|&(x, w)| w * self.effective_se_at(snr_db + 10.0 * x.log10()))
            .sum();
        if let Ok(mut m) = memo.lock() {
            if m.len() >= 65_536 {
                m.clear();
            }
            m.insert(key, v);
        }
        v
    }

    /// The part of a message's time that delays it without occupying the link: a wire's
    /// latency (propagation, switching), a radio link's per-message overhead (scheduling
    /// grant). Messages behind it on the same link are not held up by it.
    pub fn propagation_s(&self) -> f64 {
        match *self {
            HandoffLink::Ideal => 0.0,
            HandoffLink::Wired { latency_s, .. } => latency_s,
            HandoffLink::Wireless { overhead_s, .. } => overhead_s,
        }
    }

    /// Send `bytes` at the mean SNR: the realised time from the first bit sent to the last
    /// received ([`Self::occupancy`] plus [`Self::propagation_s`]), and which blocks (of
    /// `block_bytes`) were lost.
    pub fn send<R: Rng + ?Sized>(&self, bytes: f64, rng: &mut R) -> (f64, Vec<usize>) {
        self.send_at(bytes, self.mean_snr_db().unwrap_or(0.0), rng)
    }

    /// [`Self::send`] at the instantaneous SNR `snr_db` (ignored by ideal and wired links).
    pub fn send_at<R: Rng + ?Sized>(
        &self,
        bytes: f64,
        snr_db: f64,
        rng: &mut R,
    ) -> (f64, Vec<usize>) {
        if bytes <= 0.0 {
            return (0.0, Vec::new());
        }
        let (occ, lost) = self.occupancy_at(bytes, snr_db, rng);
        (occ + self.propagation_s(), lost)
    }

    /// Send `bytes` at the mean SNR: how long the link is occupied (serialisation, or the
    /// realised HARQ airtime), and which blocks (of `block_bytes`) were lost.
    pub fn occupancy<R: Rng + ?Sized>(&self, bytes: f64, rng: &mut R) -> (f64, Vec<usize>) {
        self.occupancy_at(bytes, self.mean_snr_db().unwrap_or(0.0), rng)
    }

    /// [`Self::occupancy`] at the instantaneous SNR `snr_db` (a fading link's, from
    /// [`FadingState::snr_db`]; ignored by ideal and wired links): link adaptation picks the MCS
    /// for `snr_db` and each block's HARQ transmissions are drawn from `rng` with the BLER there.
    pub fn occupancy_at<R: Rng + ?Sized>(
        &self,
        bytes: f64,
        snr_db: f64,
        rng: &mut R,
    ) -> (f64, Vec<usize>) {
        if bytes <= 0.0 {
            return (0.0, Vec::new());
        }
        match *self {
            HandoffLink::Ideal => (0.0, Vec::new()),
            HandoffLink::Wired { bandwidth, .. } => (bytes / bandwidth, Vec::new()),
            HandoffLink::Wireless {
                bandwidth_hz,
                max_tx,
                block_bytes,
                ..
            } => {
                let (se, b) = self.mcs_at(snr_db).unwrap_or((NR_CQI_TABLE1_SE[0], 1.0));
                let blocks = (bytes / block_bytes as f64).ceil() as usize;
                let mut t = 0.0;
                let mut lost = Vec::new();
                for blk in 0..blocks {
                    let len = (bytes - (blk * block_bytes) as f64).min(block_bytes as f64);
                    let (n, ok) = harq_draw(b, max_tx, rng);
                    t += n as f64 * len * 8.0 / (se * bandwidth_hz);
                    if !ok {
                        lost.push(blk);
                    }
                }
                (t, lost)
            }
        }
    }
}

/// The fading state of one run's hand-off links: one scattered process g per unordered pair
/// {i, j} (both directions of a pair see the same coefficient, TDD reciprocity), drawn from
/// streams of the run's seed only, so the channel does not depend on the thread count or on
/// the other pairs' traffic.
///
/// * Block fading: g in coherence interval b = ⌊t / coherence_time_s⌋ is a CN(0, 1) draw from
///   the stream of (seed, pair, b): a function of the time alone, whatever the order of the
///   queries (every system run with the same seed sees the same channel).
/// * Jakes: g evolves as a Gauss–Markov process from the pair's previous query,
///   `g ← ρ g + sqrt(1 − ρ²) w`, ρ = J₀(2π f_D τ), w ~ CN(0, 1) from the pair's stream; a time
///   before the pair's previous query is read as that query's time (clamped).
///
/// A pair whose two directions carry different fading descriptions shares g, each direction
/// reading it with its own model.
#[derive(Debug, Clone)]
pub struct FadingState {
    seed: u64,
    /// Per pair, the last block read: (coherence time's bits, block index, g).
    block: BTreeMap<(usize, usize), (u64, u64, C64)>,
    jakes: BTreeMap<(usize, usize), Jakes>,
}

/// A pair's Gauss–Markov process: its stream, the time of its last value, the value.
#[derive(Debug, Clone)]
struct Jakes {
    rng: rng::Rng,
    t_s: f64,
    g: C64,
}

/// Sub-stream tag of the hand-off links' fading (under [`rng::component::FADING`]).
const HANDOFF_FADING: u64 = 0x4A0D;

impl FadingState {
    /// No pair drawn yet; every draw comes from streams of `seed`.
    pub fn new(seed: u64) -> FadingState {
        FadingState {
            seed,
            block: BTreeMap::new(),
            jakes: BTreeMap::new(),
        }
    }

    /// The coefficient h of pair {i, j} under `fading` at simulated time `t_s`.
    pub fn coefficient(&mut self, fading: &LinkFading, i: usize, j: usize, t_s: f64) -> C64 {
        let pair = (i.min(j) as u64, i.max(j) as u64);
        let t_s = if t_s.is_finite() { t_s.max(0.0) } else { 0.0 };
        let g = match fading.time {
            TimeModel::Block { coherence_time_s } => {
                let b = (t_s / coherence_time_s).floor() as u64;
                let tc = coherence_time_s.to_bits();
                let key = (pair.0 as usize, pair.1 as usize);
                match self.block.get(&key) {
                    Some(&(c, blk, g)) if (c, blk) == (tc, b) => g,
                    _ => {
                        let mut r = rng::stream(
                            self.seed,
                            &[rng::component::FADING, HANDOFF_FADING, pair.0, pair.1, b],
                        );
                        let g = cn01(&mut r);
                        self.block.insert(key, (tc, b, g));
                        g
                    }
                }
            }
            TimeModel::Jakes { doppler_hz } => {
                let seed = self.seed;
                let p = self
                    .jakes
                    .entry((pair.0 as usize, pair.1 as usize))
                    .or_insert_with(|| {
                        let mut rng = rng::stream(
                            seed,
                            &[rng::component::FADING, HANDOFF_FADING, pair.0, pair.1],
                        );
                        let g = cn01(&mut rng);
                        Jakes { rng, t_s, g }
                    });
                let tau = t_s - p.t_s;
                if tau > 0.0 {
                    let rho = bessel_j0(2.0 * std::f64::consts::PI * doppler_hz * tau);
                    let w = (1.0 - rho * rho).max(0.0).sqrt();
                    p.g = p.g * rho + cn01(&mut p.rng) * w;
                    p.t_s = t_s;
                }
                p.g
            }
        };
        fading.coefficient(g)
    }

    /// The SNR of `link` (from device i to j) for a transmission starting at `t_s`, dB: the
    /// mean `snr_db` plus 10·log10|h(t)|² on a fading link, the mean otherwise (ideal and
    /// wired links: 0, unused).
    pub fn snr_db(&mut self, link: &HandoffLink, i: usize, j: usize, t_s: f64) -> f64 {
        match *link {
            HandoffLink::Wireless {
                snr_db,
                fading: Some(f),
                ..
            } => {
                let p = self.coefficient(&f, i, j, t_s).norm_sqr();
                snr_db + 10.0 * p.max(1e-30).log10()
            }
            HandoffLink::Wireless { snr_db, .. } => snr_db,
            _ => 0.0,
        }
    }
}

/// The links between every ordered pair of devices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    /// `links[i][j]`: from device i to device j (the diagonal is never used).
    pub links: Vec<Vec<HandoffLink>>,
    /// How the wireless links share the air (wired and ideal links are always their own).
    pub medium: super::medium::Medium,
}

impl Network {
    /// Every pair joined by `link`.
    pub fn uniform(n: usize, link: HandoffLink) -> Network {
        Network {
            links: vec![vec![link; n]; n],
            medium: Default::default(),
        }
    }

    /// Number of devices.
    pub fn n(&self) -> usize {
        self.links.len()
    }
}

/// One hand-off over `link` in the format `wire`, as a [`Link`]: the payload (one buffer) is
/// quantised to the wire format and sent; on a wireless link a transport block still lost after
/// the last HARQ transmission arrives as zeros (HARQ outcomes from `call.streams.packet`).
/// This path has no clock: on a fading link each message draws its SNR independently from the
/// fading distribution (`snr_db + 10·log10|h|²`, h from `call.streams.fading`), as if messages
/// were farther apart than the coherence time; the timed run ([`crate::schemes::pipeline`])
/// follows h in simulated time instead ([`FadingState`]).
pub struct Handoff<'a> {
    /// The directed link between the two devices.
    pub link: &'a HandoffLink,
    /// Number format on the wire.
    pub wire: Wire,
}

impl Link for Handoff<'_> {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        let mut carried = Carried::default();
        for x in buffers.iter_mut() {
            self.wire.roundtrip(x);
            let bytes = self.wire.bytes(x.len());
            let snr = match (self.link.mean_snr_db(), self.link.fading()) {
                (Some(mean), Some(f)) => {
                    mean + 10.0 * f.draw_power(&mut call.streams.fading).max(1e-30).log10()
                }
                (Some(mean), None) => mean,
                (None, _) => 0.0,
            };
            let (dur, lost) = self.link.send_at(bytes, snr, &mut call.streams.packet);
            if let HandoffLink::Wireless { block_bytes, .. } = *self.link {
                let per = (block_bytes as f64 / (bytes / x.len() as f64)).max(1.0) as usize;
                for b in &lost {
                    let lo = (b * per).min(x.len());
                    let hi = ((b + 1) * per).min(x.len());
                    x[lo..hi].fill(0.0);
                }
            }
            carried.lost_blocks += lost.len();
            carried.airtime = carried.airtime.after(Time::from_secs(dur));
            // the sender's transmitter: the bytes' time on the medium, without the link's fixed
            // per-message cost
            let on = match *self.link {
                HandoffLink::Ideal => 0.0,
                HandoffLink::Wired { bandwidth, .. } => bytes / bandwidth,
                HandoffLink::Wireless { overhead_s, .. } => (dur - overhead_s).max(0.0),
            };
            carried.tx_s.push(on);
            carried.tx_energy.push(on);
        }
        carried
    }

    fn round_overhead_s(&self) -> f64 {
        0.0
    }
}

#[cfg(test)]
mod tests;
