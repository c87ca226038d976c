//! The embedded log: topics with partitions, offsets and timestamps, in memory, with one
//! transaction per epoch (records appended during an epoch become visible, with the input
//! offsets, only when the epoch commits). Topologies run and are tested on it with no broker.
//!
//! Like a Kafka cluster, one log serves many applications: each connects with its app id
//! ([`EmbeddedLog::connect`]) and gets its own read positions and open epoch. A new connection
//! of the same app id fences the older one, as a new transactional producer does on Kafka: the
//! old one's open epoch is discarded and everything it tries afterwards fails.
//!
//! A log made with [`EmbeddedLog::with_changelogs`] also keeps each store's changelog, committed
//! in the epoch's transaction as on Kafka, so state survives the loss of the state directory and
//! a crash between the log's commit and LMDB's (the crash test restarts apps on it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::{
    BoxFuture, ChangelogEntries, ChangelogInfo, CommitOffset, CommitReceipt, InputEnd, Log, LogRecord,
    OutRecord, Polled, RestoreSink,
};
use crate::error::{Error, Result};
use crate::record::Headers;

/// An in-process log. Topics are created with [`EmbeddedLog::create_topic`], or on first use
/// with the default partition count.
#[derive(Debug)]
pub struct EmbeddedLog {
    state: Mutex<State>,
    default_partitions: u32,
    round_robin: AtomicU64,
    appended: Notify,
    /// Whether stores' changes are kept in changelog topics.
    changelogs: bool,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<String, Vec<Vec<Arc<LogRecord>>>>,
    groups: HashMap<(String, String, u32), u64>,
    /// Partition times committed with the offsets: (group, topic, partition) -> time.
    times: HashMap<(String, String, u32), i64>,
    apps: HashMap<String, AppState>,
}

/// One application's connection: its generation (a newer connection fences older ones), its
/// open epoch's records and its read positions.
#[derive(Debug, Default)]
struct AppState {
    generation: u64,
    pending: Vec<OutRecord>,
    /// The reader's assignment: (source index, topic, partition, next offset).
    reading: Vec<(u32, String, u32, u64)>,
    /// Where the next poll starts in `reading`, so partitions take turns.
    turn: usize,
    /// Sources not read for now.
    paused: Vec<u32>,
    /// The open epoch's changelog records: (store, key, value).
    pending_changes: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
}

impl Default for EmbeddedLog {
    fn default() -> Self {
        EmbeddedLog::new(1)
    }
}

impl EmbeddedLog {
    /// An empty log whose topics get `default_partitions` partitions when first used.
    pub fn new(default_partitions: u32) -> Self {
        EmbeddedLog {
            state: Mutex::default(),
            default_partitions: default_partitions.max(1),
            round_robin: AtomicU64::new(0),
            appended: Notify::new(),
            changelogs: false,
        }
    }

