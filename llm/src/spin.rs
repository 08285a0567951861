//! A small spinning thread team for the decode mat-vecs.
//!
//! One decoded token runs ~120 short parallel regions (QKV, output projection, gate/up, down per
//! block, then the head), each only tens of microseconds long. A fork-join pool whose workers go
//! to sleep between regions pays a wake-up (tens of microseconds in a VM) every time; this team's
//! workers spin for a while after each job (then park), so a region starts in well under a
//! microsecond — the same design as llama.cpp's thread pool. Work is split over output rows only,
//! so results do not depend on how many threads take part.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};

type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// Incremented to publish a job.
    epoch: AtomicUsize,
    /// The current job (lifetime erased; valid until `done == n_tasks`).
    job: Mutex<Option<&'static Job>>,
    /// Number of tasks of the current job.
    n_tasks: AtomicUsize,
    /// Next task to claim.
    next: AtomicUsize,
    /// Tasks finished.
    done: AtomicUsize,
    /// Workers allowed to join the current job (`threads − 1`).
    helpers: AtomicUsize,
    /// A task panicked.
    panicked: AtomicBool,
    /// Workers currently between picking up a job and leaving it.
    active: AtomicUsize,
    /// Worker is parked (or about to park).
    sleeping: Vec<AtomicBool>,
    threads: Mutex<Vec<Thread>>,
}

/// The team: `workers` helper threads plus the calling thread.
pub struct SpinTeam {
    shared: Arc<Shared>,
    submit: Mutex<()>,
    workers: usize,
}

/// Spin iterations before a worker parks.
const SPIN: usize = 1 << 17;

impl SpinTeam {
    fn new(workers: usize) -> SpinTeam {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            job: Mutex::new(None),
            n_tasks: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            helpers: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            sleeping: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            threads: Mutex::new(Vec::new()),
        });
        for w in 0..workers {
            let s = shared.clone();
            let h = thread::Builder::new()
                .name(format!("airinfer-spin-{w}"))
                .spawn(move || worker(s, w))
                .expect("spawning a decode worker thread");
            shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(h.thread().clone());
        }
        SpinTeam {
            shared,
            submit: Mutex::new(()),
            workers,
        }
    }

    /// The process-wide team (one helper per extra available core).
    pub fn global() -> &'static SpinTeam {
        static T: OnceLock<SpinTeam> = OnceLock::new();
        T.get_or_init(|| {
            let n = thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            SpinTeam::new(n.saturating_sub(1))
        })
    }

    /// Run `f(0..n_tasks)` on the calling thread and up to `threads − 1` helpers; returns when
    /// every task has finished. Panics if a task panicked.
    pub fn run(&self, n_tasks: usize, threads: usize, f: &(dyn Fn(usize) + Sync)) {
        let helpers = threads.saturating_sub(1).min(self.workers);
        if helpers == 0 || n_tasks <= 1 {
            (0..n_tasks).for_each(f);
            return;
        }
        let _guard = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY: workers use the reference only while registered in `active`, and this function
        // does not return before the job is retired and `active` is back to zero.
        let job: &'static Job =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Job>(f) };
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        s.n_tasks.store(n_tasks, Ordering::SeqCst);
        s.next.store(0, Ordering::SeqCst);
        s.done.store(0, Ordering::SeqCst);
        s.helpers.store(helpers, Ordering::SeqCst);
        s.panicked.store(false, Ordering::SeqCst);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        {
            let threads = s.threads.lock().unwrap_or_else(|e| e.into_inner());
            for (w, t) in threads.iter().enumerate().take(helpers) {
                if s.sleeping[w].swap(false, Ordering::SeqCst) {
                    t.unpark();
                }
            }
        }
        // the calling thread works too
        work(s, job);
        while s.done.load(Ordering::Acquire) < n_tasks {
            std::hint::spin_loop();
        }
        // retire the job, and wait until no worker can still be holding it
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        while s.active.load(Ordering::Acquire) > 0 {
            std::hint::spin_loop();
        }
        if s.panicked.load(Ordering::SeqCst) {
            panic!("a decode task panicked");
        }
    }
}

fn work(s: &Shared, job: &Job) {
    let n = s.n_tasks.load(Ordering::Acquire);
    loop {
        let i = s.next.fetch_add(1, Ordering::AcqRel);
        if i >= n {
            break;
        }
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(i))).is_err() {
            s.panicked.store(true, Ordering::SeqCst);
        }
        s.done.fetch_add(1, Ordering::AcqRel);
    }
}

fn worker(s: Arc<Shared>, w: usize) {
    let mut seen = 0usize;
    loop {
        // wait for a new job: spin, then park
        let mut spins = 0usize;
        loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
            } else {
                s.sleeping[w].store(true, Ordering::SeqCst);
                if s.epoch.load(Ordering::SeqCst) == seen {
                    thread::park();
                }
                s.sleeping[w].store(false, Ordering::SeqCst);
                spins = 0;
            }
        }
        if w >= s.helpers.load(Ordering::Acquire) {
            continue;
        }
        s.active.fetch_add(1, Ordering::SeqCst);
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = job {
            work(&s, job);
        }
        s.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_exactly_once() {
        let team = SpinTeam::new(2);
        for n in [0usize, 1, 2, 7, 100] {
            for threads in [1, 2, 3, 8] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                team.run(n, threads, &|i| {
                    hits[i].fetch_add(1, Ordering::SeqCst);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::SeqCst) == 1),
                    "n={n} threads={threads}"
                );
            }
        }
    }

    #[test]
    fn a_panicking_task_is_reported_not_hung() {
        let team = SpinTeam::new(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.run(4, 2, &|i| {
                if i == 2 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        // and the team still works afterwards
        let c = AtomicUsize::new(0);
        team.run(5, 2, &|_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(c.load(Ordering::SeqCst), 5);
    }
}
