//! Where requests come from: a Poisson process, a Markov-modulated Poisson process (bursts), or a
//! trace of arrival times and lengths.

use airinfer_phy::rng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Request {
    /// Index in arrival order.
    pub id: usize,
    /// When it reaches the source device, s.
    pub arrival_s: f64,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens to generate (the first comes out of the prefill).
    pub gen_tokens: usize,
}

/// The arrival process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "process", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrivals {
    /// Exponential gaps of mean `1 / rate_per_s`.
    Poisson {
        /// Requests per second.
        rate_per_s: f64,
    },
    /// A Markov-modulated Poisson process: the rate is `rates_per_s[i]` while the modulating
    /// chain is in state i, which it leaves after an exponential time of mean `mean_dwell_s[i]`
    /// for state i + 1 (cyclically; with two states, the usual MMPP-2 of a bursty source). The
    /// chain starts in state 0.
    Mmpp {
        /// Rate in each state, requests per second.
        rates_per_s: Vec<f64>,
        /// Mean time in each state, s.
        mean_dwell_s: Vec<f64>,
    },
    /// Given arrival times and lengths (a trace file, read by the caller).
    Trace {
        /// The requests, in arrival order.
        #[serde(skip)]
        requests: Vec<Request>,
    },
}

impl Arrivals {
    /// The long-run mean rate, requests per second (a trace: requests over its span).
    pub fn mean_rate(&self) -> f64 {
        match self {
            Arrivals::Poisson { rate_per_s } => *rate_per_s,
            Arrivals::Mmpp {
                rates_per_s,
                mean_dwell_s,
            } => {
                let total: f64 = mean_dwell_s.iter().sum();
                rates_per_s
                    .iter()
                    .zip(mean_dwell_s)
                    .map(|(r, d)| r * d)
                    .sum::<f64>()
                    / total
            }
            Arrivals::Trace { requests } => {
                let span = requests.last().map_or(0.0, |r| r.arrival_s);
                if span > 0.0 {
                    requests.len() as f64 / span
                } else {
                    f64::INFINITY
                }
            }
        }
    }

    /// Check the numbers: the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {v}: must be a finite rate ≥ 0"))
            }
        };
        match self {
            Arrivals::Poisson { rate_per_s } => {
                rate("rate_per_s", *rate_per_s)?;
                if *rate_per_s == 0.0 {
                    return Err("rate_per_s = 0: no request would ever arrive".into());
                }
                Ok(())
            }
            Arrivals::Mmpp {
                rates_per_s,
                mean_dwell_s,
            } => {
                if rates_per_s.is_empty() || rates_per_s.len() != mean_dwell_s.len() {
                    return Err(format!(
                        "rates_per_s ({}) and mean_dwell_s ({}): need one rate and one mean \
                         dwell time per state, at least one state",
                        rates_per_s.len(),
                        mean_dwell_s.len()
                    ));
                }
                for (i, &r) in rates_per_s.iter().enumerate() {
                    rate(&format!("rates_per_s[{i}]"), r)?;
                }
                if rates_per_s.iter().all(|&r| r == 0.0) {
                    return Err("rates_per_s: every rate is 0, no request would arrive".into());
                }
                for (i, &d) in mean_dwell_s.iter().enumerate() {
                    if !(d.is_finite() && d > 0.0) {
                        return Err(format!("mean_dwell_s[{i}] = {d}: must be positive"));
                    }
                }
                Ok(())
            }
            Arrivals::Trace { requests } => check_trace(requests),
        }
    }

    /// `n` requests of `prompt_tokens` and `gen_tokens` each (a trace gives its own, and at
    /// most its own number), arrival times drawn from `seed`.
    pub fn requests(
        &self,
        n: usize,
        prompt_tokens: usize,
        gen_tokens: usize,
        seed: u64,
    ) -> Result<Vec<Request>, String> {
        self.validate()?;
        let mut rng = rng::stream(seed, &[rng::component::PACKET, 0xA221]);
        let exp = |rng: &mut rng::Rng, rate: f64| -> f64 {
            // 1 − U in (0, 1]: the logarithm is finite
            -(1.0 - rng.random::<f64>()).ln() / rate
        };
        let req = |id, arrival_s| Request {
            id,
            arrival_s,
            prompt_tokens,
            gen_tokens,
        };
        Ok(match self {
            Arrivals::Poisson { rate_per_s } => {
                let mut t = 0.0;
                (0..n)
                    .map(|id| {
                        t += exp(&mut rng, *rate_per_s);
                        req(id, t)
                    })
                    .collect()
            }
            Arrivals::Mmpp {
                rates_per_s,
                mean_dwell_s,
            } => {
                let mut out = Vec::with_capacity(n);
                let (mut t, mut state) = (0.0, 0usize);
                let mut leave = exp(&mut rng, 1.0 / mean_dwell_s[0]);
                while out.len() < n {
                    let r = rates_per_s[state];
                    // by memorylessness the next arrival in this state is a fresh draw
                    let next = if r > 0.0 {
                        t + exp(&mut rng, r)
                    } else {
                        f64::INFINITY
                    };
                    if next <= leave {
                        t = next;
                        out.push(req(out.len(), t));
                    } else {
                        t = leave;
                        state = (state + 1) % rates_per_s.len();
                        leave = t + exp(&mut rng, 1.0 / mean_dwell_s[state]);
                    }
                }
                out
            }
            Arrivals::Trace { requests } => requests.iter().take(n).copied().collect(),
        })
    }
}

