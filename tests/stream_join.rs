//! Stream-stream joins (inner, left, outer) over join windows, against a model of Kafka Streams
//! 4.4's rules written here: a record joins the other side's records of its key within the
//! window (at once, with the larger timestamp); in left and outer joins an unmatched record
//! waits until stream time passes its timestamp plus the window plus the grace period and is
//! then emitted alone (before its key's next output), or at once if its window has already
//! passed when it arrives; stores keep records for the window's span plus grace. Both sides
//! come from one topic (split by a tag), so the input order is the dispatch order.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stoat::prelude::*;
use support::Rng;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// `(key, "L:x" or "R:y", timestamp)`
type Event = (String, String, i64);

/// Left and right streams of topic `events`: values tagged `L:` or `R:`, tag removed.
fn sides(topology: &Topology) -> (Stream<String, String>, Stream<String, String>) {
    let events = topology.stream::<String, String>("events");
    let side = |tag: &'static str| {
        events
            .filter(move |_, v| v.starts_with(tag))
            .map_values(|v| v.get(2..).unwrap_or_default().to_string())
    };
    (side("L:"), side("R:"))
}

fn show(l: Option<String>, r: Option<String>) -> String {
    format!("{}+{}", l.unwrap_or("-".into()), r.unwrap_or("-".into()))
}

/// A topology with the three joins of one `windows`, to `inner`, `left` and `outer`.
fn joins(app: &str, windows: JoinWindows) -> Topology {
    let topology = Topology::new(app);
    let (l, r) = sides(&topology);
    l.join_stream(&r, windows, "inner", |l, r| show(Some(l), Some(r))).to("inner");
    l.left_join_stream(&r, windows, "left", |l, r| show(Some(l), r)).to("left");
    l.outer_join_stream(&r, windows, "outer", show).to("outer");
    topology
}

type PerKey = BTreeMap<String, Vec<(String, i64)>>;

/// Runs `topology` over `events` with `lanes` lanes, `chunk` records per run (each run ends an
/// epoch at least); returns each output's records per key.
fn run(topology: &Topology, events: &[Event], lanes: usize, chunk: usize) -> stoat::Result<[PerKey; 3]> {
    let driver = TestDriver::with_config(topology, Config::default().lanes(lanes).commit_max_records(chunk))?;
    let input = driver.input::<String, String>("events");
    for part in events.chunks(chunk) {
        for (key, value, ts) in part {
            input.enqueue_at(key, value, *ts)?;
        }
        driver.run()?;
    }
    let read = |topic: &str| -> stoat::Result<PerKey> {
        let mut out = PerKey::new();
        for r in driver.output::<String, String>(topic).read_records()? {
            out.entry(r.key).or_default().push((r.value, r.timestamp));
        }
        Ok(out)
    };
    Ok([read("inner")?, read("left")?, read("outer")?])
}

/// One stored record of the model.
struct Stored {
    left: bool,
    key: String,
    value: String,
    ts: i64,
    waiting: bool,
}

