//! Foreign-key table-table joins against what Kafka Streams 4.4 emits (its cache off): which
//! left and right updates emit, their tombstones (spurious ones included), their timestamps, with
//! 1, 3, 16 and 300 lanes; the subscriptions survive a restart, also onto another number of lanes.

use std::collections::HashMap;
use std::sync::Arc;

use stoat::prelude::*;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Product {
    name: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    product: Option<String>,
    qty: u32,
}

const PRODUCTS: Topic<String, Product> = Topic::json("products");
const ORDERS: Topic<String, Order> = Topic::json("orders");

fn topology() -> Topology {
    let topology = Topology::new("lines");
    let products = topology.table(&PRODUCTS, "products");
    let orders = topology.table(&ORDERS, "orders");
    let product_of = |_: &String, o: &Order| o.product.clone();
    orders
        .join_foreign_key(&products, "lines.by_product", product_of, |o, p: Product| {
            format!("{}x{}", o.qty, p.name)
        })
        .to("lines");
    orders
        .left_join_foreign_key(&products, "lines_left.by_product", product_of, |o, p: Option<Product>| {
            format!("{}x{}", o.qty, p.map_or("-".into(), |p| p.name))
        })
        .to("lines-left");
    topology
}

type PerKey = HashMap<String, Vec<(Option<String>, i64)>>;

fn per_key(records: Vec<Record<String, Option<String>>>) -> PerKey {
    let mut out = PerKey::new();
    for r in records {
        out.entry(r.key).or_default().push((r.value, r.timestamp));
    }
    out
}

fn row(v: Option<&str>, ts: i64) -> (Option<String>, i64) {
    (v.map(String::from), ts)
}

/// Puts (or, with `None`, deletes) a record and runs the app.
fn put<V: serde::Serialize>(
    driver: &TestDriver,
    topic: &str,
    key: &str,
    value: Option<V>,
    ts: i64,
) -> stoat::Result<()> {
    let value = value
        .map(|v| serde_json::to_vec(&v))
        .transpose()
        .map_err(|e| stoat::Error::Runtime(e.to_string()))?;
    driver.log().produce(topic, Some(key.as_bytes().to_vec()), value, ts, Vec::new());
    driver.run().map(drop)
}

fn product(name: &str) -> Option<Product> {
    Some(Product { name: name.into() })
}

fn order(product: Option<&str>, qty: u32) -> Option<Order> {
    Some(Order { product: product.map(String::from), qty })
}

#[test]
fn foreign_key_joins_emit_what_kafka_streams_emits() -> stoat::Result<()> {
    for lanes in LANES {
        let driver = TestDriver::with_config(&topology(), Config::default().lanes(lanes))?;
        put(&driver, "products", "p1", product("A"), 10)?;
        put(&driver, "orders", "o1", order(Some("p1"), 1), 20)?; // joins at once
        put(&driver, "orders", "o2", order(Some("p2"), 1), 30)?; // p2 is missing
        put(&driver, "products", "p2", product("B"), 40)?; // o2 now joins
        put(&driver, "orders", "o1", order(Some("p2"), 2), 50)?; // foreign key p1 -> p2
        put(&driver, "products", "p1", product("A2"), 60)?; // nobody references p1 any more
        put(&driver, "orders", "o1", order(Some("p3"), 2), 70)?; // moves to a missing product
        put(&driver, "orders", "o1", order(Some("p3"), 3), 80)?; // same missing product
        put(&driver, "orders", "o3", order(None, 1), 90)?; // no foreign key
        put(&driver, "orders", "o2", order(None, 1), 35)?; // foreign key p2 -> none
        put(&driver, "orders", "o4", order(Some("p2"), 1), 105)?;
        put(&driver, "products", "p2", None::<Product>, 110)?; // o4's product is deleted
        put(&driver, "orders", "o4", None::<Order>, 120)?; // deleted, its product missing
        put(&driver, "orders", "o5", None::<Order>, 130)?; // deleting an absent order
        put(&driver, "orders", "o3", None::<Order>, 140)?; // deleting an order without a foreign key
        put(&driver, "products", "p3", product("C"), 150)?; // o1 now joins
        put(&driver, "orders", "o1", None::<Order>, 145)?; // deleted; its product is newer
        put(&driver, "products", "p9", None::<Product>, 160)?; // a tombstone nobody references

        let inner = per_key(driver.output::<String, Option<String>>("lines").read_records()?);
        assert_eq!(
            inner.get("o1"),
            Some(&vec![
                row(Some("1xA"), 20),
                row(Some("2xB"), 50),
                row(None, 70),
                row(Some("3xC"), 150),
                row(None, 150)
            ]),
            "inner o1, {lanes} lanes"
        );
        assert_eq!(
            inner.get("o2"),
            Some(&vec![row(Some("1xB"), 40), row(None, 40)]),
            "inner o2, {lanes} lanes"
        );
        assert_eq!(
            inner.get("o4"),
            Some(&vec![row(Some("1xB"), 105), row(None, 110), row(None, 120)]),
            "inner o4, {lanes} lanes"
        );
        assert_eq!(inner.get("o3"), None, "inner o3, {lanes} lanes");
        assert_eq!(inner.get("o5"), None, "inner o5, {lanes} lanes");

        let left = per_key(driver.output::<String, Option<String>>("lines-left").read_records()?);
        assert_eq!(
            left.get("o1"),
            Some(&vec![
                row(Some("1xA"), 20),
                row(Some("2xB"), 50),
                row(Some("2x-"), 70),
                row(Some("3x-"), 80),
                row(Some("3xC"), 150),
                row(None, 145)
            ]),
            "left o1, {lanes} lanes"
        );
        assert_eq!(
            left.get("o2"),
            Some(&vec![row(Some("1x-"), 30), row(Some("1xB"), 40), row(Some("1x-"), 35)]),
            "left o2, {lanes} lanes"
        );
        assert_eq!(
            left.get("o3"),
            Some(&vec![row(Some("1x-"), 90), row(None, 140)]),
            "left o3, {lanes} lanes"
        );
        assert_eq!(
            left.get("o4"),
            Some(&vec![row(Some("1xB"), 105), row(Some("1x-"), 110), row(None, 120)]),
            "left o4, {lanes} lanes"
        );
        assert_eq!(left.get("o5"), None, "left o5, {lanes} lanes");
    }
    Ok(())
}

