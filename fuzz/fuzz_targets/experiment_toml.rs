//! Fuzz the experiment loader (`airinfer check`'s path): arbitrary bytes as an experiment file
//! must load and validate every point, or give an error — never a panic, an abort or an
//! allocation the file does not justify (a sweep's point count is checked before it is
//! expanded). An optional first line `#set KEY=VALUE` is applied as `--set` is.
#![no_main]
use airinfer::experiment::Experiment;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn file() -> &'static PathBuf {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("airinfer-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a scratch directory");
        d.join("fuzz.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut sets = Vec::new();
    let mut body = data;
    if let Some(rest) = data.strip_prefix(b"#set ") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        if let Ok(s) = std::str::from_utf8(&rest[..end]) {
            sets.push(s.to_string());
        }
        body = &rest[end.min(rest.len())..];
    }
    // `extends` may name other files: only the scratch file and what sits beside it exist
    let path = file();
    if std::fs::write(path, body).is_err() {
        return;
    }
    if let Ok(exp) = Experiment::load_with(path, None, &sets) {
        let n = exp.n_runs();
        for i in [0, n / 2, n.saturating_sub(1)] {
            if i < n {
                std::hint::black_box(exp.run(i).seed);
            }
        }
        std::hint::black_box(exp.known_columns());
        std::hint::black_box(exp.meta(None));
    }
});
