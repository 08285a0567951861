//! Records the git commit airinfer is built from (AIRINFER_GIT_COMMIT), for results metadata.

use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!(
        "cargo:rustc-env=AIRINFER_GIT_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
    // re-check when the sources change (the dirty flag) …
    for d in [
        "src",
        "../src",
        "../plan/src",
        "../../llm/src",
        "../../phy/src",
    ] {
        println!("cargo:rerun-if-changed={d}");
    }
    // … and when HEAD moves or the index changes (commits, checkouts, staged edits)
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        for f in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={}", dir.join(f).display());
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(r).display());
        }
    }
}
