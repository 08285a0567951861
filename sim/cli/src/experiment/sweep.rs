//! The `[sweep]` table: any key given a list of values (or a range), combined as a cartesian
//! product; `[[sweep.zip]]` groups keys whose lists move together.
//!
//! ```toml
//! [sweep]
//! "channel.snr_db" = { from = 0, to = 30, step = 10 }   # 0, 10, 20, 30
//! scheme = [{ kind = "digital" }, { kind = "aircomp", design = "sca" }]  # tables merge
//! [[sweep.zip]]                                          # moves together: 3 points, not 9
//! "devices.count" = [2, 4, 8]
//! "channel.gains_db" = [[0, -3], [0, -3, -6, -9], [0, -1, -2, -3, -4, -5, -6, -7]]
//! ```
//! Points are numbered with the last axis varying fastest.

use super::source::{Doc, ExperimentError};

/// Keys that describe the campaign itself and cannot vary between its runs.
pub const NOT_SWEPT: [&str; 8] = [
    "name",
    "description",
    "kind",
    "replications",
    "extends",
    "sweep",
    "plot",
    "table",
];

/// Most values one range may expand to.
pub const MAX_RANGE: usize = 100_000;

/// Most runs (points × replications) one campaign may hold. Each run keeps a record in memory
/// and a file on disk: a million runs is already more than a campaign on one machine finishes;
/// split larger studies into several files.
pub const MAX_RUNS: usize = 1_000_000;

/// Most points one sweep may hold. `check` builds and validates every point (≈ 50 µs and 2 KB
/// each): 100 000 points take seconds; more would make `check` slow and memory-hungry.
pub const MAX_POINTS: usize = 100_000;

/// One key set to one value, and the key of the sweep entry that said so (for errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Dotted path of the experiment key.
    pub path: String,
    /// Its value at this point.
    pub value: toml::Value,
    /// The sweep entry, as a location key (`sweep.channel.snr_db[2]`).
    pub from: String,
}

/// An axis: the values of one key, or of a zip group of keys moving together.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The keys.
    pub paths: Vec<String>,
    /// Step i sets every key of the axis.
    pub steps: Vec<Vec<Setting>>,
}

/// The parsed sweep.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sweep {
    /// Axes, slowest first.
    pub axes: Vec<Axis>,
}

fn is_range(t: &toml::Table) -> bool {
    t.contains_key("from") || t.contains_key("to")
}

fn number(doc: &Doc, loc: &str, t: &toml::Table, key: &str) -> Result<f64, ExperimentError> {
    match t.get(key) {
        Some(toml::Value::Integer(i)) => Ok(*i as f64),
        Some(toml::Value::Float(f)) if f.is_finite() => Ok(*f),
        Some(v) => Err(doc.error(
            &format!("{loc}.{key}"),
            format!("expected a finite number, found {v}"),
        )),
        None => Err(doc.error(loc, format!("a range needs `{key}`"))),
    }
}

