//! Counters of what an application did: records in and out, epochs and the time their commits
//! took, epochs retried after transient errors, changelog records restored at start, every
//! record skipped by the error policy, by reason, and input records dropped for a null key or
//! value their stream cannot hold. Mirrored to the `metrics` facade for exporters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters, shared by the coordinator and the lanes.
#[derive(Debug, Default)]
pub struct Stats {
    records_in: AtomicU64,
    records_out: AtomicU64,
    epochs: AtomicU64,
    skipped_decode: AtomicU64,
    skipped_operator: AtomicU64,
    skipped_encode: AtomicU64,
    peak_in_flight: AtomicU64,
    commit_micros_total: AtomicU64,
    commit_micros_max: AtomicU64,
    retries: AtomicU64,
    restored: AtomicU64,
    null_keys: AtomicU64,
    null_values: AtomicU64,
    late: AtomicU64,
    /// Epochs committed, per [`EpochTriggers`] field.
    triggers: [AtomicU64; 5],
}

/// What ended the epochs that were committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpochTriggers {
    /// `commit_interval` had passed.
    pub time: u64,
    /// `commit_max_records` were read.
    pub record_count: u64,
    /// The input was caught up (and `min_commit_interval` had passed).
    pub caught_up: u64,
    /// The input was at its end (`run_until_idle`).
    pub idle: u64,
    /// A stop was requested.
    pub stop: u64,
}

impl EpochTriggers {
    const NAMES: [&'static str; 5] = ["time", "record_count", "caught_up", "idle", "stop"];
}

/// A snapshot of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Input records read.
    pub records_in: u64,
    /// Output records written.
    pub records_out: u64,
    /// Epochs committed.
    pub epochs: u64,
    /// Input records skipped because they could not be decoded.
    pub skipped_decode: u64,
    /// Records skipped because an operator returned an error.
    pub skipped_operator: u64,
    /// Output records skipped because they could not be encoded.
    pub skipped_encode: u64,
    /// The most records that were ever in flight between the dispatcher and the lanes at once
    /// (bounded by `Config::max_in_flight` plus what one batch fans out to).
    pub peak_in_flight: u64,
    /// Time spent committing epochs (barrier to durable), in total.
    pub commit_time_total: Duration,
    /// The longest epoch commit.
    pub commit_time_max: Duration,
    /// Epochs aborted by a transient error and run again.
    pub epoch_retries: u64,
    /// Changelog records replayed into the state at start.
    pub restored: u64,
    /// Input records dropped because their key was null and the stream's key type has no null
    /// (declare it `Option<K>` to keep them).
    pub dropped_null_keys: u64,
    /// Input records dropped because their value was null (a tombstone) and the stream's value
    /// type has no null (declare it `Option<V>` to keep them).
    pub dropped_null_values: u64,
    /// Updates of windows that had closed (stream time past their end plus grace), dropped: one
    /// per record and closed window, as Kafka Streams' dropped-records metric counts them.
    pub dropped_late: u64,
    /// What ended the committed epochs.
    pub epoch_triggers: EpochTriggers,
}

impl RunStats {
    /// All records skipped, for any reason.
    pub fn skipped(&self) -> u64 {
        self.skipped_decode + self.skipped_operator + self.skipped_encode
    }

    /// The mean epoch commit time (zero before the first commit).
    pub fn commit_time_mean(&self) -> Duration {
        if self.epochs == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.commit_time_total.as_secs_f64() / self.epochs as f64)
    }
}

