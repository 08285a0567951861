//! Figures and the terminal table of a campaign, from its summary (mean over replications, 95 %
//! confidence intervals).

use super::spec::{PlotSpec, TableSpec};
use super::store::Table;
use crate::plot::{line_chart, LineChart, LineStyle, Point, Series};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Whether the cell `v` passes a filter's allowed values (numbers compare as numbers).
fn matches(v: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|a| a == v || matches!((a.parse::<f64>(), v.parse::<f64>()), (Ok(x), Ok(y)) if x == y))
}

/// The chart `p` describes, drawn from `summary`.
pub fn chart(p: &PlotSpec, summary: &Table) -> Result<LineChart> {
    let col = |c: &str| {
        summary
            .col(c)
            .ok_or_else(|| anyhow::anyhow!("plot '{}': no column '{c}' in the summary", p.file))
    };
    let x = col(&p.x)?;
    let y = col(&p.y)?;
    let ci = summary.col(&format!("{}_ci95", p.y));
    let series_cols: Vec<usize> = p.series.iter().map(|s| col(s)).collect::<Result<_>>()?;
    let filters: Vec<(usize, &Vec<String>)> = p
        .filter
        .iter()
        .map(|(c, v)| Ok((col(c)?, v)))
        .collect::<Result<_>>()?;
    let mut series: Vec<Series> = Vec::new();
    let kept = |row: &Vec<String>| {
        filters
            .iter()
            .all(|(c, allowed)| matches(&row[*c], allowed))
    };
    // a column of names (in the rows the filter keeps) becomes a categorical axis, in order
    // of first appearance
    let mut categories: Vec<String> = Vec::new();
    let categorical = summary
        .rows
        .iter()
        .filter(|r| kept(r))
        .any(|r| r[x].parse::<f64>().is_err());
    if categorical && (p.log_x || !p.reference.is_empty()) {
        bail!(
            "plot '{}': x column '{}' holds names, which cannot take log_x or reference curves",
            p.file,
            p.x
        );
    }
    for row in &summary.rows {
        if !kept(row) {
            continue;
        }
        let label = series_cols
            .iter()
            .map(|&c| row[c].clone())
            .collect::<Vec<_>>()
            .join(", ");
        let xv = if categorical {
            match categories.iter().position(|c| *c == row[x]) {
                Some(i) => i as f64,
                None => {
                    categories.push(row[x].clone());
                    (categories.len() - 1) as f64
                }
            }
        } else {
            row[x].parse::<f64>()?
        };
        let yv = row[y].parse::<f64>().unwrap_or(f64::NAN);
        let half = ci
            .filter(|_| p.error_bars)
            .and_then(|c| row[c].parse::<f64>().ok())
            .filter(|h| h.is_finite());
        let point = Point {
            x: xv,
            y: yv,
            y_lo: half.map(|h| yv - h),
            y_hi: half.map(|h| yv + h),
        };
        match series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                label,
                points: vec![point],
                style: LineStyle::Solid,
            }),
        }
    }
    if series.len() == 1 && series[0].label.is_empty() {
        series[0].label = p.y_label.clone().unwrap_or_else(|| p.y.clone());
    }
    for r in &p.reference {
        series.push(Series {
            label: r.label.clone(),
            points: r
                .x
                .iter()
                .zip(&r.y)
                .map(|(&x, &y)| Point {
                    x,
                    y,
                    y_lo: None,
                    y_hi: None,
                })
                .collect(),
            style: LineStyle::Dashed,
        });
    }
    Ok(LineChart {
        title: p
            .title
            .clone()
            .unwrap_or_else(|| format!("{} vs {}", p.y, p.x)),
        x_label: p.x_label.clone().unwrap_or_else(|| p.x.clone()),
        y_label: p.y_label.clone().unwrap_or_else(|| p.y.clone()),
        log_x: p.log_x,
        log_y: p.log_y,
        series,
        x_categories: categories,
    })
}

/// Draw every plot of `plots` into `dir`; returns the files written.
pub fn draw_all(plots: &[PlotSpec], summary: &Table, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in plots {
        let c = chart(p, summary)?;
        for f in &p.formats {
            let path = dir.join(format!("{}.{f}", p.file));
            line_chart(&c, &path)?;
            out.push(path);
        }
    }
    Ok(out)
}

fn short(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(x) if v.contains('.') || v.contains('e') => {
            if x == 0.0 || (1e-3..1e5).contains(&x.abs()) {
                let s = format!("{x:.4}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                format!("{x:.3e}")
            }
        }
        _ => v.to_string(),
    }
}

