//! Fading multiple-access channels: K devices with N_t antennas each, an access point with N_r.
//! A realisation is one matrix H_k (N_r × N_t) per device, `sqrt(gain_k) · R_r^{1/2} G_k R_t^{1/2}`
//! with G_k the small-scale fading (Rayleigh or Rician), R the exponential spatial correlations
//! and gain_k the large-scale gain (path loss and shadowing). Configs are plain serde data; the
//! random state lives apart (every draw from a [`crate::rng`] stream).

use crate::{CMat, C64};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Errors in channel parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChannelError {
    /// A parameter is out of its physical range.
    #[error("channel parameter '{field}' = {value}: {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// Value given.
        value: f64,
        /// What is expected.
        reason: &'static str,
    },
}

fn check(
    field: &'static str,
    value: f64,
    ok: bool,
    reason: &'static str,
) -> Result<(), ChannelError> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(ChannelError::Invalid {
            field,
            value,
            reason,
        })
    }
}

/// A circularly-symmetric complex Gaussian sample CN(0, 1).
pub fn cn01<R: rand::Rng + ?Sized>(rng: &mut R) -> C64 {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let re: f64 = StandardNormal.sample(rng);
    let im: f64 = StandardNormal.sample(rng);
    C64::new(re * s, im * s)
}

/// An `r × c` matrix of i.i.d. CN(0, 1) entries.
pub fn cn_matrix<R: rand::Rng + ?Sized>(r: usize, c: usize, rng: &mut R) -> CMat {
    CMat::from_fn(r, c, |_, _| cn01(rng))
}

/// Response of a uniform linear array of `n` elements with spacing `spacing` wavelengths to a
/// plane wave from angle `theta_rad` (from broadside): `a_i = exp(j 2π spacing i sin θ)`.
pub fn ula_response(n: usize, spacing: f64, theta_rad: f64) -> CMat {
    CMat::from_fn(n, 1, |i, _| {
        C64::from_polar(
            1.0,
            2.0 * std::f64::consts::PI * spacing * i as f64 * theta_rad.sin(),
        )
    })
}

/// Square root (Cholesky factor) of the exponential correlation matrix `R_ij = ρ^|i−j|`.
pub fn exp_correlation_sqrt(n: usize, rho: f64) -> Result<CMat, ChannelError> {
    check(
        "correlation",
        rho,
        (0.0..1.0).contains(&rho),
        "must be in [0, 1)",
    )?;
    let r = nalgebra::DMatrix::<f64>::from_fn(n, n, |i, j| rho.powi((i as i32 - j as i32).abs()));
    let l = nalgebra::Cholesky::new(r)
        .ok_or(ChannelError::Invalid {
            field: "correlation",
            value: rho,
            reason: "not positive definite",
        })?
        .l();
    Ok(l.map(|v| C64::new(v, 0.0)))
}

/// Small-scale fading model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum SmallScale {
    /// i.i.d. CN(0, 1) entries.
    Rayleigh,
    /// Rician: `sqrt(K/(K+1))·a_r(θ_k) a_t(φ_k)ᴴ + sqrt(1/(K+1))·G`, ULAs with half-wavelength
    /// spacing, device k's arrival angle `aoa_deg[k]` (default: spread evenly over ±60°).
    Rician {
        /// K-factor in dB (power of the line of sight over the scattered power).
        k_factor_db: f64,
        /// Angle of arrival per device at the AP, degrees from broadside.
        #[serde(default)]
        aoa_deg: Vec<f64>,
    },
}

/// 3GPP TR 38.901 Table 7.4.1-1 path-loss scenarios (frequency in GHz, distance in m).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// UMi street canyon, line of sight (single slope, below the breakpoint), σ_SF = 4 dB.
    UmiLos,
    /// UMi street canyon, non-line of sight, σ_SF = 7.82 dB.
    UmiNlos,
    /// Indoor hotspot office, line of sight, σ_SF = 3 dB.
    InhLos,
    /// Indoor hotspot office, non-line of sight, σ_SF = 8.03 dB.
    InhNlos,
}

impl Scenario {
    /// Path loss in dB at 3-D distance `d_m` and carrier `fc_ghz` (UT height 1.5 m).
    pub fn path_loss_db(self, d_m: f64, fc_ghz: f64) -> f64 {
        let d = d_m.max(1.0);
        let umi_los = 32.4 + 21.0 * d.log10() + 20.0 * fc_ghz.log10();
        let inh_los = 32.4 + 17.3 * d.log10() + 20.0 * fc_ghz.log10();
        match self {
            Scenario::UmiLos => umi_los,
            Scenario::UmiNlos => umi_los.max(35.3 * d.log10() + 22.4 + 21.3 * fc_ghz.log10()),
            Scenario::InhLos => inh_los,
            Scenario::InhNlos => inh_los.max(38.3 * d.log10() + 17.30 + 24.9 * fc_ghz.log10()),
        }
    }

    /// Shadow-fading standard deviation in dB.
    pub fn shadowing_db(self) -> f64 {
        match self {
            Scenario::UmiLos => 4.0,
            Scenario::UmiNlos => 7.82,
            Scenario::InhLos => 3.0,
            Scenario::InhNlos => 8.03,
        }
    }
}

/// Large-scale gain of each device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum LargeScale {
    /// Every device at gain 1 (SNR set by the noise variance alone).
    Unit,
    /// Given gains in dB.
    Fixed {
        /// One gain per device, dB.
        gains_db: Vec<f64>,
    },
    /// Log-distance path loss `PL(d) = pl0_db + 10·exponent·log10(d/d0_m)` plus log-normal
    /// shadowing, from device positions (metres) relative to the AP at the origin.
    LogDistance {
        /// Path loss at the reference distance, dB.
        pl0_db: f64,
        /// Reference distance, m.
        d0_m: f64,
        /// Path-loss exponent.
        exponent: f64,
        /// Shadowing standard deviation, dB.
        shadowing_db: f64,
        /// Device distances to the AP, m.
        distances_m: Vec<f64>,
    },
    /// A 3GPP scenario.
    Gpp {
        /// The scenario.
        scenario: Scenario,
        /// Carrier frequency, GHz.
        fc_ghz: f64,
        /// Device distances to the AP, m.
        distances_m: Vec<f64>,
    },
}

