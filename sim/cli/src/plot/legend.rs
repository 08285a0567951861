//! The legend of a line chart: its layout (font shrunk and labels shortened to fit) and
//! drawing, and the pixels of the data that a legend placed inside the plot must not hide.

use super::markers::{draw_marker, series_colour, series_marker};
use super::render::{Bar, LineStyle, Prepared};
use super::{err, font, DASH, LEGEND_FONT, LEGEND_PAD, LINE_WIDTH, MARKER_R, SAMPLE_LEN};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Legend geometry: entries (series index, shown text), box size, row height, font size.
pub(super) struct Legend {
    entries: Vec<(usize, String)>,
    pub(super) w: i32,
    pub(super) h: i32,
    row: i32,
    gap: i32,
    font: u32,
}

/// The legend of the labelled series; its font shrinks (down to 9 px) until the box fits
/// `max_w`×`max_h`, and labels still too wide are shortened with "…".
pub(super) fn legend_layout<DB: DrawingBackend>(
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

pub(super) fn draw_legend<DB: DrawingBackend>(
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
pub(super) fn pixel_samples(
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
