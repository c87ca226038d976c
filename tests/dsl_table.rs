//! Tables from topics and stream-table joins (Kafka Streams 4.4: the lookup sees the table as of
//! processing order; the result carries the stream record's timestamp; a deleted key joins like
//! a missing one), with 1, 3, 16 and 300 lanes.

use std::collections::HashMap;

use stoat::prelude::*;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Customer {
    name: String,
}

const CUSTOMERS: Topic<String, Customer> = Topic::json("customers");
const ORDERS: Topic<String, String> = Topic::new("orders");

fn topology() -> Topology {
    let topology = Topology::new("enrich");
    let customers = topology.table(&CUSTOMERS, "customers");
    let orders = topology.source(&ORDERS);
    orders.join(&customers, |order, c: Customer| format!("{order} {}", c.name)).to("enriched");
    orders
        .left_join(&customers, |order, c: Option<Customer>| {
            format!("{order} {}", c.map_or("-".to_string(), |c| c.name))
        })
        .to("enriched-left");
    customers.to_stream().map_values(|c| c.map(|c| c.name)).to("customer-changes");
    topology
}

enum Step {
    Customer(&'static str, Option<&'static str>, i64),
    Order(&'static str, &'static str, i64),
}

fn steps() -> Vec<Step> {
    use Step::*;
    vec![
        Customer("ann", Some("Ann"), 100),
        Order("ann", "o1", 50),
        Order("bob", "o2", 60),
        Customer("bob", Some("Bob"), 200),
        Order("bob", "o3", 70),
        Customer("ann", None, 300),
        Order("ann", "o4", 80),
        Customer("ann", Some("Ann2"), 400),
        Order("ann", "o5", 90),
        Customer("cid", None, 500),
    ]
}

type PerKey<V> = HashMap<String, Vec<(V, i64)>>;

fn per_key<V: stoat::Data + stoat::codec::DefaultCodec>(
    driver: &TestDriver,
    topic: &str,
) -> stoat::Result<PerKey<V>> {
    let mut out: PerKey<V> = HashMap::new();
    for r in driver.output::<String, V>(topic).read_records()? {
        out.entry(r.key).or_default().push((r.value, r.timestamp));
    }
    Ok(out)
}

#[test]
fn a_stream_joins_the_table_as_of_processing_order() -> stoat::Result<()> {
    for lanes in LANES {
        let driver = TestDriver::with_config(&topology(), Config::default().lanes(lanes))?;
        let customers = driver.input_topic(&CUSTOMERS);
        let orders = driver.input_topic(&ORDERS);
        for step in steps() {
            match step {
                Step::Customer(id, Some(name), ts) => {
                    customers.pipe_at(id.into(), Customer { name: name.into() }, ts)?
                }
                Step::Customer(id, None, ts) => {
                    let _ = ts;
                    customers.pipe_raw(Some(id.as_bytes()), None)?
                }
                Step::Order(id, order, ts) => orders.pipe_at(id.into(), order.into(), ts)?,
            }
        }
        let s = |v: &str, ts: i64| (v.to_string(), ts);
        let inner = per_key::<String>(&driver, "enriched")?;
        assert_eq!(inner["ann"], vec![s("o1 Ann", 50), s("o5 Ann2", 90)], "{lanes} lanes");
        assert_eq!(inner["bob"], vec![s("o3 Bob", 70)], "{lanes} lanes");
        let left = per_key::<String>(&driver, "enriched-left")?;
        assert_eq!(left["ann"], vec![s("o1 Ann", 50), s("o4 -", 80), s("o5 Ann2", 90)], "{lanes} lanes");
        assert_eq!(left["bob"], vec![s("o2 -", 60), s("o3 Bob", 70)], "{lanes} lanes");
        // Every update, a tombstone of a key that was never there included.
        let changes = per_key::<Option<String>>(&driver, "customer-changes")?;
        let names: Vec<Option<String>> = changes["ann"].iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(names, vec![Some("Ann".into()), None, Some("Ann2".into())], "{lanes} lanes");
        assert_eq!(changes["cid"].len(), 1);
        assert_eq!(changes["cid"][0].0, None);
    }
    Ok(())
}

