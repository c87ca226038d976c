//! Records that cannot be decoded or processed: the default policy stops with an error naming
//! topic, partition, offset and cause (and commits nothing of the failing epoch); `Skip` skips
//! and counts them.

mod support;

use stoat::prelude::*;
use stoat::Error;
use support::orders::{amount, order_json, Order};

fn orders() -> Topology {
    let topology = Topology::new("orders");
    topology.stream_with("orders", Utf8, Json::<Order>::new()).process(amount {}).to("amounts");
    topology
}

fn good(id: u32) -> Vec<u8> {
    order_json(id, 10)
}

#[test]
fn an_undecodable_record_stops_the_app_with_its_location() -> stoat::Result<()> {
    let driver = TestDriver::new(&orders())?;
    let input = driver.input_with("orders", Utf8, Json::<Order>::new());
    input.pipe("a".into(), Order { id: 1, amount: 5 })?;
    let err = input.pipe_raw(Some(b"b"), Some(b"{\"id\": 2, \"amount\": \"lots\"}")).err();
    let Some(Error::Decode { part, location, cause: source }) = err else {
        panic!("expected a decode error, got {err:?}")
    };
    assert_eq!(part, "value");
    assert_eq!((location.topic.as_str(), location.partition, location.offset), ("orders", 0, 1));
    let text = Error::Decode { part, location, cause: source }.to_string();
    assert!(text.contains("topic `orders`") && text.contains("offset 1") && text.contains("json"), "{text}");
    // The failing epoch is not committed: only the first record's output exists.
    assert_eq!(driver.output::<String, i64>("amounts").read_values()?, vec![5]);
    Ok(())
}

#[test]
fn skip_policy_counts_undecodable_records_and_keeps_the_rest() -> stoat::Result<()> {
    let driver =
        TestDriver::with_config(&orders(), Config::default().lanes(2).error_policy(ErrorPolicy::Skip))?;
    let log = driver.log();
    for id in 0..10u32 {
        log.produce("orders", Some(id.to_string().into_bytes()), Some(good(id)), 0, Vec::new());
        if id % 3 == 0 {
            log.produce("orders", Some(b"x".to_vec()), Some(b"not json".to_vec()), 0, Vec::new());
        }
    }
    log.produce("orders", Some(vec![0xff]), Some(good(99)), 0, Vec::new());
    driver.run()?;
    let stats = driver.stats();
    assert_eq!(stats.skipped_decode, 5, "4 bad values and 1 bad key");
    assert_eq!(stats.records_in, 15);
    let mut amounts = driver.output::<String, i64>("amounts").read_values()?;
    amounts.sort();
    assert_eq!(amounts, (0..10).map(|i| i * 10).collect::<Vec<i64>>());
    Ok(())
}

#[derive(Debug)]
struct Refused(u32);
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order {} refused", self.0)
    }
}
impl std::error::Error for Refused {}

#[stoat::operator]
fn accept(order: Order) -> Result<Order, Refused> {
    if order.amount < 0 {
        Err(Refused(order.id))
    } else {
        Ok(order)
    }
}

fn accepting() -> Topology {
    let topology = Topology::new("accept");
    topology.stream_with("orders", Utf8, Json::<Order>::new()).process(accept {}).to_with(
        "accepted",
        Utf8,
        Json::<Order>::new(),
    );
    topology
}

#[test]
fn an_operator_error_names_the_operator_and_the_record() -> stoat::Result<()> {
    let driver = TestDriver::new(&accepting())?;
    let input = driver.input_with("orders", Utf8, Json::<Order>::new());
    input.pipe("a".into(), Order { id: 1, amount: 1 })?;
    let err =
        input.pipe("b".into(), Order { id: 2, amount: -1 }).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("operator `accept`") && err.contains("offset 1") && err.contains("order 2 refused"),
        "{err}"
    );
    Ok(())
}

#[test]
fn skip_policy_counts_operator_errors() -> stoat::Result<()> {
    let driver = TestDriver::with_config(&accepting(), Config::default().error_policy(ErrorPolicy::Skip))?;
    let input = driver.input_with("orders", Utf8, Json::<Order>::new());
    input.pipe_all(
        (0..20).map(|i| (i.to_string(), Order { id: i, amount: if i % 4 == 0 { -1 } else { 1 } })),
    )?;
    assert_eq!(driver.stats().skipped_operator, 5);
    let out = driver.output_with("accepted", Utf8, Json::<Order>::new()).read_values()?;
    assert_eq!(out.len(), 15);
    Ok(())
}

#[test]
fn invalid_configuration_is_rejected_by_name() {
    let err =
        App::embedded(&orders(), Config::default().lanes(0)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`lanes`"), "{err}");
    let err = App::embedded(&orders(), Config::default().commit_max_records(0)).err().map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("commit_max_records"));
    let err = App::embedded(&orders(), Config::default().lane_groups(0)).err().map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("`lane_groups`"));
}

#[test]
fn lane_groups_are_bounded_by_the_lanes_and_size_the_default_budget() {
    let config = Config::default().lanes(10_000).worker_threads(2);
    assert_eq!(config.effective_lane_groups(), 64);
    assert_eq!(config.effective_max_in_flight(), 64 * 16 * 256, "16 batches per group, not per lane");
    assert_eq!(Config::default().lanes(3).lane_groups(8).effective_lane_groups(), 3);
    assert_eq!(Config::default().lanes(1_000).worker_threads(48).effective_lane_groups(), 96);
}

#[test]
fn null_keys_and_values_are_dropped_and_counted_where_the_stream_has_no_null() -> stoat::Result<()> {
    let topology = Topology::new("nulls");
    topology.stream::<String, u64>("strict").map_values(|v| v + 1).to("strict-out");
    // `Option` types keep nulls: a tombstone is `None`, and `None` is written as one.
    topology
        .stream::<Option<String>, Option<u64>>("nullable")
        .map_values(|v| v.map(|n| n * 10))
        .to("nullable-out");
    let driver = TestDriver::new(&topology)?;
    let strict = driver.input::<String, u64>("strict");
    strict.pipe("a".into(), 1)?;
    strict.pipe_raw(None, Some(&2u64.to_be_bytes()))?; // null key
    strict.pipe_raw(Some(b"b"), None)?; // tombstone
    strict.pipe("c".into(), 3)?;
    let stats = driver.stats();
    assert_eq!((stats.dropped_null_keys, stats.dropped_null_values), (1, 1));
    assert_eq!(stats.skipped(), 0, "a null is not a decode error");
    assert_eq!(
        driver.output::<String, u64>("strict-out").read_key_values()?,
        vec![("a".into(), 2), ("c".into(), 4)]
    );

    let nullable = driver.input::<Option<String>, Option<u64>>("nullable");
    nullable.pipe_raw(None, Some(&7u64.to_be_bytes()))?;
    nullable.pipe_raw(Some(b"k"), None)?;
    let mut out = driver.output::<Option<String>, Option<u64>>("nullable-out").read_key_values()?;
    out.sort(); // two keys, two partitions: no order between them
    assert_eq!(out, vec![(None, Some(70)), (Some("k".to_string()), None)]);
    // The tombstone went out as a null value.
    let raw = driver.log().read_all("nullable-out");
    let mut nulls: Vec<bool> = raw.iter().map(|(_, r)| r.value.is_none()).collect();
    nulls.sort();
    assert_eq!(nulls, [false, true]);
    Ok(())
}
