//! Digital all-reduce: quantise each device's vector, send the bits over rate-limited links,
//! sum at the access point and broadcast the result back.
//!
//! * Quantisation: fp16, bf16, and symmetric uniform int8 / int4 with one f32 scale per block
//!   (`Δ = max|x| / (2^(b−1) − 1)`, round to nearest): error variance `Δ²/12` for values spread
//!   over many steps.
//! * Rates: Shannon with an SNR gap, `R = B log2(1 + SNR/Γ)`.
//! * Protocols: TDMA (devices one after another, each at its own rate, the whole band), OFDMA
//!   (the band split equally, devices in parallel, time of the slowest), CSMA/CA (the devices
//!   contend for the whole band with 802.11 DCF, [`crate::csma`]), then a broadcast of the sum
//!   at the rate of the weakest device; plus a fixed per-round cost.

use crate::csma;
use serde::{Deserialize, Serialize};

/// Invalid digital-link parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DigitalError {
    /// A parameter is out of range.
    #[error("digital: {0}")]
    Invalid(String),
}

/// Number format on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantiser {
    /// IEEE half precision.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 8-bit symmetric integers with an f32 scale per `block` values (`usize::MAX`: one scale
    /// for the whole tensor, the paper's plain 8-bit quantisation).
    Int8 {
        /// Values per scale.
        block: usize,
    },
    /// 4-bit symmetric integers with an f32 scale per `block` values.
    Int4 {
        /// Values per scale.
        block: usize,
    },
    /// `bits`-bit symmetric integers (2 ≤ bits ≤ 16, levels ±(2^(bits−1) − 1)) with an f32
    /// scale per `block` values: what a budgeted digital link sends when its format does not fit.
    Int {
        /// Bits per value.
        bits: u8,
        /// Values per scale.
        block: usize,
    },
    /// One bit per value: the sign, times an f32 scale per `block` values equal to the block's
    /// mean |x| (for Gaussian values the error variance is (1 − 2/π) σ²).
    Sign {
        /// Values per scale.
        block: usize,
    },
}

impl Quantiser {
    /// Bits on the wire for `n` values (scales included).
    pub fn bits(self, n: usize) -> u64 {
        let scales = |block: usize| 32 * n.div_ceil(block.max(1)) as u64;
        match self {
            Quantiser::Fp16 | Quantiser::Bf16 => 16 * n as u64,
            Quantiser::Int8 { block } => 8 * n as u64 + scales(block),
            Quantiser::Int4 { block } => 4 * n as u64 + scales(block),
            Quantiser::Int { bits, block } => bits as u64 * n as u64 + scales(block),
            Quantiser::Sign { block } => n as u64 + scales(block),
        }
    }

    /// Bits per value, scales not counted.
    pub fn value_bits(self) -> u8 {
        match self {
            Quantiser::Fp16 | Quantiser::Bf16 => 16,
            Quantiser::Int8 { .. } => 8,
            Quantiser::Int4 { .. } => 4,
            Quantiser::Int { bits, .. } => bits,
            Quantiser::Sign { .. } => 1,
        }
    }

    /// Values per scale (32 for the float formats, which have none: what a narrower integer
    /// format replacing them uses).
    pub fn block(self) -> usize {
        match self {
            Quantiser::Fp16 | Quantiser::Bf16 => 32,
            Quantiser::Int8 { block }
            | Quantiser::Int4 { block }
            | Quantiser::Int { block, .. }
            | Quantiser::Sign { block } => block,
        }
    }

    /// The most precise format no wider than this one whose `n` values fit in `budget_bits`:
    /// this one if it fits; else, from `b` = its width down to 1 bit per value, `b` bits with
    /// its block's scales, then `b` bits with one scale for all `n` (coarser, but 32 bits in
    /// all instead of one per block; 2 ≤ b: [`Quantiser::Int`], b = 1: [`Quantiser::Sign`]);
    /// None when not even one bit per value fits.
    pub fn fitting(self, n: usize, budget_bits: f64) -> Option<Quantiser> {
        if self.bits(n) as f64 <= budget_bits {
            return Some(self);
        }
        let make = |bits: u8, block: usize| match bits {
            1 => Quantiser::Sign { block },
            _ => Quantiser::Int { bits, block },
        };
        let block = self.block();
        (1..=self.value_bits())
            .rev()
            .flat_map(|b| [make(b, block), make(b, usize::MAX)])
            .find(|q| q.bits(n) as f64 <= budget_bits)
    }

