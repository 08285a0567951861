//! The Gantt chart of one token's timeline: a lane per device and one for the channel.

use super::{failed, fonts, format_of, Format, PlotError};
use airinfer_sim::schemes::tp::{Span, SpanKind};
use plotters::prelude::*;
use std::path::Path;

/// Colour of a span kind.
pub fn kind_colour(kind: SpanKind) -> RGBColor {
    match kind {
        SpanKind::Compute => RGBColor(31, 119, 180),
        SpanKind::Air => RGBColor(255, 127, 14),
        SpanKind::Idle => RGBColor(210, 210, 210),
    }
}

/// Image size of a Gantt chart with `devices` device lanes.
pub fn gantt_size(devices: usize) -> (u32, u32) {
    (1000, 120 + 40 * (devices as u32 + 1))
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    spans: &[Span],
    devices: usize,
    title: &str,
) -> Result<(), String> {
    fonts();
    let t0 = spans
        .iter()
        .map(|s| s.start_s)
        .fold(f64::INFINITY, f64::min);
    let t1 = spans
        .iter()
        .map(|s| s.end_s)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(t0.is_finite() && t1 > t0) {
        return Err("nothing to draw (empty timeline)".into());
    }
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lanes = devices + 1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..(t1 - t0) * 1e3, 0.0..lanes as f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("time in the token, ms")
        .y_labels(0)
        .draw()
        .map_err(|e| e.to_string())?;
    // lane labels at the lane centres
    for lane in 0..lanes {
        let label = if lane == devices {
            "channel".to_string()
        } else {
            format!("device {lane}")
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (0.0, lane as f64 + 0.95),
                ("sans-serif", 13),
            )))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(spans.iter().map(|s| {
            let y = s.lane as f64;
            Rectangle::new(
                [
                    ((s.start_s - t0) * 1e3, y + 0.15),
                    ((s.end_s - t0) * 1e3, y + 0.85),
                ],
                kind_colour(s.kind).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A Gantt chart of one token: lanes 0..K−1 are devices, lane K the channel; `.png` or `.svg`.
pub fn gantt(spans: &[Span], devices: usize, title: &str, path: &Path) -> Result<(), PlotError> {
    let size = gantt_size(devices);
    match format_of(path)? {
        Format::Png => render(
            BitMapBackend::new(path, size).into_drawing_area(),
            spans,
            devices,
            title,
        ),
        Format::Svg => render(
            SVGBackend::new(path, size).into_drawing_area(),
            spans,
            devices,
            title,
        ),
    }
    .map_err(|m| failed(path, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans() -> Vec<Span> {
        vec![
            Span {
                lane: 0,
                kind: SpanKind::Compute,
                start_s: 0.0,
                end_s: 1e-3,
            },
            Span {
                lane: 1,
                kind: SpanKind::Compute,
                start_s: 0.0,
                end_s: 0.5e-3,
            },
            Span {
                lane: 1,
                kind: SpanKind::Idle,
                start_s: 0.5e-3,
                end_s: 1e-3,
            },
            Span {
                lane: 2,
                kind: SpanKind::Air,
                start_s: 1e-3,
                end_s: 2e-3,
            },
        ]
    }

    #[test]
    fn gantt_pixels_are_where_the_spans_are() {
        let (w, h) = gantt_size(2);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        render(
            BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
            &spans(),
            2,
            "test",
        )
        .unwrap();
        // columns holding each colour: compute in the left half, air in the right half
        let cols = |c: RGBColor| -> Vec<u32> {
            let mut v: Vec<u32> = buf
                .chunks(3)
                .enumerate()
                .filter(|(_, p)| p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
                .map(|(i, _)| i as u32 % w)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (blue, orange, grey) = (
            cols(kind_colour(SpanKind::Compute)),
            cols(kind_colour(SpanKind::Air)),
            cols(kind_colour(SpanKind::Idle)),
        );
        assert!(!blue.is_empty() && !orange.is_empty() && !grey.is_empty());
        assert!(
            blue.iter().max() < orange.iter().min(),
            "compute must end before the channel starts"
        );
        assert!(grey.iter().min() > blue.iter().min());
        // the air span is as wide as the compute span of device 0 (both 1 ms)
        let wb = (blue.iter().max().unwrap() - blue.iter().min().unwrap()) as i64;
        let wo = (orange.iter().max().unwrap() - orange.iter().min().unwrap()) as i64;
        // pixel rounding: each end of a span snaps to a whole column (±½ px, ±1 px per width)
        assert!((wb - wo).abs() <= 2, "{wb} vs {wo}");
    }

    #[test]
    fn gantt_files() {
        let dir = std::env::temp_dir().join(format!("airinfer-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("t.png");
        gantt(&spans(), 2, "test", &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let svg = dir.join("t.svg");
        gantt(&spans(), 2, "test", &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("channel") && text.contains("device 1"));
        assert!(gantt(&spans(), 2, "x", &dir.join("t.jpg")).is_err());
        assert!(gantt(&[], 2, "x", &png).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
