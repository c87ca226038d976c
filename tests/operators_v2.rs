//! The operator model's parameter and output kinds, each recognised through a trait rather than
//! by how a type is spelled: a user type called `Record`, an alias of a re-keying return type,
//! `anyhow::Result`, read-only and key-scoped state, outputs that set timestamp and headers,
//! operators built from values, and the function staying a plain function.

use stoat::prelude::*;

/// A user type that happens to be called `Record`: it is a record value like any other.
mod domain {
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Record {
        pub id: u32,
        pub note: String,
    }
}

#[stoat::operator]
fn note_of(record: domain::Record) -> String {
    format!("{}:{}", record.id, record.note)
}

/// An alias of a re-keying return type re-keys.
type Words = Vec<KeyValue<String, u64>>;

#[stoat::operator]
fn words(line: String) -> Words {
    line.split_whitespace().map(|w| KeyValue::new(w.to_string(), 1)).collect()
}

#[stoat::operator]
fn strict_parse(text: &str) -> anyhow::Result<u64> {
    let n: u64 = text.trim().parse()?;
    anyhow::ensure!(n < 1000, "{n} is too large");
    Ok(n)
}

#[stoat::state]
struct Counts {
    per_word: Table<String, u64>,
}

#[stoat::operator]
fn count(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> {
    let total = counts.per_word.get(word)?.unwrap_or(0) + n;
    counts.per_word.put(word.to_owned(), total)?;
    Ok(total)
}

/// Reads the state `count` writes, without writing it.
#[stoat::operator]
fn share(#[key] word: &str, total: u64, counts: &Counts) -> Result<String, StoreError> {
    let all: u64 = counts.per_word.iter()?.iter().map(|(_, n)| n).sum();
    Ok(format!("{word} {total}/{all}"))
}

/// Key-scoped state: a running total per key, in a store named after the operator.
#[stoat::operator]
fn running_total(amount: u64, total: &mut Keyed<u64>) -> Result<u64, StoreError> {
    let sum = total.get()?.unwrap_or(0) + amount;
    if sum >= 100 {
        total.delete()?;
    } else {
        total.set(sum)?;
    }
    Ok(sum)
}

/// Sets the output's timestamp and adds a header to the input's.
#[stoat::operator]
fn stamp(#[key] id: &str, v: u64, ctx: &Context) -> Emit<String, u64> {
    let source = ctx.header("source").map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    Emit::new(format!("{id}@{source}"), v)
        .timestamp(ctx.timestamp() + 1_000)
        .header("stamped", b"yes".to_vec())
}

/// An operator built from a value: its threshold comes from configuration.
struct Threshold {
    min: u64,
}

#[stoat::operator]
impl Threshold {
    fn above(&self, v: u64) -> Option<u64> {
        (v >= self.min).then_some(v)
    }
}

/// The function stays a function: recursion inside it and a local of the same name elsewhere.
#[stoat::operator]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// A whole record by value.
#[stoat::operator]
fn age(record: Record<String, u64>) -> String {
    format!("{}={}@{}", record.key, record.value, record.timestamp)
}

mod renamed {
    pub use stoat as engine;
}

/// `crate = "..."` for code that reaches stoat under another path.
#[stoat::operator(crate = "crate::renamed::engine")]
fn through_another_path(v: u64) -> u64 {
    v + 1
}

#[test]
fn a_user_type_named_record_is_a_value() -> stoat::Result<()> {
    let mut h = Harness::new(note_of {})?;
    let out = h.process((), domain::Record { id: 7, note: "ok".into() })?;
    assert_eq!(out, vec![((), "7:ok".to_string())]);
    Ok(())
}

#[test]
fn an_alias_of_a_rekeying_return_type_rekeys() -> stoat::Result<()> {
    use stoat::Operator;
    let rekeys =
        [<words as Operator<(), String, _>>::REKEYS, <note_of as Operator<(), domain::Record, _>>::REKEYS];
    assert_eq!(rekeys, [true, false]);
    let topology = Topology::new("alias");
    topology.stream::<(), String>("in").process(words {}).process(count {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(4))?;
    driver.input::<(), String>("in").pipe_values(["a b a".to_string(), "b a".to_string()])?;
    let counts = driver.output::<String, u64>("out").read_key_values_to_map()?;
    assert_eq!((counts["a"], counts["b"]), (3, 2));
    Ok(())
}

#[test]
fn anyhow_errors_go_to_the_error_policy() -> stoat::Result<()> {
    let topology = Topology::new("anyhow");
    topology.stream::<(), String>("in").process(strict_parse {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().error_policy(ErrorPolicy::Skip))?;
    driver.input::<(), String>("in").pipe_values(["7".into(), "x".into(), "5000".into(), "12".into()])?;
    let mut out = driver.output::<(), u64>("out").read_values()?;
    out.sort(); // records without a key are spread over the lanes: no order among them
    assert_eq!(out, vec![7, 12]);
    assert_eq!(driver.stats().skipped_operator, 2);
    let err = Harness::new(strict_parse {})?.process((), "5000".into()).err().map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("5000 is too large"));
    Ok(())
}

#[test]
fn read_only_state_sees_the_writes_of_the_operator_before_it() -> stoat::Result<()> {
    let topology = Topology::new("read-only");
    topology.stream::<(), String>("in").process(words {}).process(count {}).process(share {}).to("out");
    let driver = TestDriver::new(&topology)?;
    driver.input::<(), String>("in").pipe_value("x".to_string())?;
    driver.input::<(), String>("in").pipe_value("x".to_string())?;
    assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["x 1/1", "x 2/2"]);
    Ok(())
}

#[test]
fn key_scoped_state_keeps_one_value_per_key_and_survives_commits() -> stoat::Result<()> {
    let topology = Topology::new("keyed");
    topology.stream::<String, u64>("in").process(running_total {}).to("out");
    let program = topology.build()?;
    assert_eq!(program.stores().iter().map(|s| s.name).collect::<Vec<_>>(), ["running_total"]);
    let driver = TestDriver::with_config(&topology, Config::default().lanes(3))?;
    let input = driver.input::<String, u64>("in");
    for (k, v) in [("a", 10), ("b", 1), ("a", 5), ("b", 2), ("a", 90), ("a", 4)] {
        input.pipe(k.to_string(), v)?;
        driver.run()?;
    }
    let out = driver.output::<String, u64>("out").read_key_values()?;
    let of = |key: &str| out.iter().filter(|(k, _)| k == key).map(|(_, v)| *v).collect::<Vec<_>>();
    assert_eq!(of("a"), [10, 15, 105, 4], "the total is deleted once it reaches 100");
    assert_eq!(of("b"), [1, 3]);
    Ok(())
}

#[test]
fn key_scoped_state_in_a_harness() -> stoat::Result<()> {
    let mut h = Harness::new(running_total {})?;
    assert_eq!(h.process(1u32, 40)?, vec![(1, 40)]);
    h.commit()?;
    assert_eq!(h.process(1u32, 2)?, vec![(1, 42)]);
    assert_eq!(h.process(2u32, 2)?, vec![(2, 2)]);
    Ok(())
}

#[test]
fn an_output_can_set_its_timestamp_and_headers() -> stoat::Result<()> {
    let mut h = Harness::new(stamp {})?;
    let mut input = Record::new("o1".to_string(), 9).with_timestamp(5_000);
    input.headers.push(("source".into(), b"web".to_vec()));
    let out = h.process_record(input)?;
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].key.as_str(), out[0].value, out[0].timestamp), ("o1@web", 9, 6_000));
    assert_eq!(out[0].headers, vec![("source".into(), b"web".to_vec()), ("stamped".into(), b"yes".to_vec())]);

    let topology = Topology::new("stamped");
    topology.stream::<String, u64>("in").process(stamp {}).to("out");
    let driver = TestDriver::new(&topology)?;
    driver.input::<String, u64>("in").pipe_at("o2".to_string(), 3, 10)?;
    let records = driver.output::<String, u64>("out").read_records()?;
    assert_eq!((records[0].key.as_str(), records[0].timestamp), ("o2@", 1_010));
    Ok(())
}