    /// Check the parameters.
    pub fn validate(self) -> Result<(), DigitalError> {
        match self {
            Quantiser::Int { bits, .. } if !(2..=16).contains(&bits) => Err(DigitalError::Invalid(
                format!("int quantiser with {bits} bits: need 2 ≤ bits ≤ 16"),
            )),
            q if q.block() == 0 => Err(DigitalError::Invalid(
                "quantiser block: need at least 1 value per scale".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Quantise and dequantise `x` (what the receiver reconstructs).
    pub fn roundtrip(self, x: &[f32]) -> Vec<f32> {
        match self {
            Quantiser::Fp16 => x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
            Quantiser::Bf16 => x
                .iter()
                .map(|&v| half::bf16::from_f32(v).to_f32())
                .collect(),
            Quantiser::Int8 { block } => int_roundtrip(x, block, 127.0),
            Quantiser::Int4 { block } => int_roundtrip(x, block, 7.0),
            Quantiser::Int { bits, block } => {
                int_roundtrip(x, block, ((1u32 << (bits.clamp(2, 16) - 1)) - 1) as f32)
            }
            Quantiser::Sign { block } => {
                let mut out = Vec::with_capacity(x.len());
                for b in x.chunks(block.max(1)) {
                    let scale =
                        (b.iter().map(|v| v.abs() as f64).sum::<f64>() / b.len() as f64) as f32;
                    out.extend(b.iter().map(|&v| if v < 0.0 { -scale } else { scale }));
                }
                out
            }
        }
    }
}

fn int_roundtrip(x: &[f32], block: usize, levels: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for b in x.chunks(block.max(1)) {
        let amax = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let step = amax / levels;
        for &v in b {
            out.push(if step > 0.0 {
                (v / step).round().clamp(-levels, levels) * step
            } else {
                0.0
            });
        }
    }
    out
}

/// Shannon rate in bit/s of a link of `bandwidth_hz` at linear `snr`, with SNR gap `gap_db`
/// (0 dB = capacity; ~ 6–9 dB for practical coded modulation).
pub fn shannon_rate(bandwidth_hz: f64, snr: f64, gap_db: f64) -> Result<f64, DigitalError> {
    if !(bandwidth_hz.is_finite() && bandwidth_hz > 0.0) {
        return Err(DigitalError::Invalid(format!(
            "bandwidth_hz = {bandwidth_hz}: must be positive"
        )));
    }
    if !(snr.is_finite() && snr >= 0.0) {
        return Err(DigitalError::Invalid(format!(
            "snr = {snr}: must be finite and ≥ 0"
        )));
    }
    if !gap_db.is_finite() {
        return Err(DigitalError::Invalid(format!(
            "gap_db = {gap_db}: must be finite"
        )));
    }
    Ok(bandwidth_hz * (1.0 + snr / 10f64.powf(gap_db / 10.0)).log2())
}

/// Uplink multiple access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Time division: each device alone on the whole band.
    Tdma,
    /// Frequency division: the band split in K equal parts, all devices at once.
    Ofdma,
    /// Contention on one Wi-Fi channel (IEEE 802.11 DCF, 802.11ax timing): each device sends
    /// on the whole band at its own rate, as with TDMA (link adaptation and HARQ alike), but
    /// wins the channel frame by frame. All K start backlogged; the uplink lasts
    /// [`csma::wifi_shared_channel_time_s`] of the devices' payload airtimes (a mean-field,
    /// processor-sharing view of Bianchi's model: ours), and the AP's broadcast after it is one
    /// station's message, [`csma::wifi_channel_time_s`]`(t, 1)`.
    Csma,
}

/// The uplink time of devices whose payload airtimes (each alone on the whole band) are
/// `per_device_s` under CSMA ([`Access::Csma`]).
fn csma_uplink_s(per_device_s: &[f64]) -> Result<f64, DigitalError> {
    csma::wifi_shared_channel_time_s(per_device_s)
        .map_err(|e| DigitalError::Invalid(format!("csma: {e}")))
}

/// The channel time of the AP's broadcast of `payload_s` payload airtime under CSMA.
fn csma_downlink_s(payload_s: f64) -> Result<f64, DigitalError> {
    csma::wifi_channel_time_s(payload_s, 1).map_err(|e| DigitalError::Invalid(format!("csma: {e}")))
}

/// Airtime of one reduce-at-AP + broadcast round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Airtime {
    /// Uplink time, s.
    pub uplink_s: f64,
    /// Downlink broadcast time, s.
    pub downlink_s: f64,
    /// Fixed per-round cost, s.
    pub overhead_s: f64,
}

impl Airtime {
    /// Total, s.
    pub fn total_s(&self) -> f64 {
        self.uplink_s + self.downlink_s + self.overhead_s
    }
}

/// Airtime for each device sending `bits[k]` to the AP at uplink SNRs `snr[k]` over
/// `bandwidth_hz`, then the AP broadcasting `broadcast_bits` at the weakest device's rate
/// (with [`Access::Csma`] both contend for the channel).
pub fn reduce_broadcast_airtime(
    access: Access,
    bits: &[u64],
    snr: &[f64],
    broadcast_bits: u64,
    bandwidth_hz: f64,
    gap_db: f64,
    overhead_s: f64,
) -> Result<Airtime, DigitalError> {
    let k = bits.len();
    if k == 0 || snr.len() != k {
        return Err(DigitalError::Invalid(format!(
            "{k} payloads and {} SNRs: need K ≥ 1 of each",
            snr.len()
        )));
    }
    if !(overhead_s.is_finite() && overhead_s >= 0.0) {
        return Err(DigitalError::Invalid(format!(
            "overhead_s = {overhead_s}: must be ≥ 0"
        )));
    }
    let uplink_s = match access {
        Access::Tdma => {
            let mut t = 0.0;
            for (&b, &s) in bits.iter().zip(snr) {
                t += b as f64 / shannon_rate(bandwidth_hz, s, gap_db)?;
            }
            t
        }
        Access::Csma => {
            let mut t = Vec::with_capacity(k);
            for (&b, &s) in bits.iter().zip(snr) {
                t.push(b as f64 / shannon_rate(bandwidth_hz, s, gap_db)?);
            }
            csma_uplink_s(&t)?
        }
        Access::Ofdma => {
            let mut t: f64 = 0.0;
            for (&b, &s) in bits.iter().zip(snr) {
                // a K-th of the band; the same power spread over it raises the SNR K-fold
                t = t.max(b as f64 / shannon_rate(bandwidth_hz / k as f64, s * k as f64, gap_db)?);
            }
            t
        }
    };
    let weakest = snr.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut downlink_s = broadcast_bits as f64 / shannon_rate(bandwidth_hz, weakest, gap_db)?;
    if access == Access::Csma {
        downlink_s = csma_downlink_s(downlink_s)?;
    }
    Ok(Airtime {
        uplink_s,
        downlink_s,
        overhead_s,
    })
}

#[cfg(test)]
mod tests;

/// Airtime of a device-to-device ring all-reduce (reduce-scatter then all-gather, as
/// distributed-llama and NCCL's ring do): 2(K−1) steps, in each every device sends `bits/K` to
/// its successor at the same time, so a step lasts as long as the slowest link of the ring.
/// `link_rate_bps[k]` is the rate from device k to device (k+1) mod K.
pub fn ring_allreduce_airtime(
    bits: u64,
    link_rate_bps: &[f64],
    overhead_per_step_s: f64,
) -> Result<f64, DigitalError> {
    let k = link_rate_bps.len();
    if k == 0 {
        return Err(DigitalError::Invalid(
            "ring all-reduce needs at least one device".into(),
        ));
    }
    if let Some(r) = link_rate_bps.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(DigitalError::Invalid(format!(
            "link rate {r}: must be finite and > 0"
        )));
    }
    if !(overhead_per_step_s.is_finite() && overhead_per_step_s >= 0.0) {
        return Err(DigitalError::Invalid(format!(
            "overhead_per_step_s = {overhead_per_step_s}: must be ≥ 0"
        )));
    }
    if k == 1 {
        return Ok(0.0);
    }
    let slowest = link_rate_bps.iter().cloned().fold(f64::INFINITY, f64::min);
    let steps = 2 * (k - 1);
    Ok(steps as f64 * ((bits as f64 / k as f64) / slowest + overhead_per_step_s))
}

/// The data path of the ring all-reduce whose airtime [`ring_allreduce_airtime`] gives, in place:
/// `buffers[k]` is device k's partial before and what device k holds after. The vector is cut
/// into K chunks; in the reduce-scatter, chunk c starts at device c+1 and travels the ring, every
/// hop sending the running sum through `q` (requantised at every hop) and adding the next
/// device's partial, so it ends, summed, at device c; in the all-gather the owner keeps its sum
/// and every other device receives it quantised once.
pub fn ring_all_reduce(buffers: &mut [Vec<f32>], q: Quantiser) {
    let k = buffers.len();
    if k == 0 {
        return;
    }
    let n = buffers[0].len();
    let chunk = n.div_ceil(k);
    let mut out = vec![vec![0f32; n]; k];
    for c in 0..k {
        let (lo, hi) = ((c * chunk).min(n), ((c + 1) * chunk).min(n));
        if lo == hi {
            continue;
        }
        // reduce-scatter: chunk c starts at device c+1 and ends, summed, at device c
        let mut dev = (c + 1) % k;
        let mut acc: Vec<f32> = buffers[dev][lo..hi].to_vec();
        for _ in 0..k - 1 {
            let sent = q.roundtrip(&acc);
            dev = (dev + 1) % k;
            acc = sent
                .iter()
                .zip(&buffers[dev][lo..hi])
                .map(|(a, b)| a + b)
                .collect();
        }
        // all-gather: the owner keeps its sum, the others receive it quantised once
        let gathered = q.roundtrip(&acc);
        for (d, o) in out.iter_mut().enumerate() {
            let v = if d == c { &acc } else { &gathered };
            o[lo..hi].copy_from_slice(v);
        }
    }
    for (b, o) in buffers.iter_mut().zip(out) {
        b.copy_from_slice(&o);
    }
}

#[cfg(test)]
mod ring_tests;

/// Spectral efficiency (bit/s/Hz) of the 15 entries of the 5G NR 4-bit CQI table 1
/// (3GPP TS 38.214 Table 5.2.2.1-2): QPSK, 16QAM and 64QAM with their code rates.
pub const NR_CQI_TABLE1_SE: [f64; 15] = [
    0.1523, 0.2344, 0.3770, 0.6016, 0.8770, 1.1758, 1.4766, 1.9141, 2.4063, 2.7305, 3.3223, 3.9023,
    4.5234, 5.1152, 5.5547,
];

/// Block-error model of one MCS: a logistic curve in SNR (dB) whose 50 % point lies
/// `gap_db` above the Shannon SNR of the MCS's spectral efficiency, `10·log10(2^SE − 1)`, with
/// `slope_per_db` (a fit of the usual AWGN waterfall curves; documented, not a standard).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlerModel {
    /// Distance of the 50 % BLER point from the Shannon SNR, dB.
    pub gap_db: f64,
    /// Steepness of the waterfall, 1/dB.
    pub slope_per_db: f64,
}

