//! The in-flight budget, for source and re-keyed records alike. Every record dispatched or
//! re-keyed counts until its lane has run it, by depth (sources 0, re-key point `i` at `i + 1`).
//! The dispatcher stops while the budget is used up; a lane stops too, unless nothing deeper
//! than its work is queued anywhere: then its work is the pipeline's way forward (the deepest
//! records drain into sinks or move deeper still), so the budget never deadlocks and fan-out
//! cannot pile up records beyond one record's outputs per lane.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    pub in_flight: AtomicUsize,
    /// Records in flight per depth.
    queued: Vec<AtomicUsize>,
    /// Lanes waiting for the budget, and how they are woken.
    waiting: AtomicUsize,
    pub freed: Notify,
}

impl Budget {
    pub fn new(limit: usize, depths: usize) -> Self {
        Budget {
            limit,
            in_flight: AtomicUsize::new(0),
            queued: (0..depths.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// Counts `n` records entering at `depth`; returns the new total.
    pub fn add(&self, depth: usize, n: usize) -> usize {
        if let Some(q) = self.queued.get(depth) {
            q.fetch_add(n, Ordering::AcqRel);
        }
        self.in_flight.fetch_add(n, Ordering::AcqRel) + n
    }

    /// Counts `n` records of `depth` as run.
    pub fn done(&self, depth: usize, n: usize) {
        if let Some(q) = self.queued.get(depth) {
            q.fetch_sub(n, Ordering::AcqRel);
        }
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.freed.notify_waiters();
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether the dispatcher may send more: while less than half the budget is in flight. The
    /// other half is the lanes' room to fan out without pausing (a lane that hits the limit runs
    /// a record at a time, which costs throughput; measured, a dispatcher filling the whole budget
    /// halved word count's).
    pub fn has_room(&self) -> bool {
        self.in_flight() < self.limit / 2
    }

    /// Whether a lane may run one more record of `depth`, holding `unsent` re-keyed records it
    /// has not handed on yet (they are deeper work, and count).
    pub fn may_run(&self, depth: usize, unsent: usize) -> bool {
        if self.in_flight() + unsent < self.limit {
            return true;
        }
        unsent == 0 && self.queued.iter().skip(depth + 1).all(|q| q.load(Ordering::Acquire) == 0)
    }

    /// Marks a lane as waiting (until the guard drops): `done` then wakes it.
    pub fn wait(&self) -> WaitGuard<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        WaitGuard(self)
    }
}

pub(crate) struct WaitGuard<'a>(&'a Budget);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}
