//! Per-key order with lane counts unrelated to partition counts: every key's records reach each
//! operator in the order they were produced, always on the same lane, before and after an
//! in-memory re-key.

use std::collections::HashMap;

use stoat::prelude::*;

#[stoat::state]
struct LastSeen {
    first_stage: Table<u32, u64>,
    second_stage: Table<String, u64>,
}

#[derive(Debug)]
struct OutOfOrder(String);
impl std::fmt::Display for OutOfOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for OutOfOrder {}

/// Fails unless `seq` follows the last sequence number seen for `key`; re-keys to a string key.
#[stoat::operator]
fn check_first(
    #[key] key: &u32,
    seq: u64,
    seen: &mut LastSeen,
    ctx: &Context,
) -> Result<KeyValue<String, (u64, usize)>, OutOfOrder> {
    let last = seen.first_stage.get(key).map_err(|e| OutOfOrder(e.to_string()))?;
    if last.is_some_and(|l| l + 1 != seq) || (last.is_none() && seq != 0) {
        return Err(OutOfOrder(format!("key {key}: {seq} after {last:?}")));
    }
    seen.first_stage.put(*key, seq).map_err(|e| OutOfOrder(e.to_string()))?;
    Ok(KeyValue::new(format!("k{key}"), (seq, ctx.lane())))
}

/// The same check after the re-key; emits (seq, lane of stage one, lane of stage two).
#[stoat::operator]
fn check_second(
    #[key] key: &str,
    v: (u64, usize),
    seen: &mut LastSeen,
    ctx: &Context,
) -> Result<String, OutOfOrder> {
    let last = seen.second_stage.get(key).map_err(|e| OutOfOrder(e.to_string()))?;
    if last.is_some_and(|l| l + 1 != v.0) || (last.is_none() && v.0 != 0) {
        return Err(OutOfOrder(format!("key {key}: {} after {last:?}", v.0)));
    }
    seen.second_stage.put(key.to_owned(), v.0).map_err(|e| OutOfOrder(e.to_string()))?;
    Ok(format!("{} {} {}", v.0, v.1, ctx.lane()))
}

fn run(partitions: u32, lanes: usize) -> stoat::Result<()> {
    let topology = Topology::new("ordering");
    topology.stream::<u32, u64>("in").process(check_first {}).process(check_second {}).to("out");
    let driver =
        TestDriver::with_config(&topology, Config::default().lanes(lanes).commit_max_records(3_000))?;
    driver.create_topic("in", partitions);
    let input = driver.input::<u32, u64>("in");
    let keys = 300u32;
    let per_key = 40u64;
    // Interleave keys so each batch mixes many keys and partitions.
    let records: Vec<(u32, u64)> = (0..per_key).flat_map(|seq| (0..keys).map(move |k| (k, seq))).collect();
    for chunk in records.chunks(2_500) {
        input.pipe_all(chunk.iter().copied())?;
    }
    let out = driver.output::<String, String>("out").read_key_values()?;
    assert_eq!(out.len(), (keys as u64 * per_key) as usize);
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut lanes_of: HashMap<String, (usize, usize)> = HashMap::new();
    for (key, v) in out {
        let parts: Vec<usize> = v.split(' ').filter_map(|p| p.parse().ok()).collect();
        let (seq, lane1, lane2) = (parts[0] as u64, parts[1], parts[2]);
        let expected = next.entry(key.clone()).or_insert(0);
        assert_eq!(seq, *expected, "output order of {key}");
        *expected += 1;
        let first = *lanes_of.entry(key.clone()).or_insert((lane1, lane2));
        assert_eq!(first, (lane1, lane2), "{key} stays on its lanes");
    }
    let used: std::collections::HashSet<usize> = lanes_of.values().map(|l| l.1).collect();
    assert!(
        used.len() * 4 >= lanes.min(keys as usize) * 3,
        "keys spread over the lanes: {} of {lanes} used",
        used.len()
    );
    assert_eq!(driver.stats().skipped(), 0);
    Ok(())
}

#[test]
fn one_partition_sixty_four_lanes() -> stoat::Result<()> {
    run(1, 64)
}

#[test]
fn sixteen_partitions_three_lanes() -> stoat::Result<()> {
    run(16, 3)
}

