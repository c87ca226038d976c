//! Randomized tests of tables, joins and table aggregations against a model written here: many
//! random sequences of upserts, deletes and stream records over a few keys, each run with 1, 3
//! and 16 lanes; every output, per key and in order, with its timestamp, must be what the model
//! says (Kafka Streams 4.4's rules, cache off).

mod support;

use std::collections::{BTreeMap, HashMap};

use stoat::prelude::*;
use support::Rng;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Row {
    group: String,
    n: i64,
}

const A: Topic<String, Row> = Topic::json("a");
const B: Topic<String, Row> = Topic::json("b");
const S: Topic<String, String> = Topic::new("s");

enum Op {
    A(String, Option<Row>, i64),
    B(String, Option<Row>, i64),
    S(String, String, i64),
}

fn ops(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut ts = 1_000i64;
    (0..count)
        .map(|i| {
            // Timestamps mostly rise, sometimes jump back.
            ts += rng.below(50) as i64 - 10;
            let key = format!("k{}", rng.below(5));
            let row = |rng: &mut Rng| {
                (rng.below(5) > 0)
                    .then(|| Row { group: format!("g{}", rng.below(3)), n: rng.below(100) as i64 })
            };
            match rng.below(3) {
                0 => Op::A(key, row(&mut rng), ts),
                1 => Op::B(key, row(&mut rng), ts),
                _ => Op::S(key, format!("s{i}"), ts),
            }
        })
        .collect()
}

type Out = BTreeMap<String, Vec<(Option<String>, i64)>>;

/// Records an expected output: topic, key, value, timestamp.
type Expect<'e> = &'e mut dyn FnMut(&'static str, &str, Option<String>, i64);

fn show(a: Option<&Row>, b: Option<&Row>) -> String {
    let f = |r: Option<&Row>| r.map_or("-".to_string(), |r| format!("{}:{}", r.group, r.n));
    format!("{}|{}", f(a), f(b))
}

/// What the topology below emits, per output topic and key, by Kafka Streams' rules.
fn model(ops: &[Op]) -> HashMap<&'static str, Out> {
    let mut a: HashMap<String, (Row, i64)> = HashMap::new();
    let mut b: HashMap<String, (Row, i64)> = HashMap::new();
    let mut totals: HashMap<String, (i64, i64)> = HashMap::new(); // group -> (sum, max ts)
    let mut out: HashMap<&'static str, Out> = HashMap::new();
    let mut emit = |topic: &'static str, key: &str, value: Option<String>, ts: i64| {
        out.entry(topic).or_default().entry(key.to_string()).or_default().push((value, ts));
    };
    for op in ops {
        match op {
            Op::S(k, v, ts) => {
                let joined = format!("{v} {}", a.get(k).map_or("-".to_string(), |(r, _)| r.group.clone()));
                emit("s-left", k, Some(joined), *ts);
            }
            Op::A(k, new, ts) => {
                let old = a.get(k).cloned();
                let other = b.get(k).cloned();
                // Left join a-b, on an a update: unless absent before, after and on the right.
                if old.is_some() || new.is_some() || other.is_some() {
                    let t = other.as_ref().map_or(*ts, |(_, t)| (*t).max(*ts));
                    let value = new.as_ref().map(|n| show(Some(n), other.as_ref().map(|(r, _)| r)));
                    emit("ab-left", k, value, t);
                }
                // Table aggregation by group: subtract the old, add the new; one output if the
                // group stays.
                let mut touch = |g: &str, delta: i64, emit: Expect<'_>| {
                    let e = totals.entry(g.to_string()).or_insert((0, i64::MIN));
                    e.0 += delta;
                    e.1 = e.1.max(*ts);
                    emit("group-sums", g, Some(e.0.to_string()), e.1);
                };
                match (&old, new) {
                    (Some((o, _)), Some(n)) if o.group == n.group => touch(&n.group, n.n - o.n, &mut emit),
                    _ => {
                        if let Some((o, _)) = &old {
                            touch(&o.group, -o.n, &mut emit);
                        }
                        if let Some(n) = new {
                            touch(&n.group, n.n, &mut emit);
                        }
                    }
                }
                match new {
                    Some(n) => a.insert(k.clone(), (n.clone(), *ts)),
                    None => a.remove(k),
                };
            }
            Op::B(k, new, ts) => {
                // A b update reaches the left join only where a has the key.
                if let Some((row, at)) = a.get(k) {
                    emit("ab-left", k, Some(show(Some(row), new.as_ref())), (*at).max(*ts));
                }
                match new {
                    Some(n) => b.insert(k.clone(), (n.clone(), *ts)),
                    None => b.remove(k),
                };
            }
        }
    }
    out
}

fn topology() -> Topology {
    let topology = Topology::new("model");
    let a = topology.table(&A, "a");
    let b = topology.table(&B, "b");
    topology
        .source(&S)
        .left_join(&a, |v, r: Option<Row>| format!("{v} {}", r.map_or("-".into(), |r| r.group)))
        .to("s-left");
    a.left_join(&b, |x, y: Option<Row>| show(Some(&x), y.as_ref())).to("ab-left");
    a.group_by(|_, r| (r.group.clone(), r.n))
        .aggregate("sums", || 0i64, |_, n, s| s + n, |_, n, s| s - n)
        .map_values(|s| Some(s.to_string()))
        .to("group-sums");
    topology
}

fn run(ops: &[Op], lanes: usize) -> stoat::Result<HashMap<&'static str, Out>> {
    let driver = TestDriver::with_config(&topology(), Config::default().lanes(lanes))?;
    let log = driver.log();
    for op in ops {
        let (topic, key, value, ts) = match op {
            Op::A(k, r, ts) => ("a", k, r.as_ref().map(|r| serde_json::to_vec(r).unwrap_or_default()), *ts),
            Op::B(k, r, ts) => ("b", k, r.as_ref().map(|r| serde_json::to_vec(r).unwrap_or_default()), *ts),
            Op::S(k, v, ts) => ("s", k, Some(v.as_bytes().to_vec()), *ts),
        };
        log.produce(topic, Some(key.as_bytes().to_vec()), value, ts, Vec::new());
        driver.run()?;
    }
    let mut out = HashMap::new();
    for topic in ["s-left", "ab-left", "group-sums"] {
        let mut per_key: Out = BTreeMap::new();
        for r in driver.output::<String, Option<String>>(topic).read_records()? {
            per_key.entry(r.key).or_default().push((r.value, r.timestamp));
        }
        out.insert(topic, per_key);
    }
    Ok(out)
}

#[test]
fn random_table_workloads_match_the_model() -> stoat::Result<()> {
    for seed in 1..=12u64 {
        let ops = ops(seed, 120);
        let expected = model(&ops);
        for lanes in [1, 3, 16] {
            let got = run(&ops, lanes)?;
            for topic in ["s-left", "ab-left", "group-sums"] {
                let want = expected.get(topic).cloned().unwrap_or_default();
                assert_eq!(got[topic], want, "topic {topic}, seed {seed}, {lanes} lanes");
            }
        }
    }
    Ok(())
}