impl LargeScale {
    /// Linear gains of `k` devices (shadowing drawn from `rng`).
    pub fn gains<R: rand::Rng + ?Sized>(
        &self,
        k: usize,
        rng: &mut R,
    ) -> Result<Vec<f64>, ChannelError> {
        let db = |v: f64| 10f64.powf(v / 10.0);
        let check_len = |n: usize| {
            check(
                "distances_m / gains_db (length)",
                n as f64,
                n == k,
                "one value per device",
            )
        };
        match self {
            LargeScale::Unit => Ok(vec![1.0; k]),
            LargeScale::Fixed { gains_db } => {
                check_len(gains_db.len())?;
                gains_db
                    .iter()
                    .map(|&g| check("gains_db", g, true, "must be finite").map(|_| db(g)))
                    .collect()
            }
            LargeScale::LogDistance {
                pl0_db,
                d0_m,
                exponent,
                shadowing_db,
                distances_m,
            } => {
                check_len(distances_m.len())?;
                check("d0_m", *d0_m, *d0_m > 0.0, "must be positive")?;
                check(
                    "exponent",
                    *exponent,
                    *exponent >= 0.0,
                    "must be non-negative",
                )?;
                check(
                    "shadowing_db",
                    *shadowing_db,
                    *shadowing_db >= 0.0,
                    "must be non-negative",
                )?;
                distances_m
                    .iter()
                    .map(|&d| {
                        check("distances_m", d, d > 0.0, "must be positive")?;
                        let z: f64 = StandardNormal.sample(rng);
                        Ok(db(-(pl0_db
                            + 10.0 * exponent * (d / d0_m).log10()
                            + shadowing_db * z)))
                    })
                    .collect()
            }
            LargeScale::Gpp {
                scenario,
                fc_ghz,
                distances_m,
            } => {
                check_len(distances_m.len())?;
                check("fc_ghz", *fc_ghz, *fc_ghz > 0.0, "must be positive")?;
                distances_m
                    .iter()
                    .map(|&d| {
                        check("distances_m", d, d > 0.0, "must be positive")?;
                        let z: f64 = StandardNormal.sample(rng);
                        Ok(db(
                            -(scenario.path_loss_db(d, *fc_ghz) + scenario.shadowing_db() * z)
                        ))
                    })
                    .collect()
            }
        }
    }
}

/// Thermal noise power in dBm: −174 dBm/Hz + 10·log10(B) + noise figure.
pub fn noise_power_dbm(bandwidth_hz: f64, noise_figure_db: f64) -> Result<f64, ChannelError> {
    check(
        "bandwidth_hz",
        bandwidth_hz,
        bandwidth_hz > 0.0,
        "must be positive",
    )?;
    check(
        "noise_figure_db",
        noise_figure_db,
        noise_figure_db >= 0.0,
        "must be non-negative",
    )?;
    Ok(-174.0 + 10.0 * bandwidth_hz.log10() + noise_figure_db)
}

/// A fading multiple-access channel: K devices × N_t antennas → AP with N_r antennas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacConfig {
    /// Number of devices K.
    pub devices: usize,
    /// AP antennas N_r.
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    #[serde(default = "one")]
    pub tx_antennas: usize,
    /// Small-scale fading.
    pub small_scale: SmallScale,
    /// Exponential correlation coefficient between adjacent AP antennas (0 = independent).
    #[serde(default)]
    pub rx_correlation: f64,
    /// Exponential correlation coefficient between adjacent device antennas.
    #[serde(default)]
    pub tx_correlation: f64,
}

fn one() -> usize {
    1
}

/// A ready-to-sample MAC (validated config, correlation factors, LoS components).
#[derive(Debug, Clone)]
pub struct Mac {
    /// The configuration.
    pub cfg: MacConfig,
    rx_sqrt: CMat,
    tx_sqrt: CMat,
    los: Vec<Option<(f64, CMat)>>, // per device: (LoS weight sqrt(K/(K+1)), a_r a_tᴴ)
    nlos_weight: f64,
}

impl Mac {
    /// Validate `cfg` and precompute what every realisation shares.
    pub fn new(cfg: MacConfig) -> Result<Mac, ChannelError> {
        check(
            "devices",
            cfg.devices as f64,
            cfg.devices > 0,
            "need at least one device",
        )?;
        check(
            "rx_antennas",
            cfg.rx_antennas as f64,
            cfg.rx_antennas > 0,
            "need at least one antenna",
        )?;
        check(
            "tx_antennas",
            cfg.tx_antennas as f64,
            cfg.tx_antennas > 0,
            "need at least one antenna",
        )?;
        let rx_sqrt = exp_correlation_sqrt(cfg.rx_antennas, cfg.rx_correlation)?;
        let tx_sqrt = exp_correlation_sqrt(cfg.tx_antennas, cfg.tx_correlation)?;
        let (los, nlos_weight) = match &cfg.small_scale {
            SmallScale::Rayleigh => (vec![None; cfg.devices], 1.0),
            SmallScale::Rician {
                k_factor_db,
                aoa_deg,
            } => {
                check("k_factor_db", *k_factor_db, true, "must be finite")?;
                if !aoa_deg.is_empty() && aoa_deg.len() != cfg.devices {
                    return Err(ChannelError::Invalid {
                        field: "aoa_deg (length)",
                        value: aoa_deg.len() as f64,
                        reason: "one angle per device",
                    });
                }
                let k = 10f64.powf(k_factor_db / 10.0);
                let los = (0..cfg.devices)
                    .map(|d| {
                        let deg = aoa_deg.get(d).copied().unwrap_or(if cfg.devices == 1 {
                            0.0
                        } else {
                            -60.0 + 120.0 * d as f64 / (cfg.devices - 1) as f64
                        });
                        let ar = ula_response(cfg.rx_antennas, 0.5, deg.to_radians());
                        let at = ula_response(cfg.tx_antennas, 0.5, (deg * 0.5).to_radians());
                        Some(((k / (k + 1.0)).sqrt(), &ar * at.adjoint()))
                    })
                    .collect();
                (los, (1.0 / (k + 1.0)).sqrt())
            }
        };
        Ok(Mac {
            cfg,
            rx_sqrt,
            tx_sqrt,
            los,
            nlos_weight,
        })
    }

    /// Small-scale realisation of every device (unit average power per entry).
    pub fn small_scale<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<CMat> {
        (0..self.cfg.devices)
            .map(|k| {
                self.compose(
                    k,
                    cn_matrix(self.cfg.rx_antennas, self.cfg.tx_antennas, rng),
                )
            })
            .collect()
    }

    /// Combine an i.i.d. CN(0,1) matrix `g` into device k's channel (correlation and LoS).
    pub fn compose(&self, k: usize, g: CMat) -> CMat {
        let scattered = &self.rx_sqrt * g * self.tx_sqrt.adjoint();
        match &self.los[k] {
            None => scattered,
            Some((w, h_los)) => {
                h_los * C64::new(*w, 0.0) + scattered * C64::new(self.nlos_weight, 0.0)
            }
        }
    }

    /// A full realisation: small scale times `sqrt(gain_k)`.
    pub fn realise<R: rand::Rng + ?Sized>(&self, gains: &[f64], rng: &mut R) -> Vec<CMat> {
        self.small_scale(rng)
            .into_iter()
            .zip(gains)
            .map(|(h, g)| h * C64::new(g.sqrt(), 0.0))
            .collect()
    }
}

/// Device-to-device links among K devices with N antennas each, placed at `positions_m`
/// (x, y in metres). Each unordered pair {i, j} gets one large-scale gain from `large_scale`
/// evaluated at their distance (for [`LargeScale::Fixed`]: K(K−1)/2 gains in pair order
/// (0,1), (0,2), …, (1,2), …) and one small-scale matrix; links are reciprocal,
/// `H_{j←i} = H_{i←j}ᵀ` (TDD). Rician pairs use ULAs along the x axis with the geometric
/// angle between the two devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D2dConfig {
    /// Device positions, m.
    pub positions_m: Vec<[f64; 2]>,
    /// Antennas per device.
    #[serde(default = "one")]
    pub antennas: usize,
    /// Small-scale fading (for Rician, `aoa_deg` must be empty: angles come from positions).
    pub small_scale: SmallScale,
    /// Large-scale model, evaluated per pair (distances from positions).
    pub large_scale: LargeScale,
}

