//! Committing an epoch off the critical path. Once every lane has sealed an epoch, its commit
//! (the changelogs, the log's transaction with the input offsets, then LMDB) runs on a blocking
//! thread while the coordinator dispatches the next epoch's input to the lanes:
//!
//! - the lanes hold the next epoch's outputs in their buffers until the transaction has been
//!   committed and the next one begun (`Shared::hold_outputs`), and the coordinator dispatches
//!   at most an in-flight budget's worth of records meanwhile, so the held outputs are bounded;
//! - the lanes read the sealed epoch's state changes from their stores' overlay until they are in
//!   LMDB (`Table`'s sealed buffer);
//! - the next epoch seals only after this commit has finished, so at most one commit is in
//!   flight, and a failed one is seen before anything else is done to the log (an abort never
//!   races a commit). When it fails, the epoch after it is discarded with it: both run again
//!   from the last commit's positions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::coordinator::{stopped, Engine, Position, Trigger};
use crate::error::{Error, Result};
use crate::lane::LaneMsg;
use crate::log::{CommitOffset, OutRecord};

/// An epoch whose commit is running.
pub(super) struct InCommit {
    task: JoinHandle<std::result::Result<Duration, Failure>>,
    /// The input positions it commits: where a later failed epoch starts again.
    positions: HashMap<(u32, u32), Position>,
    trigger: Trigger,
    /// The oldest and newest record timestamps it commits.
    span: (i64, i64),
    /// Rung when the commit has finished.
    done: Arc<Notify>,
    started: Instant,
    sealed_at: Duration,
    epoch: u64,
}

/// Where a commit failed: in the log (nothing of the epoch is committed; a transient error is
/// retried), or in LMDB after the log committed (the engine stops; a restart repairs LMDB from
/// the changelogs).
enum Failure {
    Log(Error),
    State(Error),
}

impl Engine {
    /// Whether no commit is running (or the running one has finished, to be collected).
    pub(super) fn commit_finished(&self) -> bool {
        self.in_commit.as_ref().is_none_or(|c| c.task.is_finished())
    }

    /// What rings when the running commit finishes (`None`: none runs).
    pub(super) fn commit_signal(&self) -> Option<Arc<Notify>> {
        self.in_commit.as_ref().map(|c| Arc::clone(&c.done))
    }

    /// Waits for the running commit, if any, and takes its outcome: the committed positions,
    /// epoch and statistics, or its error.
    pub(super) async fn finish_commit(&mut self) -> Result<()> {
        let Some(c) = self.in_commit.take() else { return Ok(()) };
        let outcome = c.task.await.unwrap_or_else(|e| {
            // Whether the log had committed is unknown: stop (a restart resolves it).
            Err(Failure::State(Error::Runtime(format!("an epoch's commit panicked or was cancelled: {e}"))))
        });
        let logged_at = match outcome {
            Ok(logged_at) => logged_at,
            Err(Failure::Log(e)) => return Err(e),
            Err(Failure::State(e)) => {
                // The log has committed the epoch: it must not be retried (it would be processed
                // twice), so the engine stops; a restart repairs LMDB from the changelogs.
                self.failed = true;
                self.shared.halt();
                return Err(e);
            }
        };
        let positions = c
            .positions
            .iter()
            .map(|(&(source, partition), p)| crate::status::CommittedOffset {
                topic: self.topics[source as usize].clone(),
                partition,
                offset: p.next_offset,
            })
            .collect();
        self.status.epoch_committed(positions);
        self.committed = c.positions;
        self.retrying_since = None;
        self.retries = 0;
        self.epoch = c.epoch;
        self.shared.stats.epoch(c.started.elapsed());
        if c.span != super::coordinator::NO_SPAN {
            let now = crate::record::now_millis();
            let since = |ts: i64| Duration::from_millis(now.saturating_sub(ts).max(0) as u64);
            self.shared.stats.end_to_end(since(c.span.1), since(c.span.0));
        }
        let trigger = c.trigger.name();
        self.shared.stats.trigger(trigger);
        tracing::debug!(
            epoch = c.epoch,
            trigger,
            sealed_at = ?c.sealed_at,
            ?logged_at,
            took = ?c.started.elapsed(),
            "epoch committed"
        );
        Ok(())
    }

    /// An output of the coordinator's own (a dead letter): appended now, or held while a
    /// transaction is being committed.
    pub(super) async fn output(&mut self, record: OutRecord) -> Result<()> {
        if self.in_commit.is_some() {
            self.held.push(record);
            return Ok(());
        }
        self.log.append(vec![record]).await
    }

    /// Seals the epoch on every lane and starts its commit (after the previous one finished).
    /// `skip_if_unchanged`: an epoch that turns out to have no state changes is not committed.
    pub(super) async fn commit(&mut self, trigger: Trigger, skip_if_unchanged: bool) -> Result<()> {
        self.finish_commit().await?;
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.log.append(held).await?;
        }
        let started = Instant::now();
        self.shared.stats.epoch_length(started.saturating_duration_since(self.last_barrier));
        self.last_barrier = started;
        let span = std::mem::replace(&mut self.epoch_span, super::coordinator::NO_SPAN);
        let mut deltas = Vec::new();
        let mut lane_of_delta = Vec::new();
        // Every lane group seals at once; their replies are taken in group order.
        let replies = self.ask_groups(LaneMsg::Seal)?;
        for (group, wait) in replies.into_iter().enumerate() {
            for seal in wait.await.map_err(|_| stopped(group))?? {
                lane_of_delta.extend(std::iter::repeat_n(seal.lane, seal.deltas.len()));
                deltas.extend(seal.deltas);
            }
        }
        if cfg!(debug_assertions) {
            super::conflicts::check(&deltas, &lane_of_delta)?;
        }
        self.check()?;
        if skip_if_unchanged && deltas.is_empty() {
            // An epoch without input, outputs or state changes (timers checked, none due).
            return Ok(());
        }
        let sealed_at = started.elapsed();
        let offsets: Vec<CommitOffset> = self
            .positions
            .iter()
            .map(|(&(source, partition), position)| CommitOffset {
                topic: self.topics[source as usize].clone(),
                partition,
                next_offset: position.next_offset,
                time: (position.time != i64::MIN).then_some(position.time),
            })
            .collect();
        let app = self.program.app().to_string();
        let epoch = self.epoch + 1;
        let (log, shared, writer) = (Arc::clone(&self.log), Arc::clone(&self.shared), self.writer.handle()?);
        // From here until the next transaction has begun, the lanes keep their outputs.
        shared.hold_outputs();
        let done = Arc::new(Notify::new());
        let ring = Arc::clone(&done);
        let task = tokio::task::spawn_blocking(move || {
            let outcome = (|| {
                for delta in &deltas {
                    log.append_changelog(delta.store, &delta.entries).map_err(Failure::Log)?;
                }
                let receipt = log.commit(&app, &offsets).map_err(Failure::Log)?;
                shared.release_outputs();
                let logged_at = started.elapsed();
                writer
                    .commit_blocking(epoch, deltas, receipt.changelogs)
                    .map_err(|e| Failure::State(e.into()))?;
                Ok(logged_at)
            })();
            ring.notify_one();
            outcome
        });
        self.in_commit = Some(InCommit {
            task,
            positions: self.positions.clone(),
            trigger,
            span,
            done,
            started,
            sealed_at,
            epoch,
        });
        Ok(())
    }
}
