//! Bad input on a real Apache Kafka 4.4.0 broker (one, shared by the tests of this file): an
//! undecodable record under each error policy, and 10^5 random records, a quarter of them
//! undecodable or null in every way a producer can make them, through a stateless and a stateful
//! topology under the dead-letter policy: no panic, every valid record's output exact, every bad
//! record dead-lettered (in the same transactions) or counted as dropped.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use stoat::prelude::*;
use support::kafka::Kafka;
use support::orders::{amount, order_json, topology as orders, Order};
use support::Rng;

fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Kafka> = OnceLock::new();
    KAFKA.get_or_init(Kafka::single)
}

/// [`support::kafka::run_until_idle`] within five minutes.
fn run_until_idle(topology: &Topology, config: Config, kafka: KafkaConfig) -> stoat::Result<stoat::RunStats> {
    support::kafka::run_until_idle(topology, config, kafka, Duration::from_secs(300))
}

fn produce_orders(k: &Kafka, topic: &str) {
    k.create_topic(topic, 1);
    let good = |id: u32| order_json(id, 1);
    let mut records = Vec::new();
    for id in 0..20u32 {
        records.push((Some(id.to_string().into_bytes()), good(id)));
        if id == 7 || id == 13 {
            records.push((Some(b"bad".to_vec()), b"{not json".to_vec()));
        }
    }
    k.produce(topic, records);
}

#[test]
fn undecodable_records_stop_the_app_by_default() {
    let k = kafka();
    produce_orders(k, "bad-fail");
    let err =
        run_until_idle(&orders("bad-fail", "bad-fail"), Config::default(), KafkaConfig::new(&k.bootstrap))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    assert!(err.contains("topic `bad-fail`, partition 0, offset 8") && err.contains("json"), "{err}");
}

#[test]
fn undecodable_records_can_be_skipped_and_counted() -> stoat::Result<()> {
    let k = kafka();
    produce_orders(k, "bad-skip");
    let config = Config::default().error_policy(ErrorPolicy::Skip);
    let stats = run_until_idle(&orders("bad-skip", "bad-skip"), config, KafkaConfig::new(&k.bootstrap))?;
    assert_eq!((stats.records_in, stats.skipped_decode), (22, 2));
    assert_eq!(k.read_committed("bad-skip-amounts").len(), 20);
    Ok(())
}

#[test]
fn undecodable_records_go_to_the_dead_letter_topic_in_the_same_transaction() -> stoat::Result<()> {
    let k = kafka();
    produce_orders(k, "bad-dlq");
    let config = Config::default().error_policy(ErrorPolicy::DeadLetter("bad-dlq-dead".into()));
    let stats = run_until_idle(&orders("bad-dlq", "bad-dlq"), config, KafkaConfig::new(&k.bootstrap))?;
    assert_eq!(stats.skipped_decode, 2);
    let dead = k.read_committed("bad-dlq-dead");
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].1.as_deref(), Some(&b"{not json"[..]), "the record as it was read");
    assert_eq!(dead[0].2.get("stoat.offset").map(Vec::as_slice), Some(&b"8"[..]));
    assert!(String::from_utf8_lossy(&dead[0].2["stoat.error"]).contains("json"));
    assert_eq!(k.read_committed("bad-dlq-amounts").len(), 20);
    Ok(())
}

#[stoat::operator]
fn per_customer(#[key] _customer: &str, order: Order, totals: &mut Keyed<i64>) -> Result<i64, StoreError> {
    let sum = totals.get()?.unwrap_or(0) + order.amount;
    totals.set(sum)?;
    Ok(sum)
}

/// What a random record is, as the source will read it (key first: a null key drops the record,
/// an undecodable one is bad; then the value likewise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Valid,
    Bad,
    Null,
}

