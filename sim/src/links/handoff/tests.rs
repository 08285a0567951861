//! Fading hand-off links: the delivered rate against an independent integral over the fading
//! distribution, Jakes' autocorrelation, reciprocity and order-independence of the channel,
//! non-fading links unchanged, and the geometry's mean SNRs.

use super::*;
use crate::links::geometry::Geometry;
use airinfer_phy::channel::LargeScale;
use airinfer_phy::digital::NR_CQI_TABLE1_SE as SE;

fn radio(snr_db: f64, fading: Option<LinkFading>) -> HandoffLink {
    HandoffLink::Wireless {
        bandwidth_hz: 1e6,
        snr_db,
        bler: BlerModel::default(),
        target_bler: 0.1,
        max_tx: 4,
        block_bytes: 1024,
        overhead_s: 0.0,
        fading,
    }
}

/// Effective rate `se·B / E[transmissions]` (bit/s) at `snr_db` for the links of [`radio`],
/// written from the phy's link adaptation directly (not through the link).
fn rate_at(snr_db: f64) -> f64 {
    let o = mcs_airtime(1, 1.0, snr_db, &BlerModel::default(), 0.1, 4).unwrap();
    SE[o.cqi.unwrap_or(0)] * 1e6 / o.expected_tx
}

/// E[f(snr_mean · x)] for x ~ Exp(1) (Rayleigh power), by the midpoint rule on the quantile
/// u = 1 − e^{−x} with `m` points: an integral written here, independent of the link's own
/// quadrature (a grid in dB weighted by the density).
fn rayleigh_mean(snr_db: f64, m: usize, f: impl Fn(f64) -> f64) -> f64 {
    (0..m)
        .map(|k| {
            let u = (k as f64 + 0.5) / m as f64;
            let x = -(1.0 - u).ln();
            f(snr_db + 10.0 * x.log10())
        })
        .sum::<f64>()
        / m as f64
}

#[test]
fn block_fading_rate_is_the_mean_of_the_per_snr_rate() {
    // Delivered rate: payload bits sent / airtime of a link that always has a message to
    // send (each starting when the previous ends), over many coherence intervals. Within an
    // interval at SNR s the link delivers se(s)·B / E[n | s] bits per second of airtime
    // (renewal-reward over the HARQ draws); every interval lasts the coherence time, so over
    // many intervals the rate tends to E_s[se(s)·B / E[n | s]] — what the planners use.
    let (mean_db, tc, bytes) = (10.0, 0.05, 8.0);
    let f = LinkFading {
        small_scale: LinkSmallScale::Rayleigh,
        time: TimeModel::Block {
            coherence_time_s: tc,
        },
    };
    let link = radio(mean_db, Some(f));
    let intervals = 10_000usize;
    let mut state = FadingState::new(11);
    let mut harq = rng::stream(11, &[99]);
    // per coherence interval (by the start of each message): bits, airtime
    let mut per = vec![(0.0f64, 0.0f64); intervals + 1];
    let mut t = 0.0;
    while t < intervals as f64 * tc {
        let snr = state.snr_db(&link, 0, 1, t);
        let (occ, _) = link.occupancy_at(bytes, snr, &mut harq);
        let k = (t / tc).floor() as usize;
        per[k].0 += bytes * 8.0;
        per[k].1 += occ;
        t += occ;
    }
    let (bits, time): (f64, f64) = per.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    let got = bits / time;
    // standard error of the ratio estimator (delta method over the independent intervals)
    let se = per
        .iter()
        .map(|&(b, t)| (b - got * t).powi(2))
        .sum::<f64>()
        .sqrt()
        / time;
    let want = rayleigh_mean(mean_db, 200_000, rate_at);
    // The message straddling an interval's end runs at the old SNR: the time at SNR s is
    // T_c + (overshoot at s) − (overshoot into it), the overshoot at most max_tx·L/(se(s)·B),
    // about half of it on average. Its bias is below E[r]·(max_tx·L/2T_c)·E[1/(se·B)]; here
    // about 0.1 % (the standard error is ~0.7 %).
    let inv = rayleigh_mean(mean_db, 200_000, |s| {
        let o = mcs_airtime(1, 1.0, s, &BlerModel::default(), 0.1, 4).unwrap();
        1.0 / (SE[o.cqi.unwrap_or(0)] * 1e6)
    });
    let bias = want * 4.0 * bytes * 8.0 / (2.0 * tc) * inv;
    assert!(
        bias < 0.003 * want && se < 0.01 * want,
        "bias {bias}, se {se}"
    );
    assert!(
        (got - want).abs() <= 4.0 * se + bias,
        "delivered {got}, E[rate] {want}, se {se}, bias bound {bias}"
    );
    // the planners' quadrature: the same expectation, to 0.1 %
    let (lat, bw) = link.planner_terms();
    assert_eq!(lat, 0.0);
    assert!(
        (bw * 8.0 / want - 1.0).abs() < 1e-3,
        "planner {} vs {want}",
        bw * 8.0
    );
    // and it is not the rate at the mean SNR (fading costs ≥ 10 % here)
    assert!(rate_at(mean_db) > 1.1 * want, "{} {want}", rate_at(mean_db));
    assert!((got - rate_at(mean_db)).abs() > 20.0 * se);
}