/// One realisation of every D2D link.
#[derive(Debug, Clone)]
pub struct D2dLinks {
    /// `h[i][j]`: channel from device j to device i (N × N); zero on the diagonal.
    pub h: Vec<Vec<CMat>>,
    /// Large-scale gain of each ordered pair (symmetric; 0 on the diagonal).
    pub gain: Vec<Vec<f64>>,
}

impl D2dConfig {
    /// Draw one realisation (shadowing and fading from `rng`).
    pub fn realise<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Result<D2dLinks, ChannelError> {
        let k = self.positions_m.len();
        check(
            "positions_m (devices)",
            k as f64,
            k >= 2,
            "need at least two devices",
        )?;
        check(
            "antennas",
            self.antennas as f64,
            self.antennas > 0,
            "need at least one antenna",
        )?;
        for p in &self.positions_m {
            check("positions_m", p[0], p[1].is_finite(), "must be finite")?;
        }
        let pairs: Vec<(usize, usize)> = (0..k)
            .flat_map(|i| (i + 1..k).map(move |j| (i, j)))
            .collect();
        let dist: Vec<f64> = pairs
            .iter()
            .map(|&(i, j)| {
                let (a, b) = (self.positions_m[i], self.positions_m[j]);
                (a[0] - b[0]).hypot(a[1] - b[1])
            })
            .collect();
        let per_pair = match &self.large_scale {
            LargeScale::LogDistance {
                pl0_db,
                d0_m,
                exponent,
                shadowing_db,
                ..
            } => LargeScale::LogDistance {
                pl0_db: *pl0_db,
                d0_m: *d0_m,
                exponent: *exponent,
                shadowing_db: *shadowing_db,
                distances_m: dist.clone(),
            },
            LargeScale::Gpp {
                scenario, fc_ghz, ..
            } => LargeScale::Gpp {
                scenario: *scenario,
                fc_ghz: *fc_ghz,
                distances_m: dist.clone(),
            },
            other => other.clone(),
        };
        let g = per_pair.gains(pairs.len(), rng)?;
        let n = self.antennas;
        let kf = match &self.small_scale {
            SmallScale::Rayleigh => None,
            SmallScale::Rician {
                k_factor_db,
                aoa_deg,
            } => {
                check("k_factor_db", *k_factor_db, true, "must be finite")?;
                if !aoa_deg.is_empty() {
                    return Err(ChannelError::Invalid {
                        field: "aoa_deg (length)",
                        value: aoa_deg.len() as f64,
                        reason: "D2D angles come from the positions; leave aoa_deg empty",
                    });
                }
                Some(10f64.powf(k_factor_db / 10.0))
            }
        };
        let mut h = vec![vec![CMat::zeros(n, n); k]; k];
        let mut gain = vec![vec![0.0; k]; k];
        for (&(i, j), &gij) in pairs.iter().zip(&g) {
            let mut m = cn_matrix(n, n, rng);
            if let Some(kf) = kf {
                let (a, b) = (self.positions_m[i], self.positions_m[j]);
                // angle of the i→j direction from the x-axis array's broadside (the y axis)
                let theta = (b[0] - a[0]).atan2(b[1] - a[1]);
                let ai = ula_response(n, 0.5, theta);
                let aj = ula_response(n, 0.5, -theta);
                m = (&ai * aj.transpose()) * C64::new((kf / (kf + 1.0)).sqrt(), 0.0)
                    + m * C64::new((1.0 / (kf + 1.0)).sqrt(), 0.0);
            }
            let m = m * C64::new(gij.sqrt(), 0.0);
            h[j][i] = m.transpose();
            h[i][j] = m;
            gain[i][j] = gij;
            gain[j][i] = gij;
        }
        Ok(D2dLinks { h, gain })
    }
}

/// Bessel function of the first kind, order 0 (power series for |x| ≤ 8, Hankel asymptotic
/// expansion beyond; absolute error < 1e-8).
pub fn bessel_j0(x: f64) -> f64 {
    let ax = x.abs();
    if ax <= 8.0 {
        let q = -(x * x) / 4.0;
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        for k in 1..60 {
            term *= q / (k * k) as f64;
            sum += term;
            if term.abs() < 1e-17 * sum.abs().max(1e-300) {
                break;
            }
        }
        sum
    } else {
        // J0(x) ≈ sqrt(2/(πx)) (P cos χ − Q sin χ), χ = x − π/4
        let z = 8.0 / ax;
        let z2 = z * z;
        let p = 1.0
            + z2 * (-0.1098628627e-2
                + z2 * (0.2734510407e-4 + z2 * (-0.2073370639e-5 + z2 * 0.2093887211e-6)));
        let q = -0.1562499995e-1
            + z2 * (0.1430488765e-3
                + z2 * (-0.6911147651e-5 + z2 * (0.7621095161e-6 - z2 * 0.934935152e-7)));
        let chi = ax - std::f64::consts::FRAC_PI_4;
        (2.0 / (std::f64::consts::PI * ax)).sqrt() * (p * chi.cos() - z * q * chi.sin())
    }
}

/// Time evolution of the small-scale fading: block fading (a new independent realisation every
/// `coherence_time_s`) or Gauss–Markov with the Jakes correlation ρ(τ) = J₀(2π f_D τ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeModel {
    /// Constant within blocks of the coherence time, independent across blocks.
    Block {
        /// Coherence time, s.
        coherence_time_s: f64,
    },
    /// First-order Gauss–Markov process whose lag-τ correlation is J₀(2π f_D τ).
    Jakes {
        /// Maximum Doppler frequency f_D, Hz.
        doppler_hz: f64,
    },
}

/// The i.i.d. part of a MAC's fading as a process in simulated time: `at(t)` gives the channel
/// at time t (times must not decrease).
#[derive(Debug, Clone)]
pub struct FadingProcess {
    model: TimeModel,
    time_s: f64,
    block: i64,
    g: Vec<CMat>,
}

impl FadingProcess {
    /// Start at t = 0 with i.i.d. CN(0,1) matrices of the MAC's shape.
    pub fn new<R: rand::Rng + ?Sized>(
        mac: &Mac,
        model: TimeModel,
        rng: &mut R,
    ) -> Result<FadingProcess, ChannelError> {
        match model {
            TimeModel::Block { coherence_time_s } => check(
                "coherence_time_s",
                coherence_time_s,
                coherence_time_s > 0.0,
                "must be positive",
            )?,
            TimeModel::Jakes { doppler_hz } => check(
                "doppler_hz",
                doppler_hz,
                doppler_hz >= 0.0,
                "must be non-negative",
            )?,
        }
        let g = (0..mac.cfg.devices)
            .map(|_| cn_matrix(mac.cfg.rx_antennas, mac.cfg.tx_antennas, rng))
            .collect();
        Ok(FadingProcess {
            model,
            time_s: 0.0,
            block: 0,
            g,
        })
    }

