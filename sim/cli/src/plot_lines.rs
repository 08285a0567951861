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
mod tests {
    use super::*;

    const W: u32 = LINE_CHART_SIZE.0;
    const H: u32 = LINE_CHART_SIZE.1;

    fn series(label: &str, points: Vec<Point>) -> Series {
        Series {
            label: label.into(),
            points,
            style: LineStyle::Solid,
        }
    }

    /// Unlabelled series (no legend, so every pixel of a series' colour is data).
    fn chart(series_points: Vec<Vec<Point>>) -> LineChart {
        LineChart {
            title: "test".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: series_points.into_iter().map(|p| series("", p)).collect(),
            ..Default::default()
        }
    }

    fn pts(xy: &[(f64, f64)]) -> Vec<Point> {
        xy.iter().map(|&(x, y)| Point::new(x, y)).collect()
    }

    fn draw(c: &LineChart) -> Vec<u8> {
        let mut buf = vec![0u8; (W * H * 3) as usize];
        render(
            BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area(),
            c,
        )
        .unwrap();
        buf
    }

    /// (column, row) of every pixel of exactly colour `c`.
    fn pixels(buf: &[u8], c: RGBColor) -> Vec<(i32, i32)> {
        buf.chunks(3)
            .enumerate()
            .filter(|(_, p)| p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
            .map(|(i, _)| ((i as u32 % W) as i32, (i as u32 / W) as i32))
            .collect()
    }

    fn centroid(px: &[(i32, i32)]) -> (f64, f64) {
        assert!(!px.is_empty(), "no pixels of that colour");
        let n = px.len() as f64;
        (
            px.iter().map(|p| f64::from(p.0)).sum::<f64>() / n,
            px.iter().map(|p| f64::from(p.1)).sum::<f64>() / n,
        )
    }

    fn rows(px: &[(i32, i32)]) -> (i32, i32) {
        (
            px.iter().map(|p| p.1).min().unwrap(),
            px.iter().map(|p| p.1).max().unwrap(),
        )
    }

    fn cols(px: &[(i32, i32)]) -> (i32, i32) {
        (
            px.iter().map(|p| p.0).min().unwrap(),
            px.iter().map(|p| p.0).max().unwrap(),
        )
    }

    #[test]
    fn series_are_drawn_where_their_data_is() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        let buf = draw(&chart(vec![
            xs.iter().map(|&x| Point::new(x, 1.0)).collect(),
            xs.iter().map(|&x| Point::new(x, 3.0)).collect(),
            vec![Point::new(4.0, 2.0)],
        ]));
        let (a, b, c) = (
            pixels(&buf, series_colour(0)),
            pixels(&buf, series_colour(1)),
            pixels(&buf, series_colour(2)),
        );
        // y = 3 entirely above y = 1 (screen rows grow downwards)
        assert!(rows(&b).1 < rows(&a).0, "{:?} vs {:?}", rows(&b), rows(&a));
        // the lines span most of the plot width
        let (a0, a1) = cols(&a);
        assert!(a1 - a0 > (W as i32) * 2 / 3, "{a0}..{a1}");
        // the point (4, 2): halfway between the lines, at the right end of them (pixel
        // rounding: each centroid/edge is within ≈ 1 px of its exact place, so 3 px for three)
        let (ca, cb, cc) = (centroid(&a), centroid(&b), centroid(&c));
        assert!(
            (cc.1 - (ca.1 + cb.1) / 2.0).abs() <= 3.0,
            "{cc:?} {ca:?} {cb:?}"
        );
        assert!(
            (cc.0 - f64::from(a1 - MARKER_R)).abs() <= 3.0,
            "{cc:?} vs {a1}"
        );
        // and nowhere near the left end
        assert!(cols(&c).0 > (a0 + a1) / 2);
    }

