//! Property tests of tables, joins, stream and table aggregations against a model written here: random
//! sequences of upserts, deletes and stream records over a few keys (proptest shrinks a failing
//! one to a minimal case), each run with 1, 3, 16 and 300 lanes; every output, per key and in order,
//! with its timestamp, must be what the model says (Kafka Streams 4.4's rules, cache off). The
//! foreign-key join's model replays Kafka Streams' own subscription protocol (instructions sent
//! to the foreign key's side, responses resolved against the current left row).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use stoat::prelude::*;

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

/// One random step: which topic (0: a, 1: b, else s), the key, the row (`None`: a tombstone),
/// and how far the timestamp moves (mostly forward, sometimes back).
type Step = (u8, u8, Option<(u8, u8)>, i64);

fn step() -> impl Strategy<Value = Step> {
    (0u8..3, 0u8..5, prop::option::weighted(0.8, (0u8..3, 0u8..100)), -10i64..40)
}

fn ops_of(steps: &[Step]) -> Vec<Op> {
    let mut ts = 1_000i64;
    steps
        .iter()
        .enumerate()
        .map(|(i, &(topic, key, row, dt))| {
            ts += dt;
            let key = format!("k{key}");
            let row = row.map(|(g, n)| Row { group: format!("g{g}"), n: n.into() });
            match topic {
                0 => Op::A(key, row, ts),
                1 => Op::B(key, row, ts),
                _ => Op::S(key, format!("s{i}"), ts),
            }
        })
        .collect()
}

/// The foreign key of an `a` row: a key of `b`, or none.
fn foreign_key(r: &Row) -> Option<String> {
    (r.n % 7 != 0).then(|| format!("k{}", r.n % 5))
}

/// Kafka Streams' foreign-key join instructions (`SubscriptionWrapper.Instruction`).
#[derive(Clone, Copy, PartialEq)]
enum Instruction {
    DeleteNoPropagate,
    DeleteAndPropagate,
    PropagateNullIfMissing,
    PropagateOnlyIfFound,
}