#[test]
fn rician_planner_rate_matches_independent_draws() {
    // the Rician density (non-central χ², scaled Bessel I₀) against direct draws of |h|²
    for k_db in [0.0, 6.0, 20.0] {
        let f = LinkFading {
            small_scale: LinkSmallScale::Rician { k_factor_db: k_db },
            time: TimeModel::Block {
                coherence_time_s: 1e-3,
            },
        };
        let link = radio(8.0, Some(f));
        let mut r = rng::stream(5, &[k_db as u64]);
        let n = 200_000;
        let xs: Vec<f64> = (0..n)
            .map(|_| rate_at(8.0 + 10.0 * f.draw_power(&mut r).log10()))
            .collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        let planned = link.planner_terms().1 * 8.0;
        assert!(
            (planned - m).abs() <= 4.0 * se + 1e-4 * m,
            "K = {k_db} dB: planner {planned}, draws {m} ± {se}"
        );
        // the quadrature's weights make a distribution of mean power 1
        let q = f.power_quadrature();
        let (w, mean): (f64, f64) = q
            .iter()
            .fold((0.0, 0.0), |(a, b), &(x, w)| (a + w, b + w * x));
        assert!(
            (w - 1.0).abs() < 1e-12 && (mean - 1.0).abs() < 1e-3,
            "{w} {mean}"
        );
    }
}

/// J₀(x) = (1/π) ∫₀^π cos(x sin θ) dθ (midpoint rule; independent of `bessel_j0`).
fn j0(x: f64) -> f64 {
    let m = 20_000;
    (0..m)
        .map(|k| {
            let th = (k as f64 + 0.5) / m as f64 * std::f64::consts::PI;
            (x * th.sin()).cos()
        })
        .sum::<f64>()
        / m as f64
}

