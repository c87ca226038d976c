//! The runtime around the topology: graceful shutdown commits the open epoch, epochs end on
//! record count, memory stays bounded when lanes are slow, and topology mistakes are refused
//! before anything runs.

use std::time::Duration;

use stoat::prelude::*;

#[stoat::operator]
fn slow(n: u64) -> Vec<u64> {
    std::thread::sleep(Duration::from_micros(20));
    vec![n; 4]
}

#[test]
fn slow_lanes_bound_the_records_in_flight() -> stoat::Result<()> {
    let topology = Topology::new("slow");
    topology.stream::<(), u64>("in").process(slow {}).key_by(|_, n| *n).to("out");
    let config = Config::default().lanes(2).max_in_flight(512);
    let driver = TestDriver::with_config(&topology, config)?;
    driver.input::<(), u64>("in").pipe_values(0..20_000)?;
    let stats = driver.stats();
    assert_eq!(stats.records_out, 80_000);
    // The budget, one more input batch, and what the batch each lane is working on fans out to
    // (256 records x 4): far below the 80 000 records an unbounded pipeline would hold.
    assert!(stats.peak_in_flight <= 512 + 256 + 2 * 4 * 256, "peak {}", stats.peak_in_flight);
    assert!(stats.peak_in_flight >= 256);
    Ok(())
}

#[stoat::operator]
fn echo(n: u64) -> u64 {
    n
}

#[test]
fn epochs_end_on_the_record_count() -> stoat::Result<()> {
    let topology = Topology::new("epochs");
    topology.stream::<(), u64>("in").process(echo {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().commit_max_records(1_000))?;
    driver.input::<(), u64>("in").pipe_values(0..10_000)?;
    let stats = driver.stats();
    assert!(stats.epochs >= 10, "{stats:?}");
    assert_eq!(driver.output::<(), u64>("out").read_values()?.len(), 10_000);
    Ok(())
}

#[test]
fn commit_times_are_reported_per_epoch() -> stoat::Result<()> {
    let topology = Topology::new("commit-times");
    topology.stream::<(), u64>("in").process(echo {}).to("out");
    let driver = TestDriver::with_config(&topology, Config::default().commit_max_records(1_000))?;
    assert_eq!(driver.stats().commit_time_mean(), Duration::ZERO, "no epoch yet");
    driver.input::<(), u64>("in").pipe_values(0..5_000)?;
    let stats = driver.stats();
    assert!(stats.epochs >= 5, "{stats:?}");
    assert!(stats.commit_time_max > Duration::ZERO, "{stats:?}");
    assert!(stats.commit_time_max <= stats.commit_time_total, "{stats:?}");
    let mean = stats.commit_time_mean();
    assert!(mean > Duration::ZERO && mean <= stats.commit_time_max, "{stats:?}");
    Ok(())
}

#[test]
fn a_stop_request_commits_the_open_epoch() -> stoat::Result<()> {
    let topology = Topology::new("stop");
    topology.stream::<(), u64>("in").process(echo {}).to("out");
    let config = Config::default().lanes(2).fixed_commit_interval(Duration::from_secs(3600));
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    let input: Topic<(), u64> = Topic::new("in");
    for i in 0..500u64 {
        log.send(&input, &(), &i)?;
    }
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        trigger.trigger();
    });
    let stats = app.run_until_stopped(&shutdown)?;
    let _ = feeder.join();
    assert_eq!(stats.epochs, 1, "one long epoch, committed on stop");
    assert_eq!(log.read("out", 0, 0).len(), 500);
    Ok(())
}