impl Default for BlerModel {
    fn default() -> Self {
        BlerModel {
            gap_db: 1.5,
            slope_per_db: 2.0,
        }
    }
}

impl BlerModel {
    /// BLER of an MCS with spectral efficiency `se` at `snr_db`.
    pub fn bler(&self, se: f64, snr_db: f64) -> f64 {
        let thr = 10.0 * (2f64.powf(se) - 1.0).log10() + self.gap_db;
        1.0 / (1.0 + (self.slope_per_db * (snr_db - thr)).exp())
    }
}

/// Outcome of sending a payload with link adaptation and HARQ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HarqOutcome {
    /// Index of the chosen CQI entry (0-based), or None when even the lowest misses the target.
    pub cqi: Option<usize>,
    /// Expected number of transmissions of each block, Σ_{i<N} BLER^i.
    pub expected_tx: f64,
    /// Probability that a block is still lost after N transmissions, BLER^N.
    pub residual_loss: f64,
    /// Expected airtime, s.
    pub airtime_s: f64,
}

/// Send `bits` over `bandwidth_hz` at `snr_db`: pick the highest CQI whose BLER ≤ `target_bler`
/// (the lowest if none), then up to `max_tx` independent (re)transmissions.
pub fn mcs_airtime(
    bits: u64,
    bandwidth_hz: f64,
    snr_db: f64,
    model: &BlerModel,
    target_bler: f64,
    max_tx: u32,
) -> Result<HarqOutcome, DigitalError> {
    if !(bandwidth_hz.is_finite() && bandwidth_hz > 0.0) {
        return Err(DigitalError::Invalid(format!(
            "bandwidth_hz = {bandwidth_hz}: must be positive"
        )));
    }
    if !snr_db.is_finite() || !(0.0..1.0).contains(&target_bler) || max_tx == 0 {
        return Err(DigitalError::Invalid(format!("snr_db = {snr_db}, target_bler = {target_bler}, max_tx = {max_tx}: need finite SNR, 0 ≤ target < 1, max_tx ≥ 1")));
    }
    let cqi = (0..NR_CQI_TABLE1_SE.len())
        .rev()
        .find(|&i| model.bler(NR_CQI_TABLE1_SE[i], snr_db) <= target_bler);
    let i = cqi.unwrap_or(0);
    let se = NR_CQI_TABLE1_SE[i];
    let b = model.bler(se, snr_db);
    let expected_tx: f64 = (0..max_tx).map(|n| b.powi(n as i32)).sum();
    Ok(HarqOutcome {
        cqi,
        expected_tx,
        residual_loss: b.powi(max_tx as i32),
        airtime_s: bits as f64 / (se * bandwidth_hz) * expected_tx,
    })
}

