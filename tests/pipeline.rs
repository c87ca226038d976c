//! The commit off the critical path: lanes process the next epoch while the previous one
//! commits. Its outputs wait until the transaction has been committed, its state reads see the
//! sealed epoch before LMDB has it, and when that commit fails, both epochs run again exactly.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoat::log::{EmbeddedLog, EmbeddedSession, Log};
use stoat::prelude::*;

const IN: Topic<u64, u64> = Topic::new("in");
const OUT: Topic<u64, u64> = Topic::new("out");

/// Keys and records per key of the input.
const KEYS: u64 = 50;
const PER_KEY: u64 = 40;

/// A log whose first commit waits until the lanes have processed more records than that epoch
/// holds (records of the next epoch), or a timeout; it notes whether they did, and any output
/// appended while a commit ran. With `fail_first`, that commit then fails as a timeout would.
struct HeldCommit {
    inner: EmbeddedSession,
    processed: &'static AtomicUsize,
    epoch_records: usize,
    fail_first: bool,
    commits: AtomicUsize,
    committing: AtomicBool,
    overlapped: AtomicBool,
    appended_during_commit: AtomicUsize,
}

impl HeldCommit {
    fn new(
        inner: EmbeddedSession,
        processed: &'static AtomicUsize,
        epoch_records: usize,
        fail_first: bool,
    ) -> Self {
        HeldCommit {
            inner,
            processed,
            epoch_records,
            fail_first,
            commits: AtomicUsize::new(0),
            committing: AtomicBool::new(false),
            overlapped: AtomicBool::new(false),
            appended_during_commit: AtomicUsize::new(0),
        }
    }
}

impl Log for HeldCommit {
    fn assign(&self, group: &str, topics: &[String]) -> stoat::Result<()> {
        self.inner.assign(group, topics)
    }
    fn poll(&self, max: usize, out: &mut Vec<stoat::log::Polled>) -> stoat::Result<()> {
        self.inner.poll(max, out)
    }
    fn append(&self, records: Vec<stoat::log::OutRecord>) -> stoat::log::BoxFuture<'_, stoat::Result<()>> {
        if self.committing.load(Ordering::SeqCst) {
            self.appended_during_commit.fetch_add(records.len(), Ordering::SeqCst);
        }
        self.inner.append(records)
    }
    fn commit(
        &self,
        group: &str,
        offsets: &[stoat::log::CommitOffset],
    ) -> stoat::Result<stoat::log::CommitReceipt> {
        self.committing.store(true, Ordering::SeqCst);
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            let until = Instant::now() + Duration::from_secs(10);
            while self.processed.load(Ordering::SeqCst) <= self.epoch_records && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            if self.processed.load(Ordering::SeqCst) > self.epoch_records {
                self.overlapped.store(true, Ordering::SeqCst);
            }
        }
        let result = if n == 1 && self.fail_first {
            Err(stoat::Error::Transient("commit 1 timed out".into()))
        } else {
            self.inner.commit(group, offsets)
        };
        self.committing.store(false, Ordering::SeqCst);
        result
    }
    fn abort(&self) -> stoat::Result<()> {
        self.inner.abort()
    }
    fn wait_for_data(&self) -> stoat::log::BoxFuture<'_, ()> {
        self.inner.wait_for_data()
    }
}

#[stoat::state]
struct Totals {
    per_key: Table<u64, u64>,
}

/// The running total of a key, read by key for even keys and by a range scan for odd ones (both
/// must see the epoch sealed before, which is not in LMDB while it commits).
fn running_total(key: u64, n: u64, totals: &mut Totals) -> Result<u64, StoreError> {
    let before = if key.is_multiple_of(2) {
        totals.per_key.get(&key)?
    } else {
        totals.per_key.range(key..=key)?.first().map(|(_, v)| *v)
    };
    let total = before.unwrap_or(0) + n;
    totals.per_key.put(key, total)?;
    Ok(total)
}

