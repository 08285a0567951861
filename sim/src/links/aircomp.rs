//! Over-the-air computation at symbol level: every device sends its partial as analog symbols,
//! all at once on the fading MAC, and the AP's receive beamformer reads the sum off the
//! superposition (`phy::aircomp::over_the_air_sum`), with the transceivers designed for the
//! channel of each token; the estimate returns through the downlink model.
//!
//! A call is sent token by token, two reals per complex symbol (L streams per use), the channel
//! read at the simulated time each token goes out (so a long prefill meets new realisations when
//! it outlasts the coherence time) and the transceivers redesigned for every token (the design
//! needs the token's per-device variances). Each device also sends its token's mean and variance
//! digitally (2 × 16 bits at `side_info_bits_per_use`, devices one after another). Uncoded FDMA
//! ([`super::fdma`]) shares this loop.
//!
//! On one Wi-Fi channel (`access = csma`) the devices cannot all transmit at once by
//! contending: the AP wins the channel and sends a trigger frame, and the devices answer
//! together SIFS later (an 802.11ax trigger-based PPDU). Every round then costs
//! [`csma::WIFI_TRIGGER_ACCESS_S`] (157.5 µs: DIFS, one station's mean back-off, the trigger
//! frame, SIFS) on top of the radio's `round_overhead_s` ([`Aircomp::round_overhead_s`]).

use super::{Broadcast, Call, Carried, Link, RadioConfig, Streams};
use crate::des::Time;
use airinfer_phy::aircomp::{
    self, AirCompError, Downlink, OtaLink, OtaOutcome, Problem, ReceiveDirection, Transceiver,
};
use airinfer_phy::channel;
use airinfer_phy::csma;
use airinfer_phy::digital::{self, Access};
use airinfer_phy::rng;
use airinfer_phy::CMat;
use serde::{Deserialize, Serialize};

/// AirComp transceiver design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// Zero-forcing, principal eigen-direction.
    Zf,
    /// Zero-forcing, sum of channel directions.
    ZfSum,
    /// MMSE by alternating optimisation.
    Mmse,
    /// SCA: successive convex approximation (near-SDR, no SDP).
    Sca,
    /// SDR: semidefinite relaxation (our interior-point SDP solver) + Gaussian randomisation.
    Sdr,
}

impl Design {
    /// Every design, in the order of the names in files.
    pub const ALL: [Design; 5] = [
        Design::Zf,
        Design::ZfSum,
        Design::Mmse,
        Design::Sca,
        Design::Sdr,
    ];