#[cfg(test)]
mod mcs_tests;

/// How a digital link's rate follows from its SNR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// NR CQI link adaptation (table 1) to the BLER target, HARQ up to `max_tx` transmissions,
    /// residual block losses.
    #[default]
    Mcs,
    /// Shannon capacity `B log2(1 + SNR)`, every block decoded at the first transmission (an
    /// ideal code: the upper bound of any digital link, the rate of the paper's baseline).
    Shannon,
}

/// A digital reduce-at-AP + broadcast round with link adaptation, HARQ and residual errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitalLink {
    /// Uplink multiple access.
    pub access: Access,
    /// Total bandwidth, Hz.
    pub bandwidth_hz: f64,
    /// Uplink SNR of each device on the whole band, dB (OFDMA: its 1/K share sees K× the SNR).
    pub uplink_snr_db: Vec<f64>,
    /// Downlink SNR of each device, dB.
    pub downlink_snr_db: Vec<f64>,
    /// Number format on the wire.
    pub quantiser: Quantiser,
    /// Values per transport block (the unit of HARQ and of loss).
    pub block_values: usize,
    /// BLER curves.
    #[serde(default)]
    pub bler: BlerModel,
    /// Link-adaptation target BLER.
    pub target_bler: f64,
    /// Transmissions per block at most (1 = no HARQ).
    pub max_tx: u32,
    /// Fixed per-round cost, s.
    #[serde(default)]
    pub overhead_s: f64,
    /// Rate model.
    #[serde(default)]
    pub rate: Rate,
    /// Uplink transmit-time budget of each device, s (None: unlimited). A device sends what
    /// fits: its format if it does, else fewer bits per value ([`Quantiser::fitting`]), else
    /// nothing (its blocks count as lost); each block goes once (no time for HARQ).
    #[serde(default)]
    pub budget_s: Option<Vec<f64>>,
}