    /// An empty log that also keeps a changelog per store (topic `<app>-<store>-changelog`, one
    /// partition), written in each epoch's transaction, as the Kafka log does: an app restarted
    /// on it restores state its state directory lacks.
    pub fn with_changelogs(default_partitions: u32) -> Self {
        EmbeddedLog { changelogs: true, ..EmbeddedLog::new(default_partitions) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates `topic` with `partitions` partitions; an existing topic keeps its data and grows to
    /// `partitions` if it had fewer.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let mut state = self.lock();
        let parts = state.topics.entry(topic.to_string()).or_default();
        while parts.len() < partitions.max(1) as usize {
            parts.push(Vec::new());
        }
    }

    fn ensure<'s>(&self, state: &'s mut State, topic: &str) -> &'s mut Vec<Vec<Arc<LogRecord>>> {
        let n = self.default_partitions as usize;
        state.topics.entry(topic.to_string()).or_insert_with(|| vec![Vec::new(); n])
    }

    /// Writes a record to `topic` outside any epoch, as an external producer would; the
    /// partition comes from the key (or round robin for a null key). Returns (partition, offset).
    pub fn produce(
        &self,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
    ) -> (u32, u64) {
        let mut state = self.lock();
        let parts = self.ensure(&mut state, topic);
        let partition = self.partition_for(key.as_deref(), parts.len());
        let at = self.push(parts, partition, key, value, timestamp, headers);
        drop(state);
        self.appended.notify_waiters();
        (partition as u32, at)
    }

    /// Writes a record to `topic` outside any epoch, as an external producer would, encoded with
    /// the topic's codecs and timestamped now; the partition comes from the key, as Kafka's Java
    /// clients pick it. Returns (partition, offset).
    pub fn send<K: 'static, V: 'static>(
        &self,
        topic: &crate::topology::Topic<K, V>,
        key: &K,
        value: &V,
    ) -> Result<(u32, u64)> {
        let encode_error = |part: &str, e: crate::error::EncodeError| {
            Error::Log(format!("cannot encode the {part} of a record for topic `{}`: {e}", topic.name()))
        };
        let key = topic.key_codec().encode(key).map_err(|e| encode_error("key", e))?;
        let value = topic.value_codec().encode(value).map_err(|e| encode_error("value", e))?;
        let now = crate::record::now_millis();
        Ok(self.produce(topic.name(), key, value, now, Headers::new()))
    }

    /// Writes a record to a given partition of `topic` outside any epoch. Returns its offset.
    pub fn produce_to(
        &self,
        topic: &str,
        partition: u32,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<u64> {
        let mut state = self.lock();
        let parts = self.ensure(&mut state, topic);
        if partition as usize >= parts.len() {
            return Err(Error::Log(format!(
                "topic `{topic}` has {} partitions; there is no partition {partition}",
                parts.len()
            )));
        }
        let at = self.push(parts, partition as usize, key, value, timestamp, Headers::new());
        drop(state);
        self.appended.notify_waiters();
        Ok(at)
    }

    fn push(
        &self,
        parts: &mut [Vec<Arc<LogRecord>>],
        partition: usize,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
    ) -> u64 {
        let part = &mut parts[partition];
        let offset = part.len() as u64;
        part.push(Arc::new(LogRecord { offset, timestamp, key, value, headers }));
        offset
    }

    fn partition_for(&self, key: Option<&[u8]>, partitions: usize) -> usize {
        match key {
            // As Kafka's Java clients (and the Kafka log) partition keyed records.
            Some(bytes) => super::partitioner::partition_for_key(bytes, partitions as u32) as usize,
            None => (self.round_robin.fetch_add(1, Ordering::Relaxed) % partitions as u64) as usize,
        }
    }

    /// The committed records of one partition from offset `from` on.
    pub fn read(&self, topic: &str, partition: u32, from: u64) -> Vec<Arc<LogRecord>> {
        let state = self.lock();
        state
            .topics
            .get(topic)
            .and_then(|parts| parts.get(partition as usize))
            .map(|part| part.iter().skip(from as usize).cloned().collect())
            .unwrap_or_default()
    }

    /// Every committed record of `topic`, partition by partition.
    pub fn read_all(&self, topic: &str) -> Vec<(u32, Arc<LogRecord>)> {
        let state = self.lock();
        let Some(parts) = state.topics.get(topic) else { return Vec::new() };
        let mut out = Vec::new();
        for (p, part) in parts.iter().enumerate() {
            out.extend(part.iter().map(|r| (p as u32, r.clone())));
        }
        out
    }

    /// The number of partitions of `topic`, if it exists.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.lock().topics.get(topic).map(|p| p.len() as u32)
    }

    /// The names of the topics.
    pub fn topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().topics.keys().cloned().collect();
        names.sort();
        names
    }
}

impl EmbeddedLog {
    /// Connects application `app`: a fresh open epoch, reading from the offsets `app` committed.
    /// An earlier connection of the same app is fenced: its open epoch is discarded and its
    /// calls fail from now on with [`Error::Fenced`].
    pub fn connect(self: &Arc<Self>, app: &str) -> EmbeddedSession {
        let mut state = self.lock();
        let session = state.apps.entry(app.to_string()).or_default();
        let generation = session.generation + 1;
        *session = AppState { generation, ..AppState::default() };
        EmbeddedSession { log: Arc::clone(self), app: app.to_string(), generation }
    }
}

/// One application's connection to an [`EmbeddedLog`]: the [`Log`] an app runs on.
#[derive(Debug)]
pub struct EmbeddedSession {
    log: Arc<EmbeddedLog>,
    app: String,
    generation: u64,
}

impl EmbeddedSession {
    /// The log it is connected to.
    pub fn log(&self) -> &Arc<EmbeddedLog> {
        &self.log
    }