    /// Name as written in files.
    pub fn name(self) -> &'static str {
        match self {
            Design::Zf => "zf",
            Design::ZfSum => "zf_sum",
            Design::Mmse => "mmse",
            Design::Sca => "sca",
            Design::Sdr => "sdr",
        }
    }

    /// The design called `name` in a file; a name that has changed gives an error saying the
    /// new one.
    pub fn from_name(name: &str) -> Result<Design, String> {
        if let Some(new) = renamed(name) {
            return Err(format!("design \"{name}\" is now called \"{new}\""));
        }
        Design::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                let names: Vec<String> = Design::ALL
                    .iter()
                    .map(|d| format!("`{}`", d.name()))
                    .collect();
                format!(
                    "unknown variant `{name}`, expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The current name of a design that was renamed (`fast` → `sca`).
pub fn renamed(name: &str) -> Option<&'static str> {
    (name == "fast").then_some("sca")
}

impl<'de> Deserialize<'de> for Design {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Design, D::Error> {
        let name = String::deserialize(d)?;
        Design::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// The transceiver design `design` as the closure `over_the_air_sum` calls (SDR draws its
/// randomisation from `rng`).
pub fn design_fn(
    design: Design,
    rng: &mut rng::Rng,
) -> impl Fn(&Problem) -> Result<Transceiver, AirCompError> + '_ {
    let rng = std::cell::RefCell::new(rng);
    move |p: &Problem| match design {
        Design::Zf => aircomp::zero_forcing(p, ReceiveDirection::Eigen),
        Design::ZfSum => aircomp::zero_forcing(p, ReceiveDirection::SumDirections),
        Design::Mmse => aircomp::mmse(p, 50),
        Design::Sca => aircomp::sca(p, 100),
        Design::Sdr => aircomp::sdr(p, 50, &mut **rng.borrow_mut()).map(|d| d.transceiver),
    }
}

/// The symbol-level AirComp link.
pub struct Aircomp {
    radio: RadioConfig,
    design: Design,
    /// The channel (as the design saw it) and receive directions of the last SCA design: the
    /// next token on the same channel starts from them ([`aircomp::sca_warm`]).
    warm: Option<(Vec<CMat>, CMat)>,
}

impl Aircomp {
    /// For `radio` (validated by [`RadioConfig::validate`]) with transceiver design `design`.
    pub fn new(radio: &RadioConfig, design: Design) -> Aircomp {
        Aircomp {
            radio: radio.clone(),
            design,
            warm: None,
        }
    }
}

impl Link for Aircomp {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        let design = self.design;
        let warm = &mut self.warm;
        token_by_token(&self.radio, call, buffers, 1.0, &mut |refs, link, s| {
            if design != Design::Sca {
                let f = design_fn(design, &mut s.design);
                return aircomp::over_the_air_sum(refs, link, f, &mut s.noise);
            }
            // SCA with L > 1 streams on the channel of the previous token starts from its
            // directions (one stream: the cold design, whose iterations are cheap)
            let f = |p: &Problem| {
                let t = match warm.as_ref() {
                    Some((h, g)) if p.streams > 1 && h.as_slice() == p.channels => {
                        aircomp::sca_warm(p, 40, g)
                    }
                    _ => aircomp::sca(p, 100),
                }?;
                match warm {
                    Some((h, g)) if h.as_slice() == p.channels => {
                        g.clone_from(&t.receive_beamformer)
                    }
                    _ => *warm = Some((p.channels.to_vec(), t.receive_beamformer.clone())),
                }
                Ok(t)
            };
            aircomp::over_the_air_sum(refs, link, f, &mut s.noise)
        })
    }

    /// The radio's per-round cost, plus under CSMA the AP's channel access and trigger frame
    /// ([`csma::WIFI_TRIGGER_ACCESS_S`]; see the module doc).
    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
            + match self.radio.access {
                Access::Csma => csma::WIFI_TRIGGER_ACCESS_S,
                Access::Tdma | Access::Ofdma => 0.0,
            }
    }
}

/// The uplink sum of one token's partials through an [`OtaLink`], drawing from the streams.
pub(super) type TokenSum<'s> =
    dyn FnMut(&[&[f32]], &OtaLink, &mut Streams) -> Result<OtaOutcome, AirCompError> + 's;

