//! Scheduled sources: a record at each instant of a schedule on the wall clock (the test
//! driver's, advanced by hand), each instant exactly once, also across restarts, with instants
//! missed while the app was down emitted when it is back.

use std::sync::Arc;
use std::time::Duration;

use stoat::prelude::*;

/// The instants of `schedule`, in seconds (refusing any not on a whole second).
fn ticks(app: &str, schedule: Schedule) -> Topology {
    let topology = Topology::new(app);
    topology
        .schedule("every_minute", schedule)
        .map_values(|at| if at % 1_000 == 0 { at / 1_000 } else { -at })
        .to("ticks");
    topology
}

#[test]
fn an_interval_schedule_emits_each_instant_once_as_the_clock_passes_it() -> stoat::Result<()> {
    let topology = ticks("schedule-interval", Schedule::every(Duration::from_secs(60)));
    // The driver's clock starts 10 s into a minute.
    let clock = stoat::clock::Clock::manual(1_800_000_010_000);
    let driver = TestDriver::with_config(&topology, Config::default().lanes(3).clock(clock))?;
    let start = driver.wall_clock();
    let minute = |n: i64| ((start / 60_000) + n) * 60;
    driver.run()?; // the schedule starts now: nothing yet
    let out = driver.output::<String, i64>("ticks");
    assert!(out.read_values()?.is_empty());
    driver.advance_wall_clock(Duration::from_secs(60))?;
    assert_eq!(out.read_values()?, vec![minute(1)]);
    driver.advance_wall_clock(Duration::from_secs(150))?; // two more minutes pass
    let records = out.read_records()?;
    let got: Vec<(String, i64, i64)> = records.into_iter().map(|r| (r.key, r.value, r.timestamp)).collect();
    assert_eq!(
        got,
        vec![
            ("every_minute".to_string(), minute(2), minute(2) * 1_000),
            ("every_minute".to_string(), minute(3), minute(3) * 1_000)
        ]
    );
    driver.run()?;
    assert!(out.read_values()?.is_empty(), "nothing twice");
    Ok(())
}

#[test]
fn a_cron_schedule_follows_its_pattern_and_a_bad_pattern_is_refused() -> stoat::Result<()> {
    // Every 15 minutes.
    let topology = ticks("schedule-cron", Schedule::cron("*/15 * * * *")?);
    let driver = TestDriver::with_config(&topology, Config::default().lanes(2))?;
    driver.run()?;
    driver.advance_wall_clock(Duration::from_secs(3_600))?;
    let got = driver.output::<String, i64>("ticks").read_values()?;
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|s| s % 900 == 0), "on the quarter hours: {got:?}");
    let err = Schedule::cron("every tuesday").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`every tuesday` is not a cron pattern"), "{err}");
    Ok(())
}

#[test]
fn instants_are_not_emitted_twice_after_a_restart_and_missed_ones_come_after_it() -> stoat::Result<()> {
    let topology = ticks("schedule-restart", Schedule::every(Duration::from_secs(10)));
    let log = Arc::new(stoat::log::EmbeddedLog::new(1));
    let dir = tempfile::tempdir().map_err(|cause| stoat::Error::Io { what: "tempdir".into(), cause })?;
    let clock = stoat::clock::Clock::manual(1_000_000);
    let config = || Config::default().lanes(2).state_dir(dir.path()).clock(clock.clone());
    {
        let mut app = App::embedded_on(&topology, config(), log.clone())?;
        app.run_until_idle()?; // starts at 1 000 000
        clock.advance(Duration::from_secs(25));
        app.run_until_idle()?; // 1 010 000 and 1 020 000
    }
    clock.advance(Duration::from_secs(30)); // down for 30 s: 1 030 000 .. 1 050 000 missed
    {
        let mut app = App::embedded_on(&topology, config(), log.clone())?;
        app.run_until_idle()?;
        app.run_until_idle()?;
    }
    let got: Vec<i64> = log
        .read_all("ticks")
        .iter()
        .map(|(_, r)| {
            i64::from_be_bytes(r.value.as_deref().unwrap_or_default().try_into().unwrap_or_default())
        })
        .collect();
    assert_eq!(got, vec![1_010, 1_020, 1_030, 1_040, 1_050]);
    Ok(())
}

#[test]
fn a_topology_of_only_a_schedule_builds() {
    let topology = ticks("schedule-only", Schedule::every(Duration::from_secs(1)));
    assert!(topology.build().is_ok());
}
