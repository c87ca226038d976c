//! Faults inside the process, on the embedded log: a panicking operator, a lane stuck in user
//! code, infrastructure errors that must never reach the error policy, many lanes over many
//! stores, re-key fan-out against the in-flight budget, and a failed app whose lanes must not
//! leak outputs into the next app on the same log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoat::log::EmbeddedLog;
use stoat::prelude::*;
use stoat::Error;
use support::flaky::Flaky;

mod support;

/// Runs `f` on its own thread and fails the test if it has not returned within `within` (a hang
/// is a failure, not a test that never ends).
fn bounded<T: Send + 'static>(within: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(within) {
        Ok(out) => out,
        Err(_) => panic!("did not return within {within:?}: the application hangs"),
    }
}

/// The input of most topologies here: numbers without keys.
const IN: Topic<(), u64> = Topic::new("in");

fn produce_numbers(log: &EmbeddedLog, topic: &str, range: std::ops::Range<u64>) {
    let topic = IN.renamed(topic);
    for n in range {
        log.send(&topic, &(), &n).expect("encodes");
    }
}

/// The committed values of `topic`, decoded as `u64`s (their default codec).
fn u64_values(log: &EmbeddedLog, topic: &str) -> Vec<u64> {
    let codec = IN.value_codec();
    log.read_all(topic).iter().map(|(_, r)| codec.decode(r.value.as_deref()).unwrap_or(u64::MAX)).collect()
}

#[stoat::operator]
fn fragile(n: u64) -> u64 {
    if n == 777 {
        panic!("cannot handle {n}");
    }
    n
}

fn fragile_topology(app: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream::<(), u64>("in").process(fragile {}).to("out");
    topology
}

#[test]
fn an_operator_panic_stops_the_app_with_an_error_naming_the_record() {
    let result = bounded(Duration::from_secs(60), || {
        let mut app = App::embedded(&fragile_topology("panic"), Config::default().lanes(3))?;
        let log = app.embedded_log().cloned().ok_or(Error::Runtime("no log".into()))?;
        produce_numbers(&log, "in", 1..1000);
        let run = app.run_until_idle();
        let outputs = log.read_all("out").len();
        Ok::<_, Error>((run.map(|_| ()), outputs))
    });
    let (run, outputs) = result.expect("the app starts");
    let err = run.expect_err("a panic under ErrorPolicy::Fail stops the app");
    let text = err.to_string();
    for part in ["fragile", "topic `in`", "partition 0", "offset 776", "cannot handle 777"] {
        assert!(text.contains(part), "the error names {part}: {text}");
    }
    assert!(outputs < 999, "the failing epoch is not committed ({outputs} outputs)");
}

#[test]
fn a_panicking_record_is_skipped_and_counted_under_skip() {
    let (stats, mut values) = bounded(Duration::from_secs(60), || {
        let driver = TestDriver::with_config(
            &fragile_topology("panic-skip"),
            Config::default().lanes(3).error_policy(ErrorPolicy::Skip),
        )?;
        driver.input::<(), u64>("in").pipe_values(1..1000)?;
        Ok::<_, Error>((driver.stats(), driver.output::<(), u64>("out").read_values()?))
    })
    .expect("skipping a panicking record keeps the app running");
    assert_eq!(stats.skipped_operator, 1, "{stats:?}");
    values.sort_unstable();
    assert_eq!(values, (1..1000).filter(|&n| n != 777).collect::<Vec<u64>>());
}

#[test]
fn a_panicking_record_goes_to_the_dead_letter_topic() {
    let dead = bounded(Duration::from_secs(60), || {
        let driver = TestDriver::with_config(
            &fragile_topology("panic-dlq"),
            Config::default().lanes(2).error_policy(ErrorPolicy::DeadLetter("dead".into())),
        )?;
        driver.input::<(), u64>("in").pipe_values(770..780)?;
        Ok::<_, Error>(driver.log().read_all("dead"))
    })
    .expect("dead-lettering a panicking record keeps the app running");
    assert_eq!(dead.len(), 1);
    let header = |name: &str| {
        dead[0]
            .1
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("stoat.offset").as_deref(), Some("7"));
    assert!(
        header("stoat.error").is_some_and(|e| e.contains("cannot handle 777")),
        "{:?}",
        header("stoat.error")
    );
}