/// Carry a call token by token through `sum` (AirComp or FDMA): the channel at each token's
/// time, imperfect CSI when set, the downlink, the side information; predicted error per real
/// value (a channel use's over the 2L reals it carries). Every device sends at `power` times
/// its own transmit power (`radio.tx_power`, else the reference), which the receiver sees as a
/// gain on the device's uplink channel (so the designs weigh the devices by it); the AP's
/// broadcast sees the channels without it.
pub(super) fn token_by_token(
    radio: &RadioConfig,
    call: Call<'_>,
    buffers: &mut [Vec<f32>],
    power: f64,
    sum: &mut TokenSum<'_>,
) -> Carried {
    let (start, width, n_tokens) = (call.start.secs(), call.width, call.n_tokens);
    let medium = call
        .medium
        .expect("an all-reduce through the AP has its channel");
    let k = buffers.len();
    let noise_var = radio.noise_var();
    let energy_factor: Vec<f64> = (0..k).map(|d| power * radio.power_of(d)).collect();
    let power = vec![power; k];
    let mut pred = 0.0;
    // every device transmits as long as the others: one on-time for all
    let mut on_s = 0.0;
    let mut t = start;
    let mut out = vec![vec![0f32; width * n_tokens]; k];
    for tok in 0..n_tokens {
        let h = medium.channels_at(t, &mut call.streams.fading);
        // the uplink: each device's channel times the amplitude of its own transmit power
        let up: Vec<CMat> = if radio.tx_power.is_empty() {
            h.clone()
        } else {
            h.iter()
                .enumerate()
                .map(|(d, hk)| hk * airinfer_phy::C64::new(radio.power_of(d).sqrt(), 0.0))
                .collect()
        };
        let csi: Option<Vec<CMat>> = (radio.csi_error_var > 0.0).then(|| {
            up.iter()
                .map(|hk| {
                    channel::estimate(hk, radio.csi_error_var, &mut call.streams.csi)
                        .expect("validated")
                })
                .collect()
        });
        let refs: Vec<&[f32]> = buffers
            .iter()
            .map(|b| &b[tok * width..(tok + 1) * width])
            .collect();
        let link = OtaLink {
            channels: &up,
            csi: csi.as_deref(),
            power: &power,
            noise_var,
            streams: radio.streams,
        };
        let (est, uses, side) = match sum(&refs, &link, call.streams) {
            Ok(o) => {
                // per channel use (L streams, 2L reals) → per real value
                pred += o.true_mse / (2 * radio.streams) as f64 * width as f64;
                (o.estimate, o.channel_uses, o.side_info_bytes)
            }
            // a design that cannot serve this realisation (e.g. rank-deficient): nothing
            // arrives this token
            Err(_) => (vec![0f32; width], width.div_ceil(2), 8 * k),
        };
        let downlink_s = deliver_token(&est, radio, &h, call.streams, &mut out, tok, width);
        // side info: each device's mean and variance, 8 bytes as f32, sent as 2 × fp16
        let side_bits = 4.0 * side as f64;
        // every device sends its analog symbols at once, then its own share of the side info
        on_s += uses as f64 / radio.bandwidth_hz
            + side_bits / k as f64 / radio.side_info_bits_per_use / radio.bandwidth_hz;
        let air = uses as f64 / radio.bandwidth_hz
            + side_bits / radio.side_info_bits_per_use / radio.bandwidth_hz
            + downlink_s;
        t += air;
    }
    finish_tokens(buffers, out, start, t, pred, on_s, &energy_factor)
}

/// Return token `tok`'s estimate `est` to every device through the radio's [`Broadcast`] on
/// channels `h`, into its slice of `out`; the downlink's airtime.
pub(super) fn deliver_token(
    est: &[f32],
    radio: &RadioConfig,
    h: &[CMat],
    streams: &mut Streams,
    out: &mut [Vec<f32>],
    tok: usize,
    width: usize,
) -> f64 {
    let (per_device, airtime_s) = match radio.downlink {
        Broadcast::Ideal => (vec![est.to_vec(); out.len()], 0.0),
        Broadcast::Digital => {
            let link = radio.digital_link(radio.mrc_snr_db(h));
            let (per_device, airtime_s, _) =
                digital::broadcast(est, &link, &mut streams.noise).expect("validated digital link");
            (per_device, airtime_s)
        }
        Broadcast::Analog => {
            let nr = h.first().map_or(1, |hk| hk.nrows()) as f64;
            let snr = h
                .iter()
                .map(|hk| hk.norm_squared() / (nr * radio.noise_var()))
                .collect();
            let d = aircomp::deliver(
                est,
                out.len(),
                &Downlink::Analog {
                    symbol_rate_hz: radio.bandwidth_hz,
                    snr,
                },
                &mut streams.noise,
            )
            .expect("validated downlink");
            (d.per_device, d.airtime_s)
        }
    };
    for (o, v) in out.iter_mut().zip(per_device) {
        o[tok * width..(tok + 1) * width].copy_from_slice(&v);
    }
    airtime_s
}

/// A token-by-token call's end: what each device received into `buffers`, the airtime from
/// `start_s` to `end_s`, the predicted error and every device's transmit time `on_s` at
/// `power[d]` times its full power.
pub(super) fn finish_tokens(
    buffers: &mut [Vec<f32>],
    out: Vec<Vec<f32>>,
    start_s: f64,
    end_s: f64,
    pred: f64,
    on_s: f64,
    power: &[f64],
) -> Carried {
    for (b, o) in buffers.iter_mut().zip(out) {
        b.copy_from_slice(&o);
    }
    Carried {
        airtime: Time::from_secs(end_s - start_s),
        predicted_err2: Some(pred),
        lost_blocks: 0,
        tx_s: vec![on_s; buffers.len()],
        tx_energy: power.iter().map(|p| on_s * p).collect(),
        bits_per_value: None,
    }
}
