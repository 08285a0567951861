//! Uncoded analog FDMA: each device sends its partial, unquantised, on a sub-channel of its own
//! (`phy::aircomp::fdma_sum`), the AP adds the K matched-filter estimates; token by token as
//! AirComp ([`super::aircomp`]), with the same side information and downlink. Held equal to
//! AirComp ([`HeldEqual`]): full power per sub-band (K× AirComp's airtime and energy), a K-th
//! of it (equal energy), or AirComp's airtime, in which each sub-band carries a K-th of the
//! values and the AP takes each device's mean for the rest.

use super::aircomp::token_by_token;
use super::{Call, Carried, HeldEqual, Link, RadioConfig};
use airinfer_phy::aircomp::{self, OtaOutcome};

/// The uncoded FDMA link.
pub struct Fdma {
    radio: RadioConfig,
}

impl Fdma {
    /// For `radio` (validated by [`RadioConfig::validate`]).
    pub fn new(radio: &RadioConfig) -> Fdma {
        Fdma {
            radio: radio.clone(),
        }
    }

    /// Values per device and token that fit in AirComp's airtime: ⌊U/K⌋ sub-band uses of 2L
    /// reals each, U = ⌈width/2L⌉ AirComp's channel uses (the sub-band symbol lasts K full-band
    /// uses).
    pub fn values_in_aircomps_airtime(&self, k: usize, width: usize) -> usize {
        let l = self.radio.streams.max(1);
        (self.radio.aircomp_uses(width) / k * 2 * l).min(width)
    }
}

impl Link for Fdma {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        let k = buffers.len();
        let width = call.width;
        let l = self.radio.streams.max(1);
        let (power, fit) = match self.radio.held_equal {
            HeldEqual::Power => (1.0, width),
            HeldEqual::Energy => (1.0 / k as f64, width),
            HeldEqual::Airtime => (1.0, self.values_in_aircomps_airtime(k, width)),
        };
        token_by_token(&self.radio, call, buffers, power, &mut |refs, link, s| {
            if fit >= width {
                return aircomp::fdma_sum(refs, link, &mut s.noise);
            }
            // what fits goes over the air; for the rest the AP has each device's mean (side
            // information), so its expected error there is Σ_k var_k per value (the variance of
            // a complex symbol is twice a real value's)
            let (means, sym_var) = aircomp::centre_stats(refs);
            let mean_sum: f64 = means.iter().sum();
            let var_sum = sym_var.iter().sum::<f64>() / 2.0;
            let mut o = if fit > 0 {
                let kept: Vec<&[f32]> = refs.iter().map(|r| &r[..fit]).collect();
                aircomp::fdma_sum(&kept, link, &mut s.noise)?
            } else {
                OtaOutcome {
                    estimate: Vec::new(),
                    channel_uses: 0,
                    side_info_bytes: 8 * refs.len(),
                    analytic_mse: 0.0,
                    true_mse: 0.0,
                }
            };
            o.estimate.resize(width, mean_sum as f32);
            // token_by_token turns a use's MSE into the token's as true_mse/(2L)·width: give it
            // the kept values' error plus the lost ones' in that form
            let token_err2 =
                o.true_mse / (2 * l) as f64 * fit as f64 + var_sum * (width - fit) as f64;
            o.true_mse = token_err2 * (2 * l) as f64 / width as f64;
            Ok(o)
        })
    }

    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
    }
}