#[test]
fn jakes_fading_has_the_bessel_autocorrelation() {
    let fd = 10.0;
    let f = LinkFading {
        small_scale: LinkSmallScale::Rayleigh,
        time: TimeModel::Jakes { doppler_hz: fd },
    };
    // after a gap with 2π f_D gap at J₀'s first zero the process starts afresh (ρ = 0), so
    // the pairs (h(t), h(t + τ)) below are independent and the sample mean's error is the
    // plain standard error
    let gap = 2.404_825_557_695_773 / (2.0 * std::f64::consts::PI * fd);
    for x in [0.5, 1.5, 3.0, 5.0] {
        let tau = x / (2.0 * std::f64::consts::PI * fd);
        let mut state = FadingState::new(3);
        let n = 20_000;
        let (mut t, mut prods, mut power) = (0.0, Vec::with_capacity(n), 0.0);
        for _ in 0..n {
            let a = state.coefficient(&f, 2, 0, t);
            // the reverse direction reads the same coefficient
            assert_eq!(state.coefficient(&f, 0, 2, t), a);
            let b = state.coefficient(&f, 0, 2, t + tau);
            prods.push((b * a.conj()).re);
            power += a.norm_sqr();
            t += tau + gap;
        }
        let m = prods.iter().sum::<f64>() / n as f64;
        let sd = (prods.iter().map(|p| (p - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        let want = j0(x);
        assert!(
            (m - want).abs() <= 4.0 * se,
            "2π f_D τ = {x}: {m} vs J0 = {want} (se {se})"
        );
        // unit power (Exp(1): standard deviation 1)
        assert!((power / n as f64 - 1.0).abs() <= 4.0 / (n as f64).sqrt());
        // a time before the pair's last query reads the last value (clamped)
        let last = state.coefficient(&f, 0, 2, t);
        assert_eq!(state.coefficient(&f, 2, 0, t - 1.0), last);
    }
}

#[test]
fn block_fading_is_a_function_of_time_shared_by_both_directions() {
    let f = LinkFading {
        small_scale: LinkSmallScale::Rician { k_factor_db: 3.0 },
        time: TimeModel::Block {
            coherence_time_s: 0.01,
        },
    };
    let times: Vec<f64> = (0..200).map(|k| k as f64 * 0.0037).collect();
    let mut fwd = FadingState::new(8);
    let a: Vec<C64> = times
        .iter()
        .map(|&t| fwd.coefficient(&f, 1, 4, t))
        .collect();
    // another order of queries, the other direction, other pairs queried in between
    let mut back = FadingState::new(8);
    for (k, &t) in times.iter().enumerate().rev() {
        back.coefficient(&f, 0, 1, t);
        assert_eq!(back.coefficient(&f, 4, 1, t), a[k]);
    }
    // constant within a coherence interval, new in the next; other pairs and seeds differ
    assert_eq!(
        fwd.coefficient(&f, 1, 4, 0.0),
        fwd.coefficient(&f, 1, 4, 0.0099)
    );
    assert_ne!(
        fwd.coefficient(&f, 1, 4, 0.0),
        fwd.coefficient(&f, 1, 4, 0.0101)
    );
    assert_ne!(
        fwd.coefficient(&f, 1, 4, 0.0),
        fwd.coefficient(&f, 1, 3, 0.0)
    );
    assert_ne!(
        FadingState::new(9).coefficient(&f, 1, 4, 0.0),
        fwd.coefficient(&f, 1, 4, 0.0)
    );
    // the SNR of a fading link is its mean plus the coefficient's power in dB
    let link = radio(12.0, Some(f));
    let h = fwd.coefficient(&f, 1, 4, 0.5);
    assert_eq!(
        fwd.snr_db(&link, 4, 1, 0.5),
        12.0 + 10.0 * h.norm_sqr().log10()
    );
    // bad descriptions are refused, naming the field
    for (bad, field) in [
        (
            TimeModel::Block {
                coherence_time_s: -1.0,
            },
            "coherence_time_s",
        ),
        (
            TimeModel::Block {
                coherence_time_s: f64::NAN,
            },
            "coherence_time_s",
        ),
        (
            TimeModel::Jakes {
                doppler_hz: f64::INFINITY,
            },
            "doppler_hz",
        ),
    ] {
        let l = radio(
            12.0,
            Some(LinkFading {
                small_scale: LinkSmallScale::Rayleigh,
                time: bad,
            }),
        );
        let e = l.validate().unwrap_err();
        assert!(e.contains(field), "{e}");
    }
}

/// A wireless link's occupancy as it was computed before links could fade: the MCS at the
/// link's SNR, HARQ draws per block.
fn occupancy_before(l: &HandoffLink, bytes: f64, r: &mut rng::Rng) -> (f64, Vec<usize>) {
    let HandoffLink::Wireless {
        bandwidth_hz,
        snr_db,
        bler,
        target_bler,
        max_tx,
        block_bytes,
        ..
    } = *l
    else {
        unreachable!()
    };
    let (se, b) = mcs_airtime(1, 1.0, snr_db, &bler, target_bler, max_tx)
        .ok()
        .map(|o| {
            let se = NR_CQI_TABLE1_SE[o.cqi.unwrap_or(0)];
            (se, bler.bler(se, snr_db))
        })
        .unwrap_or((NR_CQI_TABLE1_SE[0], 1.0));
    let blocks = (bytes / block_bytes as f64).ceil() as usize;
    let (mut t, mut lost) = (0.0, Vec::new());
    for blk in 0..blocks {
        let len = (bytes - (blk * block_bytes) as f64).min(block_bytes as f64);
        let (n, ok) = harq_draw(b, max_tx, r);
        t += n as f64 * len * 8.0 / (se * bandwidth_hz);
        if !ok {
            lost.push(blk);
        }
    }
    (t, lost)
}

#[test]
fn links_without_fading_are_unchanged() {
    for snr in [-20.0, 0.0, 3.0, 7.5, 25.0] {
        let l = radio(snr, None);
        let (mut a, mut b, mut c) = (
            rng::stream(4, &[1]),
            rng::stream(4, &[1]),
            rng::stream(4, &[1]),
        );
        let mut state = FadingState::new(4);
        for bytes in [1.0, 1000.0, 1024.0, 5000.5, 100_000.0] {
            let want = occupancy_before(&l, bytes, &mut a);
            let s = state.snr_db(&l, 0, 1, bytes);
            assert_eq!(s, snr);
            assert_eq!(l.occupancy_at(bytes, s, &mut b), want);
            assert_eq!(l.occupancy(bytes, &mut c), want);
        }
        // the planners' terms: the MCS rate at the SNR over the expected transmissions
        let o = mcs_airtime(1, 1.0, snr, &BlerModel::default(), 0.1, 4).unwrap();
        let se = NR_CQI_TABLE1_SE[o.cqi.unwrap_or(0)];
        let b = BlerModel::default().bler(se, snr);
        let tx: f64 = (0..4).map(|n| b.powi(n)).sum();
        assert_eq!(l.planner_terms(), (0.0, se * 1e6 / 8.0 / tx));
    }
    // ideal and wired links read no SNR
    let w = HandoffLink::Wired {
        bandwidth: 1e6,
        latency_s: 1e-3,
    };
    let mut r = rng::stream(1, &[]);
    assert_eq!(w.occupancy_at(1e3, 99.0, &mut r), (1e-3, vec![]));
    assert_eq!(FadingState::new(1).snr_db(&w, 0, 1, 0.0), 0.0);
    // the serialised link is what it was (no `fading` key)
    let json = serde_json::to_string(&radio(3.0, None)).unwrap();
    assert!(!json.contains("fading"), "{json}");
}

#[test]
fn geometry_gives_log_distance_snr() {
    let g = Geometry {
        positions_m: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 40.0], [30.0, 40.0]],
        large_scale: LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.0,
            shadowing_db: 0.0,
            distances_m: vec![],
        },
        tx_snr_db: 100.0,
    };
    let mut net = Network::uniform(4, radio(0.0, None));
    net.links[2][3] = HandoffLink::Wired {
        bandwidth: 1e6,
        latency_s: 0.0,
    };
    let snr = g.apply(&mut net, &mut rng::stream(1, &[])).unwrap();
    for (i, (row, a)) in snr.iter().zip(&g.positions_m).enumerate() {
        for (j, (&s, b)) in row.iter().zip(&g.positions_m).enumerate() {
            if i == j {
                assert!(s.is_nan());
                continue;
            }
            let d = (a[0] - b[0]).hypot(a[1] - b[1]);
            let want = 100.0 - 40.0 - 10.0 * 3.0 * (d / 1.0).log10();
            assert!((s - want).abs() < 1e-9, "{i}→{j}: {s}");
            match net.links[i][j] {
                HandoffLink::Wireless { snr_db, .. } => assert_eq!(snr_db, s),
                // a wired link keeps its numbers
                HandoffLink::Wired { bandwidth, .. } => {
                    assert_eq!((i, j, bandwidth), (2, 3, 1e6))
                }
                HandoffLink::Ideal => unreachable!(),
            }
        }
    }
    // 50 m (3-4-5) → 100 − 40 − 30·log10(50)
    assert!((snr[0][3] - (60.0 - 30.0 * 50f64.log10())).abs() < 1e-9);
    // shadowing: one draw per pair, the same both ways, centred on the path loss
    let shadowed = Geometry {
        large_scale: LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.0,
            shadowing_db: 8.0,
            distances_m: vec![],
        },
        ..g.clone()
    };
    let mut dev = Vec::new();
    for seed in 0..2000 {
        let s = shadowed.mean_snr_db(&mut rng::stream(seed, &[])).unwrap();
        assert_eq!(s[1][2], s[2][1]);
        dev.push(s[1][2] - snr[1][2]);
    }
    let m = dev.iter().sum::<f64>() / dev.len() as f64;
    let sd = (dev.iter().map(|x| (x - m).powi(2)).sum::<f64>() / dev.len() as f64).sqrt();
    assert!(m.abs() < 4.0 * 8.0 / (2000f64).sqrt() && (sd / 8.0 - 1.0).abs() < 0.1);
    // one position per device; two devices at one place have no distance
    let e = g.apply(
        &mut Network::uniform(3, radio(0.0, None)),
        &mut rng::stream(1, &[]),
    );
    assert!(e.unwrap_err().contains("positions_m"));
    let same = Geometry {
        positions_m: vec![[1.0, 1.0], [1.0, 1.0]],
        ..g.clone()
    };
    let e = same.mean_snr_db(&mut rng::stream(1, &[])).unwrap_err();
    assert!(e.contains("positions_m[0]"), "{e}");
}

