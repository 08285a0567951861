//! A small spinning thread team for the decode mat-vecs.
//!
//! One decoded token runs ~120 short parallel regions (QKV, output projection, gate/up, down per
//! block, then the head), each only tens of microseconds long. A fork-join pool whose workers go
//! to sleep between regions pays a wake-up (tens of microseconds in a VM) every time; this team's
//! workers spin for a while after each job (then park), so a region starts in well under a
//! microsecond — the same design as llama.cpp's thread pool. Work is split over output rows only,
//! so results do not depend on how many threads take part.
//!
//! # Protocol (model-checked with loom, see `tests` below and `tests/stress.rs`)
//!
//! Every [`SpinTeam::run`] allocates a fresh [`Job`] holding its own task counter `next`, its
//! own completion counter `done` and the (lifetime-erased) task function. Nothing of a job is
//! ever reset or reused, so a worker that arrives late — holding a job that has long finished —
//! can only claim an index `≥ n_tasks` and leaves without touching the function. The function is
//! called only for a claimed index `i < n_tasks`; each index is claimed once (`fetch_add`), and
//! `done` is incremented (Release) after the call returns. `run` returns only after it has read
//! `done == n_tasks` (Acquire), so every call of the function happened before `run` returns: the
//! borrowed closure outlives every use. Publication is an `epoch` counter plus the job in a
//! mutex; a worker parks only after announcing it in `sleeping[w]` and re-reading `epoch`, while
//! `run` bumps `epoch` before swapping `sleeping[w]` — with sequentially consistent operations
//! either the worker sees the new epoch or `run` sees it asleep and unparks it (no lost wake-up).
//! A second thread that calls `run` while a job is in flight (or a task that calls `run`)
//! runs its tasks itself instead of waiting for the team.

#[cfg(loom)]
use loom::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
};
#[cfg(not(loom))]
use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
};

/// A task function with its lifetime erased (see `Job::f`).
pub type TaskFn = dyn Fn(usize) + Sync;

/// One parallel region: its task function, counters and outcome. Never reused.
struct Job {
    /// The caller's closure with its lifetime erased; dereferenced only for claimed indices
    /// `< n_tasks` (see the module's protocol).
    f: *const TaskFn,
    n_tasks: usize,
    /// Workers `0..helpers` may join.
    helpers: usize,
    /// Next task index to claim.
    next: AtomicUsize,
    /// Tasks finished (Release after each call).
    done: AtomicUsize,
    /// A task panicked.
    panicked: AtomicBool,
}

// SAFETY: `f` points to a `Sync` closure, called only under the protocol above; the rest is
// atomics and plain data.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// Claim and run tasks until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n_tasks {
                return;
            }
            // SAFETY: i < n_tasks was claimed by this thread alone, and `run` does not return
            // before this call's `done` increment, so the closure is alive.
            let f = unsafe { &*self.f };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Shared {
    /// Incremented to publish a job (or shutdown).
    epoch: AtomicUsize,
    /// The job in flight, if any.
    current: Mutex<Option<Arc<Job>>>,
    /// Worker `w` is parked or about to park.
    sleeping: Vec<AtomicBool>,
    /// The team is being dropped: workers exit.
    shutdown: AtomicBool,
}

/// The team: `workers` helper threads plus the calling thread.
pub struct SpinTeam {
    shared: Arc<Shared>,
    /// Held while a job is in flight; a second caller runs its tasks itself.
    submit: Mutex<()>,
    handles: Vec<JoinHandle<()>>,
}

/// Spin iterations before a waiting worker parks (and before `run`'s wait starts yielding).
#[cfg(not(loom))]
const SPIN: usize = 1 << 17;
#[cfg(loom)]
const SPIN: usize = 1;

