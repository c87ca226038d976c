//! The word count topology, shared by the example's `main` and the integration tests.

use std::io::BufRead;

use stoat::prelude::*;

/// The input topic: one line of text per record.
pub const LINES: Topic<(), String> = Topic::new("lines");
/// The output topic: the running count of each word, as decimal text (the `Text` codec; a `u64`'s
/// default is Kafka's 8-byte `Serdes.Long()`), so a console consumer shows it.
pub const COUNTS: Topic<String, u64> =
    Topic::with_codecs("word-counts", || Box::new(Utf8), || Box::new(Text::<u64>::new()));

/// Splits a line into lowercase words, each re-keyed by the word itself, so that every
/// occurrence of a word lands on the lane that owns it.
#[stoat::operator]
pub fn split(line: String) -> Vec<KeyValue<String, u64>> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| KeyValue::new(w.to_lowercase(), 1))
        .collect()
}

/// The count of every word seen so far.
#[stoat::state]
pub struct Counts {
    pub per_word: Table<String, u64>,
}

/// Adds `n` to the word's count and emits the new total.
#[stoat::operator]
pub fn count(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> {
    let total = counts.per_word.get(word)?.unwrap_or(0) + n;
    counts.per_word.put(word.to_owned(), total)?;
    Ok(total)
}

/// lines -> split (re-key by word) -> count -> word-counts
pub fn topology() -> Topology {
    topology_for("word-count", LINES.name(), COUNTS.name())
}

/// The same topology for application `app`, from `input` to `output`. Counts are written as
/// decimal text (the `Text` codec; a `u64`'s default is Kafka's 8-byte `Serdes.Long()`), so a
/// console consumer shows them.
pub fn topology_for(app: &str, input: &str, output: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream::<(), String>(input).process(split {}).process(count {}).to_with(
        output,
        Utf8,
        Text::<u64>::new(),
    );
    topology
}

/// Runs word count on Kafka until SIGTERM/SIGINT (or, with `idle`, until nothing new has been
/// read for that long), committing the open epoch before it returns.
#[cfg(feature = "kafka")]
pub fn run_on_kafka(
    topology: &Topology,
    config: Config,
    kafka: KafkaConfig,
    idle: Option<std::time::Duration>,
) -> stoat::Result<stoat::RunStats> {
    let mut app = App::kafka(topology, config, kafka)?;
    let shutdown = app.shutdown_on_signals()?;
    if let Some(idle) = idle {
        app.stop_when_idle(&shutdown, idle);
    }
    app.run_until_stopped(&shutdown)
}

/// Lines fed to the log per round; bounds how much input waits in memory at once.
const CHUNK: usize = 50_000;

/// Counts the words of `input` on the embedded log; returns every word's count, in byte order
/// of the words (including counts kept in the state directory by earlier runs).
pub fn run(input: impl BufRead, config: Config) -> stoat::Result<Vec<(String, u64)>> {
    let mut app = App::embedded(&topology(), config)?;
    let log = match app.embedded_log() {
        Some(log) => log.clone(),
        None => return Err(stoat::Error::Runtime("word count runs on the embedded log".into())),
    };
    let mut pending = 0;
    for line in input.split(b'\n') {
        let mut line =
            line.map_err(|source| stoat::Error::Io { what: "cannot read the input".into(), cause: source })?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        log.produce(LINES.name(), None, Some(line), now_millis(), Vec::new());
        pending += 1;
        if pending == CHUNK {
            app.run_until_idle()?;
            pending = 0;
        }
    }
    let stats = app.run_until_idle()?;
    tracing::info!(?stats, "word count finished");
    Ok(app.read_state(|counts: &Counts| counts.per_word.iter())??)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
