//! Axes of the line charts: linear or logarithmic coordinates with our own tick placement
//! (nice 1-2-2.5-5 steps; decades on log axes), tick labels, and the padding of data ranges.

use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{
    KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use std::ops::Range;

/// Tick positions with their labels.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ticks {
    pub(super) values: Vec<f64>,
    pub(super) labels: Vec<String>,
    /// A common factor of the labels ("×10⁸"), for the axis description.
    pub(super) factor: Option<String>,
}

/// One axis: linear or logarithmic (plotters' `log_scale`), with our own tick placement and
/// tick labels (nice 1-2-2.5-5 steps; decades on log axes).
pub(super) struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    lin: RangedCoordf64,
    logc: Option<LogCoord<f64>>,
    pub(super) ticks: Ticks,
}

impl Axis {
    pub(super) fn new(lo: f64, hi: f64, log: bool, max_ticks: usize) -> Self {
        let ticks = if log {
            log_ticks(lo, hi, max_ticks)
        } else {
            lin_ticks(lo, hi, max_ticks)
        };
        Axis {
            log,
            lo,
            hi,
            lin: (lo..hi).into(),
            logc: log.then(|| (lo..hi).log_scale().into()),
            ticks,
        }
    }

    /// Minor tick positions (light grid lines): 2..9 × 10ᵏ on a log axis whose labelled ticks
    /// are consecutive decades; none on a linear axis.
    fn minor(&self) -> Vec<f64> {
        if !self.log || self.ticks.values.len() < 2 {
            return vec![];
        }
        let decades: Vec<i32> = self
            .ticks
            .values
            .iter()
            .map(|v| v.log10().round() as i32)
            .collect();
        let consecutive_decades = self
            .ticks
            .values
            .iter()
            .zip(&decades)
            .all(|(v, &d)| (v / 10f64.powi(d) - 1.0).abs() < 1e-9)
            && decades.windows(2).all(|w| w[1] == w[0] + 1);
        if !consecutive_decades || decades.len() > 12 {
            return vec![];
        }
        let mut out = vec![];
        for d in decades[0] - 1..=decades[decades.len() - 1] {
            for m in 2..=9 {
                let v = f64::from(m) * 10f64.powi(d);
                if v >= self.lo && v <= self.hi {
                    out.push(v);
                }
            }
        }
        out
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        match &self.logc {
            Some(l) => l.map(value, limit),
            None => self.lin.map(value, limit),
        }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match hint.weight() {
            KeyPointWeight::Bold => self.ticks.values.clone(),
            KeyPointWeight::Any => self.minor(),
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, value: &f64) -> String {
        let scale = (self.hi - self.lo).abs().max(f64::MIN_POSITIVE);
        self.ticks
            .values
            .iter()
            .zip(&self.ticks.labels)
            .find(|(v, _)| {
                if self.log {
                    (*v / value - 1.0).abs() < 1e-9
                } else {
                    (*v - value).abs() <= 1e-9 * scale
                }
            })
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| plain(*value))
    }
}

/// At most `max` ticks at multiples of a nice step (1, 2, 5 × 10ᵏ) inside `lo..=hi`. Very
/// large or very small values are labelled as mantissas with a common `×10ᴱ` factor (returned
/// in `factor`, to go into the axis description) — the way matplotlib does it.
pub(super) fn lin_ticks(lo: f64, hi: f64, max: usize) -> Ticks {
    let max = max.max(2);
    let span = hi - lo;
    if span > 0.0 && span.is_finite() {
        let e0 = (span / max as f64).log10().floor() as i32;
        for e in e0 - 1..=e0 + 2 {
            for m in [1.0, 2.0, 5.0] {
                let step = m * 10f64.powi(e);
                let first = (lo / step - 1e-9).ceil();
                let last = (hi / step + 1e-9).floor();
                if !(first.is_finite() && last.is_finite()) || last - first + 1.0 > max as f64 {
                    continue;
                }
                // n·m / 10⁻ᵉ rather than n·step: 0.7, not 0.7000000000000001
                let values: Vec<f64> = (0..=(last - first).max(0.0) as i64)
                    .map(|i| {
                        let nm = (first + i as f64) * m;
                        if e < 0 {
                            nm / 10f64.powi(-e)
                        } else {
                            nm * 10f64.powi(e)
                        }
                    })
                    .map(|v| if v.abs() < step * 1e-6 { 0.0 } else { v })
                    .collect();
                return labelled(values, e);
            }
        }
    }
    Ticks {
        values: vec![lo],
        labels: vec![plain(lo)],
        factor: None,
    }
}

