//! Cyclic-prefix OFDM modulator and demodulator.
//!
//! # Numerology
//!
//! An [`OfdmConfig`] has an `n_fft`-point DFT, a cyclic prefix (CP) of `cp_len` samples, and
//! `n_used` active subcarriers placed symmetrically around DC with DC itself left empty: signed
//! subcarrier indices `k ∈ {−n_used/2, …, −1, 1, …, n_used/2}` (FFT bin `k mod n_fft`). The
//! Nyquist bin is never used because `n_used < n_fft` and both are even. The subcarrier spacing
//! is `Δf = fs / n_fft`, the useful symbol lasts `T = n_fft / fs`, a full symbol
//! `(n_fft + cp_len) / fs`.
//!
//! Every `pilot_spacing`-th used carrier (positions `0, p, 2p, …` in the used-carrier list,
//! lowest frequency first) carries a known pilot from a fixed ±1 PN9 sequence
//! ([`pilot_values`]); the others carry data. `pilot_spacing = 0` means no pilots.
//!
//! # Modulation
//!
//! With the unitary inverse DFT, one symbol's useful part is
//! `x[n] = N^{-1/2} Σ_{k used} X_k e^{j2πkn/N}`, `n = 0 … N−1`, preceded by its last `cp_len`
//! samples. By Parseval `Σ_n |x[n]|² = Σ_k |X_k|²`, so the mean sample power of the useful part
//! is the mean carrier power × `n_used / n_fft`. The demodulator drops the CP, applies the
//! unitary forward DFT and keeps the used bins; modulate → demodulate is the identity up to
//! rounding. A linear channel `h` no longer than `cp_len + 1` taps turns into a per-carrier
//! multiplication `Y_k = H_k X_k` with `H_k = Σ_n h[n] e^{−j2πkn/N}` (see
//! [`super::tdl::frequency_response`]).
//!
//! Reference: R. van Nee and R. Prasad, *OFDM for Wireless Multimedia Communications*, Artech
//! House, 2000, ch. 2; the default numerology is that of IEEE 802.11a (64-point FFT, 16-sample
//! CP, 52 used carriers of which 4 pilots, 20 MHz).

use super::{check_positive, fft_unitary, pn_pm1, WaveformError};
use crate::C64;
use serde::{Deserialize, Serialize};

/// PN9 seed of the pilot sequence.
const PILOT_SEED: u16 = 0x1FF;

/// OFDM numerology. See the module documentation for the conventions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfdmConfig {
    /// DFT size; a power of two ≥ 8.
    pub n_fft: usize,
    /// Cyclic-prefix length in samples; `< n_fft`.
    pub cp_len: usize,
    /// Number of active subcarriers, even, `4 ≤ n_used < n_fft`, symmetric around DC (DC empty).
    pub n_used: usize,
    /// Every `pilot_spacing`-th used carrier is a pilot (0 = no pilots; 1 is rejected because it
    /// would leave no data carriers).
    pub pilot_spacing: usize,
    /// Sample rate in Hz (> 0).
    pub sample_rate_hz: f64,
}

impl Default for OfdmConfig {
    /// IEEE 802.11a-like: 64-point FFT, CP 16, 52 used carriers, a pilot every 13th (4 pilots,
    /// 48 data carriers), 20 MHz.
    fn default() -> Self {
        OfdmConfig {
            n_fft: 64,
            cp_len: 16,
            n_used: 52,
            pilot_spacing: 13,
            sample_rate_hz: 20e6,
        }
    }
}