/// What Kafka Streams' subscription sender sends for a left update, inner or left join.
fn instructions(left_join: bool, old: Option<&Row>, new: Option<&Row>) -> Vec<(Option<String>, Instruction)> {
    use Instruction::*;
    let old_fk = old.and_then(foreign_key);
    let new_fk = new.and_then(foreign_key);
    let mut sent = Vec::new();
    if left_join {
        if old.is_none() && new.is_none() {
            return sent;
        }
        if old_fk.is_some() && old_fk != new_fk {
            sent.push((old_fk, DeleteNoPropagate));
        }
        sent.push((new_fk, PropagateNullIfMissing));
    } else if new.is_some() {
        match (&old_fk, &new_fk) {
            (Some(_), None) => sent.push((old_fk, DeleteAndPropagate)),
            (None, None) => {}
            (Some(o), Some(n)) if o != n => {
                sent.push((old_fk.clone(), DeleteNoPropagate));
                sent.push((new_fk, PropagateNullIfMissing));
            }
            _ => sent.push((new_fk, PropagateOnlyIfFound)),
        }
    } else if old_fk.is_some() {
        sent.push((old_fk, DeleteAndPropagate));
    }
    sent
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
    let mut counts: HashMap<String, (u64, i64)> = HashMap::new(); // s key -> (count, max ts)
                                                                  // Per join (inner, left): foreign key -> the left keys subscribed to it.
    let mut subscriptions: [BTreeMap<String, BTreeSet<String>>; 2] = Default::default();
    let mut out: HashMap<&'static str, Out> = HashMap::new();
    let mut emit = |topic: &'static str, key: &str, value: Option<String>, ts: i64| {
        out.entry(topic).or_default().entry(key.to_string()).or_default().push((value, ts));
    };
    // Kafka Streams' response resolver: joins a foreign value with the left row now current.
    let resolve = |left_join: bool, current: Option<&Row>, foreign: Option<&Row>| -> Option<String> {
        if foreign.is_none() && (!left_join || current.is_none()) {
            None
        } else {
            Some(show(current, foreign))
        }
    };
    for op in ops {
        match op {
            Op::S(k, v, ts) => {
                let joined = format!("{v} {}", a.get(k).map_or("-".to_string(), |(r, _)| r.group.clone()));
                emit("s-left", k, Some(joined), *ts);
                // A stream aggregation: the count per key, with the largest timestamp so far.
                let c = counts.entry(k.clone()).or_insert((0, i64::MIN));
                *c = (c.0 + 1, c.1.max(*ts));
                emit("s-counts", k, Some(c.0.to_string()), c.1);
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
                // The foreign-key joins: send, receive at the foreign key, resolve.
                for (j, topic) in [(0, "fk-inner"), (1, "fk-left")] {
                    let left_join = j == 1;
                    for (fk, instruction) in
                        instructions(left_join, old.as_ref().map(|(r, _)| r), new.as_ref())
                    {
                        if let Some(fk) = &fk {
                            let subs = subscriptions[j].entry(fk.clone()).or_default();
                            match instruction {
                                Instruction::DeleteNoPropagate | Instruction::DeleteAndPropagate => {
                                    subs.remove(k)
                                }
                                _ => subs.insert(k.clone()),
                            };
                        }
                        let found = fk.as_ref().and_then(|fk| b.get(fk));
                        let at = found.map_or(*ts, |(_, t)| (*t).max(*ts));
                        let foreign = match instruction {
                            Instruction::DeleteNoPropagate => continue,
                            Instruction::DeleteAndPropagate => None,
                            Instruction::PropagateNullIfMissing => found.map(|(r, _)| r),
                            Instruction::PropagateOnlyIfFound => match found {
                                Some((r, _)) => Some(r),
                                None => continue,
                            },
                        };
                        let current = a.get(k).map(|(r, _)| r);
                        emit(topic, k, resolve(left_join, current, foreign), at);
                    }
                }
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
                // Every left key subscribed to this foreign key gets a response.
                for (j, topic) in [(0, "fk-inner"), (1, "fk-left")] {
                    for sub in subscriptions[j].get(k).cloned().unwrap_or_default() {
                        let current = a.get(&sub).map(|(r, _)| r);
                        emit(topic, &sub, resolve(j == 1, current, new.as_ref()), *ts);
                    }
                }
            }
        }
    }
    out
}

fn topology() -> Topology {
    let topology = Topology::new("model");
    let a = topology.table(&A, "a");
    let b = topology.table(&B, "b");
    let s = topology.source(&S);
    s.left_join(&a, |v, r: Option<Row>| format!("{v} {}", r.map_or("-".into(), |r| r.group))).to("s-left");
    s.group_by_key().count("s_counts").map_values(|n| Some(n.to_string())).to("s-counts");
    a.left_join(&b, |x, y: Option<Row>| show(Some(&x), y.as_ref())).to("ab-left");
    a.join_foreign_key(&b, "fk_inner", |_, r| foreign_key(r), |x, y| show(Some(&x), Some(&y))).to("fk-inner");
    a.left_join_foreign_key(&b, "fk_left", |_, r| foreign_key(r), |x, y| show(Some(&x), y.as_ref()))
        .to("fk-left");
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
    for topic in TOPICS {
        let mut per_key: Out = BTreeMap::new();
        for r in driver.output::<String, Option<String>>(topic).read_records()? {
            per_key.entry(r.key).or_default().push((r.value, r.timestamp));
        }
        out.insert(topic, per_key);
    }
    Ok(out)
}

const TOPICS: [&str; 6] = ["s-left", "s-counts", "ab-left", "group-sums", "fk-inner", "fk-left"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_table_workloads_match_the_model(steps in prop::collection::vec(step(), 1..100)) {
        let ops = ops_of(&steps);
        let expected = model(&ops);
        for lanes in [1, 3, 16, 300] {
            let got = run(&ops, lanes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for topic in TOPICS {
                let want = expected.get(topic).cloned().unwrap_or_default();
                prop_assert_eq!(&got[topic], &want, "topic {}, {} lanes", topic, lanes);
            }
        }
    }
}