/// Labels for linear ticks whose step is about 10^`step_exp`.
fn labelled(values: Vec<f64>, step_exp: i32) -> Ticks {
    let big = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scaled = big >= 1e5 || (big > 0.0 && big < 1e-3);
    let (exp, factor) = if scaled {
        let e = big.log10().floor() as i32;
        (e, Some(format!("×10{}", superscript(e))))
    } else {
        (0, None)
    };
    let decimals = (exp - step_exp).clamp(0, 12) as usize;
    let labels = values
        .iter()
        .map(|&v| minus(&format!("{:.decimals$}", v / 10f64.powi(exp))))
        .collect();
    Ticks {
        values,
        labels,
        factor,
    }
}

/// Decades (every k-th if there are many), else 1-2-5 or 1…9 × 10ᵏ, else linear ticks.
pub(super) fn log_ticks(lo: f64, hi: f64, max: usize) -> Ticks {
    let max = max.max(2);
    let (d0, d1) = (lo.log10().ceil() as i32, hi.log10().floor() as i32);
    let n_dec = (d1 - d0 + 1).max(0) as usize;
    let mut values: Vec<f64> = vec![];
    if n_dec >= 2 {
        let stride = n_dec.div_ceil(max) as i32;
        values = (d0..=d1)
            .filter(|d| d.rem_euclid(stride) == 0)
            .map(|d| 10f64.powi(d))
            .collect();
    } else {
        for mantissas in [
            &[1.0, 2.0, 5.0][..],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        ] {
            let cand: Vec<f64> = (d0 - 1..=d1 + 1)
                .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
                .filter(|v| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12))
                .collect();
            if cand.len() >= 3 && cand.len() <= max {
                values = cand;
                break;
            }
        }
        if values.is_empty() {
            return lin_ticks(lo, hi, max.min(6));
        }
    }
    let plain_ok = values
        .iter()
        .all(|&v| (1e-3 * 0.999..1e4 * 1.001).contains(&v));
    let labels = values
        .iter()
        .map(|&v| if plain_ok { plain(v) } else { pow10(v) })
        .collect();
    Ticks {
        values,
        labels,
        factor: None,
    }
}

/// A short decimal: 0.001, 0.25, 40, 1000 (up to 6 significant digits, no trailing zeros).
fn plain(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return pow10(v);
    }
    let decimals = (5 - mag).clamp(0, 10) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    minus(&s)
}

/// A typographic minus sign (U+2212) instead of the hyphen; no "−0".
fn minus(s: &str) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        Some(rest) => format!("\u{2212}{rest}"),
        None => s.to_string(),
    }
}

/// An exponent in superscript digits: −4 → ⁻⁴.
fn superscript(e: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    e.to_string()
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => DIGITS[d as usize],
            None => '⁻',
        })
        .collect()
}

/// 10⁻⁴ for a power of ten, 2×10⁻⁴ otherwise.
fn pow10(v: f64) -> String {
    let e = v.abs().log10().floor() as i32;
    let m = (v / 10f64.powi(e) * 1e4).round() / 1e4;
    if (m - 1.0).abs() < 1e-9 {
        format!("10{}", superscript(e))
    } else {
        let ms = format!("{m:.4}");
        let ms = ms.trim_end_matches('0').trim_end_matches('.');
        format!("{}×10{}", minus(ms), superscript(e))
    }
}

/// `lo..hi` widened by 5 % each side (in log space on a log axis); a degenerate range becomes
/// ±10 % of the value (±1 around 0; ±½ decade on a log axis).
pub(super) fn padded(lo: f64, hi: f64, log: bool) -> Option<(f64, f64)> {
    let (a, b) = if log {
        (lo.log10(), hi.log10())
    } else {
        (lo, hi)
    };
    let span = b - a;
    let (a, b) = if span <= 1e-12 * a.abs().max(b.abs()) {
        let mid = 0.5 * a + 0.5 * b;
        let half = if log {
            0.5
        } else if mid == 0.0 {
            1.0
        } else {
            0.1 * mid.abs()
        };
        (mid - half, mid + half)
    } else {
        (a - 0.05 * span, b + 0.05 * span)
    };
    let (a, b) = if log {
        (10f64.powf(a), 10f64.powf(b))
    } else {
        (a, b)
    };
    (a.is_finite() && b.is_finite() && b > a && (!log || a > 0.0)).then_some((a, b))
}
