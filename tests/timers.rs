//! Keyed timers through the operator model: an operator sets and deletes timers for the key it
//! processes (`&mut Timers`); its `#[on_timer]` method runs when one fires, on the key's lane.
//! Checked against a sequential model with 1, 3, 16 and 300 lanes and several epoch sizes, across a
//! restart (timers are state), on the driver's wall clock, and under the error policy.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stoat::prelude::*;
use support::Rng;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// A reminder 10 s (of stream time) after an order, unless it is paid first.
struct Reminders;

#[stoat::operator]
impl Reminders {
    fn event(
        &self,
        #[key] user: &String,
        event: String,
        ctx: &Context,
        timers: &mut Timers,
        due: &mut Keyed<i64>,
    ) -> Result<Option<String>, StoreError> {
        match event.as_str() {
            "order" => {
                let at = ctx.timestamp() + 10_000;
                timers.at(at)?;
                due.set(at)?;
                Ok(None)
            }
            "paid" => {
                if let Some(at) = due.get()? {
                    timers.delete(at)?;
                    due.delete()?;
                }
                Ok(Some(format!("{user} paid")))
            }
            _ => Ok(None),
        }
    }

    #[on_timer]
    fn remind(&self, #[key] user: &String, timer: Timer, due: &mut Keyed<i64>) -> Result<String, StoreError> {
        assert_eq!(timer.domain(), TimeDomain::StreamTime);
        if due.get()? == Some(timer.time()) {
            due.delete()?;
        }
        Ok(format!("{user} reminded for {}", timer.time()))
    }
}

fn reminders(app: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream::<String, String>("events").process(Reminders).to("out");
    topology
}

type PerKey = BTreeMap<String, Vec<(String, i64)>>;

/// The model: per record, stream time moves, the key's timers at or before it fire (in time
/// order), then the record; at the end, every timer stream time has reached fires.
fn model(events: &[(String, String, i64)]) -> PerKey {
    let mut st = i64::MIN;
    let mut timers: BTreeMap<String, std::collections::BTreeSet<i64>> = BTreeMap::new();
    let mut due: BTreeMap<String, i64> = BTreeMap::new();
    let mut out = PerKey::new();
    let fire = |key: &str,
                st: i64,
                timers: &mut BTreeMap<String, std::collections::BTreeSet<i64>>,
                due: &mut BTreeMap<String, i64>,
                out: &mut PerKey| {
        let set = timers.entry(key.to_string()).or_default();
        let fired: Vec<i64> = set.iter().copied().take_while(|&t| t <= st).collect();
        for t in fired {
            set.remove(&t);
            if due.get(key) == Some(&t) {
                due.remove(key);
            }
            out.entry(key.to_string()).or_default().push((format!("{key} reminded for {t}"), t));
        }
    };
    for (key, event, ts) in events {
        st = st.max(*ts);
        fire(key, st, &mut timers, &mut due, &mut out);
        match event.as_str() {
            "order" => {
                timers.entry(key.clone()).or_default().insert(ts + 10_000);
                due.insert(key.clone(), ts + 10_000);
            }
            "paid" => {
                if let Some(at) = due.remove(key) {
                    timers.entry(key.clone()).or_default().remove(&at);
                }
                out.entry(key.clone()).or_default().push((format!("{key} paid"), *ts));
            }
            _ => {}
        }
    }
    let keys: Vec<String> = timers.keys().cloned().collect();
    for key in keys {
        fire(&key, st, &mut timers, &mut due, &mut out);
    }
    out
}

fn events(seed: u64, n: usize) -> Vec<(String, String, i64)> {
    let mut rng = Rng::new(seed);
    let mut ts = 100_000i64;
    (0..n)
        .map(|_| {
            ts += rng.below(2_000) as i64;
            let at = if rng.below(6) == 0 { ts - rng.below(15_000) as i64 } else { ts };
            let event = ["order", "order", "paid", "browse"][rng.below(4)];
            (format!("u{}", rng.below(6)), event.to_string(), at)
        })
        .collect()
}

fn run(
    topology: &Topology,
    events: &[(String, String, i64)],
    lanes: usize,
    chunk: usize,
) -> stoat::Result<PerKey> {
    let driver = TestDriver::with_config(topology, Config::default().lanes(lanes).commit_max_records(chunk))?;
    let input = driver.input::<String, String>("events");
    for part in events.chunks(chunk) {
        for (key, event, ts) in part {
            input.enqueue_at(key, event, *ts)?;
        }
        driver.run()?;
    }
    let mut out = PerKey::new();
    for r in driver.output::<String, String>("out").read_records()? {
        out.entry(r.key).or_default().push((r.value, r.timestamp));
    }
    Ok(out)
}

