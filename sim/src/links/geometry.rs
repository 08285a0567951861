//! Where the devices are: positions and a large-scale (path-loss) model give each pair of
//! devices its mean SNR, which the pipeline's wireless hand-off links then carry
//! ([`super::handoff::HandoffLink::Wireless`]'s `snr_db`; a fading link fades around it).

use super::handoff::{HandoffLink, Network};
use airinfer_phy::channel::{D2dConfig, LargeScale, SmallScale};
use serde::Serialize;

/// Device positions and the path loss between them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Geometry {
    /// Position (x, y) of each device, m.
    pub positions_m: Vec<[f64; 2]>,
    /// Large-scale gain of a pair, evaluated at the pair's distance ([`D2dConfig`]): with
    /// [`LargeScale::LogDistance`] the path loss `pl0_db + 10·exponent·log10(d/d0_m)` plus
    /// log-normal shadowing of `shadowing_db` per pair (its `distances_m` are ignored: they
    /// come from the positions).
    pub large_scale: LargeScale,
    /// SNR of a pair at unit large-scale gain (transmit power over the receiver's noise), dB.
    pub tx_snr_db: f64,
}

impl Geometry {
    /// Mean SNR of every ordered pair, dB: `tx_snr_db + 10·log10 gain_ij`, symmetric (one
    /// shadowing draw per unordered pair, from `rng`); the diagonal is NaN (never used). The
    /// error names the field.
    pub fn mean_snr_db<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Result<Vec<Vec<f64>>, String> {
        if !self.tx_snr_db.is_finite() {
            return Err(format!("tx_snr_db = {}: must be finite", self.tx_snr_db));
        }
        for (d, p) in self.positions_m.iter().enumerate() {
            if !(p[0].is_finite() && p[1].is_finite()) {
                return Err(format!("positions_m[{d}] = {p:?}: must be finite"));
            }
        }
        let n = self.positions_m.len();
        if n < 2 {
            // no pair
            return Ok(vec![vec![f64::NAN; n]; n]);
        }
        for i in 0..n {
            for j in i + 1..n {
                if self.positions_m[i] == self.positions_m[j] {
                    return Err(format!(
                        "positions_m[{i}] = positions_m[{j}] = {:?}: two devices at one place \
                         (the path loss needs a positive distance)",
                        self.positions_m[i]
                    ));
                }
            }
        }
        let links = D2dConfig {
            positions_m: self.positions_m.clone(),
            antennas: 1,
            small_scale: SmallScale::Rayleigh,
            large_scale: self.large_scale.clone(),
        }
        .realise(rng)
        .map_err(|e| e.to_string())?;
        Ok((0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        if i == j {
                            f64::NAN
                        } else {
                            self.tx_snr_db + 10.0 * links.gain[i][j].log10()
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// Set the mean SNR of every wireless link of `net` from [`Self::mean_snr_db`] (ideal and
    /// wired links are left alone); returns the SNRs. The positions must be one per device.
    pub fn apply<R: rand::Rng + ?Sized>(
        &self,
        net: &mut Network,
        rng: &mut R,
    ) -> Result<Vec<Vec<f64>>, String> {
        if self.positions_m.len() != net.n() {
            return Err(format!(
                "positions_m: {} positions for {} devices (one per device)",
                self.positions_m.len(),
                net.n()
            ));
        }
        let snr = self.mean_snr_db(rng)?;
        for (i, row) in net.links.iter_mut().enumerate() {
            for (j, link) in row.iter_mut().enumerate() {
                if i == j {
                    continue;
                }
                if let HandoffLink::Wireless { snr_db, .. } = link {
                    let s = snr[i][j];
                    if !(s.is_finite() && s.abs() <= super::MAX_SNR_DB) {
                        return Err(format!(
                            "devices {i} and {j}: mean SNR {s:e} dB, beyond ±{} dB",
                            super::MAX_SNR_DB
                        ));
                    }
                    *snr_db = s;
                }
            }
        }
        Ok(snr)
    }
}
