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
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand::Rng;
    use rand_distr::StandardNormal;

    fn qpsk_grid<R: Rng + ?Sized>(cfg: &OfdmConfig, n_sym: usize, rng: &mut R) -> Vec<Vec<C64>> {
        let a = std::f64::consts::FRAC_1_SQRT_2;
        (0..n_sym)
            .map(|_| {
                (0..cfg.n_used)
                    .map(|_| {
                        let re = if rng.random::<bool>() { a } else { -a };
                        let im = if rng.random::<bool>() { a } else { -a };
                        C64::new(re, im)
                    })
                    .collect()
            })
            .collect()
    }

    fn configs() -> Vec<OfdmConfig> {
        vec![
            OfdmConfig::default(),
            OfdmConfig {
                n_fft: 256,
                cp_len: 18,
                n_used: 200,
                pilot_spacing: 0,
                sample_rate_hz: 3.84e6,
            },
            OfdmConfig {
                n_fft: 8,
                cp_len: 0,
                n_used: 6,
                pilot_spacing: 2,
                sample_rate_hz: 1.0,
            },
        ]
    }

    #[test]
    fn validate_names_fields() {
        let ok = OfdmConfig::default();
        assert!(ok.validate().is_ok());
        let field_of = |c: OfdmConfig| match c.validate() {
            Err(WaveformError::InvalidParameter { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(
            field_of(OfdmConfig {
                n_fft: 48,
                ..ok.clone()
            }),
            "n_fft"
        );
        assert_eq!(
            field_of(OfdmConfig {
                n_fft: 4,
                ..ok.clone()
            }),
            "n_fft"
        );
        assert_eq!(
            field_of(OfdmConfig {
                cp_len: 64,
                ..ok.clone()
            }),
            "cp_len"
        );
        assert_eq!(
            field_of(OfdmConfig {
                n_used: 51,
                ..ok.clone()
            }),
            "n_used"
        );
        assert_eq!(
            field_of(OfdmConfig {
                n_used: 64,
                ..ok.clone()
            }),
            "n_used"
        );
        assert_eq!(
            field_of(OfdmConfig {
                n_used: 2,
                ..ok.clone()
            }),
            "n_used"
        );
        assert_eq!(
            field_of(OfdmConfig {
                pilot_spacing: 1,
                ..ok.clone()
            }),
            "pilot_spacing"
        );
        for fs in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                field_of(OfdmConfig {
                    sample_rate_hz: fs,
                    ..ok.clone()
                }),
                "sample_rate_hz"
            );
        }
        // Functions taking a config refuse an invalid one instead of panicking.
        let bad = OfdmConfig { n_fft: 0, ..ok };
        assert!(modulate(&bad, &[]).is_err());
        assert!(demodulate(&bad, &[], 0, 0).is_err());
        assert!(pack_reals(&bad, &[1.0]).is_err());
        assert!(unpack_reals(&bad, &[], 0).is_err());
        assert!(bad.used_carriers().is_empty());
    }

    #[test]
    fn serde_round_trip_and_unknown_fields_rejected() {
        let c = OfdmConfig::default();
        let s = serde_json::to_string(&c).unwrap();
        let back: OfdmConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
        let bad = s.replace("\"n_fft\"", "\"nfft_typo\":1,\"n_fft\"");
        assert!(serde_json::from_str::<OfdmConfig>(&bad).is_err());
    }

    #[test]
    fn carrier_layout() {
        let c = OfdmConfig::default();
        let used = c.used_carriers();
        assert_eq!(used.len(), 52);
        assert_eq!(used[0], 64 - 26);
        assert_eq!(used[25], 63);
        assert_eq!(used[26], 1);
        assert_eq!(used[51], 26);
        assert!(!used.contains(&0) && !used.contains(&32));
        assert_eq!(c.pilot_carriers(), vec![0, 13, 26, 39]);
        assert_eq!(c.n_pilots(), 4);
        assert_eq!(c.n_data(), 48);
        assert_eq!(c.data_carriers().len(), 48);
        assert_eq!(pilot_values(&c).len(), 4);
        assert!(pilot_values(&c)
            .iter()
            .all(|v| v.im == 0.0 && v.re.abs() == 1.0));
        assert_eq!(c.symbol_len(), 80);
        // closed forms, one f64 division each (rounding ≤ ½ ulp: 3e-11 and 4e-22)
        assert!((c.subcarrier_spacing_hz() - 312_500.0).abs() < 1e-9);
        assert!((c.symbol_duration_s() - 4e-6).abs() < 1e-18);
    }

    #[test]
    fn modem_round_trip_is_exact() {
        let mut rng = stream(1, &[1]);
        for cfg in configs() {
            let grid: Vec<Vec<C64>> = (0..7)
                .map(|_| {
                    (0..cfg.n_used)
                        .map(|_| {
                            C64::new(
                                rng.sample::<f64, _>(StandardNormal),
                                rng.sample::<f64, _>(StandardNormal),
                            )
                        })
                        .collect()
                })
                .collect();
            let x = modulate(&cfg, &grid).unwrap();
            assert_eq!(x.len(), 7 * cfg.symbol_len());
            // CP is a copy of the symbol's tail.
            for s in 0..7 {
                let o = s * cfg.symbol_len();
                for i in 0..cfg.cp_len {
                    assert_eq!(x[o + i], x[o + cfg.n_fft + i]);
                }
            }
            let y = demodulate(&cfg, &x, 0, 7).unwrap();
            // f64 FFT round trip: ~ε·log₂N·|x| ≈ 1e-14 for N ≤ 256 and |x| ≲ 5 (also the
            // empty bins below)
            for (a, b) in y.iter().flatten().zip(grid.iter().flatten()) {
                assert!((a - b).norm() < 1e-12, "{a} vs {b}");
            }
            // Unused bins are empty: the symbol is band-limited to the used carriers.
            let mut buf = x[cfg.cp_len..cfg.cp_len + cfg.n_fft].to_vec();
            fft_unitary(&mut buf, false);
            let used = cfg.used_carriers();
            for (b, v) in buf.iter().enumerate() {
                if !used.contains(&b) {
                    assert!(v.norm() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn parseval_energy_and_mean_power() {
        let mut rng = stream(1, &[2]);
        for cfg in configs() {
            let grid = qpsk_grid(&cfg, 50, &mut rng);
            let x = modulate(&cfg, &grid).unwrap();
            let carrier_energy: f64 = grid.iter().flatten().map(|v| v.norm_sqr()).sum();
            let useful_energy: f64 = (0..50)
                .flat_map(|s| {
                    let o = s * cfg.symbol_len() + cfg.cp_len;
                    x[o..o + cfg.n_fft].iter()
                })
                .map(|v| v.norm_sqr())
                .sum();
            // f64: each energy is a sum of ≤ n = 50·N_fft positive terms (error ≤ γ_n·Σ, γ_n ≈
            // n·2⁻⁵³) of values through a unitary FFT (~ε·log₂N each): relative error ≤
            // (n + 8·log₂N)·ε ≈ 2.9e-12 at N = 256 (the bare 1e-12 on the mean power was below
            // that worst case; 1e-10 is loose)
            let n = (50 * cfg.n_fft) as f64;
            let rel = (n + 8.0 * (cfg.n_fft as f64).log2()) * f64::EPSILON;
            assert!((useful_energy - carrier_energy).abs() < 1e-10 * carrier_energy);
            // Unit-power carriers: mean useful sample power n_used / n_fft.
            let p = useful_energy / (50 * cfg.n_fft) as f64;
            let want = cfg.n_used as f64 / cfg.n_fft as f64;
            assert!((p - want).abs() <= rel * want);
        }
    }

    #[test]
    fn pack_unpack_round_trip() {
        let mut rng = stream(1, &[3]);
        for cfg in configs() {
            let cap = 2 * cfg.n_data();
            for n in [0, 1, cap - 1, cap, cap + 1, 5 * cap + 3] {
                let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
                let grid = pack_reals(&cfg, &x).unwrap();
                assert_eq!(grid.len(), cfg.symbols_for_reals(n));
                // Pilots in place, padding zero.
                let pv = pilot_values(&cfg);
                for s in &grid {
                    for (&p, &v) in cfg.pilot_carriers().iter().zip(&pv) {
                        assert_eq!(s[p], v);
                    }
                }
                if let Some(last) = grid.last() {
                    let data = cfg.data_carriers();
                    let used_reals = n - (grid.len() - 1) * cap;
                    let flat: Vec<f64> = data
                        .iter()
                        .flat_map(|&d| [last[d].re, last[d].im])
                        .collect();
                    assert!(flat[used_reals..].iter().all(|&v| v == 0.0));
                }
                assert_eq!(unpack_reals(&cfg, &grid, n).unwrap(), x);
                // Through the modem as well.
                let y = demodulate(&cfg, &modulate(&cfg, &grid).unwrap(), 0, grid.len()).unwrap();
                let back = unpack_reals(&cfg, &y, n).unwrap();
                // f64 FFT round trip of values ≤ ½: ~1e-15
                for (a, b) in back.iter().zip(&x) {
                    assert!((a - b).abs() < 1e-12);
                }
            }
            // Too few symbols / wrong lengths are errors, not panics.
            assert!(unpack_reals(&cfg, &[], 1).is_err());
            assert!(unpack_reals(&cfg, &[vec![C64::new(0.0, 0.0); 3]], 1).is_err());
        }
    }

    #[test]
    fn bad_lengths_are_errors() {
        let cfg = OfdmConfig::default();
        assert!(matches!(
            modulate(&cfg, &[vec![C64::new(0.0, 0.0); 51]]),
            Err(WaveformError::LengthMismatch {
                field: "symbols",
                ..
            })
        ));
        let x = vec![C64::new(0.0, 0.0); 159];
        assert!(matches!(
            demodulate(&cfg, &x, 0, 2),
            Err(WaveformError::LengthMismatch {
                field: "samples",
                ..
            })
        ));
        assert!(demodulate(&cfg, &x, usize::MAX, 2).is_err());
        assert!(demodulate(&cfg, &x, 0, usize::MAX).is_err());
        assert!(demodulate_from(&cfg, &x, 96, 1).is_err());
        assert_eq!(demodulate_from(&cfg, &x, 95, 1).unwrap().len(), 1);
        assert_eq!(demodulate(&cfg, &x, 79, 1).unwrap().len(), 1);
        assert!(demodulate(&cfg, &x, 80, 1).is_err());
        assert!(demodulate(&cfg, &x, 80, 0).unwrap().is_empty());
    }

    #[test]
    fn backoff_is_a_phase_ramp() {
        let cfg = OfdmConfig::default();
        let mut rng = stream(1, &[4]);
        let grid = qpsk_grid(&cfg, 3, &mut rng);
        let x = modulate(&cfg, &grid).unwrap();
        let b = 5;
        let y = demodulate_from(&cfg, &x, cfg.cp_len - b, 3).unwrap();
        for (ys, xs) in y.iter().zip(&grid) {
            for ((k, yv), xv) in cfg.used_frequencies().iter().zip(ys).zip(xs) {
                let ramp = C64::from_polar(
                    1.0,
                    -2.0 * std::f64::consts::PI * (*k as f64) * b as f64 / cfg.n_fft as f64,
                );
                // f64 FFT and a phase of ≤ 2π·26·5/64 rad: rounding ~1e-15
                assert!((yv - xv * ramp).norm() < 1e-12);
            }
        }
    }

    /// AWGN of variance σ² per time sample shows up with variance σ² on every carrier
    /// (unitary FFT), independent of the SNR; checked in aggregate to 2 % and per carrier to
    /// 8 % over 4000 symbols.
    #[test]
    fn awgn_per_carrier_error_variance_matches_noise_variance() {
        let cfg = OfdmConfig::default();
        let n_sym = 4000;
        let mut rng = stream(1, &[5]);
        let grid = qpsk_grid(&cfg, n_sym, &mut rng);
        let x = modulate(&cfg, &grid).unwrap();
        for snr_db in [0.0, 10.0, 20.0, 30.0] {
            let sigma2 = 10f64.powf(-snr_db / 10.0); // unit-power carriers
            let rx = crate::waveform::impair::awgn(&x, sigma2, &mut rng).unwrap();
            let y = demodulate(&cfg, &rx, 0, n_sym).unwrap();
            let mut per_carrier = vec![0.0; cfg.n_used];
            for (ys, xs) in y.iter().zip(&grid) {
                for (i, (a, b)) in ys.iter().zip(xs).enumerate() {
                    per_carrier[i] += (a - b).norm_sqr() / n_sym as f64;
                }
            }
            let total = per_carrier.iter().sum::<f64>() / cfg.n_used as f64;
            // Monte-Carlo: |noise|² is exponential, rel. SE 1/√(4000·52) = 0.22 % in aggregate
            // (2 % ≈ 9 SE) and 1/√4000 = 1.6 % per carrier (8 % ≈ 5 SE, 208 comparisons)
            assert!(
                (total / sigma2 - 1.0).abs() < 0.02,
                "snr {snr_db}: {total} vs {sigma2}"
            );
            for v in &per_carrier {
                assert!(
                    (v / sigma2 - 1.0).abs() < 0.08,
                    "snr {snr_db}: {v} vs {sigma2}"
                );
            }
        }
    }
}
