//! `CrashTest`: a user's topology crashed at every step of every commit (and during the restore
//! after one), with and without its state directory, must commit exactly what it commits without
//! crashes and end with the same state; topologies that keep state outside the epoch are caught,
//! with the crash point, the epoch and the first differing output or store entry named.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use stoat::prelude::*;
use stoat::testing::{CrashPoint, CrashTest};

#[stoat::state]
struct Counts {
    per_word: Table<String, u64>,
}

#[stoat::operator]
fn split(line: String) -> Vec<KeyValue<String, u64>> {
    line.split_whitespace().map(|w| KeyValue::new(w.to_string(), 1)).collect()
}

#[stoat::operator]
fn count(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> {
    let total = counts.per_word.get(word)?.unwrap_or(0) + n;
    counts.per_word.put(word.to_string(), total)?;
    Ok(total)
}

fn lines() -> Topic<String, String> {
    Topic::new("lines")
}

fn word_count() -> Topology {
    let topology = Topology::new("crash-words");
    topology.source(&lines()).process(split {}).process(count {}).sink(&Topic::<String, u64>::new("counts"));
    topology
}

fn three_epochs(topology: &Topology) -> stoat::Result<CrashTest<'_>> {
    let line = |i: usize, s: &str| (format!("l{i}"), s.to_string());
    CrashTest::new(topology)
        .pipe(&lines(), [line(1, "to be or not to be"), line(2, "that is the question")])?
        .end_epoch()
        .pipe(&lines(), [line(3, "to sleep perchance to dream"), line(4, "be be be")])?
        .end_epoch()
        .pipe(&lines(), [line(5, "question the question"), line(6, "or not")])
}

#[test]
fn word_count_is_exactly_once_at_every_crash_point_with_and_without_its_state() -> stoat::Result<()> {
    let topology = word_count();
    let report = three_epochs(&topology)?.lose_state(true).run()?;
    assert_eq!(report.epochs, 3);
    let runs = CrashPoint::ALL.len() * 3;
    assert_eq!(report.crashes, 2 * runs, "every point of every epoch, with and without state");
    assert_eq!(report.with_state_lost, runs);
    assert_eq!(report.outputs, 23, "one count per word occurrence");
    assert_eq!(report.not_reached, 0);
    Ok(())
}

/// A count kept in a static: it survives nothing a store survives, and repeats what a replay
/// repeats.
static SEEN: AtomicU64 = AtomicU64::new(0);

#[stoat::operator]
fn count_in_a_static(#[key] _word: &str, n: u64) -> u64 {
    SEEN.fetch_add(n, Ordering::SeqCst) + n
}

/// Two epochs of words through `topology`: the crash test must fail, naming the crash point, the
/// epoch and the first difference.
fn assert_caught(topology: &Topology, words: &Topic<String, u64>) -> stoat::Result<()> {
    let test = CrashTest::new(topology)
        .pipe(words, [("a".to_string(), 1), ("b".to_string(), 1)])?
        .end_epoch()
        .pipe(words, [("a".to_string(), 1)])?;
    let message = match test.run() {
        Err(e @ stoat::Error::CrashTest(_)) => e.to_string(),
        other => panic!("the crash test should have failed, got {other:?}"),
    };
    assert!(message.contains("crashed after"), "names the crash point: {message}");
    assert!(message.contains("of epoch "), "names the epoch: {message}");
    assert!(
        message.contains("expected ") && message.contains("got "),
        "names the first difference: {message}"
    );
    Ok(())
}

#[test]
fn a_count_kept_in_a_static_is_caught() -> stoat::Result<()> {
    let topology = Topology::new("crash-static");
    let words: Topic<String, u64> = Topic::new("words");
    topology.source(&words).process(count_in_a_static {}).sink(&Topic::<String, u64>::new("seen"));
    assert_caught(&topology, &words)
}

/// Calls counted in a static and kept in a store, while the output is the input: the outputs
/// of a crashed run are right, but what a replay repeats is in its state.
static CALLS: AtomicU64 = AtomicU64::new(0);

#[stoat::operator]
fn note_calls(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> {
    counts.per_word.put(word.to_string(), CALLS.fetch_add(1, Ordering::SeqCst))?;
    Ok(n)
}

#[test]
fn state_that_differs_after_a_crash_is_caught_even_when_the_outputs_do_not() -> stoat::Result<()> {
    let topology = Topology::new("crash-state");
    let words: Topic<String, u64> = Topic::new("words");
    topology.source(&words).process(note_calls {}).sink(&Topic::<String, u64>::new("same"));
    let test = CrashTest::new(&topology)
        .pipe(&words, [("a".to_string(), 1), ("b".to_string(), 1)])?
        .end_epoch()
        .pipe(&words, [("a".to_string(), 1)])?;
    let message = match test.run() {
        Err(e @ stoat::Error::CrashTest(_)) => e.to_string(),
        other => panic!("the crash test should have failed, got {other:?}"),
    };
    assert!(message.contains("ended with different state"), "{message}");
    assert!(
        message.contains("state store `") && message.contains("key \"a\""),
        "names the store and key: {message}"
    );
    Ok(())
}

/// Counts kept in a map the topology's closure shares: state written outside the epoch, so a
/// replayed record is counted twice and an aborted epoch's counts stay.
#[test]
fn state_written_outside_the_epoch_is_caught() -> stoat::Result<()> {
    let topology = Topology::new("crash-side");
    let side: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let words: Topic<String, u64> = Topic::new("words");
    topology
        .source(&words)
        .map(move |word: String, n: u64| {
            let mut map = side.lock().unwrap_or_else(|p| p.into_inner());
            let total = map.entry(word.clone()).or_insert(0);
            *total += n;
            (word, *total)
        })
        .sink(&Topic::<String, u64>::new("seen"));
    assert_caught(&topology, &words)
}

/// The DSL's stateful operators (a re-keying count, a windowed count with grace whose windows
/// close on stream time) crashed everywhere, with and without state.
#[test]
fn dsl_counts_and_windows_are_exactly_once_at_every_crash_point() -> stoat::Result<()> {
    use std::time::Duration;
    let topology = Topology::new("crash-dsl");
    let clicks: Topic<String, u64> = Topic::new("clicks");
    let stream = topology.source(&clicks);
    stream.group_by(|_, n| format!("n{}", n % 3)).count("by_residue").to("residues");
    let per_user = stream.group_by_key();
    per_user
        .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5)))
        .count("window_counts")
        .to("windows");
    let mut test = CrashTest::new(&topology);
    let base = 1_700_000_000_000i64;
    let mut rng = 7u64;
    for epoch in 0..4 {
        let mut records = Vec::new();
        for i in 0..40u64 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Mostly in order, some late (within and beyond the grace period).
            let jitter = (rng >> 33) % 20_000;
            let ts = base + (epoch * 40 + i) as i64 * 1_000 - jitter as i64;
            records.push((format!("user{}", (rng >> 40) % 5), i, ts));
        }
        test = test.pipe_at(&clicks, records)?.end_epoch();
    }
    // The counts per residue are re-keyed from five users' partitions: their intermediate
    // updates interleave as the partitions do, their results must not.
    let report = test.lose_state(true).latest_per_key().run()?;
    assert_eq!(report.epochs, 4);
    assert_eq!(report.not_reached, 0);
    assert_eq!(report.crashes, 2 * CrashPoint::ALL.len() * 4);
    assert!(report.outputs > 160, "counts per residue plus window updates: {}", report.outputs);
    Ok(())
}
