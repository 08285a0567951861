//! Pipeline hand-offs: the hidden state (or a returning token, or a KV cache being moved) from one
//! device to the next over a directed link — ideal, wired (bandwidth + per-message latency) or a
//! digital radio link (NR CQI link adaptation, HARQ per transport block, a block still lost after
//! the last transmission arriving as zeros) — in a number format on the wire ([`Wire`]).
//! [`crate::schemes::pipeline`] times them on the event queue and applies them to the real
//! hidden state.

use super::{Call, Carried, Link};
use crate::des::Time;
use airinfer_phy::digital::{harq_draw, mcs_airtime, BlerModel, Quantiser, NR_CQI_TABLE1_SE};
use rand::Rng;
use serde::Serialize;

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
        /// Average SNR, dB.
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
    },
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
                ..
            } => {
                pos("bandwidth_hz", bandwidth_hz)?;
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

    /// (spectral efficiency, BLER) of the MCS link adaptation picks.
    fn mcs(&self) -> Option<(f64, f64)> {
        match *self {
            HandoffLink::Wireless {
                snr_db,
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

    /// Expected time to send `bytes` (what planners use): per-message cost + bytes / effective
    /// rate (wireless: the MCS rate divided by the expected transmissions per block).
    pub fn expected_s(&self, bytes: f64) -> f64 {
        let (lat, bw) = self.planner_terms();
        if bytes <= 0.0 {
            0.0
        } else {
            lat + bytes / bw
        }
    }

    /// (per-message cost s, effective bytes/s) for the planners' `latency + bytes / bandwidth`.
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
                ..
            } => {
                let (se, b) = self.mcs().unwrap_or((NR_CQI_TABLE1_SE[0], 1.0));
                let tx: f64 = (0..max_tx).map(|n| b.powi(n as i32)).sum();
                (overhead_s, se * bandwidth_hz / 8.0 / tx)
            }
        }
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

    /// Send `bytes`: the realised time from the first bit sent to the last received
    /// ([`Self::occupancy`] plus [`Self::propagation_s`]), and which blocks (of `block_bytes`)
    /// were lost.
    pub fn send<R: Rng + ?Sized>(&self, bytes: f64, rng: &mut R) -> (f64, Vec<usize>) {
        if bytes <= 0.0 {
            return (0.0, Vec::new());
        }
        let (occ, lost) = self.occupancy(bytes, rng);
        (occ + self.propagation_s(), lost)
    }

    /// Send `bytes`: how long the link is occupied (serialisation, or the realised HARQ
    /// airtime), and which blocks (of `block_bytes`) were lost.
    pub fn occupancy<R: Rng + ?Sized>(&self, bytes: f64, rng: &mut R) -> (f64, Vec<usize>) {
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
                let (se, b) = self.mcs().unwrap_or((NR_CQI_TABLE1_SE[0], 1.0));
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

/// The links between every ordered pair of devices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    /// `links[i][j]`: from device i to device j (the diagonal is never used).
    pub links: Vec<Vec<HandoffLink>>,
}

impl Network {
    /// Every pair joined by `link`.
    pub fn uniform(n: usize, link: HandoffLink) -> Network {
        Network {
            links: vec![vec![link; n]; n],
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
            let (dur, lost) = self.link.send(bytes, &mut call.streams.packet);
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