    /// Advance to time `t_s` and return the i.i.d. matrices there (compose with [`Mac::compose`]).
    pub fn at<R: rand::Rng + ?Sized>(&mut self, t_s: f64, rng: &mut R) -> &[CMat] {
        let t_s = t_s.max(self.time_s);
        match self.model {
            TimeModel::Block { coherence_time_s } => {
                let b = (t_s / coherence_time_s).floor() as i64;
                if b != self.block {
                    for g in &mut self.g {
                        *g = cn_matrix(g.nrows(), g.ncols(), rng);
                    }
                    self.block = b;
                }
            }
            TimeModel::Jakes { doppler_hz } => {
                let tau = t_s - self.time_s;
                if tau > 0.0 {
                    let rho = bessel_j0(2.0 * std::f64::consts::PI * doppler_hz * tau);
                    let w = (1.0 - rho * rho).max(0.0).sqrt();
                    for g in &mut self.g {
                        let (r, c) = (g.nrows(), g.ncols());
                        *g = &*g * C64::new(rho, 0.0) + cn_matrix(r, c, rng) * C64::new(w, 0.0);
                    }
                }
            }
        }
        self.time_s = t_s;
        &self.g
    }
}

/// Imperfect CSI: the estimate `Ĥ = H + E`, E with i.i.d. CN(0, `error_var`) entries.
pub fn estimate<R: rand::Rng + ?Sized>(
    h: &CMat,
    error_var: f64,
    rng: &mut R,
) -> Result<CMat, ChannelError> {
    check(
        "csi_error_var",
        error_var,
        error_var >= 0.0,
        "must be non-negative",
    )?;
    Ok(h + cn_matrix(h.nrows(), h.ncols(), rng) * C64::new(error_var.sqrt(), 0.0))
}

/// Error variance of a least-squares channel estimate from `pilots` orthogonal pilot symbols
/// at linear pilot SNR `snr`: σ_e² = 1 / (pilots · snr).
pub fn pilot_error_var(pilots: usize, snr: f64) -> Result<f64, ChannelError> {
    check(
        "pilots",
        pilots as f64,
        pilots > 0,
        "need at least one pilot",
    )?;
    check("pilot_snr", snr, snr > 0.0, "must be positive")?;
    Ok(1.0 / (pilots as f64 * snr))
}