/// What a digital all-reduce delivered.
#[derive(Debug, Clone)]
pub struct DigitalSum {
    /// The AP's sum (blocks lost on the uplink are missing: the AP adds zero for them).
    pub estimate: Vec<f32>,
    /// What each device received (blocks lost on the downlink read as zero).
    pub per_device: Vec<Vec<f32>>,
    /// Realised airtime.
    pub airtime: Airtime,
    /// Uplink blocks lost after HARQ (over all devices).
    pub uplink_lost_blocks: usize,
    /// Downlink (device, block) pairs lost after HARQ.
    pub downlink_lost_blocks: usize,
    /// Time each device's transmitter was on in the uplink (its slot with TDMA, its sub-band's
    /// time with OFDMA, its payload's airtime with CSMA: contention not counted), HARQ
    /// retransmissions included, s.
    pub uplink_tx_s: Vec<f64>,
    /// Bits on the wire per value each device sent (scales included; 0: nothing fitted).
    pub bits_per_value: Vec<f64>,
}

/// Transmissions of one block until it is decoded or `max_tx` is reached: (count, delivered).
pub fn harq_draw<R: rand::Rng + ?Sized>(bler: f64, max_tx: u32, rng: &mut R) -> (u32, bool) {
    for n in 1..=max_tx {
        if rng.random::<f64>() >= bler {
            return (n, true);
        }
    }
    (max_tx, false)
}

