//! Windowed aggregations against Kafka Streams 4.4's rules (its cache off), on random input
//! with out-of-order and late records, with 1, 3, 16 and 300 lanes: tumbling count (10 s windows, 5 s
//! grace) and hopping sum (10 s windows advancing by 5 s, 2 s grace). Stream time is the
//! largest timestamp seen so far; a window takes a record while `end + grace > stream time`.
//! Expected outputs come from a model written here, per (key, window) in order.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stoat::prelude::*;
use support::Rng;

/// One lane, a few, and more lanes than lane groups (several lanes per task).
const LANES: [usize; 4] = [1, 3, 16, 300];

/// (user, amount, timestamp): timestamps mostly rise, sometimes jump back by up to 25 s.
fn clicks(seed: u64, n: usize) -> Vec<(String, u64, i64)> {
    let mut rng = Rng::new(seed);
    let mut ts = 100_000i64;
    (0..n)
        .map(|_| {
            ts += rng.below(3_000) as i64;
            let at = if rng.below(5) == 0 { ts - rng.below(25_000) as i64 } else { ts };
            (format!("u{}", rng.below(4)), rng.below(100) as u64, at)
        })
        .collect()
}

type PerWindow = BTreeMap<(String, i64), Vec<(u64, i64)>>;

/// Kafka Streams' windowed aggregation: for each record, stream time moves first; each window
/// containing the record (ascending start) is updated unless `end + grace <= stream time`.
fn model(
    records: &[(String, u64, i64)],
    size: i64,
    advance: i64,
    grace: i64,
    f: impl Fn(u64, u64) -> u64,
) -> (PerWindow, u64) {
    let mut stream_time = i64::MIN;
    let mut state: BTreeMap<(String, i64), (u64, i64)> = BTreeMap::new();
    let mut out = PerWindow::new();
    let mut late = 0;
    for (user, amount, ts) in records {
        stream_time = stream_time.max(*ts);
        let mut start = ((ts - size + advance).max(0) / advance) * advance;
        while start <= *ts {
            if start + size + grace <= stream_time {
                late += 1;
            } else {
                let e = state.entry((user.clone(), start)).or_insert((0, i64::MIN));
                *e = (f(e.0, *amount), e.1.max(*ts));
                out.entry((user.clone(), start)).or_default().push(*e);
            }
            start += advance;
        }
    }
    (out, late)
}

/// A test driver that has run `topology` over `records` (to "clicks"), 97 at a time.
fn driven(topology: &Topology, records: &[(String, u64, i64)], lanes: usize) -> stoat::Result<TestDriver> {
    let driver = TestDriver::with_config(topology, Config::default().lanes(lanes).commit_max_records(500))?;
    let input = driver.input::<String, u64>("clicks");
    for chunk in records.chunks(97) {
        for (user, amount, ts) in chunk {
            input.enqueue_at(user, amount, *ts)?;
        }
        driver.run()?;
    }
    Ok(driver)
}

/// A click of `user` at `ts`, on an embedded log.
fn click(log: &stoat::log::EmbeddedLog, user: &str, ts: i64) {
    log.produce("clicks", Some(user.as_bytes().to_vec()), Some(1u64.to_be_bytes().to_vec()), ts, Vec::new());
}

fn run(
    topology: &Topology,
    records: &[(String, u64, i64)],
    lanes: usize,
    size: Duration,
) -> stoat::Result<(PerWindow, stoat::RunStats)> {
    let driver = driven(topology, records, lanes)?;
    let mut out = PerWindow::new();
    for r in driver.output_with("out", TimeWindowed::new(Utf8, size), Binary::default()).read_records()? {
        let r: Record<Windowed<String>, u64> = r;
        assert_eq!(r.key.window.end - r.key.window.start, size.as_millis() as i64);
        out.entry((r.key.key, r.key.window.start)).or_default().push((r.value, r.timestamp));
    }
    Ok((out, driver.stats()))
}