/// A uniform random number helper for tests and callers without `rand` in scope.
pub fn uniform<R: rand::Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn rayleigh_power_is_exponential_with_mean_one() {
        let mac = Mac::new(MacConfig {
            devices: 4,
            rx_antennas: 4,
            tx_antennas: 2,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .unwrap();
        let mut rng = stream(1, &[1]);
        let mut p = Vec::new();
        for _ in 0..5000 {
            for h in mac.small_scale(&mut rng) {
                p.extend(h.iter().map(|v| v.norm_sqr()));
            }
        }
        let n = p.len() as f64;
        let mean = p.iter().sum::<f64>() / n;
        // Monte-Carlo: Exp(1) has σ = 1, so 5 standard errors of the mean over n draws
        // (n = 5000·4·4·2 = 160 000 i.i.d. entries; was a bare 0.01 = 4 SE)
        assert!((mean - 1.0).abs() < 5.0 / n.sqrt(), "mean {mean}");
        // exponential: P(|h|² > x) = e^{−x}; check at x = 0.5, 1, 2, 3 (binomial 5σ)
        for x in [0.5f64, 1.0, 2.0, 3.0] {
            let frac = p.iter().filter(|&&v| v > x).count() as f64 / n;
            let want = (-x).exp();
            assert!(
                (frac - want).abs() < 5.0 * (want * (1.0 - want) / n).sqrt(),
                "x={x}: {frac} vs {want}"
            );
        }
    }

    #[test]
    fn rician_k_factor_is_recovered_from_moments() {
        for k_db in [0.0f64, 6.0, 10.0] {
            let mac = Mac::new(MacConfig {
                devices: 1,
                rx_antennas: 1,
                tx_antennas: 1,
                small_scale: SmallScale::Rician {
                    k_factor_db: k_db,
                    aoa_deg: vec![20.0],
                },
                rx_correlation: 0.0,
                tx_correlation: 0.0,
            })
            .unwrap();
            let mut rng = stream(2, &[k_db as u64]);
            let s: Vec<f64> = (0..200_000)
                .map(|_| mac.small_scale(&mut rng)[0][(0, 0)].norm_sqr())
                .collect();
            let n = s.len() as f64;
            let m2 = s.iter().sum::<f64>() / n;
            let m4 = s.iter().map(|v| v * v).sum::<f64>() / n;
            // moment estimator: K = sqrt(2 m2² − m4) / (m2 − sqrt(2 m2² − m4))
            let a = (2.0 * m2 * m2 - m4).max(0.0).sqrt();
            let k_est = a / (m2 - a);
            let k = 10f64.powf(k_db / 10.0);
            // Monte-Carlo: Var|h|² = (1+2K)/(1+K)² ≤ 3/4, SE ≤ 0.0019 at n = 2e5: ≥ 5.2 SE
            assert!((m2 - 1.0).abs() < 0.01);
            // delta method on (m2, m4) with the Rician moments: rel. SE of K̂ is 1.16 % (0 dB),
            // 0.49 % (6 dB), 0.38 % (10 dB) at n = 2e5, so 0.08 is ≥ 6.9 SE
            assert!((k_est / k - 1.0).abs() < 0.08, "K {k} estimated {k_est}");
        }
    }

    #[test]
    fn bessel_j0_matches_tables() {
        // Abramowitz & Stegun Table 9.1 and its zeros
        for (x, want) in [
            (0.0, 1.0),
            (1.0, 0.7651976866),
            (2.0, 0.2238907791),
            (5.0, -0.1775967713),
            (10.0, -0.2459357645),
            (20.0, 0.1670246643),
        ] {
            // table values to 10 digits; bessel_j0's documented error < 1e-8 (the Hankel fit
            // beyond 8): 10× that
            assert!(
                (bessel_j0(x) - want).abs() < 1e-7,
                "J0({x}) = {}",
                bessel_j0(x)
            );
        }
        // the first zero to f64 digits; the power series is exact to rounding: the documented 1e-8
        assert!(bessel_j0(2.404825557695773).abs() < 1e-8);
    }

    #[test]
    fn jakes_time_correlation_follows_j0() {
        let mac = Mac::new(MacConfig {
            devices: 200,
            rx_antennas: 4,
            tx_antennas: 1,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .unwrap();
        let fd = 100.0;
        for tau in [0.5e-3, 1e-3, 2e-3, 4e-3] {
            let mut rng = stream(3, &[(tau * 1e6) as u64]);
            let mut acc = C64::new(0.0, 0.0);
            let mut n = 0.0;
            for _ in 0..25 {
                let mut p = FadingProcess::new(&mac, TimeModel::Jakes { doppler_hz: fd }, &mut rng)
                    .unwrap();
                let h0: Vec<CMat> = p.at(0.0, &mut rng).to_vec();
                let h1: Vec<CMat> = p.at(tau, &mut rng).to_vec();
                for (a, b) in h0.iter().zip(&h1) {
                    for (x, y) in a.iter().zip(b.iter()) {
                        acc += y * x.conj();
                        n += 1.0;
                    }
                }
            }
            let rho = acc.re / n;
            let want = bessel_j0(2.0 * std::f64::consts::PI * fd * tau);
            // Monte-Carlo: n = 25·200·4 = 20 000 pairs, Var Re(y x*) = (1+ρ²)/2 ≤ 1, SE ≤ 0.0071:
            // 0.03 ≥ 4.2 SE
            assert!((rho - want).abs() < 0.03, "tau {tau}: {rho} vs {want}");
        }
    }

    #[test]
    fn block_fading_is_constant_within_a_block_and_changes_across() {
        let mac = Mac::new(MacConfig {
            devices: 2,
            rx_antennas: 2,
            tx_antennas: 1,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .unwrap();
        let mut rng = stream(4, &[]);
        let mut p = FadingProcess::new(
            &mac,
            TimeModel::Block {
                coherence_time_s: 1e-3,
            },
            &mut rng,
        )
        .unwrap();
        let a = p.at(0.1e-3, &mut rng).to_vec();
        let b = p.at(0.9e-3, &mut rng).to_vec();
        let c = p.at(1.1e-3, &mut rng).to_vec();
        assert_eq!(a, b);
        assert_ne!(b, c);
    }

    #[test]
    fn path_loss_slope_and_noise_power() {
        let ls = LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.5,
            shadowing_db: 0.0,
            distances_m: vec![10.0, 100.0],
        };
        let g = ls.gains(2, &mut stream(5, &[])).unwrap();
        let slope = 10.0 * (g[0] / g[1]).log10();
        // closed form, exact up to f64 rounding of powf/log10 (~1e-14)
        assert!((slope - 35.0).abs() < 1e-9, "10·n dB per decade: {slope}");
        // with shadowing: regression of 2000 draws recovers the exponent
        let d: Vec<f64> = (0..2000).map(|i| 5.0 + i as f64 * 0.25).collect();
        let ls = LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.0,
            shadowing_db: 6.0,
            distances_m: d.clone(),
        };
        let g = ls.gains(d.len(), &mut stream(6, &[])).unwrap();
        let xs: Vec<f64> = d.iter().map(|v| v.log10()).collect();
        let ys: Vec<f64> = g.iter().map(|v| -10.0 * v.log10()).collect();
        let (mx, my) = (
            xs.iter().sum::<f64>() / xs.len() as f64,
            ys.iter().sum::<f64>() / ys.len() as f64,
        );
        let b = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (x - mx) * (y - my))
            .sum::<f64>()
            / xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>();
        // Monte-Carlo: least-squares slope SE = σ_sh/√Σ(x−x̄)² = 6 dB/√297 → 0.035 in the
        // exponent; 0.15 ≈ 4.3 SE
        assert!(
            (b / 10.0 - 3.0).abs() < 0.15,
            "fitted exponent {}",
            b / 10.0
        );
        // 3GPP InH LOS at 10 m, 3.5 GHz: 32.4 + 17.3 + 20·log10(3.5) (closed form, f64 rounding)
        assert!(
            (Scenario::InhLos.path_loss_db(10.0, 3.5) - (32.4 + 17.3 + 20.0 * 3.5f64.log10()))
                .abs()
                < 1e-9
        );
        assert!(
            Scenario::UmiNlos.path_loss_db(100.0, 3.5) >= Scenario::UmiLos.path_loss_db(100.0, 3.5)
        );
        // −174 dBm/Hz + 70 dB (10 MHz) + 7 dB (closed form, f64 rounding)
        assert!((noise_power_dbm(10e6, 7.0).unwrap() - (-97.0)).abs() < 1e-9);
    }

    #[test]
    fn spatial_correlation_is_exponential() {
        let mac = Mac::new(MacConfig {
            devices: 1,
            rx_antennas: 3,
            tx_antennas: 1,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.7,
            tx_correlation: 0.0,
        })
        .unwrap();
        let mut rng = stream(7, &[]);
        let mut c01 = C64::new(0.0, 0.0);
        let mut c02 = C64::new(0.0, 0.0);
        let n = 60_000;
        for _ in 0..n {
            let h = &mac.small_scale(&mut rng)[0];
            c01 += h[(0, 0)] * h[(1, 0)].conj();
            c02 += h[(0, 0)] * h[(2, 0)].conj();
        }
        // Monte-Carlo: Var Re(h_i h_j*) = (1+ρ²)/2 over n = 60 000 draws: SE 0.0035 (ρ = 0.7)
        // and 0.0032 (ρ = 0.49), so 0.02 ≥ 5.7 SE
        assert!((c01.re / n as f64 - 0.7).abs() < 0.02);
        assert!((c02.re / n as f64 - 0.49).abs() < 0.02);
    }

    #[test]
    fn invalid_parameters_are_errors() {
        let base = MacConfig {
            devices: 2,
            rx_antennas: 2,
            tx_antennas: 1,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        };
        assert!(Mac::new(MacConfig {
            devices: 0,
            ..base.clone()
        })
        .is_err());
        assert!(Mac::new(MacConfig {
            rx_antennas: 0,
            ..base.clone()
        })
        .is_err());
        assert!(Mac::new(MacConfig {
            rx_correlation: 1.5,
            ..base.clone()
        })
        .is_err());
        assert!(Mac::new(MacConfig {
            small_scale: SmallScale::Rician {
                k_factor_db: f64::NAN,
                aoa_deg: vec![]
            },
            ..base.clone()
        })
        .is_err());
        assert!(noise_power_dbm(-1.0, 5.0).is_err());
        assert!(noise_power_dbm(f64::NAN, 5.0).is_err());
        assert!(pilot_error_var(0, 10.0).is_err());
        let ls = LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.0,
            shadowing_db: 0.0,
            distances_m: vec![10.0],
        };
        assert!(ls.gains(2, &mut stream(0, &[])).is_err(), "length mismatch");
        let ls = LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.0,
            shadowing_db: 0.0,
            distances_m: vec![-1.0],
        };
        assert!(ls.gains(1, &mut stream(0, &[])).is_err());
        let toml_like = r#"{"devices": 2, "rx_antennas": 4, "small_scale": {"model": "rician", "k_factor_db": 3.0}, "bogus": 1}"#;
        assert!(
            serde_json::from_str::<MacConfig>(toml_like).is_err(),
            "unknown keys are errors"
        );
    }
}

/// Channel realisations from a file: NumPy `.npy` (complex64 or complex128, little- or
/// big-endian, C or Fortran order, shape (R, K, N_r, N_t); read with `npyz`) or JSON of the same
/// nesting with complex numbers as `[re, im]`. Returns R realisations of K matrices.
pub fn load_channels(path: &std::path::Path) -> Result<Vec<Vec<CMat>>, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    if bytes.starts_with(b"\x93NUMPY") {
        parse_npy(&bytes).map_err(|e| format!("{name}: {e}"))
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{name}: not .npy, and not JSON ({e})"))?;
        parse_json(&v).map_err(|e| format!("{name}: {e}"))
    }
}

