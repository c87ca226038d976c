//! What a lane's nodes share while they run: [`LaneCx`] (the lane's own state instances and
//! output buffer) and [`Shared`] (the channels to every lane, the in-flight count the coordinator
//! waits on, statistics, the error policy and the log).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use super::budget::Budget;
use super::task::LaneMsg;
use super::Entry;
use crate::config::ErrorPolicy;
use crate::error::{BoxError, Error, RecordLocation, Result, StoreError};
use crate::log::{Log, OutRecord};
use crate::record::Headers;
use crate::record::Origin;
use crate::stats::Stats;
use crate::topology::ErasedState;

pub(crate) struct Shared {
    /// How many lanes there are.
    pub lanes: usize,
    /// One per lane group: lane `l` is run by group `l % senders.len()`.
    pub senders: Vec<UnboundedSender<LaneMsg>>,
    /// Records dispatched or re-keyed but not yet processed. Zero with the dispatcher paused
    /// means the epoch's work is done. It also bounds every lane channel: see `budget.rs`.
    pub budget: Budget,
    pub progress: Notify,
    /// Set by the first failure and kept: lanes skip every batch until the coordinator has
    /// discarded the epoch (and, for a failure it cannot recover from, forever).
    pub failed: AtomicBool,
    /// Set while the previous epoch's transaction is being committed: outputs of the epoch
    /// being processed stay in their lane's buffer until the next transaction has begun.
    pub hold_outputs: AtomicBool,
    /// Lane groups holding outputs while the gate is closed: rung (`LaneMsg::Flush`) when it opens,
    /// so their outputs go to the new transaction at once rather than at their next step.
    pub holding: Mutex<Vec<usize>>,
    /// The first failure, for the coordinator to report.
    pub failure: Mutex<Option<Error>>,
    pub stats: Arc<Stats>,
    pub policy: ErrorPolicy,
    /// Whether aggregations hold their outputs until the epoch ends.
    pub once_per_epoch: bool,
    /// Whether lanes are asked to act at each epoch's end (held outputs, closing windows).
    pub epoch_end: bool,
    /// Per source, its stream-time group.
    pub source_groups: Vec<usize>,
    pub source_topics: Vec<Arc<str>>,
    pub log: Arc<dyn Log>,
    /// The clock wall-clock timers follow.
    pub clock: crate::clock::Clock,
}

impl Shared {
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// How many lane groups there are.
    pub fn groups(&self) -> usize {
        self.senders.len()
    }

    pub fn location(&self, origin: Origin) -> RecordLocation {
        RecordLocation {
            topic: self.source_topics.get(origin.source as usize).map(|t| t.to_string()).unwrap_or_default(),
            partition: origin.partition,
            offset: origin.offset,
        }
    }

    /// Hands one lane what it takes uncounted: an async operator's finished calls (counted in
    /// flight since their records reached the operator).
    pub fn deliver(&self, lane: usize, entry: Entry, records: Box<dyn std::any::Any + Send>) -> Result<()> {
        self.senders[lane % self.senders.len()]
            .send(LaneMsg::Calls { lane, entry, calls: records })
            .map_err(|_| Error::Runtime(format!("lane {lane} has stopped")))
    }

    /// Counts `n` records entering at `entry` in flight (before they are sent).
    pub fn count_in(&self, entry: Entry, n: usize) {
        let now = self.budget.add(entry.depth(), n);
        self.stats.in_flight(now);
    }

    /// Sends a [`GroupBatch`](super::GroupBatch) already counted in flight to a lane group.
    pub fn send_counted(
        &self,
        group: usize,
        entry: Entry,
        records: Box<dyn std::any::Any + Send>,
        count: usize,
    ) -> Result<()> {
        self.senders[group]
            .send(LaneMsg::Records { entry, records, count })
            .map_err(|_| Error::Runtime(format!("the lanes of group {group} stopped unexpectedly")))
    }

    /// Marks `count` records of `entry` processed.
    pub fn done(&self, entry: Entry, count: usize) {
        self.budget.done(entry.depth(), count);
        self.progress.notify_one();
    }

    pub fn fail(&self, error: Error) {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if !self.failed.swap(true, Ordering::AcqRel) {
            *slot = Some(error);
        }
        drop(slot);
        self.progress.notify_one();
    }

    /// Stops the lanes without an error of theirs (the coordinator's own failure, or a retry):
    /// they drop their queued work, and abort their async calls, until [`Shared::recovered`].
    pub fn halt(&self) {
        self.failed.store(true, Ordering::Release);
        self.progress.notify_one();
        for tx in &self.senders {
            // A stopped lane has nothing to drop.
            let _ = tx.send(LaneMsg::Halted);
        }
    }

    /// The first failure, once; the lanes stay stopped ([`Shared::has_failed`]) until
    /// [`Shared::recovered`].
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Closes the gate for outputs: see [`Shared::hold_outputs`].
    pub fn hold_outputs(&self) {
        self.hold_outputs.store(true, Ordering::Release);
    }

