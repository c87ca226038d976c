//! Recovering from a failed epoch: a transient error (the broker unreachable, frozen, slow) is
//! retried in place — the lanes drop the epoch's work, the dispatcher goes back to the last
//! commit's positions, the log aborts its open epoch and rewinds, and the epoch runs again after
//! a back-off — until `Config::retry_timeout` has passed without a commit or a stop is due.
//! Anything else stops the engine for good, after aborting the open epoch.

use std::time::{Duration, Instant};

use super::coordinator::{Engine, REASSIGN_EVERY, WATCH_EVERY};
use super::Shutdown;
use crate::error::{Error, Result};
use crate::lane::LaneMsg;

impl Engine {
    /// After a failed epoch: a transient error is retried (the epoch aborted and its work
    /// discarded, the inputs rewound to the last commit), until `Config::retry_timeout` has
    /// passed without a commit or a stop is requested; anything else stops the engine, aborting
    /// the open epoch.
    pub(super) async fn recover_or_stop(&mut self, error: Error) -> Result<()> {
        // The previous epoch's commit, if one runs, finishes first (nothing else may be done to
        // the log meanwhile); when it failed, the epoch after it is discarded with it.
        let error = match self.finish_commit().await {
            Err(commit) if !commit.is_transient() || self.failed => commit,
            _ => error,
        };
        let since = *self.retrying_since.get_or_insert_with(Instant::now);
        let stopping = self.shutdown.as_ref().is_some_and(Shutdown::is_triggered);
        if !error.is_transient() || self.failed || stopping || since.elapsed() >= self.config.retry_timeout {
            return Err(self.stop(error).await);
        }
        self.retries += 1;
        let backoff =
            Duration::from_millis(100).saturating_mul(1 << self.retries.min(6)).min(Duration::from_secs(5));
        tracing::warn!(%error, retry = self.retries, ?backoff, "transient error: aborting the epoch and running it again");
        metrics::counter!("stoat_epoch_retries_total").increment(1);
        self.shared.stats.retry();
        if let Err(e) = self.discard_epoch().await {
            return Err(self.stop(e).await);
        }
        tokio::time::sleep(backoff).await;
        loop {
            match self.blocking(|log| log.abort()).await {
                Ok(()) => break,
                Err(e)
                    if e.is_transient()
                        && since.elapsed() < self.config.retry_timeout
                        && !self.stop_overdue() =>
                {
                    tracing::warn!(error = %e, "aborting the epoch failed; trying again");
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => return Err(self.stop(e).await),
            }
        }
        // A transaction has begun again: the lanes' outputs may go to it.
        self.shared.release_outputs();
        self.shared.recovered();
        self.last_barrier = Instant::now();
        // Read the input again from the committed offsets (the log dropped its positions).
        self.assigned_at = Instant::now() - REASSIGN_EVERY;
        Ok(())
    }

    /// Whether a stop was requested longer than `Config::shutdown_timeout` ago.
    fn stop_overdue(&mut self) -> bool {
        if !self.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
            return false;
        }
        self.stop_seen.get_or_insert_with(Instant::now).elapsed() >= self.config.shutdown_timeout
    }

    /// Stops for good: the lanes drop their work, the open epoch is aborted (unless the
    /// producer was fenced: the new instance aborts it), and `error` is what the run returns.
    async fn stop(&mut self, error: Error) -> Error {
        if let Err(e) = self.finish_commit().await {
            tracing::error!(error = %e, "the last epoch's commit failed too");
        }
        self.failed = true;
        self.shared.halt();
        if !matches!(error, Error::Fenced { .. }) {
            if let Err(e) = self.blocking(|log| log.abort()).await {
                tracing::error!(error = %e, "aborting the epoch failed");
            }
        }
        error
    }

    /// Throws away the open epoch's work everywhere: the lanes drop what is queued, their
    /// outputs and their buffered state changes; the dispatcher's batches and read positions go
    /// back to the last commit.
    async fn discard_epoch(&mut self) -> Result<()> {
        self.shared.halt();
        let deadline = Instant::now() + self.config.shutdown_timeout;
        while self.shared.budget.in_flight() > 0 {
            if Instant::now() >= deadline {
                return Err(Error::Runtime(format!(
                    "the lanes did not drop the aborted epoch's work within {:?}: a lane is still busy in operator code",
                    self.config.shutdown_timeout
                )));
            }
            let notified = self.shared.progress.notified();
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
        }
        for (group, wait) in self.ask_groups(LaneMsg::Discard)?.into_iter().enumerate() {
            wait.await.map_err(|_| super::coordinator::stopped(group))??;
        }
        // Records fetched but not dispatched: the log reads them again.
        self.order.clear();
        self.held.clear();
        for batcher in &mut self.batchers {
            for group in 0..self.shared.groups() {
                drop(batcher.take(group));
            }
        }
        self.positions = self.committed.clone();
        let times = self.restored_times.iter().map(|(&k, &t)| (k, t));
        let times = times.chain(self.positions.iter().map(|(&k, p)| (k, p.time)));
        self.time = super::event_time::EventTime::new(
            self.config.time,
            &self.program.source_groups,
            times,
            self.config.clock.now(),
        );
        // The lanes' own error, if they had one, belongs to the discarded epoch.
        self.shared.take_failure();
        Ok(())
    }
}
