//! stoat against Kafka Streams 4.4 itself: the same random input (out of order, late records,
//! null keys) through a reference topology in Kafka Streams' TopologyTestDriver (cache off) and in
//! stoat with 1, 3, 16 and 300 lanes; every output key's records, values and timestamps must agree.
//! Where stoat deliberately differs (windows closed by emit-on-close come out at the end of the
//! epoch, not on the closing record), only what the difference allows is compared.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use stoat::prelude::*;
use support::oracle::{kafka_streams, Line};
use support::Rng;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// Random records for `topic`: 4 keys (and some null keys), values from `value`, timestamps
/// mostly rising by up to 3 s, one in five up to 25 s behind.
fn input(seed: u64, n: usize, topic: &str, value: impl Fn(&mut Rng) -> String) -> Vec<Line> {
    let mut rng = Rng::new(seed);
    let mut ts = 100_000i64;
    (0..n)
        .map(|_| {
            ts += rng.below(3_000) as i64;
            let at = if rng.below(5) == 0 { ts - rng.below(25_000) as i64 } else { ts };
            let key = (rng.below(20) > 0).then(|| format!("u{}", rng.below(4)));
            (topic.to_string(), key, Some(value(&mut rng)), at)
        })
        .collect()
}

/// Runs `topology` in stoat on `input` (one partition, piped in order, one epoch) and returns
/// what it wrote to `outputs`.
fn stoat(topology: &Topology, input: &[Line], outputs: &[&str], lanes: usize) -> stoat::Result<Vec<Line>> {
    let driver = TestDriver::with_config(topology, Config::default().lanes(lanes))?;
    for (topic, key, value, ts) in input {
        driver.create_topic(topic, 1);
        let bytes = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
        driver.log().produce(topic, bytes(key), bytes(value), *ts, Vec::new());
    }
    driver.run()?;
    let mut out = Vec::new();
    for topic in outputs {
        for r in driver.output::<String, Option<String>>(topic).read_records()? {
            out.push((topic.to_string(), Some(r.key), r.value, r.timestamp));
        }
    }
    Ok(out)
}

/// Records per (topic, key), in order: what must agree.
type PerKey = BTreeMap<(String, Option<String>), Vec<(Option<String>, i64)>>;

fn per_key(lines: Vec<Line>) -> PerKey {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for (topic, key, value, ts) in lines {
        out.entry((topic, key)).or_default().push((value, ts));
    }
    out
}

fn show<K: std::fmt::Display>(key: &K, window: stoat::Window) -> String {
    format!("{key}@{}/{}", window.start, window.end)
}

fn tumbling(final_only: bool) -> Topology {
    let topology = Topology::new("ks-tumbling");
    let windowed = topology
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5)));
    let (windowed, topic) = if final_only {
        (windowed.emit_on_window_close(), "window-final")
    } else {
        (windowed, "window-counts")
    };
    windowed.count("counts").map(|w, n| (show(&w.key, w.window), Some(n.to_string()))).to(topic);
    topology
}

