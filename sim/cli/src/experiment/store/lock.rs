//! One writer per results directory: advisory `flock`s on files in the directory (the writer's
//! lock, one per running shard, and a short one for the metadata and views), each holding the
//! PID and command of its holder.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file of a results directory: whoever writes into the directory holds it (`run` and
/// `merge` exclusively; the shards of one campaign run into one directory share it, each holding
/// its own `.airinfer.lock.shard-I-of-N` besides). It holds the writer's PID and command.
pub const LOCK: &str = ".airinfer.lock";

/// The lock file shard I/N of a campaign holds in `dir`.
pub fn shard_lock(dir: &Path, i: usize, n: usize) -> PathBuf {
    dir.join(format!("{LOCK}.shard-{i}-of-{n}"))
}

/// A results directory held for writing: released when dropped, or by the system when the
/// process dies (advisory `flock`s, so a killed writer leaves no stale lock behind).
#[derive(Debug)]
pub struct DirLock {
    _files: Vec<std::fs::File>,
}

fn open_lock_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

/// Write who holds a lock into its file.
fn stamp_lock(f: &mut std::fs::File, what: &str) {
    use std::io::Seek;
    let _ = f.set_len(0);
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let _ = writeln!(f, "pid {} ({what})", std::process::id());
}

/// What the lock file at `path` says of its holder.
fn holder(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    match s.trim() {
        "" => "a process that has not written its PID yet".into(),
        t => t.to_string(),
    }
}

/// Whether someone holds the lock of `path` (probing with a shared lock).
fn is_held(path: &Path) -> bool {
    std::fs::File::open(path)
        .is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

/// The shard locks of `dir` currently held, other than `except`: their holders.
pub(super) fn running_shards(dir: &Path, except: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let prefix = format!("{LOCK}.shard-");
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                && Some(p.as_path()) != except
        })
        .collect();
    paths.sort();
    for p in paths {
        if is_held(&p) {
            out.push(holder(&p));
        }
    }
    out
}

/// Who is writing into `dir`: the running shards, else the holder of the lock.
fn holders(dir: &Path) -> String {
    let shards = running_shards(dir, None);
    if shards.is_empty() {
        holder(&dir.join(LOCK))
    } else {
        shards.join(", ")
    }
}

/// Take `dir` (which exists) for writing: alone (`shard` None), or as shard I/N of a campaign
/// whose shards may run into one directory together. Fails at once, naming the holder, when
/// another process writes there. `what` describes this writer in the lock file.
pub fn lock_dir(dir: &Path, shard: Option<(usize, usize)>, what: &str) -> Result<DirLock> {
    use std::fs::TryLockError::WouldBlock;
    let busy = |who: String| {
        anyhow::anyhow!(
            "{}: another airinfer is writing into this results directory ({who}); wait for it \
             to finish, or write elsewhere with --out",
            dir.display()
        )
    };
    let main = dir.join(LOCK);
    let mut files = Vec::new();
    match shard {
        None => {
            let mut f = open_lock_file(&main)?;
            match f.try_lock() {
                Ok(()) => stamp_lock(&mut f, what),
                Err(WouldBlock) => return Err(busy(holders(dir))),
                Err(std::fs::TryLockError::Error(e)) => {
                    bail!("locking {}: {e}", main.display())
                }
            }
            files.push(f);
        }
        Some((i, n)) => {
            // the shard's own lock first: whoever fails to take the directory's then finds
            // every running shard by its file
            let own = shard_lock(dir, i, n);
            let mut f = open_lock_file(&own)?;
            match f.try_lock() {
                Ok(()) => stamp_lock(&mut f, what),
                Err(WouldBlock) => return Err(busy(holder(&own))),
                Err(std::fs::TryLockError::Error(e)) => {
                    bail!("locking {}: {e}", own.display())
                }
            }
            files.push(f);
            let m = open_lock_file(&main)?;
            match m.try_lock_shared() {
                Ok(()) => {}
                Err(WouldBlock) => return Err(busy(holder(&main))),
                Err(std::fs::TryLockError::Error(e)) => {
                    bail!("locking {}: {e}", main.display())
                }
            }
            files.push(m);
        }
    }
    Ok(DirLock { _files: files })
}

/// Run `f` holding `dir`'s short lock on its metadata and views (the shards of a campaign
/// writing one directory take turns with it).
pub(super) fn with_meta_lock<T>(dir: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let path = dir.join(format!("{LOCK}.meta"));
    let l = open_lock_file(&path)?;
    l.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    let r = f();
    drop(l);
    r
}
