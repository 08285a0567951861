//! `airinfer aircomp …` and `airinfer bench phy`.

use airinfer_phy::aircomp::{self, Problem, ReceiveDirection, Transceiver};
use airinfer_phy::channel::{self, Mac, MacConfig, SmallScale};
use airinfer_phy::rng::{self, component};
use airinfer_phy::CMat;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rayon::prelude::*;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Transceiver designs the CLI offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DesignName {
    /// Zero-forcing, receive beamformer = principal eigenvector of Σ H_kH_kᴴ.
    Zf,
    /// Zero-forcing, receive beamformer = normalised sum of channel directions.
    ZfSum,
    /// MMSE transceivers by alternating optimisation.
    Mmse,
    /// Successive convex approximation (near-SDR quality, no SDP).
    Sca,
    /// Semidefinite relaxation (our interior-point SDP solver) + Gaussian randomisation.
    Sdr,
    /// Uncoded FDMA baseline: each device alone on a 1/K sub-channel (K× the airtime).
    Fdma,
}

impl DesignName {
    fn run(self, p: &Problem, seed: u64, index: u64) -> Result<Transceiver> {
        use aircomp::NamedDesign as N;
        let named = match self {
            DesignName::Zf => N::Zf,
            DesignName::ZfSum => N::ZfSum,
            DesignName::Mmse => N::Mmse,
            DesignName::Sca => N::Sca,
            DesignName::Sdr => N::Sdr,
            DesignName::Fdma => {
                bail!("uncoded FDMA has one combiner per device, not one receive beamformer")
            }
        };
        Ok(named.run(p, seed, index)?)
    }