impl OfdmConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), WaveformError> {
        if self.n_fft < 8 || !self.n_fft.is_power_of_two() {
            return Err(WaveformError::invalid(
                "n_fft",
                format!("must be a power of two >= 8, got {}", self.n_fft),
            ));
        }
        if self.cp_len >= self.n_fft {
            return Err(WaveformError::invalid(
                "cp_len",
                format!("must be < n_fft = {}, got {}", self.n_fft, self.cp_len),
            ));
        }
        if !self.n_used.is_multiple_of(2) || self.n_used < 4 || self.n_used >= self.n_fft {
            return Err(WaveformError::invalid(
                "n_used",
                format!(
                    "must be even with 4 <= n_used < n_fft = {}, got {}",
                    self.n_fft, self.n_used
                ),
            ));
        }
        if self.pilot_spacing == 1 {
            return Err(WaveformError::invalid(
                "pilot_spacing",
                "1 would make every carrier a pilot; use 0 for no pilots or >= 2",
            ));
        }
        check_positive("sample_rate_hz", self.sample_rate_hz)
    }

    /// Signed subcarrier indices of the used carriers, lowest frequency first:
    /// `−n_used/2, …, −1, 1, …, n_used/2`.
    pub fn used_frequencies(&self) -> Vec<i64> {
        let h = (self.n_used / 2) as i64;
        (-h..0).chain(1..=h).collect()
    }

    /// FFT bin indices of the used carriers, in the order of [`Self::used_frequencies`] (the
    /// order of the values in every grid symbol). Meaningful for a validated config; returns an
    /// empty list if `n_fft == 0`.
    pub fn used_carriers(&self) -> Vec<usize> {
        if self.n_fft == 0 {
            return Vec::new();
        }
        let n = self.n_fft as i64;
        self.used_frequencies()
            .into_iter()
            .map(|k| k.rem_euclid(n) as usize)
            .collect()
    }

    /// Whether position `i` of the used-carrier list is a pilot.
    pub fn is_pilot(&self, i: usize) -> bool {
        self.pilot_spacing > 0 && i.is_multiple_of(self.pilot_spacing)
    }

    /// Positions of the data carriers **within the used-carrier list** (indices into a grid
    /// symbol, not FFT bins; map through [`Self::used_carriers`] for bins).
    pub fn data_carriers(&self) -> Vec<usize> {
        (0..self.n_used).filter(|&i| !self.is_pilot(i)).collect()
    }

    /// Positions of the pilot carriers within the used-carrier list (see
    /// [`Self::data_carriers`]).
    pub fn pilot_carriers(&self) -> Vec<usize> {
        (0..self.n_used).filter(|&i| self.is_pilot(i)).collect()
    }

    /// Number of data carriers per symbol.
    pub fn n_data(&self) -> usize {
        self.n_used - self.n_pilots()
    }

    /// Number of pilot carriers per symbol.
    pub fn n_pilots(&self) -> usize {
        if self.pilot_spacing == 0 {
            0
        } else {
            self.n_used.div_ceil(self.pilot_spacing)
        }
    }

    /// Samples per OFDM symbol including the CP: `n_fft + cp_len`.
    pub fn symbol_len(&self) -> usize {
        self.n_fft + self.cp_len
    }

    /// Subcarrier spacing `fs / n_fft` in Hz.
    pub fn subcarrier_spacing_hz(&self) -> f64 {
        self.sample_rate_hz / self.n_fft as f64
    }

    /// Duration of one OFDM symbol including the CP, in seconds.
    pub fn symbol_duration_s(&self) -> f64 {
        self.symbol_len() as f64 / self.sample_rate_hz
    }

    /// Number of OFDM symbols [`pack_reals`] needs for `n` reals (two per data carrier).
    pub fn symbols_for_reals(&self, n: usize) -> usize {
        let per_symbol = 2 * self.n_data();
        if per_symbol == 0 {
            0
        } else {
            n.div_ceil(per_symbol)
        }
    }
}

/// The known pilot values (±1, from a PN9 sequence), one per pilot carrier in the order of
/// [`OfdmConfig::pilot_carriers`]; the same in every OFDM symbol. Empty without pilots.
pub fn pilot_values(cfg: &OfdmConfig) -> Vec<C64> {
    pn_pm1(cfg.n_pilots(), PILOT_SEED)
        .into_iter()
        .map(|v| C64::new(v, 0.0))
        .collect()
}

/// Modulates one symbol (values on the used carriers) into `n_fft + cp_len` samples, appended
/// to `out`. `cfg` must be valid and `values.len() == n_used`.
fn modulate_into(cfg: &OfdmConfig, used: &[usize], values: &[C64], out: &mut Vec<C64>) {
    let mut buf = vec![C64::new(0.0, 0.0); cfg.n_fft];
    for (&bin, &v) in used.iter().zip(values) {
        buf[bin] = v;
    }
    fft_unitary(&mut buf, true);
    out.extend_from_slice(&buf[cfg.n_fft - cfg.cp_len..]);
    out.extend_from_slice(&buf);
}

/// OFDM modulation: each element of `symbols` holds the values on the `n_used` used carriers
/// (lowest frequency first); returns the concatenated time-domain symbols, each
/// `n_fft + cp_len` samples long (CP first). Unitary IFFT scaling, so the mean sample power of
/// a symbol's useful part is its mean carrier power × `n_used / n_fft`.
pub fn modulate(cfg: &OfdmConfig, symbols: &[Vec<C64>]) -> Result<Vec<C64>, WaveformError> {
    cfg.validate()?;
    let used = cfg.used_carriers();
    let mut out = Vec::with_capacity(symbols.len() * cfg.symbol_len());
    for s in symbols {
        if s.len() != cfg.n_used {
            return Err(WaveformError::LengthMismatch {
                field: "symbols",
                expected: cfg.n_used,
                got: s.len(),
            });
        }
        modulate_into(cfg, &used, s, &mut out);
    }
    Ok(out)
}