/// A random record: a valid order for customer `c<n>` most of the time, otherwise one of the ways
/// a record goes wrong.
fn random_record(rng: &mut Rng, id: u32) -> (Option<Vec<u8>>, Option<Vec<u8>>, Kind) {
    let key = Some(format!("c{}", rng.below(50)).into_bytes());
    let junk = |rng: &mut Rng, n: usize| (0..n).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>();
    match rng.below(16) {
        0 => {
            let len = 1 + rng.below(40);
            (key, Some(junk(rng, len)), Kind::Bad)
        }
        1 => (key, Some(b"{\"id\": 1, \"amount\": \"lots\"}".to_vec()), Kind::Bad),
        2 => {
            let mut truncated = order_json(id, 3);
            truncated.truncate(truncated.len() / 2);
            (key, Some(truncated), Kind::Bad)
        }
        // Invalid UTF-8 in the key: a bad key, whatever the value.
        3 => (Some(vec![0xff, 0xfe, rng.next_u64() as u8]), Some(order_json(id, 3)), Kind::Bad),
        4 => (None, Some(order_json(id, 3)), Kind::Null),
        5 => (key, None, Kind::Null),
        6 => (key, Some(Vec::new()), Kind::Bad),
        _ => (key, Some(order_json(id, 3)), Kind::Valid),
    }
}

#[test]
fn a_hundred_thousand_random_records_are_each_accounted_for() -> stoat::Result<()> {
    let k = kafka();
    let (input, n) = ("fuzz-orders", 100_000u32);
    k.create_topic(input, 4);
    let mut rng = Rng::new(2026);
    let mut records = Vec::with_capacity(n as usize);
    let mut kinds = Vec::with_capacity(n as usize);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for id in 0..n {
        let (key, value, kind) = random_record(&mut rng, id);
        if kind == Kind::Valid {
            let customer = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
            *expected.entry(customer).or_default() += id as i64 * 3;
        }
        kinds.push(kind);
        records.push((key, value));
    }
    let count = |kind| kinds.iter().filter(|&&k| k == kind).count() as u64;
    let (valid, bad, null) = (count(Kind::Valid), count(Kind::Bad), count(Kind::Null));
    assert!(bad > 20_000 && null > 10_000, "the input is a quarter bad ({bad} bad, {null} null)");
    k.produce_records(input, records);

    let topology = Topology::new("fuzz-orders");
    let orders = topology.stream_with(input, Utf8, Json::<Order>::new());
    orders.process(amount {}).to("fuzz-amounts");
    orders.process(per_customer {}).to("fuzz-totals");
    let config = Config::default().lanes(4).error_policy(ErrorPolicy::DeadLetter("fuzz-dead".into()));
    let stats = run_until_idle(&topology, config, KafkaConfig::new(&k.bootstrap))?;
    assert_eq!(stats.records_in, n as u64);
    assert_eq!(stats.skipped_decode, bad, "every undecodable record is counted");
    assert_eq!(stats.dropped_null_keys + stats.dropped_null_values, null, "every null is counted");

    assert_eq!(k.read_committed("fuzz-amounts").len() as u64, valid, "one amount per valid order");
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for (key, value, _) in k.read_committed("fuzz-totals") {
        let customer = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let total = value.as_deref().and_then(|v| v.try_into().ok()).map(i64::from_be_bytes);
        totals.insert(customer, total.unwrap_or(i64::MIN));
    }
    assert_eq!(totals, expected, "each customer's last total is exact");

    // The dead letters are exactly the bad records, each once, by their place in the input.
    let dead = k.read_committed("fuzz-dead");
    let places: BTreeSet<(String, String)> = dead
        .iter()
        .map(|(_, _, h)| {
            let text = |name: &str| {
                String::from_utf8_lossy(h.get(name).map(Vec::as_slice).unwrap_or_default()).into_owned()
            };
            (text("stoat.partition"), text("stoat.offset"))
        })
        .collect();
    assert_eq!(dead.len() as u64, bad, "one dead letter per bad record");
    assert_eq!(places.len() as u64, bad, "no record dead-lettered twice");
    Ok(())
}