#[test]
fn a_tumbling_count_with_grace_matches_kafka_streams() -> stoat::Result<()> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("tumbling");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(size, Duration::from_secs(5)))
        .count("window_counts")
        .to("out");
    for seed in 1..=3 {
        let records = clicks(seed, 600);
        let (expected, late) = model(&records, 10_000, 10_000, 5_000, |n, _| n + 1);
        assert!(late > 10, "the input has late records ({late})");
        for lanes in LANES {
            let (got, stats) = run(&topology, &records, lanes, size)?;
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
            assert_eq!(stats.dropped_late, late, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn a_hopping_sum_updates_each_open_window_in_start_order() -> stoat::Result<()> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("hopping");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_and_grace(size, Duration::from_secs(2)).advance_by(Duration::from_secs(5)),
        )
        .aggregate("window_sums", || 0u64, |_, amount, sum| sum + amount)
        .to("out");
    for seed in 4..=6 {
        let records = clicks(seed, 600);
        let (expected, late) = model(&records, 10_000, 5_000, 2_000, |sum, amount| sum + amount);
        for lanes in LANES {
            let (got, stats) = run(&topology, &records, lanes, size)?;
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
            assert_eq!(stats.dropped_late, late, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn windowed_keys_print_and_encode_as_kafka_streams_does() -> stoat::Result<()> {
    use stoat::codec::Codec;
    let key = Windowed { key: "ann".to_string(), window: stoat::Window { start: 10_000, end: 20_000 } };
    assert_eq!(key.to_string(), "[ann@10000/20000]");
    let codec = TimeWindowed::new(Utf8, Duration::from_secs(10));
    let bytes = codec.encode(&key).map_err(|e| stoat::Error::Runtime(e.to_string()))?.unwrap_or_default();
    // TimeWindowedSerializer: the key's bytes, then the start as 8 big-endian bytes.
    assert_eq!(bytes, [b"ann".as_slice(), &10_000i64.to_be_bytes()].concat());
    assert_eq!(codec.decode(Some(&bytes)).map_err(|e| stoat::Error::Runtime(e.to_string()))?, key);
    let without_size = <Windowed<String> as stoat::codec::DefaultCodec>::Codec::default();
    let err = without_size.decode(Some(&bytes)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("TimeWindowed::new"), "{err}");
    Ok(())
}

#[test]
fn stream_time_survives_a_restart_so_late_records_stay_late() -> stoat::Result<()> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("restart-time");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(size))
        .count("window_counts")
        .to_with("out", TimeWindowed::new(Utf8, size), Binary::default());
    let log = Arc::new(stoat::log::EmbeddedLog::new(2));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let config = || Config::default().lanes(3).state_dir(dir.path());
    let click = |user: &str, ts: i64| click(&log, user, ts);
    {
        let mut app = App::embedded_on(&topology, config(), log.clone())?;
        click("a", 100_000);
        click("b", 130_000); // stream time 130 s: the window [100 s, 110 s) is closed
        app.run_until_idle()?;
    }
    let mut app = App::embedded_on(&topology, config(), log.clone())?;
    click("a", 105_000); // late after the restart too
    let stats = app.run_until_idle()?;
    assert_eq!(stats.dropped_late, 1, "stream time was restored from the committed partition times");
    assert_eq!(log.read_all("out").len(), 2, "only the first run's two windows were emitted");
    Ok(())
}

#[test]
fn emit_on_window_close_emits_each_closed_window_once_with_its_final_count() -> stoat::Result<()> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("tumbling-final");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(size, Duration::from_secs(5)))
        .emit_on_window_close()
        .count("final_counts")
        .to("out");
    for seed in 7..=9 {
        let records = clicks(seed, 600);
        let (updates, late) = model(&records, 10_000, 10_000, 5_000, |n, _| n + 1);
        // What Kafka Streams' suppress(untilWindowCloses) emits by the end: each window whose
        // end plus grace stream time has reached, once, with its last update.
        let stream_time = records.iter().map(|r| r.2).max().unwrap_or(0);
        let expected: PerWindow = updates
            .into_iter()
            .filter(|((_, start), _)| start + 10_000 + 5_000 <= stream_time)
            .map(|(window, ups)| (window, ups.last().copied().into_iter().collect()))
            .collect();
        assert!(expected.len() > 20, "windows closed: {}", expected.len());
        for lanes in LANES {
            let (got, stats) = run(&topology, &records, lanes, size)?;
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
            assert_eq!(stats.dropped_late, late, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn windows_left_open_at_a_stop_are_emitted_after_a_restart_when_they_close() -> stoat::Result<()> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("final-restart");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(size))
        .emit_on_window_close()
        .count("final_counts")
        .to_with("out", TimeWindowed::new(Utf8, size), Binary::default());
    let log = Arc::new(stoat::log::EmbeddedLog::new(2));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let config = || Config::default().lanes(3).state_dir(dir.path());
    let click = |user: &str, ts: i64| click(&log, user, ts);
    {
        let mut app = App::embedded_on(&topology, config(), log.clone())?;
        click("a", 100_000);
        click("a", 101_000);
        click("b", 105_000);
        app.run_until_idle()?;
    }
    assert!(log.read_all("out").is_empty(), "the window [100 s, 110 s) is still open");
    let mut app = App::embedded_on(&topology, config(), log.clone())?;
    click("c", 125_000);
    app.run_until_idle()?;
    let codec = TimeWindowed::new(Utf8, size);
    let mut out: Vec<(String, i64, u64)> = Vec::new();
    for (_, r) in log.read_all("out") {
        use stoat::codec::Codec;
        let key: Windowed<String> =
            codec.decode(r.key.as_deref()).map_err(|e| stoat::Error::Runtime(e.to_string()))?;
        let n = u64::from_be_bytes(r.value.as_deref().unwrap_or_default().try_into().unwrap_or_default());
        out.push((key.key, key.window.start, n));
    }
    out.sort();
    assert_eq!(out, vec![("a".to_string(), 100_000, 2), ("b".to_string(), 100_000, 1)]);
    Ok(())
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Event {
    at: i64,
}

#[test]
fn a_timestamp_extractor_sets_event_time_for_windows_and_stream_time() -> stoat::Result<()> {
    const EVENTS: Topic<String, Event> = Topic::json("events");
    let size = Duration::from_secs(10);
    for lanes in LANES {
        let topology = Topology::new("extracted");
        topology
            .source_with_timestamps(&EVENTS, |_, e, _kafka_ts| e.at)
            .group_by_key()
            .windowed_by(TimeWindows::of_size_with_no_grace(size))
            .count("counts")
            .to("out");
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let events = driver.input_topic(&EVENTS);
        // The Kafka timestamps say nothing: event time is in the value.
        events.pipe_at("a".into(), Event { at: 100_000 }, 1)?;
        events.pipe_at("b".into(), Event { at: 130_000 }, 2)?;
        events.pipe_at("a".into(), Event { at: 105_000 }, 3)?; // late by event time
        let out: Vec<(String, i64, u64, i64)> = driver
            .output_with("out", TimeWindowed::new(Utf8, size), Binary::default())
            .read_records()?
            .into_iter()
            .map(|r: Record<Windowed<String>, u64>| (r.key.key, r.key.window.start, r.value, r.timestamp))
            .collect();
        assert_eq!(
            out,
            vec![("a".to_string(), 100_000, 1, 100_000), ("b".to_string(), 130_000, 1, 130_000)],
            "{lanes} lanes"
        );
        assert_eq!(driver.stats().dropped_late, 1, "{lanes} lanes");
    }
    Ok(())
}

type PerSession = BTreeMap<(String, i64, i64), Vec<(Option<u64>, i64)>>;

/// Kafka Streams' session count (gap, grace): a record merges with the key's sessions within a
/// gap of it that the store still keeps (end > stream time - gap - grace); it is late if the
/// merged session ends before stream time - grace - gap; each merged session gets a tombstone
/// (at its old end), then the merged session its count (at its end).
fn session_model(records: &[(String, u64, i64)], gap: i64, grace: i64) -> (PerSession, u64) {
    let mut st = i64::MIN;
    let mut sessions: BTreeMap<String, Vec<(i64, i64, u64)>> = BTreeMap::new(); // (start, end, count)
    let mut out = PerSession::new();
    let mut late = 0;
    for (user, _, ts) in records {
        st = st.max(*ts);
        let mine = sessions.entry(user.clone()).or_default();
        let (mut found, kept): (Vec<_>, Vec<_>) =
            mine.drain(..).partition(|(s, e, _)| *e >= ts - gap && *s <= ts + gap && *e > st - gap - grace);
        *mine = kept;
        found.sort_by_key(|(s, e, _)| (*e, *s));
        let start = found.iter().map(|f| f.0).chain([*ts]).min().unwrap_or(*ts);
        let end = found.iter().map(|f| f.1).chain([*ts]).max().unwrap_or(*ts);
        if end < st - grace - gap {
            late += 1;
            mine.extend(found);
            continue;
        }
        let count = found.iter().map(|f| f.2).sum::<u64>() + 1;
        for (s, e, _) in &found {
            out.entry((user.clone(), *s, *e)).or_default().push((None, *e));
        }
        out.entry((user.clone(), start, end)).or_default().push((Some(count), end));
        mine.push((start, end, count));
    }
    (out, late)
}

#[test]
fn a_session_count_merges_sessions_and_sends_tombstones_as_kafka_streams_does() -> stoat::Result<()> {
    let topology = Topology::new("sessions");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(5),
            Duration::from_secs(2),
        ))
        .count("session_counts")
        .to("out");
    for seed in 10..=12 {
        let records = clicks(seed, 600);
        let (expected, late) = session_model(&records, 5_000, 2_000);
        assert!(expected.values().flatten().any(|(v, _)| v.is_none()), "sessions merged");
        for lanes in LANES {
            let driver = driven(&topology, &records, lanes)?;
            let mut got = PerSession::new();
            for r in driver.output::<SessionWindowed<String>, Option<u64>>("out").read_records()? {
                got.entry((r.key.key, r.key.window.start, r.key.window.end))
                    .or_default()
                    .push((r.value, r.timestamp));
            }
            assert_eq!(got, expected, "seed {seed}, {lanes} lanes");
            assert_eq!(driver.stats().dropped_late, late, "seed {seed}, {lanes} lanes");
        }
    }
    Ok(())
}

#[test]
fn session_keys_print_and_encode_as_kafka_streams_does() -> stoat::Result<()> {
    use stoat::codec::Codec;
    let key = SessionWindowed { key: "ann".to_string(), window: stoat::Window { start: 1_000, end: 4_000 } };
    assert_eq!(key.to_string(), "[ann@1000/4000]");
    let codec = SessionWindowedCodec::new(Utf8);
    let bytes = codec.encode(&key).map_err(|e| stoat::Error::Runtime(e.to_string()))?.unwrap_or_default();
    // SessionWindowedSerializer: the key's bytes, then end and start as 8 big-endian bytes each.
    assert_eq!(bytes, [b"ann".as_slice(), &4_000i64.to_be_bytes(), &1_000i64.to_be_bytes()].concat());
    assert_eq!(codec.decode(Some(&bytes)).map_err(|e| stoat::Error::Runtime(e.to_string()))?, key);
    Ok(())
}

#[test]
fn a_failing_timestamp_extractor_makes_its_record_undecodable_under_the_error_policy() -> stoat::Result<()> {
    const EVENTS: Topic<String, Event> = Topic::json("events");
    let topology = || {
        let topology = Topology::new("bad-extractor");
        topology
            .source_with_timestamps(
                &EVENTS,
                |_, e, _| if e.at == 13 { panic!("no time in event 13") } else { e.at },
            )
            .group_by_key()
            .count("counts")
            .to("out");
        topology
    };
    // Skipped and counted: the other records go on.
    let driver = TestDriver::with_config(&topology(), Config::default().error_policy(ErrorPolicy::Skip))?;
    let events = driver.input_topic(&EVENTS);
    for at in [10, 13, -5, 20] {
        events.pipe("a".into(), Event { at })?;
    }
    assert_eq!(driver.output::<String, u64>("out").read_values()?, vec![1, 2]);
    assert_eq!(driver.stats().skipped_decode, 2, "the panic and the negative time");
    // By default the app stops, naming the record and the extractor.
    let driver = TestDriver::new(&topology())?;
    let err = driver.input_topic(&EVENTS).pipe("a".into(), Event { at: 13 }).err().map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(
        err.contains("timestamp") && err.contains("extractor") && err.contains("no time in event 13"),
        "{err}"
    );
    Ok(())
}

#[test]
fn sliding_windows_follow_kafka_streams_worked_by_hand() -> stoat::Result<()> {
    // 10 s windows, 2 s grace; both ends of a sliding window are inclusive (end = start + 10 s).
    let topology = Topology::new("sliding-hand");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(2),
        ))
        .count("sliding")
        .map(|w, n| (format!("{}@{}/{}", w.key, w.window.start, w.window.end), n))
        .to("out");
    let input = [
        ("b", 3_000),  // early (before 10 s): the shared window [0, 10 000]
        ("b", 1_000),  // early, before b's first: [0, 10 000] again, and its right window
        ("a", 20_000), // its left window [10 000, 20 000]
        ("a", 25_000), // a right window for 20 000, and its own left window with both
        ("a", 22_000), // out of order: updates two windows; its left window [12 000, 22 000]
                       // ended before stream time 25 000 - grace 2 000: dropped; a new right
                       // window [22 001, 32 001] takes the record at 25 000
    ];
    let mut want: BTreeMap<String, Vec<(u64, i64)>> = BTreeMap::new();
    for (window, n, ts) in [
        ("b@0/10000", 1, 3_000),
        ("b@1001/11001", 1, 3_000),
        ("b@0/10000", 2, 3_000),
        ("a@10000/20000", 1, 20_000),
        ("a@20001/30001", 1, 25_000),
        ("a@15000/25000", 2, 25_000),
        ("a@15000/25000", 3, 25_000),
        ("a@20001/30001", 2, 25_000),
        ("a@22001/32001", 1, 25_000),
    ] {
        want.entry(window.to_string()).or_default().push((n, ts));
    }
    for lanes in LANES {
        let driver = TestDriver::with_config(&topology, Config::default().lanes(lanes))?;
        let clicks = driver.input::<String, u64>("clicks");
        for (user, ts) in input {
            clicks.enqueue_at(&user.to_string(), &1, ts)?;
        }
        let stats = driver.run()?;
        let mut got: BTreeMap<String, Vec<(u64, i64)>> = BTreeMap::new();
        for r in driver.output::<String, u64>("out").read_records()? {
            got.entry(r.key).or_default().push((r.value, r.timestamp));
        }
        assert_eq!(got, want, "{lanes} lanes");
        assert_eq!(stats.dropped_late, 1, "{lanes} lanes");
    }
    Ok(())
}

