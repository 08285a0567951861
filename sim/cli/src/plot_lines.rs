//! Line charts of experiment results — the `errorbar` plots of papers (MSE against SNR,
//! perplexity against the number of devices): one line per series with distinct colours
//! (matplotlib's tab10) and marker shapes, optional error bars, linear or log axes, and a
//! legend placed where it hides no data. PNG (`.png`) or SVG (`.svg`), 960×640.

use crate::plot::{failed, fonts, format_of, Format, PlotError};
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{
    KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;

/// Image size of a line chart.
pub const LINE_CHART_SIZE: (u32, u32) = (960, 640);

/// One point; `y_lo`/`y_hi`: an error bar (e.g. a 95 % confidence interval), drawn when both
/// are `Some` and finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Abscissa.
    pub x: f64,
    /// Ordinate.
    pub y: f64,
    /// Lower end of the error bar.
    pub y_lo: Option<f64>,
    /// Upper end of the error bar.
    pub y_hi: Option<f64>,
}

impl Point {
    /// A point without an error bar.
    pub fn new(x: f64, y: f64) -> Self {
        Point {
            x,
            y,
            y_lo: None,
            y_hi: None,
        }
    }

    /// A point with the error bar `y_lo..=y_hi`.
    pub fn with_bar(x: f64, y: f64, y_lo: f64, y_hi: f64) -> Self {
        Point {
            x,
            y,
            y_lo: Some(y_lo),
            y_hi: Some(y_hi),
        }
    }
}

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineStyle {
    /// Measured values: solid line, filled markers.
    #[default]
    Solid,
    /// Reference values (e.g. a paper's): dashed line, hollow markers.
    Dashed,
}

/// One line of the chart. A series with an empty label is left out of the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points in any order (sorted by x before drawing); non-finite values leave a gap.
    pub points: Vec<Point>,
    /// Line style.
    pub style: LineStyle,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// Caption above the plot.
    pub title: String,
    /// Horizontal axis description.
    pub x_label: String,
    /// Vertical axis description.
    pub y_label: String,
    /// Logarithmic x axis (non-positive x are skipped).
    pub log_x: bool,
    /// Logarithmic y axis (non-positive y are skipped).
    pub log_y: bool,
    /// The lines, drawn in order; series `i` gets colour `i mod 10` and marker `i mod 8`.
    pub series: Vec<Series>,
    /// Names of a categorical x axis: point x = i stands for `x_categories[i]` (empty: numeric).
    pub x_categories: Vec<String>,
}

/// matplotlib's "tab10" palette.
const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour of series `i` (tab10, cycling).
pub fn series_colour(i: usize) -> RGBColor {
    TAB10[i % TAB10.len()]
}

/// Marker shapes, cycled over the series so that lines are told apart in greyscale too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// ●
    Circle,
    /// ▲
    TriangleUp,
    /// ■
    Square,
    /// ◆
    Diamond,
    /// ▼
    TriangleDown,
    /// ×
    Cross,
    /// ⬟
    Pentagon,
    /// +
    Plus,
}

const MARKERS: [Marker; 8] = [
    Marker::Circle,
    Marker::TriangleUp,
    Marker::Square,
    Marker::Diamond,
    Marker::TriangleDown,
    Marker::Cross,
    Marker::Pentagon,
    Marker::Plus,
];

/// Marker of series `i` (cycling).
pub fn series_marker(i: usize) -> Marker {
    MARKERS[i % MARKERS.len()]
}

// ---------------------------------------------------------------------------------------------
// Axes

/// Tick positions with their labels.
#[derive(Debug, Clone, PartialEq)]
struct Ticks {
    values: Vec<f64>,
    labels: Vec<String>,
    /// A common factor of the labels ("×10⁸"), for the axis description.
    factor: Option<String>,
}

/// One axis: linear or logarithmic (plotters' `log_scale`), with our own tick placement and
/// tick labels (nice 1-2-2.5-5 steps; decades on log axes).
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    lin: RangedCoordf64,
    logc: Option<LogCoord<f64>>,
    ticks: Ticks,
}