#[test]
fn an_operator_built_from_a_value_takes_its_settings() -> stoat::Result<()> {
    let topology = Topology::new("threshold");
    let numbers = topology.stream::<(), u64>("in");
    numbers.process(Threshold { min: 10 }).to("ten");
    numbers.process(Threshold { min: 50 }).to("fifty");
    let driver = TestDriver::new(&topology)?;
    driver.input::<(), u64>("in").pipe_values([5, 20, 70])?;
    let mut ten = driver.output::<(), u64>("ten").read_values()?;
    ten.sort();
    assert_eq!(ten, vec![20, 70]);
    assert_eq!(driver.output::<(), u64>("fifty").read_values()?, vec![70]);
    assert_eq!(Threshold { min: 3 }.above(4), Some(4), "the method stays a method");
    Ok(())
}

#[test]
fn the_function_stays_a_plain_function() -> stoat::Result<()> {
    let fib = fib(10); // a local named like the operator: no clash with its marker
    assert_eq!(fib, 55);
    assert_eq!(Harness::new(self::fib {})?.process((), 12)?, vec![((), 144)]);
    assert_eq!(through_another_path(1), 2);
    assert_eq!(Harness::new(through_another_path {})?.process((), 1)?, vec![((), 2)]);
    Ok(())
}