#[test]
fn keyless_records_spread_over_lanes() -> stoat::Result<()> {
    #[stoat::operator]
    fn which_lane(_line: String, ctx: &Context) -> u64 {
        ctx.lane() as u64
    }
    let topology = Topology::new("spread");
    topology.stream::<(), String>("in").process(which_lane {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(4))?;
    driver.input::<(), String>("in").pipe_values((0..2_000).map(|i| i.to_string()))?;
    let lanes: std::collections::HashSet<u64> =
        driver.output::<(), u64>("out").read_values()?.into_iter().collect();
    assert_eq!(lanes.len(), 4, "records without a key are spread over all lanes");
    Ok(())
}

/// Unkeyed orders `partition/seq/customer` from 4 partitions, grouped by customer into the list
/// of orders each customer's group saw, in order: with `order`, whether every customer's orders
/// of one partition came in offset order.
fn partition_order_kept(order: RekeyOrder, lanes: usize) -> stoat::Result<bool> {
    let topology = Topology::new("rekey-order");
    topology
        .stream::<(), String>("orders")
        .group_by(|_, o| o.rsplit('/').next().unwrap_or_default().to_string())
        .aggregate("seen", String::new, |_, o, seen| if seen.is_empty() { o } else { format!("{seen} {o}") })
        .to("seen");
    let config = Config::default().lanes(lanes).rekey_order(order).commit_max_records(5_000);
    let driver = TestDriver::with_config(&topology, config)?;
    driver.create_topic("orders", 4);
    for seq in 0..2_000u32 {
        for p in 0..4u32 {
            let value = format!("{p}/{seq}/c{}", (seq * 7 + p) % 5);
            driver.log().produce_to("orders", p, None, Some(value.into_bytes()), i64::from(seq))?;
        }
    }
    driver.run()?;
    let mut last: HashMap<String, String> = HashMap::new();
    for (customer, seen) in driver.output::<String, String>("seen").read_key_values()? {
        last.insert(customer, seen);
    }
    assert_eq!(last.len(), 5);
    for seen in last.values() {
        let mut next: HashMap<&str, u32> = HashMap::new();
        for order in seen.split(' ') {
            let mut parts = order.split('/');
            let (p, seq) =
                (parts.next().unwrap_or_default(), parts.next().and_then(|s| s.parse().ok()).unwrap_or(0));
            let before = next.insert(p, seq);
            if before.is_some_and(|b| b >= seq) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[test]
fn input_partition_order_keeps_each_partitions_records_in_order_through_a_rekey() -> stoat::Result<()> {
    for lanes in [1, 3, 16, 300] {
        assert!(partition_order_kept(RekeyOrder::InputPartition, lanes)?, "{lanes} lanes");
    }
    Ok(())
}

/// Not a test of stoat's promise: shows that the default spreads one partition's unkeyed records
/// over the lanes, so their order through a re-key is not kept (what the mode above fixes).
#[test]
fn per_key_order_spreads_a_partitions_unkeyed_records_over_the_lanes() -> stoat::Result<()> {
    assert!(
        !partition_order_kept(RekeyOrder::PerKey, 16)?,
        "16 lanes spreading one partition kept its order"
    );
    Ok(())
}

/// Runs a pass-through of two partitions, one with a record every millisecond and one with a
/// record every 10 ms (each poll fetches as many of either, so the sparse one runs far ahead in
/// time); returns the output timestamps.
fn dense_and_sparse(order: DispatchOrder, max_records: usize) -> stoat::Result<Vec<i64>> {
    const IN: Topic<u32, u64> = Topic::new("in");
    let topology = Topology::new("dense-sparse");
    topology.source(&IN).to("out");
    let config = Config::default().lanes(1).dispatch_order(order).commit_max_records(max_records);
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    log.create_topic("in", 2);
    for i in 0..6_000u64 {
        let value = Some(i.to_be_bytes().to_vec());
        log.produce_to("in", 0, Some(0u32.to_be_bytes().to_vec()), value.clone(), 1_000 + i as i64)?;
        log.produce_to("in", 1, Some(1u32.to_be_bytes().to_vec()), value, 1_000 + 10 * i as i64)?;
    }
    app.run_until_idle()?;
    Ok(log.read_all("out").iter().map(|(_, r)| r.timestamp).collect())
}

#[test]
fn a_backlog_on_several_partitions_is_processed_in_timestamp_order_across_polls() -> stoat::Result<()> {
    for max_records in [7, 100_000] {
        let times = dense_and_sparse(DispatchOrder::Timestamp, max_records)?;
        assert_eq!(times.len(), 12_000, "every record, in one run ({max_records} per epoch)");
        let behind = times.windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(behind, 0, "timestamps never go back ({max_records} per epoch)");
    }
    // Without the merge, each poll's records of the sparse partition run ahead.
    let times = dense_and_sparse(DispatchOrder::Arrival, 100_000)?;
    assert_eq!(times.len(), 12_000);
    assert!(times.windows(2).any(|w| w[1] < w[0]), "arrival order goes back in time");
    Ok(())
}