impl Axis {
    fn new(lo: f64, hi: f64, log: bool, max_ticks: usize) -> Self {
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
fn lin_ticks(lo: f64, hi: f64, max: usize) -> Ticks {
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
fn log_ticks(lo: f64, hi: f64, max: usize) -> Ticks {
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
fn padded(lo: f64, hi: f64, log: bool) -> Option<(f64, f64)> {
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

// ---------------------------------------------------------------------------------------------
// Data preparation

/// An error bar after clipping: x, low end, high end, whether each end gets a cap.
#[derive(Debug, Clone, Copy)]
struct Bar {
    x: f64,
    lo: f64,
    hi: f64,
    cap_lo: bool,
}

/// A series cleaned for drawing.
struct Prepared {
    index: usize,
    label: String,
    style: LineStyle,
    /// Connected pieces, sorted by x; an invalid y ends a piece.
    runs: Vec<Vec<(f64, f64)>>,
    /// Raw error-bar ends (validated but not yet clipped to the axis).
    bars: Vec<(f64, f64, f64)>,
}

impl Prepared {
    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.runs.iter().flatten()
    }
}

fn prepare(chart: &LineChart) -> Vec<Prepared> {
    let ok_x = |x: f64| x.is_finite() && (!chart.log_x || x > 0.0);
    let ok_y = |y: f64| y.is_finite() && (!chart.log_y || y > 0.0);
    chart
        .series
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let mut pts: Vec<&Point> = s.points.iter().filter(|p| ok_x(p.x)).collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            let mut runs: Vec<Vec<(f64, f64)>> = vec![];
            let mut current = vec![];
            let mut bars = vec![];
            for p in pts {
                if !ok_y(p.y) {
                    if !current.is_empty() {
                        runs.push(std::mem::take(&mut current));
                    }
                    continue;
                }
                current.push((p.x, p.y));
                if let (Some(a), Some(b)) = (p.y_lo, p.y_hi) {
                    if a.is_finite() && b.is_finite() {
                        let (lo, hi) = (a.min(b), a.max(b));
                        if !chart.log_y || hi > 0.0 {
                            bars.push((p.x, lo, hi));
                        }
                    }
                }
            }
            if !current.is_empty() {
                runs.push(current);
            }
            Prepared {
                index,
                label: s.label.clone(),
                style: s.style,
                runs,
                bars,
            }
        })
        .collect()
}

/// A closed range `(low, high)`.
type Interval = (f64, f64);

/// Axis ranges from the points and error bars, with margins.
fn data_ranges(chart: &LineChart, series: &[Prepared]) -> Result<(Interval, Interval), String> {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for s in series {
        for &(x, y) in s.points() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        for &(_, lo, hi) in &s.bars {
            if !chart.log_y || lo > 0.0 {
                y0 = y0.min(lo);
            }
            y1 = y1.max(hi);
        }
    }
    if !(x0.is_finite() && y0.is_finite()) {
        let what = match (chart.log_x, chart.log_y) {
            (false, false) => "",
            _ => " (log axes skip non-positive values)",
        };
        return Err(format!("nothing to draw: no finite point{what}"));
    }
    let x = padded(x0, x1, chart.log_x).ok_or("x values span too wide a range")?;
    let y = padded(y0, y1, chart.log_y).ok_or("y values span too wide a range")?;
    Ok((x, y))
}

// ---------------------------------------------------------------------------------------------
// Drawing

const MARGIN: u32 = 14;
const TICK_FONT: u32 = 15;
const DESC_FONT: u32 = 18;
const TITLE_FONT: u32 = 22;
const LEGEND_FONT: u32 = 15;
const MAX_TICKS: usize = 9;
const LINE_WIDTH: u32 = 2;
const MARKER_R: i32 = 5;
const CAP_HALF: i32 = 5;
const DASH: (i32, i32) = (9, 6);
const SAMPLE_LEN: i32 = 40;
const LEGEND_PAD: i32 = 9;
const LEGEND_INSET: i32 = 10;

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws marker `m` centred at pixel `c` on `area`; hollow markers have a white face.
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: (i32, i32),
    m: Marker,
    colour: RGBColor,
    hollow: bool,
) -> Result<(), String> {
    let r = MARKER_R;
    let stroke = colour.stroke_width(2);
    let poly = |pts: &[(f64, f64)]| -> Vec<(i32, i32)> {
        pts.iter()
            .map(|(x, y)| (c.0 + x.round() as i32, c.1 + y.round() as i32))
            .collect()
    };
    let rf = f64::from(r);
    let shape: Option<Vec<(i32, i32)>> = match m {
        Marker::Circle => None,
        Marker::Square => Some(poly(&[
            (-0.85 * rf, -0.85 * rf),
            (0.85 * rf, -0.85 * rf),
            (0.85 * rf, 0.85 * rf),
            (-0.85 * rf, 0.85 * rf),
        ])),
        Marker::TriangleUp => Some(poly(&[
            (0.0, -1.25 * rf),
            (1.15 * rf, 0.8 * rf),
            (-1.15 * rf, 0.8 * rf),
        ])),
        Marker::TriangleDown => Some(poly(&[
            (0.0, 1.25 * rf),
            (1.15 * rf, -0.8 * rf),
            (-1.15 * rf, -0.8 * rf),
        ])),
        Marker::Diamond => Some(poly(&[
            (0.0, -1.25 * rf),
            (0.95 * rf, 0.0),
            (0.0, 1.25 * rf),
            (-0.95 * rf, 0.0),
        ])),
        Marker::Pentagon => {
            let pts: Vec<(f64, f64)> = (0..5)
                .map(|k| {
                    let a = -std::f64::consts::FRAC_PI_2
                        + f64::from(k) * 2.0 * std::f64::consts::PI / 5.0;
                    (1.1 * rf * a.cos(), 1.1 * rf * a.sin())
                })
                .collect();
            Some(poly(&pts))
        }
        Marker::Cross | Marker::Plus => {
            let (a, b) = if m == Marker::Cross {
                (poly(&[(-rf, -rf), (rf, rf)]), poly(&[(-rf, rf), (rf, -rf)]))
            } else {
                let q = 1.25 * rf;
                (poly(&[(-q, 0.0), (q, 0.0)]), poly(&[(0.0, -q), (0.0, q)]))
            };
            let s = colour.stroke_width(3);
            area.draw(&PathElement::new(a, s)).map_err(err)?;
            return area.draw(&PathElement::new(b, s)).map_err(err);
        }
    };
    match (shape, hollow) {
        (None, false) => area.draw(&Circle::new(c, r, colour.filled())).map_err(err),
        (None, true) => {
            area.draw(&Circle::new(c, r, WHITE.filled())).map_err(err)?;
            area.draw(&Circle::new(c, r, stroke)).map_err(err)
        }
        (Some(p), false) => area.draw(&Polygon::new(p, colour.filled())).map_err(err),
        (Some(p), true) => {
            area.draw(&Polygon::new(p.clone(), WHITE.filled()))
                .map_err(err)?;
            let mut closed = p.clone();
            closed.push(p[0]);
            area.draw(&PathElement::new(closed, stroke)).map_err(err)
        }
    }
}

/// Legend geometry: entries (series index, shown text), box size, row height, font size.
struct Legend {
    entries: Vec<(usize, String)>,
    w: i32,
    h: i32,
    row: i32,
    gap: i32,
    font: u32,
}

/// The legend of the labelled series; its font shrinks (down to 9 px) until the box fits
/// `max_w`×`max_h`, and labels still too wide are shortened with "…".
fn legend_layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[Prepared],
    (max_w, max_h): (i32, i32),
) -> Result<Option<Legend>, String> {
    let labelled: Vec<&Prepared> = series
        .iter()
        .filter(|s| !s.label.trim().is_empty() && !s.runs.is_empty())
        .collect();
    if labelled.is_empty() {
        return Ok(None);
    }
    let fixed_w = 2 * LEGEND_PAD + SAMPLE_LEN + 8;
    let mut size = LEGEND_FONT;
    loop {
        let style = font(size);
        let gap = (size as i32 / 2).clamp(3, 7);
        let mut text_w = 0;
        let mut text_h = 0;
        let mut entries = vec![];
        for s in &labelled {
            let mut text: String = s.label.chars().take(120).collect();
            let mut tw = root.estimate_text_size(&text, &style).map_err(err)?.0 as i32;
            if size == 9 {
                while tw > max_w - fixed_w && text.chars().count() > 1 {
                    let n = text.chars().count();
                    text = text.chars().take(n.saturating_sub(2)).collect::<String>() + "…";
                    tw = root.estimate_text_size(&text, &style).map_err(err)?.0 as i32;
                }
            }
            let th = root.estimate_text_size("Ag", &style).map_err(err)?.1 as i32;
            text_w = text_w.max(tw);
            text_h = text_h.max(th);
            entries.push((s.index, text));
        }
        let row = text_h.max(2 * MARKER_R + 2) + gap;
        let (w, h) = (
            fixed_w + text_w,
            2 * LEGEND_PAD + row * entries.len() as i32 - gap,
        );
        if (w <= max_w && h <= max_h) || size <= 9 {
            return Ok(Some(Legend {
                entries,
                w,
                h,
                row,
                gap,
                font: size,
            }));
        }
        size -= 1;
    }
}

fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[Prepared],
    legend: &Legend,
    (x, y): (i32, i32),
) -> Result<(), String> {
    root.draw(&Rectangle::new(
        [(x, y), (x + legend.w, y + legend.h)],
        WHITE.mix(0.92).filled(),
    ))
    .map_err(err)?;
    root.draw(&Rectangle::new(
        [(x, y), (x + legend.w, y + legend.h)],
        RGBColor(190, 190, 190).stroke_width(1),
    ))
    .map_err(err)?;
    let style = font(legend.font).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, (i, text)) in legend.entries.iter().enumerate() {
        let (s, i) = (&series[*i], *i);
        let colour = series_colour(i);
        let cy = y + LEGEND_PAD + k as i32 * legend.row + (legend.row - legend.gap) / 2;
        let (sx0, sx1) = (x + LEGEND_PAD, x + LEGEND_PAD + SAMPLE_LEN);
        let line = colour.stroke_width(LINE_WIDTH);
        match s.style {
            LineStyle::Solid => root
                .draw(&PathElement::new(vec![(sx0, cy), (sx1, cy)], line))
                .map_err(err)?,
            LineStyle::Dashed => root
                .draw(&DashedPathElement::new(
                    vec![(sx0, cy), (sx1, cy)],
                    DASH.0,
                    DASH.1,
                    line,
                ))
                .map_err(err)?,
        }
        draw_marker(
            root,
            ((sx0 + sx1) / 2, cy),
            series_marker(i),
            colour,
            s.style == LineStyle::Dashed,
        )?;
        root.draw_text(text, &style, (sx1 + 8, cy)).map_err(err)?;
    }
    Ok(())
}

