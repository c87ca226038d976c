//! Application configuration: lanes, epochs (commit cadence), state, error policy. Every setting
//! is checked by [`Config::validate`] before anything starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// What happens to a record that cannot be decoded, processed or encoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Stop the application with an error naming the record (topic, partition, offset) and the
    /// cause. The failing epoch is not committed.
    #[default]
    Fail,
    /// Skip the record, count it (`RunStats::skipped_*`, metric `stoat_records_skipped_total`) and
    /// log a warning.
    Skip,
    /// Write the record to this dead-letter topic in the same epoch (so under exactly-once in
    /// the same transaction), count it and go on. An undecodable record is written as it was
    /// read; for a record that failed later only the headers describe it. Headers:
    /// `stoat.error`, `stoat.topic`, `stoat.partition`, `stoat.offset`.
    DeadLetter(String),
}

/// Which input record is processed next, among the partitions a poll returned records of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchOrder {
    /// The record with the smallest timestamp among the partitions' next records, as a Kafka
    /// Streams task picks the partition with the smallest head timestamp (each partition stays
    /// in offset order), waiting (up to `Config::max_partition_wait`) for partitions that have
    /// records in the log but none fetched yet. The default.
    #[default]
    Timestamp,
    /// The order the log returned them in (cheapest; no order across partitions).
    Arrival,
}

/// What event time is: what windows, stream-stream joins and stream-time timers go by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeSemantics {
    /// Kafka Streams' stream time: the largest timestamp dispatched so far from the sources
    /// whose records meet. The default.
    #[default]
    StreamTime,
    /// A watermark: the smallest, over the input partitions that are not idle, of each
    /// partition's largest timestamp, minus `out_of_orderness`; a partition that delivers
    /// nothing for `idle_after` (wall clock) stops holding it back until it delivers again.
    Watermarks {
        /// How far behind a partition's largest timestamp its records may still come.
        out_of_orderness: Duration,
        /// How long a silent partition holds the watermark back.
        idle_after: Duration,
    },
}

/// Which order records keep when they are re-keyed (`key_by`, `group_by`, re-keying operators).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RekeyOrder {
    /// Records that shared a key before a re-key keep their order after it. Records without a
    /// key (`()`) are spread over every lane, so they are processed in parallel whatever the
    /// partition count; records from one input partition that reach one new key may then
    /// interleave differently from Kafka Streams. The default.
    #[default]
    PerKey,
    /// Also, records without a key from one input partition keep their order through a re-key,
    /// as through a Kafka Streams repartition topic: each such partition is read by one lane.
    /// Until the first re-key, no more lanes work on such a topic than it has partitions.
    InputPartition,
}

/// How often an aggregation emits a key's aggregate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Emission {
    /// Every update, as Kafka Streams does with its record cache off. The default.
    #[default]
    EveryUpdate,
    /// At most once per key per epoch: the key's latest aggregate when the epoch ends, as Kafka
    /// Streams' record cache does at a commit (cheaper downstream; which intermediate values are
    /// emitted then depends on where epochs end).
    LatestPerEpoch,
}

