//! The stoat side of the Kafka benchmark: runs one workload until SIGTERM.
//!
//! ```text
//! bench_app stateless|wordcount|join|windowed|enrich|enrich-sim BOOTSTRAP INPUT OUTPUT APP_ID eos|alo COMMIT_MS STATE_DIR LANES
//! bench_app serve PORT
//! ```
//!
//! `enrich` calls the service at `STOAT_BENCH_REMOTE` (a base URL); `serve` is that service.
//! `STOAT_BENCH_CONCURRENCY` sets the calls in flight per lane (default 256).
//!
//! `COMMIT_MS` is the longest epoch (stoat's adaptive default cadence); `fixed:COMMIT_MS` makes
//! every epoch last that long, as Kafka Streams' `commit.interval.ms` does.
//!
//! One module per workload, mirroring one class per workload on the Kafka Streams side
//! (`benches/kafka-streams`).

mod enrich;
mod join;
mod stateless;
mod windowed;
mod wordcount;

use std::process::ExitCode;
use std::time::Duration;

use stoat::prelude::*;

fn run(args: &[String]) -> stoat::Result<()> {
    if let [serve, port] = args {
        if serve == "serve" {
            let port = port.parse().map_err(|_| stoat::Error::Config(format!("bad PORT `{port}`")))?;
            return enrich::serve(port)
                .map_err(|cause| stoat::Error::Io { what: "the enrichment service stopped".into(), cause });
        }
    }
    let [workload, bootstrap, input, output, app_id, guarantee, commit_ms, state_dir, lanes] = args else {
        return Err(stoat::Error::Config(
            "usage: bench_app stateless|wordcount|join|windowed|enrich|enrich-sim BOOTSTRAP INPUT OUTPUT APP_ID eos|alo COMMIT_MS STATE_DIR LANES".into(),
        ));
    };
    let topology = match workload.as_str() {
        "stateless" => stateless::topology(app_id, input, output),
        "wordcount" => wordcount::topology(app_id, input, output),
        "join" => join::topology(app_id, input, output),
        "windowed" => windowed::topology(app_id, input, output),
        "enrich" | "enrich-sim" => {
            let remote = match workload.as_str() {
                "enrich" => Some(std::env::var("STOAT_BENCH_REMOTE").map_err(|_| {
                    stoat::Error::Config("`enrich` needs STOAT_BENCH_REMOTE, the service's base URL".into())
                })?),
                _ => None,
            };
            let concurrency =
                std::env::var("STOAT_BENCH_CONCURRENCY").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
            enrich::topology(app_id, input, output, remote, concurrency)
        }
        other => return Err(stoat::Error::Config(format!("unknown workload `{other}`"))),
    };
    let guarantee = match guarantee.as_str() {
        "eos" => Guarantee::ExactlyOnce,
        "alo" => Guarantee::AtLeastOnce,
        other => return Err(stoat::Error::Config(format!("unknown guarantee `{other}` (eos or alo)"))),
    };
    let (fixed, ms) = match commit_ms.strip_prefix("fixed:") {
        Some(ms) => (true, ms),
        None => (false, commit_ms.as_str()),
    };
    let interval = Duration::from_millis(
        ms.parse().map_err(|_| stoat::Error::Config(format!("bad COMMIT_MS `{commit_ms}`")))?,
    );
    let lanes: usize = lanes.parse().map_err(|_| stoat::Error::Config(format!("bad LANES `{lanes}`")))?;
    let config = Config::default().lanes(lanes).state_dir(state_dir);
    let config =
        if fixed { config.fixed_commit_interval(interval) } else { config.commit_interval(interval) };
    let mut app = App::kafka(&topology, config, KafkaConfig::new(bootstrap.as_str()).guarantee(guarantee))?;
    let shutdown = app.shutdown_on_signals()?;
    let stats = app.run_until_stopped(&shutdown)?;
    // Read by the harness (benches/harness/stoatbench/systems.py).
    eprintln!(
        "stoat-bench: commits={} commit_ms_mean={:.3} commit_ms_max={:.3}",
        stats.epochs,
        stats.commit_time_mean().as_secs_f64() * 1e3,
        stats.commit_time_max.as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> ExitCode {
    stoat::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_app: {e}");
            ExitCode::FAILURE
        }
    }
}
