//! Next-token choice: greedy, or seeded temperature / top-k / top-p sampling.

/// How to pick the next token from a row of logits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = no limit).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability mass reaches p (1 = no limit).
    pub top_p: f32,
    /// Seed of the sampler's random stream.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A stateful sampler (its random stream advances with every draw).
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplerConfig,
    state: u64,
}

/// Index of the largest logit (lowest index on ties); `None` for an empty row.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        match best {
            Some((_, b)) if v <= b || v.is_nan() => {}
            _ => best = Some((i, v)),
        }
    }
    best.map(|(i, _)| i as u32)
}

impl Sampler {
    /// A sampler with its own random stream.
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let state = cfg.seed ^ 0x9E37_79B9_7F4A_7C15;
        Sampler { cfg, state }
    }

    /// SplitMix64 step → uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Pick the next token from `logits`.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let greedy = argmax(logits).unwrap_or(0);
        if self.cfg.temperature <= 0.0 || logits.len() <= 1 {
            return greedy;
        }
        // candidates sorted by logit (descending, index as tie-break for determinism)
        let mut idx: Vec<u32> = (0..logits.len() as u32)
            .filter(|&i| logits[i as usize].is_finite())
            .collect();
        if idx.is_empty() {
            return greedy;
        }
        idx.sort_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        if self.cfg.top_k > 0 && idx.len() > self.cfg.top_k {
            idx.truncate(self.cfg.top_k);
        }
        let t = self.cfg.temperature as f64;
        let m = logits[idx[0] as usize] as f64;
        let mut p: Vec<f64> = idx
            .iter()
            .map(|&i| ((logits[i as usize] as f64 - m) / t).exp())
            .collect();
        let z: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v /= z);
        if self.cfg.top_p < 1.0 {
            let mut mass = 0.0;
            let mut keep = p.len();
            for (i, v) in p.iter().enumerate() {
                mass += v;
                if mass >= self.cfg.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            p.truncate(keep);
            idx.truncate(keep);
            let z: f64 = p.iter().sum();
            p.iter_mut().for_each(|v| *v /= z);
        }
        let u = self.uniform();
        let mut c = 0.0;
        for (i, v) in p.iter().enumerate() {
            c += v;
            if u < c {
                return idx[i];
            }
        }
        *idx.last().unwrap_or(&greedy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax() {
        let mut s = Sampler::new(SamplerConfig::default());
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 3.0]), 1);
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn top_k_one_is_greedy_and_seeds_reproduce() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 1,
            top_p: 1.0,
            seed: 5,
        });
        for _ in 0..20 {
            assert_eq!(s.sample(&logits), argmax(&logits).unwrap());
        }
        let cfg = SamplerConfig {
            temperature: 0.8,
            top_k: 10,
            top_p: 0.9,
            seed: 42,
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(cfg.clone());
            (0..30).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(cfg);
            (0..30).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn sampling_frequencies_follow_the_softmax() {
        // two tokens with logits 0 and ln 3: probabilities 1/4 and 3/4 at temperature 1
        let logits = [0.0f32, 3.0f32.ln()];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 1,
        });
        let n = 40_000;
        let ones = (0..n).filter(|_| s.sample(&logits) == 1).count() as f64 / n as f64;
        // binomial standard deviation √(pq/n) ≈ 0.0022; allow 5σ
        let sd = (0.75f64 * 0.25 / n as f64).sqrt();
        assert!((ones - 0.75).abs() < 5.0 * sd, "{ones}");
    }

    #[test]
    fn top_p_cuts_the_tail() {
        // probabilities ≈ 0.665, 0.245, 0.09: top_p = 0.6 keeps only the first
        let logits = [2.0f32, 1.0, 0.0];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.6,
            seed: 3,
        });
        for _ in 0..100 {
            assert_eq!(s.sample(&logits), 0);
        }
    }
}