/// Everything of the data in pixels: polyline samples, markers, bars.
fn pixel_samples(
    to_px: &dyn Fn(f64, f64) -> (i32, i32),
    series: &[Prepared],
    bars: &[Vec<Bar>],
) -> Vec<(i32, i32)> {
    let mut out = vec![];
    let segment = |a: (i32, i32), b: (i32, i32), out: &mut Vec<(i32, i32)>| {
        let len = f64::from(a.0 - b.0).hypot(f64::from(a.1 - b.1));
        let n = ((len / 3.0).ceil() as i32).clamp(1, 2000);
        for k in 0..=n {
            let t = f64::from(k) / f64::from(n);
            out.push((
                a.0 + (t * f64::from(b.0 - a.0)).round() as i32,
                a.1 + (t * f64::from(b.1 - a.1)).round() as i32,
            ));
        }
    };
    for (s, bars) in series.iter().zip(bars) {
        for run in &s.runs {
            let px: Vec<(i32, i32)> = run.iter().map(|&(x, y)| to_px(x, y)).collect();
            for p in &px {
                // a marker: its corners
                for dx in [-MARKER_R, 0, MARKER_R] {
                    for dy in [-MARKER_R, 0, MARKER_R] {
                        out.push((p.0 + dx, p.1 + dy));
                    }
                }
            }
            for w in px.windows(2) {
                segment(w[0], w[1], &mut out);
            }
        }
        for b in bars {
            segment(to_px(b.x, b.lo), to_px(b.x, b.hi), &mut out);
        }
    }
    out
}

/// Chart geometry, decided before drawing.
struct Layout {
    title_h: i32,
    y_area: u32,
    x_area: u32,
    right: u32,
}

fn build<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    layout: &Layout,
    x: &(f64, f64),
    y: &(f64, f64),
    chart: &LineChart,
) -> Result<ChartContext<'a, DB, Cartesian2d<Axis, Axis>>, String> {
    ChartBuilder::on(root)
        .margin_top(MARGIN as i32 + layout.title_h)
        .margin_left(MARGIN)
        .margin_bottom(MARGIN)
        .margin_right(layout.right)
        .x_label_area_size(layout.x_area)
        .y_label_area_size(layout.y_area)
        .build_cartesian_2d(
            Axis::new(x.0, x.1, chart.log_x, MAX_TICKS),
            Axis::new(y.0, y.1, chart.log_y, MAX_TICKS),
        )
        .map_err(err)
}

