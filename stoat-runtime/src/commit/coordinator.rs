//! The engine: lanes plus the coordinator loop that drives epochs.
//!
//! One epoch: dispatch input records in per-lane batches (bounded by the in-flight budget) until
//! a trigger fires; stop dispatching; wait until nothing is in flight (every record of the epoch,
//! including re-keyed ones, has been processed); seal every lane (collect its buffered state
//! changes, flush its outputs); commit the log with the epoch's input offsets; write the state
//! changes to LMDB in one transaction. The log commit comes first, so LMDB never holds state of an
//! epoch the log did not commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::Shutdown;
use crate::config::{Config, DispatchOrder, Emission, ErrorPolicy, RekeyOrder};
use crate::error::{Error, RecordLocation, Result};
use crate::lane::{dead_letter, spawn_group, Budget, Entry, Lane, LaneCx, LaneMsg, Phase, Shared};
use crate::log::{Log, LogRecord, Polled};
use crate::record::Origin;
use crate::state::{StateEnv, StateWriter};
use crate::stats::Stats;
use crate::status::Status;
use crate::topology::Program;
use crate::topology::{Added, Batcher};

/// An epoch that dispatched no timestamped record yet.
pub(super) const NO_SPAN: (i64, i64) = (i64::MAX, i64::MIN);

/// Records taken from the log per poll.
pub(super) const FETCH: usize = 2048;

/// Release rounds at an epoch's end beyond which it is an error (records released at the end
/// of an epoch can release others, through chained aggregations or timers, but not forever).
const MAX_END_ROUNDS: usize = 1_000;

/// How often the coordinator asks the log to pick up new input partitions.
pub(super) const REASSIGN_EVERY: Duration = Duration::from_secs(5);

/// How often the coordinator looks at its lanes and the stop request while it waits for them.
pub(super) const WATCH_EVERY: Duration = Duration::from_millis(50);

/// Where the coordinator is in one input partition.
#[derive(Clone, Copy, Debug)]
pub(super) struct Position {
    /// The next offset to read.
    pub next_offset: u64,
    /// The largest timestamp dispatched from it (`i64::MIN`: none yet): committed with the
    /// offset, so stream time resumes where it was.
    pub time: i64,
}

/// A running topology: lanes, the state writer, and the coordinator's position in every input.
pub struct Engine {
    pub(super) program: Arc<Program>,
    pub(super) config: Config,
    pub(super) log: Arc<dyn Log>,
    pub(super) writer: StateWriter,
    pub(super) shared: Arc<Shared>,
    /// The lane groups' tasks.
    pub(super) lanes: Vec<JoinHandle<()>>,
    pub(super) topics: Vec<String>,
    pub(super) batchers: Vec<Box<dyn Batcher>>,
    /// Position per (source, partition) read in this run, for the epoch's commit.
    pub(super) positions: HashMap<(u32, u32), Position>,
    /// The partition times committed before this run started (a partition's first position
    /// starts from its time).
    pub(super) restored_times: HashMap<(u32, u32), i64>,
    /// Event time per source group (stream time, or a watermark).
    pub(super) time: super::event_time::EventTime,
    pub(super) assigned_at: Instant,
    /// When the last epoch's barrier started (commit cadence).
    pub(super) last_barrier: Instant,
    pub(super) epoch: u64,
    pub(super) failed: bool,
    pub(super) polled: Vec<Polled>,
    /// Input records fetched and not yet dispatched, and how they are ordered.
    pub(super) order: super::order::InputOrder,
    /// Per lane group, the source whose records were batched for it last.
    lane_source: Vec<Option<usize>>,
    /// The stop request of the current run, and when the coordinator first saw it triggered.
    pub(super) shutdown: Option<Shutdown>,
    pub(super) stop_seen: Option<Instant>,
    /// The input positions of the last commit: where a retried epoch starts again.
    pub(super) committed: HashMap<(u32, u32), Position>,
    /// Since when, and how often, transient errors have been retried without a commit.
    pub(super) retrying_since: Option<Instant>,
    pub(super) retries: u32,
    /// While global tables are read to their end at start: their sources, the others (held
    /// back), and when it began.
    bootstrap: Option<Bootstrap>,
    /// Event time was moved by hand: the next epoch commits even without input.
    advanced: bool,
    /// The previous epoch's commit, while it runs (see `pipeline`).
    pub(super) in_commit: Option<super::pipeline::InCommit>,
    /// The coordinator's own outputs (dead letters) held while a commit runs.
    pub(super) held: Vec<crate::log::OutRecord>,
    /// What the app is doing, for its observers; its pause switch.
    pub(super) status: Arc<Status>,
    /// Records read per source since the last poll's metrics.
    read_per_source: Vec<u64>,
    /// The oldest and newest timestamps of the records dispatched in the open epoch.
    pub(super) epoch_span: (i64, i64),
}

