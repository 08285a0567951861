//! `[model] shares = "sca"` (and the baselines by name) in `eval` / `latency` runs: the run
//! plans its shares and transmit powers with its own channel, devices, energy budget and seed —
//! the same numbers `airinfer plan` gives for the same inputs — and writes them as columns;
//! what the plan cannot serve is refused naming the key.

use std::path::Path;

mod common;
use common::*;

fn csv_rows(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

const PROFILES: &str = "[\"jetson-agx-orin\", \"jetson-orin-nano\", \"raspberry-pi-5\"]";

/// `airinfer plan` / `eval` flags of `latency_toml`'s devices and channel.
const RADIO_FLAGS: [&str; 10] = [
    "--profiles",
    "jetson-agx-orin,jetson-orin-nano,raspberry-pi-5",
    "--gains-db",
    "0,-6,-10",
    "--rx-antennas",
    "4",
    "--tx-antennas",
    "2",
    "--rician-k-db",
    "6",
];

fn latency_toml(shares: &str, extra: &str) -> String {
    format!(
        "kind = \"latency\"\nseed = 11\n[model]\nname = \"smollm2-135m\"\nshares = {shares}\n\
         [devices]\nprofiles = {PROFILES}\n\
         [channel]\nrx_antennas = 4\ntx_antennas = 2\nrician_k_db = 6\ngains_db = [0, -6, -10]\n\
         [plan]\niterations = 40\nvalidation = 16\n[latency]\ntokens = 1\n{extra}"
    )
}

/// The first results row of `toml` run in `d` as (column → value).
fn run_one(d: &Path, name: &str, toml: &str) -> Vec<(String, String)> {
    let f = write(d, name, toml);
    let out = d.join(format!("{name}.out"));
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let rows = csv_rows(&out.join("results.csv"));
    rows[0]
        .iter()
        .cloned()
        .zip(rows[1].iter().cloned())
        .collect()
}

fn col(row: &[(String, String)], c: &str) -> f64 {
    row.iter()
        .find(|(k, _)| k == c)
        .unwrap_or_else(|| panic!("no column {c} in {row:?}"))
        .1
        .parse()
        .unwrap()
}

#[test]
fn sca_shares_of_a_latency_run_equal_airinfer_plans() {
    let d = tmp("planned-sca");
    let row = run_one(&d, "sca.toml", &latency_toml("\"sca\"", ""));
    let mut args = vec!["plan", "--json", "--model", "smollm2-135m"];
    args.extend(RADIO_FLAGS);
    args.extend(["--iterations", "40", "--validation", "16", "--seed", "11"]);
    let (code, out, err) = airinfer(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sca = &v["results"][0];
    assert_eq!(sca["name"], "sca");
    for k in 0..3 {
        let s = sca["shares"][k].as_f64().unwrap();
        let p = sca["tx_power_w"][k].as_f64().unwrap() * 1e3;
        // the CSV writes shortest round-trip decimals: equal up to the mW conversion's rounding
        assert!(
            (col(&row, &format!("share_{k}")) - s).abs() <= 1e-12,
            "{k}: {row:?} vs {sca}"
        );
        assert!(
            (col(&row, &format!("tx_power_mw_{k}")) - p).abs() <= 1e-12 * p,
            "{k}: {row:?} vs {sca}"
        );
    }
    // the plan did something: not the equal shares it starts from
    let spread = (0..3)
        .map(|k| (col(&row, &format!("share_{k}")) - 1.0 / 3.0).abs())
        .fold(0.0, f64::max);
    assert!(spread > 0.01, "{row:?}");
    // and the default budget binds for some device: its power is below its radio's maximum
    assert!(sca["energy_binds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == true));
    // the run times a split by these shares
    assert!(col(&row, "ms_per_token") > 0.0 && col(&row, "fits") == 1.0);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn baselines_by_name_are_the_profiles_proportions_under_the_same_budget() {
    let d = tmp("planned-baselines");
    let uniform = run_one(&d, "u.toml", &latency_toml("\"uniform\"", ""));
    let numbers = run_one(&d, "n.toml", &latency_toml("[1, 1, 1]", ""));
    for k in 0..3 {
        assert!((col(&uniform, &format!("share_{k}")) - 1.0 / 3.0).abs() < 1e-12);
    }
    // numbers keep the old behaviour: unit power, no planned columns
    assert!(numbers.iter().all(|(c, _)| !c.starts_with("share_")));
    // memory-proportional: the library's capacities (AGX Orin 64 GB, Orin Nano 8 GB, Pi 5 8 GB)
    // unless a cap projects them
    let memory = run_one(&d, "m.toml", &latency_toml("\"memory\"", ""));
    let m: Vec<f64> = (0..3)
        .map(|k| col(&memory, &format!("share_{k}")))
        .collect();
    assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(m[0] > m[1] && (m[1] - m[2]).abs() < 1e-9, "{m:?}");
    // a larger budget leaves more power to every device at the same shares
    let rich = run_one(
        &d,
        "r.toml",
        &latency_toml("\"uniform\"", "").replace("[plan]\n", "[plan]\nenergy_mj = [50]\n"),
    );
    for k in 0..3 {
        let c = format!("tx_power_mw_{k}");
        assert!(
            col(&rich, &c) > col(&uniform, &c),
            "{rich:?} vs {uniform:?}"
        );
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn named_shares_that_cannot_be_planned_name_the_key() {
    let d = tmp("planned-bad");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            latency_toml("\"bogus\"", ""),
            "model.shares",
            "sca, uniform",
        ),
        (
            latency_toml("\"sca\"", "[scheme]\nkind = \"digital\"\n"),
            "model.shares",
            "aircomp",
        ),
        (
            latency_toml("\"sca\"", "")
                .replace("rician_k_db = 6\n", "rician_k_db = 6\nstreams = 3\n"),
            "channel.streams",
            "min(",
        ),
        (
            latency_toml("\"sca\"", "").replace(
                "rician_k_db = 6\n",
                "rician_k_db = 6\ncsi_error_var = 0.1\n",
            ),
            "channel.csi_error_var",
            "perfect CSI",
        ),
        (
            latency_toml("\"sca\"", "").replace("[plan]\n", "[plan]\nenergy_mj = [1, 2]\n"),
            "plan.energy_mj",
            "3 devices",
        ),
        (
            latency_toml("\"sca\"", "").replace("[plan]\n", "[plan]\nsignal = \"loud\"\n"),
            "plan.signal",
            "paper",
        ),
        (
            "kind = \"allreduce\"\n[model]\nshares = \"sca\"\n[devices]\ncount = 2\n".to_string(),
            "model.shares",
            "eval and latency",
        ),
    ];
    for (i, (text, key, words)) in cases.iter().enumerate() {
        let f = write(&d, &format!("b{i}.toml"), text);
        let (code, _, err) = airinfer(&["check", &f]);
        assert_ne!(code, 0, "case {i} passed check");
        assert!(err.contains(key) && err.contains(words), "case {i}: {err}");
    }
    std::fs::remove_dir_all(&d).ok();
}

/// `airinfer eval --scheme aircomp --shares sca`: one command plans the shares and powers
/// (`airinfer plan`'s numbers for the same flags), splits the real model by them and sends
/// every all-reduce at the planned powers.
#[test]
fn eval_plans_its_shares_as_airinfer_plan_does_and_sends_at_the_planned_power() {
    let mut common = RADIO_FLAGS.to_vec();
    common.extend(["--seed", "11"]);
    let small = [
        "eval",
        "--scheme",
        "aircomp",
        "--ctx",
        "32",
        "--chunks",
        "1",
        "--prompt-tokens",
        "2",
        "--gen-tokens",
        "1",
        "--json",
        "--quiet",
    ];
    let mut args: Vec<&str> = small.to_vec();
    args.extend(&common);
    args.extend([
        "--shares",
        "sca",
        "--plan-iterations",
        "40",
        "--plan-validation",
        "16",
    ]);
    let (code, out, err) = airinfer(&args);
    assert_eq!(code, 0, "{err}");
    let ev: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut pargs = vec!["plan", "--json", "--iterations", "40", "--validation", "16"];
    pargs.extend(&common);
    let (code, out, err) = airinfer(&pargs);
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sca = &plan["results"][0];
    let planned = &ev["planned"];
    for k in 0..3 {
        let (a, b) = (
            planned["shares"][k].as_f64().unwrap(),
            sca["shares"][k].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-12, "{k}: {planned} vs {sca}");
        let (a, b) = (
            planned["tx_power_mw"][k].as_f64().unwrap(),
            sca["tx_power_w"][k].as_f64().unwrap() * 1e3,
        );
        assert!((a - b).abs() <= 1e-12 * b, "{k}: {planned} vs {sca}");
    }
    // the planned powers reach the radio: the same shares as numbers send every device at the
    // reference power (above every planned power here), with a smaller error
    let ref_mw = sca["tx_power_w"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap() * 1e3)
        .fold(0.0, f64::max);
    assert!(ref_mw <= 100.0 + 1e-9, "{sca}");
    let numbers = (0..3)
        .map(|k| format!("{:?}", sca["shares"][k].as_f64().unwrap()))
        .collect::<Vec<_>>()
        .join(",");
    let mut nargs: Vec<&str> = small.to_vec();
    nargs.extend(&common);
    nargs.extend(["--shares", &numbers]);
    let (code, out, err) = airinfer(&nargs);
    assert_eq!(code, 0, "{err}");
    let full: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(full["planned"].is_null());
    let (planned_nmse, full_nmse) = (
        ev["nmse"]["all"].as_f64().unwrap(),
        full["nmse"]["all"].as_f64().unwrap(),
    );
    assert!(
        planned_nmse > 1.2 * full_nmse,
        "{planned_nmse} vs {full_nmse}"
    );
    // a name without AirComp, or for a command that cannot plan, is one clear error
    let (code, _, err) = airinfer(&["eval", "--shares", "sca", "--devices", "2", "--quiet"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--shares sca") && err.contains("--scheme aircomp"),
        "{err}"
    );
    let (code, _, err) = airinfer(&[
        "generate",
        "--shares",
        "uniform",
        "--devices",
        "2",
        "--prompt",
        "hi",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--shares uniform") && err.contains("eval --scheme aircomp"),
        "{err}"
    );
}
