//! The operator shapes `#[stoat::operator]` accepts, through generated harnesses and the test
//! driver: plain values, options, vectors, iterators, results, re-keying, whole records, context,
//! closures (filter, map_values, key_by) and fan-out.

use stoat::prelude::*;

#[stoat::operator]
fn double(n: i64) -> i64 {
    n * 2
}

#[stoat::operator]
fn positive(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

#[stoat::operator]
fn digits(n: i64) -> impl Iterator<Item = u32> {
    n.unsigned_abs().to_string().chars().filter_map(|c| c.to_digit(10)).collect::<Vec<_>>().into_iter()
}

#[stoat::operator]
fn parse(text: &str) -> Result<i64, std::num::ParseIntError> {
    text.trim().parse()
}

#[stoat::operator(name = "by-parity")]
fn by_parity(n: i64) -> KeyValue<bool, i64> {
    KeyValue::new(n % 2 == 0, n)
}

#[stoat::operator]
fn describe(record: &Record<String, i64>, ctx: &Context) -> String {
    format!("{}={}@{}#{}", record.key, record.value, record.timestamp, ctx.offset())
}

#[stoat::operator]
fn keyed(#[key] key: String, value: i64) -> Vec<KeyValue<String, i64>> {
    vec![KeyValue::new(format!("{key}-a"), value), KeyValue::new(format!("{key}-b"), -value)]
}

#[test]
fn harnesses_run_each_shape() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(Harness::new(double {})?.process((), 21)?, vec![((), 42)]);
    assert_eq!(Harness::new(positive {})?.process((), -3)?, vec![]);
    assert_eq!(Harness::new(digits {})?.process((), 907)?, vec![((), 9), ((), 0), ((), 7)]);
    assert_eq!(Harness::new(parse {})?.process((), " 12 ".into())?, vec![((), 12)]);
    let err =
        Harness::new(parse {})?.process((), "x".into()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("operator `parse`") && err.ends_with("invalid digit found in string"), "{err}");
    assert_eq!(Harness::new(by_parity {})?.process((), 7)?, vec![(false, 7)]);
    assert_eq!(Harness::new(keyed {})?.process("k".into(), 3)?, vec![("k-a".into(), 3), ("k-b".into(), -3)]);
    let mut h = Harness::new(describe {})?;
    let out = h.process_record(Record::new("x".to_string(), 5).with_timestamp(77))?;
    assert_eq!(out[0].value, "x=5@77#0");
    assert_eq!(out[0].timestamp, 77, "outputs carry the input's timestamp");
    // The function itself stays callable.
    assert_eq!(double(4), 8);
    Ok(())
}

#[test]
fn operator_metadata_comes_from_the_signature() {
    use stoat::Operator;
    assert_eq!(<by_parity as Operator<(), i64, _>>::NAME, "by-parity");
    assert_eq!(
        [<by_parity as Operator<(), i64, _>>::REKEYS, <double as Operator<String, i64, _>>::REKEYS],
        [true, false]
    );
}

#[test]
fn a_topology_of_every_shape() -> stoat::Result<()> {
    let topology = Topology::new("shapes");
    let numbers = topology.stream::<String, String>("text").process(parse {});
    numbers.process(double {}).filter(|_, n| *n != 0).to("doubled");
    numbers.process(positive {}).process(digits {}).map_values(|d| d as i64).to("digits");
    numbers.process(by_parity {}).process(double {}).to("parity");
    numbers.process(describe {}).to("described");
    numbers.key_by(|k, _| k.to_uppercase()).process(keyed {}).to("keyed");

    let driver = TestDriver::new(&topology)?;
    let text = driver.input::<String, String>("text");
    text.set_time(1_000);
    text.pipe_all([
        ("a".to_string(), "12".to_string()),
        ("b".into(), "-3".into()),
        ("c".into(), "0".into()),
    ])?;

    let mut doubled = driver.output::<String, i64>("doubled").read_key_values()?;
    doubled.sort();
    assert_eq!(doubled, vec![("a".into(), 24), ("b".into(), -6)]);
    assert_eq!(
        driver.output::<String, i64>("digits").read_key_values()?,
        vec![("a".into(), 1), ("a".into(), 2)]
    );
    let mut parity = driver.output::<bool, i64>("parity").read_key_values()?;
    parity.sort();
    assert_eq!(parity, vec![(false, -6), (true, 0), (true, 24)]);
    let mut described = driver.output::<String, String>("described").read_values()?;
    described.sort();
    assert_eq!(described, vec!["a=12@1000#0", "b=-3@1000#1", "c=0@1000#2"]);
    let mut rekeyed = driver.output::<String, i64>("keyed").read_key_values()?;
    rekeyed.sort();
    assert_eq!(rekeyed[0], ("A-a".into(), 12));
    assert_eq!(rekeyed.len(), 6);
    let records = driver.output::<String, i64>("doubled");
    assert!(records.is_empty()?);
    Ok(())
}

