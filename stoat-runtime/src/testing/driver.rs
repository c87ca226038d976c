//! The test driver: an [`App`] on an embedded log and a temporary state directory, processing
//! synchronously whenever a test pipes input.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::sync::Arc;

use super::topics::{TestInput, TestOutput};
use crate::app::App;
use crate::codec::{Codec, DefaultCodec};
use crate::config::Config;
use crate::error::Result;
use crate::log::EmbeddedLog;
use crate::state::StateSet;
use crate::stats::RunStats;
use crate::topology::{Topic, Topology};

/// Runs a topology in-process for tests: pipe records into input topics, read output topics.
/// Each pipe processes everything piped so far and commits an epoch before returning.
#[derive(Debug)]
pub struct TestDriver {
    app: RefCell<App>,
    log: Arc<EmbeddedLog>,
    /// Per output topic, the next offset to read in each partition: shared by every handle on the
    /// topic, so a read consumes records for all of them (as in Kafka Streams' driver).
    cursors: RefCell<HashMap<String, Vec<u64>>>,
    /// The topics the topology writes (its sinks and the dead-letter topic).
    outputs: Vec<String>,
    /// The wall clock wall-clock timers follow: it moves only when the test advances it.
    clock: crate::clock::Clock,
}

impl TestDriver {
    /// A driver with 4 lanes and a temporary state directory.
    pub fn new(topology: &Topology) -> Result<TestDriver> {
        TestDriver::with_config(topology, Config::default().lanes(4))
    }

    /// A driver with the given configuration. Its wall clock (the configuration's, if that is a
    /// manual one, else one starting at the system's time) moves only with
    /// [`TestDriver::advance_wall_clock`].
    pub fn with_config(topology: &Topology, config: Config) -> Result<TestDriver> {
        let clock = match &config.clock {
            c if c.is_manual() => c.clone(),
            _ => crate::clock::Clock::manual(crate::record::now_millis()),
        };
        let config = Config { worker_threads: config.worker_threads.min(2), clock: clock.clone(), ..config };
        let dead_letters = match &config.error_policy {
            crate::config::ErrorPolicy::DeadLetter(topic) => Some(topic.clone()),
            _ => None,
        };
        let app = App::embedded(topology, config)?;
        let mut outputs = app.program().sink_topics().to_vec();
        outputs.extend(dead_letters);
        let log = match app.embedded_log() {
            Some(log) => Arc::clone(log),
            None => {
                return Err(crate::error::Error::Runtime("the test driver needs the embedded log".into()))
            }
        };
        Ok(TestDriver { app: RefCell::new(app), log, cursors: RefCell::default(), outputs, clock })
    }

    /// Moves the driver's wall clock on by `by` and runs: wall-clock timers that are due fire
    /// (as Kafka Streams' `TopologyTestDriver::advanceWallClockTime`).
    pub fn advance_wall_clock(&self, by: std::time::Duration) -> Result<RunStats> {
        self.clock.advance(by);
        self.run()
    }

    /// Moves stream time on to `to` (ms since the Unix epoch) without a record, and runs:
    /// windows it closes are emitted, stream-time timers it reaches fire. (Kafka Streams' driver
    /// moves stream time only with records; it lives until the app restarts.)
    pub fn advance_stream_time(&self, to: i64) -> Result<RunStats> {
        self.app.borrow_mut().advance_event_time(to)
    }

    /// The driver's wall clock (ms since the Unix epoch).
    pub fn wall_clock(&self) -> i64 {
        self.clock.now()
    }

    /// Creates a topic with `partitions` partitions (topics used before get one).
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        self.log.create_topic(topic, partitions);
    }

    /// The embedded log underneath.
    pub fn log(&self) -> &Arc<EmbeddedLog> {
        &self.log
    }

    /// Refuses to read a topic the topology does not write (a misspelled name would read as
    /// empty, and a test expecting no output would pass), unless the test made the topic.
    pub(crate) fn check_output(&self, topic: &str) -> Result<()> {
        if self.outputs.iter().any(|t| t == topic) || self.log.partition_count(topic).is_some() {
            return Ok(());
        }
        Err(crate::error::Error::UnknownTopic { topic: topic.to_string(), known: self.outputs.join(", ") })
    }

    pub(crate) fn cursor(&self, topic: &str) -> RefMut<'_, Vec<u64>> {
        RefMut::map(self.cursors.borrow_mut(), |c| c.entry(topic.to_string()).or_default())
    }

    /// A typed input topic with the default codecs.
    pub fn input<K: DefaultCodec + 'static, V: DefaultCodec + 'static>(
        &self,
        topic: &str,
    ) -> TestInput<'_, K, V> {
        self.input_with(topic, K::Codec::default(), V::Codec::default())
    }

    /// The input topic `topic`, with its types and codecs.
    pub fn input_topic<K: 'static, V: 'static>(&self, topic: &Topic<K, V>) -> TestInput<'_, K, V> {
        TestInput::new(self, topic.name(), topic.key_codec(), topic.value_codec())
    }

    /// The output topic `topic`, with its types and codecs.
    pub fn output_topic<K: 'static, V: 'static>(&self, topic: &Topic<K, V>) -> TestOutput<'_, K, V> {
        TestOutput::new(self, topic.name(), topic.key_codec(), topic.value_codec())
    }

    /// A typed input topic with the given codecs.
    pub fn input_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        kc: impl Codec<K>,
        vc: impl Codec<V>,
    ) -> TestInput<'_, K, V> {
        TestInput::new(self, topic, Box::new(kc), Box::new(vc))
    }

    /// A typed output topic with the default codecs.
    pub fn output<K: DefaultCodec + 'static, V: DefaultCodec + 'static>(
        &self,
        topic: &str,
    ) -> TestOutput<'_, K, V> {
        self.output_with(topic, K::Codec::default(), V::Codec::default())
    }

    /// A typed output topic with the given codecs.
    pub fn output_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        kc: impl Codec<K>,
        vc: impl Codec<V>,
    ) -> TestOutput<'_, K, V> {
        TestOutput::new(self, topic, Box::new(kc), Box::new(vc))
    }

    /// Processes all piped input and commits.
    pub fn run(&self) -> Result<RunStats> {
        self.app.borrow_mut().run_until_idle()
    }

    /// What the topology has done so far (records in and out, epochs, skipped records).
    pub fn stats(&self) -> RunStats {
        self.app.borrow().stats()
    }

    /// Reads committed state through a fresh instance of the state struct `S`.
    pub fn read_state<S: StateSet, R>(&self, f: impl FnOnce(&S) -> R) -> Result<R> {
        self.app.borrow().read_state(f)
    }

    /// How many entries the state store `store` holds, as of the last commit.
    pub fn store_entries(&self, store: &str) -> Result<u64> {
        self.app.borrow().store_entries(store)
    }
}