impl SpinTeam {
    /// A team with `workers` helper threads.
    pub fn new(workers: usize) -> SpinTeam {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            current: Mutex::new(None),
            sleeping: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            shutdown: AtomicBool::new(false),
        });
        let handles = (0..workers)
            .map(|w| {
                let s = shared.clone();
                spawn_worker(w, move || worker(s, w))
            })
            .collect();
        SpinTeam {
            shared,
            submit: Mutex::new(()),
            handles,
        }
    }

    /// The process-wide team (one helper per extra available core).
    #[cfg(not(loom))]
    pub fn global() -> &'static SpinTeam {
        static T: std::sync::OnceLock<SpinTeam> = std::sync::OnceLock::new();
        T.get_or_init(|| {
            let n = thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            SpinTeam::new(n.saturating_sub(1))
        })
    }

    /// Number of helper threads.
    pub fn workers(&self) -> usize {
        self.handles.len()
    }

    /// Run `f(0..n_tasks)` on the calling thread and up to `threads − 1` helpers; returns when
    /// every task has finished. Each index runs exactly once. Panics if a task panicked.
    pub fn run(&self, n_tasks: usize, threads: usize, f: &(dyn Fn(usize) + Sync)) {
        let helpers = threads.saturating_sub(1).min(self.workers());
        if helpers == 0 || n_tasks <= 1 {
            (0..n_tasks).for_each(f);
            return;
        }
        // one job in flight at a time; a concurrent or nested caller works alone
        let Ok(_guard) = self.submit.try_lock() else {
            (0..n_tasks).for_each(f);
            return;
        };
        let s = &*self.shared;
        let job = Arc::new(Job {
            // SAFETY (of the erasure): see `Job::work` — the pointer is dereferenced only while
            // this call waits for `done == n_tasks`.
            f: unsafe {
                std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const TaskFn>(f)
            },
            n_tasks,
            helpers,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        *lock(&s.current) = Some(job.clone());
        s.epoch.fetch_add(1, Ordering::SeqCst);
        for w in 0..helpers {
            if s.sleeping[w].swap(false, Ordering::SeqCst) {
                self.handles[w].thread().unpark();
            }
        }
        // the calling thread works too, then waits for the helpers' last tasks
        job.work();
        let mut spins = 0usize;
        while job.done.load(Ordering::Acquire) < n_tasks {
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
            } else {
                // a helper holding a task may be descheduled (more threads than cores)
                thread::yield_now();
            }
        }
        *lock(&s.current) = None;
        if job.panicked.load(Ordering::Relaxed) {
            panic!("a decode task panicked");
        }
    }
}

impl Drop for SpinTeam {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.shutdown.store(true, Ordering::SeqCst);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        for h in &self.handles {
            h.thread().unpark();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(not(loom))]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(loom)]
fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap()
}

#[cfg(not(loom))]
fn spawn_worker(w: usize, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::Builder::new()
        .name(format!("airinfer-spin-{w}"))
        .spawn(f)
        .expect("spawning a decode worker thread")
}

#[cfg(loom)]
fn spawn_worker(_w: usize, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::spawn(f)
}

fn worker(s: Arc<Shared>, w: usize) {
    let mut seen = 0usize;
    loop {
        // wait for a new epoch: spin, then park
        let mut spins = 0usize;
        loop {
            let e = s.epoch.load(Ordering::SeqCst);
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
        if s.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let job = lock(&s.current).clone();
        if let Some(job) = job {
            if w < job.helpers {
                job.work();
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
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

    #[test]
    fn a_nested_run_works_alone_instead_of_deadlocking() {
        let team = SpinTeam::new(2);
        let c = AtomicUsize::new(0);
        team.run(4, 3, &|_| {
            team.run(3, 3, &|_| {
                c.fetch_add(1, Ordering::SeqCst);
            });
        });
        assert_eq!(c.load(Ordering::SeqCst), 12);
    }
}

/// Model checks: every interleaving (loom) of `run` against the workers, including a late
/// worker that still holds the previous job, parking and unparking, and shutdown.
/// `RUSTFLAGS="--cfg loom" cargo test -p airinfer-spin --release --lib`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Every interleaving with at most `bound` preemptions (loom's bounded search: unbounded,
    /// the spin and park loops make the state space explode; bugs of this kind show within a
    /// few preemptions).
    fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(bound);
        b.check(f);
    }

    /// Two consecutive jobs with one helper: every task of each runs exactly once, each `run`
    /// returns, and the team shuts down.
    #[test]
    fn consecutive_jobs_one_helper() {
        model(4, || {
            let team = SpinTeam::new(1);
            for n in [2usize, 3] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                team.run(n, 2, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                for h in &hits {
                    assert_eq!(h.load(Ordering::Relaxed), 1);
                }
            }
        });
    }

    /// Two helpers, two jobs of two tasks, the second allowing only one helper.
    #[test]
    fn two_helpers_changing_team_size() {
        model(2, || {
            let team = SpinTeam::new(2);
            for threads in [3usize, 2] {
                let hits: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
                team.run(2, threads, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                for h in &hits {
                    assert_eq!(h.load(Ordering::Relaxed), 1);
                }
            }
        });
    }

    /// A task that writes through the borrowed closure's captured state: loom's causality
    /// checker (UnsafeCell) proves the write happens before `run` returns and the read after.
    #[test]
    fn task_writes_are_visible_when_run_returns() {
        model(4, || {
            let team = SpinTeam::new(1);
            let cells: Vec<loom::cell::UnsafeCell<usize>> =
                (0..2).map(|_| loom::cell::UnsafeCell::new(0)).collect();
            struct Cells<'a>(&'a [loom::cell::UnsafeCell<usize>]);
            // SAFETY: each task writes only its own cell.
            unsafe impl Sync for Cells<'_> {}
            let c = Cells(&cells);
            team.run(2, 2, &|i| {
                let c = &c;
                c.0[i].with_mut(|p| unsafe { *p = i + 1 });
            });
            for (i, cell) in cells.iter().enumerate() {
                cell.with(|p| assert_eq!(unsafe { *p }, i + 1));
            }
        });
    }
}
