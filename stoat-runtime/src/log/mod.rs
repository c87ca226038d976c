//! The log side of the runtime: where records come from and go to, and where an epoch commits
//! its outputs together with its input offsets. [`Log`] is the interface the commit coordinator
//! drives; [`EmbeddedLog`] is the in-process implementation (no broker), and the Kafka one plugs in
//! behind the same interface.

mod embedded;

pub use embedded::EmbeddedLog;

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
}

/// A log the runtime reads from and writes to in epochs. Reads see committed data only; writes
/// belong to the open epoch until [`Log::commit`] makes them visible together with the input
/// offsets, atomically, or [`Log::abort`] discards them.
pub trait Log: Send + Sync + 'static {
    /// The number of partitions of `topic`.
    fn partitions(&self, topic: &str) -> Result<u32>;
    /// The offset `group` committed for a partition, if any.
    fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>>;
    /// Appends up to `max` committed records of a partition, starting at offset `from`, to `out`.
    fn fetch(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
        out: &mut Vec<Arc<LogRecord>>,
    ) -> Result<()>;
    /// Adds records to the open epoch.
    fn append(&self, records: Vec<OutRecord>) -> Result<()>;
    /// Commits the open epoch: its records and `offsets` for `group`, atomically.
    fn commit(&self, group: &str, offsets: &[CommitOffset]) -> Result<()>;
    /// Discards the open epoch's records.
    fn abort(&self) -> Result<()>;
    /// Resolves when new data may be available (or after a short time).
    fn wait_for_data(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}