/// Configuration of a stoat application: `Config::default()` and the builder methods, one per
/// setting (new settings may come; the struct cannot be built field by field).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Number of lanes (default: the number of CPUs).
    pub lanes: usize,
    /// Where LMDB state lives. `None`: a temporary directory removed at exit.
    pub state_dir: Option<PathBuf>,
    /// Size of the LMDB map: the most state the application can hold (default 16 GiB; disk is used
    /// only as state grows).
    pub state_map_size: usize,
    /// The longest an epoch with records lasts (default 100 ms): under load, epochs stretch
    /// to it (fewer, larger commits: throughput).
    pub commit_interval: Duration,
    /// The shortest time between barriers (default 0). An epoch with records ends as soon as
    /// the input is caught up (the log has nothing more right now) once this long has passed
    /// since the previous barrier: at low load each commit follows the previous one at once
    /// (latency of about one commit), while under load the input is never caught up and epochs
    /// stretch to `commit_interval`. Equal to `commit_interval`, the cadence is fixed.
    pub min_commit_interval: Duration,
    /// On Kafka, how long a committed epoch's state may stay unflushed to disk (default 1 s;
    /// zero flushes every commit). Kafka is the source of truth: a process crash (kill -9) loses
    /// nothing, and an OS crash rolls the state back to its last flush, which a restart repairs
    /// from the changelogs. Zero makes each commit durable in LMDB itself (two fsyncs per
    /// epoch), as on logs without changelogs (the embedded one).
    pub state_sync_interval: Duration,
    /// An epoch ends after this many input records (default 50 000).
    pub commit_max_records: usize,
    /// The most records in flight, source and re-keyed alike (`None`: 16 batches per lane group); the
    /// bound on memory when lanes are slower than the source. The dispatcher stops reading while
    /// half of it is used (the other half is room for fan-out); lanes pause fan-out when all of
    /// it is used, running the deepest work first. On top of it, a batch per lane group may be on
    /// its way.
    pub max_in_flight: Option<usize>,
    /// What to do with records that fail.
    pub error_policy: ErrorPolicy,
    /// Tokio worker threads (default: the number of CPUs).
    pub worker_threads: usize,
    /// How many tokio tasks run the lanes (`None`: one per lane up to 64, or up to twice
    /// `worker_threads` if that is more). A task runs its lanes in turn, so lanes cost buffers,
    /// not wake-ups; more tasks spread a slow synchronous operator's stall over fewer lanes.
    pub lane_groups: Option<usize>,
    /// How long a stop request waits for the open epoch to finish (default 30 s). An epoch that
    /// cannot finish in time (a lane stuck in operator code) is aborted: nothing of it is
    /// committed, and the run returns an error.
    pub shutdown_timeout: Duration,
    /// How long transient log errors (a broker outage, timeouts) are retried before the app
    /// stops (default 5 min, as Kafka Streams' `task.timeout.ms`). Each retry aborts the epoch,
    /// discards its work, rewinds the inputs to the last commit and runs the epoch again, after
    /// a back-off growing from 100 ms to 5 s.
    pub retry_timeout: Duration,
    /// What to do with a state directory another app id wrote, or state that no longer fits its
    /// changelog (the topic was recreated): `false` (the default) stops with an error naming
    /// both; `true` empties the stores and rebuilds them from their changelogs.
    pub rebuild_foreign_state: bool,
    /// Which input record is processed next across partitions (default
    /// [`DispatchOrder::Timestamp`]).
    pub dispatch_order: DispatchOrder,
    /// With [`DispatchOrder::Timestamp`], how long input waits for a partition that has more
    /// records in the log but none fetched yet, before the others go on without it (Kafka
    /// Streams' `max.task.idle.ms`); default 500 ms.
    pub max_partition_wait: Duration,
    /// The wall clock wall-clock timers follow (the system's; the test driver's own in tests).
    pub clock: crate::clock::Clock,
    /// What event time is (default [`TimeSemantics::StreamTime`]).
    pub time: TimeSemantics,
    /// How often aggregations emit (default [`Emission::EveryUpdate`]).
    pub emission: Emission,
    /// Which order re-keyed records keep (default [`RekeyOrder::PerKey`]).
    pub rekey_order: RekeyOrder,
    /// Where the HTTP endpoints listen (health, metrics, stores, pause/resume, offsets); `None`
    /// (the default): no server. Port 0 picks a free port ([`App::http_addr`](crate::app::App::http_addr)
    /// tells which).
    pub http: Option<std::net::SocketAddr>,
    /// How long the app may go without committing an epoch while input is pending before
    /// `/health/live` reports it stalled (default 60 s).
    pub liveness_timeout: Duration,
}