/// OFDM demodulation of `n_symbols` consecutive symbols whose first one starts (with its CP)
/// at `samples[start]`: drops each CP, applies the unitary FFT and returns the used carriers
/// (lowest frequency first). Same as [`demodulate_from`] with `fft_start = start + cp_len`.
pub fn demodulate(
    cfg: &OfdmConfig,
    samples: &[C64],
    start: usize,
    n_symbols: usize,
) -> Result<Vec<Vec<C64>>, WaveformError> {
    let fft_start = start
        .checked_add(cfg.cp_len)
        .ok_or_else(|| WaveformError::invalid("start", "overflows"))?;
    demodulate_from(cfg, samples, fft_start, n_symbols)
}

/// OFDM demodulation with explicit FFT-window placement: the window of symbol `s` covers
/// `samples[fft_start + s·symbol_len() ..][..n_fft]`. Placing the windows `b ≤ cp_len` samples
/// before the end of each CP (as [`super::sync::SyncResult::fft_start`] does) still gives a
/// circular convolution for channels shorter than `cp_len + 1 − b` taps; the early start only
/// multiplies carrier `k` by `e^{−j2πk·b/N}`, which a channel estimate taken with the same
/// timing absorbs.
pub fn demodulate_from(
    cfg: &OfdmConfig,
    samples: &[C64],
    fft_start: usize,
    n_symbols: usize,
) -> Result<Vec<Vec<C64>>, WaveformError> {
    cfg.validate()?;
    // The last window ends at fft_start + (n_symbols − 1)·symbol_len + n_fft.
    let needed = match n_symbols {
        0 => Some(0),
        n => (n - 1)
            .checked_mul(cfg.symbol_len())
            .and_then(|v| v.checked_add(cfg.n_fft))
            .and_then(|v| v.checked_add(fft_start)),
    };
    match needed {
        Some(end) if end <= samples.len() => {}
        _ => {
            return Err(WaveformError::LengthMismatch {
                field: "samples",
                expected: needed.unwrap_or(usize::MAX),
                got: samples.len(),
            })
        }
    }
    let used = cfg.used_carriers();
    let mut buf = vec![C64::new(0.0, 0.0); cfg.n_fft];
    let mut out = Vec::with_capacity(n_symbols);
    for s in 0..n_symbols {
        let w0 = fft_start + s * cfg.symbol_len();
        buf.copy_from_slice(&samples[w0..w0 + cfg.n_fft]);
        fft_unitary(&mut buf, false);
        out.push(used.iter().map(|&b| buf[b]).collect());
    }
    Ok(out)
}

/// Packs real payload values onto the data carriers, two per carrier (`re = x[2i]`,
/// `im = x[2i+1]`), data carriers in increasing position, symbol after symbol; pilots get
/// [`pilot_values`]; the tail of the last symbol is zero. Returns
/// [`OfdmConfig::symbols_for_reals`] symbols (none for an empty payload).
pub fn pack_reals(cfg: &OfdmConfig, x: &[f64]) -> Result<Vec<Vec<C64>>, WaveformError> {
    cfg.validate()?;
    let n_sym = cfg.symbols_for_reals(x.len());
    let data = cfg.data_carriers();
    let pilots = cfg.pilot_carriers();
    let pv = pilot_values(cfg);
    let mut it = x.iter().copied();
    let mut grid = Vec::with_capacity(n_sym);
    for _ in 0..n_sym {
        let mut s = vec![C64::new(0.0, 0.0); cfg.n_used];
        for (&p, &v) in pilots.iter().zip(&pv) {
            s[p] = v;
        }
        for &d in &data {
            let re = it.next().unwrap_or(0.0);
            let im = it.next().unwrap_or(0.0);
            s[d] = C64::new(re, im);
        }
        grid.push(s);
    }
    Ok(grid)
}

/// Inverse of [`pack_reals`]: reads the first `n` reals from the data carriers of `grid`.
/// Errors if a symbol does not have `n_used` values or the grid holds fewer than `n` reals.
pub fn unpack_reals(
    cfg: &OfdmConfig,
    grid: &[Vec<C64>],
    n: usize,
) -> Result<Vec<f64>, WaveformError> {
    cfg.validate()?;
    if let Some(bad) = grid.iter().find(|s| s.len() != cfg.n_used) {
        return Err(WaveformError::LengthMismatch {
            field: "grid",
            expected: cfg.n_used,
            got: bad.len(),
        });
    }
    let capacity = grid.len() * 2 * cfg.n_data();
    if capacity < n {
        return Err(WaveformError::LengthMismatch {
            field: "grid",
            expected: cfg.symbols_for_reals(n),
            got: grid.len(),
        });
    }
    let data = cfg.data_carriers();
    let mut out = Vec::with_capacity(n);
    'outer: for s in grid {
        for &d in &data {
            for v in [s[d].re, s[d].im] {
                if out.len() == n {
                    break 'outer;
                }
                out.push(v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
