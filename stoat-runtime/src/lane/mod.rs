//! Lanes: each owns the keys that hash to it. A record runs through the operators of its segment
//! on the lane that owns its key; a re-keying node hands it to the lane owning the new key
//! through the channel of that lane's group, never through a topic. Lanes are run by a few dozen
//! tokio tasks (lane groups), so their number costs memory for their buffers, not wake-ups.

mod budget;
mod context;
mod outbox;
mod pipeline;
mod task;

pub(crate) use budget::Budget;
pub(crate) use context::{dead_letter, LaneCx, Phase, Shared};
pub(crate) use outbox::Outbox;
pub(crate) use pipeline::LanePipeline;
pub(crate) use task::{spawn_group, Lane, LaneMsg};

use std::any::Any;
use std::hash::{Hash, Hasher};

use crate::error::Result;
use crate::record::Envelope;

/// Records per batch between the dispatcher, lanes and re-key points.
pub(crate) const BATCH: usize = 256;

/// The lane that owns `key` among `lanes` lanes: a fixed hash, so a key always maps to the same
/// lane for a given lane count.
pub(crate) fn lane_of<K: Hash + ?Sized>(key: &K, lanes: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    ((u128::from(h.finish()) * lanes as u128) >> 64) as usize
}

/// Where a lane batch enters the lane's pipeline: a source, or a re-key point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Source(usize),
    Point(usize),
}

impl Entry {
    /// How far downstream the entry is: sources are 0, re-key point `i` is `i + 1`. Points are
    /// numbered as the topology is built, and a point's downstream points are always built after
    /// it, so a larger depth is never upstream of a smaller one.
    pub fn depth(self) -> usize {
        match self {
            Entry::Source(_) => 0,
            Entry::Point(i) => i + 1,
        }
    }
}

/// A node of a lane's pipeline that takes records of one type.
pub(crate) trait Push<K, V>: Send {
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()>;
    /// End of a batch: hand buffered records on (re-key batches).
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()>;
}

/// Records of one entry for the lanes of one group, each with its lane, in the order they are
/// to run: the dispatcher and re-key points batch per group, so a batch fills as fast with
/// 10,000 lanes as with 64.
pub(crate) type GroupBatch<K, V> = Vec<(u32, Envelope<K, V>)>;

/// Spreads a type-erased [`GroupBatch`] over the roots of a group's lanes.
pub(crate) type Split = fn(Box<dyn Any + Send>, Entry, &mut dyn Arrivals) -> Result<()>;

/// A group's lanes as a group batch is spread over them.
pub(crate) trait Arrivals {
    /// The root of `entry` on `lane`.
    fn root(&mut self, lane: usize, entry: Entry) -> Result<&mut dyn Root>;
    /// `n` records were queued at that root: counted as arrived, the lane marked as having
    /// work.
    fn arrived(&mut self, lane: usize, entry: Entry, n: usize);
}

fn wrong_type() -> crate::error::Error {
    crate::error::Error::Runtime("a lane received a batch of the wrong type".into())
}

/// The entry of a lane pipeline: queues records and runs them, a record at a time, for as long
/// as the lane may go on (so a lane can stop in the middle of a batch when the in-flight budget
/// is used up, and resume it later).
pub(crate) trait Root: Send {
    /// Queues a batch addressed to this lane alone: an async operator's finished calls (records
    /// come in group batches, through [`Root::split`]).
    fn enqueue(&mut self, batch: Box<dyn Any + Send>) -> Result<()>;
    /// How group batches of this root's type are spread over lanes (`None`: it takes none).
    fn split(&self) -> Option<Split>;
    fn as_any(&mut self) -> &mut dyn Any;
    /// Runs up to `max` queued records while `go(cx)` allows; returns how many it took from the
    /// queue (the failing one included, when it fails).
    fn step(&mut self, cx: &mut LaneCx, max: usize, go: &dyn Fn(&LaneCx) -> bool) -> (usize, Result<()>);
    /// Whether records are queued.
    fn has_queued(&self) -> bool;
    /// Drops every queued record (an aborted epoch); returns how many.
    fn clear(&mut self) -> usize;
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()>;
}

pub(crate) struct RootOf<K, V> {
    pub next: Box<dyn Push<K, V>>,
    pub queue: std::collections::VecDeque<Envelope<K, V>>,
}

impl<K, V> RootOf<K, V> {
    pub fn new(next: Box<dyn Push<K, V>>) -> Self {
        RootOf { next, queue: Default::default() }
    }
}

/// Spreads a `GroupBatch<K, V>` over its lanes' `RootOf<K, V>` queues.
fn split_of<K: Send + 'static, V: Send + 'static>(
    batch: Box<dyn Any + Send>,
    entry: Entry,
    lanes: &mut dyn Arrivals,
) -> Result<()> {
    let batch = batch.downcast::<GroupBatch<K, V>>().map_err(|_| wrong_type())?;
    let mut records = batch.into_iter().peekable();
    // Records in a row for one lane are queued together (with one lane per group, the whole
    // batch).
    while let Some((lane, env)) = records.next() {
        let root = lanes.root(lane as usize, entry)?;
        let queue = &mut root.as_any().downcast_mut::<RootOf<K, V>>().ok_or_else(wrong_type)?.queue;
        queue.push_back(env);
        let mut n = 1;
        while let Some((_, env)) = records.next_if(|(next, _)| *next == lane) {
            queue.push_back(env);
            n += 1;
        }
        lanes.arrived(lane as usize, entry, n);
    }
    Ok(())
}

impl<K: Send + 'static, V: Send + 'static> Root for RootOf<K, V> {
    fn enqueue(&mut self, _: Box<dyn Any + Send>) -> Result<()> {
        // Records reach it through `split` only.
        Err(wrong_type())
    }
    fn split(&self) -> Option<Split> {
        Some(split_of::<K, V>)
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn step(&mut self, cx: &mut LaneCx, max: usize, go: &dyn Fn(&LaneCx) -> bool) -> (usize, Result<()>) {
        let mut ran = 0;
        while ran < max {
            let Some(env) = self.queue.pop_front() else { break };
            ran += 1;
            if let Err(e) = self.next.push(env, cx) {
                return (ran, Err(e));
            }
            if !go(cx) {
                break;
            }
        }
        (ran, Ok(()))
    }
    fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }
    fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::lane_of;

    #[test]
    fn lanes_are_stable_and_spread() {
        let mut seen = vec![0usize; 7];
        for i in 0..7000u32 {
            let l = lane_of(&format!("key-{i}"), 7);
            assert_eq!(l, lane_of(&format!("key-{i}"), 7));
            seen[l] += 1;
        }
        assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
    }
}