/// The last count per (user, window start).
type LastCounts = BTreeMap<(String, i64), u64>;

/// A tumbling count (10 s, no grace) over `records` of two partitions (partition, user, ts):
/// the last counts, and how many records came too late.
fn two_partition_counts(config: Config, records: &[(u32, &str, i64)]) -> stoat::Result<(LastCounts, u64)> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("watermarks");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(size))
        .count("counts")
        .to_with("out", TimeWindowed::new(Utf8, size), Binary::default());
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    log.create_topic("clicks", 2);
    let mut last = LastCounts::new();
    for (partition, user, ts) in records {
        log.produce_to(
            "clicks",
            *partition,
            Some(user.as_bytes().to_vec()),
            Some(1u64.to_be_bytes().to_vec()),
            *ts,
        )?;
    }
    // Dispatched in timestamp order across the partitions: 10 000, 21 000, 25 000, 12 000 (partition
    // 1 keeps its own order), 27 000.
    let stats = app.run_until_idle()?;
    let codec = TimeWindowed::new(Utf8, size);
    for (_, r) in log.read_all("out") {
        use stoat::codec::Codec;
        let key: Windowed<String> =
            codec.decode(r.key.as_deref()).map_err(|e| stoat::Error::Runtime(e.to_string()))?;
        let n = u64::from_be_bytes(r.value.as_deref().unwrap_or_default().try_into().unwrap_or_default());
        last.insert((key.key, key.window.start), n);
    }
    Ok((last, stats.dropped_late))
}