/// The model: `(before, after, grace)` windows; `alone = (left, right)`: which sides' unmatched
/// records are emitted alone.
fn model(events: &[Event], (before, after, grace): (i64, i64, i64), alone: (bool, bool)) -> PerKey {
    let retention = before + after + grace;
    let mut st = i64::MIN;
    let mut stored: Vec<Stored> = Vec::new();
    let mut out = PerKey::new();
    // When a waiting record's window closes: past its timestamp plus its reach plus grace.
    let close = |s: &Stored| s.ts + if s.left { after } else { before } + grace;
    let emit_alone = |s: &Stored, out: &mut PerKey| {
        let (l, r) = if s.left { (Some(s.value.clone()), None) } else { (None, Some(s.value.clone())) };
        out.entry(s.key.clone()).or_default().push((show(l, r), s.ts));
    };
    // Waiting records (of `key`, or all) closed at `st`, in order of (close, right first, ts).
    let close_due = |stored: &mut Vec<Stored>, key: Option<&str>, st: i64, out: &mut PerKey| {
        let mut due: Vec<usize> = (0..stored.len())
            .filter(|&i| {
                stored[i].waiting && close(&stored[i]) < st && key.is_none_or(|k| stored[i].key == k)
            })
            .collect();
        due.sort_by_key(|&i| (close(&stored[i]), stored[i].left, stored[i].key.clone(), stored[i].ts, i));
        for i in due {
            stored[i].waiting = false;
            emit_alone(&stored[i], out);
        }
    };
    for (key, tagged, ts) in events {
        let (left, value) = (tagged.starts_with("L:"), tagged[2..].to_string());
        let ts = *ts;
        st = st.max(ts);
        if alone.0 || alone.1 {
            close_due(&mut stored, Some(key), st, &mut out);
        }
        let (lo, hi) = if left { (ts - before, ts + after) } else { (ts - after, ts + before) };
        let mut partners: Vec<usize> = (0..stored.len())
            .filter(|&i| {
                let s = &stored[i];
                s.left != left && s.key == *key && s.ts >= lo.max(0) && s.ts <= hi && s.ts > st - retention
            })
            .collect();
        partners.sort_by_key(|&i| (stored[i].ts, i));
        for &i in &partners {
            let s = &mut stored[i];
            s.waiting = false;
            let (l, r) =
                if left { (value.clone(), s.value.clone()) } else { (s.value.clone(), value.clone()) };
            out.entry(key.clone()).or_default().push((show(Some(l), Some(r)), ts.max(s.ts)));
        }
        let mut waiting = false;
        let mine_alone = if left { alone.0 } else { alone.1 };
        if mine_alone && partners.is_empty() {
            let reach = if left { after } else { before };
            if ts + reach < st {
                let s = Stored { left, key: key.clone(), value: value.clone(), ts, waiting: false };
                emit_alone(&s, &mut out);
            } else {
                waiting = true;
            }
        }
        if waiting || ts > st - retention {
            stored.push(Stored { left, key: key.clone(), value, ts, waiting });
        }
    }
    close_due(&mut stored, None, st, &mut out);
    out
}

/// Random events over `keys` keys: timestamps mostly rising by up to 2 s, one in five up to
/// 20 s behind (late beyond the window, the grace and the retention).
fn events(seed: u64, n: usize, keys: usize) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let mut ts = 100_000i64;
    (0..n)
        .map(|i| {
            ts += rng.below(1_000) as i64;
            let at = if rng.below(5) == 0 { ts - rng.below(20_000) as i64 } else { ts };
            let tag = if rng.below(2) == 0 { "L" } else { "R" };
            (format!("k{}", rng.below(keys)), format!("{tag}:{tag}{i}"), at)
        })
        .collect()
}

