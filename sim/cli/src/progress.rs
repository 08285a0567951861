//! Progress bars on stderr (hidden with `--quiet`, when stderr is not a terminal, or in CI).

use indicatif::{ProgressBar, ProgressStyle};

fn hidden(quiet: bool) -> bool {
    quiet || std::env::var_os("CI").is_some()
}

/// A bar counting bytes.
pub fn bytes_bar(total: u64, what: &str, quiet: bool) -> ProgressBar {
    if hidden(quiet) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A bar counting items (chunks, tokens, runs).
pub fn items_bar(total: u64, what: &str, quiet: bool) -> ProgressBar {
    if hidden(quiet) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}