static RELEASE: AtomicBool = AtomicBool::new(false);

#[stoat::operator]
fn stuck(n: u64) -> u64 {
    if n == 5 {
        // A lane caught in user code (a call that never returns), until the test lets it go.
        let since = Instant::now();
        while !RELEASE.load(Ordering::Relaxed) && since.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    n
}

#[test]
fn a_stop_request_is_honoured_while_a_lane_is_stuck() {
    let (run, took) = bounded(Duration::from_secs(60), || {
        let topology = Topology::new("stuck");
        topology.stream::<(), u64>("in").process(stuck {}).to("out");
        let config = Config::default().lanes(2).shutdown_timeout(Duration::from_secs(2));
        let mut app = App::embedded(&topology, config)?;
        let log = app.embedded_log().cloned().ok_or(Error::Runtime("no log".into()))?;
        produce_numbers(&log, "in", 0..100);
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            trigger.trigger();
        });
        let started = Instant::now();
        let run = app.run_until_stopped(&shutdown).map(|_| ());
        let took = started.elapsed();
        drop(app);
        Ok::<_, Error>((run, took))
    })
    .expect("the app starts");
    RELEASE.store(true, Ordering::Relaxed);
    let err = run.expect_err("an epoch that cannot finish is not committed");
    assert!(err.to_string().contains("did not finish"), "{err}");
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
}

#[stoat::state]
struct Ledger {
    seen: Table<u64, u64>,
}

#[stoat::operator]
fn broken_store(n: u64, _ledger: &mut Ledger) -> Result<u64, StoreError> {
    if n % 10 == 3 {
        // What a failing LMDB read looks like to the operator that propagates it with `?`.
        return Err(StoreError::WriterGone);
    }
    Ok(n)
}

#[test]
fn a_store_error_stops_the_app_even_under_skip() {
    let topology = Topology::new("store-error");
    topology.stream::<(), u64>("in").process(broken_store {}).to("out");
    let driver =
        TestDriver::with_config(&topology, Config::default().lanes(2).error_policy(ErrorPolicy::Skip))
            .expect("driver");
    let err = driver.input::<(), u64>("in").pipe_values(0..100).expect_err("a store error is not skippable");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(driver.stats().skipped(), 0);
    assert!(driver.log().read_all("out").is_empty(), "nothing of the failing epoch is committed");
}

#[stoat::state]
struct Four {
    a: Table<u64, u64>,
    b: Table<u64, u64>,
    c: Table<u64, u64>,
    d: Table<u64, u64>,
}

#[stoat::operator]
fn touch_four(n: u64, four: &mut Four) -> Result<u64, StoreError> {
    let mut sum = 0;
    for table in [&mut four.a, &mut four.b, &mut four.c, &mut four.d] {
        let v = table.get(&n)?.unwrap_or(0) + 1;
        table.put(n, v)?;
        sum += v;
    }
    Ok(sum)
}

#[test]
fn a_thousand_lanes_over_four_stores_have_enough_lmdb_readers() -> stoat::Result<()> {
    const KEYED: Topic<u64, u64> = Topic::new("in");
    let topology = Topology::new("many-lanes");
    topology.source(&KEYED).process(touch_four {}).to("out");
    // Many worker threads, so that many lanes hold read transactions at the same time.
    let config = Config::default().lanes(1024).error_policy(ErrorPolicy::Skip).worker_threads(64);
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(Error::Runtime("no log".into()))?;
    log.create_topic("in", 8);
    for round in 0..2 {
        for n in 0..20_000u64 {
            // Keyed by the state key, so each key's updates stay on its lane.
            log.send(&KEYED, &(n % 5_000), &(n % 5_000)).expect("encodes");
        }
        let stats = app.run_until_idle()?;
        assert_eq!(stats.skipped(), 0, "round {round}: no record may be skipped: {stats:?}");
    }
    let mut sums = u64_values(&log, "out");
    sums.sort_unstable();
    // Every key is touched 8 times across the two rounds: sums 4, 8, ..., 32, each 5 000 times.
    let expected: Vec<u64> = (1..=8u64).flat_map(|i| std::iter::repeat_n(4 * i, 5_000)).collect();
    assert!(sums == expected, "{} sums, {} expected; they differ", sums.len(), expected.len());
    Ok(())
}

