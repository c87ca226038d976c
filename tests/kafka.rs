//! stoat on a real Apache Kafka 4.4.0 broker (started by the test from the Maven-provisioned
//! jars, shared by the tests of this file): word count end to end under exactly-once, fencing of
//! a second instance, and configuration errors; and the faults
//! at the Kafka boundary: outputs partitioned as Java clients do, the Kafka log usable from a
//! current-thread runtime, a bounded wait with a clear error when the producer cannot reach a
//! broker, a record the broker refuses, changelog topics checked before use, and state that no
//! longer fits its changelog.

#[path = "../examples/word_count/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use stoat::log::{KafkaLog, Log, OutRecord};
use stoat::prelude::*;
use support::kafka::{check_word_counts, java_partitions, word_count_bin, Kafka};
use support::orders::topology as orders;

fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Kafka> = OnceLock::new();
    KAFKA.get_or_init(Kafka::single)
}

/// [`support::kafka::run_until_idle`] within two minutes.
fn run_until_idle(topology: &Topology, config: Config, kafka: KafkaConfig) -> stoat::Result<stoat::RunStats> {
    support::kafka::run_until_idle(topology, config, kafka, Duration::from_secs(120))
}

#[test]
fn word_count_is_exactly_once_across_partitions_and_lanes() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("e2e-lines", 4);
    k.create_topic("e2e-counts", 3);
    let corpus = support::zipf_corpus(5, 30_000, 2_000);
    let oracle = support::oracle(&corpus);
    let (first, second) = corpus.split_at(17_000);
    k.produce_lines("e2e-lines", first);
    let topology = app::topology_for("e2e", "e2e-lines", "e2e-counts");
    // Two runs on one state dir, then a third on a fresh one (state restored from the changelog).
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    run_until_idle(
        &topology,
        Config::default().lanes(7).state_dir(dir.path()),
        KafkaConfig::new(&k.bootstrap),
    )?;
    k.produce_lines("e2e-lines", &second[..6_000]);
    run_until_idle(
        &topology,
        Config::default().lanes(7).state_dir(dir.path()),
        KafkaConfig::new(&k.bootstrap),
    )?;
    k.produce_lines("e2e-lines", &second[6_000..]);
    let stats = run_until_idle(&topology, Config::default().lanes(7), KafkaConfig::new(&k.bootstrap))?;
    assert!(stats.records_in > 0);
    let outputs = k.read_committed("e2e-counts");
    check_word_counts(&outputs, &oracle).map_err(stoat::Error::Runtime)?;
    Ok(())
}