#[test]
fn watermarks_bound_out_of_orderness_and_wait_for_the_slowest_partition() -> stoat::Result<()> {
    // Partition 0 runs ahead; partition 1 is behind, by less than 5 s.
    let records = [(0, "a", 10_000), (0, "a", 25_000), (1, "b", 21_000), (1, "a", 12_000), (0, "a", 27_000)];
    // Stream time (the largest timestamp) is 25 000 when 12 000 comes: [10 s, 20 s) has closed.
    let (counts, late) = two_partition_counts(Config::default().lanes(2), &records)?;
    assert_eq!(counts.get(&("a".to_string(), 10_000)), Some(&1));
    assert_eq!(late, 1);
    // A watermark (the slower partition, at 21 000, minus 5 s) is 16 000 then: still open.
    let config = Config::default().lanes(2).watermarks(Duration::from_secs(5), Duration::from_secs(60));
    let (counts, late) = two_partition_counts(config, &records)?;
    assert_eq!(counts.get(&("a".to_string(), 10_000)), Some(&2));
    assert_eq!(late, 0);
    Ok(())
}

#[test]
fn an_idle_partition_stops_holding_the_watermark_back() -> stoat::Result<()> {
    let clock = stoat::clock::Clock::manual(1_000_000);
    let config =
        Config::default().lanes(2).watermarks(Duration::ZERO, Duration::from_secs(30)).clock(clock.clone());
    let size = Duration::from_secs(10);
    let topology = Topology::new("idle-partitions");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(size))
        .emit_on_window_close()
        .count("final")
        .to_with("out", TimeWindowed::new(Utf8, size), Binary::default());
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    log.create_topic("clicks", 2);
    let click = |partition: u32, ts: i64| {
        log.produce_to("clicks", partition, Some(b"a".to_vec()), Some(1u64.to_be_bytes().to_vec()), ts)
    };
    click(1, 5_000)?; // partition 1 speaks once, then goes quiet
    click(0, 8_000)?;
    click(0, 50_000)?;
    app.run_until_idle()?;
    assert!(log.read_all("out").is_empty(), "partition 1 (at 5 000) holds the watermark back");
    clock.advance(Duration::from_secs(31));
    click(0, 51_000)?;
    app.run_until_idle()?;
    assert_eq!(log.read_all("out").len(), 1, "idle now: partition 0 alone closes [0, 10 s)");
    Ok(())
}

