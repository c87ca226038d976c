//! Async operators (`#[stoat::operator]` on an `async fn`): a record whose call awaits parks
//! only itself. Checked: outputs and per-key order with random delays on 1, 3, 16 and 300 lanes; calls
//! really overlap, up to `concurrency` per lane and `limit` across lanes; timeouts and failures
//! are retried, then go to the error policy (skip, dead letter, fail); a panic is the record's
//! error; an async operator feeding state commits exactly its epoch's calls; resources are
//! provided to the topology, and a missing one is a topology error.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stoat::log::EmbeddedLog;
use stoat::prelude::*;
use support::flaky::Flaky;

mod support;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// A stand-in remote service: answers after a delay the request names, counting calls and how
/// many are in flight at once.
#[derive(Default)]
struct Remote {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most: AtomicUsize,
    /// Per request, how many of its attempts fail before one succeeds.
    fail_first: Mutex<HashMap<String, usize>>,
}

impl Remote {
    async fn lookup(&self, request: &str, delay_ms: u64) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut failing = self.fail_first.lock().unwrap_or_else(|p| p.into_inner());
        match failing.get_mut(request) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(format!("{request}: service unavailable"))
            }
            _ => Ok(request.to_uppercase()),
        }
    }
}

/// Values are `name:delay_ms`; the output is the name enriched by the remote.
#[stoat::operator(concurrency = 8, timeout = "2s", retries = 2, backoff = "1ms")]
async fn enrich(value: String, remote: &Res<Remote>) -> Result<String, String> {
    let (name, delay) = value.split_once(':').unwrap_or((&value, "0"));
    let delay = delay.parse().unwrap_or(0);
    remote.lookup(name, delay).await.map(|up| format!("{name}={up}"))
}

fn enrichment(remote: Remote) -> Topology {
    let topology = Topology::new("async-enrich");
    topology.provide(remote);
    topology.stream::<String, String>("in").process(enrich {}).to("out");
    topology
}

/// A small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn outputs_are_complete_and_each_keys_order_holds_whatever_the_delays_and_lanes() -> stoat::Result<()> {
    for lanes in LANES {
        let driver = TestDriver::with_config(&enrichment(Remote::default()), Config::default().lanes(lanes))?;
        let input = driver.input::<String, String>("in");
        let mut rng = Rng(0x5eed + lanes as u64);
        let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut records = Vec::new();
        for i in 0..400 {
            let key = format!("k{}", rng.next() % 23);
            let delay = rng.next() % 4;
            records.push((key.clone(), format!("r{i}:{delay}")));
            expected.entry(key).or_default().push(format!("r{i}=R{i}"));
        }
        input.pipe_all(records)?;
        let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in driver.output::<String, String>("out").read_key_values()? {
            got.entry(k).or_default().push(v);
        }
        assert_eq!(got, expected, "{lanes} lanes: every record once, in its key's order");
    }
    Ok(())
}

#[test]
fn calls_of_different_keys_overlap_up_to_the_concurrency_and_the_limit() -> stoat::Result<()> {
    // One lane, concurrency 8: 8 calls at once at most, and more than 1.
    let remote = Arc::new(Remote::default());
    let topology = Topology::new("async-overlap");
    topology.provide(SharedRemote(Arc::clone(&remote)));
    topology.stream::<String, String>("in").process(enrich_shared {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(1))?;
    let records: Vec<(String, String)> = (0..64).map(|i| (format!("k{i}"), format!("r{i}:20"))).collect();
    driver.input::<String, String>("in").pipe_all(records)?;
    assert_eq!(driver.output::<String, String>("out").read_values()?.len(), 64);
    let most = remote.most.load(Ordering::SeqCst);
    assert!((2..=8).contains(&most), "in flight at once on one lane: {most}");
    assert_eq!(most, 8, "64 keys of 20 ms calls fill all 8 slots");

    // Four lanes of 8, limited to 3 calls across them.
    let remote = Arc::new(Remote::default());
    let topology = Topology::new("async-limit");
    topology.provide(SharedRemote(Arc::clone(&remote)));
    topology
        .stream::<String, String>("in")
        .process_with(enrich_shared {}, AsyncSettings::DEFAULT.concurrency(8).limit(3))
        .to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(4))?;
    let records: Vec<(String, String)> = (0..48).map(|i| (format!("k{i}"), format!("r{i}:5"))).collect();
    driver.input::<String, String>("in").pipe_all(records)?;
    assert_eq!(driver.output::<String, String>("out").read_values()?.len(), 48);
    let most = remote.most.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "in flight at once across lanes, limit 3: {most}");
    Ok(())
}