#[test]
fn a_second_instance_fences_the_first() {
    let k = kafka();
    k.create_topic("fence-lines", 2);
    k.create_topic("fence-counts", 2);
    let corpus = support::zipf_corpus(9, 12_000, 500);
    let oracle = support::oracle(&corpus);
    let spawn = |idle: Option<&str>| {
        let mut cmd = Command::new(word_count_bin());
        cmd.args(["--bootstrap", &k.bootstrap, "--input", "fence-lines", "--output", "fence-counts"])
            .args(["--app-id", "fence", "--lanes", "3"]);
        if let Some(secs) = idle {
            cmd.args(["--exit-when-idle", secs]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn word_count")
    };
    let first = spawn(None);
    k.produce_lines("fence-lines", &corpus[..4_000]);
    std::thread::sleep(Duration::from_secs(3));
    let second = spawn(Some("3"));
    // Keep input flowing so the first instance tries to commit after it was fenced.
    for chunk in corpus[4_000..].chunks(1_000) {
        k.produce_lines("fence-lines", chunk);
        std::thread::sleep(Duration::from_millis(300));
    }
    let first = first.wait_with_output().expect("first instance");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "the fenced instance fails");
    assert!(stderr.contains("was fenced") && stderr.contains("`fence`"), "{stderr}");
    let second = second.wait_with_output().expect("second instance");
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let outputs = k.read_committed("fence-counts");
    if let Err(e) = check_word_counts(&outputs, &oracle) {
        panic!("{e}");
    }
}

#[test]
fn bad_kafka_settings_are_refused_by_name() {
    let k = kafka();
    let topology = orders("cfg", "cfg-in");
    let err =
        App::kafka(&topology, Config::default(), KafkaConfig::new(&k.bootstrap).set("no.such.property", "1"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    assert!(err.contains("`no.such.property`"), "{err}");
    let err = App::kafka(&topology, Config::default(), KafkaConfig::new(&k.bootstrap).set("group.id", "x"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("`group.id` is set by stoat"), "{err}");
}

#[test]
fn an_unreachable_broker_is_a_clear_error() {
    let topology = orders("unreachable", "nowhere");
    let mut kafka = KafkaConfig::new("127.0.0.1:1");
    kafka.timeout = Duration::from_secs(5);
    let err =
        App::kafka(&topology, Config::default(), kafka).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("initialising transactions failed"), "{err}");
    assert!(err.contains("bootstrap servers `127.0.0.1:1`"), "the error names the address: {err}");
}

#[test]
fn partitions_added_while_running_are_picked_up() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("grow-lines", 1);
    k.create_topic("grow-counts", 1);
    let corpus = support::zipf_corpus(31, 3_000, 300);
    let oracle = support::oracle(&corpus);
    k.produce_to("grow-lines", 0, &corpus[..1_000]);
    let bootstrap = k.bootstrap.clone();
    let runner = std::thread::spawn(move || {
        let topology = app::topology_for("grow", "grow-lines", "grow-counts");
        let mut app = App::kafka(&topology, Config::default().lanes(3), KafkaConfig::new(&bootstrap))?;
        let shutdown = Shutdown::new();
        app.stop_when_idle(&shutdown, Duration::from_secs(8));
        app.run_until_stopped(&shutdown)
    });
    std::thread::sleep(Duration::from_secs(3));
    k.add_partitions("grow-lines", 3);
    k.produce_to("grow-lines", 1, &corpus[1_000..2_000]);
    k.produce_to("grow-lines", 2, &corpus[2_000..]);
    let stats = runner.join().map_err(|_| stoat::Error::Runtime("the app thread panicked".into()))??;
    assert_eq!(stats.records_in, 3_000);
    check_word_counts(&k.read_committed("grow-counts"), &oracle).map_err(stoat::Error::Runtime)?;
    Ok(())
}

#[test]
fn at_least_once_mode_counts_without_transactions() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("alo-lines", 2);
    k.create_topic("alo-counts", 2);
    let corpus = support::zipf_corpus(37, 5_000, 400);
    let oracle = support::oracle(&corpus);
    k.produce_lines("alo-lines", &corpus);
    let topology = app::topology_for("alo", "alo-lines", "alo-counts");
    let kafka = KafkaConfig::new(&k.bootstrap).guarantee(Guarantee::AtLeastOnce);
    run_until_idle(&topology, Config::default().lanes(3), kafka)?;
    // No crash happened, so even at-least-once delivered everything exactly once.
    check_word_counts(&k.read_committed("alo-counts"), &oracle).map_err(stoat::Error::Runtime)?;
    Ok(())
}

#[test]
fn sigterm_commits_the_open_epoch_and_exits_zero() {
    let k = kafka();
    k.create_topic("term-lines", 2);
    k.create_topic("term-counts", 2);
    let corpus = support::zipf_corpus(41, 6_000, 400);
    let oracle = support::oracle(&corpus);
    k.produce_lines("term-lines", &corpus);
    let http = support::http::free_addr();
    let mut child = Command::new(word_count_bin())
        .args([
            "--bootstrap",
            &k.bootstrap,
            "--input",
            "term-lines",
            "--output",
            "term-counts",
            "--app-id",
            "term",
            "--http",
            &http.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn word_count");
    let started = Instant::now();
    #[cfg(feature = "http")]
    {
        // The example with its HTTP endpoints on: ready while it runs, its metrics scraped and
        // its store queried while it processes.
        use support::http::request;
        while request(http, "GET", "/health/ready").map(|(s, _)| s).unwrap_or(0) != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "word_count never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (status, metrics) = request(http, "GET", "/metrics").expect("a scrape");
        assert_eq!(status, 200);
        let scrape = prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string())))
            .expect("Prometheus text");
        assert!(scrape
            .samples
            .iter()
            .any(|s| s.metric == "stoat_phase" && s.labels.get("phase") == Some("running")));
        let top = oracle.iter().max_by_key(|(_, n)| **n).map(|(w, n)| (w.clone(), *n)).expect("words");
        let (status, body) =
            request(http, "GET", &format!("/stores/per_word/keys/{}", support::http::encode(&top.0)))
                .expect("a query");
        if status == 200 {
            let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert!(value["value"].as_u64().is_some_and(|n| n <= top.1), "{body} against {top:?}");
        } else {
            assert_eq!(status, 404, "not counted yet, or a count: {body}");
        }
    }
    std::thread::sleep(Duration::from_secs(6).saturating_sub(started.elapsed()));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "word_count did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "a SIGTERM stop exits 0");
    check_word_counts(&k.read_committed("term-counts"), &oracle).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn outputs_land_on_the_partitions_java_clients_choose() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("java-in", 1);
    k.create_topic("java-out", 7);
    let keys: Vec<String> = (0..300).map(|i| format!("customer-{i}-{}", i * 7919 % 1000)).collect();
    k.produce("java-in", keys.iter().map(|key| (Some(key.clone().into_bytes()), key.clone().into_bytes())));
    let topology = Topology::new("java-partitions");
    topology.stream::<String, String>("java-in").to("java-out");
    run_until_idle(&topology, Config::default().lanes(3), KafkaConfig::new(&k.bootstrap))?;
    let expected = java_partitions(&keys, 7);
    let by_key: std::collections::HashMap<String, i32> = keys.iter().cloned().zip(expected).collect();
    let outputs = k.read_committed_by_partition("java-out");
    assert_eq!(outputs.len(), keys.len());
    for (partition, (key, _, _)) in &outputs {
        let key = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        assert_eq!(Some(partition), by_key.get(&key), "key {key}");
    }
    // The embedded log partitions the same way.
    let log = Arc::new(stoat::log::EmbeddedLog::new(7));
    for key in &keys {
        let (p, _) = log.produce("t", Some(key.clone().into_bytes()), None, 0, Vec::new());
        assert_eq!(Some(&(p as i32)), by_key.get(key), "embedded, key {key}");
    }
    Ok(())
}

