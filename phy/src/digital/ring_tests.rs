
use super::*;

#[test]
fn ring_airtime_hand_cases() {
    // K = 4, 4 Mbit at 1 Mbit/s on every link: 6 steps of 1 s (closed forms below: a few
    // f64 operations on O(1) values, rounding ~1e-15)
    assert!((ring_allreduce_airtime(4_000_000, &[1e6; 4], 0.0).unwrap() - 6.0).abs() < 1e-12);
    // one slow link (0.5 Mbit/s) doubles every step; 1 ms per step overhead
    let t = ring_allreduce_airtime(4_000_000, &[1e6, 1e6, 0.5e6, 1e6], 1e-3).unwrap();
    assert!((t - 6.0 * (2.0 + 1e-3)).abs() < 1e-12);
    // a ring sends 2(K−1)/K of the payload per device, vs K payloads through one AP link
    assert_eq!(ring_allreduce_airtime(1000, &[1.0], 0.0).unwrap(), 0.0);
    assert!(ring_allreduce_airtime(1, &[], 0.0).is_err());
    assert!(ring_allreduce_airtime(1, &[1.0, 0.0], 0.0).is_err());
}