#[test]
fn tumbling_counts_agree_with_kafka_streams() -> stoat::Result<()> {
    for seed in 1..=2 {
        let records = input(seed, 400, "clicks", |_| "x".into());
        let expected = per_key(kafka_streams("tumbling", &records));
        assert!(expected.len() > 20, "windows: {}", expected.len());
        for lanes in LANES {
            let got = per_key(stoat(&tumbling(false), &records, &["window-counts"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn windows_emitted_on_close_agree_with_kafka_streams_suppress() -> stoat::Result<()> {
    for seed in 3..=4 {
        let records = input(seed, 400, "clicks", |_| "x".into());
        let expected = per_key(kafka_streams("tumbling_final", &records));
        assert!(expected.len() > 20, "windows: {}", expected.len());
        assert!(expected.values().all(|v| v.len() == 1), "Kafka Streams emits each closed window once");
        for lanes in LANES {
            let got = per_key(stoat(&tumbling(true), &records, &["window-final"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn hopping_sums_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-hopping");
    topology
        .stream::<String, String>("purchases")
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(2))
                .advance_by(Duration::from_secs(5)),
        )
        .aggregate("sums", || 0u64, |_, v: String, sum| sum + v.parse::<u64>().unwrap_or(0))
        .map(|w, n| (show(&w.key, w.window), Some(n.to_string())))
        .to("window-sums");
    for seed in 5..=6 {
        let records = input(seed, 400, "purchases", |rng| rng.below(100).to_string());
        let expected = per_key(kafka_streams("hopping", &records));
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["window-sums"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn sliding_counts_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-sliding");
    topology
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .count("sliding")
        .map(|w, n| (show(&w.key, w.window), Some(n.to_string())))
        .to("sliding-counts");
    for seed in 17..=18 {
        let records = input(seed, 400, "clicks", |_| "x".into());
        let expected = per_key(kafka_streams("sliding", &records));
        assert!(expected.len() > 100, "windows: {}", expected.len());
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["sliding-counts"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn sliding_and_session_windows_emitted_on_close_agree_with_kafka_streams_suppress() -> stoat::Result<()> {
    let sliding = Topology::new("ks-sliding-final");
    sliding
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .emit_on_window_close()
        .count("sliding")
        .map(|w, n| (show(&w.key, w.window), Some(n.to_string())))
        .to("sliding-final");
    let session = Topology::new("ks-session-final");
    session
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(5),
            Duration::from_secs(2),
        ))
        .emit_on_window_close()
        .count("sessions")
        .map(|w, n| (show(&w.key, w.window), n.map(|n| n.to_string())))
        .to("session-final");
    for (topology, name, topic, seed) in
        [(&sliding, "sliding_final", "sliding-final", 19), (&session, "session_final", "session-final", 21)]
    {
        let records = input(seed, 400, "clicks", |_| "x".into());
        let expected = per_key(kafka_streams(name, &records));
        assert!(expected.len() > 20, "{name}: windows {}", expected.len());
        assert!(
            expected.values().all(|v| v.len() == 1),
            "{name}: Kafka Streams emits each closed window once"
        );
        for lanes in LANES {
            let got = per_key(stoat(topology, &records, &[topic], lanes)?);
            assert_eq!(got, expected, "{name}, seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn session_counts_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-session");
    topology
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(5),
            Duration::from_secs(2),
        ))
        .count("sessions")
        .map(|w, n| (show(&w.key, w.window), n.map(|n| n.to_string())))
        .to("session-counts");
    for seed in 7..=8 {
        let records = input(seed, 400, "clicks", |_| "x".into());
        let expected = per_key(kafka_streams("session", &records));
        assert!(expected.values().flatten().any(|(v, _)| v.is_none()), "sessions merged");
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["session-counts"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

/// Random table updates (upserts of `value(rng)` or deletes) over `keys` keys, for the topics
/// in turn at random, timestamps strictly rising (so both systems take them in the same order).
fn table_input(
    seed: u64,
    n: usize,
    topics: &[(&str, usize)],
    value: impl Fn(&mut Rng, &str) -> String,
) -> Vec<Line> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let (topic, keys) = topics[rng.below(topics.len())];
            let key = format!("k{}", rng.below(keys));
            let value = (rng.below(6) > 0).then(|| value(&mut rng, topic));
            (topic.to_string(), Some(key), value, 1_000 + 10 * i as i64)
        })
        .collect()
}

#[test]
fn table_table_joins_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-table-join");
    let a = topology.table(&Topic::<String, String>::new("a"), "a");
    let b = topology.table(&Topic::<String, String>::new("b"), "b");
    a.join(&b, |x, y| format!("{x}|{y}")).to("ab-inner");
    a.left_join(&b, |x, y: Option<String>| format!("{x}|{}", y.unwrap_or("-".into()))).to("ab-left");
    a.outer_join(&b, |x: Option<String>, y: Option<String>| {
        format!("{}|{}", x.unwrap_or("-".into()), y.unwrap_or("-".into()))
    })
    .to("ab-outer");
    for seed in 9..=10 {
        let records = table_input(seed, 300, &[("a", 6), ("b", 6)], |rng, _| format!("v{}", rng.below(100)));
        let expected = per_key(kafka_streams("table_join", &records));
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["ab-inner", "ab-left", "ab-outer"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn foreign_key_joins_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-fk-join");
    let orders = topology.table(&Topic::<String, String>::new("orders"), "orders");
    let products = topology.table(&Topic::<String, String>::new("products"), "products");
    let fk = |_: &String, v: &String| v.split('|').next().filter(|p| !p.is_empty()).map(String::from);
    orders.join_foreign_key(&products, "lines_idx", fk, |o, p| format!("{o}|{p}")).to("lines");
    orders
        .left_join_foreign_key(&products, "lines_left_idx", fk, |o, p: Option<String>| {
            format!("{o}|{}", p.unwrap_or("-".into()))
        })
        .to("lines-left");
    for seed in 11..=12 {
        let records = table_input(seed, 300, &[("orders", 8), ("products", 4)], |rng, topic| match topic {
            // An order names a product (or none), and a quantity.
            "orders" => {
                let product = if rng.below(5) == 0 { String::new() } else { format!("k{}", rng.below(4)) };
                format!("{product}|{}", rng.below(10))
            }
            _ => format!("name{}", rng.below(100)),
        });
        let expected = per_key(kafka_streams("fk_join", &records));
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["lines", "lines-left"], lanes)?);
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn table_aggregations_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-table-aggregate");
    topology
        .table(&Topic::<String, String>::new("accounts"), "accounts")
        .group_by(|_, v| {
            let mut f = v.split('|');
            (
                f.next().unwrap_or_default().to_string(),
                f.next().and_then(|b| b.parse::<i64>().ok()).unwrap_or(0),
            )
        })
        .aggregate("totals", || 0i64, |_, b, sum| sum + b, |_, b, sum| sum - b)
        .map_values(|n| Some(n.to_string()))
        .to("region-totals");
    for seed in 13..=14 {
        let records = table_input(seed, 300, &[("accounts", 10)], |rng, _| {
            format!("r{}|{}", rng.below(3), rng.below(1_000))
        });
        let expected = per_key(kafka_streams("table_aggregate", &records));
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["region-totals"], lanes)?);
            if lanes == 1 {
                assert_eq!(got, expected, "seed {seed}, {lanes} lane");
                continue;
            }
            // With several lanes, updates of different accounts reach a region from several
            // lanes in an order of their own (a documented difference: Kafka Streams' repartition
            // topic keeps the input order): each region gets as many updates, ending the same.
            for (key, want) in &expected {
                let have = got.get(key).cloned().unwrap_or_default();
                assert_eq!(have.len(), want.len(), "{key:?}, seed {seed}, {lanes} lanes");
                assert_eq!(
                    have.last().map(|l| &l.0),
                    want.last().map(|l| &l.0),
                    "{key:?}, seed {seed}, {lanes} lanes"
                );
            }
            assert_eq!(got.len(), expected.len(), "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

/// Records of one topic `events` for a stream-stream join: values `L:x` or `R:y` (the side),
/// 3 keys, timestamps mostly rising by up to 1.5 s, one in four up to 6.9 s behind (past the
/// 5 s window, so some are emitted alone at once, but within the 12 s retention of the
/// partners they can reach, which Kafka Streams keeps per side and stoat per join).
fn join_input(seed: u64, n: usize) -> Vec<Line> {
    let mut rng = Rng::new(seed);
    let mut ts = 100_000i64;
    let mut lines: Vec<Line> = (0..n)
        .map(|i| {
            ts += rng.below(1_500) as i64;
            let at = if rng.below(4) == 0 { ts - rng.below(6_900) as i64 } else { ts };
            let side = if rng.below(2) == 0 { "L" } else { "R" };
            ("events".to_string(), Some(format!("k{}", rng.below(3))), Some(format!("{side}:{side}{i}")), at)
        })
        .collect();
    // A last record far ahead closes every window (Kafka Streams emits waiting records only
    // when a later record arrives).
    lines.push(("events".into(), Some("flush".into()), Some("L:end".into()), ts + 1_000_000));
    lines
}

#[test]
fn stream_stream_joins_agree_with_kafka_streams() -> stoat::Result<()> {
    let topology = Topology::new("ks-stream-join");
    let events = topology.stream::<String, String>("events");
    let side = |tag: &'static str| {
        events
            .filter(move |_, v| v.starts_with(tag))
            .map_values(|v| v.get(2..).unwrap_or_default().to_string())
    };
    let (l, r) = (side("L:"), side("R:"));
    let windows = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2));
    let alone = |v: Option<String>| v.unwrap_or("-".into());
    l.join_stream(&r, windows, "inner", |x, y| format!("{x}+{y}")).map_values(Some).to("inner");
    l.left_join_stream(&r, windows, "left", move |x, y| format!("{x}+{}", alone(y)))
        .map_values(Some)
        .to("left");
    l.outer_join_stream(&r, windows, "outer", move |x, y| format!("{}+{}", alone(x), alone(y)))
        .map_values(Some)
        .to("outer");
    for seed in 15..=16 {
        let records = join_input(seed, 500);
        let expected = per_key(kafka_streams("stream_join", &records));
        let inner_of = |p: &PerKey| p.iter().filter(|((t, _), _)| t == "inner").count();
        assert!(inner_of(&expected) == 3, "every key joins: {expected:?}");
        let alone_in = |topic: &str| {
            expected
                .iter()
                .filter(|((t, _), _)| t == topic)
                .flat_map(|(_, v)| v)
                .filter(|(v, _)| v.as_deref().is_some_and(|v| v.contains('-')))
                .count()
        };
        assert!(alone_in("left") > 20 && alone_in("outer") > alone_in("left"), "records are emitted alone");
        for lanes in LANES {
            let got = per_key(stoat(&topology, &records, &["inner", "left", "outer"], lanes)?);
            for (key, want) in &expected {
                let have = got.get(key).cloned().unwrap_or_default();
                if key.0 == "inner" {
                    assert_eq!(&have, want, "{key:?}, seed {seed}, {lanes} lanes");
                    continue;
                }
                // Kafka Streams emits a waiting record only on a later record with the newest
                // timestamp, and not at all if a late partner joined it meanwhile; stoat emits it
                // when its window closes (a documented difference). So stoat's results are Kafka
                // Streams' plus, at most, records emitted alone that later joined a late partner.
                let (mut have, mut want) = (have, want.clone());
                have.sort();
                want.sort();
                let mut extra = have.clone();
                for w in &want {
                    let at = extra.iter().position(|h| h == w);
                    assert!(
                        at.is_some(),
                        "{key:?}: Kafka Streams emitted {w:?}, stoat did not (seed {seed}, {lanes} lanes)"
                    );
                    if let Some(at) = at {
                        extra.remove(at);
                    }
                }
                for (value, _) in &extra {
                    let value = value.as_deref().unwrap_or_default();
                    let record = value.split('+').find(|s| *s != "-").unwrap_or_default();
                    let joined = have
                        .iter()
                        .filter_map(|(v, _)| v.as_deref())
                        .any(|v| !v.contains('-') && v.split('+').any(|s| s == record));
                    assert!(
                        value.contains('-') && joined,
                        "{key:?}: stoat's extra {value} (seed {seed}, {lanes} lanes)"
                    );
                }
            }
            assert_eq!(got.len(), expected.len(), "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}