/// The remote as a shared handle the test keeps too.
struct SharedRemote(std::sync::Arc<Remote>);

#[stoat::operator(concurrency = 8)]
async fn enrich_shared(value: String, remote: &Res<SharedRemote>) -> Result<String, String> {
    let (name, delay) = value.split_once(':').unwrap_or((&value, "0"));
    remote.0.lookup(name, delay.parse().unwrap_or(0)).await
}

#[test]
fn failures_are_retried_then_go_to_the_error_policy() -> stoat::Result<()> {
    // `flaky` fails twice (retries = 2: the third attempt succeeds); `down` fails always.
    for policy in [ErrorPolicy::Skip, ErrorPolicy::DeadLetter("dead".into())] {
        let remote = Remote::default();
        remote
            .fail_first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([("flaky".to_string(), 2), ("down".to_string(), usize::MAX)]);
        let driver = TestDriver::with_config(
            &enrichment(remote),
            Config::default().lanes(3).error_policy(policy.clone()),
        )?;
        let input = driver.input::<String, String>("in");
        input.pipe_all([
            ("a".to_string(), "flaky:1".to_string()),
            ("b".to_string(), "down:1".to_string()),
            ("c".to_string(), "fine:1".to_string()),
        ])?;
        let mut out = driver.output::<String, String>("out").read_values()?;
        out.sort();
        assert_eq!(out, vec!["fine=FINE".to_string(), "flaky=FLAKY".to_string()]);
        assert_eq!(driver.stats().skipped(), 1, "{policy:?}");
        if let ErrorPolicy::DeadLetter(_) = policy {
            let dead = driver.log().read_all("dead");
            assert_eq!(dead.len(), 1);
            let error = dead[0].1.headers.iter().find(|(n, _)| n == "stoat.error").map(|(_, v)| v.clone());
            let error = String::from_utf8(error.unwrap_or_default()).unwrap_or_default();
            assert!(
                error.contains("enrich")
                    && error.contains("3 attempt")
                    && error.contains("down: service unavailable"),
                "{error}"
            );
        }
    }
    Ok(())
}

#[stoat::operator(timeout = "30ms", retries = 1, backoff = "1ms")]
async fn slow(value: String, remote: &Res<Remote>) -> String {
    let delay = if value == "stuck" { 10_000 } else { 1 };
    remote.lookup(&value, delay).await.unwrap_or_default()
}

#[stoat::operator(retries = 5)]
async fn panics(value: String, remote: &Res<Remote>) -> String {
    remote.calls.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    if value == "boom" {
        panic!("cannot enrich {value}");
    }
    value
}

#[test]
fn a_timeout_is_retried_and_a_panic_is_the_records_error_at_once() -> stoat::Result<()> {
    let topology = Topology::new("async-timeout");
    topology.provide(Remote::default());
    topology.stream::<String, String>("in").process(slow {}).to("out");
    let driver =
        TestDriver::with_config(&topology, Config::default().lanes(2).error_policy(ErrorPolicy::Skip))?;
    driver
        .input::<String, String>("in")
        .pipe_all([("a".to_string(), "stuck".to_string()), ("b".to_string(), "quick".to_string())])?;
    assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["QUICK".to_string()]);
    assert_eq!(driver.stats().skipped(), 1);

    let remote = Arc::new(Remote::default());
    let topology = Topology::new("async-panic");
    topology.provide(Remote::default());
    topology.stream::<String, String>("in").process(panics {}).to("out");
    let driver =
        TestDriver::with_config(&topology, Config::default().lanes(2).error_policy(ErrorPolicy::Fail))?;
    let err = driver
        .input::<String, String>("in")
        .pipe_all([("a".to_string(), "boom".to_string())])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("panics") && err.contains("cannot enrich boom"), "{err}");
    drop(remote);
    Ok(())
}

#[stoat::state]
struct Totals {
    per_key: Table<u64, u64>,
}

#[stoat::operator]
fn total(#[key] key: &u64, n: u64, totals: &mut Totals) -> Result<u64, StoreError> {
    let sum = totals.per_key.get(key)?.unwrap_or(0) + n;
    totals.per_key.put(*key, sum)?;
    Ok(sum)
}

