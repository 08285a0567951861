use super::*;
use airinfer_phy::channel::{MacConfig, SmallScale};

fn hetero() -> PlanProblem {
    let k = 4;
    let mac = Mac::new(MacConfig {
        devices: k,
        rx_antennas: 4,
        tx_antennas: 1,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    })
    .unwrap();
    PlanProblem {
        mac,
        // two near devices, two far ones (10 dB weaker)
        gains: vec![1.0, 1.0, 0.1, 0.1],
        // per token: 0.2 J each; compute efficiencies differ 4×
        energy_budget_j: vec![0.2; k],
        energy_per_flop: vec![1e-12, 4e-12, 1e-12, 4e-12],
        max_power_w: vec![1.0; k],
        mem_capacity: vec![8e9, 8e9, 8e9, 2e9],
        flops_per_token: 3e10,
        model_bytes: 4e9,
        uses_per_token: 30.0 * 2.0 * 288.0,
        bandwidth_hz: 10e6,
        noise_var: 1e-3,
        signal_var: 1.0,
        signal: SignalModel::ShareScaled,
        streams: 1,
        latency_budget_s: None,
        full_model_time_s: vec![],
    }
}

#[test]
fn projection_onto_the_capped_simplex() {
    let caps = [0.5, 0.5, 0.2];
    let p = project_capped_simplex(&[0.9, 0.9, 0.9], &caps);
    // 200 bisection steps reach f64 resolution and clamp() keeps the caps exactly: the sum
    // is off by a few ε (also below)
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(p
        .iter()
        .zip(&caps)
        .all(|(v, c)| *v >= 0.0 && *v <= c + 1e-12));
    // already feasible points stay put
    let q = project_capped_simplex(&[0.4, 0.4, 0.2], &caps);
    assert!(q
        .iter()
        .zip([0.4, 0.4, 0.2])
        .all(|(a, b)| (a - b).abs() < 1e-12));
}

/// At shares (0.3, 0.2, 0.3, 0.2) on channels `h`: the MSE, its central difference along
/// the simplex direction that moves share from device 0 to device 2 (step 1e-5), and the
/// analytic gradient's derivative along it.
fn directional(p: &PlanProblem, h: &[CMat]) -> (f64, f64, f64) {
    let m = [0.3, 0.2, 0.3, 0.2];
    let (f0, g) = p.mse_and_gradient(&m, h);
    let dir = [1.0, 0.0, -1.0, 0.0];
    let eps = 1e-5;
    let mp: Vec<f64> = m.iter().zip(&dir).map(|(a, b)| a + eps * b).collect();
    let mm: Vec<f64> = m.iter().zip(&dir).map(|(a, b)| a - eps * b).collect();
    let fd = (p.mse_and_gradient(&mp, h).0 - p.mse_and_gradient(&mm, h).0) / (2.0 * eps);
    (f0, fd, g.iter().zip(&dir).map(|(a, b)| a * b).sum())
}

#[test]
fn the_gradient_matches_finite_differences() {
    let p = hetero();
    let h = p.channels(3, 0);
    // the directional derivative along a simplex direction (move share from 0 to 2)
    let (f0, fd, an) = directional(&p, &h);
    assert!(f0 > 0.0);
    // central difference: truncation O(eps²·f''') and rounding ε·|f|/eps ≈ 2e-11 relative
    // (measured 2.3e-10 in all): 5 % is loose on purpose, it catches a wrong gradient (sign,
    // factor, missing term), not rounding
    assert!(
        (fd - an).abs() < 0.05 * fd.abs().max(an.abs()) + 1e-12,
        "fd {fd} vs {an}"
    );
}

