//! A lane group's outbox for re-keyed records. The lanes of a group run one after another on one
//! task, so they share one batch per (re-key point, destination group), swapped into the context
//! of the lane that runs. With 10,000 lanes a lane's step re-keys a handful of records: a batch
//! per lane would cost a message for each of them.
//!
//! Records count in the in-flight budget from the end of the step that buffered them (so the
//! barrier waits for them as for records on their way), and are sent when a batch is full, when
//! the outbox holds a quarter batch per group, and whenever the group has nothing to run or waits
//! for the budget.

use std::any::Any;

use super::{Entry, GroupBatch, Shared, BATCH};
use crate::error::Result;
use crate::record::Envelope;

/// A batch of one type, type-erased.
trait Outgoing: Send {
    fn len(&self) -> usize;
    fn take(&mut self) -> Box<dyn Any + Send>;
    fn clear(&mut self);
    fn as_any(&mut self) -> &mut dyn Any;
}

impl<K: Send + 'static, V: Send + 'static> Outgoing for GroupBatch<K, V> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn take(&mut self) -> Box<dyn Any + Send> {
        Box::new(std::mem::take(self))
    }
    fn clear(&mut self) {
        Vec::clear(self)
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

#[derive(Default)]
pub(crate) struct Outbox {
    groups: usize,
    /// The batch per re-key point and destination group, at `point * groups + group`.
    slots: Vec<Option<Box<dyn Outgoing>>>,
    /// Slots that may hold records.
    filled: Vec<usize>,
    /// Per re-key point, records buffered but not counted in the budget yet.
    uncounted: Vec<usize>,
    /// Per re-key point, records buffered and counted.
    counted: Vec<usize>,
    /// Records buffered.
    held: usize,
    /// Records buffered and not counted yet, in all.
    pending: usize,
}

impl Outbox {
    pub fn new(groups: usize) -> Self {
        Outbox { groups: groups.max(1), ..Outbox::default() }
    }

    /// Records buffered and not counted in the budget yet.
    pub fn uncounted(&self) -> usize {
        self.pending
    }

    /// Buffers a record re-keyed at `point` for `lane`; sends its batch when full.
    pub fn push<K: Send + 'static, V: Send + 'static>(
        &mut self,
        point: usize,
        lane: usize,
        env: Envelope<K, V>,
        shared: &Shared,
    ) -> Result<()> {
        let slot = point * self.groups + lane % self.groups;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        if self.uncounted.len() <= point {
            self.uncounted.resize(point + 1, 0);
            self.counted.resize(point + 1, 0);
        }
        let batch = self.slots[slot].get_or_insert_with(|| Box::new(GroupBatch::<K, V>::new()));
        let Some(batch) = batch.as_any().downcast_mut::<GroupBatch<K, V>>() else {
            return Err(crate::error::Error::Runtime(format!("re-key point {point} buffered two types")));
        };
        batch.push((lane as u32, env));
        let len = batch.len();
        if len == 1 {
            self.filled.push(slot);
        }
        self.uncounted[point] += 1;
        self.pending += 1;
        self.held += 1;
        if len >= BATCH {
            self.count(shared);
            self.send(slot, shared)?;
        }
        Ok(())
    }

    /// Counts what was buffered since the last count in the budget.
    pub fn count(&mut self, shared: &Shared) {
        if self.pending == 0 {
            return;
        }
        self.pending = 0;
        for (point, n) in self.uncounted.iter_mut().enumerate() {
            if *n > 0 {
                shared.count_in(Entry::Point(point), *n);
                self.counted[point] += std::mem::take(n);
            }
        }
    }

    /// Whether enough is buffered to send it all: a quarter batch per group.
    pub fn is_due(&self) -> bool {
        self.held >= (self.groups * BATCH / 4).max(BATCH)
    }

    fn send(&mut self, slot: usize, shared: &Shared) -> Result<()> {
        let Some(batch) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        let n = batch.len();
        if n == 0 {
            return Ok(());
        }
        let (point, group) = (slot / self.groups, slot % self.groups);
        let records = batch.take();
        self.counted[point] -= n;
        self.held -= n;
        shared.send_counted(group, Entry::Point(point), records, n)
    }

    /// Counts and sends everything buffered.
    pub fn send_all(&mut self, shared: &Shared) -> Result<()> {
        if self.held == 0 {
            self.filled.clear();
            return Ok(());
        }
        self.count(shared);
        let mut filled = std::mem::take(&mut self.filled);
        let sent = filled.drain(..).try_for_each(|slot| self.send(slot, shared));
        // Keep the list's room for the next round.
        self.filled = filled;
        sent
    }

    /// Drops everything buffered (an aborted epoch); what was counted is counted done.
    pub fn clear(&mut self, shared: &Shared) {
        for slot in self.filled.drain(..) {
            if let Some(batch) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                batch.clear();
            }
        }
        for (point, n) in self.counted.iter_mut().enumerate() {
            if *n > 0 {
                shared.done(Entry::Point(point), std::mem::take(n));
            }
        }
        self.uncounted.iter_mut().for_each(|n| *n = 0);
        self.pending = 0;
        self.held = 0;
    }
}
