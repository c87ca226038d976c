//! The HTTP endpoints on a running app (embedded log): probes, a Prometheus scrape read with a
//! Prometheus text parser, stores queried while the app processes, pause and resume, offsets,
//! and a bad address refused at start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoat::log::EmbeddedLog;
use stoat::prelude::*;
use support::http::{get, get_json, post};

mod support;

const WORDS: Topic<String, u64> = Topic::new("words");

#[stoat::state]
struct Totals {
    per_word: Table<String, u64>,
}

#[stoat::operator]
fn total(#[key] word: &String, n: u64, totals: &mut Totals) -> Result<u64, StoreError> {
    let sum = totals.per_word.get(word)?.unwrap_or(0) + n;
    totals.per_word.put(word.clone(), sum)?;
    Ok(sum)
}

fn topology(app: &str) -> Topology {
    let topology = Topology::new(app);
    let words = topology.source(&WORDS);
    words.process(total {}).to("totals");
    words.group_by_key().count("counts").to("counts-out");
    topology
}

fn send(log: &EmbeddedLog, words: &[&str]) {
    for w in words {
        log.send(&WORDS, &w.to_string(), &1).expect("encodes");
    }
}

/// Waits until `done` holds (or fails the test after 20 s).
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lag(addr: SocketAddr) -> u64 {
    let (_, offsets) = get_json(addr, "/offsets");
    offsets["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["lag"].as_u64().unwrap_or(u64::MAX))
        .sum()
}

#[test]
fn a_running_app_serves_probes_metrics_stores_offsets_and_pauses() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(2));
    send(&log, &["apple", "pear", "apple", "fig", "apple"]);
    let config = Config::default().lanes(2).http("127.0.0.1:0".parse().expect("an address"));
    let mut app = App::embedded_on(&topology("http-app"), config, Arc::clone(&log))?;
    let addr = app.http_addr().expect("listening");
    // Not processing yet: alive, not ready.
    assert_eq!(get(addr, "/health/live").0, 200);
    let (status, ready) = get_json(addr, "/health/ready");
    assert_eq!((status, ready["phase"].as_str()), (503, Some("starting")));

    let handle = app.handle();
    let runner = std::thread::spawn(move || {
        let shutdown = app.handle().shutdown().clone();
        app.run_until_stopped(&shutdown)
    });
    until("ready", || get(addr, "/health/ready").0 == 200);
    until("the first words committed", || handle.stats().epochs > 0 && lag(addr) == 0);

    // A store of a state struct and a DSL store, by key and by scan, while the app runs.
    let (status, apple) = get_json(addr, "/stores/per_word/keys/apple");
    assert_eq!(status, 200, "{apple}");
    assert_eq!(apple["value"], 3);
    assert_eq!(get_json(addr, "/stores/per_word/keys/%22fig%22").1["value"], 1, "a key given as JSON");
    assert_eq!(get(addr, "/stores/per_word/keys/kiwi").0, 404);
    let (status, missing) = get_json(addr, "/stores/nope/keys/x");
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().is_some_and(|e| e.contains("per_word")), "names the stores: {missing}");
    let (_, scan) = get_json(addr, "/stores/per_word?prefix=ap&limit=10");
    assert_eq!(scan["entries"], serde_json::json!([{ "key": "apple", "value": 3 }]));
    let (_, all) = get_json(addr, "/stores/per_word?limit=2");
    assert_eq!(all["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(all["more"], true);
    let (_, range) = get_json(addr, "/stores/per_word?from=b&to=g");
    assert_eq!(range["entries"], serde_json::json!([{ "key": "fig", "value": 1 }]));
    let (status, counts) = get_json(addr, "/stores/counts/keys/pear");
    assert_eq!(status, 200, "{counts}");
    // A DSL store keeps each value with the timestamp of the update that set it.
    assert_eq!(counts["value"]["value"], 1, "{counts}");
    assert!(counts["value"]["timestamp"].as_i64().is_some_and(|t| t > 0), "{counts}");
    // The same reads, typed, in process.
    assert_eq!(handle.store::<String, u64>("per_word")?.get(&"apple".to_string())?, Some(3));
    let counts = handle.store::<String, u64>("counts")?;
    let (pear, stamp) = counts.get_with_timestamp(&"pear".to_string())?.expect("pear is counted");
    assert_eq!(pear, 1);
    assert!(stamp.is_some_and(|t| t > 0), "a DSL store keeps the update's timestamp");
    assert_eq!(counts.all(10)?.len(), 3);
    let wrong = handle.store::<String, String>("counts").expect_err("counts are u64s").to_string();
    assert!(wrong.contains("`counts`") && wrong.contains("u64"), "{wrong}");
    let (_, stores) = get_json(addr, "/stores");
    assert!(stores["stores"].as_array().is_some_and(|s| s.len() >= 2), "{stores}");

    // Paused: new input waits (lag), nothing more is read; resumed: it is processed.
    assert_eq!(post(addr, "/pause").0, 200);
    std::thread::sleep(Duration::from_millis(300));
    let read_before = handle.stats().records_in;
    send(&log, &["pear", "pear"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(handle.stats().records_in, read_before, "input was read while paused");
    assert_eq!(lag(addr), 2);
    assert_eq!(get_json(addr, "/offsets").1["paused"], true);
    assert_eq!(get(addr, "/health/live").0, 200, "a paused app is alive");
    assert_eq!(post(addr, "/resume").0, 200);
    until("the paused words processed", || lag(addr) == 0);
    assert_eq!(get_json(addr, "/stores/per_word/keys/pear").1["value"], 3);

    // The scrape, through a Prometheus text parser.
    let (status, text) = get(addr, "/metrics");
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e}):\n{text}"));
    let value = |name: &str, label: Option<(&str, &str)>| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => Some(v),
                prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
    };
    assert!(value("stoat_records_in_total", Some(("topic", "words"))).is_some_and(|v| v >= 7.0), "{text}");
    assert!(value("stoat_records_out_total", Some(("topic", "totals"))).is_some_and(|v| v >= 7.0), "{text}");
    assert_eq!(value("stoat_store_entries", Some(("store", "per_word"))), Some(3.0), "{text}");
    assert_eq!(value("stoat_consumer_lag", Some(("topic", "words"))), Some(0.0), "{text}");
    assert_eq!(value("stoat_phase", Some(("phase", "running"))), Some(1.0), "{text}");
    assert!(
        scrape.samples.iter().any(|s| s.metric.starts_with("stoat_commit_seconds")),
        "a commit histogram: {text}"
    );
    assert!(scrape.samples.iter().any(|s| s.metric.starts_with("stoat_end_to_end_seconds")), "{text}");
    assert!(value("stoat_epochs_total", None).is_some_and(|v| v >= 2.0), "{text}");
    let per_group: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "stoat_lane_group_records_total")
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => Some(v),
            _ => None,
        })
        .sum();
    assert!(per_group >= 7.0, "records per lane group: {text}");
    assert!(scrape.samples.iter().any(|s| s.metric.starts_with("stoat_process_seconds")), "{text}");

    handle.stop();
    let stats = runner.join().expect("the app thread")?;
    assert!(stats.records_in >= 7);
    assert_eq!(handle.status().phase(), stoat::status::Phase::Stopped);
    Ok(())
}