#[test]
fn stream_time_timers_fire_once_per_key_in_order_whatever_the_lanes_and_epochs() -> stoat::Result<()> {
    let topology = reminders("timers-model");
    for seed in 1..=3 {
        let input = events(seed, 400);
        let want = model(&input);
        let reminded = want.values().flatten().filter(|(v, _)| v.contains("reminded")).count();
        assert!(reminded > 20, "timers fire: {reminded}");
        for lanes in LANES {
            for chunk in [5, 1_000] {
                assert_eq!(
                    run(&topology, &input, lanes, chunk)?,
                    want,
                    "seed {seed}, {lanes} lanes, chunk {chunk}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn timers_survive_a_restart_and_fire_exactly_once() -> stoat::Result<()> {
    let topology = reminders("timers-restart");
    let log = Arc::new(stoat::log::EmbeddedLog::new(2));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let config = |lanes| Config::default().lanes(lanes).state_dir(dir.path());
    let event = |user: &str, what: &str, ts: i64| {
        log.produce("events", Some(user.as_bytes().to_vec()), Some(what.as_bytes().to_vec()), ts, Vec::new());
    };
    {
        let mut app = App::embedded_on(&topology, config(3), log.clone())?;
        event("a", "order", 100_000);
        event("b", "order", 101_000);
        app.run_until_idle()?;
    }
    assert!(log.read_all("out").is_empty(), "nothing is due yet");
    {
        // Another lane count: the timers move with their keys.
        let mut app = App::embedded_on(&topology, config(5), log.clone())?;
        event("c", "browse", 110_500); // a's timer (110 000) is due, b's (111 000) is not
        app.run_until_idle()?;
    }
    {
        let mut app = App::embedded_on(&topology, config(2), log.clone())?;
        event("c", "browse", 112_000);
        app.run_until_idle()?;
        app.run_until_idle()?;
    }
    let out: Vec<String> = log
        .read_all("out")
        .iter()
        .map(|(_, r)| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(out, vec!["a reminded for 110000".to_string(), "b reminded for 111000".to_string()]);
    Ok(())
}

/// Expires a session a minute of wall clock after its last click.
struct Sessions;

#[stoat::operator]
impl Sessions {
    fn click(
        &self,
        #[key] _user: &String,
        _click: String,
        timers: &mut Timers,
        last: &mut Keyed<i64>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(old) = last.get()? {
            timers.delete_wall_clock(old)?;
        }
        let at = timers.wall_clock() + 60_000;
        timers.at_wall_clock(at)?;
        last.set(at)?;
        Ok(None)
    }

    #[on_timer]
    fn expire(
        &self,
        #[key] user: &String,
        timer: Timer,
        last: &mut Keyed<i64>,
    ) -> Result<String, StoreError> {
        last.delete()?;
        Ok(format!("{user} expired ({:?})", timer.domain()))
    }
}

#[test]
fn wall_clock_timers_fire_when_the_drivers_clock_reaches_them() -> stoat::Result<()> {
    let topology = Topology::new("timers-wall");
    topology.stream::<String, String>("clicks").process(Sessions).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(3))?;
    let clicks = driver.input::<String, String>("clicks");
    let out = driver.output::<String, String>("out");
    clicks.enqueue(&"a".into(), &"x".into())?;
    clicks.enqueue(&"b".into(), &"x".into())?;
    driver.run()?;
    driver.advance_wall_clock(Duration::from_secs(30))?;
    clicks.enqueue(&"b".into(), &"x".into())?; // b's session moves 30 s on
    driver.run()?;
    assert!(out.read_values()?.is_empty(), "nothing due");
    driver.advance_wall_clock(Duration::from_secs(31))?;
    assert_eq!(out.read_values()?, vec!["a expired (WallClock)".to_string()]);
    driver.advance_wall_clock(Duration::from_secs(30))?;
    assert_eq!(out.read_values()?, vec!["b expired (WallClock)".to_string()]);
    driver.advance_wall_clock(Duration::from_secs(600))?;
    assert!(out.read_values()?.is_empty(), "each fired once");
    Ok(())
}

struct Fragile;

#[stoat::operator]
impl Fragile {
    fn set(&self, #[key] _user: &String, at: u64, timers: &mut Timers) -> Result<Option<String>, StoreError> {
        timers.at(at as i64)?;
        Ok(None)
    }

    #[on_timer]
    fn fire(&self, #[key] user: &String, timer: Timer) -> String {
        assert!(user != "bad", "timer of `bad` at {}", timer.time());
        format!("{user} {}", timer.time())
    }
}

#[test]
fn a_panicking_timer_method_goes_to_the_error_policy() -> stoat::Result<()> {
    let topology = Topology::new("timers-panic");
    topology.stream::<String, u64>("in").process(Fragile).to("out");
    let driver =
        TestDriver::with_config(&topology, Config::default().lanes(2).error_policy(ErrorPolicy::Skip))?;
    let input = driver.input::<String, u64>("in");
    input.enqueue_at(&"bad".into(), &5, 1)?;
    input.enqueue_at(&"good".into(), &6, 2)?;
    input.enqueue_at(&"later".into(), &100, 10)?;
    let stats = driver.run()?;
    assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["good 6".to_string()]);
    assert_eq!(stats.skipped_operator, 1, "{stats:?}");

    let topology = Topology::new("timers-fail");
    topology.stream::<String, u64>("in").process(Fragile).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(2))?;
    let input = driver.input::<String, u64>("in");
    input.enqueue_at(&"bad".into(), &5, 1)?;
    input.enqueue_at(&"later".into(), &100, 10)?;
    let err = driver.run().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("`set`") && err.contains("timer at 5") && err.contains("timer of `bad` at 5"),
        "{err}"
    );
    Ok(())
}

#[stoat::operator]
fn sets_but_never_fires(#[key] _user: &String, at: u64, timers: &mut Timers) -> Result<u64, StoreError> {
    timers.at(at as i64)?;
    Ok(at)
}

#[test]
fn timers_without_an_on_timer_method_are_refused_when_the_topology_is_built() {
    let topology = Topology::new("timers-no-handler");
    topology.stream::<String, u64>("in").process(sets_but_never_fires {}).to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`sets_but_never_fires` takes `Timers`") && err.contains("#[on_timer]"), "{err}");
}

/// Counts each user's events (a write each); a user not seen for 10 s of stream time starts
/// again from 1.
#[stoat::operator(expire_after = "10s")]
fn visits(#[key] _user: &String, _event: String, count: &mut Keyed<u64>) -> Result<u64, StoreError> {
    let n = count.get()?.unwrap_or(0) + 1;
    count.set(n)?;
    Ok(n)
}

#[test]
fn key_scoped_state_expires_after_it_is_not_written_for_a_while() -> stoat::Result<()> {
    let topology = Topology::new("expiry");
    topology.stream::<String, String>("events").process(visits {}).to("out");
    for lanes in LANES {
        for chunk in [1, 100] {
            let driver =
                TestDriver::with_config(&topology, Config::default().lanes(lanes).commit_max_records(chunk))?;
            let events = driver.input::<String, String>("events");
            let mut out = Vec::new();
            for (user, at) in
                [("a", 0), ("a", 5_000), ("b", 14_000), ("a", 15_000), ("b", 26_000), ("a", 26_000)]
            {
                events.enqueue_at(&user.to_string(), &"x".to_string(), at)?;
                if chunk == 1 {
                    driver.run()?;
                }
            }
            driver.run()?;
            for r in driver.output::<String, u64>("out").read_records()? {
                out.push((r.key, r.value));
            }
            // Per key (keys on different lanes interleave freely).
            out.sort_by(|x, y| x.0.cmp(&y.0));
            // a's state expires when stream time reaches 15 000 (10 s after 5 000), so a starts
            // again then; later a's expires at 25 000, b's at 24 000.
            let want: Vec<(String, u64)> = [("a", 1), ("a", 2), ("a", 1), ("a", 1), ("b", 1), ("b", 1)]
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect();
            assert_eq!(out, want, "{lanes} lanes, chunk {chunk}");
            // a and b were seen at 26 000: both stored again, and each has one expiry timer.
            assert_eq!(driver.store_entries("visits")?, 2);
            assert_eq!(driver.store_entries("visits.timers")?, 2);
            events.enqueue_at(&"c".to_string(), &"x".to_string(), 40_000)?;
            driver.run()?;
            assert_eq!(driver.store_entries("visits")?, 1, "a and b expired (tombstones), c is new");
        }
    }
    Ok(())
}

/// Remembers a user's cart until it sits untouched for 30 min of wall clock.
#[stoat::operator(expire_after = "30m", expire_on = "wall_clock")]
fn cart(#[key] _user: &String, item: String, items: &mut Keyed<Vec<String>>) -> Result<usize, StoreError> {
    let mut all = items.get()?.unwrap_or_default();
    all.push(item);
    items.set(all.clone())?;
    Ok(all.len())
}

#[test]
fn state_can_expire_on_the_wall_clock() -> stoat::Result<()> {
    let topology = Topology::new("expiry-wall");
    topology.stream::<String, String>("items").process(cart {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(3))?;
    let items = driver.input::<String, String>("items");
    items.enqueue(&"a".into(), &"apple".into())?;
    driver.run()?;
    driver.advance_wall_clock(Duration::from_secs(20 * 60))?;
    items.enqueue(&"a".into(), &"pear".into())?;
    driver.run()?;
    driver.advance_wall_clock(Duration::from_secs(29 * 60))?;
    assert_eq!(driver.store_entries("cart")?, 1, "touched 29 min ago: kept");
    driver.advance_wall_clock(Duration::from_secs(2 * 60))?;
    assert_eq!(driver.store_entries("cart")?, 0, "31 min untouched: gone");
    items.enqueue(&"a".into(), &"plum".into())?;
    driver.run()?;
    assert_eq!(driver.output::<String, usize>("out").read_values()?, vec![1, 2, 1]);
    Ok(())
}

#[test]
fn expiry_needs_key_scoped_state() {
    #[stoat::operator(expire_after = "1h")]
    fn stateless(#[key] _user: &String, v: u64) -> u64 {
        v
    }
    let topology = Topology::new("expiry-nothing");
    topology.stream::<String, u64>("in").process(stateless {}).to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`stateless` has `expire_after`") && err.contains("Keyed"), "{err}");
}

#[test]
fn the_driver_advances_stream_time_without_records() -> stoat::Result<()> {
    let topology = reminders("timers-advance");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(3))?;
    let events = driver.input::<String, String>("events");
    events.enqueue_at(&"ann".into(), &"order".into(), 1_000)?;
    driver.run()?;
    let out = driver.output::<String, String>("out");
    assert!(out.read_values()?.is_empty());
    driver.advance_stream_time(10_999)?;
    assert!(out.read_values()?.is_empty(), "due at 11 000");
    driver.advance_stream_time(11_000)?;
    assert_eq!(out.read_values()?, vec!["ann reminded for 11000".to_string()]);
    Ok(())
}

/// Keeps a balance; `peek` reads it without writing, which does not make it live longer.
#[stoat::operator(expire_after = "10s")]
fn balance(#[key] _user: &String, op: String, stored: &mut Keyed<i64>) -> Result<i64, StoreError> {
    if op == "set" {
        stored.set(1)?;
    }
    Ok(stored.get()?.unwrap_or(-1))
}

#[test]
fn state_expires_counting_from_its_last_write_not_its_last_read() -> stoat::Result<()> {
    let topology = Topology::new("expiry-writes");
    topology.stream::<String, String>("ops").process(balance {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(2))?;
    let ops = driver.input::<String, String>("ops");
    for (op, at) in [("set", 0), ("peek", 8_000), ("peek", 9_999), ("peek", 10_000)] {
        ops.enqueue_at(&"u".into(), &op.into(), at)?;
    }
    driver.run()?;
    assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![1, 1, 1, -1]);
    Ok(())
}

#[test]
fn an_idle_topology_with_timers_commits_only_epochs_that_change_something() -> stoat::Result<()> {
    let topology = reminders("timers-idle");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(2))?;
    driver.input::<String, String>("events").enqueue_at(&"ann".into(), &"order".into(), 1_000)?;
    let busy = driver.run()?.epochs;
    for _ in 0..5 {
        driver.run()?;
    }
    assert_eq!(driver.stats().epochs, busy, "nothing due: no empty epochs committed");
    driver.advance_stream_time(11_000)?;
    assert_eq!(driver.stats().epochs, busy + 1, "the reminder fired: one epoch");
    assert_eq!(driver.output::<String, String>("out").read_values()?.len(), 1);
    Ok(())
}

/// A timer method that sets its own timer again at the same time, and emits: it would fire in
/// every round of the epoch's end.
struct Restless;

#[stoat::operator]
impl Restless {
    fn start(&self, #[key] _user: &String, at: u64, timers: &mut Timers) -> Result<Option<u64>, StoreError> {
        timers.at(at as i64)?;
        Ok(None)
    }

    #[on_timer]
    fn again(&self, #[key] _user: &String, timer: Timer, timers: &mut Timers) -> Result<u64, StoreError> {
        timers.at(timer.time())?;
        Ok(1)
    }
}

#[test]
fn a_timer_that_keeps_firing_at_an_epochs_end_is_an_error_not_a_hang() -> stoat::Result<()> {
    let topology = Topology::new("timers-restless");
    topology.stream::<String, u64>("in").process(Restless).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(1))?;
    driver.input::<String, u64>("in").enqueue_at(&"a".into(), &5, 10)?;
    let err = driver.run().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("did not settle") && err.contains("#[on_timer]"), "{err}");
    Ok(())
}