/// Passes the value on after an await of 0-2 ms (by offset), so calls finish out of order.
#[stoat::operator(concurrency = 16)]
async fn later(n: u64, ctx: &Context) -> u64 {
    tokio::time::sleep(Duration::from_micros(ctx.offset() % 3 * 700)).await;
    n
}

/// Every record of `topic` on the embedded log, decoded, partition by partition.
fn read_topic<K: 'static, V: 'static>(log: &EmbeddedLog, topic: &Topic<K, V>) -> stoat::Result<Vec<(K, V)>> {
    let (keys, values) = (topic.key_codec(), topic.value_codec());
    let decode_error = |e: stoat::DecodeError| stoat::Error::Runtime(e.to_string());
    log.read_all(topic.name())
        .into_iter()
        .map(|(_, r)| {
            Ok((
                keys.decode(r.key.as_deref()).map_err(decode_error)?,
                values.decode(r.value.as_deref()).map_err(decode_error)?,
            ))
        })
        .collect()
}

const IN: Topic<u64, u64> = Topic::new("in");
const OUT: Topic<u64, u64> = Topic::new("out");

#[test]
fn epochs_aborted_with_calls_in_flight_are_replayed_exactly() -> stoat::Result<()> {
    // Transient log errors abort epochs while calls are in flight; their records are read again.
    // Every key's running totals must still be exactly 1, 2, ..., n on any number of lanes.
    for lanes in LANES {
        let log = Arc::new(EmbeddedLog::new(3));
        for n in 0..6_000u64 {
            log.send(&IN, &(n % 61), &1).map_err(|e| stoat::Error::Runtime(e.to_string()))?;
        }
        let topology = Topology::new("async-flaky");
        topology.source(&IN).process(later {}).process(total {}).sink(&OUT);
        let flaky = Flaky::new(log.connect("async-flaky"), vec![2, 4, 7], vec![3, 11]);
        let config = Config::default().lanes(lanes).commit_max_records(700);
        let stats = App::with_log(&topology, config, Arc::new(flaky))?.run_until_idle()?;
        assert!(stats.epoch_retries >= 3, "{stats:?}");
        let mut last = HashMap::new();
        for (key, total) in read_topic(&log, &OUT)? {
            let prev = last.insert(key, total).unwrap_or(0);
            assert_eq!(total, prev + 1, "{lanes} lanes, key {key}");
        }
        assert_eq!(last.values().sum::<u64>(), 6_000, "{lanes} lanes");
    }
    Ok(())
}

/// An operator with settings, whose async method re-keys: words move to the lanes owning them.
struct Tokenizer {
    min_len: usize,
}

#[stoat::operator(concurrency = 4)]
impl Tokenizer {
    async fn words(&self, line: String, ctx: &Context) -> Vec<KeyValue<String, u64>> {
        tokio::time::sleep(Duration::from_micros(ctx.offset() % 4 * 300)).await;
        line.split_whitespace()
            .filter(|w| w.len() >= self.min_len)
            .map(|w| KeyValue::new(w.to_string(), 1))
            .collect()
    }
}

#[stoat::state]
struct WordCounts {
    per_word: Table<String, u64>,
}

#[stoat::operator]
fn count(#[key] word: &str, n: u64, counts: &mut WordCounts) -> Result<u64, StoreError> {
    let total = counts.per_word.get(word)?.unwrap_or(0) + n;
    counts.per_word.put(word.to_owned(), total)?;
    Ok(total)
}

