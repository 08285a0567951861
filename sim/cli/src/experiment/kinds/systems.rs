//! The `systems` kind: the four systems (and the baselines) planned and run on the same
//! devices, links and clock.

use super::*;

/// The `systems` setup of a run on architecture `cfg`.
pub fn system_setup(
    spec: &Spec,
    dir: &dyn Fn(&str) -> PathBuf,
    cfg: &airinfer_llm::config::LlamaConfig,
    weights: WeightFormat,
) -> Result<airinfer_sim::systems::Setup> {
    let d = spec.devices(dir).map_err(invalid)?;
    let k = d.profiles.len();
    let y = &spec.system;
    Ok(airinfer_sim::systems::Setup {
        cfg: cfg.clone(),
        weights,
        precision: spec.devices.precision,
        names: (0..k)
            .map(|i| {
                spec.devices.profiles[if spec.devices.profiles.len() == 1 {
                    0
                } else {
                    i
                }]
                .clone()
            })
            .collect(),
        profiles: d.profiles,
        net: spec.network(k).map_err(invalid)?,
        radio: spec.radio(k).map_err(invalid)?,
        design: spec.scheme.design,
        workload: airinfer_sim::schemes::pipeline::Workload {
            samples: y.samples,
            prompt_tokens: y.prompt_tokens,
            gen_tokens: y.gen_tokens,
            micro_batch: y.micro_batch,
            cold_start: y.cold_start,
        },
        source: y.source,
        memory_fraction: y.memory_fraction,
        wire: y.wire,
        overlap: y.overlap,
        balance_every: y.balance_every,
        slowdowns: y.slowdown.clone(),
        objective: y.objective,
        ret: y.ret,
        split: y.split,
    })
}

pub(super) fn systems(
    spec: &Spec,
    seed: u64,
    dir: &dyn Fn(&str) -> PathBuf,
    ws: &mut Workspace,
) -> Result<Vec<Row>> {
    use airinfer_plan::pipeline::PartitionError;
    use airinfer_sim::systems::{run, stages_text, System};
    let y = &spec.system;
    let system = y.name;
    let k = spec.device_count();
    // the architecture: the GGUF's when the real model runs, the preset's otherwise
    let (cfg, weights, loaded) = if y.perplexity {
        let shares = if system.is_pipeline() {
            vec![1.0]
        } else {
            vec![1.0 / k as f64; k]
        };
        let l = load_eval(spec, dir, ws, &shares)?;
        let (_, _, model) = ws.model.as_ref().expect("loaded");
        (model.cfg.clone(), l.weights, Some(l))
    } else {
        (
            spec.preset().map_err(invalid)?,
            WeightFormat::Bits(spec.model.weight_bits),
            None,
        )
    };
    let setup = system_setup(spec, dir, &cfg, weights)?;
    let nan = f64::NAN;
    let out = match run(system, &setup, seed, false) {
        Ok(o) => o,
        Err(PartitionError::Infeasible(_)) => {
            let (_, metrics) = columns(Kind::Systems);
            return Ok(vec![Row {
                keys: vec![
                    ("devices".into(), k.to_string()),
                    ("stages".into(), "infeasible".into()),
                ],
                metrics: metrics
                    .iter()
                    .map(|m| (m.to_string(), if *m == "fits" { 0.0 } else { nan }))
                    .collect(),
            }]);
        }
        Err(e) => return Err(anyhow::anyhow!("system.{}: {e}", system.name())),
    };
    let (mut ppl, mut ref_ppl, mut agree, mut handoff) = (nan, nan, nan, nan);
    if let Some(l) = loaded {
        let (_, _, model) = ws.model.as_ref().expect("loaded");
        let reference = &ws.references[&l.ref_key];
        let run = match &out.stages {
            Some(a) => {
                let mut f = airinfer_sim::schemes::pipeline::PipelineForward::with_split(
                    model,
                    a,
                    setup.split,
                    &setup.net,
                    setup.wire,
                    l.opts.ctx,
                    seed,
                )?;
                let r = airinfer_llm::eval::perplexity_with(
                    &mut f,
                    &l.tokens,
                    &l.opts,
                    &mut |_, _| {},
                )?;
                handoff = f.stats.nmse();
                r
            }
            None => {
                let compute = ComputeModel::new(
                    &model.cfg,
                    &model.plan,
                    setup.profiles.clone(),
                    setup.precision,
                    weights,
                );
                let scheme = if system == System::AircompTp {
                    airinfer_sim::schemes::tp::SchemeKind::Aircomp
                } else {
                    airinfer_sim::schemes::tp::SchemeKind::Digital
                };
                let mut c =
                    TpCollective::new(scheme, setup.design, setup.radio.clone(), compute, seed)?;
                let r = airinfer_llm::eval::perplexity(
                    model,
                    &l.tokens,
                    &l.opts,
                    &mut c,
                    &mut |_, _| {},
                )?;
                handoff = (c.stats[0].err2 + c.stats[1].err2)
                    / (c.stats[0].sig2 + c.stats[1].sig2).max(f64::MIN_POSITIVE);
                r
            }
        };
        ppl = run.perplexity;
        ref_ppl = reference.perplexity;
        agree = airinfer_llm::eval::token_agreement(&reference.predictions, &run.predictions)
            .unwrap_or(nan);
    }
    let mem = &out.memory_bytes;
    let util = &out.utilisation;
    Ok(vec![Row {
        keys: vec![
            ("devices".into(), k.to_string()),
            (
                "stages".into(),
                out.stages.as_ref().map_or("tp".into(), stages_text),
            ),
        ],
        metrics: [
            ("fits", 1.0),
            ("ttft_ms", out.ttft_s * 1e3),
            ("ms_per_token", out.per_token_s * 1e3),
            ("tok_s", out.tok_s),
            ("predicted_ms_per_token", out.predicted_latency_s * 1e3),
            (
                "predicted_tok_s",
                out.micro_batch as f64 / out.predicted_period_s,
            ),
            ("predicted_ttft_ms", out.predicted_ttft_s * 1e3),
            ("micro_batch", out.micro_batch as f64),
            ("load_ms", out.loaded_s * 1e3),
            ("mem_max_gb", mem.iter().cloned().fold(0.0, f64::max) / 1e9),
            ("mem_total_gb", mem.iter().sum::<f64>() / 1e9),
            (
                "util_min",
                util.iter().cloned().fold(f64::INFINITY, f64::min),
            ),
            ("util_max", util.iter().cloned().fold(0.0, f64::max)),
            ("rebalances", out.rebalances as f64),
            ("perplexity", ppl),
            ("reference_perplexity", ref_ppl),
            ("agreement", agree),
            ("handoff_nmse", handoff),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(
            mem.iter()
                .enumerate()
                .map(|(d, b)| (format!("mem_gb_{d}"), b / 1e9)),
        )
        .collect(),
    }])
}
