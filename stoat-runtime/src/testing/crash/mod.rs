//! [`CrashTest`]: proves a user's own topology exactly-once across crashes, in a unit test. It
//! runs the topology on the embedded log (with changelogs, as on Kafka) over the given input,
//! once without a crash, then once per crash point of every epoch's commit (and of the restore
//! after it), optionally losing the state directory at each crash; each crashed app is restarted
//! from exactly what survives (the log's committed records, LMDB's committed transactions) and
//! runs on to the end. Every run's committed outputs must equal the crash-free run's, and (where
//! per-key order is compared) so must every state store's content at the end.

mod compare;
mod log;
mod switch;

pub(crate) use log::CrashLog;
pub use switch::CrashPoint;
pub(crate) use switch::CrashSwitch;

use std::sync::Arc;

use crate::app::App;
use crate::config::{Config, ErrorPolicy};
use crate::error::{Error, Result};
use crate::log::EmbeddedLog;
use crate::record::Headers;
use crate::topology::{Topic, Topology};
use compare::{Compare, Outputs, States};

/// One input record, encoded.
#[derive(Clone, Debug)]
struct Input {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
}

/// Runs a topology through simulated crashes at every step of every commit and checks that its
/// committed outputs are exactly those of a run without crashes. (The example runs as a doctest
/// in the book's Testing chapter, through the `stoat` facade.)
///
/// ```ignore
/// use stoat::prelude::*;
/// use stoat::testing::CrashTest;
///
/// #[stoat::operator]
/// fn running_total(amount: u64, total: &mut Keyed<u64>) -> Result<u64, StoreError> {
///     let sum = total.get()?.unwrap_or(0) + amount;
///     total.set(sum)?;
///     Ok(sum)
/// }
///
/// # fn main() -> stoat::Result<()> {
/// let topology = Topology::new("totals");
/// let amounts: Topic<String, u64> = Topic::new("amounts");
/// topology.source(&amounts).process(running_total {}).sink(&Topic::new("totals"));
/// let report = CrashTest::new(&topology)
///     .pipe(&amounts, [("a".to_string(), 1), ("b".to_string(), 2)])?
///     .end_epoch()
///     .pipe(&amounts, [("a".to_string(), 3)])?
///     .lose_state(true)
///     .run()?;
/// assert_eq!(report.epochs, 2);
/// # Ok(()) }
/// ```
pub struct CrashTest<'t> {
    topology: &'t Topology,
    config: Config,
    partitions: u32,
    lose_state: bool,
    compare: Compare,
    epochs: Vec<Vec<Input>>,
    clock: i64,
}

impl std::fmt::Debug for CrashTest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrashTest")
            .field("app", &self.topology.app())
            .field("epochs", &self.epochs.len())
            .field("lose_state", &self.lose_state)
            .finish()
    }
}

/// What a passed crash test ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Epochs the crash-free run committed.
    pub epochs: u64,
    /// Runs with a crash (each compared with the crash-free run).
    pub crashes: usize,
    /// Planned crashes that did not happen: the run had fewer commits than the crash-free one,
    /// or nothing to restore at a [`CrashPoint::DuringRestore`].
    pub not_reached: usize,
    /// Of those, runs that also lost the state directory.
    pub with_state_lost: usize,
    /// Output records the crash-free run committed.
    pub outputs: usize,
}

impl<'t> CrashTest<'t> {
    /// A crash test of `topology` with 3 lanes and input topics of 3 partitions.
    pub fn new(topology: &'t Topology) -> Self {
        CrashTest {
            topology,
            config: Config::default().lanes(3),
            partitions: 3,
            lose_state: false,
            compare: Compare::InOrder,
            epochs: vec![Vec::new()],
            clock: 1_700_000_000_000,
        }
    }