    /// Opens the gate for outputs and rings the lanes that hold some.
    pub fn release_outputs(&self) {
        let holding = {
            let mut holding = self.holding.lock().unwrap_or_else(|p| p.into_inner());
            self.hold_outputs.store(false, Ordering::Release);
            std::mem::take(&mut *holding)
        };
        for group in holding {
            // A stopped group holds nothing any more.
            let _ = self.senders[group].send(LaneMsg::Flush);
        }
    }

    /// Whether lane group `group` must keep its outputs (the gate is closed); if so, it is rung
    /// when the gate opens.
    pub fn must_hold(&self, group: usize) -> bool {
        if !self.outputs_held() {
            return false;
        }
        let mut holding = self.holding.lock().unwrap_or_else(|p| p.into_inner());
        // Looked at again under the lock the gate opens under: no ring can be missed.
        if !self.outputs_held() {
            return false;
        }
        if !holding.contains(&group) {
            holding.push(group);
        }
        true
    }

    pub fn outputs_held(&self) -> bool {
        self.hold_outputs.load(Ordering::Acquire)
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The failed epoch has been discarded everywhere: the lanes may work again.
    pub fn recovered(&self) {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        slot.take();
        self.failed.store(false, Ordering::Release);
    }
}

pub(crate) struct LaneCx {
    pub lane: usize,
    pub shared: Arc<Shared>,
    pub states: Vec<std::cell::RefCell<Box<dyn ErasedState>>>,
    pub outputs: Vec<OutRecord>,
    /// The lane group's outbox for re-keyed records, while this lane runs (see `outbox`).
    pub outbox: super::Outbox,
    /// What a pipeline flush is for.
    pub phase: Phase,
    /// Records nodes held back and released at this epoch's end, so far.
    pub released: usize,
    /// Stream time per source group as of the epoch's end (set when it ends).
    pub stream_times: Arc<Vec<i64>>,
}

/// What a flush of the pipeline is for: the end of a batch, the end of the epoch (nodes that
/// hold outputs back until then release them), or an aborted epoch (they drop them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    #[default]
    Batch,
    EpochEnd,
    Discard,
}

impl LaneCx {
    pub fn lanes(&self) -> usize {
        self.shared.lanes()
    }

    /// The stream time, as of the epoch's end, of the group of `source`.
    pub fn stream_time_of(&self, source: usize) -> i64 {
        let group = self.shared.source_groups.get(source).copied().unwrap_or(source);
        self.stream_times.get(group).copied().unwrap_or(i64::MIN)
    }

    /// Applies the error policy to an operator's error (a panic included). Infrastructure
    /// errors an operator passes on (a failing state store) never reach the policy: skipping
    /// the record would commit its offset without its effects, so they fail the epoch.
    pub fn operator_error(&mut self, operator: &'static str, origin: Origin, source: BoxError) -> Result<()> {
        let source = match source.downcast::<StoreError>() {
            Ok(store) => return Err(Error::Store(*store)),
            Err(other) => other,
        };
        let location = self.shared.location(origin);
        let infrastructure = wraps_store_error(source.as_ref());
        let error = Error::Operator { operator, location: location.clone(), cause: source };
        if infrastructure {
            return Err(error);
        }
        self.policy_error("operator", error, &location)
    }

    /// Applies the error policy to an output that cannot be encoded.
    pub fn encode_error(&mut self, error: Error) -> Result<()> {
        let location = match &error {
            Error::Encode { location, .. } => location.clone(),
            _ => RecordLocation { topic: String::new(), partition: 0, offset: 0 },
        };
        self.policy_error("encode", error, &location)
    }

    fn policy_error(&mut self, reason: &'static str, error: Error, location: &RecordLocation) -> Result<()> {
        match &self.shared.policy {
            ErrorPolicy::Fail => Err(error),
            ErrorPolicy::Skip => {
                self.shared.stats.skip(reason);
                tracing::warn!(%error, "record skipped");
                Ok(())
            }
            ErrorPolicy::DeadLetter(topic) => {
                self.shared.stats.skip(reason);
                self.shared.stats.dead_lettered(reason);
                let record = dead_letter(topic, None, None, location, &error.to_string());
                self.output(record)
            }
        }
    }

    /// Buffers an output record; the lane hands the buffer to the log after each step.
    pub fn output(&mut self, record: OutRecord) -> Result<()> {
        self.outputs.push(record);
        Ok(())
    }
}

/// Whether a store error is somewhere in `error`'s chain of causes.
fn wraps_store_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<StoreError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A dead-letter record: the original bytes (when there are any) and headers naming the source
/// record and the error.
pub(crate) fn dead_letter(
    topic: &str,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    location: &RecordLocation,
    error: &str,
) -> OutRecord {
    let headers: Headers = vec![
        ("stoat.error".into(), error.as_bytes().to_vec()),
        ("stoat.topic".into(), location.topic.as_bytes().to_vec()),
        ("stoat.partition".into(), location.partition.to_string().into_bytes()),
        ("stoat.offset".into(), location.offset.to_string().into_bytes()),
    ];
    let timestamp = crate::record::now_millis();
    OutRecord { topic: std::sync::Arc::from(topic), key, value, timestamp, headers }
}
