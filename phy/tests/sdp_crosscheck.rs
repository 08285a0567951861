//! Our SDR solver against clarabel (`--features clarabel`, needs libopenblas-dev) on 200 random
//! instances (see `common/sdp_instances.rs`): the relaxation values agree within 1e-6 relative
//! and our certificate holds. Also writes the default suite's reference values:
//!
//! ```text
//! AIRINFER_WRITE_SDP_REFERENCE=1 cargo test --release -p airinfer-phy --features clarabel \
//!     --test sdp_crosscheck
//! ```
//! (rewrites `phy/tests/data/sdp_reference.json`).

mod common;

use airinfer_phy::aircomp::{sdp, sdp_clarabel};
use common::sdp_instances::{check_certificate, instance};
use rayon::prelude::*;

const INSTANCES: u64 = 200;

#[test]
fn our_sdp_equals_clarabel_on_200_instances() {
    let rows: Vec<(u64, f64, f64, String, f64)> = (0..INSTANCES)
        .into_par_iter()
        .map(|i| {
            let inst = instance(i);
            let ours =
                sdp::solve(&inst.h, &inst.c).unwrap_or_else(|e| panic!("{}: {e}", inst.describe()));
            check_certificate(&inst, &ours.m, &ours.y, sdp::GAP_TOL);
            let cl = sdp_clarabel::solve(&inst.h, &inst.c)
                .unwrap_or_else(|e| panic!("{}: clarabel: {e}", inst.describe()));
            // both solvers' values bracket the optimum to their own tolerance; ours is certified
            // to 1e-7, clarabel's is set to 1e-10 (gap and feasibility), so 1e-6 is the
            // issue's agreement bound with room for clarabel's residuals
            let rel = (ours.primal - cl.primal).abs() / ours.primal;
            assert!(
                rel <= 1e-6,
                "{}: ours [{}, {}], clarabel {} ({}, dual {}): relative difference {rel:.2e}",
                inst.describe(),
                ours.dual,
                ours.primal,
                cl.primal,
                cl.status,
                cl.dual
            );
            (i, ours.primal, cl.primal, cl.status, rel)
        })
        .collect();
    let worst = rows.iter().map(|r| r.4).fold(0.0, f64::max);
    let almost = rows.iter().filter(|r| r.3 != "Solved").count();
    // clarabel mostly stops at "AlmostSolved" at these tolerances (its values still agree)
    eprintln!(
        "{INSTANCES} instances: worst relative difference {worst:.2e}; clarabel not \"Solved\" on {almost}"
    );
    if std::env::var_os("AIRINFER_WRITE_SDP_REFERENCE").is_some() {
        let values: Vec<serde_json::Value> = rows
            .iter()
            .map(|(i, _, cl, st, _)| serde_json::json!({"instance": i, "clarabel": cl, "status": st}))
            .collect();
        let doc = serde_json::json!({
            "about": "clarabel 0.11's optimal values of the SDR's SDP on phy/tests/common/sdp_instances.rs's instances (tolerances 1e-10)",
            "command": "AIRINFER_WRITE_SDP_REFERENCE=1 cargo test --release -p airinfer-phy --features clarabel --test sdp_crosscheck",
            "values": values,
        });
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sdp_reference.json");
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        eprintln!("wrote {path}");
    }
}
