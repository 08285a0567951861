//! Pipeline stages on the real model (SmolLM2-135M): error-free hand-offs reproduce the
//! single-device logits bit for bit; quantised hand-offs perturb them a little. Skipped (with a
//! note) when the model is not cached, unless `AIRINFER_REQUIRE_MODEL` is set.

use airinfer_llm::eval::Forward;
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::tp::IdealCollective;
use airinfer_plan::pipeline::{Assignment, Stage};
use airinfer_sim::schemes::pipeline::{Link, Network, PipelineForward, Wire};
use std::path::PathBuf;

fn model_path() -> Option<PathBuf> {
    let home = std::env::var_os("AIRINFER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/airinfer")
        });
    let m = home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if m.exists() {
        return Some(m);
    }
    if std::env::var_os("AIRINFER_REQUIRE_MODEL").is_some() {
        panic!(
            "model missing under {} (run scripts/test.sh)",
            home.display()
        );
    }
    eprintln!("note: SmolLM2 not cached; skipping");
    None
}

fn stages(spec: &[(usize, usize, usize)]) -> Assignment {
    Assignment {
        stages: spec
            .iter()
            .map(|&(device, a, b)| Stage {
                device,
                units: a..b,
            })
            .collect(),
    }
}

/// Prefill 40 tokens then decode 3, all logits rows.
fn run(f: &mut dyn Forward, prompt: &[u32]) -> Vec<Vec<f32>> {
    f.reset();
    let mut out = vec![f.forward(prompt, Logits::From(0)).unwrap()];
    for tok in [17u32, 4242, 99] {
        out.push(f.forward(&[tok], Logits::Last).unwrap());
    }
    out
}

#[test]
fn pipelines_match_one_device_and_int8_perturbs() {
    let Some(path) = model_path() else { return };
    let g = GgufFile::open(&path).unwrap();
    let model = Model::load_single(&g).unwrap();
    let n = model.cfg.n_layer + 2; // 32 units
    let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 2000).collect();
    let mut ideal = IdealCollective;
    let reference = {
        let mut f = airinfer_llm::eval::ModelForward::new(&model, 64, &mut ideal);
        run(&mut f, &prompt)
    };
    let net = Network::uniform(4, Link::Ideal);
    let wired = Network::uniform(
        4,
        Link::Wired {
            bandwidth: 1e8,
            latency_s: 1e-3,
        },
    );
    let layouts = [
        // two stages
        stages(&[(0, 0, 16), (1, 16, n)]),
        // four stages, an embedding-only first stage
        stages(&[(0, 0, 1), (1, 1, 9), (2, 9, 25), (3, 25, n)]),
        // an MDI-style ring: the source holds embedding + first blocks and the head
        stages(&[(0, 0, 8), (1, 8, 20), (2, 20, n - 1), (0, n - 1, n)]),
    ];
    for a in &layouts {
        for network in [&net, &wired] {
            let mut f = PipelineForward::new(&model, a, network, Wire::F32, 64, 1).unwrap();
            let got = run(&mut f, &prompt);
            assert_eq!(got, reference, "stages {a:?}");
            assert_eq!(f.stats.err2, 0.0);
            // KV caches live with their stage: a stage holds exactly its blocks' caches
            let kv = f.kv_bytes();
            let per_layer = 2 * model.cfg.n_head_kv * model.cfg.head_dim * 4 * 43;
            for (s, b) in a.stages.iter().zip(kv) {
                let blocks = (s.units.end.min(n - 1)).saturating_sub(s.units.start.max(1));
                assert_eq!(b, blocks * per_layer, "stage {s:?}");
            }
        }
    }
    // int8 hand-offs: different logits, but close (relative error of a few per cent at most)
    let mut f = PipelineForward::new(&model, &layouts[1], &wired, Wire::Int8, 64, 1).unwrap();
    let got = run(&mut f, &prompt);
    assert_ne!(got, reference);
    let (mut e, mut s) = (0.0f64, 0.0f64);
    for (a, b) in got.iter().flatten().zip(reference.iter().flatten()) {
        e += ((a - b) as f64).powi(2);
        s += (*b as f64).powi(2);
    }
    let rel = (e / s).sqrt();
    // TUNED: 3 hand-offs of NMSE ≈ 1.6e-4 (≈ 1.3 % in amplitude) reach the logits through the
    // remaining blocks with a gain that is not derived (measured 1.1 %)
    assert!(rel > 0.0 && rel < 0.05, "int8 relative logit error {rel}");
    // the hand-off NMSE of int8 with per-32 scales is ~1e-5–1e-4: c²/(12·127²) with c the block
    // max over the RMS; the range allows c² from 0.02 to 190 (measured 1.6e-4)
    let nmse = f.stats.nmse();
    assert!(nmse > 1e-7 && nmse < 1e-3, "hand-off NMSE {nmse}");
    assert_eq!(f.stats.handoffs, 3 * 4);
}