static PROCESSED_OVERLAP: AtomicUsize = AtomicUsize::new(0);
static PROCESSED_FAILED: AtomicUsize = AtomicUsize::new(0);

#[stoat::operator]
fn total_overlap(#[key] key: &u64, n: u64, totals: &mut Totals) -> Result<u64, StoreError> {
    PROCESSED_OVERLAP.fetch_add(1, Ordering::SeqCst);
    running_total(*key, n, totals)
}

#[stoat::operator]
fn total_failed(#[key] key: &u64, n: u64, totals: &mut Totals) -> Result<u64, StoreError> {
    PROCESSED_FAILED.fetch_add(1, Ordering::SeqCst);
    running_total(*key, n, totals)
}

const EPOCH_RECORDS: usize = 100;

fn input() -> Arc<EmbeddedLog> {
    let log = Arc::new(EmbeddedLog::new(3));
    for i in 0..KEYS * PER_KEY {
        log.send(&IN, &(i % KEYS), &1).expect("encodes");
    }
    log
}

fn config() -> Config {
    Config::default().lanes(3).commit_max_records(EPOCH_RECORDS)
}

/// Every key's totals 1..=PER_KEY, each exactly once, in order.
fn assert_exact(log: &EmbeddedLog) {
    let mut per_key: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    let (keys, values) = (OUT.key_codec(), OUT.value_codec());
    for (_, record) in log.read_all("out") {
        let key = keys.decode(record.key.as_deref()).expect("a u64 key");
        let total = values.decode(record.value.as_deref()).expect("a u64 value");
        per_key.entry(key).or_default().push(total);
    }
    assert_eq!(per_key.len() as u64, KEYS);
    let expected: Vec<u64> = (1..=PER_KEY).collect();
    for (key, totals) in per_key {
        assert_eq!(totals, expected, "key {key}");
    }
}

#[test]
fn the_next_epoch_is_processed_while_the_previous_one_commits_and_its_outputs_wait() -> stoat::Result<()> {
    let log = input();
    let topology = Topology::new("overlap");
    topology.source(&IN).process(total_overlap {}).sink(&OUT);
    let held = Arc::new(HeldCommit::new(log.connect("overlap"), &PROCESSED_OVERLAP, EPOCH_RECORDS, false));
    let mut app = App::with_log(&topology, config(), Arc::clone(&held) as Arc<dyn Log>)?;
    let stats = app.run_until_idle()?;
    assert!(
        held.overlapped.load(Ordering::SeqCst),
        "no record of the second epoch was processed while the first committed"
    );
    assert_eq!(
        held.appended_during_commit.load(Ordering::SeqCst),
        0,
        "outputs went into a committing transaction"
    );
    assert!(stats.epochs >= KEYS * PER_KEY / EPOCH_RECORDS as u64, "{stats:?}");
    assert_exact(&log);
    Ok(())
}

#[test]
fn a_failed_commit_runs_again_with_the_epoch_processed_behind_it_exactly() -> stoat::Result<()> {
    let log = input();
    let topology = Topology::new("behind");
    topology.source(&IN).process(total_failed {}).sink(&OUT);
    let held = Arc::new(HeldCommit::new(log.connect("behind"), &PROCESSED_FAILED, EPOCH_RECORDS, true));
    let mut app = App::with_log(&topology, config(), Arc::clone(&held) as Arc<dyn Log>)?;
    let stats = app.run_until_idle()?;
    assert!(held.overlapped.load(Ordering::SeqCst), "the failing commit did not overlap the next epoch");
    assert_eq!(stats.epoch_retries, 1, "{stats:?}");
    // Both epochs ran again: their state changes (sealed, and in the open buffer) and the held
    // outputs were forgotten, so totals neither repeat nor skip.
    assert!(PROCESSED_FAILED.load(Ordering::SeqCst) > (KEYS * PER_KEY) as usize);
    assert_exact(&log);
    Ok(())
}