/// Round to 12 significant digits, so 0.1 + 2·0.1 prints as 0.3.
fn tidy(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Expand `{ from, to, step }` or `{ from, to, num, log }`.
fn range(doc: &Doc, loc: &str, t: &toml::Table) -> Result<Vec<toml::Value>, ExperimentError> {
    for k in t.keys() {
        if !["from", "to", "step", "num", "log"].contains(&k.as_str()) {
            return Err(doc.error(
                &format!("{loc}.{k}"),
                "unknown range key (expected from, to and step, or from, to, num and log)",
            ));
        }
    }
    let from = number(doc, loc, t, "from")?;
    let to = number(doc, loc, t, "to")?;
    if to < from {
        return Err(doc.error(
            &format!("{loc}.to"),
            format!("to = {to} is below from = {from}: ranges run upwards (list the values to go downwards)"),
        ));
    }
    let log = match t.get("log") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(v) => {
            return Err(doc.error(
                &format!("{loc}.log"),
                format!("expected true or false, found {v}"),
            ))
        }
    };
    let ints = |ks: &[&str]| {
        ks.iter()
            .all(|k| matches!(t.get(*k), Some(toml::Value::Integer(_))))
    };
    match (t.contains_key("step"), t.contains_key("num")) {
        (true, false) => {
            if log {
                return Err(doc.error(&format!("{loc}.log"), "log spacing needs `num`, not `step`"));
            }
            let step = number(doc, loc, t, "step")?;
            if step <= 0.0 {
                return Err(doc.error(
                    &format!("{loc}.step"),
                    format!("step = {step}: the spacing must be positive (from {from} to {to})"),
                ));
            }
            let n = ((to - from) / step + 1e-9).floor() as usize + 1;
            if n > MAX_RANGE {
                return Err(doc.error(loc, format!("{n} values: more than {MAX_RANGE}")));
            }
            let as_int = ints(&["from", "to", "step"]);
            Ok((0..n)
                .map(|i| {
                    let x = from + i as f64 * step;
                    if as_int {
                        toml::Value::Integer(x.round() as i64)
                    } else {
                        toml::Value::Float(tidy(x))
                    }
                })
                .collect())
        }
        (false, true) => {
            let n = match t.get("num") {
                Some(toml::Value::Integer(n)) if *n >= 1 && (*n as usize) <= MAX_RANGE => {
                    *n as usize
                }
                Some(v) => {
                    return Err(doc.error(
                        &format!("{loc}.num"),
                        format!("expected a count from 1 to {MAX_RANGE}, found {v}"),
                    ))
                }
                None => unreachable!("checked by contains_key"),
            };
            if log && from <= 0.0 {
                return Err(doc.error(
                    &format!("{loc}.from"),
                    format!("from = {from}: log spacing needs positive bounds"),
                ));
            }
            if n == 1 && to != from {
                return Err(doc.error(
                    &format!("{loc}.num"),
                    "num = 1 but from ≠ to: give at least 2 values",
                ));
            }
            Ok((0..n)
                .map(|i| {
                    let f = if n == 1 {
                        0.0
                    } else {
                        i as f64 / (n - 1) as f64
                    };
                    let x = if log {
                        from * (to / from).powf(f)
                    } else {
                        from + f * (to - from)
                    };
                    toml::Value::Float(tidy(x))
                })
                .collect())
        }
        _ => Err(doc.error(
            loc,
            "a range needs either `step` or `num` (e.g. { from = 0, to = 30, step = 10 })",
        )),
    }
}

