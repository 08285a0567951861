//! Digital all-reduce through the AP: every device quantises its partial and sends it with link
//! adaptation (NR CQI MCS from its MRC SNR `P‖h_k‖²/σ²`), HARQ and residual block losses, over
//! TDMA, OFDMA or CSMA/CA; the AP sums and broadcasts the sum back
//! (`phy::digital::digital_all_reduce`).
//! Held to AirComp's energy or airtime ([`HeldEqual`]) each device sends what fits.

use super::{Call, Carried, HeldEqual, Link, RadioConfig};
use crate::des::Time;
use airinfer_phy::digital::{self, Access};

/// The digital reduce-and-broadcast link.
pub struct Digital {
    radio: RadioConfig,
}

impl Digital {
    /// For `radio` (validated by [`RadioConfig::validate`]).
    pub fn new(radio: &RadioConfig) -> Digital {
        Digital {
            radio: radio.clone(),
        }
    }
}

impl Link for Digital {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        let k = buffers.len();
        let h = call
            .medium
            .expect("an all-reduce through the AP has its channel")
            .channels_at(call.start.secs(), &mut call.streams.fading);
        let mut link = self.radio.digital_link(self.radio.mrc_snr_db(&h));
        // a device's own transmit power scales its uplink SNR; the AP's broadcast does not
        for (d, snr) in link.uplink_snr_db.iter_mut().enumerate() {
            *snr += 10.0 * self.radio.power_of(d).log10();
        }
        // the budget of what it is held equal to: AirComp's transmit time or airtime for the
        // call's tokens
        let (on_s, air_s) = self.radio.aircomp_uplink_s(k, call.width);
        let n = call.n_tokens as f64;
        link.budget_s = match (self.radio.held_equal, self.radio.access) {
            (HeldEqual::Power, _) => None,
            (HeldEqual::Energy, _) => Some(vec![on_s * n; k]),
            (HeldEqual::Airtime, Access::Ofdma) => Some(vec![air_s * n; k]),
            // CSMA: a device holding the channel transmits alone on the whole band, as in its
            // TDMA slot (the contention comes on top)
            (HeldEqual::Airtime, Access::Tdma | Access::Csma) => {
                Some(vec![air_s * n / k as f64; k])
            }
        };
        let refs: Vec<&[f32]> = buffers.iter().map(|b| b.as_slice()).collect();
        let out = digital::digital_all_reduce(&refs, &link, &mut call.streams.noise)
            .expect("digital link parameters are validated by RadioConfig::validate");
        for (b, v) in buffers.iter_mut().zip(out.per_device) {
            b.copy_from_slice(&v);
        }
        Carried {
            airtime: Time::from_secs(out.airtime.total_s()),
            predicted_err2: None,
            lost_blocks: out.uplink_lost_blocks + out.downlink_lost_blocks,
            tx_energy: (0..k)
                .map(|d| out.uplink_tx_s[d] * self.radio.power_of(d))
                .collect(),
            tx_s: out.uplink_tx_s,
            bits_per_value: Some(out.bits_per_value.iter().sum::<f64>() / k as f64),
        }
    }

    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
    }
}
