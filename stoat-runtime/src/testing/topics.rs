//! Typed handles on the driver's topics: [`TestInput`] encodes and pipes records (with controlled
//! timestamps), [`TestOutput`] reads and decodes what the topology committed.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use super::driver::TestDriver;
use crate::codec::Codec;
use crate::error::{Error, RecordLocation, Result};
use crate::record::{Headers, Record};

/// An input topic of a [`TestDriver`].
pub struct TestInput<'d, K, V> {
    driver: &'d TestDriver,
    topic: String,
    kc: Box<dyn Codec<K>>,
    vc: Box<dyn Codec<V>>,
    time: Cell<i64>,
    auto_advance: Cell<Duration>,
}

impl<K, V> std::fmt::Debug for TestInput<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestInput").field("topic", &self.topic).field("time", &self.time.get()).finish()
    }
}

fn encode_err(topic: &str, e: crate::error::EncodeError) -> Error {
    Error::Log(format!("cannot encode a test record for topic `{topic}`: {e}"))
}

impl<'d, K: 'static, V: 'static> TestInput<'d, K, V> {
    pub(crate) fn new(
        driver: &'d TestDriver,
        topic: &str,
        kc: Box<dyn Codec<K>>,
        vc: Box<dyn Codec<V>>,
    ) -> Self {
        TestInput {
            driver,
            topic: topic.to_string(),
            kc,
            vc,
            time: Cell::new(0),
            auto_advance: Cell::new(Duration::ZERO),
        }
    }

    /// Advances the timestamp given to the next piped records.
    pub fn advance_time(&self, by: Duration) {
        self.time.set(self.time.get() + by.as_millis() as i64);
    }

    /// Sets the timestamp given to the next piped records.
    pub fn set_time(&self, millis: i64) {
        self.time.set(millis);
    }

    /// Advances the time by `step` after each piped record.
    pub fn with_auto_advance(self, step: Duration) -> Self {
        self.auto_advance.set(step);
        self
    }

    fn next_time(&self) -> i64 {
        let t = self.time.get();
        self.time.set(t + self.auto_advance.get().as_millis() as i64);
        t
    }

    /// Writes a record without processing it (see [`TestDriver::run`]).
    pub fn enqueue(&self, key: &K, value: &V) -> Result<()> {
        let t = self.next_time();
        self.enqueue_at(key, value, t)
    }

    /// Writes a record with timestamp `ts` without processing it.
    pub fn enqueue_at(&self, key: &K, value: &V, ts: i64) -> Result<()> {
        let k = self.kc.encode(key).map_err(|e| encode_err(&self.topic, e))?;
        let v = self.vc.encode(value).map_err(|e| encode_err(&self.topic, e))?;
        self.driver.log().produce(&self.topic, k, v, ts, Headers::new());
        Ok(())
    }

    /// Pipes one record and processes it.
    pub fn pipe(&self, key: K, value: V) -> Result<()> {
        self.enqueue(&key, &value)?;
        self.driver.run().map(drop)
    }

    /// Pipes one record with timestamp `ts` and processes it.
    pub fn pipe_at(&self, key: K, value: V, ts: i64) -> Result<()> {
        self.enqueue_at(&key, &value, ts)?;
        self.driver.run().map(drop)
    }

    /// Pipes records and processes them together.
    pub fn pipe_all(&self, records: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        for (k, v) in records {
            self.enqueue(&k, &v)?;
        }
        self.driver.run().map(drop)
    }

    /// Pipes raw bytes (for testing undecodable input) and processes them.
    pub fn pipe_raw(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<()> {
        let t = self.next_time();
        self.driver.log().produce(
            &self.topic,
            key.map(<[u8]>::to_vec),
            value.map(<[u8]>::to_vec),
            t,
            Headers::new(),
        );
        self.driver.run().map(drop)
    }
}

impl<K: Default + 'static, V: 'static> TestInput<'_, K, V> {
    /// Pipes one value with the default key (`()` for unkeyed topics) and processes it.
    pub fn pipe_value(&self, value: V) -> Result<()> {
        self.pipe(K::default(), value)
    }

    /// Pipes values with the default key and processes them together.
    pub fn pipe_values(&self, values: impl IntoIterator<Item = V>) -> Result<()> {
        self.pipe_all(values.into_iter().map(|v| (K::default(), v)))
    }
}

/// An output topic of a [`TestDriver`]: reads committed records in order, partition by
/// partition; every read consumes what it returns.
pub struct TestOutput<'d, K, V> {
    driver: &'d TestDriver,
    topic: String,
    kc: Box<dyn Codec<K>>,
    vc: Box<dyn Codec<V>>,
}

impl<K, V> std::fmt::Debug for TestOutput<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestOutput").field("topic", &self.topic).finish()
    }
}

impl<'d, K: 'static, V: 'static> TestOutput<'d, K, V> {
    pub(crate) fn new(
        driver: &'d TestDriver,
        topic: &str,
        kc: Box<dyn Codec<K>>,
        vc: Box<dyn Codec<V>>,
    ) -> Self {
        TestOutput { driver, topic: topic.to_string(), kc, vc }
    }

    /// Every record not read yet, decoded.
    pub fn read_records(&self) -> Result<Vec<Record<K, V>>> {
        self.driver.check_output(&self.topic)?;
        let log = self.driver.log();
        let mut cursor = self.driver.cursor(&self.topic);
        let mut out = Vec::new();
        let partitions = log.partition_count(&self.topic).unwrap_or(0) as usize;
        let len = partitions.max(cursor.len());
        cursor.resize(len, 0);
        for partition in 0..partitions {
            for rec in log.read(&self.topic, partition as u32, cursor[partition]) {
                let location = RecordLocation {
                    topic: self.topic.clone(),
                    partition: partition as u32,
                    offset: rec.offset,
                };
                let key = self.kc.decode(rec.key.as_deref()).map_err(|source| Error::Decode {
                    part: "key",
                    location: location.clone(),
                    cause: source,
                })?;
                let value = self.vc.decode(rec.value.as_deref()).map_err(|source| Error::Decode {
                    part: "value",
                    location,
                    cause: source,
                })?;
                cursor[partition] = rec.offset + 1;
                out.push(Record { key, value, timestamp: rec.timestamp, headers: rec.headers.clone() });
            }
        }
        Ok(out)
    }

    /// Every `(key, value)` not read yet.
    pub fn read_key_values(&self) -> Result<Vec<(K, V)>> {
        Ok(self.read_records()?.into_iter().map(|r| (r.key, r.value)).collect())
    }

    /// Every value not read yet.
    pub fn read_values(&self) -> Result<Vec<V>> {
        Ok(self.read_records()?.into_iter().map(|r| r.value).collect())
    }

    /// Whether every record has been read.
    pub fn is_empty(&self) -> Result<bool> {
        self.driver.check_output(&self.topic)?;
        let cursor = self.driver.cursor(&self.topic).clone();
        let log = self.driver.log();
        let unread = log
            .read_all(&self.topic)
            .iter()
            .filter(|(p, r)| r.offset >= cursor.get(*p as usize).copied().unwrap_or(0))
            .count();
        Ok(unread == 0)
    }
}

impl<K: Eq + Hash + 'static, V: 'static> TestOutput<'_, K, V> {
    /// The latest value per key among the records not read yet (a table view of the topic).
    pub fn read_key_values_to_map(&self) -> Result<HashMap<K, V>> {
        Ok(self.read_key_values()?.into_iter().collect())
    }
}
