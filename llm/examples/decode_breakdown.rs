//! Where a decode step's time goes: the blocks (`run_layers`) against the output head, over N
//! steps of one model file, on the current rayon pool (`RAYON_NUM_THREADS`). A profiling aid
//! for BENCHMARKS.md. Usage: decode_breakdown MODEL.gguf [STEPS]

use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::tp::IdealCollective;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: decode_breakdown MODEL.gguf [STEPS]")?;
    let steps: usize = args.get(2).map_or(Ok(128), |s| s.parse())?;
    let g = GgufFile::open(std::path::Path::new(path))?;
    let model = Model::load_single(&g)?;
    let mut s = model.new_session(steps + 2);
    model.forward(&mut s, &[1], &mut IdealCollective, Logits::Last)?;
    let (mut t_layers, mut t_head) = (0.0f64, 0.0f64);
    let mut next = 1u32;
    for _ in 0..steps {
        let t0 = Instant::now();
        let mut h = model.embed(s.pos, &[next])?;
        model.run_layers(&mut s, &mut h, 0..model.cfg.n_layer, &mut IdealCollective)?;
        let t1 = Instant::now();
        let l = model.head(&h, Logits::Last);
        t_head += t1.elapsed().as_secs_f64();
        t_layers += (t1 - t0).as_secs_f64();
        next = airinfer_llm::sampling::argmax(&l).unwrap_or(0);
    }
    let ms = |t: f64| 1e3 * t / steps as f64;
    println!(
        "{}: {:.2} ms/token = blocks {:.2} + head {:.2} ({} threads)",
        model.cfg.name,
        ms(t_layers + t_head),
        ms(t_layers),
        ms(t_head),
        rayon::current_num_threads()
    );
    Ok(())
}