#[test]
fn the_driver_advances_stream_time_to_close_windows() -> stoat::Result<()> {
    let size = Duration::from_secs(10);
    let topology = Topology::new("advance-windows");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(size, Duration::from_secs(5)))
        .emit_on_window_close()
        .count("final")
        .map(|w, n| (format!("{}@{}", w.key, w.window.start), n))
        .to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(2))?;
    driver.input::<String, u64>("clicks").enqueue_at(&"a".into(), &1, 3_000)?;
    driver.run()?;
    let out = driver.output::<String, u64>("out");
    driver.advance_stream_time(14_999)?;
    assert!(out.read_values()?.is_empty(), "[0, 10 s) with 5 s grace closes at 15 000");
    driver.advance_stream_time(15_000)?;
    assert_eq!(out.read_key_values()?, vec![("a@0".to_string(), 1)]);
    Ok(())
}

/// Final counts of 10 s windows (no grace) with at most `bound` windows waiting to close, over
/// clicks of `users` at `ts`; returns the outputs (user@start, count) or the run's error.
fn bounded(bound: usize, when_full: BufferFull, clicks: &[(&str, i64)]) -> stoat::Result<Vec<(String, u64)>> {
    let topology = Topology::new("bounded");
    topology
        .stream::<String, u64>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(10)))
        .emit_on_window_close_bounded(bound, when_full)
        .count("final")
        .map(|w, n| (format!("{}@{}", w.key, w.window.start), n))
        .to("out");
    let driver = TestDriver::with_config(&topology, Config::default().lanes(1))?;
    let input = driver.input::<String, u64>("clicks");
    for (user, ts) in clicks {
        input.enqueue_at(&user.to_string(), &1, *ts)?;
    }
    driver.run()?;
    driver.output::<String, u64>("out").read_key_values()
}