#[test]
fn sca_decreases_the_objective_and_beats_the_baselines_within_the_constraints() {
    let p = hetero();
    let r = p.optimise(200, 7, 64).unwrap();
    let first = r.trace.first().unwrap().expected_mse;
    assert!(r.expected_mse < first, "{} vs {first}", r.expected_mse);
    // non-increasing along the trace, up to Monte-Carlo-free noise of the common validation set
    // TUNED: the steps descend on the training draws, the trace is scored on separate
    // validation draws (64 each); 2 % is not derived (measured ≤ 0.87 %)
    for w in r.trace.windows(2) {
        assert!(
            w[1].expected_mse <= w[0].expected_mse * 1.02,
            "{:?}",
            r.trace
        );
    }
    // feasibility: simplex, caps (memory and energy), positive transmit power (the shares
    // come from the bisection projection: exact to a few ε, 1e-9/1e-12 are rounding room)
    assert!((r.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    for (n, (&m, &c)) in r.shares.iter().zip(&r.caps).enumerate() {
        assert!(m >= -1e-12 && m <= c + 1e-9);
        assert!(m * p.model_bytes <= p.mem_capacity[n] * (1.0 + 1e-9));
        assert!(p.energy_per_flop[n] * m * p.flops_per_token < p.energy_budget_j[n]);
    }
    let uniform = vec![0.25; 4];
    let compute: Vec<f64> = {
        let s: f64 = p.energy_per_flop.iter().map(|e| 1.0 / e).sum();
        p.energy_per_flop.iter().map(|e| 1.0 / e / s).collect()
    };
    let val = validation_seed(7);
    let mu = p.expected_mse(&uniform, val, 64);
    let mc = p.expected_mse(&compute, val, 64);
    eprintln!(
        "SCA {} uniform {mu} compute-proportional {mc} shares {:?}",
        r.expected_mse, r.shares
    );
    assert!(r.expected_mse < mu && r.expected_mse < mc);
    // a latency budget caps the fast near devices: the plan must move share to the others
    let tight = PlanProblem {
        latency_budget_s: Some(0.03),
        full_model_time_s: vec![0.1; 4],
        ..p.clone()
    };
    let t = tight.optimise(100, 7, 32).unwrap();
    // cap 0.03 / 0.1 = 0.3 up to rounding
    assert!(t.shares.iter().all(|&m| m <= 0.3 + 1e-9), "{:?}", t.shares);
    // a logical bound (a tighter problem cannot do better) with 2 % room for SCA's local
    // optimum and the validation draws; measured 4.2×, so the room is never used
    assert!(t.expected_mse >= r.expected_mse * 0.98);
    let impossible = PlanProblem {
        latency_budget_s: Some(0.01),
        full_model_time_s: vec![0.1; 4],
        ..p
    };
    assert!(impossible.optimise(10, 7, 4).is_err());
}

/// Two devices (gains 1 and 0.5, 1 and 2 pJ/FLOP) on `nr` AP antennas.
fn two(nr: usize, small_scale: SmallScale, energy: [f64; 2], p_max: f64) -> PlanProblem {
    PlanProblem {
        mac: Mac::new(MacConfig {
            devices: 2,
            rx_antennas: nr,
            tx_antennas: 1,
            small_scale,
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .unwrap(),
        gains: vec![1.0, 0.5],
        energy_budget_j: energy.to_vec(),
        energy_per_flop: vec![1e-12, 2e-12],
        max_power_w: vec![p_max; 2],
        mem_capacity: vec![8e9; 2],
        flops_per_token: 1e9,
        model_bytes: 1e9,
        uses_per_token: 1e4,
        bandwidth_hz: 1e7,
        noise_var: 1e-2,
        signal_var: 1.0,
        signal: SignalModel::Paper,
        streams: 1,
        latency_budget_s: None,
        full_model_time_s: vec![],
    }
}

/// The grid point of smallest expected MSE (share of device 0 in steps of `step`, within
/// the caps) and that MSE.
fn brute_force(p: &PlanProblem, step: f64, seed: u64, n: usize) -> (f64, f64) {
    let caps = p.caps();
    let mut best = (f64::NAN, f64::INFINITY);
    let steps = (1.0 / step).round() as usize;
    for i in 0..=steps {
        let m0 = i as f64 * step;
        if m0 > caps[0] + 1e-12 || 1.0 - m0 > caps[1] + 1e-12 {
            continue;
        }
        let f = p.expected_mse(&[m0, 1.0 - m0], seed, n);
        if f < best.1 {
            best = (m0, f);
        }
    }
    best
}

#[test]
fn the_energy_constraint_binds_where_the_closed_form_says_and_sca_finds_the_grid_optimum() {
    // one antenna each, a line of sight 60 dB above the scattering: |h_n|² = 1 ± 2e-3, so
    // the ZF MSE is σ² max_n σ̄²/(p_n(m_n) g_n) and, with the radio's cap out of reach,
    // p_n = (E_n − e_n m_n F) B/U for both devices: the optimum balances p_0 g_0 = p_1 g_1,
    // m_0* = (E_0 g_0 − E_1 g_1 + e_1 F g_1) / (F (e_0 g_0 + e_1 g_1)) = 0.875 here
    let los = SmallScale::Rician {
        k_factor_db: 60.0,
        aoa_deg: vec![],
    };
    let tight = two(1, los.clone(), [1.5e-3, 1.5e-3], 1e3);
    let (e, g, f) = (&tight.energy_per_flop, &tight.gains, tight.flops_per_token);
    let closed = (tight.energy_budget_j[0] * g[0] - tight.energy_budget_j[1] * g[1]
        + e[1] * f * g[1])
        / (f * (e[0] * g[0] + e[1] * g[1]));
    assert!((closed - 0.875).abs() < 1e-12);
    let step = 0.005;
    let (grid, _) = brute_force(&tight, step, 99, 8);
    assert!(
        (grid - closed).abs() <= step,
        "grid {grid} vs closed form {closed}"
    );
    let r = tight.optimise(300, 5, 8).unwrap();
    assert!(
        (r.shares[0] - grid).abs() <= 2.0 * step,
        "SCA {:?} vs grid {grid}",
        r.shares
    );
    // active for both: each power is set by the energy left, and the transceiver spends it
    // (both ZF constraints tight at the balance): the energy used, computed from the
    // designed precoders, meets the budget
    assert!(r.energy_binds.iter().all(|&b| b), "{:?}", r.energy_binds);
    let used = tight.energy_use(&r.shares, 3, 8);
    for (u, b) in used.iter().zip(&tight.energy_budget_j) {
        // near the balance the weaker side sets the scale: within 2 % (2 grid steps of
        // share move the powers by ~2 %)
        assert!(*u <= b * (1.0 + 1e-9) && *u > 0.97 * b, "{used:?}");
    }

    // a budget a thousand times larger with a 1 W radio: e_n F + U p^max/B ≤ 3 mJ ≪ 1.5 J,
    // so the constraint never binds; the MSE does not depend on the shares and the plan
    // stays where it started (equal shares), the energy mostly unused
    let loose = two(1, los, [1.5, 1.5], 1.0);
    let r = loose.optimise(100, 5, 8).unwrap();
    assert!(r.energy_binds.iter().all(|&b| !b));
    assert!(
        r.shares.iter().all(|&m| (m - 0.5).abs() < 1e-12),
        "{:?}",
        r.shares
    );
    let used = loose.energy_use(&r.shares, 3, 8);
    assert!(used.iter().all(|&u| u < 0.01 * 1.5), "{used:?}");
    let f0 = loose.expected_mse(&[0.1, 0.9], 3, 8);
    let f1 = loose.expected_mse(&[0.9, 0.1], 3, 8);
    assert!((f0 - f1).abs() <= 1e-12 * f0, "{f0} vs {f1}");
}

#[test]
fn sca_reaches_the_brute_force_optimum_on_a_rayleigh_mac() {
    // K = 2 over Rayleigh fading to 4 AP antennas, budgets where the closed form says the
    // energy must bind: the share each device could take at full power, m_n^free = (E_n −
    // U p^max/B)/(e_n F), sum below 1, so at every feasible split at least one device has
    // less than p^max
    let p = two(4, SmallScale::Rayleigh, [1.2e-3, 1.6e-3], 1.0);
    let free: Vec<f64> = (0..2)
        .map(|n| {
            (p.energy_budget_j[n] - p.uses_per_token * p.max_power_w[n] / p.bandwidth_hz)
                / (p.energy_per_flop[n] * p.flops_per_token)
        })
        .collect();
    assert!(free.iter().sum::<f64>() < 1.0, "{free:?}");
    let val = 77;
    let step = 0.01;
    let (grid, fgrid) = brute_force(&p, step, val, 200);
    let r = p.optimise(400, 5, 8).unwrap();
    let fsca = p.expected_mse(&r.shares, val, 200);
    eprintln!("grid {grid} {fgrid:e}, SCA {:?} {fsca:e}", r.shares);
    assert!(r.energy_binds.iter().any(|&b| b));
    // the objective is not flat: equal shares are clearly worse (so the comparison below
    // can fail)
    let funi = p.expected_mse(&[0.5, 0.5], val, 200);
    assert!(funi > 1.05 * fgrid, "{funi} vs {fgrid}");
    // within grid resolution: SCA (trained on other draws) is within one grid step of the
    // brute force's optimum on the brute force's own 200 channels, and its expected MSE
    // there within 0.2 % of the grid optimum's (measured: 0.004 and 0.008 %)
    assert!(
        (r.shares[0] - grid).abs() <= step,
        "{:?} vs {grid}",
        r.shares
    );
    assert!(fsca <= fgrid * 1.002, "{fsca} vs {fgrid}");
    // the designs never spend more than the budget
    let used = p.energy_use(&r.shares, val, 50);
    for (u, b) in used.iter().zip(&p.energy_budget_j) {
        assert!(*u <= b * (1.0 + 1e-9), "{used:?}");
    }
}

#[test]
fn the_gradient_matches_finite_differences_with_streams_and_rician_fading() {
    let mut p = hetero();
    p.signal = SignalModel::Paper;
    p.mac = Mac::new(MacConfig {
        devices: 4,
        rx_antennas: 4,
        tx_antennas: 2,
        small_scale: SmallScale::Rician {
            k_factor_db: 3.0,
            aoa_deg: vec![],
        },
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    })
    .unwrap();
    for streams in [1, 2] {
        p.streams = streams;
        p.validate().unwrap();
        for seed in 0..3 {
            let h = p.channels(seed, 0);
            let (f0, fd, an) = directional(&p, &h);
            assert!(f0 > 0.0 && f0.is_finite());
            assert!(
                (fd - an).abs() < 0.05 * fd.abs().max(an.abs()) + 1e-12,
                "L = {streams}, seed {seed}: fd {fd} vs {an}"
            );
        }
    }
    // more streams than antennas: refused, naming the option
    p.streams = 3;
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("streams = 3"), "{e}");
}

#[test]
fn for_devices_builds_the_runs_mac_and_a_default_budget_that_binds() {
    use crate::device::Profiles;
    let cfg = airinfer_llm::cost::presets::smollm2_135m();
    let lib = Profiles::builtin();
    let profiles: Vec<DeviceProfile> = ["jetson-agx-orin", "raspberry-pi-5"]
        .iter()
        .map(|n| lib.get(n).unwrap().clone())
        .collect();
    let rician = SmallScale::Rician {
        k_factor_db: 6.0,
        aoa_deg: vec![],
    };
    let setup = PlanSetup {
        cfg: &cfg,
        profiles: &profiles,
        gains: &[1.0, 0.3],
        energy_budget_j: None,
        snr_db: 20.0,
        rx_antennas: 8,
        tx_antennas: 2,
        streams: 2,
        small_scale: rician.clone(),
        signal: SignalModel::Paper,
        bandwidth_hz: 10e6,
        weight_bits: 5.0,
        latency_budget_s: None,
    };
    let p = PlanProblem::for_devices(&setup).unwrap();
    assert_eq!(p.mac.cfg.rx_antennas, 8);
    assert_eq!(p.mac.cfg.tx_antennas, 2);
    assert_eq!(p.mac.cfg.small_scale, rician);
    assert_eq!(p.streams, 2);
    // the realisations are what the run's MAC draws: N_r × N_t
    assert!(p.channels(1, 0).iter().all(|h| h.shape() == (8, 2)));
    // L₀/L: 2 all-reduces of n_embd reals per block, 2 reals per symbol, 2 streams
    assert_eq!(p.uses_per_token, (30 * 576 / 2) as f64);
    // default budget: at equal shares every device transmits at half its maximum power
    for n in 0..2 {
        let half = 0.5 * p.max_power_w[n];
        assert!((p.power(n, 0.5) - half).abs() < 1e-9 * half);
        assert!(p.energy_binds(n, 0.5));
    }
    // more streams than antennas: refused with the option's name
    let e = PlanProblem::for_devices(&PlanSetup {
        streams: 3,
        ..setup.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("streams = 3") && e.contains("tx_antennas = 2"),
        "{e}"
    );
    // a large explicit budget does not bind
    let big = [1.0, 1.0];
    let p = PlanProblem::for_devices(&PlanSetup {
        energy_budget_j: Some(&big),
        ..setup
    })
    .unwrap();
    assert!((0..2).all(|n| !p.energy_binds(n, 0.5)));
}

/// paper_h's devices (an AGX Orin, Orin NX, Orin Nano and a Raspberry Pi 5 at 0/−3/−6/−10 dB,
/// 0.25 mJ per token): the Pi's energy cap is 3 % of the model, so at the start (its uniform
/// share projected onto that cap) its gradient is orders above the Jetsons'. With the surrogate's
/// weight τ fixed from that first gradient, every later step was ~10⁻⁴ of the shares and the
/// plan froze at equal Jetson shares, 1.3 % worse than compute-proportional shares in its own
/// model. It must now beat every feasible baseline.
#[test]
fn an_outlier_first_gradient_does_not_freeze_the_plan() {
    use crate::device::Profiles;
    let cfg = airinfer_llm::cost::presets::smollm2_135m();
    let lib = Profiles::builtin();
    let names = [
        "jetson-agx-orin",
        "jetson-orin-nx",
        "jetson-orin-nano",
        "raspberry-pi-5",
    ];
    let profiles: Vec<DeviceProfile> = names.iter().map(|n| lib.get(n).unwrap().clone()).collect();
    let gains: Vec<f64> = [0.0f64, -3.0, -6.0, -10.0]
        .iter()
        .map(|db| 10f64.powf(db / 10.0))
        .collect();
    let budget = [0.25e-3; 4];
    let p = PlanProblem::for_devices(&PlanSetup {
        cfg: &cfg,
        profiles: &profiles,
        gains: &gains,
        energy_budget_j: Some(&budget),
        snr_db: 20.0,
        rx_antennas: 4,
        tx_antennas: 1,
        streams: 1,
        small_scale: SmallScale::Rayleigh,
        signal: SignalModel::Paper,
        bandwidth_hz: 10e6,
        weight_bits: 5.0,
        latency_budget_s: None,
    })
    .unwrap();
    let caps = p.caps();
    assert!(caps[3] < 0.05, "{caps:?}");
    let r = p.optimise(300, 2025, 64).unwrap();
    let val = validation_seed(2025);
    // the shares moved off the frozen point: the Jetsons no longer equal
    assert!((r.shares[0] - r.shares[2]).abs() > 0.05, "{:?}", r.shares);
    for (name, m) in baselines(&profiles) {
        if !within_caps(&m, &caps) {
            continue;
        }
        let f = p.expected_mse(&m, val, 64);
        // measured: SCA 5.21e-2, compute-proportional 5.26e-2 (frozen: 5.33e-2)
        assert!(r.expected_mse < f, "SCA {} vs {name} {f}", r.expected_mse);
    }
}