    #[test]
    fn error_bars_span_the_interval() {
        let mut only_lo = Point::new(3.0, 5.0);
        only_lo.y_lo = Some(0.0);
        let buf = draw(&chart(vec![
            vec![Point::new(0.0, 0.0)],
            vec![Point::new(2.0, 10.0)],
            vec![Point::with_bar(1.0, 5.0, 2.0, 8.0)],
            vec![only_lo],
            // reversed ends are accepted
            vec![Point::with_bar(4.0, 5.0, 6.0, 4.0)],
        ]));
        let (r0, r10) = (
            centroid(&pixels(&buf, series_colour(0))).1,
            centroid(&pixels(&buf, series_colour(1))).1,
        );
        assert!(r10 < r0 - 300.0, "{r10} {r0}");
        let row = |y: f64| r0 + (r10 - r0) * y / 10.0;
        let bar = pixels(&buf, series_colour(2));
        let (top, bottom) = rows(&bar);
        // a bar end snaps to a pixel row (±½ px) and the reference rows come from two centroids
        // (±½ px each): ±2 px, and ±3 px for a height (two ends)
        assert!(
            (f64::from(top) - row(8.0)).abs() <= 2.0,
            "{top} vs {}",
            row(8.0)
        );
        assert!(
            (f64::from(bottom) - row(2.0)).abs() <= 2.0,
            "{bottom} vs {}",
            row(2.0)
        );
        // caps: the end rows are wider than the bar
        for r in [top, bottom] {
            let n = bar.iter().filter(|p| p.1 == r).count();
            assert!(n >= 2 * CAP_HALF as usize, "cap at row {r}: {n} pixels");
        }
        // without y_hi there is no bar: just the marker
        let (t, b) = rows(&pixels(&buf, series_colour(3)));
        assert!(b - t <= 4 * MARKER_R, "{t}..{b}");
        let (t, b) = rows(&pixels(&buf, series_colour(4)));
        assert!(
            (f64::from(b - t) - (row(4.0) - row(6.0))).abs() <= 3.0,
            "{t}..{b}"
        );
    }

    #[test]
    fn log_axes_place_decades_proportionally() {
        let mut c = chart(vec![
            vec![Point::new(1.0, 1e-4)],
            vec![Point::new(10.0, 1e-2)],
            vec![Point::new(1000.0, 1e-1)],
        ]);
        c.log_x = true;
        c.log_y = true;
        let buf = draw(&c);
        let p: Vec<(f64, f64)> = (0..3)
            .map(|i| centroid(&pixels(&buf, series_colour(i))))
            .collect();
        // 1e-2 is two thirds of the way from 1e-4 to 1e-1 (centroids ±1 px over spans of
        // ≈ 500–800 px: ≲ 0.4 % per ratio, so 0.02 is 5× that)
        let up = (p[0].1 - p[1].1) / (p[0].1 - p[2].1);
        assert!((up - 2.0 / 3.0).abs() < 0.02, "{up}");
        // 10 is a third of the way from 1 to 1000
        let right = (p[1].0 - p[0].0) / (p[2].0 - p[0].0);
        assert!((right - 1.0 / 3.0).abs() < 0.02, "{right}");
        // on a linear axis 10 would be near 1: at 9/999 ≈ 0.009 of the way, plus pixel rounding
        c.log_x = false;
        let buf = draw(&c);
        let q: Vec<f64> = (0..3)
            .map(|i| centroid(&pixels(&buf, series_colour(i))).0)
            .collect();
        assert!((q[1] - q[0]) / (q[2] - q[0]) < 0.02);
    }

    #[test]
    fn bad_points_leave_gaps() {
        let mut s = pts(&[(0.0, 1.0), (1.0, f64::NAN), (2.0, 1.0), (3.0, 1.0)]);
        s.push(Point::new(f64::NAN, 5.0));
        s.push(Point::new(10.0, f64::INFINITY));
        s.push(Point::with_bar(3.0, 1.0, f64::NAN, 2.0));
        let buf = draw(&chart(vec![s]));
        let px = pixels(&buf, series_colour(0));
        let (c0, c3) = {
            let (a, b) = cols(&px);
            (a + MARKER_R, b - MARKER_R)
        };
        let c2 = c0 + (c3 - c0) * 2 / 3;
        let between = |a: i32, b: i32| px.iter().filter(|p| p.0 > a && p.0 < b).count();
        assert_eq!(
            between(c0 + MARKER_R + 2, c2 - MARKER_R - 2),
            0,
            "no line across the NaN"
        );
        assert!(
            between(c2 + MARKER_R + 2, c3 - MARKER_R - 2) > 10,
            "line from 2 to 3"
        );
        // the infinite and NaN points did not stretch the axes: x = 3 is at the right end
        assert!(c3 > (W as i32) * 3 / 4);
        // the NaN bar end: no bar, a flat series
        let (t, b) = rows(&px);
        assert!(b - t <= 4 * MARKER_R);

        // non-positive values on a log axis are skipped
        let mut c = chart(vec![pts(&[
            (1.0, 1.0),
            (2.0, 0.0),
            (3.0, -1.0),
            (4.0, 10.0),
        ])]);
        c.log_y = true;
        let px = pixels(&draw(&c), series_colour(0));
        let (a, b) = cols(&px);
        let mid = (a + b) / 2;
        // the two skipped points leave a gap of about ⅔ of the width: ±20 px around its middle
        // is far from the neighbouring markers (radius 5)
        assert_eq!(px.iter().filter(|p| (p.0 - mid).abs() < 20).count(), 0);
    }

