//! Sources: decode input records and group them into per-lane-group batches on the dispatcher
//! (each record with its lane). Keyed
//! records go to the lane owning their key; records with a `()` key (no key) are spread over the
//! lanes by partition and offset. A null key or value where the stream's type has none (a
//! `String`, not an `Option<String>`) is dropped and counted, not an error: Kafka topics carry
//! nulls (tombstones, unkeyed records) as a matter of course.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::codec::Codec;
use crate::error::{DecodeError, Panicked};
use crate::lane::{lane_of, GroupBatch};
use crate::log::LogRecord;
use crate::operator::Key;
use crate::record::{Envelope, Origin, Record};

/// A source topic and how to decode it.
pub(crate) trait SourceDecoder: Send + Sync {
    fn topic(&self) -> &str;
    /// Whether the topic is read to its end before other input is (a global table's).
    fn bootstraps(&self) -> bool;
    /// Batches for `lanes` lanes run by `groups` lane groups; with `by_partition`, records
    /// without a key go to the lane of their partition instead of being spread over every lane.
    fn batcher(&self, lanes: usize, groups: usize, by_partition: bool) -> Box<dyn Batcher>;
}

/// Per-lane-group batches ([`GroupBatch`]es) of decoded records of one source.
pub(crate) trait Batcher: Send {
    /// Decodes `rec` into its lane group's batch, with its timestamp (the record's, or what the
    /// source's extractor makes of it) and `origin.stream_time` set to `time(timestamp)` (its
    /// group's event time with it); returns what became of it and that timestamp, or which
    /// part failed to decode. Records dropped at the source do not reach `time`.
    fn add(
        &mut self,
        rec: &LogRecord,
        origin: Origin,
        time: &mut dyn FnMut(i64) -> i64,
    ) -> Result<(Added, i64), (&'static str, DecodeError)>;
    /// Records batched for lane group `group`.
    fn len(&self, group: usize) -> usize;
    /// Takes lane group `group`'s batch.
    fn take(&mut self, group: usize) -> Box<dyn Any + Send>;
}

/// What became of an input record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// Batched for this lane (in its group's batch).
    Lane(usize),
    /// Dropped: its key (`"key"`) or value (`"value"`) is null and the stream's type has none.
    Null(&'static str),
    /// Batched for every lane (a global table's update).
    All,
}

pub(crate) struct TypedSource<K, V> {
    pub topic: String,
    pub key_codec: Arc<dyn Codec<K>>,
    pub value_codec: Arc<dyn Codec<V>>,
    /// Every record goes to every lane (a global table, or a table a foreign-key join reads).
    pub broadcast: Arc<AtomicBool>,
    /// Read to its end at start, before other input (a global table).
    pub bootstrap: bool,
    /// Makes a record's timestamp from its key, value and Kafka timestamp.
    pub timestamps: Option<TimestampFn<K, V>>,
}

/// A timestamp extractor: `(key, value, the record's Kafka timestamp) -> event time`.
pub(crate) type TimestampFn<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

impl<K: Key, V: Clone + Send + 'static> SourceDecoder for TypedSource<K, V> {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn bootstraps(&self) -> bool {
        self.bootstrap
    }
    fn batcher(&self, lanes: usize, groups: usize, by_partition: bool) -> Box<dyn Batcher> {
        Box::new(TypedBatcher::<K, V> {
            by_partition,
            timestamps: self.timestamps.clone(),
            key_codec: Arc::clone(&self.key_codec),
            value_codec: Arc::clone(&self.value_codec),
            spread: std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>(),
            broadcast: self.broadcast.load(Ordering::Relaxed),
            lanes,
            bufs: (0..groups).map(|_| Vec::new()).collect(),
        })
    }
}

fn timestamp_error(reason: String) -> DecodeError {
    DecodeError { codec: "timestamp extractor", reason }
}

struct TypedBatcher<K, V> {
    timestamps: Option<TimestampFn<K, V>>,
    /// Records without a key go to the lane of their partition (`RekeyOrder::InputPartition`).
    by_partition: bool,
    key_codec: Arc<dyn Codec<K>>,
    value_codec: Arc<dyn Codec<V>>,
    spread: bool,
    broadcast: bool,
    lanes: usize,
    /// Per lane group (lane `l` is in group `l % groups`).
    bufs: Vec<GroupBatch<K, V>>,
}

impl<K: Key, V: Clone + Send + 'static> Batcher for TypedBatcher<K, V> {
    fn add(
        &mut self,
        rec: &LogRecord,
        mut origin: Origin,
        time: &mut dyn FnMut(i64) -> i64,
    ) -> Result<(Added, i64), (&'static str, DecodeError)> {
        let key = match self.key_codec.decode(rec.key.as_deref()) {
            Ok(key) => key,
            Err(_) if rec.key.is_none() => return Ok((Added::Null("key"), rec.timestamp)),
            Err(e) => return Err(("key", e)),
        };
        let value = match self.value_codec.decode(rec.value.as_deref()) {
            Ok(value) => value,
            Err(_) if rec.value.is_none() => return Ok((Added::Null("value"), rec.timestamp)),
            Err(e) => return Err(("value", e)),
        };
        let timestamp = match &self.timestamps {
            // The extractor is user code: a panic, or a negative time (as Kafka Streams' default
            // `FailOnInvalidTimestamp`), makes the record undecodable, under the error policy.
            Some(extract) => match Panicked::catch(|| extract(&key, &value, rec.timestamp)) {
                Ok(ts) if ts >= 0 => ts,
                Ok(ts) => {
                    return Err((
                        "timestamp",
                        timestamp_error(format!("the extractor returned {ts}, a negative time")),
                    ))
                }
                Err(panic) => return Err(("timestamp", timestamp_error(panic.to_string()))),
            },
            None => rec.timestamp,
        };
        origin.stream_time = time(timestamp);
        let (lanes, groups) = (self.lanes, self.bufs.len());
        if self.broadcast {
            for lane in 0..lanes {
                let record = Record {
                    key: key.clone(),
                    value: value.clone(),
                    timestamp,
                    headers: rec.headers.clone(),
                };
                self.bufs[lane % groups].push((lane as u32, Envelope { record, origin }));
            }
            return Ok((Added::All, timestamp));
        }
        let lane = if self.spread && self.by_partition {
            lane_of(&(origin.source, origin.partition), lanes)
        } else if self.spread {
            lane_of(&(origin.partition, origin.offset), lanes)
        } else {
            lane_of(&key, lanes)
        };
        let record = Record { key, value, timestamp, headers: rec.headers.clone() };
        self.bufs[lane % groups].push((lane as u32, Envelope { record, origin }));
        Ok((Added::Lane(lane), timestamp))
    }
    fn len(&self, group: usize) -> usize {
        self.bufs[group].len()
    }
    fn take(&mut self, group: usize) -> Box<dyn Any + Send> {
        Box::new(std::mem::take(&mut self.bufs[group]))
    }
}
