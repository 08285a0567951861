//! Layer partitioning: the problem every pipeline planner solves ([`PartitionProblem`]), its
//! answer ([`Assignment`]), how an answer is scored, and the [`Partitioner`] trait that
//! EdgeShard, LinguaLinked, MDI-LLM and the baselines implement.
//!
//! The model is a chain of *units*: unit 0 is the token embedding, units 1..=L the decoder
//! blocks, unit L+1 the final norm and output head. A *stage* is a contiguous run of units on
//! one device; an assignment is the list of stages in execution order. Unit u sends
//! `out_bytes[u]` to unit u+1 (the hidden state); the last unit's entry is what travels back to
//! the source device to start the next step (the sampled token). A transfer of b bytes from
//! device i to device j takes `latency_s[i][j] + b / bandwidth[i][j]`, of which only the
//! serialisation `b / bandwidth[i][j]` occupies that directed link (the latency — propagation,
//! switching, scheduling — delays the message without holding up the ones behind it); nothing
//! crosses a link when i = j.
//!
//! Two scores. *Latency* (one sample alone): Σ stage compute + Σ transfers, including the
//! return to the source. *Bottleneck* (many samples in flight, the pipeline's period): the
//! largest load of any resource per step, where each device is one resource (the sum of its
//! stages' compute) and each directed link another (the sum of the serialisation times of what
//! crosses it); throughput is its inverse.

use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;

/// A partitioning instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionProblem {
    /// Device names (for messages and reports), one per device.
    pub devices: Vec<String>,
    /// `compute_s[d][u]`: seconds device d needs for unit u in one step of the workload.
    pub compute_s: Vec<Vec<f64>>,
    /// `memory[u]`: bytes unit u occupies on whichever device holds it (weights and its KV
    /// caches).
    pub memory: Vec<f64>,
    /// `capacity[d]`: bytes device d can give the model.
    pub capacity: Vec<f64>,
    /// `out_bytes[u]`: bytes unit u sends to unit u + 1; the last entry returns to the source.
    pub out_bytes: Vec<f64>,
    /// Extra tensors `(u, v, bytes)` that unit u sends directly to unit v > u + 1 (residual
    /// links); empty for a Llama split at block boundaries.
    pub residual: Vec<(usize, usize, f64)>,
    /// Per-message cost of the directed link i → j, s (diagonal unused).
    pub latency_s: Vec<Vec<f64>>,
    /// Bandwidth of the directed link i → j, bytes/s (diagonal unused).
    pub bandwidth: Vec<Vec<f64>>,
    /// The device that holds the input (unit 0) and receives the output.
    pub source: usize,
}

/// One stage: a contiguous run of units on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Device index.
    pub device: usize,
    /// Units held, in order.
    pub units: Range<usize>,
}

/// A partition: stages in execution order, covering every unit exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// The stages.
    pub stages: Vec<Stage>,
}