/// Flatten nested tables of `t` (prefixing `path`) into (experiment key, location key, value).
fn flatten(
    doc: &Doc,
    path: &str,
    loc: &str,
    t: &toml::Table,
    out: &mut Vec<(String, String, Vec<toml::Value>)>,
) -> Result<(), ExperimentError> {
    for (k, v) in t {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        let l = format!("{loc}.{k}");
        match v {
            toml::Value::Array(a) => {
                if a.is_empty() {
                    return Err(doc.error(&l, "empty sweep list: give at least one value"));
                }
                out.push((p, l, a.clone()));
            }
            toml::Value::Table(r) if is_range(r) => {
                let values = range(doc, &l, r)?;
                out.push((p, l, values));
            }
            toml::Value::Table(sub) => flatten(doc, &p, &l, sub, out)?,
            other => {
                return Err(doc.error(
                    &l,
                    format!(
                        "expected a list of values (or a range {{ from, to, step }}), found {}",
                        other.type_str()
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn check_path(doc: &Doc, loc: &str, path: &str) -> Result<(), ExperimentError> {
    let head = path.split('.').next().unwrap_or("");
    if NOT_SWEPT.contains(&head) {
        return Err(doc.error(
            loc,
            format!("`{head}` describes the whole campaign and cannot be swept"),
        ));
    }
    if path.split('.').any(str::is_empty) {
        return Err(doc.error(loc, format!("`{path}` is not a valid dotted key")));
    }
    Ok(())
}

fn axis(paths: Vec<(String, String, Vec<toml::Value>)>) -> Axis {
    let n = paths[0].2.len();
    Axis {
        paths: paths.iter().map(|(p, _, _)| p.clone()).collect(),
        steps: (0..n)
            .map(|i| {
                paths
                    .iter()
                    .map(|(p, l, v)| Setting {
                        path: p.clone(),
                        value: v[i].clone(),
                        from: format!("{l}[{i}]"),
                    })
                    .collect()
            })
            .collect(),
    }
}

impl Sweep {
    /// Read `[sweep]` of `doc` (absent: a single point).
    pub fn parse(doc: &Doc) -> Result<Sweep, ExperimentError> {
        let Some(v) = doc.table.get("sweep") else {
            return Ok(Sweep::default());
        };
        let Some(t) = v.as_table() else {
            return Err(doc.error("sweep", "expected a table of key = [values]"));
        };
        let mut axes = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut add = |doc: &Doc, loc: &str, path: &str| -> Result<(), ExperimentError> {
            check_path(doc, loc, path)?;
            if let Some(p) = seen.iter().find(|s| {
                *s == path
                    || path.starts_with(&format!("{s}."))
                    || s.starts_with(&format!("{path}."))
            }) {
                return Err(doc.error(loc, format!("`{path}` overlaps `{p}`, swept elsewhere")));
            }
            seen.push(path.to_string());
            Ok(())
        };
        for (k, v) in t {
            if k == "zip" {
                let Some(groups) = v.as_array() else {
                    return Err(doc.error(
                        "sweep.zip",
                        "expected [[sweep.zip]] tables of keys whose lists move together",
                    ));
                };
                for (gi, g) in groups.iter().enumerate() {
                    let gl = format!("sweep.zip[{gi}]");
                    let Some(gt) = g.as_table() else {
                        return Err(doc.error(&gl, "expected a table of key = [values]"));
                    };
                    let mut paths = Vec::new();
                    flatten(doc, "", &gl, gt, &mut paths)?;
                    if paths.is_empty() {
                        return Err(doc.error(&gl, "empty zip group"));
                    }
                    let n = paths[0].2.len();
                    for (p, l, vals) in &paths {
                        add(doc, l, p)?;
                        if vals.len() != n {
                            return Err(doc.error(
                                l,
                                format!(
                                    "{} values, but `{}` in the same zip group has {n}: zipped lists need equal lengths",
                                    vals.len(),
                                    paths[0].0
                                ),
                            ));
                        }
                    }
                    axes.push(axis(paths));
                }
                continue;
            }
            let mut paths = Vec::new();
            let mut one = toml::Table::new();
            one.insert(k.clone(), v.clone());
            flatten(doc, "", "sweep", &one, &mut paths)?;
            for (p, l, vals) in paths {
                add(doc, &l, &p)?;
                axes.push(axis(vec![(p, l, vals)]));
            }
        }
        Ok(Sweep { axes })
    }

    /// Number of points (1 without a sweep); saturates at `usize::MAX` (see [`Sweep::count`]).
    pub fn points(&self) -> usize {
        self.count().unwrap_or(usize::MAX)
    }

    /// Number of points, None when the product overflows: counted from the axes' lengths,
    /// without building a point.
    pub fn count(&self) -> Option<usize> {
        self.axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.steps.len()))
    }

    /// The campaign's runs, `points × replications`, or the key to blame (`sweep` or
    /// `replications`) and why there are too many (over [`MAX_POINTS`] points or [`MAX_RUNS`]
    /// runs), naming the axes and their lengths. Nothing is built to count them.
    pub fn runs(&self, replications: usize) -> Result<usize, (&'static str, String)> {
        let axes: Vec<String> = self
            .axes
            .iter()
            .map(|a| format!("{} ({} values)", a.paths.join(" + "), a.steps.len()))
            .collect();
        let show = |n: Option<usize>| n.map_or("more than 2^64".to_string(), |n| n.to_string());
        let points = self.count();
        if points.is_none_or(|p| p > MAX_POINTS) {
            return Err((
                "sweep",
                format!(
                    "{} = {} points: more than the {MAX_POINTS} a sweep may hold (split it into \
                     several files)",
                    axes.join(" × "),
                    show(points)
                ),
            ));
        }
        let runs = points.and_then(|p| p.checked_mul(replications));
        match runs {
            Some(r) if r <= MAX_RUNS => Ok(r),
            _ => {
                let mut factors = axes;
                factors.push(format!("replications ({replications})"));
                Err((
                    "replications",
                    format!(
                        "{} = {} runs: more than the {MAX_RUNS} a campaign may hold (split it \
                         into several files)",
                        factors.join(" × "),
                        show(runs)
                    ),
                ))
            }
        }
    }

    /// The settings of point `i` (last axis fastest).
    pub fn point(&self, mut i: usize) -> Vec<Setting> {
        let mut idx = vec![0; self.axes.len()];
        for (a, ax) in self.axes.iter().enumerate().rev() {
            idx[a] = i % ax.steps.len();
            i /= ax.steps.len();
        }
        self.axes
            .iter()
            .zip(idx)
            .flat_map(|(ax, j)| ax.steps[j].iter().cloned())
            .collect()
    }

    /// Every swept key, in axis order.
    pub fn paths(&self) -> Vec<String> {
        self.axes
            .iter()
            .flat_map(|a| a.paths.iter().cloned())
            .collect()
    }
}

/// Set `s.path` in `table` to `s.value` (tables merge into an existing table).
pub fn apply(table: &mut toml::Table, s: &Setting) -> Result<(), String> {
    let parts: Vec<&str> = s.path.split('.').collect();
    let mut t = table;
    for (i, p) in parts[..parts.len() - 1].iter().enumerate() {
        let e = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = e.as_table_mut().ok_or_else(|| {
            format!(
                "`{}` is not a table, so `{}` cannot be set",
                parts[..=i].join("."),
                s.path
            )
        })?;
    }
    let leaf = parts[parts.len() - 1];
    match (t.get_mut(leaf), &s.value) {
        (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
            super::source::merge(b, o.clone());
        }
        _ => {
            t.insert(leaf.to_string(), s.value.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sweep(text: &str) -> Result<Sweep, ExperimentError> {
        Sweep::parse(&super::super::source::parse(Path::new("x.toml"), text).unwrap())
    }

    fn values(s: &Sweep, path: &str) -> Vec<String> {
        (0..s.points())
            .map(|i| {
                s.point(i)
                    .into_iter()
                    .find(|x| x.path == path)
                    .unwrap()
                    .value
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn cartesian_product_last_axis_fastest() {
        let s = sweep("[sweep]\na.x = [1, 2]\n\"b.y\" = [\"p\", \"q\", \"r\"]\n").unwrap();
        assert_eq!(s.points(), 6);
        assert_eq!(s.paths(), vec!["a.x", "b.y"]);
        assert_eq!(values(&s, "a.x"), ["1", "1", "1", "2", "2", "2"]);
        assert_eq!(values(&s, "b.y")[..4], ["\"p\"", "\"q\"", "\"r\"", "\"p\""]);
        assert_eq!(s.point(4)[1].from, "sweep.b.y[1]");
    }

    #[test]
    fn zip_groups_move_together() {
        let s = sweep(
            "[sweep]\nc = [true, false]\n[[sweep.zip]]\n\"d.k\" = [2, 4, 8]\nd.g = [[0], [0, 1], [3]]\n",
        )
        .unwrap();
        assert_eq!(s.points(), 6);
        for i in 0..6 {
            let p = s.point(i);
            let k = p[1].value.as_integer().unwrap();
            let g = p[2].value.as_array().unwrap().len();
            assert_eq!((k, g), [(2, 1), (4, 2), (8, 1)][i % 3]);
        }
        let e = sweep("[[sweep.zip]]\na = [1, 2]\nb = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml:3:1: sweep.zip[0].b: 1 values") && e.contains("equal"),
            "{e}"
        );
    }

    #[test]
    fn ranges_expand_and_bad_ranges_are_errors() {
        let s = sweep("[sweep]\ns = { from = 0, to = 30, step = 10 }\n").unwrap();
        assert_eq!(values(&s, "s"), ["0", "10", "20", "30"]);
        let s = sweep("[sweep]\ns = { from = 0.1, to = 0.5, step = 0.1 }\n").unwrap();
        assert_eq!(values(&s, "s"), ["0.1", "0.2", "0.3", "0.4", "0.5"]);
        let s = sweep("[sweep]\ns = { from = 0.001, to = 1, num = 4, log = true }\n").unwrap();
        assert_eq!(values(&s, "s"), ["0.001", "0.01", "0.1", "1.0"]);
        for (text, want) in [
            (
                "s = { from = 30, to = 0, step = -10 }",
                "ranges run upwards",
            ),
            (
                "s = { from = 0, to = 30, step = -10 }",
                "spacing must be positive",
            ),
            (
                "s = { from = 0, to = 30, step = 0 }",
                "spacing must be positive",
            ),
            ("s = { from = 0, to = 30 }", "either `step` or `num`"),
            (
                "s = { from = 0, to = 1, num = 3, log = true }",
                "positive bounds",
            ),
            ("s = { from = 0, to = 1, stpe = 3 }", "unknown range key"),
            ("s = []", "empty sweep list"),
            ("s = 3", "expected a list"),
            ("replications = [1, 2]", "cannot be swept"),
        ] {
            let e = sweep(&format!("[sweep]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.starts_with("x.toml:2:"),
                "{text}: {e}"
            );
        }
        let e = sweep("[sweep]\na = [1]\n\"a.b\" = [2]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlaps"), "{e}");
    }

    #[test]
    fn apply_sets_values_and_merges_tables() {
        let mut t: toml::Table = toml::from_str("[s]\nkind = \"a\"\ndesign = \"z\"\n").unwrap();
        let set = |p: &str, v: &str| Setting {
            path: p.into(),
            value: toml::from_str::<toml::Table>(&format!("v = {v}")).unwrap()["v"].clone(),
            from: String::new(),
        };
        apply(&mut t, &set("s", "{ kind = \"b\" }")).unwrap();
        assert_eq!(t["s"]["kind"].as_str(), Some("b"));
        assert_eq!(t["s"]["design"].as_str(), Some("z"));
        apply(&mut t, &set("n.m.o", "3")).unwrap();
        assert_eq!(t["n"]["m"]["o"].as_integer(), Some(3));
        assert!(apply(&mut t, &set("s.kind.x", "1")).is_err());
    }
}