    /// (analytic, simulated) MSE of this design on `p`.
    fn mse_pair(
        self,
        p: &Problem,
        seed: u64,
        index: u64,
        symbols: usize,
        noise: &mut rng::Rng,
    ) -> Result<(f64, f64)> {
        if self == DesignName::Fdma {
            let d = aircomp::uncoded_fdma(p)?;
            return Ok((
                d.analytic_mse,
                aircomp::simulate_fdma_mse(p, &d, symbols, noise),
            ));
        }
        let t = self.run(p, seed, index)?;
        Ok((t.analytic_mse, aircomp::simulate_mse(p, &t, symbols, noise)))
    }
    fn label(self) -> &'static str {
        match self {
            DesignName::Zf => "zf",
            DesignName::ZfSum => "zf-sum",
            DesignName::Mmse => "mmse",
            DesignName::Sca => "sca",
            DesignName::Sdr => "sdr",
            DesignName::Fdma => "fdma",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AircompCmd {
    /// MSE vs SNR for chosen designs, analytic and simulated side by side (Rayleigh or Rician).
    Mse(MseArgs),
    /// Design transceivers for given channel realisations and print them.
    Design(DesignArgs),
}

#[derive(Args, Debug)]
pub struct MseArgs {
    /// Number of devices K.
    #[arg(long, default_value_t = 8)]
    pub devices: usize,
    /// AP antennas N_r.
    #[arg(long, default_value_t = 4)]
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    #[arg(long, default_value_t = 1)]
    pub tx_antennas: usize,
    /// SNR values in dB (power budget 1 per device, unit signal variance, noise variance 10^(−SNR/10)).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_values_t = vec![-10.0, 0.0, 10.0, 20.0, 30.0])]
    pub snr_db: Vec<f64>,
    /// Designs to compare: zf, zf-sum, mmse, sca, sdr, fdma.
    #[arg(long, value_delimiter = ',', value_parser = super::design_value::<DesignName>, default_value = "zf,zf-sum,mmse,sca")]
    pub designs: Vec<DesignName>,
    /// Rician K-factor in dB (Rayleigh when absent).
    #[arg(long, allow_hyphen_values = true)]
    pub rician_k_db: Option<f64>,
    /// Streams L (≤ min(N_r, N_t)).
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Channel realisations averaged per point.
    #[arg(long, default_value_t = 50)]
    pub realisations: usize,
    /// Simulated symbols per realisation.
    #[arg(long, default_value_t = 20_000)]
    pub symbols: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// What to sweep: the SNR list (default), or K / N_r over --values at the first SNR.
    #[arg(long, value_enum, default_value_t = Vary::Snr)]
    pub vary: Vary,
    /// Values of K or N_r for --vary devices / rx-antennas.
    #[arg(long, value_delimiter = ',')]
    pub values: Vec<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The swept parameter of `aircomp mse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Vary {
    /// SNR (the --snr-db list).
    Snr,
    /// Number of devices K.
    Devices,
    /// AP antennas N_r.
    RxAntennas,
}

#[derive(Args, Debug)]
pub struct DesignArgs {
    /// Channel realisations: .npy (complex64/complex128, C or Fortran order, shape
    /// (R, K, N_r, N_t)) or JSON of the same nesting with complex numbers as [re, im].
    #[arg(long)]
    pub channels: PathBuf,
    /// The design: zf, zf-sum, mmse, sca, sdr, fdma.
    #[arg(long, value_parser = super::design_value::<DesignName>, default_value = "sca")]
    pub design: DesignName,
    /// Power budget per channel use: one value, or one per device.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1.0])]
    pub power_budget: Vec<f64>,
    /// Signal variance: one value, or one per device.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1.0])]
    pub signal_var: Vec<f64>,
    /// Receiver noise variance.
    #[arg(long, default_value_t = 1.0)]
    pub noise_var: f64,
    /// Streams L.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Seed (SDR randomisation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON (the only output format).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchPhyArgs {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Skip the SDR measurements.
    #[arg(long)]
    pub no_sdr: bool,
    /// Write the SDP instances timed alone (the first 50 per size: channels, right-hand sides
    /// and our certified value) to this JSON file, for `scripts/sdr_cvxpy.py` to solve the same.
    #[arg(long)]
    pub sdr_instances: Option<PathBuf>,
}

/// Calls of `f(i)`, i = 0, 1, …, per second, over at least `seconds` and at least `min` calls.
fn per_second(seconds: f64, min: u64, mut f: impl FnMut(u64) -> Result<()>) -> Result<f64> {
    let t0 = Instant::now();
    let mut i = 0u64;
    while t0.elapsed().as_secs_f64() < seconds || i < min {
        f(i)?;
        i += 1;
    }
    Ok(i as f64 / t0.elapsed().as_secs_f64())
}

pub fn run(cmd: AircompCmd) -> Result<()> {
    match cmd {
        AircompCmd::Mse(a) => mse(a),
        AircompCmd::Design(a) => design(a),
    }
}

fn per_device(v: &[f64], k: usize, what: &str) -> Result<Vec<f64>> {
    match v.len() {
        1 => Ok(vec![v[0]; k]),
        n if n == k => Ok(v.to_vec()),
        n => bail!("--{what}: {n} values for {k} devices (give one, or one per device)"),
    }
}

fn mse(a: MseArgs) -> Result<()> {
    if a.realisations == 0 || a.symbols == 0 {
        bail!("--realisations and --symbols must be positive");
    }
    // the points: (K, N_r, SNR dB), varying one of them
    let points: Vec<(usize, usize, f64)> = match a.vary {
        Vary::Snr => a
            .snr_db
            .iter()
            .map(|&s| (a.devices, a.rx_antennas, s))
            .collect(),
        Vary::Devices => a
            .values
            .iter()
            .map(|&v| (v, a.rx_antennas, a.snr_db[0]))
            .collect(),
        Vary::RxAntennas => a
            .values
            .iter()
            .map(|&v| (a.devices, v, a.snr_db[0]))
            .collect(),
    };
    if points.is_empty() {
        bail!("--values: give the {:?} values to sweep", a.vary);
    }
    for &(k, nr, _) in &points {
        if k == 0 || nr == 0 || a.tx_antennas == 0 {
            bail!(
                "K = {k}, N_r = {nr}, N_t = {}: all must be ≥ 1",
                a.tx_antennas
            );
        }
        if a.streams == 0 || a.streams > nr || a.streams > a.tx_antennas {
            bail!(
                "--streams {}: need 1 ≤ L ≤ min(N_r = {nr}, N_t = {})",
                a.streams,
                a.tx_antennas
            );
        }
    }
    let small_scale = match a.rician_k_db {
        None => SmallScale::Rayleigh,
        Some(k) => SmallScale::Rician {
            k_factor_db: k,
            aoa_deg: vec![],
        },
    };
    let var_name = match a.vary {
        Vary::Snr => "SNR dB",
        Vary::Devices => "K",
        Vary::RxAntennas => "N_r",
    };
    if !a.json {
        println!(
            "{}; N_t = {}, {} realisations × {} symbols; MSE of the sum per complex symbol",
            match a.vary {
                Vary::Snr => format!("K = {}, N_r = {}", a.devices, a.rx_antennas),
                Vary::Devices => format!("N_r = {}, SNR = {} dB", a.rx_antennas, a.snr_db[0]),
                Vary::RxAntennas => format!("K = {}, SNR = {} dB", a.devices, a.snr_db[0]),
            },
            a.tx_antennas,
            a.realisations,
            a.symbols
        );
        print!("{var_name:>8}");
        for d in &a.designs {
            print!(
                " {:>12} {:>12}",
                format!("{} anal.", d.label()),
                format!("{} sim.", d.label())
            );
        }
        println!();
    }
    let mut rows = Vec::new();
    for (pi, &(k, nr, snr)) in points.iter().enumerate() {
        if !snr.is_finite() {
            bail!("--snr-db {snr}: must be finite");
        }
        if a.designs.contains(&DesignName::Sdr) && nr > 24 {
            bail!("--designs sdr with N_r = {nr}: the SDP grows as (2·N_r)²; use N_r ≤ 24");
        }
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: nr,
            tx_antennas: a.tx_antennas,
            small_scale: small_scale.clone(),
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .context("channel parameters")?;
        let ones = vec![1.0; k];
        let noise = 10f64.powf(-snr / 10.0);
        let per_real: Vec<Vec<(f64, f64)>> = (0..a.realisations)
            .into_par_iter()
            .map(|r| -> Result<Vec<(f64, f64)>> {
                let h = mac.small_scale(&mut rng::stream(
                    a.seed,
                    &[component::FADING, pi as u64, r as u64],
                ));
                let p = Problem {
                    channels: &h,
                    signal_var: &ones,
                    power: &ones,
                    noise_var: noise,
                    streams: a.streams,
                };
                a.designs
                    .iter()
                    .enumerate()
                    .map(|(di, d)| {
                        d.mse_pair(
                            &p,
                            a.seed,
                            r as u64,
                            a.symbols,
                            &mut rng::stream(
                                a.seed,
                                &[component::NOISE, pi as u64, r as u64, di as u64],
                            ),
                        )
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        let mut row = json!({"devices": k, "rx_antennas": nr, "snr_db": snr});
        if !a.json {
            match a.vary {
                Vary::Snr => print!("{snr:>8.1}"),
                Vary::Devices => print!("{k:>8}"),
                Vary::RxAntennas => print!("{nr:>8}"),
            }
        }
        for (di, d) in a.designs.iter().enumerate() {
            let an = per_real.iter().map(|v| v[di].0).sum::<f64>() / a.realisations as f64;
            let sm = per_real.iter().map(|v| v[di].1).sum::<f64>() / a.realisations as f64;
            row[d.label()] = json!({"analytic_mse": an, "simulated_mse": sm});
            if !a.json {
                print!(" {an:>12.4e} {sm:>12.4e}");
            }
        }
        if !a.json {
            println!();
        }
        rows.push(row);
    }
    if a.json {
        println!(
            "{}",
            json!({"vary": var_name, "tx_antennas": a.tx_antennas, "realisations": a.realisations, "symbols": a.symbols, "points": rows})
        );
    }
    Ok(())
}

fn cmat_json(m: &CMat) -> serde_json::Value {
    json!((0..m.nrows())
        .map(|i| (0..m.ncols())
            .map(|j| [m[(i, j)].re, m[(i, j)].im])
            .collect::<Vec<_>>())
        .collect::<Vec<_>>())
}

fn design(a: DesignArgs) -> Result<()> {
    let reals = channel::load_channels(&a.channels).map_err(anyhow::Error::msg)?;
    let k = reals[0].len();
    let power = per_device(&a.power_budget, k, "power-budget")?;
    let var = per_device(&a.signal_var, k, "signal-var")?;
    let mut out = Vec::with_capacity(reals.len());
    for (r, h) in reals.iter().enumerate() {
        let p = Problem {
            channels: h,
            signal_var: &var,
            power: &power,
            noise_var: a.noise_var,
            streams: a.streams,
        };
        if a.design == DesignName::Fdma {
            let d = aircomp::uncoded_fdma(&p).with_context(|| format!("realisation {r}"))?;
            out.push(json!({
                "mse": d.analytic_mse,
                "per_device_mse": d.per_device_mse,
                "combiners": d.combiners.iter().map(cmat_json).collect::<Vec<_>>(),
                "precoders": d.precoders.iter().map(cmat_json).collect::<Vec<_>>(),
                "power": aircomp::powers(&p, &d.precoders),
                "airtime_factor": d.airtime_factor,
            }));
            continue;
        }
        let t = a
            .design
            .run(&p, a.seed, r as u64)
            .with_context(|| format!("realisation {r}"))?;
        out.push(json!({
            "mse": t.analytic_mse,
            "receive_beamformer": cmat_json(&t.receive_beamformer),
            "precoders": t.precoders.iter().map(cmat_json).collect::<Vec<_>>(),
            "power": aircomp::powers(&p, &t.precoders),
        }));
    }
    println!(
        "{}",
        json!({"design": a.design.label(), "realisations": out})
    );
    Ok(())
}

pub fn bench_phy(a: BenchPhyArgs) -> Result<()> {
    if a.seconds.is_nan() || a.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    // (a) AirComp trials/s: K = 8, N_r = 4, N_t = 1, 288 symbols per device, Rayleigh, ZF with
    // the sum-direction receive beamformer; a trial draws the channel, designs, transmits, combines
    let mac = Mac::new(MacConfig {
        devices: 8,
        rx_antennas: 4,
        tx_antennas: 1,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    })?;
    let ones = vec![1.0; 8];
    let trial = |i: u64| -> f64 {
        // a fast generator for the bulk draws, seeded from the trial's own stream
        let mut r = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(
            rand::RngCore::next_u64(&mut rng::stream(1, &[i])),
        );
        let h = mac.small_scale(&mut r);
        let p = Problem {
            channels: &h,
            signal_var: &ones,
            power: &ones,
            noise_var: 0.1,
            streams: 1,
        };
        let t = aircomp::zero_forcing(&p, ReceiveDirection::SumDirections).expect("valid problem");
        aircomp::simulate_mse(&p, &t, 288, &mut r)
    };
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < a.seconds {
        let batch: f64 = (n..n + 64).into_par_iter().map(trial).sum();
        std::hint::black_box(batch);
        n += 64;
    }
    let trials_s = n as f64 / t0.elapsed().as_secs_f64();
    // (b) SDR designs/s (SDP + 100 randomisations), and the SDP alone on the first instances
    let mut sdr_rates = Vec::new();
    let mut dump = Vec::new();
    let sdr_cases: &[(usize, usize, usize)] = if a.no_sdr {
        &[]
    } else {
        &[(8, 8, 1), (8, 20, 4)]
    };
    const DUMPED: u64 = 50;
    for &(k, nr, nt) in sdr_cases {
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: nr,
            tx_antennas: nt,
            small_scale: SmallScale::Rayleigh,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })?;
        let ones = vec![1.0; k];
        let designs_per_s = per_second(a.seconds, 1, |m| {
            let h = mac.small_scale(&mut rng::stream(2, &[m]));
            let p = Problem {
                channels: &h,
                signal_var: &ones,
                power: &ones,
                noise_var: 0.1,
                streams: 1,
            };
            std::hint::black_box(aircomp::sdr(&p, 100, &mut rng::stream(3, &[m]))?);
            Ok(())
        })?;
        // the relaxation alone (what cvxpy solves), on the first DUMPED instances, repeated
        let instances: Vec<Vec<CMat>> = (0..DUMPED)
            .map(|i| mac.small_scale(&mut rng::stream(2, &[i])))
            .collect();
        let c = vec![1.0; k];
        let sdp_per_s = per_second(a.seconds, DUMPED, |i| {
            std::hint::black_box(aircomp::sdp::solve(&instances[(i % DUMPED) as usize], &c)?);
            Ok(())
        })?;
        // the solver the SDR used before ours, on the same instances (`--features clarabel`)
        #[cfg(feature = "clarabel")]
        let clarabel_per_s = {
            use aircomp::sdp_clarabel::{solve_with, Tolerance};
            Some(per_second(a.seconds, 3, |i| {
                let h = &instances[(i % DUMPED) as usize];
                std::hint::black_box(solve_with(h, &c, Tolerance::Default)?);
                Ok(())
            })?)
        };
        #[cfg(not(feature = "clarabel"))]
        let clarabel_per_s: Option<f64> = None;
        if a.sdr_instances.is_some() {
            for h in &instances {
                let sol = aircomp::sdp::solve(h, &c)?;
                let mats: Vec<Vec<Vec<[f64; 2]>>> = h
                    .iter()
                    .map(|hk| {
                        (0..nr)
                            .map(|i| (0..nt).map(|j| [hk[(i, j)].re, hk[(i, j)].im]).collect())
                            .collect()
                    })
                    .collect();
                dump.push(json!({"devices": k, "rx_antennas": nr, "tx_antennas": nt, "c": c, "h": mats, "primal": sol.primal, "dual": sol.dual}));
            }
        }
        sdr_rates.push(json!({"devices": k, "rx_antennas": nr, "tx_antennas": nt, "designs_per_s": designs_per_s, "sdp_solves_per_s": sdp_per_s, "clarabel_sdp_solves_per_s": clarabel_per_s}));
    }
    if let Some(path) = &a.sdr_instances {
        let doc = json!({"about": "SDP instances min tr(M) s.t. tr(M H_k H_k^H) >= c_k, M PSD (h[k][row][col] = [re, im]); primal/dual: our certified bracket", "instances": dump});
        crate::experiment::store::write_atomic(path, serde_json::to_string(&doc)?.as_bytes())
            .with_context(|| format!("--sdr-instances {}", path.display()))?;
    }
    if a.json {
        println!(
            "{}",
            json!({"aircomp_trials_per_s": trials_s, "threads": rayon::current_num_threads(), "simd": airinfer_phy::simd::fastrng_path(), "sdr": sdr_rates})
        );
    } else {
        println!(
            "AirComp trials/s (K=8, N_r=4, N_t=1, 288 symbols, ZF sum-direction): {trials_s:.0} ({} threads, {} kernels)",
            rayon::current_num_threads(),
            airinfer_phy::simd::fastrng_path()
        );
        for s in &sdr_rates {
            println!(
                "SDR designs/s (K={}, N_r={}, N_t={}): {:.2} (SDP alone: {:.1} solves/s)",
                s["devices"],
                s["rx_antennas"],
                s["tx_antennas"],
                s["designs_per_s"].as_f64().unwrap_or(0.0),
                s["sdp_solves_per_s"].as_f64().unwrap_or(0.0)
            );
            if let Some(r) = s["clarabel_sdp_solves_per_s"].as_f64() {
                println!("  clarabel (default tolerances) on the same SDPs: {r:.2} solves/s");
            }
        }
    }
    Ok(())
}