#[test]
fn a_bounded_emit_on_close_buffer_stops_or_emits_early_when_full() -> stoat::Result<()> {
    let clicks = [("a", 1_000), ("b", 2_000), ("a", 3_000), ("c", 4_000), ("c", 5_000), ("d", 25_000)];
    // Unbounded enough: every window once, when [0, 10 s) closes (stream time 25 000).
    let all = bounded(10, BufferFull::StopApp, &clicks)?;
    assert_eq!(all.len(), 3, "{all:?}");
    // Three windows wait at once (a, b, c) with room for two.
    let err = bounded(2, BufferFull::StopApp, &clicks).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("store `final` holds 2 windows waiting to close") && err.contains("EmitEarly"),
        "{err}"
    );
    // Emitting early: when c's window opens, a's (first to close, then by key) goes early with
    // its count so far; c's second click fits.
    let early = bounded(2, BufferFull::EmitEarly, &clicks)?;
    assert_eq!(early, vec![("a@0".to_string(), 2), ("b@0".to_string(), 1), ("c@0".to_string(), 2)]);
    Ok(())
}

#[test]
fn sliding_and_session_windows_waiting_at_a_stop_are_emitted_once_after_a_restart() -> stoat::Result<()> {
    let topology = Topology::new("final-restart-2");
    let clicks = topology.stream::<String, u64>("clicks");
    clicks
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_with_no_grace(Duration::from_secs(10)))
        .emit_on_window_close()
        .count("sliding")
        .map(|w, n| (format!("{}@{}/{}", w.key, w.window.start, w.window.end), Some(n)))
        .to("out");
    clicks
        .group_by_key()
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_secs(5)))
        .emit_on_window_close()
        .count("sessions")
        .map(|w, n| (format!("{}#{}/{}", w.key, w.window.start, w.window.end), n))
        .to("out");
    let log = Arc::new(stoat::log::EmbeddedLog::new(1));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let config = |lanes| Config::default().lanes(lanes).state_dir(dir.path());
    {
        let mut app = App::embedded_on(&topology, config(3), log.clone())?;
        click(&log, "a", 100_000);
        click(&log, "a", 103_000);
        app.run_until_idle()?;
    }
    let read = || -> Vec<String> {
        let mut out: Vec<String> = log
            .read_all("out")
            .iter()
            .map(|(_, r)| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
            .collect();
        out.sort();
        out
    };
    // Stream time 103 000: only [90 000, 100 000] (the first click's left window) has closed.
    assert_eq!(read(), vec!["a@90000/100000"]);
    {
        let mut app = App::embedded_on(&topology, config(5), log.clone())?;
        app.advance_event_time(200_000)?;
        app.advance_event_time(300_000)?;
    }
    {
        let mut app = App::embedded_on(&topology, config(2), log.clone())?;
        app.advance_event_time(400_000)?;
    }
    assert_eq!(read(), vec!["a#100000/103000", "a@100001/110001", "a@90000/100000", "a@93000/103000"]);
    Ok(())
}
