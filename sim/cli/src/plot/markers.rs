//! Series colours (matplotlib's tab10) and marker shapes, and drawing a marker.

use super::{err, MARKER_R};
use plotters::coord::Shift;
use plotters::prelude::*;

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

/// Draws marker `m` centred at pixel `c` on `area`; hollow markers have a white face.
pub(super) fn draw_marker<DB: DrawingBackend>(
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