    /// Runs `f` on the log's state and this app's connection, unless a newer one fenced it.
    fn with<R>(&self, f: impl FnOnce(&EmbeddedLog, &mut State, &mut AppState) -> R) -> Result<R> {
        let mut guard = self.log.lock();
        let state = &mut *guard;
        let mut app = match state.apps.remove(&self.app) {
            Some(app) if app.generation == self.generation => app,
            other => {
                if let Some(app) = other {
                    state.apps.insert(self.app.clone(), app);
                }
                return Err(Error::Fenced { app: self.app.clone() });
            }
        };
        let out = f(&self.log, state, &mut app);
        state.apps.insert(self.app.clone(), app);
        Ok(out)
    }
}

/// Changelog records a restore applies per LMDB transaction.
const RESTORE_BATCH: usize = 128;

/// A store's changelog topic, named as on Kafka.
fn changelog_topic(app: &str, store: &str) -> String {
    format!("{app}-{store}-changelog")
}

/// A store's changelog (one partition), created on first use.
fn changelog_mut<'s>(state: &'s mut State, app: &str, store: &str) -> &'s mut Vec<Vec<Arc<LogRecord>>> {
    state.topics.entry(changelog_topic(app, store)).or_insert_with(|| vec![Vec::new()])
}

impl Log for EmbeddedSession {
    fn assign(&self, group: &str, topics: &[String]) -> Result<()> {
        self.with(|log, state, app| {
            for (source, topic) in topics.iter().enumerate() {
                let partitions = log.ensure(state, topic).len() as u32;
                for partition in 0..partitions {
                    if !app.reading.iter().any(|r| r.1 == *topic && r.2 == partition) {
                        let key = (group.to_string(), topic.clone(), partition);
                        let start = state.groups.get(&key).copied().unwrap_or(0);
                        app.reading.push((source as u32, topic.clone(), partition, start));
                    }
                }
            }
        })
    }

    fn poll(&self, max: usize, out: &mut Vec<Polled>) -> Result<()> {
        self.with(|_, state, app| {
            // Every partition gets a fair share of the batch first (as a Kafka fetch returns
            // data of several partitions), then what is left goes to those with more.
            let n = app.reading.len();
            let share = (max / n.max(1)).max(1);
            let mut taken = 0;
            for cap in [share, usize::MAX] {
                for i in 0..n {
                    if taken >= max {
                        break;
                    }
                    let idx = (app.turn + i) % n;
                    let (source, topic, partition, next) = &mut app.reading[idx];
                    if app.paused.contains(source) {
                        continue;
                    }
                    let Some(part) =
                        state.topics.get(topic.as_str()).and_then(|p| p.get(*partition as usize))
                    else {
                        continue;
                    };
                    let start = (*next as usize).min(part.len());
                    let end = start.saturating_add((max - taken).min(cap)).min(part.len());
                    for record in &part[start..end] {
                        out.push(Polled {
                            source: *source,
                            partition: *partition,
                            record: Arc::clone(record),
                        });
                    }
                    taken += end - start;
                    *next = end as u64;
                }
            }
            app.turn = app.turn.wrapping_add(1);
        })
    }

