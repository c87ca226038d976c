//! State stores: the `Table` API with read-your-writes inside an epoch, key order in scans,
//! persistence across restarts, and the checks that protect a state directory.

use stoat::prelude::*;

#[stoat::state]
struct Inventory {
    stock: Table<(String, u32), i64>,
    #[store(name = "inventory.names")]
    names: Table<String, String>,
}

/// Applies `+n`/`-n` deltas to a (warehouse, item) stock level and emits the warehouse's total.
#[stoat::operator]
fn restock(#[key] key: &(String, u32), delta: i64, inv: &mut Inventory) -> Result<i64, StoreError> {
    let level = inv.stock.get(key)?.unwrap_or(0) + delta;
    if level == 0 {
        inv.stock.delete(key)?;
    } else {
        inv.stock.put(key.clone(), level)?;
    }
    let warehouse: i64 = inv.stock.prefix(&key.0)?.into_iter().map(|(_, v)| v).sum();
    Ok(warehouse)
}

#[test]
fn tables_read_their_own_writes_and_scan_in_key_order() -> stoat::Result<()> {
    let mut h = Harness::new(restock {})?;
    let w = |s: &str, i: u32| (s.to_string(), i);
    assert_eq!(h.process(w("east", 2), 5)?, vec![(w("east", 2), 5)]);
    assert_eq!(h.process(w("east", 1), 3)?, vec![(w("east", 1), 8)]);
    assert_eq!(h.process(w("west", 1), 4)?, vec![(w("west", 1), 4)]);
    h.commit()?;
    // After the commit the values come from LMDB; new writes overlay them.
    assert_eq!(h.process(w("east", 2), -5)?, vec![(w("east", 2), 3)], "deleted within the epoch");
    assert_eq!(h.process(w("east", 3), 1)?, vec![(w("east", 3), 4)]);
    let state = h.state::<Inventory>()?;
    assert_eq!(state.stock.get(&w("east", 2))?, None);
    let all = state.stock.iter()?;
    assert_eq!(all, vec![(w("east", 1), 3), (w("east", 3), 1), (w("west", 1), 4)]);
    let range = state.stock.range(w("east", 2)..w("west", 0))?;
    assert_eq!(range, vec![(w("east", 3), 1)]);
    // Committed state does not see the open epoch.
    let committed = h.read_committed(|s: &Inventory| s.stock.iter())??;
    assert_eq!(committed, vec![(w("east", 1), 3), (w("east", 2), 5), (w("west", 1), 4)]);
    h.commit()?;
    assert_eq!(h.read_committed(|s: &Inventory| s.stock.iter())??, all);
    Ok(())
}

#[test]
fn store_names_come_from_fields_or_attributes() {
    use stoat::__private::StateSet;
    let names: Vec<&str> = Inventory::stores().iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["stock", "inventory.names"]);
}

#[stoat::state]
struct Totals {
    per_key: Table<String, i64>,
}

#[stoat::operator]
fn total(#[key] key: &str, n: i64, totals: &mut Totals) -> Result<i64, StoreError> {
    let t = totals.per_key.get(key)?.unwrap_or(0) + n;
    totals.per_key.put(key.to_owned(), t)?;
    Ok(t)
}

fn totals_topology() -> Topology {
    let topology = Topology::new("totals");
    topology.stream::<String, i64>("in").process(total {}).to("out");
    topology
}

#[test]
fn state_survives_an_app_restart() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    for round in 1..=3i64 {
        let mut app = App::embedded(&totals_topology(), Config::default().lanes(3).state_dir(dir.path()))?;
        let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
        let input: Topic<String, i64> = Topic::new("in");
        for k in 0..50 {
            log.send(&input, &format!("k{k}"), &2)?;
        }
        app.run_until_idle()?;
        let t = app.read_state(|s: &Totals| s.per_key.get("k7"))??;
        assert_eq!(t, Some(2 * round), "round {round}");
        drop(app);
    }
    Ok(())
}

#[stoat::state]
struct OtherTotals {
    #[store(name = "per_key")]
    totals: Table<String, String>,
}

#[stoat::operator]
fn other(#[key] key: &str, n: i64, t: &mut OtherTotals) -> Result<i64, StoreError> {
    t.totals.put(key.to_owned(), n.to_string())?;
    Ok(n)
}

#[test]
fn a_state_dir_refuses_stores_of_other_types() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    drop(App::embedded(&totals_topology(), Config::default().state_dir(dir.path()))?);
    // The same app id, changed code: its store now holds other types.
    let topology = Topology::new("totals");
    topology.stream::<String, i64>("in").process(other {}).to("out");
    let err = App::embedded(&topology, Config::default().state_dir(dir.path())).err().map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(
        err.contains("`per_key`")
            && err.contains("Table<String,i64> v1")
            && err.contains("Table<String,String> v1"),
        "{err}"
    );
    Ok(())
}

#[stoat::state]
struct TotalsV2 {
    /// Same types as `Totals::per_key`, but its values now mean something else: version 2.
    #[store(name = "per_key", version = 2)]
    per_key: Table<String, i64>,
}

#[stoat::operator]
fn total_v2(#[key] key: &str, n: i64, t: &mut TotalsV2) -> Result<i64, StoreError> {
    t.per_key.put(key.to_owned(), n)?;
    Ok(n)
}

