//! The stateless DSL against outputs worked out by hand: each operation's records per key are
//! the same with 1, 3, 16 and 300 lanes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use stoat::prelude::*;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// Outputs of `topic` grouped by key, in arrival order per key.
fn per_key<K: Ord + stoat::Key + stoat::codec::DefaultCodec, V: stoat::Data + stoat::codec::DefaultCodec>(
    driver: &TestDriver,
    topic: &str,
) -> stoat::Result<BTreeMap<K, Vec<V>>> {
    let mut out: BTreeMap<K, Vec<V>> = BTreeMap::new();
    for (k, v) in driver.output::<K, V>(topic).read_key_values()? {
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

fn orders() -> Vec<(String, u64)> {
    vec![
        ("o1".into(), 5),
        ("o2".into(), 150),
        ("o3".into(), 2_000),
        ("o1".into(), 0),
        ("o4".into(), 99),
        ("o2".into(), 100),
    ]
}

fn drive(topology: &Topology, lanes: usize) -> stoat::Result<TestDriver> {
    let driver = TestDriver::with_config(topology, Config::default().lanes(lanes))?;
    driver.input::<String, u64>("orders").pipe_all(orders())?;
    Ok(driver)
}

#[test]
fn filter_filter_not_and_map_values() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("filters");
        let s = topology.stream::<String, u64>("orders");
        s.filter(|_, v| *v >= 100).to("large");
        s.filter_not(|_, v| *v >= 100).map_values(|v| format!("small:{v}")).to("small");
        let driver = drive(&topology, lanes)?;
        let large = per_key::<String, u64>(&driver, "large")?;
        assert_eq!(
            large,
            BTreeMap::from([("o2".into(), vec![150, 100]), ("o3".into(), vec![2_000])]),
            "{lanes} lanes"
        );
        let small = per_key::<String, String>(&driver, "small")?;
        let expected = BTreeMap::from([
            ("o1".to_string(), vec!["small:5".to_string(), "small:0".to_string()]),
            ("o4".to_string(), vec!["small:99".to_string()]),
        ]);
        assert_eq!(small, expected, "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn map_and_select_key_rekey_in_memory() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("maps");
        let s = topology.stream::<String, u64>("orders");
        // By size class, value: the order id.
        s.map(|k, v| (if v >= 100 { "big" } else { "small" }.to_string(), k)).to("by-class");
        s.select_key(|_, v| v % 2 == 0).to("by-parity");
        let driver = drive(&topology, lanes)?;
        let by_class = per_key::<String, String>(&driver, "by-class")?;
        let expected = BTreeMap::from([
            ("big".to_string(), vec!["o2".to_string(), "o3".into(), "o2".into()]),
            ("small".to_string(), vec!["o1".to_string(), "o1".into(), "o4".into()]),
        ]);
        // Each new key gathers records from several old keys: their order across old keys is
        // not promised, so compare as multisets.
        let sorted = |m: BTreeMap<String, Vec<String>>| {
            m.into_iter()
                .map(|(k, mut v)| {
                    v.sort();
                    (k, v)
                })
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(sorted(by_class), sorted(expected), "{lanes} lanes");
        let mut parity = per_key::<bool, u64>(&driver, "by-parity")?;
        parity.values_mut().for_each(|v| v.sort());
        assert_eq!(
            parity,
            BTreeMap::from([(true, vec![0, 100, 150, 2_000]), (false, vec![5, 99])]),
            "{lanes} lanes"
        );
    }
    Ok(())
}

#[test]
fn flat_map_values_and_flat_map() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("flat");
        let s = topology.stream::<String, u64>("orders");
        // One record per digit, same key.
        s.flat_map_values(|v| v.to_string().chars().collect::<Vec<_>>())
            .map_values(|c| c.to_string())
            .to("digits");
        // One record per distinct digit, keyed by it; value: the order id.
        s.flat_map(|k, v| {
            let mut digits: Vec<char> = v.to_string().chars().collect();
            digits.sort();
            digits.dedup();
            digits.into_iter().map(move |d| (d.to_string(), k.clone()))
        })
        .to("orders-by-digit");
        let driver = drive(&topology, lanes)?;
        let digits = per_key::<String, String>(&driver, "digits")?;
        let d = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(digits["o1"], d(&["5", "0"]), "{lanes} lanes");
        assert_eq!(digits["o2"], d(&["1", "5", "0", "1", "0", "0"]), "{lanes} lanes");
        assert_eq!(digits["o3"], d(&["2", "0", "0", "0"]), "{lanes} lanes");
        let mut by_digit = per_key::<String, String>(&driver, "orders-by-digit")?;
        by_digit.values_mut().for_each(|v| v.sort());
        assert_eq!(by_digit["0"], d(&["o1", "o2", "o2", "o3"]), "{lanes} lanes");
        assert_eq!(by_digit["9"], d(&["o4"]), "{lanes} lanes");
        assert_eq!(by_digit["5"], d(&["o1", "o2"]), "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn split_sends_each_record_to_the_first_matching_branch() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("split");
        let s = topology.stream::<String, u64>("orders");
        let with_default = s.split().branch(|_, v| *v >= 1_000).branch(|_, v| *v >= 100).default_branch();
        assert_eq!(with_default.len(), 3);
        with_default[0].to("large");
        with_default[1].to("medium");
        with_default[2].to("small");
        // Without a default branch, records matching no branch are dropped.
        let only = s.split().branch(|k, _| k == "o1").branches();
        assert_eq!(only.len(), 1);
        only[0].to("o1-only");
        let driver = drive(&topology, lanes)?;
        let values = |t: &str| -> stoat::Result<Vec<u64>> {
            let mut v = driver.output::<String, u64>(t).read_values()?;
            v.sort();
            Ok(v)
        };
        assert_eq!(values("large")?, vec![2_000], "first match wins: 2000 is not also medium");
        assert_eq!(values("medium")?, vec![100, 150]);
        assert_eq!(values("small")?, vec![0, 5, 99]);
        assert_eq!(values("o1-only")?, vec![0, 5]);
    }
    Ok(())
}

#[test]
fn merge_peek_and_foreach() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("merge");
        let a = topology.stream::<String, u64>("orders");
        let b = topology.stream::<String, u64>("returns");
        let peeked = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::clone(&peeked);
        let merged = a.merge(&b).peek(move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        merged.to("all");
        let sink = Arc::clone(&seen);
        merged.foreach(move |k, v| sink.lock().unwrap_or_else(|p| p.into_inner()).push((k.clone(), *v)));
        assert!(topology.build()?.unconsumed_streams().is_empty(), "foreach consumes its stream");
        let driver = drive(&topology, lanes)?;
        driver.input::<String, u64>("returns").pipe_all([("o1".to_string(), 7), ("o9".to_string(), 1)])?;
        let all = per_key::<String, u64>(&driver, "all")?;
        assert_eq!(all["o1"].iter().sum::<u64>(), 12, "{lanes} lanes");
        assert_eq!(all["o9"], vec![1]);
        assert_eq!(all.values().map(Vec::len).sum::<usize>(), 8);
        assert_eq!(peeked.load(Ordering::Relaxed), 8);
        let mut got = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        got.sort();
        let mut expected = orders();
        expected.extend([("o1".to_string(), 7), ("o9".to_string(), 1)]);
        expected.sort();
        assert_eq!(got, expected, "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn print_consumes_its_stream() -> stoat::Result<()> {
    let topology = Topology::new("print");
    topology.stream::<String, u64>("orders").filter(|_, v| *v > 1_000).print("large");
    assert!(topology.build()?.unconsumed_streams().is_empty());
    let driver = drive(&topology, 2)?;
    assert_eq!(driver.stats().records_in, 6);
    Ok(())
}

#[test]
fn a_panicking_closure_is_the_records_error() -> stoat::Result<()> {
    let topology = Topology::new("panics");
    topology
        .stream::<String, u64>("orders")
        .flat_map_values(|v| {
            assert!(v != 99, "cannot take 99");
            [v]
        })
        .to("out");
    let driver = TestDriver::with_config(&topology, Config::default().error_policy(ErrorPolicy::Skip))?;
    driver.input::<String, u64>("orders").pipe_all(orders())?;
    assert_eq!(driver.stats().skipped_operator, 1);
    assert_eq!(driver.output::<String, u64>("out").read_values()?.len(), 5);
    Ok(())
}
