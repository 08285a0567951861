//! The `airinfer` binary as a user runs it: JSON other programs can trust, one-line errors with a
//! non-zero exit for bad input.

mod common;
use common::*;

type C = (f64, f64);

fn cm(v: &serde_json::Value) -> Vec<Vec<C>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|z| (z[0].as_f64().unwrap(), z[1].as_f64().unwrap()))
                .collect()
        })
        .collect()
}

fn mul(a: C, b: C) -> C {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

/// A channel file in the documented JSON layout: (R, K, N_r, N_t) of [re, im].
fn channels(r: usize, k: usize, nr: usize, nt: usize) -> (String, Vec<Vec<Vec<Vec<C>>>>) {
    let mut s = 12345u64;
    let mut g = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let h: Vec<Vec<Vec<Vec<C>>>> = (0..r)
        .map(|_| {
            (0..k)
                .map(|_| {
                    (0..nr)
                        .map(|_| (0..nt).map(|_| (g(), g())).collect())
                        .collect()
                })
                .collect()
        })
        .collect();
    let json = serde_json::to_string(
        &h.iter()
            .map(|rk| {
                rk.iter()
                    .map(|m| {
                        m.iter()
                            .map(|row| row.iter().map(|z| [z.0, z.1]).collect::<Vec<_>>())
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    (json, h)
}

#[test]
fn aircomp_design_json_recomputes_to_its_mse_and_meets_the_budgets() {
    let dir = std::env::temp_dir().join(format!("airinfer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, h) = channels(2, 3, 4, 2);
    let path = dir.join("h.json");
    std::fs::write(&path, json).unwrap();
    let (noise, power, var) = (0.2, [1.0, 0.5, 2.0], [1.0, 2.0, 0.5]);
    for (design, streams) in [("zf", 1), ("mmse", 1), ("sca", 2), ("sdr", 2), ("mmse", 2)] {
        let (code, out, err) = airinfer(&[
            "aircomp",
            "design",
            "--channels",
            path.to_str().unwrap(),
            "--design",
            design,
            "--streams",
            &streams.to_string(),
            "--noise-var",
            "0.2",
            "--power-budget",
            "1,0.5,2",
            "--signal-var",
            "1,2,0.5",
            "--json",
        ]);
        assert_eq!(code, 0, "{design}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        for (r, real) in v["realisations"].as_array().unwrap().iter().enumerate() {
            let a = cm(&real["receive_beamformer"]);
            assert_eq!((a.len(), a[0].len()), (4, streams));
            // MSE = Σ_k σ_k² ‖AᴴH_kB_k − I‖² + σ² ‖A‖², recomputed here from the printed matrices
            let mut m = noise
                * a.iter()
                    .flatten()
                    .map(|z| z.0 * z.0 + z.1 * z.1)
                    .sum::<f64>();
            for (k, bk) in real["precoders"].as_array().unwrap().iter().enumerate() {
                let b = cm(bk);
                assert_eq!((b.len(), b[0].len()), (2, streams));
                let p: f64 = var[k]
                    * b.iter()
                        .flatten()
                        .map(|z| z.0 * z.0 + z.1 * z.1)
                        .sum::<f64>();
                // serde_json prints f64s so they read back exactly: recomputing from the printed
                // matrices costs only f64 rounding (~1e-15), so 1e-6 is loose (also below)
                assert!(
                    p <= power[k] * (1.0 + 1e-6),
                    "{design}: device {k} uses {p}"
                );
                for i in 0..streams {
                    for j in 0..streams {
                        let mut e = (if i == j { -1.0 } else { 0.0 }, 0.0);
                        for (rr, arow) in a.iter().enumerate() {
                            let ac = (arow[i].0, -arow[i].1);
                            for (t, bt) in b.iter().enumerate() {
                                let x = mul(mul(ac, h[r][k][rr][t]), bt[j]);
                                e = (e.0 + x.0, e.1 + x.1);
                            }
                        }
                        m += var[k] * (e.0 * e.0 + e.1 * e.1);
                    }
                }
            }
            let said = real["mse"].as_f64().unwrap();
            assert!(
                (m / said - 1.0).abs() < 1e-6,
                "{design} L={streams}: {m} vs {said}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_one_line_and_exit_one() {
    let dir = std::env::temp_dir().join(format!("airinfer-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ragged = dir.join("ragged.json");
    std::fs::write(&ragged, "[[[[[1,0]],[[1,0]]],[[[1,0]]]]]").unwrap();
    let missing = dir.join("missing.json");
    // a coefficient of 1e300 used to come out as "orthogonal to the receive direction"
    let huge = dir.join("huge.json");
    std::fs::write(&huge, "[[[[[1e300,0]]],[[[1,0]]]]]").unwrap();
    let bad_cfg = dir.join("bad.toml");
    std::fs::write(&bad_cfg, "scheme = \"aircomp\"\nsnr = 3\n").unwrap();
    let bad_enum = dir.join("enum.toml");
    std::fs::write(&bad_enum, "scheme = \"air\"\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "aircomp".into(),
                "mse".into(),
                "--devices".into(),
                "0".into(),
            ],
            "K = 0",
        ),
        (
            vec![
                "aircomp".into(),
                "mse".into(),
                "--streams".into(),
                "2".into(),
            ],
            "--streams",
        ),
        (
            vec![
                "aircomp".into(),
                "design".into(),
                "--channels".into(),
                ragged.to_string_lossy().into_owned(),
                "--json".into(),
            ],
            "ragged.json",
        ),
        (
            vec![
                "aircomp".into(),
                "design".into(),
                "--channels".into(),
                missing.to_string_lossy().into_owned(),
                "--json".into(),
            ],
            "missing.json",
        ),
        (
            vec![
                "aircomp".into(),
                "design".into(),
                "--channels".into(),
                huge.to_string_lossy().into_owned(),
                "--json".into(),
            ],
            "huge.json: realisation 0, device 0: entry",
        ),
        (
            vec!["inspect".into(), missing.to_string_lossy().into_owned()],
            "missing.json",
        ),
        (
            vec![
                "eval".into(),
                "--config".into(),
                bad_cfg.to_string_lossy().into_owned(),
            ],
            "unknown field `snr`",
        ),
        (
            vec![
                "eval".into(),
                "--config".into(),
                bad_enum.to_string_lossy().into_owned(),
            ],
            "enum.toml: scheme = \"air\"",
        ),
        (
            vec!["plan".into(), "--latency-ms".into(), "0.001".into()],
            "cannot hold the whole model",
        ),
        (
            vec!["plan".into(), "--profiles".into(), "nope".into()],
            "unknown device profile 'nope'",
        ),
    ];
    for (args, needle) in cases {
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (code, out, err) = airinfer(&refs);
        assert_eq!(code, 1, "{args:?}: stdout {out} stderr {err}");
        assert!(out.is_empty(), "{args:?} wrote to stdout: {out}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_old_design_name_fast_gives_one_line_saying_the_new_one() {
    // the CLI flag
    let (code, _, err) = airinfer(&["aircomp", "mse", "--designs", "zf,fast"]);
    assert_ne!(code, 0);
    assert!(err.contains("`fast` is now called `sca`"), "{err}");
    // an experiment file
    let dir = std::env::temp_dir().join(format!("airinfer-cli-fast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("old.toml");
    std::fs::write(
        &f,
        "kind = \"allreduce\"\n[scheme]\nkind = \"aircomp\"\ndesign = \"fast\"\n",
    )
    .unwrap();
    let (code, _, err) = airinfer(&["check", f.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("old.toml") && err.contains("design \"fast\" is now called \"sca\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // and the new name is accepted
    std::fs::write(
        &f,
        "kind = \"allreduce\"\n[scheme]\nkind = \"aircomp\"\ndesign = \"sca\"\n",
    )
    .unwrap();
    let (code, _, err) = airinfer(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_snr_beyond_f64_noise_powers_is_one_located_error() {
    let dir = std::env::temp_dir().join(format!("airinfer-cli-snr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("snr.toml");
    std::fs::write(
        &f,
        "kind = \"allreduce\"\n[channel]\nsnr_db = 3100\n[scheme]\nkind = \"aircomp\"\n",
    )
    .unwrap();
    let (code, _, err) = airinfer(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("snr.toml:3") && err.contains("channel.snr_db") && err.contains("±300 dB"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn zero_chunks_is_refused_not_taken_as_one() {
    let (code, _, err) = airinfer(&["eval", "--chunks", "0"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--chunks") && err.contains("at least 1"),
        "{err}"
    );
}

#[test]
fn the_whole_u64_seed_range_is_usable() {
    let dir = std::env::temp_dir().join(format!("airinfer-cli-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("seed.toml");
    let body = |seed: &str| {
        format!("kind = \"allreduce\"\nseed = {seed}\nreplications = 2\n[allreduce]\nrealisations = 1\n[devices]\ncount = 2\n")
    };
    // past i64: TOML cannot hold it as an integer; the error says how to write it
    std::fs::write(&f, body("18446744073709551615")).unwrap();
    let (code, _, err) = airinfer(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("seed.toml:2") && err.contains("as a string"),
        "{err}"
    );
    // as a string it runs, and the streams of u64::MAX differ from those of 0
    let rows = |seed: &str, out: &str| {
        std::fs::write(&f, body(seed)).unwrap();
        let o = dir.join(out);
        let (code, _, err) = airinfer(&[
            "run",
            f.to_str().unwrap(),
            "--out",
            o.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(o.join("results.csv")).unwrap()
    };
    let max = rows("\"18446744073709551615\"", "max");
    let zero = rows("0", "zero");
    assert_eq!(max.lines().count(), 3, "{max}");
    assert_ne!(max, zero);
    // a negative seed or a non-number: one located line
    for bad in ["-1", "\"abc\"", "\"18446744073709551616\""] {
        std::fs::write(&f, body(bad)).unwrap();
        let (code, _, err) = airinfer(&["check", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{bad}: {err}");
        assert!(err.contains("seed"), "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `inspect` on a GGUF whose architecture the engine does not run: what the file holds on
/// stdout (architecture, tensor types), then one line naming the architecture, exit 1.
#[test]
fn inspect_shows_an_unsupported_file_and_names_its_architecture() {
    use airinfer_llm::gguf::{GgmlType, GgufWriter, MetadataValue as V};
    let dir = tmp("inspect-arch");
    let mut w = GgufWriter::new(3);
    w.add_metadata("general.architecture", V::String("mamba".into()));
    w.add_f32("output_norm.weight", &[4], &[1.0; 4]);
    w.add_tensor(
        "blk.0.ffn_down.weight",
        &[256, 1],
        GgmlType::Q4_K,
        vec![0u8; 144],
    );
    let path = dir.join("g.gguf");
    std::fs::write(&path, w.to_bytes()).unwrap();
    let (code, out, err) = airinfer(&["inspect", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(out.contains("architecture mamba, 2 tensors"), "{out}");
    assert!(out.contains("Q4_K") && out.contains("F32"), "{out}");
    assert!(err.contains("'mamba' is not supported"), "{err}");
    assert!(
        err.contains("gemma3") && err.contains("qwen3"),
        "the supported ones named: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A model of a supported architecture with a weight in a type the engine does not compute
/// with (IQ2_XXS): `eval` names the tensor and the type in one line, exit 1.
#[test]
fn a_weight_of_an_unsupported_type_is_named() {
    use airinfer_llm::gguf::{GgmlType, GgufWriter, MetadataValue as V};
    let dir = tmp("unsupported-type");
    let u = |x: u32| V::U32(x);
    let mut w = GgufWriter::new(3);
    w.add_metadata("general.architecture", V::String("llama".into()))
        .add_metadata("llama.block_count", u(1))
        .add_metadata("llama.embedding_length", u(256))
        .add_metadata("llama.feed_forward_length", u(256))
        .add_metadata("llama.attention.head_count", u(4));
    w.add_f32("token_embd.weight", &[256, 4], &[0.0; 1024]);
    w.add_f32("output_norm.weight", &[256], &[1.0; 256]);
    for n in ["attn_norm", "ffn_norm"] {
        w.add_f32(&format!("blk.0.{n}.weight"), &[256], &[1.0; 256]);
    }
    for n in [
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_gate",
        "ffn_up",
    ] {
        w.add_f32(
            &format!("blk.0.{n}.weight"),
            &[256, 256],
            &vec![0.0; 256 * 256],
        );
    }
    // IQ2_XXS: 66 bytes per 256 values
    w.add_tensor(
        "blk.0.ffn_down.weight",
        &[256, 256],
        GgmlType::IQ2_XXS,
        vec![0u8; 66 * 256],
    );
    let path = dir.join("m.gguf");
    std::fs::write(&path, w.to_bytes()).unwrap();
    let (code, out, err) = airinfer(&[
        "eval",
        "--model",
        path.to_str().unwrap(),
        "--max-tokens",
        "8",
    ]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains("blk.0.ffn_down.weight") && err.contains("IQ2_XXS"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
