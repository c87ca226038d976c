//! The Kafka log: one consumer assigned every partition of the input topics (no consumer-group
//! rebalancing: the app is the only reader), one producer for outputs and changelogs, and one
//! transaction per epoch under exactly-once.

mod admin;
mod auth;
mod config;
mod ends;
mod producer;
mod restore;

pub use config::{Guarantee, KafkaConfig, OffsetReset};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Headers as _;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use self::producer::{transaction_error, Tracker};
use super::{
    BoxFuture, ChangelogEntries, ChangelogInfo, CommitOffset, CommitReceipt, InputEnd, Log, LogRecord,
    OutRecord, Polled, RestoreSink,
};
use crate::error::{Error, Result};
use crate::record::Headers;

/// The changelog topic of `store` in application `app` (Kafka Streams' naming). Store names
/// contain no `-` (the topology refuses them), so no two (app, store) pairs share a topic.
pub fn changelog_topic(app: &str, store: &str) -> String {
    format!("{app}-{store}-changelog")
}

/// The transactional id of application `app`: stable across restarts, so a new instance fences
/// the old one.
pub fn transactional_id(app: &str) -> String {
    format!("stoat-{app}")
}

#[derive(Default)]
struct Assignment {
    index: HashMap<String, u32>,
    partitions: HashSet<(String, i32)>,
    /// Per topic and partition, the offset of the first record read since the last commit:
    /// where an aborted epoch rewinds to (partitions it did not read from stay where they are).
    rewind: HashMap<String, HashMap<i32, i64>>,
    /// Per topic and partition, the offset after the last record read.
    read_to: HashMap<String, HashMap<i32, i64>>,
    /// Sources not read for now.
    paused: HashSet<u32>,
}

/// `None`s in a row from the consumer's `poll(0)` that mean its queue is empty (see `poll`).
const EMPTY_POLLS: u32 = 8;

/// How a committed input offset's metadata carries its partition's time (`t=<ms>`).
const PARTITION_TIME: &str = "t=";

/// A [`Log`] on Apache Kafka.
pub struct KafkaLog {
    app: String,
    config: KafkaConfig,
    consumer: BaseConsumer<ends::Ends>,
    producer: BaseProducer<Tracker>,
    /// Changelog topic per store, and the store's index (the producer's delivery opaque).
    changelogs: Vec<(String, String)>,
    /// What each changelog's configuration says (same order).
    changelog_configs: Vec<admin::ChangelogConfig>,
    assignment: Mutex<Assignment>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("app", &self.app)
            .field("bootstrap", &self.config.bootstrap_servers)
            .field("guarantee", &self.config.guarantee)
            .finish()
    }
}

impl KafkaLog {
    /// Connects for application `app` with stores `stores`: checks the configuration, creates
    /// missing changelog topics, and under exactly-once initialises the transactional producer
    /// (fencing any older instance of the app and aborting its open transaction).
    ///
    /// Errors talking to the cluster name the bootstrap servers, so an unreachable or wrong
    /// address is plain from the message.
    pub async fn connect(app: &str, stores: &[&str], config: KafkaConfig) -> Result<KafkaLog> {
        let servers = config.bootstrap_servers.clone();
        let at = |m: String| format!("{m} (bootstrap servers `{servers}`)");
        KafkaLog::open(app, stores, config).await.map_err(|e| match e {
            Error::Log(m) => Error::Log(at(m)),
            Error::Transient(m) => Error::Transient(at(m)),
            other => other,
        })
    }

