//! Pipeline stages on the real model (SmolLM2-135M): error-free hand-offs reproduce the
//! single-device logits bit for bit; quantised hand-offs perturb them a little. Skipped (with a
//! note) when the model is not cached, unless `AIRINFER_REQUIRE_MODEL` is set.

use airinfer_llm::eval::Forward;
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::tp::IdealCollective;
use airinfer_plan::pipeline::{Assignment, Stage};
use airinfer_sim::schemes::pipeline::{Link, Network, PipelineForward, Split, Wire};
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

/// Stages cut inside blocks (LinguaLinked's half-block units: unit 1 + h is half-block h, so
/// odd units are attention halves, even ones MLP halves): with f32 on error-free links the
/// logits are the single device's bit for bit, whatever the cuts, including a stage holding
/// one attention half whose block input goes to the next stage over its residual link.
#[test]
fn half_block_pipelines_match_one_device_bit_for_bit() {
    let Some(path) = model_path() else { return };
    let g = GgufFile::open(&path).unwrap();
    let model = Model::load_single(&g).unwrap();
    let n = 2 * model.cfg.n_layer + 2; // 62 units
    let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 2000).collect();
    let mut ideal = IdealCollective;
    let reference = {
        let mut f = airinfer_llm::eval::ModelForward::new(&model, 64, &mut ideal);
        run(&mut f, &prompt)
    };
    let wired = Network::uniform(
        4,
        Link::Wired {
            bandwidth: 1e8,
            latency_s: 1e-3,
        },
    );
    let layouts = [
        // cut between the halves of block 7 (after unit 15, block 7's attention half)
        stages(&[(0, 0, 16), (1, 16, n)]),
        // an attention half alone on device 1 (block 10: unit 21); its block input reaches
        // device 2 straight from device 0
        stages(&[(0, 0, 21), (1, 21, 22), (2, 22, 40), (3, 40, n)]),
        // embedding alone, then cuts after an attention half and an MLP half, a ring home
        stages(&[(0, 0, 1), (1, 1, 2), (2, 2, 33), (0, 33, n)]),
    ];
    for a in &layouts {
        let mut f =
            PipelineForward::with_split(&model, a, Split::Half, &wired, Wire::F32, 64, 1).unwrap();
        let got = run(&mut f, &prompt);
        assert_eq!(got, reference, "stages {a:?}");
        assert_eq!(f.stats.err2, 0.0);
    }
    // int8: the attention-only stage's input crosses its own residual link; per forward 5
    // sends: 0→1 the stream; 1→2 the branch and 0→2 the block input; 2→3 (unit 40 cuts block
    // 19 between its halves) the branch and the stream
    let mut f =
        PipelineForward::with_split(&model, &layouts[1], Split::Half, &wired, Wire::Int8, 64, 1)
            .unwrap();
    let got = run(&mut f, &prompt);
    assert_ne!(got, reference);
    assert_eq!(f.stats.handoffs, 5 * 4);
    // the residual link is its own route: make 0 → 2 lose everything (and every other link
    // ideal) and only the layout that sends block 10's input from device 0 to device 2 breaks
    let mut lossy = Network::uniform(4, Link::Ideal);
    lossy.links[0][2] = Link::Wireless {
        bandwidth_hz: 20e6,
        snr_db: -20.0,
        bler: airinfer_phy::digital::BlerModel::default(),
        target_bler: 0.1,
        max_tx: 1,
        block_bytes: 64,
        overhead_s: 0.0,
        fading: None,
    };
    for (a, uses_0_to_2) in [(&layouts[0], false), (&layouts[1], true)] {
        let mut f =
            PipelineForward::with_split(&model, a, Split::Half, &lossy, Wire::F32, 64, 1).unwrap();
        let got = run(&mut f, &prompt);
        assert_eq!(got != reference, uses_0_to_2, "stages {a:?}");
        assert_eq!(f.stats.lost_blocks > 0, uses_0_to_2);
    }
    // units outside the half-block chain are refused
    assert!(PipelineForward::with_split(
        &model,
        &layouts[0],
        Split::Block,
        &wired,
        Wire::F32,
        64,
        1
    )
    .is_err());
}