    #[test]
    fn points_are_sorted_by_x() {
        // drawn in the given order there would be a line along y = 0 from x = 2 to x = 0
        let buf = draw(&chart(vec![pts(&[(2.0, 0.0), (0.0, 0.0), (1.0, 2.0)])]));
        let px = pixels(&buf, series_colour(0));
        let (c0, c2) = cols(&px);
        let bottom = rows(&px).1 - MARKER_R;
        for x in [c0 + (c2 - c0) / 4, c0 + (c2 - c0) * 3 / 4] {
            let col: Vec<i32> = px.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
            assert!(!col.is_empty(), "a line crosses column {x}");
            assert!(col.iter().all(|&r| r < bottom - 20), "column {x}: {col:?}");
        }
    }

    #[test]
    fn degenerate_data_is_drawn_centred() {
        for points in [
            vec![Point::new(3.0, 7.0)],
            pts(&[(0.0, 0.0)]),
            pts(&[(3.0, 1.0), (3.0, 2.0), (3.0, 3.0)]),
            pts(&[(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]),
            vec![Point::with_bar(-1e-9, 5.0, 5.0, 5.0)],
        ] {
            for log in [false, true] {
                let mut c = chart(vec![points.clone()]);
                c.log_y = log;
                if log && points.iter().all(|p| p.y <= 0.0) {
                    continue;
                }
                let px = pixels(&draw(&c), series_colour(0));
                let (cx, cy) = centroid(&px);
                // the data sit at the centre of the plot area, which the axis labels, ticks and
                // title shift off the image's centre by less than 15 %
                assert!(
                    (cx - f64::from(W) / 2.0).abs() < 0.15 * f64::from(W),
                    "{points:?}: {cx}"
                );
                assert!(
                    (cy - f64::from(H) / 2.0).abs() < 0.15 * f64::from(H),
                    "{points:?}: {cy}"
                );
            }
        }
    }

    #[test]
    fn legend_hides_no_data() {
        let falling = pts(&[(0.0, 10.0), (2.0, 7.0), (5.0, 5.0), (8.0, 2.5), (10.0, 0.0)]);
        let mut c = chart(vec![
            falling.clone(),
            falling.iter().map(|p| Point::new(p.x, p.y * 0.9)).collect(),
        ]);
        let without = draw(&c);
        c.series[0].label = "falling".into();
        c.series[1].label = "falling less".into();
        let with = draw(&c);
        let diff: Vec<(i32, i32)> = with
            .chunks(3)
            .zip(without.chunks(3))
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| ((i as u32 % W) as i32, (i as u32 / W) as i32))
            .collect();
        assert!(!diff.is_empty(), "a legend is drawn");
        let ((x0, x1), (y0, y1)) = (cols(&diff), rows(&diff));
        assert!(
            x1 - x0 >= SAMPLE_LEN && x1 - x0 < W as i32 / 2,
            "{x0}..{x1}"
        );
        assert!(y1 - y0 < H as i32 / 3, "{y0}..{y1}");
        for i in 0..2 {
            let data = pixels(&without, series_colour(i));
            let hidden = data
                .iter()
                .filter(|p| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1)
                .count();
            assert_eq!(
                hidden, 0,
                "legend {x0}..{x1} × {y0}..{y1} covers series {i}"
            );
            // the legend shows the series' colour
            let sample = pixels(&with, series_colour(i))
                .into_iter()
                .filter(|p| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1)
                .count();
            assert!(sample > SAMPLE_LEN as usize, "series {i}: {sample}");
        }
    }