/// A global-table bootstrap in progress.
#[derive(Debug)]
struct Bootstrap {
    globals: Vec<u32>,
    held: Vec<u32>,
    since: Instant,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("app", &self.program.app()).field("epoch", &self.epoch).finish()
    }
}

/// Why an epoch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trigger {
    Time,
    RecordCount,
    CaughtUp,
    Idle,
    Stop,
}

impl Trigger {
    /// Its name in statistics and metrics.
    pub(super) fn name(self) -> &'static str {
        match self {
            Trigger::Time => "time",
            Trigger::RecordCount => "record_count",
            Trigger::CaughtUp => "caught_up",
            Trigger::Idle => "idle",
            Trigger::Stop => "stop",
        }
    }
}

impl Engine {
    /// Starts the lanes of `program` over `log` and `state`. Must run inside a tokio runtime.
    pub fn start(
        program: Arc<Program>,
        config: Config,
        log: Arc<dyn Log>,
        state: StateEnv,
        writer: StateWriter,
        stats: Arc<Stats>,
        status: Arc<Status>,
    ) -> Result<Engine> {
        config.validate()?;
        let groups = config.effective_lane_groups();
        let mut receivers = Vec::with_capacity(groups);
        let mut senders = Vec::with_capacity(groups);
        for _ in 0..groups {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            receivers.push(rx);
        }
        let shared = Arc::new(Shared {
            lanes: config.lanes,
            senders,
            budget: Budget::new(config.effective_max_in_flight(), program.point_roots.len() + 1),
            progress: Notify::new(),
            failed: Default::default(),
            hold_outputs: Default::default(),
            holding: Default::default(),
            failure: Mutex::new(None),
            stats,
            policy: config.error_policy.clone(),
            once_per_epoch: config.emission == Emission::LatestPerEpoch,
            epoch_end: config.emission == Emission::LatestPerEpoch || program.epoch_end,
            source_groups: program.source_groups.clone(),
            source_topics: program.source_topics().into_iter().map(std::sync::Arc::from).collect(),
            log: Arc::clone(&log),
            clock: config.clock.clone(),
        });
        let mut lanes = Vec::with_capacity(groups);
        for (group, rx) in receivers.into_iter().enumerate() {
            let mut members = Vec::with_capacity(config.lanes / groups + 1);
            for lane in (group..config.lanes).step_by(groups) {
                let mut states = Vec::with_capacity(program.states.len());
                for slot in &program.states {
                    states.push(std::cell::RefCell::new((slot.open)(&state)?));
                }
                let cx = LaneCx {
                    lane,
                    shared: Arc::clone(&shared),
                    states,
                    outputs: Vec::new(),
                    outbox: Default::default(),
                    phase: Phase::Batch,
                    released: 0,
                    stream_times: Arc::default(),
                };
                members.push(Lane::new(cx, program.pipeline(config.lanes)));
            }
            lanes.push(spawn_group(group, Arc::clone(&shared), members, rx));
        }
        let topics = program.source_topics();
        let topics_len = topics.len();
        let by_partition = config.rekey_order == RekeyOrder::InputPartition;
        let batchers =
            program.sources.iter().map(|s| s.batcher(config.lanes, groups, by_partition)).collect();
        log.assign(program.app(), &topics)?;
        let restored_times: HashMap<(u32, u32), i64> = log
            .committed_times(program.app(), &topics)?
            .into_iter()
            .map(|(source, partition, time)| ((source, partition), time))
            .collect();
        let lane_source = vec![None; groups];
        let time = super::event_time::EventTime::new(
            config.time,
            &program.source_groups,
            restored_times.iter().map(|(&k, &t)| (k, t)),
            config.clock.now(),
        );
        // Global tables are read to their end before any other input (as Kafka Streams' global
        // thread bootstraps them): the other sources are paused until then.
        let (globals, held): (Vec<u32>, Vec<u32>) =
            (0..program.sources.len() as u32).partition(|&i| program.sources[i as usize].bootstraps());
        let bootstrap = (!globals.is_empty() && !held.is_empty()).then(|| Bootstrap {
            globals,
            held,
            since: Instant::now(),
        });
        if let Some(b) = &bootstrap {
            log.pause(&b.held, true)?;
        }
        Ok(Engine {
            program,
            config,
            log,
            writer,
            shared,
            lanes,
            topics,
            batchers,
            positions: HashMap::new(),
            restored_times,
            time,
            assigned_at: Instant::now(),
            last_barrier: Instant::now(),
            epoch: state.committed_epoch()?,
            failed: false,
            polled: Vec::new(),
            order: Default::default(),
            lane_source,
            shutdown: None,
            stop_seen: None,
            committed: HashMap::new(),
            retrying_since: None,
            retries: 0,
            bootstrap,
            advanced: false,
            in_commit: None,
            held: Vec::new(),
            status,
            read_per_source: vec![0; topics_len],
            epoch_span: NO_SPAN,
        })
    }