#[test]
fn the_kafka_log_connects_from_a_current_thread_runtime() -> stoat::Result<()> {
    let k = kafka();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| stoat::Error::Io { what: "runtime".into(), cause: source })?;
    let log =
        runtime.block_on(KafkaLog::connect("current-thread", &["counts"], KafkaConfig::new(&k.bootstrap)))?;
    let sent = runtime.block_on(log.append(vec![OutRecord {
        topic: Arc::from("current-thread-out"),
        key: Some(b"k".to_vec()),
        value: Some(b"v".to_vec()),
        timestamp: 1,
        headers: Vec::new(),
    }]));
    sent?;
    log.commit("current-thread", &[])?;
    assert_eq!(k.read_committed("current-thread-out").len(), 1);
    Ok(())
}

#[test]
fn a_producer_that_cannot_reach_a_broker_fails_in_bounded_time_with_a_clear_error() -> stoat::Result<()> {
    // Nothing listens on port 1; at-least-once needs no broker to connect.
    let mut config = KafkaConfig::new("127.0.0.1:1")
        .guarantee(Guarantee::AtLeastOnce)
        .set("queue.buffering.max.messages", "10");
    config.timeout = Duration::from_secs(2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| stoat::Error::Io { what: "runtime".into(), cause: source })?;
    let log = runtime.block_on(KafkaLog::connect("unreachable", &[], config))?;
    let records: Vec<OutRecord> = (0..100)
        .map(|i| OutRecord {
            topic: Arc::from("nowhere"),
            key: None,
            value: Some(vec![i]),
            timestamp: 1,
            headers: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    let err = runtime.block_on(log.append(records)).expect_err("the queue stays full");
    assert!(started.elapsed() < Duration::from_secs(20), "waited {:?}", started.elapsed());
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("queue stayed full"), "{err}");
    Ok(())
}

#[test]
fn changelog_topics_with_the_wrong_shape_are_refused_by_name() {
    let k = kafka();
    // `word_count`'s store is `per_word`: its changelog is `<app>-per_word-changelog`.
    k.create_topic_with("shape-parts-per_word-changelog", 3, &[("cleanup.policy", "compact")]);
    k.create_topic("shape-parts-lines", 1);
    let topology = app::topology_for("shape-parts", "shape-parts-lines", "shape-parts-counts");
    let err = App::kafka(&topology, Config::default().lanes(2), KafkaConfig::new(&k.bootstrap))
        .expect_err("three partitions");
    assert!(err.to_string().contains("`shape-parts-per_word-changelog` has 3 partitions"), "{err}");

    k.create_topic_with("shape-policy-per_word-changelog", 1, &[("cleanup.policy", "delete")]);
    let topology = app::topology_for("shape-policy", "shape-parts-lines", "shape-parts-counts");
    let err = App::kafka(&topology, Config::default().lanes(2), KafkaConfig::new(&k.bootstrap))
        .expect_err("not compacted");
    assert!(err.to_string().contains("cleanup.policy=delete"), "{err}");
}

#[test]
fn state_ahead_of_a_recreated_changelog_is_refused_or_rebuilt_on_request() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("recreate-lines", 2);
    let lines: Vec<String> = (0..200).map(|i| format!("alpha beta w{}", i % 17)).collect();
    k.produce_lines("recreate-lines", &lines);
    let topology = app::topology_for("recreate", "recreate-lines", "recreate-counts");
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    let config = || Config::default().lanes(2).state_dir(dir.path());
    run_until_idle(&topology, config(), KafkaConfig::new(&k.bootstrap))?;
    // The changelog is deleted and created again, empty: the state dir is ahead of it.
    k.delete_topic("recreate-per_word-changelog");
    k.create_topic_with("recreate-per_word-changelog", 1, &[("cleanup.policy", "compact")]);
    let err = App::kafka(&topology, config(), KafkaConfig::new(&k.bootstrap)).expect_err("stale state");
    assert!(matches!(err, stoat::Error::Store(StoreError::Stale { .. })), "{err:?}");
    assert!(err.to_string().contains("created again"), "{err}");
    let app = App::kafka(&topology, config().rebuild_foreign_state(true), KafkaConfig::new(&k.bootstrap))?;
    // Rebuilt from the (empty) changelog: the old counts are gone rather than silently kept.
    assert_eq!(app.read_state(|c: &app::Counts| c.per_word.get("alpha"))??, None);
    Ok(())
}