/// The final table: the chosen columns of the summary (metrics as mean ± CI when replicated).
pub fn terminal_table(spec: &TableSpec, summary: &Table, metrics: &[String]) -> String {
    let is_metric = |c: &str| metrics.iter().any(|m| m == c);
    let cols: Vec<String> = if spec.columns.is_empty() {
        summary
            .columns
            .iter()
            .filter(|c| *c != "point" && !c.ends_with("_ci95"))
            .cloned()
            .collect()
    } else {
        spec.columns.clone()
    };
    let mut grid: Vec<Vec<String>> = vec![cols.clone()];
    let filters: Vec<(Option<usize>, &Vec<String>)> = spec
        .filter
        .iter()
        .map(|(c, v)| (summary.col(c), v))
        .collect();
    for row in &summary.rows {
        // a filter on a column the summary lacks keeps nothing
        if !filters
            .iter()
            .all(|(c, allowed)| c.is_some_and(|c| matches(&row[c], allowed)))
        {
            continue;
        }
        grid.push(
            cols.iter()
                .map(|c| {
                    let Some(i) = summary.col(c) else {
                        return String::new();
                    };
                    let v = short(&row[i]);
                    match summary.col(&format!("{c}_ci95")).map(|j| &row[j]) {
                        Some(h) if is_metric(c) && h.parse::<f64>().is_ok_and(f64::is_finite) => {
                            format!("{v} ± {}", short(h))
                        }
                        _ => v,
                    }
                })
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|j| grid.iter().map(|r| r[j].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for (i, r) in grid.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}", w = *w))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
        if i == 0 {
            s.push_str(
                &"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)),
            );
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn summary() -> Table {
        Table {
            columns: [
                "point",
                "scheme.kind",
                "channel.snr_db",
                "replications",
                "nmse",
                "nmse_ci95",
            ]
            .map(String::from)
            .to_vec(),
            rows: vec![
                ["0", "aircomp", "0", "2", "0.1", "0.01"]
                    .map(String::from)
                    .to_vec(),
                ["1", "aircomp", "10", "2", "0.01", "NaN"]
                    .map(String::from)
                    .to_vec(),
                ["2", "digital", "0", "2", "0.001", "0.0001"]
                    .map(String::from)
                    .to_vec(),
                ["3", "digital", "10", "2", "0.001", "0.0001"]
                    .map(String::from)
                    .to_vec(),
            ],
        }
    }

    fn spec() -> PlotSpec {
        PlotSpec {
            file: "f".into(),
            title: None,
            x: "channel.snr_db".into(),
            y: "nmse".into(),
            series: vec!["scheme.kind".into()],
            x_label: None,
            y_label: None,
            log_x: false,
            log_y: true,
            error_bars: true,
            formats: vec!["png".into()],
            filter: BTreeMap::new(),
            reference: vec![],
        }
    }

    #[test]
    fn series_points_error_bars_and_filters() {
        let c = chart(&spec(), &summary()).unwrap();
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.series[0].label, "aircomp");
        let p = &c.series[0].points;
        assert_eq!((p[0].x, p[0].y), (0.0, 0.1));
        // 0.1 + 0.01 in f64: rounding only
        assert!((p[0].y_hi.unwrap() - 0.11).abs() < 1e-12);
        assert!(p[1].y_lo.is_none(), "NaN interval: no bar");
        let mut s = spec();
        s.filter
            .insert("channel.snr_db".into(), vec!["10.0".into()]);
        s.error_bars = false;
        let c = chart(&s, &summary()).unwrap();
        assert!(c
            .series
            .iter()
            .all(|s| s.points.len() == 1 && s.points[0].x == 10.0));
        assert!(c.series[0].points[0].y_lo.is_none());
        // names on x: a categorical axis in order of appearance
        let mut s = spec();
        s.x = "scheme.kind".into();
        let c = chart(&s, &summary()).unwrap();
        assert_eq!(c.x_categories.len(), 2);
        assert!(c
            .series
            .iter()
            .all(|s| s.points.iter().all(|p| p.x == 0.0 || p.x == 1.0)));
        s.log_x = true;
        assert!(chart(&s, &summary())
            .unwrap_err()
            .to_string()
            .contains("names"));
    }

    #[test]
    fn table_shows_mean_and_interval() {
        let t = terminal_table(&TableSpec::default(), &summary(), &["nmse".to_string()]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("scheme.kind")
                && lines[0].contains("nmse")
                && !lines[0].contains("ci95")
        );
        assert!(lines[2].contains("0.1 ± 0.01"), "{t}");
        assert!(lines[3].trim_end().ends_with("0.01"), "{t}");
    }
}
