//! Line charts of experiment results — the `errorbar` plots of papers (MSE against SNR,
//! perplexity against the number of devices): one line per series with distinct colours
//! (matplotlib's tab10) and marker shapes, optional error bars, linear or log axes, and a
//! legend placed where it hides no data. PNG (`.png`) or SVG (`.svg`), 960×640.

use super::axes::{padded, Axis, Ticks};
use super::legend::{draw_legend, legend_layout, pixel_samples};
use super::markers::{draw_marker, series_colour, series_marker};
use super::{
    err, failed, font, fonts, format_of, Format, PlotError, CAP_HALF, DASH, DESC_FONT,
    LEGEND_INSET, LINE_WIDTH, MARGIN, MAX_TICKS, TICK_FONT, TITLE_FONT,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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

// ---------------------------------------------------------------------------------------------
// Data preparation

/// An error bar after clipping: x, low end, high end, whether each end gets a cap.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bar {
    pub(super) x: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) cap_lo: bool,
}

/// A series cleaned for drawing.
pub(super) struct Prepared {
    pub(super) index: usize,
    pub(super) label: String,
    pub(super) style: LineStyle,
    /// Connected pieces, sorted by x; an invalid y ends a piece.
    pub(super) runs: Vec<Vec<(f64, f64)>>,
    /// Raw error-bar ends (validated but not yet clipped to the axis).
    pub(super) bars: Vec<(f64, f64, f64)>,
}

impl Prepared {
    pub(super) fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
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