    async fn open(app: &str, stores: &[&str], config: KafkaConfig) -> Result<KafkaLog> {
        let exactly_once = config.guarantee == Guarantee::ExactlyOnce;
        // Every client reports a refused login here (see `auth.rs`).
        let auth = Arc::new(auth::AuthWatch::default());
        let mut consumer_cfg = config.client("consumer")?;
        consumer_cfg
            .set("group.id", app)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            .set(
                "auto.offset.reset",
                match config.offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            );
        // librdkafka prefetches up to 64 MiB per consumer by default, most of a 1 KB-record
        // app's memory (measured: peak RSS 139 MB -> 52 MB with 4 MiB, throughput unchanged). With
        // a smaller queue it must resume fetching quickly once the queue drains: its default
        // 1 s back-off cut throughput by 7x (measured).
        if !config.has("queued.max.messages.kbytes") {
            consumer_cfg.set("queued.max.messages.kbytes", "4096");
        }
        if !config.has("fetch.queue.backoff.ms") {
            consumer_cfg.set("fetch.queue.backoff.ms", "10");
        }
        // Partitions' ends for the input order (see `ends.rs`).
        if !config.has("statistics.interval.ms") {
            consumer_cfg.set("statistics.interval.ms", "100");
        }
        let consumer: BaseConsumer<ends::Ends> = consumer_cfg
            .create_with_context(ends::Ends::watched(Arc::clone(&auth)))
            .map_err(|e| config::creation_error("consumer", e))?;
        let mut producer_cfg = config.client("producer")?;
        producer_cfg.set("enable.idempotence", "true");
        // librdkafka buffers up to 1 GiB of unsent records by default; a full, smaller queue
        // makes the lanes wait instead (backpressure from a slow broker). 16 MiB holds more than
        // an epoch of 1 KB records at 100 000 records/s.
        if !config.has("queue.buffering.max.kbytes") {
            producer_cfg.set("queue.buffering.max.kbytes", "16384");
        }
        // Right after a commit, the group coordinator answers the next epoch's offset commit with
        // CONCURRENT_TRANSACTIONS until the markers are written; librdkafka's default 100 ms retry
        // backoff turned that into ~100 ms per epoch (measured). Retry quickly instead.
        if !config.has("retry.backoff.ms") {
            producer_cfg.set("retry.backoff.ms", "5").set("retry.backoff.max.ms", "100");
        }
        // An epoch's last records would wait out librdkafka's default 5 ms linger before its
        // commit could go (the commit waits for every record's acknowledgement); lanes hand the
        // producer whole steps of records at once, so batches still form under load.
        if !config.has("linger.ms") && !config.has("queue.buffering.max.ms") {
            producer_cfg.set("linger.ms", "1");
        }
        // Java clients' partitioner (murmur2 of the key bytes; random for null keys, as the
        // Java client's sticky partitioning spreads them): stoat's outputs land on the partitions
        // Kafka Streams, Flink or ksqlDB would write the same keys to, so they co-partition.
        if !config.has("partitioner") {
            producer_cfg.set("partitioner", "murmur2_random");
        }
        if exactly_once {
            producer_cfg.set("transactional.id", transactional_id(app));
        }
        let producer: BaseProducer<Tracker> = producer_cfg
            .create_with_context(Tracker::watched(Arc::clone(&auth)))
            .map_err(|e| config::creation_error("producer", e))?;
        let changelogs: Vec<(String, String)> =
            stores.iter().map(|s| (s.to_string(), changelog_topic(app, s))).collect();
        let topics: Vec<&str> = changelogs.iter().map(|(_, t)| t.as_str()).collect();
        // A refused login or TLS handshake is reported as such, not as a timeout later.
        let producer = {
            let (auth, timeout) = (Arc::clone(&auth), config.timeout);
            tokio::task::spawn_blocking(move || {
                auth::check_login(&producer, &auth, timeout).map(|()| producer)
            })
            .await
            .unwrap_or_else(|e| Err(Error::Runtime(format!("checking the login panicked: {e}"))))?
        };
        let changelog_configs = admin::ensure_changelogs(&config, &topics, &auth).await?;
        let log = KafkaLog {
            app: app.to_string(),
            config,
            consumer,
            producer,
            changelogs,
            changelog_configs,
            assignment: Mutex::new(Assignment::default()),
        };
        if !exactly_once {
            return Ok(log);
        }
        // Initialising transactions waits for the broker: on a blocking thread, so `connect`
        // works from any tokio runtime (a current-thread one included).
        let app = app.to_string();
        tokio::task::spawn_blocking(move || {
            let timeout = log.config.timeout;
            log.producer.init_transactions(timeout).map_err(|e| {
                // A refused login shows as a timeout here: say which it was.
                log.producer
                    .context()
                    .take_denied()
                    .unwrap_or_else(|| transaction_error(&app, "initialising transactions", e))
            })?;
            log.producer
                .begin_transaction()
                .map_err(|e| transaction_error(&app, "beginning a transaction", e))?;
            Ok(log)
        })
        .await
        .unwrap_or_else(|e| Err(Error::Runtime(format!("initialising transactions panicked: {e}"))))
    }