    #[test]
    fn legend_moves_outside_when_every_corner_has_data() {
        let line = |f: &dyn Fn(f64) -> f64| -> Vec<Point> {
            (0..=10)
                .map(|i| Point::new(f64::from(i), f(f64::from(i))))
                .collect()
        };
        let c = LineChart {
            series: vec![
                series("rising", line(&|x| x)),
                series("falling", line(&|x| 10.0 - x)),
                series("top", line(&|_| 10.0)),
                series("bottom", line(&|_| 0.0)),
                series("middle", line(&|_| 5.0)),
            ],
            ..Default::default()
        };
        let buf = draw(&c);
        for i in 0..5 {
            let mut xs: Vec<i32> = pixels(&buf, series_colour(i)).iter().map(|p| p.0).collect();
            xs.sort_unstable();
            xs.dedup();
            // the widest gap between columns separates the data from the legend sample
            let (k, gap) = xs
                .windows(2)
                .enumerate()
                .map(|(k, w)| (k, w[1] - w[0]))
                .max_by_key(|(_, g)| *g)
                .unwrap();
            let legend = &xs[k + 1..];
            assert!(gap >= 10, "series {i}: gap {gap}");
            assert!(
                legend[0] > W as i32 * 3 / 4,
                "series {i}: legend at {}",
                legend[0]
            );
            assert!(legend[legend.len() - 1] - legend[0] <= SAMPLE_LEN + 2);
            // data spans most of the remaining width
            assert!(xs[k] - xs[0] > W as i32 / 2);
        }
    }