/// Why a problem or an assignment is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PartitionError {
    /// The instance itself is malformed or physically meaningless.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why.
        reason: String,
    },
    /// No assignment satisfies the constraints (memory, device order, …).
    #[error("no feasible partition: {0}")]
    Infeasible(String),
    /// The solver failed.
    #[error("solver: {0}")]
    Solver(String),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PartitionError {
    PartitionError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Bytes as GB with enough digits to tell small sizes apart.
pub fn gb(bytes: f64) -> String {
    format!("{:.4} GB", bytes / 1e9)
}

impl PartitionProblem {
    /// Number of units.
    pub fn n_units(&self) -> usize {
        self.memory.len()
    }

    /// Number of devices.
    pub fn n_devices(&self) -> usize {
        self.devices.len()
    }

    /// Time to send `bytes` from device `i` to device `j` (0 when i = j or bytes = 0).
    pub fn transfer_s(&self, i: usize, j: usize, bytes: f64) -> f64 {
        if i == j || bytes <= 0.0 {
            0.0
        } else {
            self.latency_s[i][j] + bytes / self.bandwidth[i][j]
        }
    }

    /// How long sending `bytes` from device `i` to device `j` occupies that link: the
    /// serialisation, without the latency (0 when i = j or bytes = 0).
    pub fn link_load_s(&self, i: usize, j: usize, bytes: f64) -> f64 {
        if i == j || bytes <= 0.0 {
            0.0
        } else {
            bytes / self.bandwidth[i][j]
        }
    }

    /// Check shapes and ranges; errors name the field.
    pub fn validate(&self) -> Result<(), PartitionError> {
        let (n, m) = (self.n_units(), self.n_devices());
        if m == 0 {
            return Err(invalid("devices", "no devices"));
        }
        if n < 2 {
            return Err(invalid(
                "memory",
                "a model has at least an embedding and a head",
            ));
        }
        if self.source >= m {
            return Err(invalid("source", format!("device {} of {m}", self.source)));
        }
        if self.compute_s.len() != m || self.compute_s.iter().any(|r| r.len() != n) {
            return Err(invalid("compute_s", format!("must be {m} × {n}")));
        }
        if self.capacity.len() != m {
            return Err(invalid("capacity", format!("{m} devices")));
        }
        if self.out_bytes.len() != n {
            return Err(invalid("out_bytes", format!("{n} units")));
        }
        for (name, mat) in [
            ("latency_s", &self.latency_s),
            ("bandwidth", &self.bandwidth),
        ] {
            if mat.len() != m || mat.iter().any(|r| r.len() != m) {
                return Err(invalid(name, format!("must be {m} × {m}")));
            }
        }
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        for (d, row) in self.compute_s.iter().enumerate() {
            if let Some(v) = row.iter().find(|v| !finite_nonneg(**v)) {
                return Err(invalid(
                    format!("compute_s[{d}]"),
                    format!("{v}: must be finite and ≥ 0"),
                ));
            }
        }
        for (field, v) in self
            .memory
            .iter()
            .map(|v| ("memory", *v))
            .chain(self.capacity.iter().map(|v| ("capacity", *v)))
            .chain(self.out_bytes.iter().map(|v| ("out_bytes", *v)))
        {
            if !finite_nonneg(v) {
                return Err(invalid(field, format!("{v}: must be finite and ≥ 0")));
            }
        }
        for i in 0..m {
            for j in 0..m {
                if i == j {
                    continue;
                }
                if !finite_nonneg(self.latency_s[i][j]) {
                    return Err(invalid(
                        format!("latency_s[{i}][{j}]"),
                        "must be finite and ≥ 0",
                    ));
                }
                let b = self.bandwidth[i][j];
                if b.is_nan() || b <= 0.0 {
                    return Err(invalid(
                        format!("bandwidth[{i}][{j}]"),
                        format!("{b}: must be positive"),
                    ));
                }
            }
        }
        for &(u, v, b) in &self.residual {
            if !(u + 1 < v && v < n && finite_nonneg(b)) {
                return Err(invalid(
                    "residual",
                    format!("({u}, {v}, {b}): need u + 1 < v < {n} and bytes ≥ 0"),
                ));
            }
        }
        let total: f64 = self.memory.iter().sum();
        let cap: f64 = self.capacity.iter().sum();
        if total > cap * (1.0 + 1e-12) {
            return Err(PartitionError::Infeasible(format!(
                "the model needs {} but all {m} devices together have {}",
                gb(total),
                gb(cap)
            )));
        }
        Ok(())
    }
}

/// The decoder blocks (layer indices) inside a range of units of a model with `n_layer` blocks
/// (unit 0 is the embedding, unit `n_layer + 1` the head).
pub fn blocks_of(n_layer: usize, units: &Range<usize>) -> Range<usize> {
    let a = units.start.clamp(1, n_layer + 1) - 1;
    let b = units.end.clamp(1, n_layer + 1) - 1;
    a..b.max(a)
}

impl Assignment {
    /// Check that the stages are non-empty, contiguous and in order, cover units `0..n_units`,
    /// and sit on devices `0..n_devices` (the source is not checked: see [`Self::validate`]).
    pub fn check_cover(&self, n_units: usize, n_devices: usize) -> Result<(), PartitionError> {
        let mut next = 0;
        for (i, s) in self.stages.iter().enumerate() {
            if s.units.start != next || s.units.is_empty() || s.device >= n_devices {
                return Err(invalid(
                    format!("stages[{i}]"),
                    format!("device {} units {:?}: stages must be non-empty, contiguous, in order, on existing devices", s.device, s.units),
                ));
            }
            next = s.units.end;
        }
        if next != n_units {
            return Err(invalid(
                "stages",
                format!("cover units 0..{next}, not 0..{n_units}"),
            ));
        }
        Ok(())
    }

    /// The assignment of a map of units to devices (`dev[u]`: unit u's device): each run of
    /// units on one device is a stage.
    pub fn from_device_map(dev: &[usize]) -> Assignment {
        let mut stages: Vec<Stage> = Vec::new();
        for (u, &d) in dev.iter().enumerate() {
            match stages.last_mut() {
                Some(st) if st.device == d => st.units.end = u + 1,
                _ => stages.push(Stage {
                    device: d,
                    units: u..u + 1,
                }),
            }
        }
        Assignment { stages }
    }

    /// Device holding each unit.
    pub fn device_of_units(&self, n_units: usize) -> Vec<usize> {
        let mut d = vec![usize::MAX; n_units];
        for s in &self.stages {
            for u in s.units.clone() {
                if u < n_units {
                    d[u] = s.device;
                }
            }
        }
        d
    }

    /// Check that the stages cover units 0..n in order, non-empty, on existing devices, with the
    /// first on the source.
    pub fn validate(&self, p: &PartitionProblem) -> Result<(), PartitionError> {
        self.check_cover(p.n_units(), p.n_devices())?;
        if self.stages.first().is_none_or(|s| s.device != p.source) {
            return Err(invalid("stages[0]", "the source device must hold unit 0"));
        }
        Ok(())
    }

    /// Bytes each device holds.
    pub fn memory_per_device(&self, p: &PartitionProblem) -> Vec<f64> {
        let mut mem = vec![0.0; p.n_devices()];
        for s in &self.stages {
            mem[s.device] += p.memory[s.units.clone()].iter().sum::<f64>();
        }
        mem
    }

    /// The first device whose memory is exceeded, with (need, capacity).
    pub fn memory_violation(&self, p: &PartitionProblem) -> Option<(usize, f64, f64)> {
        self.memory_per_device(p)
            .into_iter()
            .enumerate()
            .find(|&(d, m)| m > p.capacity[d] * (1.0 + 1e-12))
            .map(|(d, m)| (d, m, p.capacity[d]))
    }

    /// Every transfer of one step: (from device, to device, seconds), in execution order
    /// (sequential hand-offs, residual links, then the return to the source).
    pub fn transfers(&self, p: &PartitionProblem) -> Vec<(usize, usize, f64)> {
        self.messages(p, PartitionProblem::transfer_s)
    }

    /// Every transfer of one step as [`Self::transfers`], timed by `time(p, from, to, bytes)`.
    fn messages(
        &self,
        p: &PartitionProblem,
        time: fn(&PartitionProblem, usize, usize, f64) -> f64,
    ) -> Vec<(usize, usize, f64)> {
        let n = p.n_units();
        let dev = self.device_of_units(n);
        let mut out = Vec::new();
        for w in self.stages.windows(2) {
            let u = w[0].units.end - 1;
            out.push((
                w[0].device,
                w[1].device,
                time(p, w[0].device, w[1].device, p.out_bytes[u]),
            ));
        }
        for &(u, v, b) in &p.residual {
            out.push((dev[u], dev[v], time(p, dev[u], dev[v], b)));
        }
        let last = self.stages.last().map_or(p.source, |s| s.device);
        out.push((last, p.source, time(p, last, p.source, p.out_bytes[n - 1])));
        out.retain(|t| t.0 != t.1);
        out
    }

    /// Compute seconds of each stage.
    pub fn stage_compute_s(&self, p: &PartitionProblem) -> Vec<f64> {
        self.stages
            .iter()
            .map(|s| p.compute_s[s.device][s.units.clone()].iter().sum())
            .collect()
    }

    /// One sample alone: Σ compute + Σ transfers (including the return to the source).
    pub fn latency_s(&self, p: &PartitionProblem) -> f64 {
        self.stage_compute_s(p).iter().sum::<f64>()
            + self.transfers(p).iter().map(|t| t.2).sum::<f64>()
    }

    /// The pipeline period: the largest per-step load of any device or directed link (a link's
    /// load: the serialisation of what crosses it).
    pub fn bottleneck_s(&self, p: &PartitionProblem) -> f64 {
        let mut dev = vec![0.0; p.n_devices()];
        for (s, c) in self.stages.iter().zip(self.stage_compute_s(p)) {
            dev[s.device] += c;
        }
        let mut links: BTreeMap<(usize, usize), f64> = BTreeMap::new();
        for (i, j, t) in self.messages(p, PartitionProblem::link_load_s) {
            *links.entry((i, j)).or_default() += t;
        }
        dev.into_iter()
            .chain(links.into_values())
            .fold(0.0, f64::max)
    }

    /// Devices in use, in stage order (a device appears once per stage it holds).
    pub fn devices(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.device).collect()
    }
}

/// A planner: turns a problem into an assignment.
pub trait Partitioner {
    /// Name used in files and reports.
    fn name(&self) -> &'static str;
    /// Solve `p`.
    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError>;
}

/// A tiny deterministic generator for the planners' randomised tests (xorshift64*).
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64*.
    pub struct Rng(u64);

    impl Rng {
        /// Seeded.
        pub fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        /// Next 64 bits.
        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform in [0, 1).
        pub fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Uniform in [0, 1) (alias).
        pub fn unif(&mut self) -> f64 {
            self.unit()
        }
        /// Uniform in [lo, hi).
        pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }
        /// Uniform in lo..=hi.
        pub fn int(&mut self, lo: usize, hi: usize) -> usize {
            lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
        }
        /// Uniform in 0..n.
        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
        /// True with probability p.
        pub fn chance(&mut self, p: f64) -> bool {
            self.unit() < p
        }
        /// True with probability p (alias).
        pub fn coin(&mut self, p: f64) -> bool {
            self.chance(p)
        }
    }
}