#[test]
fn an_address_in_use_is_refused_at_start_naming_it() -> stoat::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|cause| stoat::Error::Io { what: "bind".into(), cause })?;
    let addr = taken.local_addr().map_err(|cause| stoat::Error::Io { what: "addr".into(), cause })?;
    let err =
        App::embedded(&topology("http-taken"), Config::default().http(addr)).expect_err("the port is taken");
    let text = err.to_string();
    assert!(text.contains(&addr.to_string()) && text.contains("Config::http"), "{text}");
    Ok(())
}

#[test]
fn a_failed_app_is_not_live() -> stoat::Result<()> {
    let log = Arc::new(EmbeddedLog::new(1));
    // A value that does not decode as a u64 stops the app under the default policy.
    log.send(&Topic::<String, String>::new("words"), &"x".to_string(), &"not a number".to_string())
        .expect("encodes");
    let config = Config::default().http("127.0.0.1:0".parse().expect("an address"));
    let mut app = App::embedded_on(&topology("http-failed"), config, Arc::clone(&log))?;
    let addr = app.http_addr().expect("listening");
    assert!(app.run_until_idle().is_err());
    let (status, live) = get_json(addr, "/health/live");
    assert_eq!(status, 503);
    assert_eq!(live["status"], "failed");
    assert!(live["error"].as_str().is_some_and(|e| e.contains("words")), "names the record's topic: {live}");
    assert_eq!(get(addr, "/health/ready").0, 503);
    Ok(())
}

#[test]
fn the_topology_is_served_as_text_and_as_a_picture() -> stoat::Result<()> {
    let config = Config::default().http("127.0.0.1:0".parse().expect("an address"));
    let app = App::embedded(&topology("http-topology"), config)?;
    let addr = app.http_addr().expect("listening");
    let (status, text) = get(addr, "/topology.txt");
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first().copied(), Some("[0] source topic `words`"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("[1] operator `total`") && l.ends_with("<- [0]")), "{text}");
    assert!(lines.iter().any(|l| l.contains("sink topic `totals`")), "{text}");
    assert!(lines.iter().any(|l| l.contains("`count` into store `counts` <- [0]")), "{text}");
    assert!(lines.iter().any(|l| l.contains("sink topic `counts-out`")), "{text}");
    let (status, svg) = get(addr, "/topology.svg");
    assert_eq!(status, 200);
    assert_eq!(svg.matches("<rect").count(), lines.len(), "a box per node: {svg}");
    let (status, page) = get(addr, "/topology");
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && page.contains("per_word"), "{page}");
    rendered_in_a_browser(addr);

    // A re-keying step is drawn as one.
    let rekeying = Topology::new("http-rekey");
    rekeying.stream::<String, u64>("words").map(|word, n| (n, word)).to("by-count");
    let text = rekeying.build()?.description().text();
    assert!(text.contains("[1] operator `map` <- [0] (re-keyed in memory)"), "{text}");
    Ok(())
}

/// Loads `/topology` in headless Chromium and checks the picture is drawn: the operators' box
/// colour is on the screenshot. CI installs Chromium; elsewhere the check is skipped when it is
/// missing (and says so).
fn rendered_in_a_browser(addr: SocketAddr) {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(std::env::var_os("CI").is_none(), "CI must install Chromium for the topology page test");
        eprintln!("Chromium not installed: the topology page was not checked in a browser");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let shot = dir.path().join("topology.png");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("http://{addr}/topology"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run Chromium");
    assert!(status.success(), "Chromium failed: {status}");
    let decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("the screenshot")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let channels = info.color_type.samples();
    // The operator boxes' fill, #dbe7f5, with a little room for colour management.
    let near = |p: &[u8]| {
        p.len() >= 3 && p[0].abs_diff(0xdb) <= 4 && p[1].abs_diff(0xe7) <= 4 && p[2].abs_diff(0xf5) <= 4
    };
    let drawn = pixels[..info.buffer_size()].chunks(channels).filter(|p| near(p)).count();
    assert!(drawn > 1_000, "the operator boxes are not on the screenshot ({drawn} pixels of their colour)");
}