    fn append(&self, mut records: Vec<OutRecord>) -> BoxFuture<'_, Result<()>> {
        let appended = self.with(|_, _, app| app.pending.append(&mut records));
        Box::pin(std::future::ready(appended))
    }

    fn commit(&self, group: &str, offsets: &[CommitOffset]) -> Result<CommitReceipt> {
        let receipt = self.with(|log, state, app| {
            for rec in std::mem::take(&mut app.pending) {
                // Look the topic up by reference: `ensure` allocates its name, once per topic.
                let parts = match state.topics.get_mut(&*rec.topic) {
                    Some(parts) => parts,
                    None => log.ensure(state, &rec.topic),
                };
                let partition = log.partition_for(rec.key.as_deref(), parts.len());
                log.push(parts, partition, rec.key, rec.value, rec.timestamp, rec.headers);
            }
            for o in offsets {
                state.groups.insert((group.to_string(), o.topic.clone(), o.partition), o.next_offset);
                if let Some(time) = o.time {
                    state.times.insert((group.to_string(), o.topic.clone(), o.partition), time);
                }
            }
            let mut receipt = CommitReceipt::default();
            for (store, key, value) in std::mem::take(&mut app.pending_changes) {
                let part = changelog_mut(state, &self.app, &store);
                log.push(part, 0, Some(key), value, crate::record::now_millis(), Headers::new());
                let next = part[0].len() as u64;
                match receipt.changelogs.iter_mut().find(|(s, _)| *s == store) {
                    Some(entry) => entry.1 = next,
                    None => receipt.changelogs.push((store, next)),
                }
            }
            receipt
        })?;
        self.log.appended.notify_waiters();
        Ok(receipt)
    }

    fn append_changelog(&self, store: &str, entries: &ChangelogEntries) -> Result<()> {
        if !self.log.changelogs {
            return Ok(());
        }
        self.with(|_, _, app| {
            let changes = entries.iter().map(|(k, v)| (store.to_string(), k.clone(), v.clone()));
            app.pending_changes.extend(changes);
        })
    }

    fn keeps_changelogs(&self) -> bool {
        self.log.changelogs
    }

    fn changelog_info(&self, store: &str) -> Result<Option<ChangelogInfo>> {
        if !self.log.changelogs {
            return Ok(None);
        }
        let topic = changelog_topic(&self.app, store);
        let end = self.log.lock().topics.get(&topic).and_then(|p| p.first()).map_or(0, Vec::len) as u64;
        Ok(Some(ChangelogInfo { topic, end, delete_retention: None }))
    }

    fn restore(&self, store: &str, from: u64, apply: &mut RestoreSink<'_>) -> Result<()> {
        if !self.log.changelogs {
            return Ok(());
        }
        let records = self.log.read(&changelog_topic(&self.app, store), 0, from);
        let mut next = from;
        for chunk in records.chunks(RESTORE_BATCH) {
            next += chunk.len() as u64;
            let changes =
                chunk.iter().map(|r| (r.key.clone().unwrap_or_default(), r.value.clone())).collect();
            apply(changes, next)?;
        }
        Ok(())
    }

    fn abort(&self) -> Result<()> {
        self.with(|_, _, app| {
            app.pending.clear();
            app.pending_changes.clear();
            // Re-read what the aborted epoch consumed, from the committed offsets.
            app.reading.clear();
        })
    }

    fn committed_times(&self, group: &str, topics: &[String]) -> Result<Vec<(u32, u32, i64)>> {
        self.with(|_, state, _| {
            let mut times = Vec::new();
            for ((g, topic, partition), &time) in &state.times {
                if let Some(source) = topics.iter().position(|t| t == topic).filter(|_| g == group) {
                    times.push((source as u32, *partition, time));
                }
            }
            times
        })
    }

    fn lagging(&self, out: &mut Vec<(u32, u32)>) -> Result<()> {
        out.clear();
        self.with(|_, state, app| {
            for (source, topic, partition, next) in &app.reading {
                if app.paused.contains(source) {
                    continue;
                }
                let len = state
                    .topics
                    .get(topic.as_str())
                    .and_then(|p| p.get(*partition as usize))
                    .map_or(0, Vec::len);
                if (*next as usize) < len {
                    out.push((*source, *partition));
                }
            }
        })?;
        out.sort_unstable();
        Ok(())
    }

    fn input_ends(&self) -> Result<Vec<InputEnd>> {
        let group = self.app.clone();
        let mut out = self.with(|_, state, app| {
            app.reading
                .iter()
                .map(|(_, topic, partition, _)| {
                    let len = state
                        .topics
                        .get(topic.as_str())
                        .and_then(|p| p.get(*partition as usize))
                        .map_or(0, Vec::len);
                    let committed = state.groups.get(&(group.clone(), topic.clone(), *partition)).copied();
                    InputEnd { topic: topic.clone(), partition: *partition, end: len as u64, committed }
                })
                .collect::<Vec<_>>()
        })?;
        out.sort();
        Ok(out)
    }

    fn pause(&self, sources: &[u32], paused: bool) -> Result<()> {
        self.with(|_, _, app| {
            app.paused.retain(|s| !sources.contains(s));
            if paused {
                app.paused.extend_from_slice(sources);
            }
        })
    }

    fn sources_caught_up(&self, sources: &[u32]) -> Result<bool> {
        self.with(|_, state, app| {
            app.reading.iter().filter(|r| sources.contains(&r.0)).all(|(_, topic, partition, next)| {
                let len = state
                    .topics
                    .get(topic.as_str())
                    .and_then(|p| p.get(*partition as usize))
                    .map_or(0, Vec::len);
                *next as usize >= len
            })
        })
    }

    fn wait_for_data(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.log.appended.notified()).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().map(|rt| rt.block_on(f)).expect("a runtime")
    }

    fn out(topic: &str, v: &str) -> OutRecord {
        OutRecord {
            topic: Arc::from(topic),
            key: Some(b"k".to_vec()),
            value: Some(v.as_bytes().to_vec()),
            timestamp: 1,
            headers: Headers::new(),
        }
    }

    #[test]
    fn epoch_writes_are_invisible_until_commit_and_gone_after_abort() {
        let shared = Arc::new(EmbeddedLog::new(1));
        let log = shared.connect("g");
        block_on(log.append(vec![out("o", "a")])).ok();
        assert!(shared.read("o", 0, 0).is_empty());
        log.abort().ok();
        log.commit("g", &[]).ok();
        assert!(shared.read("o", 0, 0).is_empty());
        block_on(log.append(vec![out("o", "b")])).ok();
        for v in 0..9u8 {
            shared.produce("i", None, Some(vec![v]), 0, Headers::new());
        }
        let offsets = [CommitOffset { topic: "i".into(), partition: 0, next_offset: 7, time: None }];
        log.commit("g", &offsets).ok();
        let got = shared.read("o", 0, 0);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value.as_deref(), Some(&b"b"[..]));
        // A reader of group g starts at the committed offset.
        log.assign("g", &["i".to_string()]).ok();
        let mut polled = Vec::new();
        log.poll(100, &mut polled).ok();
        let offsets: Vec<u64> = polled.iter().map(|p| p.record.offset).collect();
        assert_eq!(offsets, vec![7, 8]);
    }

    #[test]
    fn a_new_connection_fences_the_old_one_and_discards_its_epoch() {
        let shared = Arc::new(EmbeddedLog::new(1));
        let old = shared.connect("app");
        block_on(old.append(vec![out("o", "zombie")])).ok();
        let new = shared.connect("app");
        assert!(matches!(block_on(old.append(vec![out("o", "late")])), Err(Error::Fenced { .. })));
        assert!(matches!(old.commit("app", &[]), Err(Error::Fenced { .. })));
        new.commit("app", &[]).ok();
        assert!(shared.read("o", 0, 0).is_empty(), "nothing of the fenced connection is committed");
        // Another app id is not affected.
        let other = shared.connect("other");
        block_on(other.append(vec![out("o", "x")])).ok();
        assert!(other.commit("other", &[]).is_ok());
        assert_eq!(shared.read("o", 0, 0).len(), 1);
    }

    #[test]
    fn changelogs_commit_with_the_epoch_and_replay_from_an_offset() {
        let shared = Arc::new(EmbeddedLog::with_changelogs(1));
        let log = shared.connect("app");
        assert!(log.keeps_changelogs());
        let put = |k: &str, v: Option<&str>| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()));
        log.append_changelog("s", &[put("a", Some("1")), put("b", Some("2"))]).ok();
        log.abort().ok();
        log.append_changelog("s", &[put("a", Some("3"))]).ok();
        log.append_changelog("s", &[put("b", None)]).ok();
        assert_eq!(log.changelog_info("s").ok().flatten().map(|i| i.end), Some(0), "not before the commit");
        let receipt = log.commit("app", &[]).ok();
        assert_eq!(
            receipt.map(|r| r.changelogs),
            Some(vec![("s".to_string(), 2)]),
            "the aborted changes are gone"
        );
        let info = log.changelog_info("s").ok().flatten();
        assert_eq!(info.map(|i| (i.topic, i.end)), Some(("app-s-changelog".to_string(), 2)));
        let mut replayed = Vec::new();
        log.restore("s", 1, &mut |batch, next| {
            replayed.push((batch, next));
            Ok(())
        })
        .ok();
        assert_eq!(replayed, vec![(vec![put("b", None)], 2)]);
        // A plain embedded log keeps none.
        let plain = Arc::new(EmbeddedLog::new(1)).connect("app");
        assert!(!plain.keeps_changelogs());
        assert_eq!(plain.changelog_info("s").ok().flatten(), None);
    }

    #[test]
    fn same_key_same_partition() {
        let log = EmbeddedLog::new(8);
        let (p1, _) = log.produce("t", Some(b"key".to_vec()), None, 0, Headers::new());
        let (p2, o2) = log.produce("t", Some(b"key".to_vec()), None, 0, Headers::new());
        assert_eq!(p1, p2);
        assert_eq!(o2, 1);
    }
}