#[test]
fn the_test_driver_refuses_to_read_a_topic_the_topology_does_not_write() -> stoat::Result<()> {
    let topology = Topology::new("typo");
    topology.stream::<(), u64>("in").map_values(|n| n + 1).to("out");
    let driver = TestDriver::new(&topology)?;
    driver.input::<(), u64>("in").pipe_value(1)?;
    let err = driver.output::<(), u64>("uot").read_values().expect_err("a misspelled topic");
    assert!(err.to_string().contains("`uot` is not written") && err.to_string().contains("out"), "{err}");
    assert_eq!(driver.output::<(), u64>("out").read_values()?, vec![2]);
    Ok(())
}

const NUMBERS: Topic<String, u64> = Topic::new("numbers");
const DOUBLED: Topic<String, u64> = Topic::new("doubled");

#[test]
fn a_topic_declared_once_serves_the_topology_the_driver_and_the_log() -> stoat::Result<()> {
    let topology = Topology::new("topics");
    topology.source(&NUMBERS).map_values(|n| n * 2).sink(&DOUBLED);
    let driver = TestDriver::new(&topology)?;
    driver.input_topic(&NUMBERS).pipe("a".into(), 21)?;
    // An external producer's record, typed the same way.
    driver.log().send(&NUMBERS, &"b".to_string(), &50)?;
    driver.run()?;
    let mut out = driver.output_topic(&DOUBLED).read_key_values()?;
    out.sort();
    assert_eq!(out, vec![("a".to_string(), 42), ("b".to_string(), 100)]);
    // The same types under a name known at run time.
    assert_eq!(NUMBERS.renamed("numbers-eu").name(), "numbers-eu");
    Ok(())
}

mod aliased {
    /// A result alias with the error fixed, as `anyhow::Result<T>` or `io::Result<T>` are.
    pub type Result<T> = std::result::Result<T, String>;
}

#[stoat::operator]
fn parse_number(text: String) -> aliased::Result<u64> {
    text.trim().parse().map_err(|_| format!("`{text}` is not a number"))
}

#[test]
fn a_result_alias_with_a_fixed_error_type_is_an_operator_return_type() -> stoat::Result<()> {
    let topology = Topology::new("aliased");
    topology.stream::<(), String>("in").process(parse_number {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().error_policy(ErrorPolicy::Skip))?;
    driver.input::<(), String>("in").pipe_values(["7".to_string(), "x".to_string(), " 35 ".to_string()])?;
    let mut out = driver.output::<(), u64>("out").read_values()?;
    out.sort(); // records without a key are spread over the lanes: no order among them
    assert_eq!(out, vec![7, 35]);
    assert_eq!(driver.stats().skipped_operator, 1);
    Ok(())
}

#[test]
fn a_stream_that_goes_nowhere_is_reported() -> stoat::Result<()> {
    let topology = Topology::new("dangling");
    let numbers = topology.stream::<(), u64>("in");
    numbers.map_values(|n| n + 1).to("out");
    numbers.filter(|_, n| *n > 3);
    let program = topology.build()?;
    assert_eq!(program.unconsumed_streams(), ["the output of `filter`".to_string()]);
    let complete = Topology::new("complete");
    complete.stream::<(), u64>("in").map_values(|n| n + 1).to("out");
    assert!(complete.build()?.unconsumed_streams().is_empty());
    Ok(())
}
