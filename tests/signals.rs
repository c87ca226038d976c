//! Signals on a real process: the first SIGTERM asks the app to commit its open epoch and stop;
//! a second one exits at once (status 130) even while an operator is stuck. The test runs this
//! same test binary as the child process (`STOAT_SIGNAL_CHILD`), so the child is a real process
//! with its own signal handlers.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stoat::prelude::*;

const CHILD: &str = "STOAT_SIGNAL_CHILD";

#[stoat::operator]
fn stuck(n: u64) -> u64 {
    // Never returns for this record: the open epoch cannot finish.
    if n == 3 {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    n
}

/// The child: an app whose operator sticks, stopped by signals.
#[test]
fn child_app_with_a_stuck_operator() -> stoat::Result<()> {
    if std::env::var_os(CHILD).is_none() {
        return Ok(());
    }
    let topology = Topology::new("signals");
    topology.stream::<(), u64>("in").process(stuck {}).to("out");
    let mut app = App::embedded(&topology, Config::default().lanes(1))?;
    let log = app.embedded_log().cloned().ok_or_else(|| stoat::Error::Runtime("no embedded log".into()))?;
    for n in 0..10u64 {
        log.send(&Topic::<(), u64>::new("in"), &(), &n).map_err(|e| stoat::Error::Runtime(e.to_string()))?;
    }
    let stop = app.shutdown_on_signals()?;
    println!("\nchild-ready");
    app.run_until_stopped(&stop)?;
    Ok(())
}

#[test]
fn a_second_signal_exits_at_once_while_the_first_waits_for_the_epoch() {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "child_app_with_a_stuck_operator", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("its stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.contains("child-ready")));
    assert!(ready, "the child did not start");
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        let status = Command::new("kill").arg(signal).arg(&pid).status().expect("kill");
        assert!(status.success());
    };
    kill("-TERM");
    // The first signal waits for the stuck epoch (up to `shutdown_timeout`, 30 s): still running.
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().expect("wait").is_none(), "the first signal must wait for the open epoch");
    kill("-TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "a second signal did not exit at once");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{status}");
}
