//! Start-up and restore on the real broker (issue 15's targets): an app counts `N` distinct keys
//! (default 1,000,000) into a store, exactly-once; then it is started again three ways and timed
//! from `App::kafka` to the first output of a fresh record committed:
//!
//! - with an empty state and nothing to restore (another app on an empty input topic),
//! - with its state directory intact (a restart after a clean stop: no replay),
//! - with its state directory lost (the store replayed from its changelog: the restore rate).
//!
//! `cargo bench --features kafka --bench restore [-- N]`. It provisions Kafka 4.4 like the
//! tests (`tests/kafka/broker.sh`). Results are printed, not asserted. RSS is the bench
//! process's, which also loaded the input: not an app's idle RSS.

#[path = "../tests/support/kafka.rs"]
mod kafka;

use std::time::{Duration, Instant};

use stoat::prelude::*;

const INPUT: &str = "restore-in";
const EMPTY_INPUT: &str = "restore-empty-in";
const OUTPUT: &str = "restore-out";
/// How long a run goes on idle before it stops.
const IDLE: Duration = Duration::from_millis(200);

fn topology(app: &str, input: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream::<String, u64>(input).group_by_key().count("seen").to(OUTPUT);
    topology
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Waits (on a thread of its own) for the first committed record keyed `marker` in `OUTPUT`,
/// read from the topic's end as it is now; returns when it came.
fn watch(k: &kafka::Kafka, marker: &str) -> std::thread::JoinHandle<Option<Instant>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &k.bootstrap)
        .set("group.id", "restore-bench-watch")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("a consumer");
    let metadata = consumer.fetch_metadata(Some(OUTPUT), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())) {
        let (_, high) = consumer.fetch_watermarks(OUTPUT, p, Duration::from_secs(10)).expect("watermarks");
        tpl.add_partition_offset(OUTPUT, p, Offset::Offset(high)).expect("a partition");
    }
    consumer.assign(&tpl).expect("assigned");
    let marker = marker.as_bytes().to_vec();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(5)) {
                if m.key() == Some(&marker[..]) {
                    return Some(Instant::now());
                }
            }
        }
        None
    })
}

/// Starts `app` (reading `input`) over `dir`, produces one fresh record, and times the start
/// (restore included) and the commit of that record's output. Returns (opened, first output,
/// RSS MiB once opened).
fn start(
    k: &kafka::Kafka,
    app: &str,
    input: &str,
    dir: &std::path::Path,
    marker: &str,
) -> stoat::Result<(Duration, Duration, f64)> {
    let config = Config::default().state_dir(dir);
    // The fresh record is in the input before the app starts, as a restarted app finds it.
    k.produce(input, [(Some(marker.as_bytes().to_vec()), 1u64.to_be_bytes().to_vec())]);
    let seen = watch(k, marker);
    let began = Instant::now();
    let mut running = App::kafka(&topology(app, input), config, KafkaConfig::new(&k.bootstrap))?;
    let opened = began.elapsed();
    let rss = rss_mib();
    let shutdown = Shutdown::new();
    running.stop_when_idle(&shutdown, IDLE);
    running.run_until_stopped(&shutdown)?;
    match seen.join().ok().flatten() {
        Some(at) => Ok((opened, at.duration_since(began), rss)),
        None => Err(stoat::Error::Runtime(format!("{app}: the fresh record's output never came"))),
    }
}

fn main() -> stoat::Result<()> {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let k = kafka::Kafka::single();
    k.create_topic(INPUT, 4);
    k.create_topic(EMPTY_INPUT, 4);
    let keys = (0..n).map(|i| (Some(format!("key-{i:08}").into_bytes()), 1u64.to_be_bytes().to_vec()));
    k.produce(INPUT, keys);
    let dir = tempfile::tempdir().map_err(|e| stoat::Error::Runtime(e.to_string()))?;
    let loaded = Instant::now();
    kafka::run_until_idle(
        &topology("restore-bench", INPUT),
        Config::default().state_dir(dir.path()),
        KafkaConfig::new(&k.bootstrap),
        Duration::from_secs(600),
    )?;
    println!("restore: {n} keys counted into a store in {:?}", loaded.elapsed());

    let empty = tempfile::tempdir().map_err(|e| stoat::Error::Runtime(e.to_string()))?;
    let (opened, first, idle) = start(&k, "restore-bench-empty", EMPTY_INPUT, empty.path(), "fresh-0")?;
    println!("empty state:         opened in {opened:?}, first output committed after {first:?}, RSS {idle:.1} MiB");
    let (intact, first, idle) = start(&k, "restore-bench", INPUT, dir.path(), "fresh-1")?;
    println!("{n} keys, intact:     opened in {intact:?}, first output committed after {first:?}, RSS {idle:.1} MiB");
    std::fs::remove_dir_all(dir.path()).map_err(|e| stoat::Error::Runtime(e.to_string()))?;
    let (opened, first, idle) = start(&k, "restore-bench", INPUT, dir.path(), "fresh-2")?;
    // The replay is what opening without the state costs more than opening with it.
    let replay = opened.saturating_sub(intact);
    println!(
        "{n} keys, state lost: opened (restored) in {opened:?}: {:.0} changelog records/s over the whole start, {:.0} over the replay ({replay:?}); first output committed after {first:?}, RSS {idle:.1} MiB",
        n as f64 / opened.as_secs_f64(),
        n as f64 / replay.as_secs_f64().max(1e-9),
    );
    Ok(())
}
