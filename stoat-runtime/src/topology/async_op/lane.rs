//! One lane's calls of one async operator. Records of a key run one after another, in order;
//! up to `concurrency` keys run at once, each on a worker task that, when its key has nothing
//! more, takes the next key that waits for a worker. Every record waits in its key's queue, so
//! a record can never pass an older one of its key (one queue per key, keys in arrival order). Finished calls wait in `done` until the lane takes them
//! (a message rings the lane when `done` stops being empty), so results reach the lane in
//! batches. An aborted epoch bumps the generation: workers of the old one drop what they finish.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use tokio::task::AbortHandle;

use super::call::Calls;
use crate::error::BoxError;
use crate::lane::{Entry, Shared};
use crate::operator::{Context, Key, Operator};
use crate::record::{Origin, Record};

/// A record waiting for or in its call.
pub(crate) struct Job<K, V> {
    pub record: Record<K, V>,
    pub origin: Origin,
    pub context: Context,
}

/// A finished call: the outputs (with timestamps and headers) or the record's error.
pub(crate) struct Completion<K, V> {
    pub origin: Origin,
    pub result: Result<Vec<Record<K, V>>, BoxError>,
}

/// Where a lane takes its finished calls from.
pub(crate) trait Completions<K, V>: Send + Sync {
    fn take(&self, into: &mut VecDeque<Completion<K, V>>);
}

struct Queue<K, V, K2, V2> {
    generation: u64,
    /// Worker tasks running.
    running: usize,
    /// Keys with records in this lane's hands: for a key with a call running, the records
    /// behind it; for a key waiting for a worker, all of them.
    keys: FxHashMap<K, VecDeque<Job<K, V>>>,
    /// Keys waiting for a worker (not running, records queued), in arrival order.
    ready: VecDeque<K>,
    done: Vec<Completion<K2, V2>>,
    tasks: FxHashMap<u64, AbortHandle>,
    next_task: u64,
}

impl<K, V, K2, V2> Queue<K, V, K2, V2> {
    /// Aborts the running calls; workers of the old generation drop what they finish.
    fn abort_calls(&mut self) {
        self.generation += 1;
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }
}

impl<K: Key, V, K2, V2> Queue<K, V, K2, V2> {
    /// The first record of the next key waiting for a worker; its key is then running, its
    /// other records behind it.
    fn next_ready(&mut self) -> Option<Job<K, V>> {
        while let Some(key) = self.ready.pop_front() {
            match self.keys.get_mut(&key).and_then(VecDeque::pop_front) {
                Some(job) => return Some(job),
                None => {
                    self.keys.remove(&key);
                }
            }
        }
        None
    }

    /// Records accepted and not yet taken by the lane.
    fn pending(&self) -> usize {
        self.running + self.keys.values().map(VecDeque::len).sum::<usize>() + self.done.len()
    }
}

pub(crate) struct LaneCalls<O: Operator<K, V, M>, K, V, M> {
    calls: Arc<Calls<O, K, V, M>>,
    /// The point whose root runs the outputs on this lane.
    point: usize,
    lane: usize,
    shared: Arc<Shared>,
    queue: Mutex<Queue<K, V, O::OutKey, O::OutValue>>,
}

impl<O: Operator<K, V, M>, K, V, M> LaneCalls<O, K, V, M> {
    fn lock(&self) -> MutexGuard<'_, Queue<K, V, O::OutKey, O::OutValue>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Aborts the running calls (the lane is going away).
    pub fn abort(&self) {
        self.lock().abort_calls();
    }
}

impl<O, K, V, M> LaneCalls<O, K, V, M>
where
    O: Operator<K, V, M>,
    K: Key,
    V: Clone + Send + 'static,
    M: 'static,
{
    pub fn new(calls: Arc<Calls<O, K, V, M>>, point: usize, lane: usize, shared: Arc<Shared>) -> Self {
        LaneCalls {
            calls,
            point,
            lane,
            shared,
            queue: Mutex::new(Queue {
                generation: 0,
                running: 0,
                keys: FxHashMap::default(),
                ready: VecDeque::new(),
                done: Vec::new(),
                tasks: FxHashMap::default(),
                next_task: 0,
            }),
        }
    }

    /// Takes a record (already counted in flight at the point): behind its key's other
    /// records, on a new worker if there is room, or its key waits for a worker.
    pub fn accept(self: &Arc<Self>, job: Job<K, V>) {
        let mut q = self.lock();
        if let Some(behind) = q.keys.get_mut(&job.record.key) {
            behind.push_back(job);
            return;
        }
        let key = job.record.key.clone();
        if q.running >= self.calls.settings.concurrency {
            q.keys.insert(key.clone(), VecDeque::from([job]));
            q.ready.push_back(key);
            return;
        }
        q.keys.insert(key, VecDeque::new());
        q.running += 1;
        let (id, generation) = (q.next_task, q.generation);
        q.next_task += 1;
        let task = tokio::spawn(Arc::clone(self).work(id, generation, job));
        q.tasks.insert(id, task.abort_handle());
    }

    /// A worker: calls its record, hands the result to the lane, goes on with its key's next
    /// record or the next waiting key's first.
    async fn work(self: Arc<Self>, id: u64, generation: u64, mut job: Job<K, V>) {
        loop {
            let key = job.record.key.clone();
            let origin = job.origin;
            let context = job.context;
            let result = self
                .calls
                .call(job.record, &context)
                .await
                .map(|out| out.out.into_iter().map(|e| context.complete(e)).collect());
            let mut q = self.lock();
            if q.generation != generation {
                // The epoch was aborted meanwhile: its records will be read again.
                return;
            }
            let ring = q.done.is_empty();
            q.done.push(Completion { origin, result });
            let next = match q.keys.get_mut(&key).and_then(VecDeque::pop_front) {
                Some(next) => Some(next),
                None => {
                    q.keys.remove(&key);
                    q.next_ready()
                }
            };
            if next.is_none() {
                q.running -= 1;
                q.tasks.remove(&id);
            }
            drop(q);
            if ring {
                self.ring();
            }
            match next {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Tells the lane that finished calls wait for it.
    fn ring(self: &Arc<Self>) {
        let completions: Arc<dyn Completions<O::OutKey, O::OutValue>> = Arc::clone(self) as _;
        // A stopped lane has nothing left to deliver to.
        let _ = self.shared.deliver(self.lane, Entry::Point(self.point), Box::new(completions));
    }

    /// Drops every record of the aborted epoch (running calls are aborted) and counts them
    /// done.
    pub fn discard(&self) {
        let mut q = self.lock();
        let n = q.pending();
        q.abort_calls();
        q.running = 0;
        q.keys.clear();
        q.ready.clear();
        q.done.clear();
        drop(q);
        if n > 0 {
            self.shared.done(Entry::Point(self.point), n);
        }
    }
}

impl<O, K, V, M> Completions<O::OutKey, O::OutValue> for LaneCalls<O, K, V, M>
where
    O: Operator<K, V, M>,
    K: Key,
    V: Send + 'static,
    M: 'static,
{
    fn take(&self, into: &mut VecDeque<Completion<O::OutKey, O::OutValue>>) {
        let mut q = self.lock();
        into.extend(q.done.drain(..));
    }
}