fn cpus() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(2)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lanes: cpus(),
            state_dir: None,
            state_map_size: 16 << 30,
            commit_interval: Duration::from_millis(100),
            min_commit_interval: Duration::ZERO,
            state_sync_interval: Duration::from_secs(1),
            commit_max_records: 50_000,
            max_in_flight: None,
            error_policy: ErrorPolicy::Fail,
            worker_threads: cpus(),
            lane_groups: None,
            shutdown_timeout: Duration::from_secs(30),
            retry_timeout: Duration::from_secs(300),
            rebuild_foreign_state: false,
            dispatch_order: DispatchOrder::Timestamp,
            max_partition_wait: Duration::from_millis(500),
            clock: crate::clock::Clock::system(),
            time: TimeSemantics::StreamTime,
            emission: Emission::EveryUpdate,
            rekey_order: RekeyOrder::PerKey,
            http: None,
            liveness_timeout: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Serves the HTTP endpoints on `addr` (e.g. `"0.0.0.0:8080".parse()?`).
    pub fn http(mut self, addr: std::net::SocketAddr) -> Self {
        self.http = Some(addr);
        self
    }
    /// Sets how long the app may go without a commit while input is pending before it is
    /// reported not live.
    pub fn liveness_timeout(mut self, timeout: Duration) -> Self {
        self.liveness_timeout = timeout;
        self
    }
    /// Sets the number of lanes.
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes;
        self
    }
    /// Keeps state in `dir`.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
    /// Sets the error policy.
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Self {
        self.error_policy = policy;
        self
    }
    /// Sets the longest an epoch with records lasts.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }
    /// Sets the shortest time between barriers (an epoch ends when the input is caught up, but
    /// not sooner than this after the previous barrier).
    pub fn min_commit_interval(mut self, interval: Duration) -> Self {
        self.min_commit_interval = interval;
        self
    }
    /// Sets how long a committed epoch's state may stay unflushed to disk (zero: every commit
    /// is flushed).
    pub fn state_sync_interval(mut self, interval: Duration) -> Self {
        self.state_sync_interval = interval;
        self
    }
    /// A fixed cadence: every epoch with records lasts `interval` (as Kafka Streams'
    /// `commit.interval.ms`), whether the input is caught up or not.
    pub fn fixed_commit_interval(self, interval: Duration) -> Self {
        self.commit_interval(interval).min_commit_interval(interval)
    }
    /// Sets the most input records per epoch.
    pub fn commit_max_records(mut self, records: usize) -> Self {
        self.commit_max_records = records;
        self
    }

    /// Sets which input record is processed next across partitions.
    pub fn dispatch_order(mut self, order: DispatchOrder) -> Self {
        self.dispatch_order = order;
        self
    }
    /// Sets the wall clock wall-clock timers and schedules follow (a manual clock in tests).
    pub fn clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }
    /// Event time is a watermark (see [`TimeSemantics::Watermarks`]) instead of Kafka Streams'
    /// stream time.
    pub fn watermarks(mut self, out_of_orderness: Duration, idle_after: Duration) -> Self {
        self.time = TimeSemantics::Watermarks { out_of_orderness, idle_after };
        self
    }
    /// Sets how long input waits for a partition with records in the log but none fetched.
    pub fn max_partition_wait(mut self, wait: Duration) -> Self {
        self.max_partition_wait = wait;
        self
    }
    /// Sets how often aggregations (`count`, `reduce`, `aggregate`, cogroups, table
    /// aggregations) emit.
    pub fn emission(mut self, emission: Emission) -> Self {
        self.emission = emission;
        self
    }
    /// Sets which order re-keyed records keep.
    pub fn rekey_order(mut self, order: RekeyOrder) -> Self {
        self.rekey_order = order;
        self
    }
    /// Sets the most records in flight (at least 256).
    pub fn max_in_flight(mut self, records: usize) -> Self {
        self.max_in_flight = Some(records);
        self
    }
    /// Sets the size of the LMDB map (at least 1 MiB).
    pub fn state_map_size(mut self, bytes: usize) -> Self {
        self.state_map_size = bytes;
        self
    }
    /// Sets the number of tokio worker threads.
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = threads;
        self
    }
    /// Sets how many tokio tasks run the lanes (at most one per lane).
    pub fn lane_groups(mut self, groups: usize) -> Self {
        self.lane_groups = Some(groups);
        self
    }

    /// How many tasks run the lanes: see [`Config::lane_groups`].
    pub fn effective_lane_groups(&self) -> usize {
        let groups = self.lane_groups.unwrap_or_else(|| 64.max(2 * self.worker_threads));
        groups.clamp(1, self.lanes.max(1))
    }
    /// Sets how long a stop request waits for the open epoch.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
    /// Sets how long transient log errors are retried.
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }
    /// Rebuilds foreign or stale state from the changelogs instead of refusing it.
    pub fn rebuild_foreign_state(mut self, rebuild: bool) -> Self {
        self.rebuild_foreign_state = rebuild;
        self
    }

    /// The in-flight bound in effect: by default 16 batches per lane group (batches are
    /// per group, whatever the number of lanes).
    pub fn effective_max_in_flight(&self) -> usize {
        self.max_in_flight.unwrap_or(self.effective_lane_groups() * 16 * crate::lane::BATCH)
    }

    /// Checks every setting, naming the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_string()));
        if self.lanes == 0 || self.lanes > 65_536 {
            return bad("`lanes` must be between 1 and 65536");
        }
        if self.commit_max_records == 0 {
            return bad("`commit_max_records` must be at least 1");
        }
        if self.commit_interval.is_zero() {
            return bad("`commit_interval` must be longer than zero");
        }
        if self.min_commit_interval > self.commit_interval {
            return Err(Error::Config(format!(
                "`min_commit_interval` ({:?}) is longer than `commit_interval` ({:?}), the longest an epoch lasts",
                self.min_commit_interval, self.commit_interval
            )));
        }
        if self.state_map_size < (1 << 20) {
            return bad("`state_map_size` must be at least 1 MiB");
        }
        if self.lane_groups == Some(0) {
            return bad("`lane_groups` must be at least 1");
        }
        if self.worker_threads == 0 {
            return bad("`worker_threads` must be at least 1");
        }
        if let ErrorPolicy::DeadLetter(topic) = &self.error_policy {
            if topic.trim().is_empty() {
                return bad("the dead-letter topic name is empty");
            }
        }
        if self.max_in_flight.is_some_and(|n| n < crate::lane::BATCH) {
            return bad("`max_in_flight` must be at least 256");
        }
        Ok(())
    }
}
