//! Our SDR solver against stored reference values: clarabel's optimal values on the cross-check's
//! 200 instances (`common/sdp_instances.rs`), made once with the command in
//! `tests/data/sdp_reference.json` (`--features clarabel`). In the default suite, so the default
//! build (no clarabel, no BLAS) still checks the solver against an independent one.

mod common;

use airinfer_phy::aircomp::sdp;
use common::sdp_instances::{check_certificate, instance};

#[test]
fn our_sdp_matches_clarabels_stored_values_and_certifies_them() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sdp_reference.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let values = doc["values"].as_array().unwrap();
    assert!(values.len() >= 200, "{} reference values", values.len());
    let mut worst: f64 = 0.0;
    for v in values {
        let inst = instance(v["instance"].as_u64().unwrap());
        let reference = v["clarabel"].as_f64().unwrap();
        let ours =
            sdp::solve(&inst.h, &inst.c).unwrap_or_else(|e| panic!("{}: {e}", inst.describe()));
        let (primal, dual) = check_certificate(&inst, &ours.m, &ours.y, sdp::GAP_TOL);
        // the optimum lies in [dual, primal] (weak duality, checked above); clarabel's value
        // (tolerances 1e-10) agrees with ours within the 1e-6 relative
        let rel = (primal - reference).abs() / primal;
        worst = worst.max(rel);
        assert!(
            rel <= 1e-6,
            "{}: ours [{dual}, {primal}], clarabel {reference}: {rel:.2e}",
            inst.describe()
        );
    }
    eprintln!(
        "{} instances, worst relative difference {worst:.2e}",
        values.len()
    );
}