/// Copies the files of a state directory but its locks: the state as an older flush left it.
fn snapshot(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && !name.to_string_lossy().contains("lock") {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

#[test]
fn state_rolled_back_to_an_older_flush_is_repaired_from_the_changelog() -> stoat::Result<()> {
    // An OS crash loses the commits LMDB had not flushed (it flushes about once a second): the
    // state directory goes back to an older flush, while Kafka has every commit. The restart
    // replays the changelog from the offsets the old state recorded: the counts stay exact.
    let k = kafka();
    k.create_topic("rollback-lines", 2);
    let topology = app::topology_for("rollback", "rollback-lines", "rollback-counts");
    let io = |source| stoat::Error::Io { what: "state directory".into(), cause: source };
    let (dir, old) = (tempfile::tempdir().map_err(io)?, tempfile::tempdir().map_err(io)?);
    let config = || Config::default().lanes(2).state_dir(dir.path());
    let mut all: Vec<String> = Vec::new();
    for round in 0..4 {
        let lines: Vec<String> = (0..150).map(|i| format!("r{round} w{} common", i % 23)).collect();
        k.produce_lines("rollback-lines", &lines);
        all.extend(lines);
        if round == 3 {
            // The crash: rounds 1 and 2 are gone from the state directory.
            std::fs::remove_dir_all(dir.path()).map_err(io)?;
            snapshot(old.path(), dir.path()).map_err(io)?;
        }
        let stats = run_until_idle(&topology, config(), KafkaConfig::new(&k.bootstrap))?;
        if round == 0 {
            snapshot(dir.path(), old.path()).map_err(io)?;
        }
        if round == 3 {
            // Rounds 1 and 2 changed 24 words each (23 `w`s are shared, `r1`/`r2` are new).
            assert!(stats.restored >= 48, "the lost commits were replayed: {stats:?}");
        }
    }
    let app = App::kafka(&topology, config(), KafkaConfig::new(&k.bootstrap))?;
    let oracle = support::oracle(&all);
    for (word, n) in &oracle {
        assert_eq!(app.read_state(|c: &app::Counts| c.per_word.get(word))??, Some(*n), "{word}");
    }
    check_word_counts(&k.read_committed("rollback-counts"), &oracle).map_err(stoat::Error::Runtime)?;
    Ok(())
}

#[test]
fn a_record_the_broker_refuses_stops_the_app_and_commits_nothing() {
    let k = kafka();
    k.create_topic("huge-in", 1);
    // The output topic takes records of at most 1 KB; the app writes 64 KB values.
    k.create_topic_with("huge-out", 1, &[("max.message.bytes", "1024")]);
    k.produce("huge-in", (0..20u32).map(|i| (Some(i.to_string().into_bytes()), vec![b'x'; 64 * 1024])));
    let topology = Topology::new("huge");
    topology.stream_with("huge-in", RawBytes, RawBytes).to_with("huge-out", RawBytes, RawBytes);
    let err = run_until_idle(&topology, Config::default().lanes(2), KafkaConfig::new(&k.bootstrap))
        .expect_err("the broker refuses the records");
    // Not retried as if it were transient: it names the topic and why.
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    assert!(text.contains("huge-out") && text.contains("too large"), "{text}");
    assert!(k.read_committed("huge-out").is_empty(), "nothing of the failed epoch is visible");
}

#[test]
fn state_older_than_the_changelog_keeps_deletes_is_rebuilt_from_the_start() -> stoat::Result<()> {
    let k = kafka();
    // Tombstones are kept for 1 s only: state last committed longer ago may have missed some.
    k.create_topic_with(
        "aged-per_word-changelog",
        1,
        &[("cleanup.policy", "compact"), ("delete.retention.ms", "1000")],
    );
    k.create_topic("aged-lines", 1);
    let topology = app::topology_for("aged", "aged-lines", "aged-counts");
    let kafka_config = || KafkaConfig::new(&k.bootstrap);
    let old =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    let other =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    // Many words into the old directory's state ...
    let many: Vec<String> = (0..300).map(|i| format!("w{i} x{i} y{i}")).collect();
    k.produce_lines("aged-lines", &many);
    run_until_idle(&topology, Config::default().lanes(2).state_dir(old.path()), kafka_config())?;
    // ... a few more through another directory (which restores everything first) ...
    k.produce_lines("aged-lines", &["late words".to_string()]);
    let elsewhere =
        run_until_idle(&topology, Config::default().lanes(2).state_dir(other.path()), kafka_config())?;
    std::thread::sleep(Duration::from_millis(1_500));
    // ... then the old directory again, older than the retention: not patched with the short
    // tail, rebuilt from the start (at least what the other directory restored).
    let app = App::kafka(&topology, Config::default().lanes(2).state_dir(old.path()), kafka_config())?;
    let rebuilt = app.stats();
    assert!(rebuilt.restored >= elsewhere.restored, "{} < {}", rebuilt.restored, elsewhere.restored);
    assert_eq!(app.read_state(|c: &app::Counts| c.per_word.get("late"))??, Some(1));
    assert_eq!(app.read_state(|c: &app::Counts| c.per_word.get("w7"))??, Some(1));
    Ok(())
}

#[test]
fn an_app_on_kafka_starts_runs_and_drops_inside_async_code() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("async-lines", 2);
    let corpus = support::zipf_corpus(41, 2_000, 300);
    let oracle = support::oracle(&corpus);
    k.produce_lines("async-lines", &corpus);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| stoat::Error::Io { what: "runtime".into(), cause: source })?;
    runtime.block_on(async {
        let topology = app::topology_for("async-kafka", "async-lines", "async-counts");
        let mut app = App::kafka(&topology, Config::default().lanes(2), KafkaConfig::new(&k.bootstrap))?;
        let stop = app.handle().shutdown().clone();
        app.stop_when_idle(&stop, Duration::from_secs(2));
        app.run().await?;
        drop(app);
        Ok::<_, stoat::Error>(())
    })?;
    check_word_counts(&k.read_committed("async-counts"), &oracle).map_err(stoat::Error::Runtime)?;
    Ok(())
}

