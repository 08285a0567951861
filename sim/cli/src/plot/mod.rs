//! Figures: PNG (by extension `.png`) or SVG (`.svg`) through `plotters`, with DejaVu Sans
//! embedded (no system fonts needed).
//!
//! Two kinds: the Gantt chart of a token's timeline ([`gantt`]) and the line charts of
//! experiment results ([`line_chart`]: axes, markers, legend, rendering).

mod axes;
mod gantt;
mod legend;
mod markers;
mod render;

pub use gantt::{gantt, gantt_size, kind_colour};
pub use markers::{series_colour, series_marker, Marker};
pub use render::{line_chart, render, LineChart, LineStyle, Point, Series, LINE_CHART_SIZE};

use plotters::prelude::*;
use std::path::Path;

/// Plotting failures.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Unsupported extension or a drawing error.
    #[error("{path}: {message}")]
    Failed {
        /// Output file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

pub(crate) fn fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // a static font buffer registered once; failure only if the bytes are not a font
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Figure file formats, chosen by extension.
pub(crate) enum Format {
    /// `.png`
    Png,
    /// `.svg`
    Svg,
}

/// The error of drawing `path`.
pub(crate) fn failed(path: &Path, message: String) -> PlotError {
    PlotError::Failed {
        path: path.display().to_string(),
        message,
    }
}

/// The format `path`'s extension names (`.png`, `.svg`, any case).
pub(crate) fn format_of(path: &Path) -> Result<Format, PlotError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" => Ok(Format::Png),
        "svg" => Ok(Format::Svg),
        other => Err(failed(
            path,
            format!("unsupported figure format '.{other}' (use .png or .svg)"),
        )),
    }
}

// Geometry and type sizes of the line charts, in pixels (shared by render, legend, markers).

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

/// Black DejaVu Sans of `size` pixels.
fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// A drawing error as the message of a [`PlotError`].
fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests;