#[test]
fn an_async_method_that_re_keys_feeds_state_on_the_owning_lanes() -> stoat::Result<()> {
    let mut rng = Rng(99);
    let words = ["ox", "stoat", "lane", "epoch", "a", "kafka", "join"];
    let lines: Vec<String> = (0..300)
        .map(|_| {
            (0..6).map(|_| words[(rng.next() % words.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    for w in lines.iter().flat_map(|l| l.split_whitespace()).filter(|w| w.len() >= 2) {
        *model.entry(w.to_string()).or_default() += 1;
    }
    for lanes in LANES {
        let topology = Topology::new("async-rekey");
        topology
            .stream::<(), String>("lines")
            .process(Tokenizer { min_len: 2 })
            .process(count {})
            .to("counts");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        driver.input::<(), String>("lines").pipe_values(lines.clone())?;
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for (word, n) in driver.output::<String, u64>("counts").read_key_values()? {
            let prev = last.insert(word.clone(), n).unwrap_or(0);
            assert_eq!(n, prev + 1, "{lanes} lanes: `{word}` counts up one by one");
        }
        assert_eq!(last, model, "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn a_missing_resource_and_bad_settings_are_topology_errors() {
    let topology = Topology::new("async-missing");
    topology.stream::<String, String>("in").process(enrich {}).to("out");
    let err = TestDriver::new(&topology).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("`enrich`")
            && err.contains("Res<")
            && err.contains("Remote")
            && err.contains("topology.provide"),
        "{err}"
    );

    let topology = Topology::new("async-twice");
    topology.provide(Remote::default()).provide(Remote::default());
    topology.stream::<String, String>("in").process(enrich {}).to("out");
    let err = TestDriver::new(&topology).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("twice") && err.contains("Remote"), "{err}");

    let topology = Topology::new("async-zero");
    topology.provide(Remote::default());
    topology
        .stream::<String, String>("in")
        .process_with(enrich {}, AsyncSettings::DEFAULT.concurrency(0))
        .to("out");
    let err = TestDriver::new(&topology).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`enrich`") && err.contains("concurrency"), "{err}");

    let err =
        Harness::<_, String, String, _>::new(enrich {}).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`enrich` is async") && err.contains("TestDriver"), "{err}");

    let topology = Topology::new("async-not");
    topology.stream::<u64, u64>("in").process_with(total {}, AsyncSettings::DEFAULT).to("out");
    let err = TestDriver::new(&topology).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`total` is not async"), "{err}");
}

#[stoat::operator(concurrency = 16)]
async fn tag(#[key] _key: &str, seq: u64) -> u64 {
    tokio::time::sleep(Duration::from_micros(seq % 7 * 150)).await;
    seq
}

#[test]
fn each_keys_order_holds_with_more_records_waiting_than_calls_in_flight() -> stoat::Result<()> {
    // Far more records than calls in flight: most wait for a worker, behind others of their key
    // or not. Each key's records must still come out in input order, on 4 input partitions.
    let log = Arc::new(EmbeddedLog::new(4));
    let input: Topic<String, u64> = Topic::new("in");
    let mut rng = Rng(42);
    for seq in 0..30_000u64 {
        log.send(&input, &format!("key-{}", rng.next() % 3_000), &seq)
            .map_err(|e| stoat::Error::Runtime(e.to_string()))?;
    }
    let topology = Topology::new("async-waiting");
    topology.source(&input).process(tag {}).to("out");
    App::embedded_on(&topology, Config::default().lanes(2), Arc::clone(&log))?.run_until_idle()?;
    let out: Topic<String, u64> = Topic::new("out");
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut n = 0;
    for (key, seq) in read_topic(&log, &out)? {
        if let Some(prev) = last.insert(key.clone(), seq) {
            assert!(prev < seq, "{key}: {seq} after {prev}");
        }
        n += 1;
    }
    assert_eq!(n, 30_000);
    Ok(())
}

/// Waits a minute for record 5 (a remote that never answers in time); others answer at once.
#[stoat::operator(timeout = "60s", retries = 0)]
async fn hangs(n: u64) -> u64 {
    if n == 5 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    n
}

#[test]
fn a_stop_request_is_honoured_while_a_call_hangs_and_commits_nothing_of_its_epoch() -> stoat::Result<()> {
    let topology = Topology::new("async-hangs");
    topology.stream::<(), u64>("in").process(hangs {}).to("out");
    let config = Config::default().lanes(2).shutdown_timeout(Duration::from_secs(1));
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    let input: Topic<(), u64> = Topic::new("in");
    for n in 0..100u64 {
        log.send(&input, &(), &n)?;
    }
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        trigger.trigger();
    });
    let started = std::time::Instant::now();
    let err = app.run_until_stopped(&shutdown).err().map(|e| e.to_string()).unwrap_or_default();
    // A hang guard, not a speed goal: far below the call's 60 s.
    assert!(started.elapsed() < Duration::from_secs(30), "the stop took {:?}", started.elapsed());
    assert!(err.contains("did not finish"), "{err}");
    assert!(log.read_all("out").is_empty(), "nothing of the unfinished epoch is committed");
    Ok(())
}