#[test]
fn the_numbers_path_draws_each_message_snr_from_the_fading() {
    // no clock on this path: every message sees an independent draw of |h|², so the mean
    // airtime of a one-block message is E_s[bits · E[n | s] / (se(s)·B)]
    let f = LinkFading {
        small_scale: LinkSmallScale::Rayleigh,
        time: TimeModel::Block {
            coherence_time_s: 1.0,
        },
    };
    let link = radio(10.0, Some(f));
    let mut streams = crate::links::Streams::new(21);
    let n = 20_000;
    let airtimes: Vec<f64> = (0..n)
        .map(|_| {
            let mut x = vec![vec![1.0f32; 100]];
            let call = Call {
                start: Time::ZERO,
                width: 100,
                n_tokens: 1,
                round: 0,
                medium: None,
                streams: &mut streams,
            };
            let mut h = Handoff {
                link: &link,
                wire: Wire::F32,
            };
            h.carry(call, &mut x).airtime.secs()
        })
        .collect();
    let m = airtimes.iter().sum::<f64>() / n as f64;
    let sd = (airtimes.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let se = sd / (n as f64).sqrt();
    let want = rayleigh_mean(10.0, 200_000, |s| {
        let o = mcs_airtime(1, 1.0, s, &BlerModel::default(), 0.1, 4).unwrap();
        400.0 * 8.0 * o.expected_tx / (SE[o.cqi.unwrap_or(0)] * 1e6)
    });
    // airtimes are whole nanoseconds (≤ 0.5 ns off each)
    assert!(
        (m - want).abs() <= 4.0 * se + 1e-9,
        "mean airtime {m}, expected {want} ± {se}"
    );
    // without fading: the mean SNR every time
    let still = radio(10.0, None);
    let mut streams = crate::links::Streams::new(21);
    let mut x = vec![vec![1.0f32; 100]];
    let call = Call {
        start: Time::ZERO,
        width: 100,
        n_tokens: 1,
        round: 0,
        medium: None,
        streams: &mut streams,
    };
    let got = Handoff {
        link: &still,
        wire: Wire::F32,
    }
    .carry(call, &mut x);
    let mut r = crate::links::Streams::new(21).packet;
    assert_eq!(got.airtime, Time::from_secs(still.send(400.0, &mut r).0));
}