#[stoat::operator]
fn fan_out(n: u64) -> Vec<KeyValue<u64, u64>> {
    (0..8).map(|i| KeyValue::new(n.wrapping_mul(8).wrapping_add(i), n)).collect()
}

#[test]
fn re_keyed_fan_out_stays_within_the_in_flight_budget() -> stoat::Result<()> {
    let topology = Topology::new("fan-out");
    topology.stream::<(), u64>("in").process(fan_out {}).process(fan_out {}).process(fan_out {}).to("out");
    let config = Config::default().lanes(2).max_in_flight(512);
    let driver = TestDriver::with_config(&topology, config)?;
    driver.input::<(), u64>("in").pipe_values(0..2_000)?;
    let stats = driver.stats();
    assert_eq!(stats.records_out, 2_000 * 512);
    // The budget, plus per lane a source batch sent just under the budget and what one step
    // hands on (measured: ~1 270): nowhere near the 10^5..10^6 records a pipeline that let
    // re-keyed records ignore the budget held (261 059 in the review that found it).
    let bound = 512 + 2 * (512 + 3 * 2 * 256);
    assert!(stats.peak_in_flight <= bound, "peak {} > {bound}", stats.peak_in_flight);
    Ok(())
}

#[stoat::operator]
fn stall_then_fail(n: u64) -> Result<u64, std::num::ParseIntError> {
    if n == 10 {
        // This lane is busy while another lane fails, with a backlog queued behind it.
        std::thread::sleep(Duration::from_millis(800));
    }
    if n == 11 {
        "not a number".parse::<u64>()?;
    }
    Ok(n)
}

#[stoat::operator]
fn echo(n: u64) -> u64 {
    n
}

fn echo_topology(app: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream::<(), u64>("in").process(echo {}).to("out");
    topology
}

fn on(log: &Arc<EmbeddedLog>, topology: &Topology, lanes: usize) -> stoat::Result<App> {
    App::embedded_on(topology, Config::default().lanes(lanes), Arc::clone(log))
}

#[test]
fn a_failed_app_leaks_nothing_into_the_next_app_on_the_same_log() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(4));
    produce_numbers(&log, "in", 0..400_000);
    let failing = Topology::new("leak");
    failing.stream::<(), u64>("in").key_by(|_, n| *n).process(stall_then_fail {}).to("out");
    let mut first = on(&log, &failing, 4)?;
    assert!(first.run_until_idle().is_err());
    // The failed app stays alive while its stalled lane wakes up with work queued.
    std::thread::sleep(Duration::from_millis(1_500));
    let mut second = on(&log, &echo_topology("leak"), 4)?;
    second.run_until_idle()?;
    drop(first);
    let mut outputs = u64_values(&log, "out");
    outputs.sort_unstable();
    assert_eq!(outputs.len(), 400_000, "one output per input, none from the failed app");
    assert_eq!(outputs, (0..400_000).collect::<Vec<u64>>());
    Ok(())
}

#[test]
fn read_positions_are_kept_per_application_id() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(2));
    produce_numbers(&log, "in", 0..1_000);
    let a = on(&log, &echo_topology("reader-a"), 2)?.run_until_idle()?;
    let b = on(&log, &echo_topology("reader-b"), 2)?.run_until_idle()?;
    assert_eq!((a.records_in, b.records_in), (1_000, 1_000), "each app id reads the whole input");
    // The same app id again resumes where it committed: nothing new to read.
    let again = on(&log, &echo_topology("reader-a"), 2)?.run_until_idle()?;
    assert_eq!(again.records_in, 0);
    Ok(())
}

#[stoat::state]
struct Totals {
    per_key: Table<u64, u64>,
}

#[stoat::operator]
fn running_total(#[key] key: &u64, n: u64, totals: &mut Totals) -> Result<u64, StoreError> {
    let total = totals.per_key.get(key)?.unwrap_or(0) + n;
    totals.per_key.put(*key, total)?;
    Ok(total)
}

const TOTALS_IN: Topic<u64, u64> = Topic::new("in");
const TOTALS_OUT: Topic<u64, u64> = Topic::new("out");

