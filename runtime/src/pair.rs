//! Two-way fork-join for the runtime's splits, on one helper thread that
//! spins between jobs.
//!
//! Why not rayon: a training step is a long chain of operations, each split
//! in two for a few tens of microseconds (a recurrent step's product, a
//! cell's kernel). Rayon's idle workers sleep and are woken through futexes;
//! measured on a GRU step, the hand-offs cost more than the second core
//! gained (profile: ~30 % of the time in the scheduler). The helper here
//! spins for a while after each job, so the next split of the chain finds
//! it awake, then parks.
//!
//! `join(a, b)` runs `b` on the helper and `a` on the caller, and returns
//! when both are done. When the helper is busy (another caller, or a join
//! nested inside a job) or there is one thread, both run on the caller.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long the helper spins for the next job before it parks.
const SPIN: Duration = Duration::from_micros(200);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const PANICKED: u8 = 3;

type Job<'a> = &'a (dyn Fn() + Sync);

struct Helper {
    /// The posted job: a `*const Job` valid until the state leaves POSTED.
    job: AtomicPtr<()>,
    state: AtomicU8,
    parked: AtomicBool,
    thread: Thread,
    /// Held by the caller that owns the helper for one join.
    owner: Mutex<()>,
}

thread_local! {
    static IS_HELPER: Cell<bool> = const { Cell::new(false) };
}

/// Threads the runtime may use: `NNC_THREADS`, else `RAYON_NUM_THREADS`
/// (what benchmark harnesses set), else the machine's.
pub fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
        env("NNC_THREADS")
            .or_else(|| env("RAYON_NUM_THREADS"))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Whether splitting work in two can use a second core.
pub fn parallel() -> bool {
    threads() > 1
}

fn helper() -> Option<&'static Helper> {
    static HELPER: OnceLock<Option<&'static Helper>> = OnceLock::new();
    *HELPER.get_or_init(|| {
        if !parallel() {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("nnc-helper".into())
            .spawn(move || {
                IS_HELPER.with(|h| h.set(true));
                crate::program::flush_denormals();
                let h: &'static Helper = Box::leak(Box::new(Helper {
                    job: AtomicPtr::new(std::ptr::null_mut()),
                    state: AtomicU8::new(IDLE),
                    parked: AtomicBool::new(false),
                    thread: std::thread::current(),
                    owner: Mutex::new(()),
                }));
                let _ = tx.send(h);
                serve(h);
            })
            .ok()?;
        rx.recv().ok()
    })
}

/// The helper's loop: spin for a job, park when none comes for a while.
fn serve(h: &'static Helper) {
    loop {
        let start = Instant::now();
        while h.state.load(Ordering::Acquire) != POSTED {
            if start.elapsed() > SPIN {
                h.parked.store(true, Ordering::SeqCst);
                // Re-check after announcing: a job posted in between must not be missed.
                if h.state.load(Ordering::SeqCst) != POSTED {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
                h.parked.store(false, Ordering::SeqCst);
            } else {
                std::hint::spin_loop();
            }
        }
        let job = h.job.load(Ordering::Acquire) as *const Job;
        // SAFETY: the poster keeps the job alive and does not return until
        // the state leaves POSTED (see `join`).
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)() })).is_ok();
        h.state.store(if ok { DONE } else { PANICKED }, Ordering::Release);
    }
}

/// Runs `a` here and `b` on the helper (or both here), returning when both are done.
pub fn join<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
    let on_helper = IS_HELPER.with(Cell::get);
    let Some(h) = helper().filter(|_| !on_helper) else {
        a();
        b();
        return;
    };
    let Ok(_owner) = h.owner.try_lock() else {
        a();
        b();
        return;
    };
    // `b` is FnOnce; the helper sees it as `Fn` through a take-once cell.
    let slot = Mutex::new(Some(b));
    let run = || {
        if let Some(b) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b();
        }
    };
    let job: Job = &run;
    h.job.store(&job as *const Job as *mut (), Ordering::Release);
    h.state.store(POSTED, Ordering::SeqCst);
    if h.parked.load(Ordering::SeqCst) {
        h.thread.unpark();
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(a));
    // Wait for the helper whatever happened here: it borrows our stack.
    let theirs = loop {
        match h.state.load(Ordering::Acquire) {
            DONE => break true,
            PANICKED => break false,
            _ => std::hint::spin_loop(),
        }
    };
    h.state.store(IDLE, Ordering::Release);
    if let Err(p) = mine {
        std::panic::resume_unwind(p);
    }
    assert!(theirs, "a parallel half of a runtime routine panicked");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_and_nest() {
        let (mut x, mut y) = (0, 0);
        join(|| x = 1, || y = 2);
        assert_eq!((x, y), (1, 2));
        let (mut p, mut q, mut r, mut s) = (0, 0, 0, 0);
        join(|| join(|| p = 1, || q = 2), || join(|| r = 3, || s = 4));
        assert_eq!((p, q, r, s), (1, 2, 3, 4));
        for i in 0..1000 {
            let (mut a, mut b) = (0, 0);
            join(|| a = i, || b = i + 1);
            assert_eq!(b, a + 1);
        }
    }

    #[test]
    fn a_panic_in_the_helper_reaches_the_caller() {
        let r = std::panic::catch_unwind(|| join(|| {}, || panic!("boom")));
        assert!(r.is_err());
        // The helper still serves.
        let mut z = 0;
        join(|| {}, || z = 5);
        assert_eq!(z, 5);
    }
}
