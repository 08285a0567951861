//! The memory a campaign needs, estimated from the file before any work starts: `check` prints
//! it, and `check` and `run` refuse a campaign whose peak exceeds the machine's available
//! memory (`MemAvailable` of /proc/meminfo, else `MemTotal`; no limit where neither can be read)
//! or `--max-memory SIZE`.
//!
//! The estimate is an upper-ish bound of the large terms, not an exact account (small buffers,
//! the program itself and allocator slack are left out). Runs go one after another, so the peak
//! is the largest run's terms plus the campaign's own:
//!
//! * **model** (`eval`, `systems` with `perplexity`): the mapped GGUF file, its loaded copy
//!   (F16/BF16 tensors are dequantised to f32: twice their bytes), and the f32 copy of every
//!   matrix the batched (prefill) kernels build on first use: 4 bytes a weight. A catalogue
//!   model not yet fetched is counted from its cost preset at 8 bytes a weight.
//! * **KV caches**: layers × ctx × kv_dim × 2 (K and V) × 4 bytes × K devices (ctx = the larger
//!   of `eval.ctx_tokens` and `eval.prompt_tokens + eval.gen_tokens`; K× bounds the KV heads a
//!   split replicates), for the error-free reference and the run: twice that.
//! * **logits and activations**: ctx × vocab × 4 bytes, and ctx × max(n_embd, n_ff) × 4 bytes
//!   × 8 buffers × K devices.
//! * **Monte-Carlo buffers** (`allreduce`): K × values × 40 bytes (data, its f64 copy, the
//!   estimate) per realisation in flight (as many as worker threads).
//! * **waveform level**: per all-reduce, K devices × 8 sample buffers of (2 + data symbols + 9K
//!   training symbols) × (n_fft + cp_len) + timing offset + channel taps, 16 bytes a sample;
//!   per realisation in flight.
//! * **pipeline events** (`systems`): samples × (prompt + generated tokens) × K × 64 bytes.
//! * **tokenizer and text** (with the model): vocab × 256 bytes, and 8 bytes per byte of text.
//! * **campaign**: 32 MB for the program, 4 KB per point (its configuration) and 2 KB per run
//!   (its record and hash).

use super::spec::{Kind, Level, Spec};
use super::{locate, Experiment, ExperimentError};
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::presets;
use airinfer_llm::gguf::{GgmlType, GgufFile};
use airinfer_phy::waveform::ofdm::OfdmConfig;
use airinfer_phy::waveform::tdl::TdlChannel;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Bytes of the program itself: code, device library, thread stacks, allocator slack.
const PROGRAM_BYTES: f64 = 32e6;
/// Bytes of the configuration of one point, held for the whole campaign.
const POINT_BYTES: f64 = 4096.0;
/// Bytes of the record of one run (parameters, metrics, hash), held for the whole campaign.
const RUN_BYTES: f64 = 2048.0;

/// One term of an estimate: the key that drives it, what it is, its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// The experiment key that sets its size (for errors).
    pub key: String,
    /// What it holds.
    pub what: &'static str,
    /// Bytes.
    pub bytes: f64,
}

/// The estimate of a campaign.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The point of the largest run.
    pub point: usize,
    /// Its terms, then the campaign's own; largest first.
    pub terms: Vec<Term>,
    /// Their sum: the peak.
    pub peak: f64,
    /// The limit and where it comes from (None: unknown, not checked).
    pub limit: Option<(f64, String)>,
}

/// A byte count for people: `312 MB`, `23.4 GB`.
pub fn human(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut x = bytes.max(0.0);
    let mut u = 0;
    while x >= 1000.0 && u + 1 < units.len() {
        x /= 1000.0;
        u += 1;
    }
    if u == 0 || x >= 100.0 {
        format!("{x:.0} {}", units[u])
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// Parse `--max-memory`: bytes, or a number with K, M, G or T (powers of 1024; `4G`, `512M`,
/// `1.5GiB`, `2gb`).
pub fn parse_size(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1024f64),
        Some('m') => (&body[..body.len() - 1], 1024f64.powi(2)),
        Some('g') => (&body[..body.len() - 1], 1024f64.powi(3)),
        Some('t') => (&body[..body.len() - 1], 1024f64.powi(4)),
        _ => (body, 1.0),
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x * mult),
        _ => Err(format!(
            "'{t}': expected a size such as 4G, 512M or 1073741824 (bytes)"
        )),
    }
}

