//! Waveform-level physical layer: OFDM modulation, Schmidl–Cox synchronisation, and the
//! impairments (multipath, timing offset, carrier-frequency offset, phase noise, clipping, ADC
//! quantisation, noise) that over-the-air computation (AirComp) has to live with when it is
//! simulated sample by sample rather than symbol by symbol.
//!
//! # Conventions
//!
//! * Complex baseband, one complex sample per sampling period `1/fs`.
//! * The discrete Fourier transforms are **unitary**:
//!   `x[n] = N^{-1/2} Σ_k X[k] e^{+j2πkn/N}` and `X[k] = N^{-1/2} Σ_n x[n] e^{-j2πkn/N}`, so
//!   energy is preserved (Parseval) and white noise of variance σ² per time sample has variance
//!   σ² on every subcarrier.
//! * An OFDM "grid" is a `Vec<Vec<C64>>`: one inner vector per OFDM symbol holding the values on
//!   the used subcarriers, lowest frequency first (see [`ofdm::OfdmConfig::used_carriers`]).
//! * SNRs quoted in tests are *per used subcarrier*: mean carrier power over the noise variance
//!   σ² per time sample (= per subcarrier after the unitary FFT).
//!
//! # Modules
//!
//! * [`ofdm`]: numerology ([`ofdm::OfdmConfig`]), modulator/demodulator, pilots, packing of real
//!   payloads onto carriers.
//! * [`sync`]: Schmidl–Cox preamble, timing and fractional-CFO estimation, least-squares channel
//!   estimation, pilot-based common-phase correction.
//! * [`tdl`]: 3GPP TR 38.901 TDL-A/B/C tapped-delay-line channels on the sample grid and their
//!   frequency response on the used subcarriers.
//! * [`impair`]: timing offset, CFO, Wiener phase noise, clipping and power limit, ADC, AWGN, and
//!   the per-device [`impair::Impairments`] bundle.
//!
//! No function here panics on bad user input: invalid parameters are reported as
//! [`WaveformError`] naming the offending field. Functions that draw random numbers take the
//! generator as `&mut R` with `R: rand::Rng + ?Sized`; they never build generators themselves.

pub mod aircomp;
pub mod hil;
pub mod impair;
pub mod ofdm;
pub mod sync;
pub mod tdl;

use crate::C64;
use std::cell::RefCell;

/// Errors of the waveform layer. Every variant names the offending field or argument.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaveformError {
    /// A parameter is out of its allowed range.
    #[error("invalid `{field}`: {reason}")]
    InvalidParameter {
        /// Name of the field or argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A slice has the wrong length (or is too short for the request).
    #[error("`{field}` has length {got}, expected {expected}")]
    LengthMismatch {
        /// Name of the field or argument.
        field: &'static str,
        /// Length that was needed.
        expected: usize,
        /// Length that was given.
        got: usize,
    },
}

impl WaveformError {
    /// Shorthand for [`WaveformError::InvalidParameter`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        WaveformError::InvalidParameter {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks that `v` is finite, naming `field` otherwise.
pub(crate) fn check_finite(field: &'static str, v: f64) -> Result<(), WaveformError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(WaveformError::invalid(
            field,
            format!("must be finite, got {v}"),
        ))
    }
}

/// Checks that `v` is finite and strictly positive.
pub(crate) fn check_positive(field: &'static str, v: f64) -> Result<(), WaveformError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(WaveformError::invalid(
            field,
            format!("must be finite and > 0, got {v}"),
        ))
    }
}

/// Checks that `v` is finite and non-negative.
pub(crate) fn check_non_negative(field: &'static str, v: f64) -> Result<(), WaveformError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(WaveformError::invalid(
            field,
            format!("must be finite and >= 0, got {v}"),
        ))
    }
}

thread_local! {
    /// rustfft caches plans inside the planner; one planner per thread.
    static PLANNER: RefCell<rustfft::FftPlanner<f64>> = RefCell::new(rustfft::FftPlanner::new());
}

/// In-place unitary DFT (`inverse = false`: `e^{-j…}`, `true`: `e^{+j…}`), both scaled by
/// `1/sqrt(len)`.
pub(crate) fn fft_unitary(buf: &mut [C64], inverse: bool) {
    let n = buf.len();
    if n == 0 {
        return;
    }
    let plan = PLANNER.with(|p| {
        let mut p = p.borrow_mut();
        if inverse {
            p.plan_fft_inverse(n)
        } else {
            p.plan_fft_forward(n)
        }
    });
    plan.process(buf);
    let s = 1.0 / (n as f64).sqrt();
    for v in buf.iter_mut() {
        *v *= s;
    }
}

/// `len` values ±1 from the maximal-length PN9 sequence (LFSR with polynomial x⁹ + x⁵ + 1, the
/// ITU-T O.150 PN9), started from the 9-bit state `seed` (0 is replaced by all ones). Bit 0
/// maps to +1, bit 1 to −1. Deterministic: used for pilots, preamble and training symbols.
pub(crate) fn pn_pm1(len: usize, seed: u16) -> Vec<f64> {
    let mut state: u16 = seed & 0x1FF;
    if state == 0 {
        state = 0x1FF;
    }
    (0..len)
        .map(|_| {
            let bit = ((state >> 8) ^ (state >> 4)) & 1;
            state = ((state << 1) | bit) & 0x1FF;
            if bit == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pn9_is_maximal_length_and_balanced() {
        let s = pn_pm1(2 * 511, 0x1FF);
        // Period 511, not shorter.
        assert_eq!(&s[..511], &s[511..]);
        for p in 1..511 {
            assert!(s[..511].iter().zip(&s[p..p + 511]).any(|(a, b)| a != b));
        }
        // An m-sequence of period 511 has 256 ones and 255 zeros.
        let minus = s[..511].iter().filter(|&&v| v < 0.0).count();
        assert_eq!(minus, 256);
    }

    #[test]
    fn unitary_fft_round_trip_and_energy() {
        let mut x: Vec<C64> = (0..64)
            .map(|i| C64::new((i as f64 * 0.37).sin(), (i as f64 * 1.3).cos()))
            .collect();
        let x0 = x.clone();
        let e0: f64 = x.iter().map(|v| v.norm_sqr()).sum();
        fft_unitary(&mut x, false);
        let e1: f64 = x.iter().map(|v| v.norm_sqr()).sum();
        // f64 radix-2 FFT: relative error ~ε·log₂N ≈ 1.3e-15 (N = 64, elements O(1)), so 1e-12
        // (energy) and 1e-13 (per element) leave ≥ 50× headroom
        assert!((e0 - e1).abs() < 1e-12 * e0);
        fft_unitary(&mut x, true);
        for (a, b) in x.iter().zip(&x0) {
            assert!((a - b).norm() < 1e-13);
        }
    }

    #[test]
    fn error_messages_name_the_field() {
        let e = WaveformError::invalid("n_fft", "must be a power of two");
        assert!(e.to_string().contains("n_fft"));
        let e = WaveformError::LengthMismatch {
            field: "symbols",
            expected: 3,
            got: 2,
        };
        assert!(e.to_string().contains("symbols"));
    }
}