#[test]
fn a_whole_record_by_value() -> stoat::Result<()> {
    let mut h = Harness::new(age {})?;
    let out = h.process_record(Record::new("k".to_string(), 3).with_timestamp(9))?;
    assert_eq!((out[0].key.as_str(), out[0].value.as_str()), ("k", "k=3@9"));
    Ok(())
}

#[stoat::state]
struct Ledger {
    entries: Table<u64, u64>,
}

#[stoat::operator]
fn both(v: u64, _a: &mut Ledger, _b: &Ledger) -> u64 {
    v
}

#[stoat::operator]
fn two_states(v: u64, ledger: &mut Ledger, counts: &Counts) -> Result<u64, StoreError> {
    ledger.entries.put(v, v)?;
    Ok(counts.per_word.iter()?.len() as u64)
}

#[test]
fn an_operator_takes_several_states_but_never_one_twice_mutably() -> stoat::Result<()> {
    let ok = Topology::new("two-states");
    ok.stream::<u64, u64>("in").process(two_states {}).to("out");
    assert_eq!(ok.build()?.stores().len(), 2);

    let bad = Topology::new("aliasing");
    bad.stream::<u64, u64>("in").process(both {}).to("out");
    let err = bad.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("operator `both` takes") && err.contains("Ledger"), "{err}");
    Ok(())
}

mod v2 {
    use stoat::prelude::*;

    /// `running_total` after its values changed meaning: its store's version is bumped.
    #[stoat::operator(name = "running_total", version = 2)]
    pub fn running_total(amount: u64, total: &mut Keyed<u64>) -> Result<u64, StoreError> {
        total.set(amount)?;
        Ok(amount)
    }

    /// Another operator called `running_total`, keeping other values.
    #[stoat::operator(name = "running_total")]
    pub fn clashing(amount: u64, total: &mut Keyed<String>) -> Result<u64, StoreError> {
        total.set(amount.to_string())?;
        Ok(amount)
    }
}

#[test]
fn a_key_scoped_store_is_versioned_with_its_operator() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    let with = |op_version: u32| {
        let topology = Topology::new("keyed-versions");
        let s = topology.stream::<String, u64>("in");
        if op_version == 1 {
            s.process(running_total {}).to("out");
        } else {
            s.process(v2::running_total {}).to("out");
        }
        App::embedded(&topology, Config::default().state_dir(dir.path()))
    };
    drop(with(1)?);
    let err = with(2).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`running_total`") && err.contains("v1") && err.contains("v2"), "{err}");
    drop(with(1)?);
    Ok(())
}

#[test]
fn two_operators_of_one_name_cannot_share_a_key_scoped_store_of_other_types() {
    let topology = Topology::new("keyed-clash");
    let s = topology.stream::<String, u64>("in");
    s.process(running_total {}).to("a");
    s.process(v2::clashing {}).to("b");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("two operators named `running_total`"), "{err}");
}

/// `#[cfg]` applies to the operator as a whole: of these two, only one exists.
#[stoat::operator]
#[cfg(any())]
fn flavour(v: u64) -> String {
    format!("off {v}")
}

#[stoat::operator]
#[cfg(not(any()))]
fn flavour(v: u64) -> String {
    format!("on {v}")
}

#[test]
fn cfg_attributes_apply_to_the_operator_and_its_function() -> stoat::Result<()> {
    assert_eq!(Harness::new(flavour {})?.process((), 1)?, vec![((), "on 1".to_string())]);
    Ok(())
}

#[test]
fn an_error_prints_each_cause_once() -> stoat::Result<()> {
    let err = Harness::new(strict_parse {})?.process((), "5000".into()).err();
    let Some(err) = err else { panic!("5000 is refused") };
    assert!(err.to_string().contains("5000 is too large"), "the message carries its cause: {err}");
    // A printer that walks the chain (anyhow's `{:?}`, tracing) shows the cause once.
    let printed = format!("{:?}", anyhow::Error::from(err));
    assert_eq!(printed.matches("5000 is too large").count(), 1, "{printed}");
    Ok(())
}

#[test]
fn key_scoped_state_needs_a_key() {
    let topology = Topology::new("keyed-unkeyed");
    topology.stream::<(), u64>("in").process(running_total {}).to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("operator `running_total` keeps key-scoped state") && err.contains("no key"),
        "{err}"
    );
}