/// Read a trace: CSV with a header naming `arrival_s`, `prompt_tokens` and `gen_tokens` (in any
/// order; other columns ignored), one request per line, sorted by arrival. The error names the
/// line.
pub fn parse_trace(text: &str) -> Result<Vec<Request>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (_, header) = lines.next().ok_or("empty trace: need a header line")?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("header: no `{name}` column (has {})", cols.join(", ")))
    };
    let (ca, cp, cg) = (col("arrival_s")?, col("prompt_tokens")?, col("gen_tokens")?);
    let mut out = Vec::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize, name: &str| {
            f.get(c)
                .copied()
                .ok_or_else(|| format!("line {}: no `{name}` field", i + 1))
        };
        let arrival_s: f64 = get(ca, "arrival_s")?
            .parse()
            .map_err(|e| format!("line {}: arrival_s: {e}", i + 1))?;
        let prompt_tokens: usize = get(cp, "prompt_tokens")?
            .parse()
            .map_err(|e| format!("line {}: prompt_tokens: {e}", i + 1))?;
        let gen_tokens: usize = get(cg, "gen_tokens")?
            .parse()
            .map_err(|e| format!("line {}: gen_tokens: {e}", i + 1))?;
        out.push(Request {
            id: out.len(),
            arrival_s,
            prompt_tokens,
            gen_tokens,
        });
    }
    check_trace(&out)?;
    Ok(out)
}

fn check_trace(requests: &[Request]) -> Result<(), String> {
    if requests.is_empty() {
        return Err("trace: no requests".into());
    }
    for (i, r) in requests.iter().enumerate() {
        if !(r.arrival_s.is_finite() && r.arrival_s >= 0.0) {
            return Err(format!("trace request {i}: arrival_s = {}", r.arrival_s));
        }
        if i > 0 && r.arrival_s < requests[i - 1].arrival_s {
            return Err(format!(
                "trace request {i}: arrives at {} s, before request {} ({} s): sort the \
                 trace by arrival time",
                r.arrival_s,
                i - 1,
                requests[i - 1].arrival_s
            ));
        }
        if r.prompt_tokens == 0 || r.gen_tokens == 0 {
            return Err(format!(
                "trace request {i}: prompt_tokens and gen_tokens must be positive"
            ));
        }
    }
    Ok(())
}
