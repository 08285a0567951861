//! The device-to-device ring all-reduce (reduce-scatter then all-gather over links k → k+1, as
//! distributed-llama does over a LAN): no AP; the data path and its airtime are
//! `phy::digital::{ring_all_reduce, ring_allreduce_airtime}`, every reduce-scatter hop
//! requantising.

use super::{Call, Carried, Link, RadioConfig};
use crate::des::Time;
use airinfer_phy::channel;
use airinfer_phy::digital;
use airinfer_phy::rng::{self, component};

/// The ring link.
pub struct Ring {
    radio: RadioConfig,
}

impl Ring {
    /// For `radio` (validated by [`RadioConfig::validate`]).
    pub fn new(radio: &RadioConfig) -> Ring {
        Ring {
            radio: radio.clone(),
        }
    }

    /// Shannon rates of the ring links k → k+1 (N_t × N_t Rayleigh D2D channels, one stream
    /// beamformed along the strongest singular direction: gain s_max(G)², |g|² with one antenna;
    /// unit large-scale gain) of the run of `seed` in coherence block `block` (with Jakes'
    /// model, every round is a block). ‖G‖²_F, used before, counted every antenna pair's gain.
    pub fn rates(&self, seed: u64, block: u64, k: usize) -> Vec<f64> {
        let noise_var = self.radio.noise_var();
        let mut r = rng::stream(seed, &[component::FADING, 0xD2D, block]);
        let n = self.radio.tx_antennas;
        (0..k)
            .map(|_| {
                let g = super::beamformed_gain(&channel::cn_matrix(n, n, &mut r));
                digital::shannon_rate(self.radio.bandwidth_hz, g / noise_var, 0.0)
                    .expect("validated bandwidth")
                    .max(1e-3)
            })
            .collect()
    }
}

impl Link for Ring {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        let k = buffers.len();
        let medium = call
            .medium
            .expect("the ring's links follow the run's coherence blocks");
        let block = medium.block_at(call.start.secs(), call.round);
        let rates = self.rates(medium.seed(), block, k);
        let q = self.radio.quantiser;
        let bits = q.bits(buffers[0].len());
        digital::ring_all_reduce(buffers, q);
        // 2(K − 1) steps, in each device k sends bits/K to k + 1 at its link's rate
        let steps = 2.0 * (k - 1) as f64;
        let tx_s: Vec<f64> = rates
            .iter()
            .map(|r| steps * (bits as f64 / k as f64) / r)
            .collect();
        Carried {
            airtime: Time::from_secs(
                digital::ring_allreduce_airtime(bits, &rates, 0.0)
                    .expect("ring rates are positive"),
            ),
            predicted_err2: None,
            lost_blocks: 0,
            tx_energy: tx_s.clone(),
            tx_s,
            bits_per_value: Some(bits as f64 / buffers[0].len().max(1) as f64),
        }
    }

    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
    }
}