/// The machine's memory for a campaign: `MemAvailable` of /proc/meminfo, else `MemTotal`.
pub fn machine_memory() -> Option<(f64, String)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo(&text)
}

fn meminfo(text: &str) -> Option<(f64, String)> {
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024.0)
    };
    field("MemAvailable:")
        .map(|b| (b, "available (MemAvailable)".to_string()))
        .or_else(|| field("MemTotal:").map(|b| (b, "in the machine (MemTotal)".to_string())))
}

/// The architecture and bytes of a model, as far as they can be known without loading it.
#[derive(Debug, Clone)]
struct ModelInfo {
    cfg: LlamaConfig,
    /// Bytes resident once loaded: the file, its loaded copy, the f32 copy for batched kernels.
    bytes: f64,
}

/// Weights of `cfg`, counted.
fn params(cfg: &LlamaConfig) -> f64 {
    let (d, ff, l) = (cfg.n_embd as f64, cfg.n_ff as f64, cfg.n_layer as f64);
    let q = (cfg.n_head * cfg.head_dim) as f64;
    let kv = (cfg.n_head_kv * cfg.head_dim) as f64;
    let embd = cfg.vocab_size as f64 * d * if cfg.tied_embeddings { 1.0 } else { 2.0 };
    embd + l * (2.0 * d * q + 2.0 * d * kv + 3.0 * d * ff + 2.0 * d)
}

fn gguf_info(path: &Path) -> Option<ModelInfo> {
    let file = std::fs::metadata(path).ok()?.len() as f64;
    let g = GgufFile::open(path).ok()?;
    let cfg = airinfer_llm::model::config_from_gguf(&g).ok()?;
    let loaded: f64 = g
        .tensors()
        .iter()
        .map(|t| match t.ggml_type {
            GgmlType::F16 | GgmlType::BF16 => 2.0 * t.n_bytes() as f64,
            _ => t.n_bytes() as f64,
        })
        .sum();
    Some(ModelInfo {
        bytes: file + loaded + 4.0 * params(&cfg),
        cfg,
    })
}

/// Estimates the runs of one campaign; remembers each model file it read.
struct Estimator {
    threads: f64,
    models: HashMap<PathBuf, Option<ModelInfo>>,
}

impl Estimator {
    /// The model of an eval-like run: its GGUF when it is on disk (a path, or a fetched
    /// catalogue model), else the cost preset of the same name.
    fn model(&mut self, spec: &Spec, dir: &dyn Fn(&str) -> PathBuf) -> Option<ModelInfo> {
        let path = match spec.model_file(dir) {
            Ok(Some(p)) => Some(p),
            _ => crate::assets::cached(crate::assets::MODELS, &spec.model.name),
        };
        if let Some(p) = path {
            let info = self
                .models
                .entry(p.clone())
                .or_insert_with(|| gguf_info(&p))
                .clone();
            if info.is_some() {
                return info;
            }
        }
        let cfg = presets::by_name(&spec.model.name)?;
        Some(ModelInfo {
            bytes: params(&cfg) * 8.0,
            cfg,
        })
    }