fn flaky_run(
    failing_commits: Vec<usize>,
    failing_appends: Vec<usize>,
    config: Config,
) -> stoat::Result<(App, Arc<EmbeddedLog>)> {
    let log = Arc::new(EmbeddedLog::new(3));
    for n in 0..30_000u64 {
        log.send(&TOTALS_IN, &(n % 97), &1).expect("encodes");
    }
    let topology = Topology::new("flaky");
    topology.source(&TOTALS_IN).process(running_total {}).sink(&TOTALS_OUT);
    let flaky = Flaky::new(log.connect("flaky"), failing_commits, failing_appends);
    let app = App::with_log(&topology, config, Arc::new(flaky))?;
    Ok((app, log))
}

/// The committed (key, total) records of `TOTALS_OUT`, in order.
fn totals(log: &EmbeddedLog) -> stoat::Result<Vec<(u64, u64)>> {
    let (keys, values) = (TOTALS_OUT.key_codec(), TOTALS_OUT.value_codec());
    let decode = |e: stoat::DecodeError| Error::Runtime(e.to_string());
    log.read_all(TOTALS_OUT.name())
        .into_iter()
        .map(|(_, r)| {
            Ok((
                keys.decode(r.key.as_deref()).map_err(decode)?,
                values.decode(r.value.as_deref()).map_err(decode)?,
            ))
        })
        .collect()
}

#[test]
fn transient_log_errors_abort_and_retry_the_epoch_and_the_output_stays_exact() -> stoat::Result<()> {
    let (mut app, log) =
        flaky_run(vec![2, 3, 6], vec![5, 40], Config::default().lanes(4).commit_max_records(2_000))?;
    let stats = app.run_until_idle()?;
    assert!(stats.epoch_retries >= 4, "{stats:?}");
    // Every key's running totals are exactly 1, 2, ..., n: nothing lost, nothing repeated.
    let mut last = std::collections::HashMap::new();
    for (key, total) in totals(&log)? {
        let prev = last.insert(key, total).unwrap_or(0);
        assert_eq!(total, prev + 1, "key {key}");
    }
    assert_eq!(last.len(), 97);
    assert_eq!(last.values().sum::<u64>(), 30_000);
    Ok(())
}

#[test]
fn transient_errors_stop_the_app_once_the_retry_timeout_has_passed() -> stoat::Result<()> {
    let config = Config::default().lanes(2).retry_timeout(Duration::from_millis(500));
    let (mut app, log) = flaky_run((1..10_000).collect(), Vec::new(), config)?;
    let started = Instant::now();
    let err = app.run_until_idle().expect_err("every commit fails");
    assert!(err.is_transient(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(log.read_all("out").is_empty());
    Ok(())
}

#[test]
fn a_second_connection_of_the_app_id_fences_a_running_app() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(2));
    produce_numbers(&log, "in", 0..1_000);
    let mut first = on(&log, &echo_topology("fenced"), 2)?;
    first.run_until_idle()?;
    // A new instance of the same app id takes over the log ...
    let mut second = on(&log, &echo_topology("fenced"), 2)?;
    produce_numbers(&log, "in", 1_000..2_000);
    // ... so the first one stops, writing nothing more.
    let err = first.run_until_idle().expect_err("fenced");
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    let stats = second.run_until_idle()?;
    assert_eq!(stats.records_in, 1_000, "the second instance reads on from the first one's commits");
    assert_eq!(log.read_all("out").len(), 2_000);
    Ok(())
}

/// A log whose appends panic: the lane-group task that calls it dies (outside any operator).
struct PanickyAppends(stoat::log::EmbeddedSession);

impl stoat::log::Log for PanickyAppends {
    fn assign(&self, group: &str, topics: &[String]) -> stoat::Result<()> {
        self.0.assign(group, topics)
    }
    fn poll(&self, max: usize, out: &mut Vec<stoat::log::Polled>) -> stoat::Result<()> {
        self.0.poll(max, out)
    }
    fn append(&self, _: Vec<stoat::log::OutRecord>) -> stoat::log::BoxFuture<'_, stoat::Result<()>> {
        Box::pin(async { panic!("the log broke") })
    }
    fn commit(
        &self,
        group: &str,
        offsets: &[stoat::log::CommitOffset],
    ) -> stoat::Result<stoat::log::CommitReceipt> {
        self.0.commit(group, offsets)
    }
    fn abort(&self) -> stoat::Result<()> {
        self.0.abort()
    }
    fn wait_for_data(&self) -> stoat::log::BoxFuture<'_, ()> {
        self.0.wait_for_data()
    }
}