    fn exactly_once(&self) -> bool {
        self.config.guarantee == Guarantee::ExactlyOnce
    }

    fn store_index(&self, store: &str) -> Option<usize> {
        self.changelogs.iter().position(|(s, _)| s == store)
    }

    /// A refusal to read the app's group's offsets for want of an ACL, or `otherwise`.
    fn group_error(&self, e: &rdkafka::error::KafkaError, otherwise: Error) -> Error {
        let about = format!("`{}` (the app id; READ and DESCRIBE)", self.app);
        let detail = format!("reading the app's committed offsets: {e}");
        e.rdkafka_error_code().and_then(|c| producer::refused(c, &about, detail)).unwrap_or(otherwise)
    }

    fn check_deliveries(&self) -> Result<()> {
        match self.producer.context().take_failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Whether every assigned partition of the sources `keep` accepts has been read to its end.
    fn read_to_end(&self, keep: impl Fn(u32) -> bool) -> Result<bool> {
        let parts: Vec<(String, i32)> = {
            let assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
            let wanted = |t: &String| assignment.index.get(t).is_some_and(|&s| keep(s));
            assignment.partitions.iter().filter(|(t, _)| wanted(t)).cloned().collect()
        };
        let positions =
            self.consumer.position().map_err(|e| Error::Log(format!("cannot read positions: {e}")))?;
        // A partition the consumer has not fetched from yet has no position: use the committed
        // offset, where it starts.
        let mut unknown = TopicPartitionList::new();
        for (topic, p) in &parts {
            if positions.find_partition(topic, *p).and_then(|e| e.offset().to_raw()).is_none_or(|o| o < 0) {
                unknown.add_partition(topic, *p);
            }
        }
        let committed = if unknown.count() > 0 {
            self.consumer.committed_offsets(unknown, Duration::from_secs(5)).map_err(|e| {
                self.group_error(&e, Error::Log(format!("cannot read committed offsets: {e}")))
            })?
        } else {
            TopicPartitionList::new()
        };
        for (topic, p) in parts {
            let (_, high) = self
                .consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(5))
                .map_err(|e| Error::Log(format!("cannot read the end of `{topic}` partition {p}: {e}")))?;
            let offset_of = |l: &TopicPartitionList| {
                l.find_partition(&topic, p).and_then(|e| e.offset().to_raw()).filter(|&o| o >= 0)
            };
            let at = offset_of(&positions).or_else(|| offset_of(&committed)).unwrap_or(-1);
            tracing::debug!(topic, partition = p, at, high, "input position");
            // One short of the high watermark can be the end: a transaction marker last.
            let marker_last =
                || self.consumer.context().of(&topic, p).is_some_and(|e| e.end == high && e.reached(at));
            if high > 0 && at < high && !marker_last() {
                // Said when idle: which partition still has input, and how far the app is.
                tracing::info!(topic, partition = p, at, high, "input remains");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves every input partition the aborted epoch read from back to the first record it read
    /// there (the committed offset), so those records are read again. Seeking needs no round
    /// trip to the group coordinator, which may be the broker that just failed.
    fn rewind(&self) -> Result<()> {
        let mut assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        for (topic, partitions) in &assignment.rewind {
            for (&partition, &offset) in partitions {
                self.consumer.seek(topic, partition, Offset::Offset(offset), self.config.timeout).map_err(
                    |e| {
                        Error::Transient(format!(
                            "cannot rewind `{topic}` partition {partition} to offset {offset}: {e}"
                        ))
                    },
                )?;
            }
        }
        assignment.rewind.clear();
        Ok(())
    }

    /// The epoch committed `offsets`: an abort now rewinds only partitions read beyond them
    /// (records fetched but not yet processed, which the engine holds across the commit).
    fn committed(&self, offsets: &[CommitOffset]) {
        let mut guard = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        let assignment = &mut *guard;
        // Partitions the commit does not name keep their rewind point (the first record read).
        let committed =
            |topic: &str, p: i32| offsets.iter().any(|o| o.topic == topic && o.partition as i32 == p);
        for (topic, partitions) in &mut assignment.rewind {
            partitions.retain(|&p, _| !committed(topic, p));
        }
        for o in offsets {
            let read = assignment.read_to.get(&o.topic).and_then(|p| p.get(&(o.partition as i32)));
            if read.is_some_and(|&read| read > o.next_offset as i64) {
                let partitions = assignment.rewind.entry(o.topic.clone()).or_default();
                partitions.insert(o.partition as i32, o.next_offset as i64);
            }
        }
    }
}

fn to_log_record(msg: &rdkafka::message::BorrowedMessage<'_>) -> LogRecord {
    let mut headers = Headers::new();
    if let Some(h) = msg.headers() {
        for header in h.iter() {
            headers.push((header.key.to_string(), header.value.map(<[u8]>::to_vec).unwrap_or_default()));
        }
    }
    LogRecord {
        offset: msg.offset().max(0) as u64,
        timestamp: msg.timestamp().to_millis().unwrap_or(0),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers,
    }
}

impl Log for KafkaLog {
    fn assign(&self, _group: &str, topics: &[String]) -> Result<()> {
        let mut assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        let mut added = TopicPartitionList::new();
        for (i, topic) in topics.iter().enumerate() {
            assignment.index.insert(topic.clone(), i as u32);
            let fetched = self.consumer.fetch_metadata(Some(topic), Duration::from_secs(10));
            let metadata = match fetched {
                Ok(m) => m,
                // Already reading the topic: look for new partitions next time.
                Err(e) if assignment.partitions.iter().any(|(t, _)| t == topic) => {
                    tracing::warn!(topic, error = %e, "cannot refresh input partitions; retrying later");
                    continue;
                }
                Err(e) => {
                    return Err(Error::Log(format!("cannot read the metadata of topic `{topic}`: {e}")))
                }
            };
            for t in metadata.topics() {
                if let Some(err) = t.error() {
                    return Err(Error::Log(format!("input topic `{topic}`: {:?}", err)));
                }
                for p in t.partitions() {
                    if assignment.partitions.insert((topic.clone(), p.id())) {
                        added
                            .add_partition_offset(topic, p.id(), Offset::Stored)
                            .map_err(|e| Error::Log(e.to_string()))?;
                    }
                }
            }
        }
        if added.count() > 0 {
            tracing::info!(partitions = added.count(), "reading new input partitions");
            self.consumer
                .incremental_assign(&added)
                .map_err(|e| Error::Log(format!("cannot assign input partitions: {e}")))?;
        }
        Ok(())
    }

    fn poll(&self, max: usize, out: &mut Vec<Polled>) -> Result<()> {
        let mut guard = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        let assignment = &mut *guard;
        let (mut taken, mut empty) = (0, 0);
        while taken < max {
            match self.consumer.poll(Duration::ZERO) {
                // rust-rdkafka's `poll(0)` also answers `None` after serving one event that is
                // not a message (a statistics report, every 100 ms): stopping at the first
                // `None` left records queued behind such events, and when reports came faster
                // than polls, forever (a global table's bootstrap never ended). Only a few
                // `None`s in a row mean the queue is empty.
                None if empty < EMPTY_POLLS => empty += 1,
                None => break,
                Some(Ok(msg)) => {
                    let Some(&source) = assignment.index.get(msg.topic()) else { continue };
                    match assignment.rewind.get_mut(msg.topic()) {
                        Some(partitions) => {
                            partitions.entry(msg.partition()).or_insert(msg.offset());
                        }
                        None => {
                            let first = HashMap::from([(msg.partition(), msg.offset())]);
                            assignment.rewind.insert(msg.topic().to_string(), first);
                        }
                    }
                    match assignment.read_to.get_mut(msg.topic()) {
                        Some(partitions) => {
                            partitions.insert(msg.partition(), msg.offset() + 1);
                        }
                        None => {
                            let next = HashMap::from([(msg.partition(), msg.offset() + 1)]);
                            assignment.read_to.insert(msg.topic().to_string(), next);
                        }
                    }
                    out.push(Polled {
                        source,
                        partition: msg.partition().max(0) as u32,
                        record: Arc::new(to_log_record(&msg)),
                    });
                    taken += 1;
                    empty = 0;
                }
                Some(Err(e)) => {
                    if e.rdkafka_error_code().is_some_and(|c| c == rdkafka::types::RDKafkaErrorCode::Fatal) {
                        return Err(Error::Log(format!("the consumer failed: {e}")));
                    }
                    if let Some(code) = e.rdkafka_error_code() {
                        let topics: Vec<String> = assignment.index.keys().map(|t| format!("`{t}`")).collect();
                        let about = format!("{} (READ and DESCRIBE on each input topic)", topics.join(", "));
                        if let Some(denied) =
                            producer::refused(code, &about, format!("reading the input: {e}"))
                        {
                            return Err(denied);
                        }
                    }
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
            }
        }
        producer::serve(&self.producer);
        Ok(())
    }

    fn append(&self, records: Vec<OutRecord>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let timeout = self.config.timeout;
            let deadline = std::time::Instant::now() + timeout;
            for r in &records {
                let mut record = producer::record(
                    &r.topic,
                    None,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    Some(r.timestamp),
                    &r.headers,
                    0,
                );
                // A full queue: wait for the broker to take some, without blocking the thread.
                while let producer::Sent::Full(back) = producer::try_send(&self.producer, record)? {
                    record = back;
                    if !producer::serve(&self.producer) {
                        if std::time::Instant::now() >= deadline {
                            return Err(producer::queue_full(timeout));
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            producer::serve(&self.producer);
            Ok(())
        })
    }

    fn append_changelog(&self, store: &str, entries: &ChangelogEntries) -> Result<()> {
        let index =
            self.store_index(store).ok_or_else(|| Error::Log(format!("no changelog for store `{store}`")))?;
        let topic = &self.changelogs[index].1;
        let no_headers = Headers::new();
        for (key, value) in entries {
            let record =
                producer::record(topic, Some(0), Some(key), value.as_deref(), None, &no_headers, index + 1);
            producer::send_blocking(&self.producer, record, self.config.timeout)?;
        }
        Ok(())
    }

    fn commit(&self, _group: &str, offsets: &[CommitOffset]) -> Result<CommitReceipt> {
        let mut tpl = TopicPartitionList::new();
        for o in offsets {
            let mut elem = tpl.add_partition(&o.topic, o.partition as i32);
            elem.set_offset(Offset::Offset(o.next_offset as i64)).map_err(|e| Error::Log(e.to_string()))?;
            if let Some(time) = o.time {
                elem.set_metadata(format!("{PARTITION_TIME}{time}"));
            }
        }
        let timeout = self.config.timeout;
        let app = &self.app;
        (|| -> Result<()> {
            if self.exactly_once() {
                let started = std::time::Instant::now();
                if tpl.count() > 0 {
                    let meta = self
                        .consumer
                        .group_metadata()
                        .ok_or_else(|| Error::Log("the consumer has no group metadata".into()))?;
                    producer::resume(|| self.producer.send_offsets_to_transaction(&tpl, &meta, timeout)).map_err(
                        |e| match producer::unfinished(&e) {
                            // Still in flight after every attempt: nothing else may be called.
                            true => Error::Log(format!(
                                "adding input offsets to the transaction did not finish within {} attempts of {timeout:?}: {e}",
                                producer::RESUME_ATTEMPTS
                            )),
                            false => transaction_error(app, "adding input offsets to the transaction", e),
                        },
                    )?;
                }
                let offsets_at = started.elapsed();
                // Wait for the acknowledgements here (see `producer::drain`), and look at them
                // before committing: a failed delivery aborts the epoch, never a committed one.
                let drained = producer::drain(&self.producer, timeout);
                self.check_deliveries()?;
                if !drained {
                    return Err(Error::Transient(format!(
                        "the epoch's records were not acknowledged within {timeout:?}"
                    )));
                }
                let drained_at = started.elapsed();
                // A commit that timed out may still complete: it is resumed, never abandoned for
                // an abort (which would conflict, and could make a committed epoch run twice).
                producer::resume(|| self.producer.commit_transaction(timeout)).map_err(|e| {
                    match producer::unfinished(&e) {
                        true => Error::Log(format!(
                            "committing the transaction did not finish within {} attempts of {timeout:?}, so its outcome is unknown: stopping (a restart resolves it exactly-once): {e}",
                            producer::RESUME_ATTEMPTS
                        )),
                        false => transaction_error(app, "committing the transaction", e),
                    }
                })?;
                let committed_at = started.elapsed();
                self.producer
                    .begin_transaction()
                    .map_err(|e| transaction_error(app, "beginning a transaction", e))?;
                tracing::debug!(?offsets_at, ?drained_at, ?committed_at, total = ?started.elapsed(), "transaction committed");
            } else {
                let flushed = producer::flush(&self.producer, timeout);
                self.check_deliveries()?;
                flushed?;
                if tpl.count() > 0 {
                    self.consumer
                        .commit(&tpl, CommitMode::Sync)
                        .map_err(|e| Error::Transient(format!("committing input offsets failed: {e}")))?;
                }
            }
            Ok(())
        })()?;
        self.committed(offsets);
        let changelogs = self
            .producer
            .context()
            .take_changelog_offsets()
            .into_iter()
            .filter_map(|(i, next)| self.changelogs.get(i).map(|(store, _)| (store.clone(), next)))
            .collect();
        Ok(CommitReceipt { changelogs })
    }

    fn abort(&self) -> Result<()> {
        if self.exactly_once() {
            let timeout = self.config.timeout;
            // librdkafka aborts only once every record sent has a delivery report served (it
            // answers "the event queue must be polled for delivery reports" otherwise, however
            // often it is asked): serve them first.
            producer::drain(&self.producer, timeout);
            producer::resume(|| self.producer.abort_transaction(timeout))
                .map_err(|e| transaction_error(&self.app, "aborting the transaction", e))?;
            // Reports of the aborted records are of no interest now.
            self.check_deliveries().ok();
            self.producer.context().take_changelog_offsets();
            self.producer
                .begin_transaction()
                .map_err(|e| transaction_error(&self.app, "beginning a transaction", e))?;
        }
        self.rewind()
    }

    fn keeps_changelogs(&self) -> bool {
        true
    }
    fn changelog_info(&self, store: &str) -> Result<Option<ChangelogInfo>> {
        let Some(index) = self.store_index(store) else { return Ok(None) };
        let topic = &self.changelogs[index].1;
        let (_, high) = self
            .consumer
            .fetch_watermarks(topic, 0, self.config.timeout)
            .map_err(|e| Error::Transient(format!("cannot read the end of changelog `{topic}`: {e}")))?;
        Ok(Some(ChangelogInfo {
            topic: topic.clone(),
            end: high.max(0) as u64,
            delete_retention: self.changelog_configs.get(index).and_then(|c| c.delete_retention),
        }))
    }

    fn restore(&self, store: &str, from: u64, apply: &mut RestoreSink<'_>) -> Result<()> {
        let Some(index) = self.store_index(store) else { return Ok(()) };
        restore::replay(&self.config, &self.changelogs[index].1, from, apply)
    }

    fn caught_up(&self) -> Result<bool> {
        self.read_to_end(|_| true)
    }

    fn committed_times(&self, _group: &str, topics: &[String]) -> Result<Vec<(u32, u32, i64)>> {
        let parts: Vec<(String, i32)> = {
            let assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
            assignment.partitions.iter().cloned().collect()
        };
        let mut list = TopicPartitionList::new();
        for (topic, p) in &parts {
            list.add_partition(topic, *p);
        }
        let committed = self.consumer.committed_offsets(list, self.config.timeout).map_err(|e| {
            self.group_error(&e, Error::Transient(format!("cannot read the committed input offsets: {e}")))
        })?;
        let mut times = Vec::new();
        for elem in committed.elements() {
            let Some(source) = topics.iter().position(|t| t == elem.topic()) else { continue };
            if let Some(time) = elem.metadata().strip_prefix(PARTITION_TIME).and_then(|t| t.parse().ok()) {
                times.push((source as u32, elem.partition().max(0) as u32, time));
            }
        }
        Ok(times)
    }

    fn sources_caught_up(&self, sources: &[u32]) -> Result<bool> {
        self.read_to_end(|source| sources.contains(&source))
    }

    fn lagging(&self, out: &mut Vec<(u32, u32)>) -> Result<()> {
        out.clear();
        let assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        let ends = self.consumer.context();
        for (topic, p) in &assignment.partitions {
            let Some(&source) = assignment.index.get(topic) else { continue };
            if assignment.paused.contains(&source) {
                continue;
            }
            let Some(end) = ends.of(topic, *p) else { continue };
            // Where the app is: past the last record it was handed, else where it started.
            let read = assignment.read_to.get(topic).and_then(|r| r.get(p)).copied();
            let at =
                read.or((end.app >= 0).then_some(end.app)).or((end.committed >= 0).then_some(end.committed));
            // More than one offset short: a partition read to its end may still be one short,
            // the marker that committed its last transaction.
            if at.is_some_and(|at| end.end > at + 1) {
                out.push((source, (*p).max(0) as u32));
            }
        }
        out.sort_unstable();
        Ok(())
    }

    fn input_ends(&self) -> Result<Vec<InputEnd>> {
        let assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        let ends = self.consumer.context();
        let mut out: Vec<InputEnd> = assignment
            .partitions
            .iter()
            .filter_map(|(topic, p)| {
                ends.of(topic, *p).map(|end| InputEnd {
                    topic: topic.clone(),
                    partition: (*p).max(0) as u32,
                    end: end.end.max(0) as u64,
                    committed: (end.committed >= 0).then_some(end.committed as u64),
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn pause(&self, sources: &[u32], paused: bool) -> Result<()> {
        let mut assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        for &source in sources {
            if paused {
                assignment.paused.insert(source);
            } else {
                assignment.paused.remove(&source);
            }
        }
        let mut list = TopicPartitionList::new();
        for (topic, p) in &assignment.partitions {
            if assignment.index.get(topic).is_some_and(|s| sources.contains(s)) {
                list.add_partition(topic, *p);
            }
        }
        let done = if paused { self.consumer.pause(&list) } else { self.consumer.resume(&list) };
        done.map_err(|e| {
            Error::Log(format!("cannot {} input partitions: {e}", if paused { "pause" } else { "resume" }))
        })
    }

    fn wait_for_data(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            producer::serve(&self.producer);
            tokio::time::sleep(Duration::from_millis(2)).await;
        })
    }
}