#[test]
fn a_product_update_reaches_every_order_referencing_it_once() -> stoat::Result<()> {
    for lanes in LANES {
        let driver = TestDriver::with_config(&topology(), Config::default().lanes(lanes))?;
        for i in 0..40 {
            put(
                &driver,
                "orders",
                &format!("o{i}"),
                order(Some(if i % 2 == 0 { "even" } else { "odd" }), i),
                i.into(),
            )?;
        }
        put(&driver, "products", "even", product("E"), 100)?;
        let inner = per_key(driver.output::<String, Option<String>>("lines").read_records()?);
        let mut keys: Vec<&String> = inner.keys().collect();
        keys.sort();
        let mut expected: Vec<String> = (0..40).step_by(2).map(|i| format!("o{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected.iter().collect::<Vec<_>>(), "{lanes} lanes");
        for i in (0..40).step_by(2) {
            assert_eq!(inner[&format!("o{i}")], vec![row(Some(&format!("{i}xE")), 100)], "{lanes} lanes");
        }
    }
    Ok(())
}

fn lines_after(log: &Arc<stoat::log::EmbeddedLog>) -> Vec<(String, Option<String>)> {
    log.read_all("lines")
        .iter()
        .map(|(_, r)| {
            let key = r.key.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            let value = r.value.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
            (key, value)
        })
        .collect()
}

#[test]
fn subscriptions_outlive_a_restart_onto_another_number_of_lanes() -> stoat::Result<()> {
    let log = Arc::new(stoat::log::EmbeddedLog::new(2));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let config = |lanes: usize| Config::default().state_dir(dir.path()).lanes(lanes);
    {
        let mut app = App::embedded_on(&topology(), config(3), log.clone())?;
        for i in 0..12u32 {
            log.send(&ORDERS, &format!("o{i}"), &Order { product: Some("p".into()), qty: i })?;
        }
        app.run_until_idle()?;
    }
    assert!(lines_after(&log).is_empty(), "nothing joins before the product exists");
    let mut app = App::embedded_on(&topology(), config(5), log.clone())?;
    log.send(&PRODUCTS, &"p".to_string(), &Product { name: "P".into() })?;
    app.run_until_idle()?;
    let mut lines = lines_after(&log);
    lines.sort();
    let mut expected: Vec<(String, Option<String>)> =
        (0..12).map(|i| (format!("o{i}"), Some(format!("{i}xP")))).collect();
    expected.sort();
    assert_eq!(lines, expected, "each order joins once, from the subscriptions the first run committed");
    Ok(())
}

#[test]
fn a_foreign_key_join_with_a_derived_table_is_refused() {
    let topology = Topology::new("lines");
    let products = topology.table(&PRODUCTS, "products").filter(|_, p| !p.name.is_empty());
    let orders = topology.table(&ORDERS, "orders");
    orders.join_foreign_key(&products, "idx", |_, o| o.product.clone(), |o, _p| o.qty).to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("`join_foreign_key` of `orders` with `products`") && err.contains("Topology::table"),
        "{err}"
    );
}

#[test]
fn a_panicking_foreign_key_extractor_is_the_records_error() -> stoat::Result<()> {
    let topology = Topology::new("lines");
    let products = topology.table(&PRODUCTS, "products");
    let orders = topology.table(&ORDERS, "orders");
    orders
        .join_foreign_key(
            &products,
            "idx",
            |_, o: &Order| if o.qty == 13 { panic!("unlucky order") } else { o.product.clone() },
            |o, _p| o.qty,
        )
        .to("out");
    let driver = TestDriver::with_config(&topology, Config::default().error_policy(ErrorPolicy::Skip))?;
    put(&driver, "orders", "o1", order(Some("p"), 13), 1)?;
    put(&driver, "orders", "o2", order(Some("p"), 2), 2)?;
    put(&driver, "products", "p", product("P"), 3)?;
    let out = driver.output::<String, Option<u32>>("out").read_key_values()?;
    assert_eq!(out, vec![("o2".to_string(), Some(2))], "the panicking order is skipped, the other joins");
    assert_eq!(driver.stats().skipped_operator, 1);
    Ok(())
}