    /// The terms of one run of `spec`.
    fn run(&mut self, spec: &Spec, dir: &dyn Fn(&str) -> PathBuf) -> Vec<Term> {
        let k = spec.device_count().max(1) as f64;
        let mut terms = Vec::new();
        let mut term = |key: &str, what: &'static str, bytes: f64| {
            terms.push(Term {
                key: key.to_string(),
                what,
                bytes,
            })
        };
        let real_model =
            spec.kind == Kind::Eval || (spec.kind == Kind::Systems && spec.system.perplexity);
        // values of one all-reduce, and the all-reduces in flight at once
        let mut width = None;
        let mut in_flight = 1.0;
        if real_model {
            if let Some(m) = self.model(spec, dir) {
                let c = &m.cfg;
                let e = &spec.eval;
                let ctx = e
                    .ctx_tokens
                    .max(e.prompt_tokens.saturating_add(e.gen_tokens))
                    as f64;
                let kv_dim = (c.n_head_kv * c.head_dim) as f64;
                term("model.name", "model weights", m.bytes);
                term(
                    "eval.ctx_tokens",
                    "KV caches",
                    2.0 * c.n_layer as f64 * ctx * kv_dim * 2.0 * 4.0 * k,
                );
                term("eval.ctx_tokens", "logits", ctx * c.vocab_size as f64 * 4.0);
                term(
                    "eval.ctx_tokens",
                    "activations",
                    ctx * c.n_embd.max(c.n_ff) as f64 * 4.0 * 8.0 * k,
                );
                width = Some(c.n_embd as f64);
                // the tokenizer's vocabulary, the text and its tokens
                let text = match spec.text_file(dir) {
                    Ok(Some(p)) => Some(p),
                    _ => crate::assets::cached(crate::assets::TEXTS, &spec.eval.text),
                };
                let text_bytes = text
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0.0, |m| m.len() as f64);
                term(
                    "eval.text",
                    "tokenizer and text",
                    c.vocab_size as f64 * 256.0 + text_bytes * 8.0,
                );
            }
        }
        match spec.kind {
            Kind::Allreduce => {
                let n = spec
                    .allreduce
                    .values
                    .map(|v| v as f64)
                    .or_else(|| spec.preset().ok().map(|c| c.n_embd as f64))
                    .unwrap_or(0.0);
                let hardware =
                    spec.waveform.level == Level::Waveform && spec.waveform.is_hardware();
                in_flight = if hardware {
                    1.0
                } else {
                    (spec.allreduce.realisations as f64).min(self.threads)
                };
                let key = if spec.allreduce.values.is_some() {
                    "allreduce.values"
                } else {
                    "model.name"
                };
                term(key, "Monte-Carlo buffers", k * n * 40.0 * in_flight);
                term(
                    "allreduce.realisations",
                    "per-realisation results",
                    spec.allreduce.realisations as f64 * 64.0,
                );
                width = Some(n);
            }
            Kind::Latency => width = spec.preset().ok().map(|c| c.n_embd as f64),
            Kind::Systems => {
                let y = &spec.system;
                term(
                    "system.samples",
                    "pipeline events",
                    y.samples as f64 * (y.prompt_tokens as f64 + y.gen_tokens as f64) * k * 64.0,
                );
            }
            Kind::Serving => {
                let s = &spec.serving;
                term(
                    "serving.requests",
                    "requests and their events",
                    s.requests as f64 * (256.0 + 64.0 * k),
                );
            }
            Kind::Eval | Kind::Plan => {}
        }
        if spec.waveform.level == Level::Waveform {
            if let Some(width) = width {
                for (key, bytes) in waveform_frame(spec, width) {
                    term(key, "waveform sample buffers", bytes * in_flight);
                }
            }
        }
        terms
    }
}

/// Bytes of the sample buffers of one all-reduce of `width` values at waveform level, split by
/// the key that sets them: the OFDM symbols (`waveform.n_fft`), the timing offsets, the taps.
fn waveform_frame(spec: &Spec, width: f64) -> Vec<(&'static str, f64)> {
    let w = &spec.waveform;
    let k = spec.device_count().max(1) as f64;
    let cfg = OfdmConfig {
        n_fft: w.n_fft,
        cp_len: w.cp_len,
        n_used: w.n_used,
        pilot_spacing: w.pilot_spacing,
        sample_rate_hz: spec.channel.bandwidth_hz,
    };
    if cfg.validate().is_err() {
        return Vec::new();
    }
    let per_symbol = 2.0 * cfg.n_data() as f64;
    let symbols = if per_symbol > 0.0 {
        (width / per_symbol).ceil()
    } else {
        0.0
    };
    let training = (airinfer_phy::waveform::aircomp::TRAINING_GAP + 1) as f64 * k;
    let sym_len = cfg.symbol_len() as f64;
    let offset = w
        .impairments
        .iter()
        .map(|d| d.timing_offset_samples.ceil())
        .fold(0.0, f64::max);
    let taps = w
        .impairments
        .iter()
        .filter_map(|d| d.tdl.as_ref())
        .filter_map(|t| {
            TdlChannel::new(t.profile, t.delay_spread_s, spec.channel.bandwidth_hz).ok()
        })
        .map(|c| c.n_taps() as f64)
        .fold(1.0, f64::max);
    // K devices × 8 buffers alive at once (PA, CFO, phase noise, multipath, delay, the sum,
    // the receiver's copy, its grid), 16 bytes a complex sample
    let per_sample = k * 8.0 * 16.0;
    vec![
        (
            "waveform.n_fft",
            (2.0 + symbols + training) * sym_len * per_sample,
        ),
        ("waveform.impairments", offset * per_sample),
        ("waveform.impairments", taps * per_sample),
    ]
}

