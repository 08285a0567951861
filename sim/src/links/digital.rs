//! Digital all-reduce through the AP: every device quantises its partial and sends it with link
//! adaptation (NR CQI MCS from its MRC SNR `P‖h_k‖²/σ²`), HARQ and residual block losses, over
//! TDMA or OFDMA; the AP sums and broadcasts the sum back (`phy::digital::digital_all_reduce`).

use super::{Call, Carried, Link, RadioConfig};
use crate::des::Time;
use airinfer_phy::digital::{self, BlerModel, DigitalLink};

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
        let noise_var = self.radio.noise_var();
        let h = call
            .medium
            .expect("an all-reduce through the AP has its channel")
            .channels_at(call.start.secs(), &mut call.streams.fading);
        let snr_db: Vec<f64> = h
            .iter()
            .map(|hk| 10.0 * (hk.norm_squared().max(1e-30) / noise_var).log10())
            .collect();
        let link = DigitalLink {
            access: self.radio.access,
            bandwidth_hz: self.radio.bandwidth_hz,
            uplink_snr_db: snr_db.clone(),
            downlink_snr_db: snr_db,
            quantiser: self.radio.quantiser,
            block_values: self.radio.block_values,
            bler: BlerModel::default(),
            target_bler: self.radio.target_bler,
            max_tx: self.radio.max_tx,
            overhead_s: 0.0,
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
            tx_s: out.uplink_tx_s,
        }
    }

    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
    }
}
