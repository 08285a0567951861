//! The downlink: how the AP hands the estimated sum back to every device (ideal, digital
//! broadcast, analog broadcast).

use super::*;

/// How the AP hands the estimated sum back to every device.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum Downlink {
    /// Every device receives the AP's estimate exactly, instantly.
    Ideal,
    /// Digital broadcast: the estimate is quantised and sent at `rate_bps` (the rate of the
    /// weakest device); every device decodes the same values.
    Digital {
        /// Broadcast rate, bit/s.
        rate_bps: f64,
        /// Number format.
        quantiser: crate::digital::Quantiser,
    },
    /// Analog broadcast: the estimate, scaled to unit power, is sent as complex symbols (two
    /// reals per use) at `symbol_rate_hz`; device k receives it with its own linear SNR.
    Analog {
        /// Complex symbols per second.
        symbol_rate_hz: f64,
        /// Linear downlink SNR of each device.
        snr: Vec<f64>,
    },
}

/// What the downlink delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// What each device received.
    pub per_device: Vec<Vec<f32>>,
    /// Downlink airtime, s.
    pub airtime_s: f64,
}

/// Deliver `estimate` to `k` devices through `downlink`.
pub fn deliver<R: rand::Rng + ?Sized>(
    estimate: &[f32],
    k: usize,
    downlink: &Downlink,
    rng: &mut R,
) -> Result<Delivered, AirCompError> {
    if k == 0 {
        return bad("downlink to zero devices");
    }
    match downlink {
        Downlink::Ideal => Ok(Delivered {
            per_device: vec![estimate.to_vec(); k],
            airtime_s: 0.0,
        }),
        Downlink::Digital {
            rate_bps,
            quantiser,
        } => {
            if !(rate_bps.is_finite() && *rate_bps > 0.0) {
                return bad(format!(
                    "downlink rate_bps = {rate_bps}: must be finite and > 0"
                ));
            }
            let q = quantiser.roundtrip(estimate);
            Ok(Delivered {
                per_device: vec![q; k],
                airtime_s: quantiser.bits(estimate.len()) as f64 / rate_bps,
            })
        }
        Downlink::Analog {
            symbol_rate_hz,
            snr,
        } => {
            if !(symbol_rate_hz.is_finite() && *symbol_rate_hz > 0.0) {
                return bad(format!(
                    "downlink symbol_rate_hz = {symbol_rate_hz}: must be finite and > 0"
                ));
            }
            if snr.len() != k {
                return bad(format!("{} downlink SNRs for {k} devices", snr.len()));
            }
            if let Some(s) = snr.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return bad(format!("downlink SNR {s}: must be finite and > 0"));
            }
            // per-real-component power of what is sent; noise per real component = P / SNR
            let n = estimate.len().max(1) as f64;
            let power = estimate.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n;
            let per_device = snr
                .iter()
                .map(|&s| {
                    let sd = (power / s).sqrt();
                    estimate
                        .iter()
                        .map(|&v| {
                            (v as f64
                                + sd * rand_distr::Distribution::<f64>::sample(
                                    &rand_distr::StandardNormal,
                                    rng,
                                )) as f32
                        })
                        .collect()
                })
                .collect();
            Ok(Delivered {
                per_device,
                airtime_s: estimate.len().div_ceil(2) as f64 / symbol_rate_hz,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digital::Quantiser;
    use crate::rng::stream;

    #[test]
    fn downlink_models() {
        let x: Vec<f32> = (0..20_000).map(|i| ((i as f32) * 0.37).sin()).collect();
        let mut r = stream(1, &[]);
        let d = deliver(&x, 3, &Downlink::Ideal, &mut r).unwrap();
        assert!(d.per_device.iter().all(|v| v == &x) && d.airtime_s == 0.0);
        let q = Quantiser::Int8 { block: 64 };
        let d = deliver(
            &x,
            2,
            &Downlink::Digital {
                rate_bps: 1e6,
                quantiser: q,
            },
            &mut r,
        )
        .unwrap();
        assert_eq!(d.per_device[0], d.per_device[1]);
        // closed form, one f64 division (O(0.1) s): rounding ~1e-17
        assert!((d.airtime_s - q.bits(x.len()) as f64 / 1e6).abs() < 1e-12);
        // analog: noise variance per component = power / SNR
        let snr = vec![10.0, 100.0];
        let d = deliver(
            &x,
            2,
            &Downlink::Analog {
                symbol_rate_hz: 1e6,
                snr: snr.clone(),
            },
            &mut r,
        )
        .unwrap();
        let power = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64;
        for (k, s) in snr.iter().enumerate() {
            let var = d.per_device[k]
                .iter()
                .zip(&x)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / x.len() as f64;
            // Monte-Carlo: Gaussian noise, rel. SE √(2/n) = 1 % at n = 20 000: 0.05 = 5 SE (the
            // f32 rounding of the received values is ~1e-7 of a noise σ ≥ 0.07)
            assert!((var / (power / s) - 1.0).abs() < 0.05, "device {k}: {var}");
        }
        // closed form: ⌈n/2⌉ symbols / rate, one f64 division
        assert!((d.airtime_s - 10_000.0 / 1e6).abs() < 1e-12);
        assert!(deliver(
            &x,
            2,
            &Downlink::Analog {
                symbol_rate_hz: 1e6,
                snr: vec![1.0]
            },
            &mut r
        )
        .is_err());
        assert!(deliver(&x, 0, &Downlink::Ideal, &mut r).is_err());
    }
}