/// Draws `chart` onto `root` (any size from 240×180; files are 960×640). Errors: nothing
/// drawable (no finite point, or none positive on a log axis), a too small area, drawing errors.
pub fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &LineChart,
) -> Result<(), String> {
    fonts();
    let series = prepare(chart);
    let (xr, yr) = data_ranges(chart, &series)?;
    let (w, h) = root.dim_in_pixel();
    if w < 240 || h < 180 {
        return Err(format!(
            "{w}×{h} is too small for a line chart (at least 240×180)"
        ));
    }
    let w = w as i32;
    root.fill(&WHITE).map_err(err)?;

    // title: shrink the font until it fits the width
    let mut title_h = 0;
    if !chart.title.is_empty() {
        let mut size = TITLE_FONT;
        let mut style = font(size);
        while size > 10 {
            style = font(size);
            let (tw, _) = root.estimate_text_size(&chart.title, &style).map_err(err)?;
            if (tw as i32) <= w - 2 * MARGIN as i32 {
                break;
            }
            size -= 1;
        }
        let (_, th) = root.estimate_text_size(&chart.title, &style).map_err(err)?;
        root.draw_text(
            &chart.title,
            &style.pos(Pos::new(HPos::Center, VPos::Top)),
            (w / 2, MARGIN as i32),
        )
        .map_err(err)?;
        title_h = th as i32 + 12;
    }

    // label areas sized by the widest tick label
    let tick_style = font(TICK_FONT);
    let desc_style = font(DESC_FONT);
    let mut tick_w = 0;
    let mut tick_h = 0;
    let x_ticks = Axis::new(xr.0, xr.1, chart.log_x, MAX_TICKS).ticks;
    let y_ticks = Axis::new(yr.0, yr.1, chart.log_y, MAX_TICKS).ticks;
    for l in y_ticks.labels.iter().chain(&x_ticks.labels) {
        let (tw, th) = root.estimate_text_size(l, &tick_style).map_err(err)?;
        tick_w = tick_w.max(tw);
        tick_h = tick_h.max(th);
    }
    let desc_h = |s: &str| -> Result<u32, String> {
        if s.is_empty() {
            Ok(0)
        } else {
            Ok(root.estimate_text_size(s, &desc_style).map_err(err)?.1 + 10)
        }
    };
    // axis descriptions, with the common factor of the tick labels if there is one
    let describe = |label: &str, ticks: &Ticks| match (&ticks.factor, label.is_empty()) {
        (Some(f), true) => f.clone(),
        (Some(f), false) => format!("{label} ({f})"),
        (None, _) => label.to_string(),
    };
    let (x_desc, y_desc) = (
        describe(&chart.x_label, &x_ticks),
        describe(&chart.y_label, &y_ticks),
    );
    let mut layout = Layout {
        title_h,
        y_area: 10 + tick_w + 6 + desc_h(&y_desc)?,
        x_area: 10 + tick_h + 6 + desc_h(&x_desc)?,
        right: 24,
    };

    let plot_h = h as i32 - 2 * MARGIN as i32 - title_h - layout.x_area as i32;
    let legend = legend_layout(
        &root,
        &series,
        (w * 2 / 5 - 2 * LEGEND_INSET, plot_h - 2 * LEGEND_INSET),
    )?;
    let mut cc = build(&root, &layout, &xr, &yr, chart)?;

    // error bars clipped to the y axis (a non-positive low end on a log axis: no cap there)
    let bars: Vec<Vec<Bar>> = series
        .iter()
        .map(|s| {
            s.bars
                .iter()
                .map(|&(x, lo, hi)| Bar {
                    x,
                    lo: lo.max(yr.0),
                    hi: hi.min(yr.1),
                    cap_lo: lo >= yr.0,
                })
                .collect()
        })
        .collect();

    // legend: the first place inside the plot where it covers no data (corners first), else
    // outside on the right, the plot narrowed to make room
    let mut legend_at = None;
    if let Some(lg) = &legend {
        let (px, py) = cc.plotting_area().get_pixel_range();
        let samples = pixel_samples(&|x, y| cc.backend_coord(&(x, y)), &series, &bars);
        let (l, r) = (px.start + LEGEND_INSET, px.end - LEGEND_INSET - lg.w);
        let (t, b) = (py.start + LEGEND_INSET, py.end - LEGEND_INSET - lg.h);
        let (cx, cy) = ((l + r) / 2, (t + b) / 2);
        let fits = l <= r && t <= b;
        let covers = |&(x, y): &(i32, i32)| {
            samples
                .iter()
                .any(|p| p.0 >= x - 4 && p.0 <= x + lg.w + 4 && p.1 >= y - 4 && p.1 <= y + lg.h + 4)
        };
        legend_at = [
            (r, t),
            (l, t),
            (r, b),
            (l, b),
            (cx, t),
            (cx, b),
            (r, cy),
            (l, cy),
        ]
        .into_iter()
        .filter(|_| fits)
        .find(|c| !covers(c));
        if legend_at.is_none() {
            layout.right = (lg.w + 2 * LEGEND_INSET) as u32 + 8;
            cc = build(&root, &layout, &xr, &yr, chart)?;
            let (_, py) = cc.plotting_area().get_pixel_range();
            legend_at = Some((w - lg.w - LEGEND_INSET, py.start));
        }
    }

    // grid, ticks, axis descriptions
    {
        let mut mesh = cc.configure_mesh();
        let cats = &chart.x_categories;
        let cat_label = |v: &f64| -> String {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cats.len() {
                cats[i as usize].clone()
            } else {
                String::new()
            }
        };
        if !cats.is_empty() {
            mesh.x_labels(cats.len().max(2))
                .x_label_formatter(&cat_label)
                .x_max_light_lines(0);
        } else {
            mesh.x_labels(MAX_TICKS);
        }
        mesh.bold_line_style(BLACK.mix(0.13))
            .light_line_style(BLACK.mix(0.06))
            .axis_style(BLACK.stroke_width(1))
            .y_labels(MAX_TICKS)
            .label_style(tick_style.clone())
            .axis_desc_style(desc_style.clone());
        if !x_desc.is_empty() {
            mesh.x_desc(x_desc.as_str());
        }
        if !y_desc.is_empty() {
            mesh.y_desc(y_desc.as_str());
        }
        mesh.draw().map_err(err)?;
    }
    // frame around the plot
    let (px, py) = cc.plotting_area().get_pixel_range();
    root.draw(&Rectangle::new(
        [(px.start, py.start), (px.end - 1, py.end - 1)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;

    // the series: error bars, lines, markers
    for (s, bars) in series.iter().zip(&bars) {
        let colour = series_colour(s.index);
        for b in bars {
            let (top, bottom) = (
                cc.backend_coord(&(b.x, b.hi)),
                cc.backend_coord(&(b.x, b.lo)),
            );
            root.draw(&PathElement::new(
                vec![top, bottom],
                colour.stroke_width(LINE_WIDTH - 1),
            ))
            .map_err(err)?;
            let mut caps = vec![top];
            if b.cap_lo {
                caps.push(bottom);
            }
            for c in caps {
                root.draw(&PathElement::new(
                    vec![(c.0 - CAP_HALF, c.1), (c.0 + CAP_HALF, c.1)],
                    colour.stroke_width(LINE_WIDTH - 1),
                ))
                .map_err(err)?;
            }
        }
        let line = colour.stroke_width(LINE_WIDTH);
        for run in s.runs.iter().filter(|r| r.len() > 1) {
            match s.style {
                LineStyle::Solid => cc
                    .draw_series(LineSeries::new(run.iter().copied(), line))
                    .map(|_| ())
                    .map_err(err)?,
                LineStyle::Dashed => cc
                    .draw_series(DashedLineSeries::new(
                        run.iter().copied(),
                        DASH.0,
                        DASH.1,
                        line,
                    ))
                    .map(|_| ())
                    .map_err(err)?,
            }
        }
        for &(x, y) in s.points() {
            draw_marker(
                &root,
                cc.backend_coord(&(x, y)),
                series_marker(s.index),
                colour,
                s.style == LineStyle::Dashed,
            )?;
        }
    }

    if let (Some(lg), Some(at)) = (&legend, legend_at) {
        draw_legend(&root, &series, lg, at)?;
    }
    root.present().map_err(err)
}

/// Draws `chart` to `path`: PNG for `.png`, SVG for `.svg`; 960×640.
pub fn line_chart(chart: &LineChart, path: &Path) -> Result<(), PlotError> {
    let format = format_of(path)?;
    // check before the backend exists: a bitmap backend writes its file when dropped
    data_ranges(chart, &prepare(chart)).map_err(|m| failed(path, m))?;
    match format {
        Format::Png => render(
            BitMapBackend::new(path, LINE_CHART_SIZE).into_drawing_area(),
            chart,
        ),
        Format::Svg => render(
            SVGBackend::new(path, LINE_CHART_SIZE).into_drawing_area(),
            chart,
        ),
    }
    .map_err(|m| failed(path, m))
}

#[cfg(test)]
mod tests;