    /// The configuration the apps run with (its state directory is replaced by the test's).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Partitions of the input topics (default 3).
    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions.max(1);
        self
    }

    /// Also runs every crash with the state directory lost before the restart (restored from
    /// the changelogs).
    pub fn lose_state(mut self, lose: bool) -> Self {
        self.lose_state = lose;
        self
    }

    /// Compares each output key's records as a multiset rather than in order: for topologies
    /// that write one key from several lanes (a key changed at the sink without a re-key), whose
    /// order across lanes is not defined, with crashes or without. The state stores' final
    /// content is then not compared.
    pub fn unordered(mut self) -> Self {
        self.compare = Compare::Unordered;
        self
    }

    /// Compares only each output key's last committed record (what a compacted topic keeps):
    /// for aggregations fed by several input partitions through a re-key, whose intermediate
    /// updates depend on how records of different partitions interleave (in Kafka Streams too),
    /// while their results do not. The state stores' final content is then not compared.
    pub fn latest_per_key(mut self) -> Self {
        self.compare = Compare::Latest;
        self
    }

    /// Adds records to the current epoch's input, timestamped 1 ms apart.
    pub fn pipe<K: 'static, V: 'static>(
        mut self,
        topic: &Topic<K, V>,
        records: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let mut timed = Vec::new();
        for (key, value) in records {
            self.clock += 1;
            timed.push((key, value, self.clock));
        }
        self.pipe_at(topic, timed)
    }

    /// Adds records with their timestamps (ms since the Unix epoch) to the current epoch's input.
    pub fn pipe_at<K: 'static, V: 'static>(
        mut self,
        topic: &Topic<K, V>,
        records: impl IntoIterator<Item = (K, V, i64)>,
    ) -> Result<Self> {
        let (kc, vc) = (topic.key_codec(), topic.value_codec());
        let encode = |part: &str, e: crate::error::EncodeError| {
            Error::Log(format!(
                "cannot encode the {part} of a crash-test record for topic `{}`: {e}",
                topic.name()
            ))
        };
        for (key, value, timestamp) in records {
            let key = kc.encode(&key).map_err(|e| encode("key", e))?;
            let value = vc.encode(&value).map_err(|e| encode("value", e))?;
            self.clock = self.clock.max(timestamp);
            let input = Input { topic: topic.name().to_string(), key, value, timestamp };
            if let Some(epoch) = self.epochs.last_mut() {
                epoch.push(input);
            }
        }
        Ok(self)
    }

    /// Ends the current epoch: the records piped so far are processed and committed before those
    /// piped next.
    pub fn end_epoch(mut self) -> Self {
        self.epochs.push(Vec::new());
        self
    }

    /// Runs the test: a crash-free run, then one run per crash point and epoch (twice with
    /// [`CrashTest::lose_state`]). Fails with [`Error::CrashTest`] naming the crash point, the
    /// epoch and the first output that differs.
    pub fn run(&self) -> Result<CrashReport> {
        let (expected, epochs, _, expected_state) = self.run_once(None, false)?;
        let mut report = CrashReport { epochs, outputs: expected.len(), ..CrashReport::default() };
        if epochs == 0 {
            return Err(Error::CrashTest(format!(
                "app `{}` committed no epoch over the test's input: there is nothing to crash",
                self.topology.app()
            )));
        }
        let losses: &[bool] = if self.lose_state { &[false, true] } else { &[false] };
        for &lose in losses {
            for point in CrashPoint::ALL {
                for epoch in 1..=epochs {
                    let (got, _, fired, state) = self.run_once(Some((point, epoch)), lose)?;
                    let lost = if lose { ", with the state directory lost," } else { "" };
                    if let Some(difference) = expected.first_difference(&got, self.compare) {
                        return Err(Error::CrashTest(format!(
                            "app `{}` crashed {point} of epoch {epoch}{lost} and, restarted, committed different outputs than without the crash: {difference}",
                            self.topology.app()
                        )));
                    }
                    // Where per-key order is defined, so is every store's final content.
                    let state_differs = match self.compare {
                        Compare::InOrder => expected_state.first_difference(&state),
                        Compare::Unordered | Compare::Latest => None,
                    };
                    if let Some(difference) = state_differs {
                        return Err(Error::CrashTest(format!(
                            "app `{}` crashed {point} of epoch {epoch}{lost} and, restarted, ended with different state than without the crash: {difference}",
                            self.topology.app()
                        )));
                    }
                    if fired.contains(&point) {
                        report.crashes += 1;
                        report.with_state_lost += usize::from(lose);
                    } else {
                        report.not_reached += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// One run over all the input, crashing as `plan` says; returns the committed outputs, the
    /// epochs the first app committed, the crash points that struck and the state it left.
    fn run_once(
        &self,
        plan: Option<(CrashPoint, u64)>,
        lose_state: bool,
    ) -> Result<(Outputs, u64, Vec<CrashPoint>, States)> {
        let log = Arc::new(EmbeddedLog::with_changelogs(self.partitions));
        for topic in self.epochs.iter().flatten().map(|i| i.topic.as_str()) {
            log.create_topic(topic, self.partitions);
        }
        let dir = tempfile::Builder::new().prefix("stoat-crash-").tempdir().map_err(|cause| Error::Io {
            what: "cannot create a state directory for a crash test".into(),
            cause,
        })?;
        let config = self.config.clone().state_dir(dir.path());
        // The first app strikes as planned; a restart after a crash in the log's commit crashes
        // again in its restore when that is the point under test.
        let first_plan = match plan {
            Some((CrashPoint::DuringRestore, epoch)) => Some((CrashPoint::AfterLogCommit, epoch)),
            other => other,
        };
        let mut restarts = match plan {
            Some((CrashPoint::DuringRestore, _)) => vec![Some((CrashPoint::DuringRestore, 0)), None],
            _ => vec![None],
        }
        .into_iter();
        let first = Arc::new(CrashSwitch::new(first_plan));
        let mut switch = Arc::clone(&first);
        let mut fired = Vec::new();
        let mut app =
            Some(App::crashing_on(self.topology, config.clone(), Arc::clone(&log), Arc::clone(&switch)));
        for epoch in &self.epochs {
            for input in epoch {
                log.produce(
                    &input.topic,
                    input.key.clone(),
                    input.value.clone(),
                    input.timestamp,
                    Headers::new(),
                );
            }
            loop {
                let outcome = match app.take() {
                    Some(Ok(mut running)) => {
                        let run = running.run_until_idle().map(|_| ());
                        app = Some(Ok(running));
                        run
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(Error::Runtime("the crash test lost its app".into())),
                };
                match outcome {
                    Ok(()) => break,
                    Err(e) if !switch.is_dead() => return Err(e),
                    Err(_) => {
                        // The crash: drop the dead app, maybe its state, and start it again.
                        fired.extend(switch.fired());
                        drop(app.take());
                        if lose_state {
                            std::fs::remove_dir_all(dir.path()).map_err(|cause| Error::Io {
                                what: "cannot remove a crashed app's state directory".into(),
                                cause,
                            })?;
                        }
                        switch = Arc::new(CrashSwitch::new(restarts.next().flatten()));
                        app = Some(App::crashing_on(
                            self.topology,
                            config.clone(),
                            Arc::clone(&log),
                            Arc::clone(&switch),
                        ));
                    }
                }
            }
        }
        let state = match &app {
            Some(Ok(last)) => States::read(last.state_env(), last.program().stores())?,
            _ => return Err(Error::Runtime("the crash test lost its app".into())),
        };
        drop(app);
        let mut topics = self.topology.build()?.sink_topics().to_vec();
        if let ErrorPolicy::DeadLetter(topic) = &self.config.error_policy {
            topics.push(topic.clone());
        }
        Ok((Outputs::read(&log, &topics), first.commits(), fired, state))
    }
}
