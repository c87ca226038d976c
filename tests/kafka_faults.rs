//! Faults at the Kafka boundary, on one shared broker: outputs partitioned as Java clients do,
//! the Kafka log usable from a current-thread runtime, a bounded wait with a clear error when
//! the producer cannot hand records to a broker, changelog topics that are checked before use,
//! and state that no longer fits its changelog.

#[path = "../examples/word_count/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use stoat::log::{KafkaLog, Log, OutRecord};
use stoat::prelude::*;
use support::kafka::{java_partitions, Kafka};

fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Kafka> = OnceLock::new();
    KAFKA.get_or_init(Kafka::single)
}

fn run_until_idle(topology: &Topology, config: Config, kafka: KafkaConfig) -> stoat::Result<stoat::RunStats> {
    let mut app = App::kafka(topology, config, kafka)?;
    let shutdown = Shutdown::new();
    app.stop_when_idle(&shutdown, Duration::from_secs(2));
    app.run_until_stopped(&shutdown)
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
        .map_err(|source| stoat::Error::Io { what: "runtime".into(), source })?;
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
        .map_err(|source| stoat::Error::Io { what: "runtime".into(), source })?;
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
    let dir = tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), source })?;
    let config = || Config::default().lanes(2).state_dir(dir.path());
    run_until_idle(&topology, config(), KafkaConfig::new(&k.bootstrap))?;
    // The changelog is deleted and created again, empty: the state dir is ahead of it.
    k.delete_topic("recreate-per_word-changelog");
    k.create_topic_with("recreate-per_word-changelog", 1, &[("cleanup.policy", "compact")]);
    let err = App::kafka(&topology, config(), KafkaConfig::new(&k.bootstrap)).expect_err("stale state");
    assert!(matches!(err, stoat::Error::Store(StoreError::Stale { .. })), "{err:?}");
    assert!(err.to_string().contains("created again"), "{err}");
    let mut rebuild = config();
    rebuild.rebuild_foreign_state = true;
    let app = App::kafka(&topology, rebuild, KafkaConfig::new(&k.bootstrap))?;
    // Rebuilt from the (empty) changelog: the old counts are gone rather than silently kept.
    assert_eq!(app.read_state(|c: &app::Counts| c.per_word.get("alpha"))??, None);
    Ok(())
}