/// Spectral efficiency (bit/s/Hz) and BLER of a link at `snr_db` under `link`'s rate model.
fn spectral_efficiency(link: &DigitalLink, snr_db: f64) -> Result<(f64, f64), DigitalError> {
    match link.rate {
        Rate::Mcs => {
            let o = mcs_airtime(1, 1.0, snr_db, &link.bler, link.target_bler, link.max_tx)?;
            let se = NR_CQI_TABLE1_SE[o.cqi.unwrap_or(0)];
            Ok((se, link.bler.bler(se, snr_db)))
        }
        // below 1e-9 bit/s/Hz nothing a simulation can wait for goes through: floor it so that
        // times stay finite (10⁹ s per bit)
        Rate::Shannon => Ok((
            shannon_rate(1.0, 10f64.powf(snr_db / 10.0), 0.0)?.max(1e-9),
            0.0,
        )),
    }
}

/// Transmissions of one block at `bler` and whether it arrived: HARQ draws under MCS, one
/// error-free transmission at Shannon rate (no draw).
fn transmissions<R: rand::Rng + ?Sized>(
    link: &DigitalLink,
    bler: f64,
    max_tx: u32,
    rng: &mut R,
) -> (u32, bool) {
    match link.rate {
        Rate::Mcs => harq_draw(bler, max_tx, rng),
        Rate::Shannon => (1, true),
    }
}

/// What a device's block range `[lo, hi)` of `n` values is, for block `blk`.
fn block_range(blk: usize, block_values: usize, n: usize) -> (usize, usize) {
    let lo = blk * block_values;
    (lo, (lo + block_values).min(n))
}

/// The AP's broadcast of `estimate` to every device of `link` at the weakest device's rate,
/// each block repeated until every device has it or `max_tx` is reached (drawn from `rng`):
/// what each device received (lost blocks read as zero), the airtime and the lost
/// (device, block) pairs. The quantised broadcast of [`digital_all_reduce`], and AirComp's
/// digital downlink. The airtime is the payload's, whatever `link.access` (under
/// [`Access::Csma`], [`digital_all_reduce`] adds the AP's contention).
pub fn broadcast<R: rand::Rng + ?Sized>(
    estimate: &[f32],
    link: &DigitalLink,
    rng: &mut R,
) -> Result<(Vec<Vec<f32>>, f64, usize), DigitalError> {
    let n = estimate.len();
    let k = link.downlink_snr_db.len();
    if k == 0
        || link.block_values == 0
        || !(link.bandwidth_hz.is_finite() && link.bandwidth_hz > 0.0)
    {
        return Err(DigitalError::Invalid(format!(
            "broadcast to {k} devices, {} values per block, {} Hz: need ≥ 1, ≥ 1, > 0",
            link.block_values, link.bandwidth_hz
        )));
    }
    let weakest = link
        .downlink_snr_db
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    let (se, _) = spectral_efficiency(link, weakest)?;
    let sent = link.quantiser.roundtrip(estimate);
    let mut per_device = vec![sent; k];
    let mut downlink_s = 0.0;
    let mut lost = 0;
    for blk in 0..n.div_ceil(link.block_values) {
        let (lo, hi) = block_range(blk, link.block_values, n);
        let mut rounds = 0;
        for (d, &snr_db) in link.downlink_snr_db.iter().enumerate() {
            let (tx, ok) = transmissions(link, link.bler.bler(se, snr_db), link.max_tx, rng);
            rounds = rounds.max(tx);
            if !ok {
                lost += 1;
                per_device[d][lo..hi].fill(0.0);
            }
        }
        downlink_s +=
            rounds as f64 * link.quantiser.bits(hi - lo) as f64 / (se * link.bandwidth_hz);
    }
    Ok((per_device, downlink_s, lost))
}