/// `TYPE VALUE HEX` for `JavaSerdes.java`: a value as stoat's default codec writes it.
fn serde_line<T: stoat::codec::DefaultCodec + std::fmt::Display>(java_type: &str, value: T) -> String
where
    T::Codec: stoat::codec::Codec<T>,
{
    use stoat::codec::Codec;
    let bytes = T::Codec::default().encode(&value).ok().flatten().unwrap_or_default();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{java_type} {value} {hex}")
}

#[test]
fn default_codecs_write_what_kafkas_java_serdes_read_and_write() {
    let lines = [
        serde_line("long", 42i64),
        serde_line("long", -1i64),
        serde_line("long", i64::MIN),
        serde_line("long", 7u64),
        serde_line("int", 123_456i32),
        serde_line("int", -2i32),
        serde_line("short", -300i16),
        serde_line("double", 1.5f64),
        serde_line("double", -0.25f64),
        serde_line("float", 2.5f32),
        serde_line("boolean", true),
        serde_line("boolean", false),
        serde_line("string", "grüß".to_string()),
    ];
    let out = support::kafka::run_java("JavaSerdes.java", &[], &(lines.join("\n") + "\n"));
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), lines.len(), "{out}");
    for (line, answer) in lines.iter().zip(answers) {
        let mut ours = line.split(' ');
        let (_, value, hex) = (ours.next(), ours.next().unwrap_or(""), ours.next().unwrap_or(""));
        let mut theirs = answer.split(' ');
        let (decoded, java_hex) = (theirs.next().unwrap_or(""), theirs.next().unwrap_or(""));
        // Java reads stoat's bytes as the value, and writes the same bytes itself.
        assert_eq!(decoded, value, "{line} -> {answer}");
        assert_eq!(java_hex, hex, "{line} -> {answer}");
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Customer {
    name: String,
}

fn enrichment() -> Topology {
    let topology = Topology::new("kt");
    let customers = topology.table(&Topic::<String, Customer>::json("kt-customers"), "customers");
    topology
        .source(&Topic::<String, String>::new("kt-orders"))
        .left_join(&customers, |order, c: Option<Customer>| {
            format!("{order} {}", c.map_or("-".into(), |c| c.name))
        })
        .to("kt-enriched");
    topology
}

#[test]
fn a_table_lost_with_its_state_directory_is_restored_from_its_changelog() -> stoat::Result<()> {
    let k = kafka();
    for t in ["kt-customers", "kt-orders", "kt-enriched"] {
        k.create_topic(t, 2);
    }
    let json = |name: &str| serde_json::to_vec(&Customer { name: name.into() }).unwrap_or_default();
    k.produce("kt-customers", [(Some(b"ann".to_vec()), json("Ann")), (Some(b"bob".to_vec()), json("Bob"))]);
    let first = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    run_until_idle(
        &enrichment(),
        Config::default().lanes(3).state_dir(first.path()),
        KafkaConfig::new(&k.bootstrap),
    )?;
    drop(first);
    k.produce(
        "kt-orders",
        [(Some(b"ann".to_vec()), b"o1".to_vec()), (Some(b"cid".to_vec()), b"o2".to_vec())],
    );
    let second = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let stats = run_until_idle(
        &enrichment(),
        Config::default().lanes(3).state_dir(second.path()),
        KafkaConfig::new(&k.bootstrap),
    )?;
    let mut out: Vec<String> = k
        .read_committed("kt-enriched")
        .iter()
        .filter_map(|(_, v, _)| v.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect();
    out.sort();
    assert_eq!(out, vec!["o1 Ann".to_string(), "o2 -".to_string()], "{stats:?}");
    assert!(stats.restored >= 2, "both customers came back from the changelog: {stats:?}");
    Ok(())
}

#[test]
fn a_global_table_written_in_transactions_is_read_to_its_end_before_other_input() -> stoat::Result<()> {
    let k = kafka();
    for (topic, partitions) in [("gt-src", 2), ("gt-countries", 2), ("gt-events", 3), ("gt-out", 2)] {
        k.create_topic(topic, partitions);
    }
    // Events first: older than every country, so in timestamp order they would come first.
    k.produce("gt-events", (0..30).map(|i| (Some(format!("e{i}").into_bytes()), b"fr".to_vec())));
    std::thread::sleep(Duration::from_millis(20));
    let countries = (0..500).map(|i| (Some(format!("c{i}").into_bytes()), b"x".to_vec()));
    k.produce("gt-src", countries.chain([(Some(b"fr".to_vec()), b"France".to_vec())]));
    // The countries topic is written by another stoat app, in transactions (commit markers
    // included), as a global table's topic often is.
    let copy = Topology::new("gt-copy");
    copy.stream::<String, String>("gt-src").to("gt-countries");
    run_until_idle(&copy, Config::default(), KafkaConfig::new(&k.bootstrap))?;

    let topology = Topology::new("gt-app");
    let countries = topology.global_table(&Topic::<String, String>::new("gt-countries"), "countries");
    topology
        .stream::<String, String>("gt-events")
        .left_join_global(
            &countries,
            |_, c| c.clone(),
            |_, c: Option<String>| c.unwrap_or_else(|| "?".into()),
        )
        .to("gt-out");
    run_until_idle(&topology, Config::default().lanes(3), KafkaConfig::new(&k.bootstrap))?;
    let names: Vec<String> = k
        .read_committed("gt-out")
        .into_iter()
        .map(|(_, v, _)| String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(names.len(), 30);
    assert!(names.iter().all(|n| n == "France"), "every event sees the whole global table: {names:?}");
    Ok(())
}

#[test]
fn stream_time_is_committed_with_the_offsets_and_survives_a_restart() -> stoat::Result<()> {
    let k = kafka();
    k.create_topic("st-clicks", 2);
    k.create_topic("st-out", 2);
    let size = Duration::from_secs(10);
    let topology = Topology::new("st-app");
    topology
        .stream::<String, u64>("st-clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(size))
        .count("window_counts")
        .to_with("st-out", TimeWindowed::new(Utf8, size), Binary::default());
    let clicks = |records: &[(&str, i64)]| {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &k.bootstrap).create().expect("producer");
        for (user, ts) in records {
            let value = 1u64.to_be_bytes();
            producer
                .send(BaseRecord::to("st-clicks").key(*user).payload(&value[..]).timestamp(*ts))
                .expect("send");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    };
    clicks(&[("a", 100_000), ("b", 130_000)]);
    let first = run_until_idle(&topology, Config::default().lanes(2), KafkaConfig::new(&k.bootstrap))?;
    assert_eq!(first.dropped_late, 0);
    clicks(&[("a", 105_000)]);
    let second = run_until_idle(&topology, Config::default().lanes(2), KafkaConfig::new(&k.bootstrap))?;
    assert_eq!(second.dropped_late, 1, "the restarted app knew stream time was 130 s");
    assert_eq!(k.read_committed("st-out").len(), 2);
    Ok(())
}

/// `/health/ready` is 503 while a lost state directory is restored from the changelog, and 200
/// once the app processes.
#[cfg(feature = "http")]
#[test]
fn readiness_is_503_while_state_restores_and_200_once_processing() -> stoat::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use support::http::{free_addr, request};
    let k = kafka();
    for t in ["rr-in", "rr-out"] {
        k.create_topic(t, 2);
    }
    // Many keys, so that replaying the changelog takes a while.
    k.produce("rr-in", (0..30_000).map(|i| (Some(format!("k{i}").into_bytes()), b"1".to_vec())));
    let topology = || {
        let t = Topology::new("rr-app");
        t.stream::<String, String>("rr-in").group_by_key().count("rr_counts").to("rr-out");
        t
    };
    let tempdir = || tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause });
    let first = tempdir()?;
    run_until_idle(
        &topology(),
        Config::default().lanes(2).state_dir(first.path()),
        KafkaConfig::new(&k.bootstrap),
    )?;
    drop(first);

    let addr = free_addr();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // Every answer that differs from the one before: (status, phase).
            let mut seen: Vec<(u16, String)> = Vec::new();
            let started = Instant::now();
            while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                if let Ok((status, body)) = request(addr, "GET", "/health/ready") {
                    let phase = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["phase"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    if seen.last() != Some(&(status, phase.clone())) {
                        seen.push((status, phase));
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    let second = tempdir()?;
    let config = Config::default().lanes(2).state_dir(second.path()).http(addr);
    let mut app = App::kafka(&topology(), config, KafkaConfig::new(&k.bootstrap))?;
    let handle = app.handle();
    let runner = std::thread::spawn(move || {
        let stop = app.handle().shutdown().clone();
        app.run_until_stopped(&stop)
    });
    let started = Instant::now();
    while handle.status().phase() != stoat::status::Phase::Running
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    handle.stop();
    let stats = runner.join().map_err(|_| stoat::Error::Runtime("the app thread panicked".into()))??;
    done.store(true, Ordering::SeqCst);
    let seen = poller.join().map_err(|_| stoat::Error::Runtime("the poller panicked".into()))?;
    assert!(stats.restored >= 30_000, "the counts came back from the changelog: {stats:?}");
    let restoring = seen.iter().position(|(s, p)| *s == 503 && p == "restoring");
    let ready = seen.iter().position(|(s, p)| *s == 200 && p == "running");
    assert!(
        restoring.is_some() && ready.is_some() && restoring < ready,
        "503 while restoring, then 200: {seen:?}"
    );
    Ok(())
}
