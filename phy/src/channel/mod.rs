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

mod files;
pub use files::*;

#[cfg(test)]
mod d2d_tests;
#[cfg(test)]
mod tests;