impl Stats {
    pub(crate) fn add_in(&self, n: usize) {
        self.records_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` records were read from `topic` (the metric; [`Stats::add_in`] counts the total).
    pub(crate) fn read_from(&self, topic: &str, n: u64) {
        metrics::counter!("stoat_records_in_total", "topic" => topic.to_string()).increment(n);
    }

    /// Output records handed to the log, counted per topic.
    pub(crate) fn add_out(&self, records: &[crate::log::OutRecord]) {
        self.records_out.fetch_add(records.len() as u64, Ordering::Relaxed);
        // Outputs come in runs of one topic: one metric call per run.
        let mut rest = records;
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|r| std::sync::Arc::ptr_eq(&r.topic, &first.topic)).count();
            metrics::counter!("stoat_records_out_total", "topic" => first.topic.to_string())
                .increment(run as u64);
            rest = &rest[run..];
        }
    }

    /// A record went to the dead-letter topic (it is also counted as skipped, by reason).
    pub(crate) fn dead_lettered(&self, reason: &'static str) {
        metrics::counter!("stoat_records_dead_lettered_total", "reason" => reason).increment(1);
    }

    /// An epoch ended `took` after the previous one (barrier to barrier).
    pub(crate) fn epoch_length(&self, took: Duration) {
        metrics::histogram!("stoat_epoch_seconds").record(took.as_secs_f64());
    }

    /// An epoch committed `newest` and `oldest` after the newest and oldest record timestamps it
    /// read (record timestamp to commit, as Kafka Streams' `record-e2e-latency`).
    pub(crate) fn end_to_end(&self, newest: Duration, oldest: Duration) {
        metrics::histogram!("stoat_end_to_end_seconds", "record" => "newest").record(newest.as_secs_f64());
        metrics::histogram!("stoat_end_to_end_seconds", "record" => "oldest").record(oldest.as_secs_f64());
    }

    /// Records in flight now (dispatched or re-keyed, not yet processed: the lanes' queues).
    pub(crate) fn in_flight(&self, n: usize) {
        self.peak_in_flight.fetch_max(n as u64, Ordering::Relaxed);
        metrics::gauge!("stoat_in_flight_records").set(n as f64);
    }

    pub(crate) fn epoch(&self, took: Duration) {
        self.epochs.fetch_add(1, Ordering::Relaxed);
        let micros = took.as_micros().min(u64::MAX as u128) as u64;
        self.commit_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.commit_micros_max.fetch_max(micros, Ordering::Relaxed);
        metrics::counter!("stoat_epochs_total").increment(1);
        metrics::histogram!("stoat_commit_seconds").record(took.as_secs_f64());
    }

    /// Counts an epoch committed on `trigger` (one of [`EpochTriggers`]' field names).
    pub(crate) fn trigger(&self, trigger: &'static str) {
        if let Some(i) = EpochTriggers::NAMES.iter().position(|&n| n == trigger) {
            self.triggers[i].fetch_add(1, Ordering::Relaxed);
        }
        metrics::counter!("stoat_barrier_trigger_total", "trigger" => trigger).increment(1);
    }

    pub(crate) fn restored(&self, n: u64) {
        self.restored.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("stoat_restored_records_total").increment(n);
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn drop_null(&self, part: &'static str) {
        let (counter, reason) =
            if part == "key" { (&self.null_keys, "null_key") } else { (&self.null_values, "null_value") };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("stoat_records_dropped_total", "reason" => reason).increment(1);
    }

    pub(crate) fn drop_late(&self, n: u64) {
        self.late.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("stoat_records_dropped_total", "reason" => "late").increment(n);
    }

    pub(crate) fn skip(&self, reason: &'static str) {
        let counter = match reason {
            "decode" => &self.skipped_decode,
            "operator" => &self.skipped_operator,
            _ => &self.skipped_encode,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("stoat_records_skipped_total", "reason" => reason).increment(1);
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> RunStats {
        RunStats {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            epochs: self.epochs.load(Ordering::Relaxed),
            skipped_decode: self.skipped_decode.load(Ordering::Relaxed),
            skipped_operator: self.skipped_operator.load(Ordering::Relaxed),
            skipped_encode: self.skipped_encode.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            commit_time_total: Duration::from_micros(self.commit_micros_total.load(Ordering::Relaxed)),
            commit_time_max: Duration::from_micros(self.commit_micros_max.load(Ordering::Relaxed)),
            epoch_retries: self.retries.load(Ordering::Relaxed),
            restored: self.restored.load(Ordering::Relaxed),
            dropped_null_keys: self.null_keys.load(Ordering::Relaxed),
            dropped_null_values: self.null_values.load(Ordering::Relaxed),
            dropped_late: self.late.load(Ordering::Relaxed),
            epoch_triggers: {
                let t = |i: usize| self.triggers[i].load(Ordering::Relaxed);
                EpochTriggers { time: t(0), record_count: t(1), caught_up: t(2), idle: t(3), stop: t(4) }
            },
        }
    }
}
