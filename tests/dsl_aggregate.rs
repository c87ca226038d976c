//! Stream aggregations against an oracle written in the test: every update is emitted, with
//! the largest timestamp seen for its key (Kafka Streams 4.4, cache off), with 1, 3, 16 and 300 lanes.

use std::collections::HashMap;

use stoat::prelude::*;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// (line, timestamp): out of order on purpose.
fn lines() -> Vec<(&'static str, i64)> {
    vec![
        ("the quick brown fox", 1_000),
        ("The lazy dog", 500),
        ("quick, QUICK!", 3_000),
        ("", 2_000),
        ("a dog and a fox", 2_500),
        ("the end", 100),
    ]
}

fn words(line: &str) -> Vec<String> {
    line.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn word_count_emits_every_update_with_the_largest_timestamp_so_far() -> stoat::Result<()> {
    // The oracle: per word, (count, timestamp) of each update, in line order.
    let mut expected: HashMap<String, Vec<(u64, i64)>> = HashMap::new();
    let mut state: HashMap<String, (u64, i64)> = HashMap::new();
    for (line, ts) in lines() {
        for w in words(line) {
            let e = state.entry(w.clone()).or_insert((0, i64::MIN));
            *e = (e.0 + 1, e.1.max(ts));
            expected.entry(w).or_default().push(*e);
        }
    }
    for lanes in LANES {
        let topology = Topology::new("dsl-word-count");
        topology
            .stream::<String, String>("lines")
            .flat_map_values(|line| words(&line))
            .group_by(|_, word| word.clone())
            .count("word_counts")
            .to("counts");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let input = driver.input::<String, String>("lines");
        for (line, ts) in lines() {
            // One key for every line: one lane reads them, in order.
            input.pipe_at("doc".into(), line.into(), ts)?;
        }
        let mut got: HashMap<String, Vec<(u64, i64)>> = HashMap::new();
        for r in driver.output::<String, u64>("counts").read_records()? {
            got.entry(r.key).or_default().push((r.value, r.timestamp));
        }
        assert_eq!(got, expected, "{lanes} lanes");
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    customer: String,
    amount: u64,
}

#[test]
fn aggregate_and_reduce_keep_one_entry_per_key() -> stoat::Result<()> {
    let orders = [("ann", 5u64, 10i64), ("bob", 7, 20), ("ann", 1, 5), ("ann", 9, 30), ("bob", 2, 1)];
    for lanes in LANES {
        let topology = Topology::new("dsl-totals");
        let by_customer = topology.stream_with("orders", Utf8, Json::<Order>::new()).group_by_key();
        by_customer.aggregate("totals", || 0u64, |_, order: Order, total| total + order.amount).to("totals");
        by_customer
            .reduce("largest", |a, b| if b.amount > a.amount { b } else { a })
            .map_values(|o| o.amount)
            .to("largest");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let input = driver.input_with("orders", Utf8, Json::<Order>::new());
        for (c, amount, ts) in orders {
            input.pipe_at(c.into(), Order { customer: c.into(), amount }, ts)?;
        }
        let per_key = |topic: &str| -> stoat::Result<HashMap<String, Vec<(u64, i64)>>> {
            let mut m: HashMap<String, Vec<(u64, i64)>> = HashMap::new();
            for r in driver.output::<String, u64>(topic).read_records()? {
                m.entry(r.key).or_default().push((r.value, r.timestamp));
            }
            Ok(m)
        };
        let totals = per_key("totals")?;
        assert_eq!(totals["ann"], vec![(5, 10), (6, 10), (15, 30)], "{lanes} lanes");
        assert_eq!(totals["bob"], vec![(7, 20), (9, 20)], "{lanes} lanes");
        let largest = per_key("largest")?;
        assert_eq!(largest["ann"], vec![(5, 10), (5, 10), (9, 30)], "{lanes} lanes");
        assert_eq!(largest["bob"], vec![(7, 20), (7, 20)], "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn an_aggregation_continues_from_its_committed_state_after_a_restart() -> stoat::Result<()> {
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let topology = Topology::new("dsl-restart");
    topology.stream::<String, u64>("in").group_by_key().count("seen").to("out");
    let log = std::sync::Arc::new(stoat::log::EmbeddedLog::new(1));
    for round in 0..2 {
        let mut app = App::embedded_on(&topology, Config::default().state_dir(dir.path()), log.clone())?;
        log.send(&Topic::<String, u64>::new("in"), &"k".to_string(), &round)?;
        app.run_until_idle()?;
    }
    let counts: Vec<u64> = log
        .read_all("out")
        .iter()
        .filter_map(|(_, r)| {
            r.value.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes)
        })
        .collect();
    assert_eq!(counts, vec![1, 2], "the second run counts on from the first's state");
    Ok(())
}

#[test]
fn grouping_an_unkeyed_stream_by_key_is_refused() {
    let topology = Topology::new("dsl-unkeyed");
    topology.stream::<(), u64>("in").group_by_key().count("n").to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`group_by_key` on a stream without a key"), "{err}");
}

#[test]
fn cogroup_folds_several_streams_into_one_aggregate_per_key() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("dsl-cogroup");
        let orders = topology.stream::<String, u64>("orders").group_by_key();
        let refunds = topology.stream::<String, u64>("refunds").group_by_key();
        orders
            .cogroup(|_, cents, net: i64| net + cents as i64)
            .cogroup(&refunds, |_, cents, net| net - cents as i64)
            .aggregate("net", || 0i64)
            .to("net");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let (o, r) = (driver.input::<String, u64>("orders"), driver.input::<String, u64>("refunds"));
        o.pipe_at("ann".into(), 500, 10)?;
        r.pipe_at("ann".into(), 200, 30)?;
        o.pipe_at("bob".into(), 70, 5)?;
        o.pipe_at("ann".into(), 100, 20)?;
        let mut got: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for rec in driver.output::<String, i64>("net").read_records()? {
            got.entry(rec.key).or_default().push((rec.value, rec.timestamp));
        }
        assert_eq!(got["ann"], vec![(500, 10), (300, 30), (400, 30)], "{lanes} lanes");
        assert_eq!(got["bob"], vec![(70, 5)], "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn two_aggregations_cannot_share_a_store() {
    let topology = Topology::new("dsl-shared-store");
    let s = topology.stream::<String, u64>("in").group_by_key();
    s.count("n").to("a");
    s.count("n").to("b");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("store `n` is already used by another table or aggregation"), "{err}");
}

/// Word counts per epoch, then the number of words per count parity: an aggregation fed by
/// another's outputs.
fn counting_topology() -> Topology {
    let topology = Topology::new("dsl-once");
    let counts = topology
        .stream::<String, String>("lines")
        .flat_map_values(|line| words(&line))
        .group_by(|_, word| word.clone())
        .count("word_counts");
    counts.to("counts");
    counts
        .group_by(|_, n| if n % 2 == 0 { "even".to_string() } else { "odd".to_string() })
        .count("parities")
        .to("parities");
    topology
}

#[test]
fn latest_per_epoch_emits_each_key_once_per_epoch_with_its_latest_aggregate() -> stoat::Result<()> {
    for lanes in LANES {
        let config = Config::default().lanes(lanes).emission(Emission::LatestPerEpoch);
        let driver = TestDriver::with_config(&counting_topology(), config)?;
        let produce = |line: &str, ts: i64| {
            driver.log().produce(
                "lines",
                Some(b"doc".to_vec()),
                Some(line.as_bytes().to_vec()),
                ts,
                Vec::new(),
            )
        };
        // One epoch: a, a, b, c, c, c.
        produce("a a b", 10);
        produce("c c c", 5);
        driver.run()?;
        let read = |topic: &str| -> stoat::Result<HashMap<String, Vec<(u64, i64)>>> {
            let mut got: HashMap<String, Vec<(u64, i64)>> = HashMap::new();
            for r in driver.output::<String, u64>(topic).read_records()? {
                got.entry(r.key).or_default().push((r.value, r.timestamp));
            }
            Ok(got)
        };
        let counts = read("counts")?;
        let want: HashMap<String, Vec<(u64, i64)>> =
            [("a", vec![(2, 10)]), ("b", vec![(1, 10)]), ("c", vec![(3, 5)])]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(counts, want, "{lanes} lanes");
        // The second aggregation counts the first one's released outputs: a=2 is even, b=1
        // and c=3 are odd.
        let parities = read("parities")?;
        assert_eq!(parities["even"], vec![(1, 10)], "{lanes} lanes");
        assert_eq!(parities["odd"], vec![(2, 10)], "{lanes} lanes");

        // A second epoch touching only b: only b is emitted again (and its parity).
        produce("b", 20);
        driver.run()?;
        let counts = read("counts")?;
        assert_eq!(counts.get("b"), Some(&vec![(2, 20)]), "{lanes} lanes");
        assert!(!counts.contains_key("a") && !counts.contains_key("c"), "{lanes} lanes: {counts:?}");
        let parities = read("parities")?;
        assert_eq!(parities["even"], vec![(2, 20)], "{lanes} lanes");
        assert!(!parities.contains_key("odd"), "{lanes} lanes: {parities:?}");
    }
    Ok(())
}

#[stoat::operator]
fn share(#[key] word: &String, _line: String, counts: &TableView<String, u64>) -> Result<String, StoreError> {
    Ok(format!("{word}={}", counts.get(word)?.unwrap_or(0)))
}

#[test]
fn an_operator_reads_an_aggregations_store() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("agg-read");
        let words = topology.stream::<String, String>("words");
        words.group_by_key().count("counts").to("counts");
        words.process(share {}).to("seen");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let input = driver.input::<String, String>("words");
        for w in ["a", "b", "a", "a"] {
            input.pipe(w.into(), "x".into())?;
        }
        let seen = driver.output::<String, String>("seen").read_values()?;
        // The operator runs after the count on each record (it was added after it), on the
        // word's lane: it sees the count including the record.
        assert_eq!(seen, vec!["a=1", "b=1", "a=2", "a=3"], "{lanes} lanes");
    }
    Ok(())
}