#[test]
fn a_new_store_version_refuses_state_written_by_the_old_one() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    drop(App::embedded(&totals_topology(), Config::default().state_dir(dir.path()))?);
    let topology = Topology::new("totals");
    topology.stream::<String, i64>("in").process(total_v2 {}).to("out");
    let err = App::embedded(&topology, Config::default().state_dir(dir.path())).err().map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.contains("Table<String,i64> v1") && err.contains("Table<String,i64> v2"), "{err}");
    // Reopening with the version it was written with still works.
    drop(App::embedded(&totals_topology(), Config::default().state_dir(dir.path()))?);
    Ok(())
}

#[test]
fn two_state_structs_may_not_declare_the_same_store() {
    let topology = Topology::new("clash");
    let s = topology.stream::<String, i64>("in");
    s.process(total {}).to("a");
    s.process(other {}).to("b");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`per_key` is declared by both `Totals` and `OtherTotals`"), "{err}");
}

#[stoat::state]
struct Tally {
    seen: Table<String, u64>,
}

#[stoat::operator]
fn tally(#[key] word: &str, _n: u64, t: &mut Tally) -> Result<u64, StoreError> {
    let n = t.seen.get(word)?.unwrap_or(0) + 1;
    t.seen.put(word.to_owned(), n)?;
    Ok(n)
}

fn tally_app(app: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream::<String, u64>("words").process(tally {}).to("tallies");
    topology
}

fn run_tally(app: &str, config: Config) -> stoat::Result<App> {
    let mut running = App::embedded(&tally_app(app), config)?;
    let log = running.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    let words: Topic<String, u64> = Topic::new("words");
    for w in ["a", "b", "a"] {
        log.send(&words, &w.to_string(), &1)?;
    }
    running.run_until_idle()?;
    Ok(running)
}

#[test]
fn a_state_directory_of_another_app_is_refused_or_rebuilt_on_request() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    drop(run_tally("app-a", Config::default().lanes(2).state_dir(dir.path()))?);
    let err =
        run_tally("app-b", Config::default().lanes(2).state_dir(dir.path())).expect_err("foreign state");
    let text = err.to_string();
    assert!(matches!(err, stoat::Error::Store(StoreError::ForeignState { .. })), "{err:?}");
    assert!(
        text.contains("`app-a`") && text.contains("`app-b`") && text.contains("rebuild_foreign_state"),
        "{text}"
    );
    // On request, the directory is emptied: app-b does not start from app-a's counts.
    let b = run_tally("app-b", Config::default().lanes(2).state_dir(dir.path()).rebuild_foreign_state(true))?;
    let a_count = b.read_state(|t: &Tally| t.seen.get("a"))??;
    assert_eq!(a_count, Some(2), "app-b counted its own two `a`s, not app-a's on top");
    Ok(())
}

#[test]
fn a_state_directory_in_use_is_refused() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    let first = run_tally("locked", Config::default().lanes(2).state_dir(dir.path()))?;
    let err = run_tally("locked", Config::default().lanes(2).state_dir(dir.path())).expect_err("in use");
    assert!(matches!(err, stoat::Error::Store(StoreError::Locked { .. })), "{err:?}");
    assert!(err.to_string().contains("in use by another instance"), "{err}");
    drop(first);
    // Free again once the first instance is gone.
    let again = run_tally("locked", Config::default().lanes(2).state_dir(dir.path()))?;
    assert_eq!(again.read_state(|t: &Tally| t.seen.get("a"))??, Some(4));
    Ok(())
}

#[stoat::state]
struct Grand {
    total: Table<String, u64>,
}

/// Writes one shared key from every lane: a race the debug build reports.
#[stoat::operator]
fn grand_total(#[key] _key: &u64, n: u64, g: &mut Grand) -> Result<u64, StoreError> {
    let sum = g.total.get("all")?.unwrap_or(0) + n;
    g.total.put("all".to_owned(), sum)?;
    Ok(sum)
}

#[test]
fn two_lanes_writing_one_key_in_an_epoch_is_reported_in_debug_builds() {
    let topology = Topology::new("grand");
    topology.stream::<u64, u64>("in").process(grand_total {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(4)).expect("driver");
    let result = driver.input::<u64, u64>("in").pipe_all((0..64u64).map(|k| (k, 1)));
    if cfg!(debug_assertions) {
        let err = result.expect_err("keys 0..64 spread over 4 lanes, all writing `all`");
        assert!(err.to_string().contains("both wrote the key"), "{err}");
    }
}

#[stoat::state]
struct Labels {
    by_name: Table<String, u64>,
}

#[stoat::operator]
fn label(#[key] name: &str, n: u64, labels: &mut Labels) -> Result<u64, StoreError> {
    labels.by_name.put(name.to_owned(), n)?;
    Ok(n)
}

#[test]
fn an_empty_key_is_a_key_like_any_other() -> stoat::Result<()> {
    // `""` is an ordinary Kafka key, though LMDB keys are at least one byte: stores keep every key
    // behind a tag byte.
    let mut h = Harness::new(label {})?;
    assert_eq!(h.state::<Labels>()?.by_name.get("")?, None);
    h.process("".into(), 1)?;
    h.process("a".into(), 2)?;
    h.commit()?;
    assert_eq!(h.read_committed(|s: &Labels| s.by_name.get(""))??, Some(1));
    let all = h.read_committed(|s: &Labels| s.by_name.iter())??;
    assert_eq!(all, vec![(String::new(), 1), ("a".to_string(), 2)], "first in key order");
    assert_eq!(h.read_committed(|s: &Labels| s.by_name.prefix(""))??.len(), 2);
    Ok(())
}
