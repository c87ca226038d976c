//! A lane's pipeline: the roots its batches enter by (sources and re-key points), the order
//! source batches arrived in, and what a lane does with them: run the deepest queued work first
//! (within the in-flight budget), release what nodes hold at an epoch's end, hand over its
//! buffered state changes at the barrier, or forget an aborted epoch.

use std::any::Any;
use std::sync::Arc;

use super::{Entry, LaneCx, Phase, Root, BATCH};
use crate::error::{Error, Result};
use crate::state::StoreDelta;

/// What a lane hands over at the barrier.
#[derive(Debug, Default)]
pub(crate) struct LaneSeal {
    pub lane: usize,
    pub deltas: Vec<StoreDelta>,
}

pub(crate) struct LanePipeline {
    pub sources: Vec<Box<dyn Root>>,
    pub points: Vec<Box<dyn Root>>,
    /// Source batches in the order they arrived (source index, records not yet run), so that
    /// records of different sources run in the order they were dispatched.
    pub arrivals: std::collections::VecDeque<(usize, usize)>,
}

impl LanePipeline {
    pub(super) fn root(&mut self, entry: Entry) -> Option<&mut Box<dyn Root>> {
        match entry {
            Entry::Source(i) => self.sources.get_mut(i),
            Entry::Point(i) => self.points.get_mut(i),
        }
    }

    /// Queues a batch that arrived for `entry`.
    pub(super) fn enqueue(&mut self, entry: Entry, records: Box<dyn Any + Send>, count: usize) -> Result<()> {
        let root =
            self.root(entry).ok_or_else(|| Error::Runtime(format!("no entry {entry:?} on this lane")))?;
        root.enqueue(records)?;
        self.arrived(entry, count);
        Ok(())
    }

    /// Notes `count` records queued for `entry` (source batches run in the order they came).
    pub(super) fn arrived(&mut self, entry: Entry, count: usize) {
        if let Entry::Source(i) = entry {
            match self.arrivals.back_mut() {
                Some((last, left)) if *last == i => *left += count,
                _ => self.arrivals.push_back((i, count)),
            }
        }
    }

    /// How group batches for `entry` are spread over lanes.
    pub(super) fn split(&mut self, entry: Entry) -> Option<super::Split> {
        self.root(entry).and_then(|root| root.split())
    }

    /// The deepest entry with queued records; among sources, the one whose batch came first.
    pub(super) fn deepest_queued(&self) -> Option<Entry> {
        if let Some(i) = self.points.iter().rposition(|r| r.has_queued()) {
            return Some(Entry::Point(i));
        }
        self.arrivals.front().map(|&(i, _)| Entry::Source(i))
    }

    /// Runs up to a batch of `entry`'s queued records while the budget allows, then hands on
    /// what they re-keyed and releases read transactions. Returns how many records it took.
    pub(super) fn step(&mut self, entry: Entry, cx: &mut LaneCx) -> (usize, Result<()>) {
        let depth = entry.depth();
        let shared = Arc::clone(&cx.shared);
        let go = move |cx: &LaneCx| shared.budget.may_run(depth, cx.outbox.uncounted());
        // A source runs no further than its batch at the front of the arrivals.
        let max = match entry {
            Entry::Source(_) => self.arrivals.front().map_or(0, |&(_, left)| left.min(BATCH)),
            Entry::Point(_) => BATCH,
        };
        let (ran, mut result) = match self.root(entry) {
            Some(root) => root.step(cx, max, &go),
            None => (0, Ok(())),
        };
        if let (Entry::Source(_), Some(front)) = (entry, self.arrivals.front_mut()) {
            front.1 = front.1.saturating_sub(ran);
            if front.1 == 0 {
                self.arrivals.pop_front();
            }
        }
        if result.is_ok() {
            result = self.sources.iter_mut().chain(self.points.iter_mut()).try_for_each(|r| r.flush(cx));
        }
        for state in &mut cx.states {
            state.get_mut().end_batch();
        }
        (ran, result)
    }

    /// Flushes every node for `phase` (the epoch's end, or its abort).
    fn flush_for(&mut self, cx: &mut LaneCx, phase: Phase) -> Result<()> {
        cx.phase = phase;
        let flushed = self.sources.iter_mut().chain(self.points.iter_mut()).try_for_each(|r| r.flush(cx));
        cx.phase = Phase::Batch;
        for state in &mut cx.states {
            state.get_mut().end_batch();
        }
        flushed
    }

    /// Releases what nodes hold until the epoch's end; returns how many records.
    pub(super) fn end_epoch(&mut self, cx: &mut LaneCx) -> Result<usize> {
        cx.released = 0;
        self.flush_for(cx, Phase::EpochEnd)?;
        Ok(std::mem::take(&mut cx.released))
    }

    pub(super) fn seal(&mut self, cx: &mut LaneCx) -> Result<LaneSeal> {
        let mut deltas = Vec::new();
        for state in &mut cx.states {
            state.get_mut().seal(&mut deltas)?;
        }
        Ok(LaneSeal { lane: cx.lane, deltas })
    }

    /// Forgets the aborted epoch: queued records, outputs and buffered state changes.
    pub(super) fn discard(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.arrivals.clear();
        for (i, root) in self.sources.iter_mut().enumerate() {
            let n = root.clear();
            cx.shared.done(Entry::Source(i), n);
        }
        for (i, root) in self.points.iter_mut().enumerate() {
            let n = root.clear();
            cx.shared.done(Entry::Point(i), n);
        }
        // Nodes drop what they hold for the epoch's end (the group drops its outbox).
        self.flush_for(cx, Phase::Discard)?;
        cx.outputs.clear();
        for state in &mut cx.states {
            state.get_mut().discard();
        }
        Ok(())
    }
}