    #[test]
    fn long_legends_are_shortened() {
        let long = "a very long series label that goes on ".repeat(8);
        let c = LineChart {
            series: (0..3)
                .map(|k| {
                    series(
                        &format!("{k} {long}"),
                        pts(&[(0.0, 0.0), (1.0, f64::from(k)), (2.0, 5.0)]),
                    )
                })
                .collect(),
            ..Default::default()
        };
        let buf = draw(&c);
        // the plot keeps more than half of the width, the legend stays in the image
        let (a, b) = cols(&pixels(&buf, series_colour(0)));
        assert!(b - a > W as i32 / 2, "{a}..{b}");
        assert!(b < W as i32 - 2);
        let dir =
            std::env::temp_dir().join(format!("airinfer-plot-lines-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svg = dir.join("long.svg");
        line_chart(&c, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("0 a very long") && text.contains('…'));
        assert!(!text.contains(long.trim_end()));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn tick_labels_are_short() {
        // a label on each tick, no float noise
        for (lo, hi) in [
            (0.0, 1.0),
            (0.1, 0.7),
            (-3.0, 27.0),
            (1e-7, 3e-7),
            (2e8, 9e8),
            (0.3, 0.30001),
        ] {
            let t = lin_ticks(lo, hi, MAX_TICKS);
            assert!(
                t.values.len() >= 3 && t.values.len() <= MAX_TICKS,
                "{lo}..{hi}: {t:?}"
            );
            // lin_ticks admits a tick up to 1e-9 of a step (≤ the span) outside [lo, hi] on
            // purpose (ceil(lo/step − 1e-9)), and each value carries a few ulps of its own
            // magnitude; the bare 1e-12·span it replaces covered neither (0.3..0.30001: an ulp
            // of 0.3 is 5.6e-12 of the span)
            let tol = 1e-9 * (hi - lo) + 4.0 * f64::EPSILON * lo.abs().max(hi.abs());
            assert!(
                t.values.iter().all(|v| *v >= lo - tol && *v <= hi + tol),
                "{t:?}"
            );
            assert!(t.labels.iter().all(|l| l.chars().count() <= 8), "{t:?}");
            // labels are distinct
            let mut l = t.labels.clone();
            l.dedup();
            assert_eq!(l.len(), t.labels.len(), "{t:?}");
        }
        assert_eq!(
            lin_ticks(0.1, 0.7, 9).labels,
            ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
        );
        assert_eq!(lin_ticks(-2.2, 2.2, 9).labels[0], "\u{2212}2.0");
        let t = lin_ticks(2e8, 9e8, 9);
        assert_eq!(
            (t.labels[0].as_str(), t.factor.as_deref()),
            ("2", Some("×10⁸"))
        );
        for (lo, hi) in [
            (6e-5, 0.2),
            (1.0, 1e6),
            (3.0, 8.0),
            (1e-300, 1e300),
            (0.9, 1.1),
        ] {
            let t = log_ticks(lo, hi, MAX_TICKS);
            assert!(
                t.values.len() >= 2 && t.values.len() <= MAX_TICKS,
                "{lo}..{hi}: {t:?}"
            );
            // loose (0.1 %): decade ticks are 10^d up to powi's few ulps, candidates are kept
            // within 1e-12 and the linear fallback within 1e-9 of a step; this catches a tick a
            // whole decade or mantissa off
            assert!(t
                .values
                .iter()
                .all(|v| *v >= lo * 0.999 && *v <= hi * 1.001));
            assert!(t.labels.iter().all(|l| l.chars().count() <= 8), "{t:?}");
        }
        assert_eq!(
            log_ticks(6e-5, 0.2, 9).labels,
            ["10⁻⁴", "10⁻³", "10⁻²", "10⁻¹"]
        );
        assert_eq!(log_ticks(5.0, 2000.0, 9).labels, ["10", "100", "1000"]);
    }

    fn sample_chart() -> LineChart {
        LineChart {
            title: "MSE vs SNR".into(),
            x_label: "SNR (dB)".into(),
            y_label: "normalised MSE".into(),
            log_x: false,
            log_y: true,
            series: vec![
                Series {
                    label: "ours & theirs".into(),
                    points: (0..6)
                        .map(|i| {
                            let y = 10f64.powi(-i);
                            Point::with_bar(f64::from(i) * 5.0, y, 0.8 * y, 1.2 * y)
                        })
                        .collect(),
                    style: LineStyle::Solid,
                },
                Series {
                    label: "paper".into(),
                    points: (0..6)
                        .map(|i| Point::new(f64::from(i) * 5.0, 2.0 * 10f64.powi(-i)))
                        .collect(),
                    style: LineStyle::Dashed,
                },
            ],
            x_categories: Vec::new(),
        }
    }

    #[test]
    fn line_chart_files() {
        let dir = std::env::temp_dir().join(format!("airinfer-plot-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = sample_chart();
        let png = dir.join("t.png");
        line_chart(&c, &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() < 400_000, "{} bytes", bytes.len());
        // IHDR: 960 × 640
        assert_eq!(&bytes[16..24], &[0, 0, 3, 0xc0, 0, 0, 2, 0x80]);
        let svg = dir.join("t.SVG");
        line_chart(&c, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.len() < 400_000);
        for s in [
            "MSE vs SNR",
            "SNR (dB)",
            "normalised MSE",
            "ours &amp; theirs",
            "paper",
            "10⁻³",
        ] {
            assert!(text.contains(s), "{s} missing");
        }
        // every text is short unless it is a title, label or legend entry
        let long: Vec<&str> = text
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split('>').nth(1))
            .map(|t| t.split('<').next().unwrap_or("").trim())
            .filter(|t| t.chars().filter(|c| c.is_ascii_digit()).count() > 6)
            .collect();
        assert!(long.is_empty(), "{long:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors() {
        let dir =
            std::env::temp_dir().join(format!("airinfer-plot-lines-err-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = sample_chart();
        for name in ["t.jpg", "t", "t.png.txt"] {
            let e = line_chart(&good, &dir.join(name)).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        let mut log_only_negative = chart(vec![pts(&[(1.0, -1.0), (2.0, 0.0)])]);
        log_only_negative.log_y = true;
        let mut log_x_negative = chart(vec![pts(&[(-1.0, 1.0), (0.0, 1.0)])]);
        log_x_negative.log_x = true;
        for bad in [
            LineChart::default(),
            chart(vec![vec![]]),
            chart(vec![pts(&[
                (f64::NAN, 1.0),
                (1.0, f64::NAN),
                (f64::INFINITY, 2.0),
            ])]),
            chart(vec![pts(&[(f64::MAX, 1.0), (f64::MIN, 2.0)])]),
            log_only_negative,
            log_x_negative,
        ] {
            let path = dir.join("bad.png");
            let e = line_chart(&bad, &path);
            assert!(matches!(e, Err(PlotError::Failed { .. })), "{bad:?}");
            assert!(!path.exists(), "no file for a failed chart");
        }
        let mut small = vec![0u8; 100 * 80 * 3];
        assert!(render(
            BitMapBackend::with_buffer(&mut small, (100, 80)).into_drawing_area(),
            &good
        )
        .is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn odd_values_never_panic() {
        let odd = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            5e-324,
            1e-300,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0 + f64::EPSILON,
        ];
        let mut buf = vec![0u8; (W * H * 3) as usize];
        let mut ok = 0;
        for (k, &a) in odd.iter().enumerate() {
            for &b in &odd {
                for (log_x, log_y) in [(false, false), (true, true), (false, true)] {
                    let c = LineChart {
                        title: "odd".into(),
                        log_x,
                        log_y,
                        series: vec![
                            series(
                                "a",
                                vec![
                                    Point::new(a, b),
                                    Point::with_bar(b, a, a, b),
                                    Point::new(1.0, 1.0),
                                ],
                            ),
                            series(
                                "b",
                                vec![Point::with_bar(odd[(k + 3) % odd.len()], b, -a, a)],
                            ),
                        ],
                        ..Default::default()
                    };
                    let r = render(
                        BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area(),
                        &c,
                    );
                    ok += usize::from(r.is_ok());
                }
            }
        }
        assert!(ok > 100, "only {ok} odd charts drawn");
    }
}