/// Writes R realisations of K equally sized N_r × N_t channel matrices as NumPy `.npy`:
/// complex128 (`'<c16'`), C order, shape (R, K, N_r, N_t) — the layout [`load_channels`] reads
/// and `numpy.load` returns.
pub fn save_channels_npy(path: &std::path::Path, channels: &[Vec<CMat>]) -> Result<(), String> {
    use npyz::WriterBuilder;
    let name = path.display();
    let (r, k) = (channels.len(), channels.first().map_or(0, Vec::len));
    let (nr, nt) = channels
        .first()
        .and_then(|d| d.first())
        .map_or((0, 0), |m| m.shape());
    if r == 0 || k == 0 || nr == 0 || nt == 0 {
        return Err(format!(
            "{name}: nothing to write ({r} realisations of {k} devices, {nr} × {nt})"
        ));
    }
    for (ri, devs) in channels.iter().enumerate() {
        if devs.len() != k {
            return Err(format!(
                "{name}: realisation {ri} has {} devices, realisation 0 has {k}",
                devs.len()
            ));
        }
        for (ki, m) in devs.iter().enumerate() {
            if m.shape() != (nr, nt) {
                return Err(format!(
                    "{name}: realisation {ri}, device {ki} is {} × {}, the first matrix is {nr} × {nt}",
                    m.nrows(),
                    m.ncols()
                ));
            }
        }
    }
    let io = |e: std::io::Error| format!("{name}: {e}");
    let file = std::fs::File::create(path).map_err(io)?;
    let dtype = npyz::DType::new_scalar("<c16".parse().expect("a valid type string"));
    let mut w = npyz::WriteOptions::<C64>::new()
        .dtype(dtype)
        .shape(&[r, k, nr, nt].map(|d| d as u64))
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    for m in channels.iter().flatten() {
        // C order: the column index runs fastest (nalgebra stores by columns, so walk by rows)
        for i in 0..nr {
            for j in 0..nt {
                w.push(&m[(i, j)]).map_err(io)?;
            }
        }
    }
    w.finish().map_err(io)
}

/// A shape as Python prints it: `(2, 3, 4)`, `(5,)`.
fn py_shape(shape: &[u64]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The dimensions (R, K, N_r, N_t) of a channel array: four of them, each ≥ 1.
fn channel_dims(shape: &[u64]) -> Result<[u64; 4], String> {
    let &[r, k, nr, nt] = shape else {
        return Err(format!(
            "shape {} — expected 4 dimensions (realisations, devices, N_r, N_t)",
            py_shape(shape)
        ));
    };
    if [r, k, nr, nt].contains(&0) {
        return Err(format!(
            "shape {}: every dimension must be ≥ 1",
            py_shape(shape)
        ));
    }
    Ok([r, k, nr, nt])
}

/// R realisations of K N_r × N_t matrices, entry (i, j) of realisation r, device k being
/// `at(r, k, i, j)`; every entry must be finite.
fn shape_to_channels(
    [r, k, nr, nt]: [usize; 4],
    at: impl Fn(usize, usize, usize, usize) -> C64,
) -> Result<Vec<Vec<CMat>>, String> {
    let mut out = Vec::with_capacity(r);
    for ri in 0..r {
        let mut devs = Vec::with_capacity(k);
        for ki in 0..k {
            let m = CMat::from_fn(nr, nt, |i, j| at(ri, ki, i, j));
            if m.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
                return Err(format!("realisation {ri}, device {ki}: non-finite entry"));
            }
            devs.push(m);
        }
        out.push(devs);
    }
    Ok(out)
}

fn parse_npy(b: &[u8]) -> Result<Vec<Vec<CMat>>, String> {
    // npyz allocates the header text at the length the preamble claims (up to 4 GiB for
    // versions 2 and 3) before reading it: hold that length against the file first.
    let claimed = match b.get(6..12) {
        Some(&[1, _, l0, l1, ..]) => 10 + usize::from(u16::from_le_bytes([l0, l1])),
        Some(&[2 | 3, _, l0, l1, l2, l3]) => 12 + u32::from_le_bytes([l0, l1, l2, l3]) as usize,
        _ => 0, // too short, or a version npyz names in its error
    };
    if claimed > b.len() {
        return Err(format!(
            "truncated .npy header ({claimed} bytes claimed, the file has {})",
            b.len()
        ));
    }
    // npyz multiplies the shape out unchecked; with overflow checks on (debug builds) a shape
    // whose size overflows 64 bits panics there instead of erring.
    let parsed = std::panic::catch_unwind(|| {
        let mut rest = b;
        npyz::NpyHeader::from_reader(&mut rest).map(|h| (h, rest))
    });
    let (header, data) = match parsed {
        Ok(Ok(hd)) => hd,
        Ok(Err(e)) => return Err(format!("truncated or malformed .npy header ({e})")),
        Err(_) => return Err("malformed .npy header (its shape overflows 64 bits)".into()),
    };
    let elem_bytes = match header.dtype() {
        npyz::DType::Plain(t)
            if t.type_char() == npyz::TypeChar::Complex && matches!(t.size_field(), 8 | 16) =>
        {
            t.size_field()
        }
        d => {
            return Err(format!(
                "dtype {}: expected complex64 ('<c8') or complex128 ('<c16')",
                d.descr()
            ))
        }
    };
    let dims = channel_dims(header.shape())?;
    // the size against the bytes present, before anything is allocated for the data
    let need = dims.iter().try_fold(elem_bytes, |a, &d| a.checked_mul(d));
    if need != Some(data.len() as u64) {
        return Err(format!(
            "shape {} needs {} bytes of data, the file holds {}",
            py_shape(header.shape()),
            need.map_or("more than 2^64".into(), |n| n.to_string()),
            data.len()
        ));
    }
    // the element count fits, so do the strides (element steps per axis; C or Fortran order)
    let s: [usize; 4] = std::array::from_fn(|a| header.strides()[a] as usize);
    let file = npyz::NpyFile::with_header(header, data);
    let flat: Vec<C64> = if elem_bytes == 16 {
        file.into_vec::<C64>()
    } else {
        file.into_vec::<num_complex::Complex32>().map(|v| {
            v.into_iter()
                .map(|z| C64::new(z.re.into(), z.im.into()))
                .collect()
        })
    }
    .map_err(|e| format!("reading the data: {e}"))?;
    shape_to_channels(dims.map(|d| d as usize), |ri, ki, i, j| {
        flat[ri * s[0] + ki * s[1] + i * s[2] + j * s[3]]
    })
}