#[test]
fn a_running_app_commits_as_soon_as_its_input_is_caught_up() -> stoat::Result<()> {
    // An hour is the longest an epoch may last, but the input is caught up at once: the epoch
    // ends then (adaptive cadence), and its outputs are committed long before any stop.
    let topology = Topology::new("caught-up");
    topology.stream::<(), u64>("in").process(echo {}).to("out");
    let config = Config::default().lanes(2).commit_interval(Duration::from_secs(3600));
    let mut app = App::embedded(&topology, config)?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    let input: Topic<(), u64> = Topic::new("in");
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let watcher = {
        let log = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut committed = Vec::new();
            for round in 0..3u64 {
                for i in 0..200u64 {
                    let _ = log.send(&input, &(), &(round * 1_000 + i));
                }
                // Each round's outputs become visible while the app keeps running (bounded
                // wait: a hang guard, not a timing assertion).
                let until = std::time::Instant::now() + Duration::from_secs(60);
                while log.read("out", 0, 0).len() < 200 * (round as usize + 1)
                    && std::time::Instant::now() < until
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                committed.push(log.read("out", 0, 0).len());
            }
            trigger.trigger();
            committed
        })
    };
    let stats = app.run_until_stopped(&shutdown)?;
    let committed = watcher.join().map_err(|_| stoat::Error::Runtime("watcher panicked".into()))?;
    assert_eq!(committed, vec![200, 400, 600], "each round committed before the stop");
    assert!(stats.epoch_triggers.caught_up >= 3, "{stats:?}");
    assert_eq!(stats.epoch_triggers.time, 0, "{stats:?}");
    Ok(())
}

#[test]
fn a_shortest_interval_longer_than_the_longest_is_refused() {
    let topology = Topology::new("bad-cadence");
    topology.stream::<(), u64>("in").process(echo {}).to("out");
    let config =
        Config::default().min_commit_interval(Duration::from_secs(2)).commit_interval(Duration::from_secs(1));
    let err = App::embedded(&topology, config).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`min_commit_interval` (2s)") && err.contains("`commit_interval` (1s)"), "{err}");
}

#[test]
fn topology_mistakes_are_refused() {
    let empty = Topology::new("empty");
    let err = empty.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("reads no topic"), "{err}");

    let twice = Topology::new("twice");
    twice.stream::<(), u64>("in").to("a");
    twice.stream::<(), u64>("in").to("b");
    let err = twice.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("read by two sources"), "{err}");

    let cycle = Topology::new("cycle");
    cycle.stream::<(), u64>("in").process(echo {}).to("in");
    let err = cycle.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("both read and written"), "{err}");
}

#[stoat::state]
struct Seen {
    per_key: Table<u64, u64>,
}

#[stoat::operator]
fn remember(#[key] key: &u64, n: u64, seen: &mut Seen) -> Result<u64, StoreError> {
    seen.per_key.put(*key, n)?;
    Ok(n)
}

/// Runs an app from async code on the test's runtime: a handle watches its committed state and
/// stops it once every record is in.
async fn run_inside_a_runtime() -> stoat::Result<()> {
    let topology = Topology::new("async-run");
    topology.stream::<u64, u64>("in").process(remember {}).to("out");
    let mut app = App::embedded(&topology, Config::default().lanes(2))?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no log".into()))?;
    let input: Topic<u64, u64> = Topic::new("in");
    for n in 0..500u64 {
        log.send(&input, &n, &n)?;
    }
    let handle = app.handle();
    let watcher = tokio::spawn(async move {
        // Committed state is readable while the app runs.
        while handle.read_state(|s: &Seen| s.per_key.get(&499))?.map_err(stoat::Error::from)? != Some(499) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.stop();
        Ok::<_, stoat::Error>(handle.stats())
    });
    let stats = app.run().await?;
    let seen = watcher.await.map_err(|e| stoat::Error::Runtime(e.to_string()))??;
    assert_eq!(stats.records_in, 500);
    assert!(seen.records_out >= 500, "{seen:?}");
    drop(app); // inside the runtime: must not panic
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn an_app_runs_inside_a_current_thread_runtime() -> stoat::Result<()> {
    run_inside_a_runtime().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_runs_inside_a_multi_thread_runtime() -> stoat::Result<()> {
    run_inside_a_runtime().await
}