#[test]
fn joins_match_the_model_whatever_the_lanes_and_epochs() -> stoat::Result<()> {
    let cases: [(i64, i64, i64); 3] = [(5_000, 5_000, 2_000), (1_000, 6_000, 0), (3_000, 0, 4_000)];
    for (seed, (before, after, grace)) in cases.into_iter().enumerate() {
        let windows =
            JoinWindows::of_time_difference_and_grace(Duration::ZERO, Duration::from_millis(grace as u64))
                .before(Duration::from_millis(before as u64))
                .after(Duration::from_millis(after as u64));
        let topology = joins("ss-model", windows);
        let input = events(seed as u64 + 1, 600, 4);
        let want = [
            model(&input, (before, after, grace), (false, false)),
            model(&input, (before, after, grace), (true, false)),
            model(&input, (before, after, grace), (true, true)),
        ];
        let alone = |p: &PerKey| p.values().flatten().filter(|(v, _)| v.contains('-')).count();
        assert!(alone(&want[1]) > 10 && alone(&want[2]) > alone(&want[1]), "unmatched records are emitted");
        assert!(want[0].values().map(Vec::len).sum::<usize>() > 100, "records join");
        for lanes in LANES {
            for chunk in [7, 1_000] {
                let got = run(&topology, &input, lanes, chunk)?;
                for (i, name) in ["inner", "left", "outer"].iter().enumerate() {
                    assert_eq!(
                        got[i], want[i],
                        "{name}, windows {before}/{after}/{grace}, {lanes} lanes, chunk {chunk}"
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn a_hand_worked_sequence_joins_waits_and_emits_as_kafka_streams_rules_say() -> stoat::Result<()> {
    // 5 s windows, 2 s grace: a record waits until stream time passes ts + 7 s.
    let windows = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2));
    let topology = joins("ss-hand", windows);
    let input: Vec<Event> = [
        ("a", "L:l1", 1_000),
        ("a", "R:r1", 3_000),  // joins l1 at 3 000
        ("a", "R:r2", 7_000),  // 6 s after l1: no partner, waits (outer)
        ("b", "L:l2", 10_000), // waits (left, outer)
        ("a", "L:l3", 2_500),  // out of order: joins r1 and r2 (r2 no longer waits)
        ("c", "R:r3", 20_000), // stream time 20 000: l2 closes (10 000 + 7 000 < 20 000)
        ("d", "L:l4", 11_000), // its window passed (11 000 + 5 000 < 20 000): alone at once
        ("a", "L:l5", 12_000), // r1 and r2 are past retention (12 s), its window passed: alone
    ]
    .into_iter()
    .map(|(k, v, t)| (k.to_string(), v.to_string(), t))
    .collect();
    let pk = |entries: &[(&str, &str, i64)]| -> PerKey {
        let mut out = PerKey::new();
        for (k, v, t) in entries {
            out.entry(k.to_string()).or_default().push((v.to_string(), *t));
        }
        out
    };
    let inner = pk(&[("a", "l1+r1", 3_000), ("a", "l3+r1", 3_000), ("a", "l3+r2", 7_000)]);
    let left = pk(&[
        ("a", "l1+r1", 3_000),
        ("a", "l3+r1", 3_000),
        ("a", "l3+r2", 7_000),
        ("b", "l2+-", 10_000),
        ("a", "l5+-", 12_000),
        ("d", "l4+-", 11_000),
    ]);
    let outer = left.clone();
    for lanes in LANES {
        for chunk in [1, 100] {
            let [i, l, o] = run(&topology, &input, lanes, chunk)?;
            assert_eq!((&i, &l, &o), (&inner, &left, &outer), "{lanes} lanes, chunk {chunk}");
        }
    }
    Ok(())
}

#[test]
fn records_waiting_at_a_stop_are_joined_or_emitted_after_a_restart() -> stoat::Result<()> {
    let windows = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::ZERO);
    let topology = joins("ss-restart", windows);
    let log = Arc::new(stoat::log::EmbeddedLog::new(2));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let event = |key: &str, value: &str, ts: i64| {
        log.produce("events", Some(key.as_bytes().to_vec()), Some(value.as_bytes().to_vec()), ts, Vec::new())
    };
    {
        let mut app =
            App::embedded_on(&topology, Config::default().lanes(3).state_dir(dir.path()), log.clone())?;
        event("a", "L:l1", 100_000);
        event("b", "L:l2", 100_000);
        app.run_until_idle()?;
    }
    // After a restart on another lane count: `a` finds its partner, `b` closes.
    let mut app = App::embedded_on(&topology, Config::default().lanes(5).state_dir(dir.path()), log.clone())?;
    event("a", "R:r1", 103_000);
    event("c", "R:r2", 106_000);
    app.run_until_idle()?;
    let read = |topic: &str| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = log
            .read_all(topic)
            .into_iter()
            .map(|(_, r)| {
                let text = |b: &Option<Vec<u8>>| {
                    String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned()
                };
                (text(&r.key), text(&r.value))
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(read("inner"), vec![("a".into(), "l1+r1".into())]);
    assert_eq!(read("left"), vec![("a".into(), "l1+r1".into()), ("b".into(), "l2+-".into())]);
    assert_eq!(read("outer"), vec![("a".into(), "l1+r1".into()), ("b".into(), "l2+-".into())]);
    Ok(())
}

#[test]
fn a_panicking_joiner_skips_only_its_pair_under_skip() -> stoat::Result<()> {
    let windows = JoinWindows::of_time_difference_without_grace(Duration::from_secs(5));
    let topology = Topology::new("ss-panic");
    let (l, r) = sides(&topology);
    l.join_stream(&r, windows, "j", |l: String, r: String| {
        assert!(r != "bad", "the joiner refuses `bad`");
        format!("{l}+{r}")
    })
    .to("out");
    let driver =
        TestDriver::with_config(&topology, Config::default().lanes(2).error_policy(ErrorPolicy::Skip))?;
    let input = driver.input::<String, String>("events");
    input.enqueue_at(&"a".into(), &"R:bad".into(), 1_000)?;
    input.enqueue_at(&"a".into(), &"R:good".into(), 1_000)?;
    input.enqueue_at(&"a".into(), &"L:x".into(), 2_000)?;
    let stats = driver.run()?;
    assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["x+good".to_string()]);
    assert_eq!(stats.skipped_operator, 1, "{stats:?}");
    Ok(())
}

#[test]
fn a_join_refuses_streams_without_a_key_and_reused_store_names() {
    let windows = JoinWindows::of_time_difference_without_grace(Duration::from_secs(5));
    let topology = Topology::new("ss-unkeyed");
    let a = topology.stream::<(), String>("a");
    let b = topology.stream::<(), String>("b");
    a.join_stream(&b, windows, "j", |x, y| x + &y).to("out");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("without a key") && err.contains("key_by"), "{err}");

    let topology = Topology::new("ss-names");
    let (l, r) = sides(&topology);
    l.join_stream(&r, windows, "j", |x, y| x + &y).to("out1");
    l.join_stream(&r, windows, "j", |x, y| x + &y).to("out2");
    let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`j.left`") && err.contains("already used"), "{err}");
}

#[test]
fn records_past_retention_leave_the_stores() -> stoat::Result<()> {
    let windows = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2));
    let topology = joins("ss-expiry", windows);
    let driver = TestDriver::with_config(&topology, Config::default().lanes(3))?;
    let input = driver.input::<String, String>("events");
    for (key, value, ts) in [("a", "L:l1", 100_000), ("b", "L:l2", 101_000), ("c", "R:r1", 102_000)] {
        input.enqueue_at(&key.to_string(), &value.to_string(), ts)?;
    }
    driver.run()?;
    let sizes = |driver: &TestDriver| -> stoat::Result<Vec<u64>> {
        ["inner", "left", "outer"]
            .iter()
            .flat_map(|s| [format!("{s}.left"), format!("{s}.right")])
            .map(|store| driver.store_entries(&store))
            .collect()
    };
    assert_eq!(sizes(&driver)?, vec![2, 1, 2, 1, 2, 1]);
    // Retention is 12 s (5 + 5 + 2): at 112 500, l1 is out of it (l2, r1 and l3 are not).
    input.enqueue_at(&"d".to_string(), &"L:l3".to_string(), 112_500)?;
    driver.run()?;
    assert_eq!(sizes(&driver)?, vec![2, 1, 2, 1, 2, 1], "l1 expired, l3 stored");
    input.enqueue_at(&"d".to_string(), &"L:l4".to_string(), 130_000)?;
    driver.run()?;
    assert_eq!(sizes(&driver)?, vec![1, 0, 1, 0, 1, 0], "only l4 is left");
    Ok(())
}