fn parse_json(v: &serde_json::Value) -> Result<Vec<Vec<CMat>>, String> {
    fn dims(v: &serde_json::Value, depth: usize, shape: &mut Vec<usize>) {
        if depth == 4 {
            return;
        }
        if let Some(a) = v.as_array() {
            shape.push(a.len());
            if let Some(f) = a.first() {
                dims(f, depth + 1, shape);
            }
        }
    }
    let mut shape = Vec::new();
    dims(v, 0, &mut shape);
    if shape.len() != 4 {
        return Err(format!(
            "JSON nesting depth {} (shape {shape:?}): expected [R][K][N_r][N_t] of [re, im]",
            shape.len()
        ));
    }
    let mut flat = Vec::with_capacity(shape.iter().product());
    for (ri, r) in v.as_array().into_iter().flatten().enumerate() {
        let r = r
            .as_array()
            .filter(|a| a.len() == shape[1])
            .ok_or(format!("realisation {ri}: expected {} devices", shape[1]))?;
        for (ki, k) in r.iter().enumerate() {
            let rows = k.as_array().filter(|a| a.len() == shape[2]).ok_or(format!(
                "realisation {ri}, device {ki}: expected {} rows",
                shape[2]
            ))?;
            for (i, row) in rows.iter().enumerate() {
                let cols = row
                    .as_array()
                    .filter(|a| a.len() == shape[3])
                    .ok_or(format!(
                        "realisation {ri}, device {ki}, row {i}: expected {} entries",
                        shape[3]
                    ))?;
                for (j, z) in cols.iter().enumerate() {
                    let pair = z.as_array().filter(|a| a.len() == 2).ok_or(format!(
                        "realisation {ri}, device {ki}, entry ({i},{j}): expected [re, im]"
                    ))?;
                    let re = pair[0].as_f64().ok_or("non-numeric real part")?;
                    let im = pair[1].as_f64().ok_or("non-numeric imaginary part")?;
                    flat.push(C64::new(re, im));
                }
            }
        }
    }
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let [r, k, nr, nt] = channel_dims(&shape)?.map(|d| d as usize);
    shape_to_channels([r, k, nr, nt], |ri, ki, i, j| {
        flat[((ri * k + ki) * nr + i) * nt + j]
    })
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use npyz::WriterBuilder;

    /// A fresh directory per test (the tests run in parallel).
    fn scratch(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("airinfer-chan-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// (R, K, N_r, N_t) = (2, 3, 2, 3) with entry (i, j) of realisation r, device k equal to
    /// 100r + 10k + i + (j/2)·1i: every value distinct and exact in f32.
    fn sample() -> Vec<Vec<CMat>> {
        (0..2)
            .map(|r| {
                (0..3)
                    .map(|k| {
                        CMat::from_fn(2, 3, |i, j| {
                            C64::new((100 * r + 10 * k + i) as f64, j as f64 * 0.5)
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// A v1 .npy file by hand: header dict text, padded as NumPy does, then the data.
    fn npy_by_hand(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut h = dict.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
        npy.extend_from_slice(h.as_bytes());
        npy.extend_from_slice(data);
        npy
    }

    /// `sample()` through npyz's writer with the given dtype and order, `conv` turning each
    /// entry into the stored element type.
    fn write_with<T: npyz::Serialize>(
        path: &std::path::Path,
        descr: &str,
        order: npyz::Order,
        conv: impl Fn(C64) -> T,
    ) {
        let c = sample();
        let (r, k, nr, nt) = (2, 3, 2, 3);
        let mut w = npyz::WriteOptions::<T>::new()
            .dtype(npyz::DType::new_scalar(descr.parse().unwrap()))
            .shape(&[r as u64, k as u64, nr as u64, nt as u64])
            .order(order)
            .writer(std::io::BufWriter::new(
                std::fs::File::create(path).unwrap(),
            ))
            .begin_nd()
            .unwrap();
        let mut push = |ri: usize, ki: usize, i: usize, j: usize| {
            w.push(&conv(c[ri][ki][(i, j)])).unwrap();
        };
        match order {
            // last index fastest
            npyz::Order::C => {
                for ri in 0..r {
                    for ki in 0..k {
                        for i in 0..nr {
                            for j in 0..nt {
                                push(ri, ki, i, j);
                            }
                        }
                    }
                }
            }
            // first index fastest
            npyz::Order::Fortran => {
                for j in 0..nt {
                    for i in 0..nr {
                        for ki in 0..k {
                            for ri in 0..r {
                                push(ri, ki, i, j);
                            }
                        }
                    }
                }
            }
        }
        w.finish().unwrap();
    }

    #[test]
    fn npy_round_trip_is_complex128_c_order_and_json_agrees() {
        let dir = scratch("round-trip");
        let c = sample();
        let path = dir.join("h.npy");
        save_channels_npy(&path, &c).unwrap();
        assert_eq!(load_channels(&path).unwrap(), c);
        // what NumPy will see: a v1 header for a complex128 C-order (2, 3, 2, 3) array
        let bytes = std::fs::read(&path).unwrap();
        let data_at = bytes.len() - 2 * 3 * 2 * 3 * 16;
        assert_eq!(data_at % 64, 0, "NumPy aligns the data to 64 bytes");
        let header = String::from_utf8_lossy(&bytes[10..data_at]);
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
        assert!(header.contains("'descr': '<c16'"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
        // npyz writes `(2, 3, 2, 3, )`, which Python reads as the same tuple
        assert!(header.contains("'shape': (2, 3, 2, 3,"), "{header}");
        // the fifth complex128 is realisation 0, device 0, entry (1, 1): 1 + 0.5i
        let f = |o: usize| f64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        assert_eq!((f(data_at + 4 * 16), f(data_at + 4 * 16 + 8)), (1.0, 0.5));
        // the same as JSON (the JSON reader is unchanged)
        let small: Vec<Vec<CMat>> = vec![(0..2)
            .map(|k| CMat::from_fn(2, 1, |i, _| C64::new((k * 10 + i) as f64, 0.5)))
            .collect()];
        save_channels_npy(&dir.join("small.npy"), &small).unwrap();
        std::fs::write(
            dir.join("h.json"),
            "[[[[[0,0.5]],[[1,0.5]]],[[[10,0.5]],[[11,0.5]]]]]",
        )
        .unwrap();
        let from_json = load_channels(&dir.join("h.json")).unwrap();
        assert_eq!(from_json, small);
        assert_eq!(load_channels(&dir.join("small.npy")).unwrap(), small);
        std::fs::write(
            dir.join("bad.json"),
            "[[[[[0,0.5]],[[1,0.5]]],[[[10,0.5]]]]]",
        )
        .unwrap();
        assert!(load_channels(&dir.join("bad.json")).is_err());
        // the writer refuses what the layout cannot hold
        assert!(save_channels_npy(&dir.join("e.npy"), &[]).is_err());
        let mut ragged = sample();
        ragged[1].pop();
        let e = save_channels_npy(&dir.join("e.npy"), &ragged).unwrap_err();
        assert!(e.contains("realisation 1 has 2 devices"), "{e}");
        let mut mixed = sample();
        mixed[1][2] = CMat::zeros(3, 2);
        let e = save_channels_npy(&dir.join("e.npy"), &mixed).unwrap_err();
        assert!(e.contains("device 2 is 3 × 2"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn npy_complex64_fortran_order_and_big_endian_load_to_the_same_matrices() {
        let dir = scratch("orders");
        let c = sample();
        let c64 = |z: C64| num_complex::Complex32::new(z.re as f32, z.im as f32);
        for (file, descr, order) in [
            ("c8-c.npy", "<c8", npyz::Order::C),
            ("c8-f.npy", "<c8", npyz::Order::Fortran),
            ("c16-f.npy", "<c16", npyz::Order::Fortran),
            ("c16-be.npy", ">c16", npyz::Order::C),
        ] {
            let path = dir.join(file);
            if descr.ends_with("c8") {
                write_with(&path, descr, order, c64);
            } else {
                write_with(&path, descr, order, |z| z);
            }
            assert_eq!(load_channels(&path).unwrap(), c, "{file}");
        }
        // a Fortran-order file by hand, independent of npyz's writer: shape (1, 2, 2, 1) puts
        // element (r, k, i, j) at r + 1·(k + 2·(i + 2·j)), so storage runs
        // (k, i) = (0, 0), (1, 0), (0, 1), (1, 1); values 10k + i + 0.5i
        let mut data = Vec::new();
        for (k, i) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            data.extend_from_slice(&((k * 10 + i) as f64).to_le_bytes());
            data.extend_from_slice(&0.5f64.to_le_bytes());
        }
        let npy = npy_by_hand(
            "{'descr': '<c16', 'fortran_order': True, 'shape': (1, 2, 2, 1), }",
            &data,
        );
        std::fs::write(dir.join("hand-f.npy"), npy).unwrap();
        let h = load_channels(&dir.join("hand-f.npy")).unwrap();
        let want: Vec<Vec<CMat>> = vec![(0..2)
            .map(|k| CMat::from_fn(2, 1, |i, _| C64::new((k * 10 + i) as f64, 0.5)))
            .collect()];
        assert_eq!(h, want);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn npy_shape_dtype_and_truncation_errors_name_the_file_and_never_panic() {
        let dir = scratch("errors");
        let load = |file: &str, bytes: &[u8]| {
            let path = dir.join(file);
            std::fs::write(&path, bytes).unwrap();
            let e = load_channels(&path).unwrap_err();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            e
        };
        let c16 = |n: usize| vec![0u8; 16 * n];
        // three dimensions
        let e = load(
            "h3.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (2, 3, 4), }",
                &c16(24),
            ),
        );
        assert!(
            e.ends_with(
                "h3.npy: shape (2, 3, 4) — expected 4 dimensions (realisations, devices, N_r, N_t)"
            ),
            "{e}"
        );
        let e = load(
            "h1.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (5,), }",
                &c16(5),
            ),
        );
        assert!(e.contains("shape (5,) — expected 4 dimensions"), "{e}");
        // an empty dimension
        let e = load(
            "h0.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1, 0, 2, 2), }",
                &[],
            ),
        );
        assert!(
            e.contains("shape (1, 0, 2, 2): every dimension must be ≥ 1"),
            "{e}"
        );
        // real dtypes are named
        let e = load(
            "f8.npy",
            &npy_by_hand(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 2), }",
                &[0; 16],
            ),
        );
        assert!(e.contains("dtype '<f8'"), "{e}");
        assert!(
            e.contains("expected complex64 ('<c8') or complex128 ('<c16')"),
            "{e}"
        );
        let e = load(
            "c32.npy",
            &npy_by_hand(
                "{'descr': '<c32', 'fortran_order': False, 'shape': (1, 1, 1, 1), }",
                &[0; 32],
            ),
        );
        assert!(e.contains("dtype '<c32'"), "{e}");
        // a huge shape over a few bytes: refused before anything is allocated for it
        let e = load(
            "huge.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1000000, 1000000, 64, 64), }",
                &c16(1),
            ),
        );
        assert!(
            e.contains("shape (1000000, 1000000, 64, 64) needs 65536000000000000 bytes of data, the file holds 16"),
            "{e}"
        );
        // a shape whose size overflows 64 bits
        let e = load(
            "overflow.npy",
            &npy_by_hand(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296, 1), }",
                &c16(1),
            ),
        );
        assert!(
            e.contains("overflows") || e.contains("more than 2^64"),
            "{e}"
        );
        // a version-2 preamble claiming a 4 GiB header in a 16-byte file
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        v2.extend_from_slice(b"{'de");
        let e = load("v2.npy", &v2);
        assert!(e.contains("truncated .npy header"), "{e}");
        // extra bytes after the data
        let path = dir.join("good.npy");
        save_channels_npy(&path, &sample()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut long = good.clone();
        long.push(0);
        let e = load("long.npy", &long);
        assert!(
            e.contains("needs 576 bytes of data, the file holds 577"),
            "{e}"
        );
        // every truncation of a good file is an error (in the header or the data), no panic
        for cut in 0..good.len() {
            let e = load("cut.npy", &good[..cut]);
            if cut >= good.len() - 576 {
                assert!(e.contains("bytes of data, the file holds"), "{cut}: {e}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod d2d_tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn d2d_links_are_reciprocal_and_follow_the_path_loss() {
        let cfg = D2dConfig {
            positions_m: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 100.0], [30.0, 40.0]],
            antennas: 2,
            small_scale: SmallScale::Rayleigh,
            large_scale: LargeScale::LogDistance {
                pl0_db: 40.0,
                d0_m: 1.0,
                exponent: 3.0,
                shadowing_db: 0.0,
                distances_m: vec![],
            },
        };
        let mut rng = stream(90, &[]);
        let draws = 4000;
        let mut power = vec![vec![0.0; 4]; 4];
        for _ in 0..draws {
            let l = cfg.realise(&mut rng).unwrap();
            for i in 0..4 {
                assert_eq!(l.h[i][i].norm(), 0.0);
                for j in 0..4 {
                    assert_eq!(l.h[i][j], l.h[j][i].transpose());
                    power[i][j] += l.h[i][j].norm_squared() / 4.0 / draws as f64;
                }
            }
        }
        // mean entry power = path gain 10^(−(40 + 30 log10 d)/10)
        for (i, j, d) in [
            (0usize, 1usize, 10.0f64),
            (0, 2, 100.0),
            (0, 3, 50.0),
            (1, 3, (400.0f64 + 1600.0).sqrt()),
        ] {
            let want = 10f64.powf(-(40.0 + 30.0 * d.log10()) / 10.0);
            // Monte-Carlo: mean of 4000·4 Exp entries, rel. SE 1/√16 000 = 0.79 %: 0.05 ≈ 6.3 SE
            assert!(
                (power[i][j] / want - 1.0).abs() < 0.05,
                "{i}-{j}: {} vs {want}",
                power[i][j]
            );
        }
        // the slope: 10× the distance costs 30 dB
        let slope = 10.0 * (power[0][1] / power[0][2]).log10();
        // Monte-Carlo: 4.34 dB·√2·0.79 % = 0.049 dB SE of the difference: 0.5 dB ≈ 10 SE
        assert!((slope - 30.0).abs() < 0.5, "{slope}");
        // Rician with K → ∞ is the deterministic line of sight, unit power per entry
        let los = D2dConfig {
            small_scale: SmallScale::Rician {
                k_factor_db: 80.0,
                aoa_deg: vec![],
            },
            large_scale: LargeScale::Unit,
            ..cfg.clone()
        };
        let l = los.realise(&mut rng).unwrap();
        // the scattered part has variance 1/(1+K) = 1e-8, σ = 1e-4 per entry: 1e-3 is 10 σ
        assert!(l.h[0][3].iter().all(|v| (v.norm() - 1.0).abs() < 1e-3));
        // bad input
        let one = D2dConfig {
            positions_m: vec![[0.0, 0.0]],
            ..cfg.clone()
        };
        assert!(one.realise(&mut rng).is_err());
        let nan = D2dConfig {
            positions_m: vec![[0.0, 0.0], [f64::NAN, 1.0]],
            ..cfg.clone()
        };
        assert!(nan.realise(&mut rng).is_err());
        let fixed = D2dConfig {
            large_scale: LargeScale::Fixed {
                gains_db: vec![0.0; 5],
            },
            ..cfg
        };
        assert!(fixed.realise(&mut rng).is_err()); // 4 devices have 6 pairs
    }
}