#[test]
fn a_table_outlives_a_restart() -> stoat::Result<()> {
    let log = std::sync::Arc::new(stoat::log::EmbeddedLog::new(2));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    {
        let mut app = App::embedded_on(&topology(), Config::default().state_dir(dir.path()), log.clone())?;
        log.send(&CUSTOMERS, &"ann".to_string(), &Customer { name: "Ann".into() })?;
        app.run_until_idle()?;
    }
    let mut app = App::embedded_on(&topology(), Config::default().state_dir(dir.path()), log.clone())?;
    log.send(&ORDERS, &"ann".to_string(), &"o9".to_string())?;
    app.run_until_idle()?;
    let enriched: Vec<String> = log
        .read_all("enriched")
        .iter()
        .filter_map(|(_, r)| r.value.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect();
    assert_eq!(enriched, vec!["o9 Ann".to_string()], "the second run joins against the first run's table");
    Ok(())
}

#[test]
fn a_table_without_a_key_is_refused() {
    let topology = Topology::new("unkeyed-table");
    let settings = topology.table(&Topic::<(), Customer>::json("settings"), "settings");
    topology.stream::<(), String>("orders").left_join(&settings, |o, _c: Option<Customer>| o).to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("table `settings` keeps its entries by key") && err.contains("no key"), "{err}");
}

