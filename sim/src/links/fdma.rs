//! Uncoded analog FDMA: each device sends its partial, unquantised, on a sub-channel of its own
//! (`phy::aircomp::fdma_sum`), the AP adds the K matched-filter estimates; token by token as
//! AirComp ([`super::aircomp`]), with the same side information and downlink.

use super::aircomp::token_by_token;
use super::{Call, Carried, Link, RadioConfig};
use airinfer_phy::aircomp;

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
}

impl Link for Fdma {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        token_by_token(&self.radio, call, buffers, &mut |refs, link, s| {
            aircomp::fdma_sum(refs, link, &mut s.noise)
        })
    }

    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
    }
}
