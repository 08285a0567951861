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

#[test]
fn ring_data_path_delivers_the_sum_to_every_device() {
    // small integers are exact in fp16, and so are their partial sums: every device gets the
    // exact sum, whatever the chunking (n not a multiple of K, and K > n)
    for (k, n) in [(2usize, 7usize), (3, 10), (4, 4), (5, 3)] {
        let mut b: Vec<Vec<f32>> = (0..k)
            .map(|d| {
                (0..n)
                    .map(|i| ((d * 7 + i * 3) % 11) as f32 - 5.0)
                    .collect()
            })
            .collect();
        let exact: Vec<f32> = (0..n).map(|i| b.iter().map(|v| v[i]).sum()).collect();
        ring_all_reduce(&mut b, Quantiser::Fp16);
        for v in &b {
            assert_eq!(v, &exact, "K = {k}, n = {n}");
        }
    }
    // int8: chunk c's owner (device c) keeps its running sum, every other device the owner's
    // value quantised once (so within one quantisation step of it); the owner is within K − 1
    // requantisations of the exact sum
    let (k, n) = (4usize, 64usize);
    let mut b: Vec<Vec<f32>> = (0..k)
        .map(|d| {
            (0..n)
                .map(|i| ((d * 31 + i * 17) % 97) as f32 / 97.0 - 0.5)
                .collect()
        })
        .collect();
    let exact: Vec<f32> = (0..n).map(|i| b.iter().map(|v| v[i]).sum()).collect();
    let q = Quantiser::Int8 { block: 32 };
    ring_all_reduce(&mut b, q);
    let chunk = n.div_ceil(k);
    let step = k as f32 * 0.5 / 127.0; // |running sum| ≤ K·0.5, one int8 step of it
    for i in 0..n {
        let owner = i / chunk;
        assert!(
            (b[owner][i] - exact[i]).abs() <= (k - 1) as f32 * step,
            "value {i}"
        );
        for d in 0..k {
            assert!(
                (b[d][i] - b[owner][i]).abs() <= step,
                "device {d}, value {i}"
            );
        }
    }
    // a device that is not the owner got exactly the quantised owner's chunk
    let owned: Vec<f32> = b[1][chunk..2 * chunk].to_vec();
    assert_eq!(b[0][chunk..2 * chunk], q.roundtrip(&owned)[..]);
}
