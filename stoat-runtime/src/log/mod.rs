//! The log side of the runtime: where records come from and go to, and where an epoch commits
//! its outputs together with its input offsets. [`Log`] is the interface the commit coordinator
//! drives; [`EmbeddedLog`] is the in-process implementation (no broker), and the Kafka one plugs in
//! behind the same interface.

mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod partitioner;

pub use embedded::{EmbeddedLog, EmbeddedSession};
#[cfg(feature = "kafka")]
pub use kafka::{Guarantee, KafkaConfig, KafkaLog, OffsetReset};

use std::sync::Arc;

use crate::error::Result;
use crate::record::Headers;

/// A record stored in a topic partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its offset in the partition.
    pub offset: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key bytes (`None`: a null key).
    pub key: Option<Vec<u8>>,
    /// The value bytes (`None`: a null value, a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Headers,
}

/// A record an epoch writes to a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The key bytes.
    pub key: Option<Vec<u8>>,
    /// The value bytes.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
}

/// The input position an epoch commits: the next offset to read from `partition` of `topic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The next offset to read.
    pub next_offset: u64,
    /// The partition's time: the largest timestamp of its records processed so far (stored with
    /// the offset, so stream time resumes where it was after a restart).
    pub time: Option<i64>,
}

/// A record read from an input topic: which of the assigned topics (by index), its partition and
/// the record.
#[derive(Clone, Debug)]
pub struct Polled {
    /// Index of the topic in the list given to [`Log::assign`].
    pub source: u32,
    /// The partition.
    pub partition: u32,
    /// The record.
    pub record: Arc<LogRecord>,
}

/// Where an input partition ends, for [`Log::input_ends`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputEnd {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The offset after its last readable record.
    pub end: u64,
    /// The offset the app's group committed, if known.
    pub committed: Option<u64>,
}

/// A boxed future, as [`Log`]'s async methods return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One store's changes in an epoch: `(key, Some(value))` puts and `(key, None)` deletes.
pub type ChangelogEntries = [(Vec<u8>, Option<Vec<u8>>)];

/// Receives replayed changelog changes: a batch and the changelog offset after it.
pub type RestoreSink<'a> = dyn FnMut(Vec<(Vec<u8>, Option<Vec<u8>>)>, u64) -> Result<()> + 'a;

/// A store's changelog as the log sees it before the app starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangelogInfo {
    /// The changelog topic.
    pub topic: String,
    /// The offset after its last record.
    pub end: u64,
    /// How long it keeps tombstones (`delete.retention.ms`), when known: state last committed
    /// longer ago than that may have missed deletes a replay of the tail cannot bring back.
    pub delete_retention: Option<std::time::Duration>,
}

/// What a commit reports back: for every store with a changelog, the changelog offset after the
/// epoch's last change (what the state will reflect once the epoch is in LMDB).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// `(store, next changelog offset)`.
    pub changelogs: Vec<(String, u64)>,
}

/// A log the runtime reads from and writes to in epochs. Reads see committed data only; writes
/// belong to the open epoch until [`Log::commit`] makes them visible together with the input
/// offsets, atomically, or [`Log::abort`] discards them.
pub trait Log: Send + Sync + 'static {
    /// Starts (or keeps) reading every partition of `topics` for `group`, each from the offset
    /// the group committed (or the reset policy when there is none). Called again, it picks up
    /// partitions added since.
    fn assign(&self, group: &str, topics: &[String]) -> Result<()>;
    /// Appends up to `max` records from the assigned partitions to `out`; may return none.
    fn poll(&self, max: usize, out: &mut Vec<Polled>) -> Result<()>;
    /// Adds output records to the open epoch. While the log's buffers are full it waits
    /// without blocking the thread (lanes call it from tokio tasks), for a bounded time.
    fn append(&self, records: Vec<OutRecord>) -> BoxFuture<'_, Result<()>>;
    /// Adds a store's changes to the open epoch's changelog (a no-op for logs without
    /// changelogs). This and the other methods without a future may block for a bounded time:
    /// the engine calls them off its async threads.
    fn append_changelog(&self, _store: &str, _entries: &ChangelogEntries) -> Result<()> {
        Ok(())
    }
    /// Commits the open epoch: its records and `offsets` for `group`, atomically; opens the next.
    fn commit(&self, group: &str, offsets: &[CommitOffset]) -> Result<CommitReceipt>;
    /// Discards the open epoch's records and rewinds reading to the committed offsets, so the
    /// next epoch reads again what the aborted one had read.
    fn abort(&self) -> Result<()>;
    /// What the log knows of `store`'s changelog, to check the state against before restoring
    /// (`None` for logs without changelogs). May block.
    fn changelog_info(&self, _store: &str) -> Result<Option<ChangelogInfo>> {
        Ok(None)
    }
    /// Whether the log keeps the stores' changelogs, so that state it has committed can be
    /// restored from it (then LMDB need not flush every commit to disk).
    fn keeps_changelogs(&self) -> bool {
        false
    }
    /// Replays a store's changelog from offset `from` to its end, calling `apply` with batches
    /// of changes and the offset after each batch. Logs without changelogs apply nothing.
    fn restore(&self, _store: &str, _from: u64, _apply: &mut RestoreSink<'_>) -> Result<()> {
        Ok(())
    }
    /// Whether every assigned input partition has been read to its end (used to stop when
    /// idle). Logs that cannot tell say yes.
    fn caught_up(&self) -> Result<bool> {
        Ok(true)
    }
    /// The partition times `group` committed with its offsets ([`CommitOffset::time`]), as
    /// (index of the topic in `topics`, partition, time). Logs that keep none return none.
    fn committed_times(&self, _group: &str, _topics: &[String]) -> Result<Vec<(u32, u32, i64)>> {
        Ok(Vec::new())
    }
    /// Stops (`paused`) or resumes reading the partitions of the given sources (by index in
    /// the list given to [`Log::assign`]): a global table's bootstrap holds the other input
    /// back. Logs that cannot pause read everything at once.
    fn pause(&self, _sources: &[u32], _paused: bool) -> Result<()> {
        Ok(())
    }
    /// Puts in `out`, sorted, the (source, partition)s being read (not paused) that have
    /// records [`Log::poll`] has not returned yet, as far as the log knows without asking the
    /// broker. Logs that cannot tell put none (input then never waits for a partition).
    fn lagging(&self, out: &mut Vec<(u32, u32)>) -> Result<()> {
        out.clear();
        Ok(())
    }
    /// Where each input partition being read ends, and the offset the app's group committed
    /// there, as far as the log knows without asking the broker (for lag). Logs that cannot tell
    /// return none.
    fn input_ends(&self) -> Result<Vec<InputEnd>> {
        Ok(Vec::new())
    }
    /// Whether every partition of the given sources has been read to its end. Logs that cannot
    /// tell say yes.
    fn sources_caught_up(&self, _sources: &[u32]) -> Result<bool> {
        Ok(true)
    }
    /// Resolves when new data may be available (or after a short time).
    fn wait_for_data(&self) -> BoxFuture<'_, ()>;
}