    /// Moves event time of every source group on to at least `to`, as if records that late had
    /// come (a test driver's `advance_stream_time`): windows close and timers fire by it at the
    /// next epoch's end. Partition times committed with offsets are not moved.
    pub fn advance_event_time(&mut self, to: i64) {
        self.time.advance_to(to);
        self.advanced = true;
    }

    /// Runs a call that may block (a log operation waiting for the broker) on tokio's blocking
    /// threads, so the async threads stay free whatever the runtime's flavour.
    pub(super) async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Log) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || f(log.as_ref())).await.unwrap_or_else(|e| {
            Err(Error::Runtime(format!("a log operation panicked or was cancelled: {e}")))
        })
    }

    /// Picks up new partitions of the input topics now and then.
    async fn refresh_partitions(&mut self) -> Result<()> {
        if self.assigned_at.elapsed() >= REASSIGN_EVERY {
            let (app, topics) = (self.program.app().to_string(), self.topics.clone());
            self.blocking(move |log| log.assign(&app, &topics)).await?;
            self.assigned_at = Instant::now();
        }
        Ok(())
    }

    /// Processes everything available, commits, and returns (one or more epochs).
    pub async fn run_until_idle(&mut self) -> Result<()> {
        self.run(None, Trigger::Idle).await
    }

    /// Processes until `shutdown` is triggered, then commits the open epoch and returns.
    pub async fn run_until(&mut self, shutdown: &Shutdown) -> Result<()> {
        self.run(Some(shutdown.clone()), Trigger::Stop).await
    }

    /// Runs epochs until one ends on `last`, retrying transient failures in place.
    async fn run(&mut self, shutdown: Option<Shutdown>, last: Trigger) -> Result<()> {
        self.assigned_at = Instant::now() - REASSIGN_EVERY;
        self.shutdown = shutdown;
        self.stop_seen = None;
        loop {
            match self.run_epoch().await {
                // The last epoch's commit is waited for: a run returns with its work committed.
                Ok(trigger) if trigger == last => match self.finish_commit().await {
                    Ok(()) => return Ok(()),
                    Err(e) => self.recover_or_stop(e).await?,
                },
                Ok(_) => {}
                Err(e) => self.recover_or_stop(e).await?,
            }
        }
    }

    pub(super) fn check(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::Runtime("the engine failed earlier; start a new one".into()));
        }
        if !self.shared.has_failed() {
            return Ok(());
        }
        Err(self
            .shared
            .take_failure()
            .unwrap_or_else(|| Error::Runtime("a lane failed without saying why".into())))
    }

    /// Waits until `done` holds. Fails when a lane failed or stopped, and when a stop was
    /// requested and the open epoch has not finished within `Config::shutdown_timeout`: a stop
    /// request is honoured in bounded time, whatever the lanes are doing.
    async fn wait_until(&mut self, done: impl Fn(&Shared) -> bool) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        // Whether a lane has died is looked at every WATCH_EVERY, not at every wake-up: that is
        // one look per lane, and progress wakes this loop once per batch a lane finishes.
        let mut looked = Instant::now();
        loop {
            let notified = shared.progress.notified();
            self.check()?;
            if done(&shared) {
                return Ok(());
            }
            if looked.elapsed() >= WATCH_EVERY {
                looked = Instant::now();
                if let Some(group) = self.lanes.iter().position(JoinHandle::is_finished) {
                    return Err(Error::Runtime(format!("the lanes of group {group} stopped unexpectedly")));
                }
            }
            if self.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
                let seen = *self.stop_seen.get_or_insert_with(Instant::now);
                let limit = self.config.shutdown_timeout;
                if seen.elapsed() >= limit {
                    return Err(Error::Runtime(format!(
                        "a stop was requested, but the open epoch did not finish within {limit:?} (`Config::shutdown_timeout`): a lane is still busy in operator code; the epoch was aborted and nothing of it is committed"
                    )));
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
        }
    }

    async fn run_epoch(&mut self) -> Result<Trigger> {
        let stop = self.shutdown.clone();
        let shutdown = stop.as_ref();
        self.check()?;
        self.refresh_partitions().await?;
        let interval = self.config.commit_interval;
        // An epoch with records closes when the input is caught up, but not before
        // `min_commit_interval` after the previous barrier started, and at the latest
        // `commit_interval` after it; an empty one returns every interval to look for new
        // partitions.
        let deadline = self.last_barrier + interval;
        let earliest = self.last_barrier + self.config.min_commit_interval;
        let started = Instant::now();
        let mut dispatched = 0usize;
        // While the previous epoch commits, at most this many records are dispatched (their
        // outputs wait in the lanes until its transaction is committed).
        let ahead = self.config.effective_max_in_flight().min(self.config.commit_max_records);
        let trigger = loop {
            if self.in_commit.is_some() && (dispatched >= ahead || self.commit_finished()) {
                self.finish_commit().await?;
            }
            let mut max = self.config.commit_max_records - dispatched;
            if self.in_commit.is_some() {
                max = max.min(ahead.saturating_sub(dispatched)).max(1);
            }
            let n = self.poll_once(max).await?;
            dispatched += n;
            if dispatched >= self.config.commit_max_records {
                break Trigger::RecordCount;
            }
            if shutdown.is_some_and(Shutdown::is_triggered) {
                break Trigger::Stop;
            }
            let now = Instant::now();
            if (dispatched > 0 && now >= deadline) || (dispatched == 0 && now >= started + interval) {
                break Trigger::Time;
            }
            if n == 0 && self.bootstrap.is_some() {
                if self.bootstrapped().await? {
                    // The other input is let in: poll again at once.
                    continue;
                }
                // Not at the end yet, though nothing came: wait for the global tables' input,
                // idle or not.
                if shutdown.is_none() {
                    self.log.wait_for_data().await;
                    continue;
                }
            }
            if n == 0 {
                self.flush_all()?;
                match shutdown {
                    None => break Trigger::Idle,
                    // Caught up, but while the previous epoch commits this one goes on taking
                    // input: it could not commit sooner, and what arrives meanwhile joins it
                    // instead of waiting for the next commit.
                    Some(_) if dispatched > 0 && now >= earliest && self.commit_finished() => {
                        break Trigger::CaughtUp
                    }
                    Some(stop) => {
                        let until = match dispatched {
                            0 => started + interval,
                            _ if now >= earliest => deadline,
                            _ => earliest,
                        };
                        let left = until.saturating_duration_since(now);
                        let committed = self.commit_signal();
                        let status = Arc::clone(&self.status);
                        let paused = status.is_paused();
                        tokio::select! {
                            _ = self.log.wait_for_data(), if !paused => {}
                            _ = status.resumed.notified(), if paused => {}
                            _ = stop.wait() => {}
                            _ = tokio::time::sleep(left.max(Duration::from_millis(1))) => {}
                            _ = async {
                                match committed {
                                    Some(done) => done.notified().await,
                                    None => std::future::pending().await,
                                }
                            } => {}
                        }
                    }
                }
            }
        };
        self.flush_all()?;
        let barrier = Instant::now();
        let released = self.quiesce().await?;
        // With timers, an epoch without input still ends: due timers fire at its end. If that
        // released nothing and changed no state, there is nothing to commit.
        if dispatched > 0 || trigger == Trigger::Stop || self.program.timers || self.advanced {
            self.advanced = false;
            let skip_if_unchanged = dispatched == 0 && trigger != Trigger::Stop && released == 0;
            self.commit(trigger, skip_if_unchanged).await?;
            // Under load (an epoch cut by time or size) the next epoch is processed while this
            // one commits. One that ended caught up is committed first: there is little input to
            // overlap, and the commit's critical path then has the CPU to itself (measured on two
            // cores: word count's p99 at 25 % load ~12 ms lower than when overlapped).
            if !matches!(trigger, Trigger::Time | Trigger::RecordCount) {
                self.finish_commit().await?;
            }
        }
        // Input was not polled during the barrier: that is no wait for a partition.
        self.order.stalled(barrier.elapsed());
        Ok(trigger)
    }

    /// Whether the global tables' bootstrap is over: once their sources are read to the end, the
    /// held-back sources are resumed.
    async fn bootstrapped(&mut self) -> Result<bool> {
        let Some(b) = &self.bootstrap else { return Ok(true) };
        let globals = b.globals.clone();
        if !self.blocking(move |log| log.sources_caught_up(&globals)).await? {
            return Ok(false);
        }
        let held = b.held.clone();
        self.blocking(move |log| log.pause(&held, false)).await?;
        let globals: Vec<&str> = b.globals.iter().map(|&i| self.topics[i as usize].as_str()).collect();
        tracing::info!(app = %self.program.app(), ?globals, took = ?b.since.elapsed(), "global tables loaded; reading the other input");
        self.bootstrap = None;
        Ok(true)
    }

    /// Takes one round of records from the log and dispatches them. Returns how many.
    async fn poll_once(&mut self, max: usize) -> Result<usize> {
        if self.status.is_paused() {
            // Paused: the open epoch ends as if the input were caught up.
            return Ok(0);
        }
        let mut polled = std::mem::take(&mut self.polled);
        polled.clear();
        if self.config.dispatch_order == DispatchOrder::Timestamp {
            let until_idle = self.shutdown.is_none();
            self.order.next(&*self.log, max, &self.config, until_idle, &mut polled)?;
        } else {
            self.log.poll(FETCH.min(max), &mut polled)?;
        }
        let now = self.config.clock.now();
        for &part in self.order.lagging() {
            self.time.pending(part, now);
        }
        self.time.sweep(now);
        for p in &polled {
            let s = p.source as usize;
            let group = self.time.group_of(p.source);
            let stream_time = self.time.times().get(group).copied().unwrap_or(i64::MIN);
            let origin =
                Origin { source: p.source, partition: p.partition, offset: p.record.offset, stream_time };
            let restored = &self.restored_times;
            let position = self.positions.entry((p.source, p.partition)).or_insert_with_key(|k| Position {
                next_offset: 0,
                time: restored.get(k).copied().unwrap_or(i64::MIN),
            });
            position.next_offset = p.record.offset + 1;
            // Records dropped at the source (null keys or values, undecodable) do not move
            // event time.
            let event_time = &mut self.time;
            let part = (p.source, p.partition);
            let added = self.batchers[s].add(&p.record, origin, &mut |ts| event_time.observe(part, ts, now));
            if let Ok((Added::Lane(_) | Added::All, timestamp)) = added {
                position.time = position.time.max(timestamp);
                self.epoch_span = (self.epoch_span.0.min(timestamp), self.epoch_span.1.max(timestamp));
            }
            self.read_per_source[s] += 1;
            match added.map(|(added, _)| added) {
                Ok(Added::Lane(lane)) => self.batched(s, lane % self.shared.groups()).await?,
                Ok(Added::All) => {
                    for group in 0..self.shared.groups() {
                        self.batched(s, group).await?;
                    }
                }
                Ok(Added::Null(part)) => {
                    self.shared.stats.drop_null(part);
                    tracing::debug!(topic = %self.topics[s], partition = p.partition, offset = p.record.offset, part, "record with a null {part} dropped: the stream's {part} type has no null");
                }
                Err((part, source)) => self.decode_error(s, &p.record, p.partition, part, source).await?,
            }
        }
        let n = polled.len();
        self.shared.stats.add_in(n);
        for (s, read) in self.read_per_source.iter_mut().enumerate() {
            if *read > 0 {
                self.shared.stats.read_from(&self.topics[s], std::mem::take(read));
            }
        }
        self.polled = polled;
        Ok(n)
    }

    async fn decode_error(
        &mut self,
        s: usize,
        record: &LogRecord,
        partition: u32,
        part: &'static str,
        source: crate::error::DecodeError,
    ) -> Result<()> {
        let location = RecordLocation { topic: self.topics[s].clone(), partition, offset: record.offset };
        match &self.config.error_policy {
            ErrorPolicy::Fail => Err(Error::Decode { part, location, cause: source }),
            ErrorPolicy::Skip => {
                self.shared.stats.skip("decode");
                tracing::warn!(%location, part, error = %source, "undecodable record skipped");
                Ok(())
            }
            ErrorPolicy::DeadLetter(topic) => {
                self.shared.stats.skip("decode");
                self.shared.stats.dead_lettered("decode");
                let error = format!("cannot decode the {part}: {source}");
                let out = dead_letter(topic, record.key.clone(), record.value.clone(), &location, &error);
                self.shared.stats.add_out(std::slice::from_ref(&out));
                self.output(out).await
            }
        }
    }

    /// A record of source `s` was batched for lane group `group`: a batch of another source
    /// waiting for this group goes first (so a lane gets its records in dispatch order across
    /// sources), and a full batch is sent.
    async fn batched(&mut self, s: usize, group: usize) -> Result<()> {
        match self.lane_source[group] {
            Some(prev) if prev != s && self.batchers[prev].len(group) > 0 => {
                self.send(prev, group).await?;
            }
            _ => {}
        }
        self.lane_source[group] = Some(s);
        if self.batchers[s].len(group) >= crate::lane::BATCH {
            self.send(s, group).await?;
        }
        Ok(())
    }

    /// Sends a source's batch for lane group `group`, waiting while the in-flight budget is
    /// used up.
    async fn send(&mut self, s: usize, group: usize) -> Result<()> {
        if !self.shared.budget.has_room() {
            let stalled = Instant::now();
            self.wait_until(|shared| shared.budget.has_room()).await?;
            self.order.stalled(stalled.elapsed());
        }
        let count = self.batchers[s].len(group);
        let batch = self.batchers[s].take(group);
        self.shared.count_in(Entry::Source(s), count);
        self.shared.send_counted(group, Entry::Source(s), batch, count)
    }

    fn flush_all(&mut self) -> Result<()> {
        for s in 0..self.batchers.len() {
            for group in 0..self.shared.groups() {
                let n = self.batchers[s].len(group);
                if n > 0 {
                    let batch = self.batchers[s].take(group);
                    self.shared.count_in(Entry::Source(s), n);
                    self.shared.send_counted(group, Entry::Source(s), batch, n)?;
                }
            }
        }
        Ok(())
    }

    /// Waits until every dispatched and re-keyed record has been processed.
    /// Waits until nothing is in flight; then, when nodes act at the epoch's end (aggregations
    /// holding their outputs, windows emitted when they close), has every lane run them with the
    /// epoch's stream times and waits for what they set off, until a round releases nothing (one
    /// aggregation's outputs may feed another's).
    /// Waits until the epoch's work is done, and, where nodes act at its end, until their rounds
    /// release nothing more; returns how many records those rounds released.
    async fn quiesce(&mut self) -> Result<usize> {
        self.wait_until(|shared| shared.budget.in_flight() == 0).await?;
        if !self.shared.epoch_end {
            return Ok(0);
        }
        let stream_times = Arc::new(self.time.times().to_vec());
        let mut total = 0;
        for round in 0.. {
            if round == MAX_END_ROUNDS {
                return Err(Error::Runtime(format!(
                    "the end of epoch {} did not settle after {MAX_END_ROUNDS} rounds: something keeps releasing records when an epoch ends (an `#[on_timer]` method that sets a timer at or before the time it handles, and emits, fires again in every round)",
                    self.epoch + 1
                )));
            }
            let mut released = 0;
            let replies = self.ask_groups(|reply| LaneMsg::EndEpoch(Arc::clone(&stream_times), reply))?;
            for (group, wait) in replies.into_iter().enumerate() {
                released += wait.await.map_err(|_| stopped(group))??;
            }
            self.wait_until(|shared| shared.budget.in_flight() == 0).await?;
            total += released;
            if released == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Sends every lane group the message `ask` makes with its reply channel, all before
    /// waiting for any (so they work on it at once); returns the replies to wait for, in group
    /// order.
    pub(super) fn ask_groups<R>(
        &self,
        ask: impl Fn(oneshot::Sender<Result<R>>) -> LaneMsg,
    ) -> Result<Vec<oneshot::Receiver<Result<R>>>> {
        let mut replies = Vec::with_capacity(self.shared.senders.len());
        for (group, tx) in self.shared.senders.iter().enumerate() {
            let (reply, wait) = oneshot::channel();
            tx.send(ask(reply)).map_err(|_| stopped(group))?;
            replies.push(wait);
        }
        Ok(replies)
    }
}

/// A lane group's task has stopped (it does only when the engine is dropped, or by a bug).
pub(super) fn stopped(group: usize) -> Error {
    Error::Runtime(format!("the lanes of group {group} stopped unexpectedly"))
}

impl Drop for Engine {
    fn drop(&mut self) {
        for lane in &self.lanes {
            lane.abort();
        }
    }
}
