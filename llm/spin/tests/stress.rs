//! Stress test of the decode team under competing load: thousands of `run` calls with random
//! task and thread counts, more threads than cores, busy threads competing for the cores, and
//! several submitting threads at once. Each call must run every task exactly once and return;
//! a watchdog turns a hang into a failure instead of a stuck test binary.
//!
//! This test hung the first team design (a helper that woke for one job could take the next
//! job's first task and have its `done` count erased when the job's counters were reset).

use airinfer_spin::SpinTeam;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// xorshift64*: the test's own random numbers (deterministic per seed).
fn next(s: &mut u64) -> u64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// `calls` runs on `team` with random task counts (0..80) and thread counts (1..=workers+2),
/// random task lengths; panics if a task ran other than exactly once.
fn hammer(team: &SpinTeam, workers: usize, calls: usize, seed: u64) {
    let mut s = seed | 1;
    let hits: Vec<AtomicUsize> = (0..80).map(|_| AtomicUsize::new(0)).collect();
    for c in 0..calls {
        let n = (next(&mut s) % 80) as usize;
        let threads = 1 + (next(&mut s) % (workers as u64 + 2)) as usize;
        let work = next(&mut s) % 200;
        team.run(n, threads, &|i| {
            let mut x = i as u64;
            for _ in 0..work {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        for (i, h) in hits.iter().enumerate() {
            let v = h.swap(0, Ordering::Relaxed);
            assert_eq!(
                v,
                usize::from(i < n),
                "call {c}: task {i} of {n} ran {v} times"
            );
        }
    }
}

/// Runs `f` on its own thread; fails if it has not returned after `limit`.
fn with_watchdog(limit: Duration, what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{what}: no return after {limit:?} — the team hung"),
    }
}

/// Busy threads that compete with the team for the cores until dropped.
struct Load(Arc<AtomicBool>, Vec<thread::JoinHandle<()>>);

impl Load {
    fn new(n: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let hs = (0..n)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load(stop, hs)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for h in self.1.drain(..) {
            let _ = h.join();
        }
    }
}

fn cores() -> usize {
    thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[test]
fn thousands_of_runs_with_more_threads_than_cores_under_load() {
    let workers = 2 * cores() + 1;
    let _load = Load::new(cores());
    with_watchdog(Duration::from_secs(300), "one submitter", move || {
        let team = SpinTeam::new(workers);
        hammer(&team, workers, 20_000, 0x5EED);
    });
}

#[test]
fn several_submitters_share_one_team_under_load() {
    let workers = cores() + 1;
    let _load = Load::new(1);
    with_watchdog(Duration::from_secs(300), "three submitters", move || {
        let team = Arc::new(SpinTeam::new(workers));
        let hs: Vec<_> = (0..3u64)
            .map(|t| {
                let team = team.clone();
                thread::spawn(move || hammer(&team, workers, 5_000, 0xABCD + t))
            })
            .collect();
        for h in hs {
            h.join().expect("a submitter failed");
        }
    });
}
