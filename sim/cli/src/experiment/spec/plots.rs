//! `[[plot]]` and `[table]`: what is drawn and printed from the results.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A scalar or a list of scalars, as the text a CSV cell holds.
fn scalars<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    fn text<E: serde::de::Error>(v: &toml::Value) -> Result<String, E> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                Ok(crate::experiment::cell_text(v))
            }
            other => Err(E::custom(format!(
                "expected a string, number or boolean, found {}",
                other.type_str()
            ))),
        }
    }
    match toml::Value::deserialize(d)? {
        toml::Value::Array(a) => a.iter().map(text).collect(),
        v => Ok(vec![text(&v)?]),
    }
}

/// A column name or a list of them.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a column name or a list of column names")
        })? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        },
    )
}

fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "scalars")] Vec<String>);
    let m = BTreeMap::<String, W>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, W(v))| (k, v)).collect())
}

/// Error bars unless the plot says otherwise (`PlotSpec` has required keys, so no `Default`).
fn yes() -> bool {
    true
}

/// Both figure formats unless the plot names them.
fn default_formats() -> Vec<String> {
    vec!["png".into(), "svg".into()]
}

/// `[[plot]]`: a line chart of the summary (mean over replications, 95 % CI error bars).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// File name without extension, under the results directory.
    pub file: String,
    /// Title (default: "y vs x").
    #[serde(default)]
    pub title: Option<String>,
    /// Column on the x axis (a swept key such as `channel.snr_db`, or a result column).
    pub x: String,
    /// Metric on the y axis.
    pub y: String,
    /// Columns whose values tell the lines apart (a name or a list).
    #[serde(default, deserialize_with = "names")]
    pub series: Vec<String>,
    /// x-axis label (default: the column name).
    #[serde(default)]
    pub x_label: Option<String>,
    /// y-axis label (default: the metric name).
    #[serde(default)]
    pub y_label: Option<String>,
    /// Logarithmic x axis.
    #[serde(default)]
    pub log_x: bool,
    /// Logarithmic y axis.
    #[serde(default)]
    pub log_y: bool,
    /// 95 % confidence intervals over replications as error bars.
    #[serde(default = "yes")]
    pub error_bars: bool,
    /// Output formats: png, svg.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// Keep only rows whose column has one of these values: `{ "scheme.kind" = ["aircomp"] }`.
    #[serde(default, deserialize_with = "scalar_map")]
    pub filter: BTreeMap<String, Vec<String>>,
    /// Curves drawn dashed beside the results (e.g. a paper's values).
    #[serde(default)]
    pub reference: Vec<ReferenceSpec>,
}

/// A reference curve of a plot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// Legend label.
    pub label: String,
    /// x values.
    pub x: Vec<f64>,
    /// y values (as many as x).
    pub y: Vec<f64>,
}

/// `[table]`: the table printed at the end of a campaign.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TableSpec {
    /// Columns (default: the swept keys, the row keys and every metric).
    pub columns: Vec<String>,
    /// Keep only rows whose column has one of these values, as a plot's `filter`.
    #[serde(
        deserialize_with = "scalar_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub filter: BTreeMap<String, Vec<String>>,
}
