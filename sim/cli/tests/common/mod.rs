//! Helpers the binary's integration tests share: run `airinfer` (with an environment, in the
//! background), scratch directories and files, the cached model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_airinfer"))
}

/// Exit code (−1 when killed by a signal), stdout and stderr.
pub fn result(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the binary on `args`.
pub fn airinfer(args: &[&str]) -> (i32, String, String) {
    airinfer_env(args, &[])
}

/// Run the binary on `args` with extra environment variables.
pub fn airinfer_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = bin();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    result(c.output().expect("run airinfer"))
}

/// Start the binary on `args` in the background, its output piped.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = bin();
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn airinfer")
}

/// A fresh scratch directory, unique to this test binary, process and `name`.
pub fn tmp(name: &str) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(Path::file_stem)
        .map_or("test".into(), |s| s.to_string_lossy().into_owned());
    let d = std::env::temp_dir().join(format!("airinfer-{stem}-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `text` to `dir/name`; its path.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The asset cache: `$AIRINFER_HOME`, else `~/.cache/airinfer`.
pub fn cache() -> PathBuf {
    std::env::var_os("AIRINFER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/airinfer")
        })
}

/// The cached SmolLM2-135M file, or None with a note (a panic when `AIRINFER_REQUIRE_MODEL` is
/// set: scripts/test.sh fetches it first).
pub fn cached_model() -> Option<String> {
    let m = cache().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !m.exists() {
        assert!(
            std::env::var_os("AIRINFER_REQUIRE_MODEL").is_none(),
            "model missing under {} (run scripts/test.sh)",
            cache().display()
        );
        eprintln!("note: SmolLM2 not cached; skipping");
        return None;
    }
    Some(m.display().to_string())
}