impl Experiment {
    /// The campaign's memory estimate, with `threads` workers, against `limit` (else the
    /// machine's memory); an error naming the key of the largest term when the peak exceeds it.
    pub fn budget(&self, threads: usize, limit: Option<f64>) -> Result<Budget, ExperimentError> {
        let mut est = Estimator {
            threads: threads.max(1) as f64,
            models: HashMap::new(),
        };
        let mut best: Option<(usize, Vec<Term>, f64)> = None;
        for p in &self.points {
            let terms = est.run(&p.spec, &|key| self.dir(p, key));
            let sum: f64 = terms.iter().map(|t| t.bytes).sum();
            if best.as_ref().is_none_or(|b| sum > b.2) {
                best = Some((p.index, terms, sum));
            }
        }
        let (point, mut terms, _) = best.unwrap_or((0, Vec::new(), 0.0));
        terms.push(Term {
            key: "kind".into(),
            what: "program",
            bytes: PROGRAM_BYTES,
        });
        terms.push(Term {
            key: "sweep".into(),
            what: "point configurations",
            bytes: self.points.len() as f64 * POINT_BYTES,
        });
        terms.push(Term {
            key: "replications".into(),
            what: "run records",
            bytes: self.n_runs() as f64 * RUN_BYTES,
        });
        terms.retain(|t| t.bytes > 0.0);
        terms.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
        let peak = terms.iter().map(|t| t.bytes).sum();
        let limit = match limit {
            Some(l) => Some((l, "allowed by --max-memory".to_string())),
            None => machine_memory(),
        };
        let b = Budget {
            point,
            terms,
            peak,
            limit,
        };
        if let Some((l, source)) = &b.limit {
            if b.peak > *l {
                // blame the largest term a key of the file sets (not the program's own)
                let top = b
                    .terms
                    .iter()
                    .find(|t| t.key != "kind")
                    .unwrap_or(&b.terms[0]);
                let settings = self
                    .points
                    .get(point)
                    .map_or(&[][..], |p| p.settings.as_slice());
                return Err(locate(
                    &self.doc,
                    settings,
                    &top.key,
                    &format!(
                        "the campaign needs about {} of memory at its peak ({}), more than the {} \
                         {source}{}",
                        human(b.peak),
                        b.summary(),
                        human(*l),
                        if source.starts_with("allowed") {
                            ""
                        } else {
                            "; --max-memory SIZE sets another limit"
                        }
                    ),
                ));
            }
        }
        Ok(b)
    }
}

impl Budget {
    /// `model weights 733 MB [model.name], KV caches 11.8 MB [eval.ctx_tokens], …`: every term
    /// of at least 1 % of the peak, largest first, with the key that sets it.
    pub fn summary(&self) -> String {
        let shown: Vec<String> = self
            .terms
            .iter()
            .filter(|t| t.bytes >= 0.01 * self.peak)
            .map(|t| format!("{} {} [{}]", t.what, human(t.bytes), t.key))
            .collect();
        let rest = self.terms.len() - shown.len();
        if rest > 0 {
            format!("{}, {rest} smaller", shown.join(", "))
        } else {
            shown.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4G"), Ok(4.0 * 1024f64.powi(3)));
        assert_eq!(parse_size("512M"), Ok(512.0 * 1024f64.powi(2)));
        assert_eq!(parse_size("1.5GiB"), Ok(1.5 * 1024f64.powi(3)));
        assert_eq!(parse_size("2gb"), Ok(2.0 * 1024f64.powi(3)));
        assert_eq!(parse_size("1000"), Ok(1000.0));
        for bad in ["", "G", "-1G", "0", "4X", "nanG"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(human(312e6), "312 MB");
        assert_eq!(human(23.4e9), "23.4 GB");
    }

    #[test]
    fn meminfo_prefers_available_then_total() {
        let t = "MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(meminfo(t).unwrap().0, 8000000.0 * 1024.0);
        let t = "MemTotal:       16000000 kB\n";
        assert!(meminfo(t).unwrap().1.contains("MemTotal"));
        assert!(meminfo("garbage").is_none());
    }
}
