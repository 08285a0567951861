use super::axes::{lin_ticks, log_ticks};
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
    let dir = std::env::temp_dir().join(format!("airinfer-plot-lines-long-{}", std::process::id()));
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
    let dir = std::env::temp_dir().join(format!("airinfer-plot-lines-err-{}", std::process::id()));
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