#[test]
fn with_a_backlog_on_both_topics_records_are_processed_in_timestamp_order() -> stoat::Result<()> {
    let run = |order: DispatchOrder| -> stoat::Result<Vec<String>> {
        let log = std::sync::Arc::new(stoat::log::EmbeddedLog::new(1));
        let customer = |name: &str, ts: i64| -> stoat::Result<()> {
            let value = serde_json::to_vec(&Customer { name: name.into() }).unwrap_or_default();
            log.produce("customers", Some(b"ann".to_vec()), Some(value), ts, Vec::new());
            Ok(())
        };
        // Both topics have their backlog before the app starts; the customer's name changes
        // between the two orders in event time.
        customer("Ann", 100)?;
        customer("Ann2", 300)?;
        log.produce("orders", Some(b"ann".to_vec()), Some(b"o1".to_vec()), 200, Vec::new());
        log.produce("orders", Some(b"ann".to_vec()), Some(b"o2".to_vec()), 400, Vec::new());
        let mut app =
            App::embedded_on(&topology(), Config::default().lanes(3).dispatch_order(order), log.clone())?;
        app.run_until_idle()?;
        Ok(log
            .read_all("enriched")
            .iter()
            .filter_map(|(_, r)| r.value.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect())
    };
    assert_eq!(run(DispatchOrder::Timestamp)?, vec!["o1 Ann".to_string(), "o2 Ann2".to_string()]);
    // In arrival order the whole customers backlog comes first (the difference is the point).
    assert_eq!(run(DispatchOrder::Arrival)?, vec!["o1 Ann2".to_string(), "o2 Ann2".to_string()]);
    Ok(())
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Account {
    region: String,
    balance: i64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Totals {
    sum: i64,
    count: i64,
}

const ACCOUNTS: Topic<String, Account> = Topic::json("accounts");

#[test]
fn a_table_aggregation_subtracts_the_old_value_and_adds_the_new() -> stoat::Result<()> {
    let account = |region: &str, balance: i64| Account { region: region.into(), balance };
    let t = |sum: i64, count: i64, ts: i64| (Totals { sum, count }, ts);
    for lanes in LANES {
        let topology = Topology::new("regions");
        let accounts = topology.table(&ACCOUNTS, "accounts");
        accounts
            .group_by(|_, a| (a.region.clone(), a.balance))
            .aggregate(
                "region_totals",
                || Totals { sum: 0, count: 0 },
                |_, balance, t| Totals { sum: t.sum + balance, count: t.count + 1 },
                |_, balance, t| Totals { sum: t.sum - balance, count: t.count - 1 },
            )
            .sink(&Topic::json("region-totals"));
        accounts.group_by(|_, a| (a.region.clone(), ())).count("region_counts").to("region-counts");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let input = driver.input_topic(&ACCOUNTS);
        input.pipe_at("a1".into(), account("EU", 10), 100)?;
        input.pipe_at("a2".into(), account("EU", 5), 50)?;
        // An update within its region: one output (subtract and add together).
        input.pipe_at("a1".into(), account("EU", 20), 200)?;
        // A move: the old region first, then the new one.
        input.pipe_at("a2".into(), account("US", 5), 300)?;
        // Deleting an existing account subtracts; a tombstone for an absent one does nothing.
        input.pipe_raw(Some(b"a1"), None)?;
        input.pipe_raw(Some(b"a9"), None)?;
        let mut got: HashMap<String, Vec<(Totals, i64)>> = HashMap::new();
        for r in driver.output_topic(&Topic::<String, Totals>::json("region-totals")).read_records()? {
            got.entry(r.key).or_default().push((r.value, r.timestamp));
        }
        let eu = &got["EU"];
        assert_eq!(eu[..4], [t(10, 1, 100), t(15, 2, 100), t(25, 2, 200), t(20, 1, 300)], "{lanes} lanes");
        // The delete empties the region, which keeps its aggregate (Kafka Streams does too).
        assert_eq!(eu.len(), 5, "{lanes} lanes");
        assert_eq!(eu[4].0, Totals { sum: 0, count: 0 });
        assert_eq!(got["US"], vec![t(5, 1, 300)], "{lanes} lanes");
        let counts = per_key::<u64>(&driver, "region-counts")?;
        let values = |k: &str| counts[k].iter().map(|(v, _)| *v).collect::<Vec<_>>();
        assert_eq!(values("EU"), vec![1, 2, 2, 1, 0], "{lanes} lanes");
        assert_eq!(values("US"), vec![1], "{lanes} lanes");
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct X {
    x: i64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Y {
    y: i64,
}

#[test]
fn table_table_joins_emit_what_kafka_streams_emits() -> stoat::Result<()> {
    const A: Topic<String, X> = Topic::json("a");
    const B: Topic<String, Y> = Topic::json("b");
    let show = |a: Option<X>, b: Option<Y>| {
        format!(
            "{}|{}",
            a.map_or("-".to_string(), |a| a.x.to_string()),
            b.map_or("-".to_string(), |b| b.y.to_string())
        )
    };
    for lanes in LANES {
        let topology = Topology::new("ab");
        let a = topology.table(&A, "a");
        let b = topology.table(&B, "b");
        a.join(&b, move |a, b| show(Some(a), Some(b))).to("ab-inner");
        a.left_join(&b, move |a, b| show(Some(a), b)).to("ab-left");
        a.outer_join(&b, show).to("ab-outer");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let put = |topic: &str, key: &str, value: Option<Vec<u8>>, ts: i64| -> stoat::Result<()> {
            driver.log().produce(topic, Some(key.as_bytes().to_vec()), value, ts, Vec::new());
            driver.run().map(drop)
        };
        let x = |v: i64| serde_json::to_vec(&X { x: v }).ok();
        let y = |v: i64| serde_json::to_vec(&Y { y: v }).ok();
        put("a", "k", x(1), 10)?;
        put("b", "k", y(2), 20)?;
        put("a", "k", None, 30)?;
        put("b", "k", None, 40)?;
        put("a", "j", None, 50)?; // a tombstone for a key neither side has
        put("b", "m", y(5), 60)?;
        put("a", "m", None, 70)?; // a tombstone for a key only the other side has
        let out = |topic: &str| -> stoat::Result<Vec<(String, Option<String>, i64)>> {
            let mut v: Vec<_> = driver
                .output::<String, Option<String>>(topic)
                .read_records()?
                .into_iter()
                .map(|r| (r.key, r.value, r.timestamp))
                .collect();
            v.sort_by_key(|r| r.2);
            Ok(v)
        };
        let r = |k: &str, v: Option<&str>, ts: i64| (k.to_string(), v.map(String::from), ts);
        assert_eq!(
            out("ab-inner")?,
            vec![r("k", Some("1|2"), 20), r("k", None, 30), r("m", None, 70)],
            "inner, {lanes} lanes"
        );
        assert_eq!(
            out("ab-left")?,
            vec![r("k", Some("1|-"), 10), r("k", Some("1|2"), 20), r("k", None, 30), r("m", None, 70)],
            "left, {lanes} lanes"
        );
        assert_eq!(
            out("ab-outer")?,
            vec![
                r("k", Some("1|-"), 10),
                r("k", Some("1|2"), 20),
                r("k", Some("-|2"), 30),
                r("k", None, 40),
                r("m", Some("-|5"), 60),
                r("m", Some("-|5"), 70),
            ],
            "outer, {lanes} lanes"
        );
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Event {
    country: Option<String>,
}

#[test]
fn a_stream_joins_a_global_table_through_a_key_selector_on_any_lane() -> stoat::Result<()> {
    const COUNTRIES: Topic<String, String> = Topic::new("countries");
    const EVENTS: Topic<Option<String>, Event> = Topic::json("events");
    for lanes in LANES {
        let topology = Topology::new("geo");
        let countries = topology.global_table(&COUNTRIES, "countries");
        let events = topology.source(&EVENTS);
        let country = |_: &Option<String>, e: &Event| e.country.clone().unwrap_or_default();
        events.join_global(&countries, country, |_, name: String| name).to("with-country");
        events
            .left_join_global(&countries, country, |_, name: Option<String>| {
                name.unwrap_or_else(|| "?".into())
            })
            .to("with-country-left");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let (c, e) = (driver.input_topic(&COUNTRIES), driver.input_topic(&EVENTS));
        let ev = |c: Option<&str>| Event { country: c.map(String::from) };
        c.pipe("fr".into(), "France".into())?;
        e.pipe_at(Some("e1".into()), ev(Some("fr")), 10)?;
        e.pipe_at(None, ev(Some("fr")), 11)?; // a null key is fine
        e.pipe_at(Some("e3".into()), ev(Some("de")), 12)?; // unknown country
        e.pipe_at(Some("e4".into()), ev(None), 13)?; // missing country
        c.pipe("de".into(), "Germany".into())?;
        e.pipe_at(Some("e5".into()), ev(Some("de")), 14)?; // visible at once, on every lane
        c.pipe_raw(Some(b"fr"), None)?;
        e.pipe_at(Some("e6".into()), ev(Some("fr")), 15)?; // deleted
        let read = |topic: &str| -> stoat::Result<Vec<(Option<String>, String, i64)>> {
            let mut v: Vec<_> = driver
                .output::<Option<String>, String>(topic)
                .read_records()?
                .into_iter()
                .map(|r| (r.key, r.value, r.timestamp))
                .collect();
            v.sort_by_key(|r| r.2);
            Ok(v)
        };
        let r = |k: Option<&str>, v: &str, ts: i64| (k.map(String::from), v.to_string(), ts);
        assert_eq!(
            read("with-country")?,
            vec![r(Some("e1"), "France", 10), r(None, "France", 11), r(Some("e5"), "Germany", 14)],
            "{lanes} lanes"
        );
        assert_eq!(
            read("with-country-left")?,
            vec![
                r(Some("e1"), "France", 10),
                r(None, "France", 11),
                r(Some("e3"), "?", 12),
                r(Some("e4"), "?", 13),
                r(Some("e5"), "Germany", 14),
                r(Some("e6"), "?", 15),
            ],
            "{lanes} lanes"
        );
    }
    Ok(())
}

#[test]
fn a_global_table_outlives_a_restart_and_every_lane_reads_it() -> stoat::Result<()> {
    const COUNTRIES: Topic<String, String> = Topic::new("countries");
    const EVENTS: Topic<String, String> = Topic::new("events");
    let topology = || {
        let topology = Topology::new("geo-restart");
        let countries = topology.global_table(&COUNTRIES, "countries");
        topology.source(&EVENTS).join_global(&countries, |_, c| c.clone(), |_, name: String| name).to("out");
        topology
    };
    let log = std::sync::Arc::new(stoat::log::EmbeddedLog::new(4));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    {
        let mut app =
            App::embedded_on(&topology(), Config::default().lanes(4).state_dir(dir.path()), log.clone())?;
        for (code, name) in [("fr", "France"), ("de", "Germany"), ("it", "Italy")] {
            log.send(&COUNTRIES, &code.to_string(), &name.to_string())?;
        }
        app.run_until_idle()?;
    }
    let mut app =
        App::embedded_on(&topology(), Config::default().lanes(4).state_dir(dir.path()), log.clone())?;
    // Events of many keys: they land on every lane, and each finds every country.
    for i in 0..40 {
        let code = ["fr", "de", "it"][i % 3];
        log.send(&EVENTS, &format!("e{i}"), &code.to_string())?;
    }
    app.run_until_idle()?;
    let joined = log.read_all("out").len();
    assert_eq!(joined, 40, "every event found its country after the restart");
    Ok(())
}

#[test]
fn a_filtered_table_sends_a_tombstone_when_an_entry_stops_matching_and_joins_read_it() -> stoat::Result<()> {
    const BALANCES: Topic<String, i64> = Topic::new("balances");
    const PAYMENTS: Topic<String, String> = Topic::new("payments");
    for lanes in LANES {
        let topology = Topology::new("rich");
        let balances = topology.table(&BALANCES, "balances");
        let rich = balances.filter(|_, b| *b >= 100);
        rich.to_stream().to("rich-changes");
        let labelled = rich.map_values(|b| format!("rich:{b}"));
        topology
            .source(&PAYMENTS)
            .left_join(&labelled, |p, l: Option<String>| format!("{p} {}", l.unwrap_or("-".into())))
            .to("receipts");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let (b, p) = (driver.input_topic(&BALANCES), driver.input_topic(&PAYMENTS));
        b.pipe("ann".into(), 50)?; // never matched: nothing downstream
        p.pipe("ann".into(), "p1".into())?;
        b.pipe("ann".into(), 150)?; // starts matching
        p.pipe("ann".into(), "p2".into())?;
        b.pipe("ann".into(), 80)?; // stops matching: a tombstone
        p.pipe("ann".into(), "p3".into())?;
        b.pipe_raw(Some(b"ann"), None)?; // deleted while not matching: nothing
        let changes = driver.output::<String, Option<i64>>("rich-changes").read_values()?;
        assert_eq!(changes, vec![Some(150), None], "{lanes} lanes");
        let receipts = driver.output::<String, String>("receipts").read_values()?;
        assert_eq!(receipts, vec!["p1 -", "p2 rich:150", "p3 -"], "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn a_stream_becomes_a_table_whose_none_values_delete() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("to-table");
        // Prices arrive keyed by product code; the table is keyed by product name.
        let prices = topology
            .stream::<String, Option<String>>("prices")
            .key_by(|code, _| code.to_uppercase())
            .to_table("prices");
        topology
            .stream::<String, String>("quotes")
            .left_join(&prices, |q, p: Option<String>| format!("{q}@{}", p.unwrap_or("-".into())))
            .to("quoted");
        prices.to_stream().to("price-changes");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let (prices_in, quotes) =
            (driver.input::<String, Option<String>>("prices"), driver.input::<String, String>("quotes"));
        prices_in.pipe_at("ab".into(), Some("10".into()), 1)?;
        quotes.pipe_at("AB".into(), "q1".into(), 2)?;
        prices_in.pipe_at("ab".into(), None, 3)?;
        quotes.pipe_at("AB".into(), "q2".into(), 4)?;
        prices_in.pipe_at("ab".into(), Some("12".into()), 5)?;
        quotes.pipe_at("AB".into(), "q3".into(), 6)?;
        let quoted = driver.output::<String, String>("quoted").read_values()?;
        assert_eq!(quoted, vec!["q1@10", "q2@-", "q3@12"], "{lanes} lanes");
        let changes = driver.output::<String, Option<String>>("price-changes").read_key_values()?;
        let ab = |v: Option<&str>| ("AB".to_string(), v.map(String::from));
        assert_eq!(changes, vec![ab(Some("10")), ab(None), ab(Some("12"))], "{lanes} lanes");
    }
    Ok(())
}

#[test]
fn a_global_table_is_read_to_its_end_before_other_input() -> stoat::Result<()> {
    const COUNTRIES: Topic<String, String> = Topic::new("countries");
    const EVENTS: Topic<String, Event> = Topic::json("events");
    for lanes in LANES {
        let topology = Topology::new("geo");
        let countries = topology.global_table(&COUNTRIES, "countries");
        topology
            .source(&EVENTS)
            .left_join_global(
                &countries,
                |_, e| e.country.clone().unwrap_or_default(),
                |_, c: Option<String>| c.unwrap_or_else(|| "?".into()),
            )
            .to("with-country");
        let log = std::sync::Arc::new(stoat::log::EmbeddedLog::new(2));
        // A backlog of events older than every country: in timestamp order they would all come
        // first, and find no country.
        for i in 0..50 {
            let event = serde_json::to_vec(&Event { country: Some("fr".into()) }).unwrap_or_default();
            log.produce("events", Some(format!("e{i}").into_bytes()), Some(event), i, Vec::new());
        }
        for i in 0..300 {
            log.produce(
                "countries",
                Some(format!("c{i}").into_bytes()),
                Some(b"x".to_vec()),
                1_000 + i,
                Vec::new(),
            );
        }
        log.produce("countries", Some(b"fr".to_vec()), Some(b"France".to_vec()), 2_000, Vec::new());
        let mut app = App::embedded_on(&topology, Config::default().lanes(lanes), log.clone())?;
        app.run_until_idle()?;
        let names: Vec<String> = log
            .read_all("with-country")
            .iter()
            .filter_map(|(_, r)| r.value.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect();
        assert_eq!(names.len(), 50, "{lanes} lanes");
        assert!(
            names.iter().all(|n| n == "France"),
            "every event sees the whole table, {lanes} lanes: {names:?}"
        );
    }
    Ok(())
}

#[stoat::operator]
fn greet(
    #[key] id: &String,
    visit: String,
    customers: &TableView<String, Customer>,
) -> Result<String, StoreError> {
    let name = customers.get(id)?.map_or("stranger".to_string(), |c| c.name);
    Ok(format!("{visit}: hello {name}"))
}

#[test]
fn an_operator_reads_a_table_under_its_records_key() -> stoat::Result<()> {
    for lanes in LANES {
        let topology = Topology::new("greeter");
        topology.table(&CUSTOMERS, "customers");
        topology.stream::<String, String>("visits").process(greet {}).to("greetings");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let visits = driver.input::<String, String>("visits");
        driver.input_topic(&CUSTOMERS).pipe("c1".into(), Customer { name: "Ann".into() })?;
        visits.pipe("c1".into(), "v1".into())?;
        visits.pipe("c2".into(), "v2".into())?;
        driver.input_topic(&CUSTOMERS).pipe("c1".into(), Customer { name: "Annie".into() })?;
        visits.pipe("c1".into(), "v3".into())?;
        let out = driver.output::<String, String>("greetings").read_values()?;
        assert_eq!(out, vec!["v1: hello Ann", "v2: hello stranger", "v3: hello Annie"], "{lanes} lanes");
    }
    Ok(())
}

#[stoat::operator]
fn country_of(visit: Event, countries: &TableView<String, String>) -> Result<String, StoreError> {
    Ok(countries.get(&visit.country.unwrap_or_default())?.unwrap_or_else(|| "?".into()))
}

#[test]
fn an_operator_reads_a_global_table_under_any_key_and_a_plain_table_only_under_its_own() -> stoat::Result<()>
{
    const COUNTRIES: Topic<String, String> = Topic::new("countries");
    const EVENTS: Topic<String, Event> = Topic::json("events");
    let ev = |c: &str| Event { country: Some(c.into()) };
    // A global table: any key, on any lane.
    let topology = Topology::new("geo-op");
    topology.global_table(&COUNTRIES, "countries");
    topology.source(&EVENTS).process(country_of {}).to("names");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(16))?;
    driver.input_topic(&COUNTRIES).pipe("fr".into(), "France".into())?;
    for i in 0..20 {
        driver.input_topic(&EVENTS).pipe(format!("e{i}"), ev("fr"))?;
    }
    let names = driver.output::<String, String>("names").read_values()?;
    assert_eq!(names, vec!["France"; 20]);

    // A plain table keyed by country, read under another key than the record's: refused.
    let topology = Topology::new("geo-op-plain");
    topology.table(&COUNTRIES, "countries");
    topology.source(&EVENTS).process(country_of {}).to("names");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(16))?;
    driver.input_topic(&COUNTRIES).pipe("fr".into(), "France".into())?;
    let mut err = String::new();
    for i in 0..20 {
        if let Err(e) = driver.input_topic(&EVENTS).pipe(format!("e{i}"), ev("fr")) {
            err = e.to_string();
            break;
        }
    }
    assert!(err.contains("table `countries` is read on lane") && err.contains("global table"), "{err}");
    Ok(())
}

#[test]
fn an_operator_reading_a_table_the_topology_lacks_or_has_twice_is_refused() {
    let topology = Topology::new("no-table");
    topology.stream::<String, String>("visits").process(greet {}).to("greetings");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("operator `greet` takes `&TableView<") && err.contains("no such table"), "{err}");

    let topology = Topology::new("two-tables");
    topology.table(&CUSTOMERS, "customers");
    topology.table(&Topic::<String, Customer>::json("vips"), "vips");
    topology.stream::<String, String>("visits").process(greet {}).to("greetings");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("several tables") && err.contains("`customers`") && err.contains("`vips`"), "{err}");
}