/// All-reduce `partials` (one vector per device) through `link`: every device quantises its
/// vector and sends it block by block at the rate its SNR gives ([`Rate`]: the MCS chosen by
/// [`mcs_airtime`]'s rule, or Shannon's); with MCS each block is retransmitted until decoded
/// or `max_tx` is reached (drawn from `rng`); under a time budget a device sends what fits;
/// the AP sums what arrived, quantises the sum and [`broadcast`]s it. The uplink is scheduled
/// by `link.access`: under [`Access::Csma`] each device's transmissions are TDMA's and the
/// uplink and the broadcast take their contended channel time.
pub fn digital_all_reduce<R: rand::Rng + ?Sized>(
    partials: &[&[f32]],
    link: &DigitalLink,
    rng: &mut R,
) -> Result<DigitalSum, DigitalError> {
    let k = partials.len();
    if k == 0 {
        return Err(DigitalError::Invalid("all-reduce over zero devices".into()));
    }
    if link.uplink_snr_db.len() != k || link.downlink_snr_db.len() != k {
        return Err(DigitalError::Invalid(format!(
            "{} uplink and {} downlink SNRs for {k} devices",
            link.uplink_snr_db.len(),
            link.downlink_snr_db.len()
        )));
    }
    if link.block_values == 0 {
        return Err(DigitalError::Invalid("block_values must be ≥ 1".into()));
    }
    link.quantiser.validate()?;
    if !(link.bandwidth_hz.is_finite() && link.bandwidth_hz > 0.0) {
        return Err(DigitalError::Invalid(format!(
            "bandwidth_hz = {}: must be positive",
            link.bandwidth_hz
        )));
    }
    if !(link.overhead_s.is_finite() && link.overhead_s >= 0.0) {
        return Err(DigitalError::Invalid(format!(
            "overhead_s = {}: must be ≥ 0",
            link.overhead_s
        )));
    }
    if let Some(b) = &link.budget_s {
        if b.len() != k || b.iter().any(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(DigitalError::Invalid(format!(
                "budget_s: {b:?} for {k} devices (need one finite time ≥ 0 each)"
            )));
        }
    }
    let n = partials[0].len();
    if partials.iter().any(|p| p.len() != n) {
        return Err(DigitalError::Invalid(
            "partial vectors differ in length".into(),
        ));
    }
    let blocks = n.div_ceil(link.block_values);
    // rate per uplink: its bandwidth and SNR gain
    let (up_bw, up_gain) = match link.access {
        Access::Tdma | Access::Csma => (link.bandwidth_hz, 1.0),
        Access::Ofdma => (link.bandwidth_hz / k as f64, k as f64),
    };
    let mut estimate = vec![0.0f32; n];
    let mut uplink_lost_blocks = 0;
    let mut per_device_time = Vec::with_capacity(k);
    let mut bits_per_value = Vec::with_capacity(k);
    for (d, (x, &snr_db)) in partials.iter().zip(&link.uplink_snr_db).enumerate() {
        let snr_db = snr_db + 10.0 * up_gain.log10();
        let (se, b) = spectral_efficiency(link, snr_db)?;
        // under a budget: the format that fits, each block once
        let (q, max_tx) = match &link.budget_s {
            None => (Some(link.quantiser), link.max_tx),
            Some(budget) => (link.quantiser.fitting(n, se * up_bw * budget[d]), 1),
        };
        let Some(q) = q else {
            uplink_lost_blocks += blocks;
            per_device_time.push(0.0);
            bits_per_value.push(0.0);
            continue;
        };
        bits_per_value.push(q.bits(n) as f64 / n.max(1) as f64);
        let sent = q.roundtrip(x);
        let mut t = 0.0;
        for blk in 0..blocks {
            let (lo, hi) = block_range(blk, link.block_values, n);
            let (tx, ok) = transmissions(link, b, max_tx, rng);
            t += tx as f64 * q.bits(hi - lo) as f64 / (se * up_bw);
            if ok {
                for (e, v) in estimate[lo..hi].iter_mut().zip(&sent[lo..hi]) {
                    *e += v;
                }
            } else {
                uplink_lost_blocks += 1;
            }
        }
        per_device_time.push(t);
    }
    let uplink_s: f64 = match link.access {
        Access::Tdma => per_device_time.iter().sum(),
        Access::Ofdma => per_device_time.iter().cloned().fold(0.0, f64::max),
        // the same transmissions as TDMA's (HARQ included), scheduled by contention
        Access::Csma => csma_uplink_s(&per_device_time)?,
    };
    let (per_device, mut downlink_s, downlink_lost_blocks) = broadcast(&estimate, link, rng)?;
    if link.access == Access::Csma {
        downlink_s = csma_downlink_s(downlink_s)?;
    }
    Ok(DigitalSum {
        estimate,
        per_device,
        airtime: Airtime {
            uplink_s,
            downlink_s,
            overhead_s: link.overhead_s,
        },
        uplink_lost_blocks,
        downlink_lost_blocks,
        uplink_tx_s: per_device_time,
        bits_per_value,
    })
}

#[cfg(test)]
mod all_reduce_tests;