#[test]
fn a_dead_lane_stops_the_app() {
    let result = bounded(Duration::from_secs(60), || {
        let log = Arc::new(EmbeddedLog::new(1));
        produce_numbers(&log, "in", 0..100);
        let topology = echo_topology("dead-lane");
        let mut app = App::with_log(
            &topology,
            Config::default().lanes(2),
            Arc::new(PanickyAppends(log.connect("dead-lane"))),
        )?;
        app.run_until_idle().map(|_| ())
    });
    let err = result.expect_err("a lane that died stops the app");
    assert!(err.to_string().contains("stopped unexpectedly"), "{err}");
}

/// Aborted epochs (failed appends and commits) with many lanes per lane group and a re-key: the
/// retried epochs neither lose nor repeat a count, whatever each group held when they failed.
#[test]
fn aborted_epochs_through_a_rekey_on_many_lanes_per_group_are_exact() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(3));
    for n in 0..30_000u64 {
        log.send(&TOTALS_IN, &(n % 997), &1).expect("encodes");
    }
    let topology = Topology::new("flaky-groups");
    topology.source(&TOTALS_IN).group_by(|k, _| k % 97).count("counts").sink(&TOTALS_OUT);
    let flaky = Flaky::new(log.connect("flaky-groups"), vec![2, 3, 6], vec![2, 9, 40]);
    let config = Config::default().lanes(500).lane_groups(3).commit_max_records(2_000);
    let mut app = App::with_log(&topology, config, Arc::new(flaky))?;
    let stats = app.run_until_idle()?;
    assert!(stats.epoch_retries >= 4, "{stats:?}");
    let mut last = std::collections::HashMap::new();
    for (key, count) in totals(&log)? {
        let prev = last.insert(key, count).unwrap_or(0);
        assert_eq!(count, prev + 1, "key {key}: {count} after {prev}");
    }
    let mut expected = std::collections::HashMap::new();
    for n in 0..30_000u64 {
        *expected.entry((n % 997) % 97).or_insert(0u64) += 1;
    }
    assert_eq!(last, expected);
    Ok(())
}

#[test]
fn aggregates_held_until_the_epoch_ends_survive_aborted_epochs_exactly() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(3));
    for n in 0..30_000u64 {
        log.send(&TOTALS_IN, &(n % 97), &1).expect("encodes");
    }
    let topology = Topology::new("flaky-once");
    let input = topology.source(&TOTALS_IN);
    input.group_by_key().count("counts").sink(&TOTALS_OUT);
    // Some records also go out at once, so appends happen in the middle of epochs too.
    input.filter(|k, _| *k == 0).to("zeros");
    let flaky = Flaky::new(log.connect("flaky-once"), vec![2, 3, 6], vec![2, 9, 40]);
    let config = Config::default().lanes(4).commit_max_records(2_000).emission(Emission::LatestPerEpoch);
    let mut app = App::with_log(&topology, config, Arc::new(flaky))?;
    let stats = app.run_until_idle()?;
    assert!(stats.epoch_retries >= 4, "{stats:?}");
    // At most one count per key per epoch, each larger than the last, ending at the true count.
    let mut last = std::collections::HashMap::new();
    let mut outputs = 0;
    for (key, count) in totals(&log)? {
        let prev = last.insert(key, count).unwrap_or(0);
        assert!(count > prev, "key {key}: {count} after {prev}");
        outputs += 1;
    }
    assert_eq!(last.len(), 97);
    assert!(last.values().all(|&n| n == 30_000 / 97 || n == 30_000 / 97 + 1), "{last:?}");
    assert_eq!(last.values().sum::<u64>(), 30_000);
    assert!(
        outputs <= 97 * 15,
        "{outputs} outputs for 15 epochs of 97 keys: some key was emitted twice in an epoch"
    );
    Ok(())
}
