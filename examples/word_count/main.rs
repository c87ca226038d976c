//! Word count, stoat's main example.
//!
//! ```text
//! word_count [FILE] [--state-dir DIR] [--lanes N]
//! word_count --bootstrap HOST:PORT --input TOPIC --output TOPIC [--app-id ID] [--state-dir DIR]
//!            [--lanes N] [--exit-when-idle SECS] [--at-least-once] [--http ADDR]
//! ```
//!
//! Embedded (the default): reads FILE (or stdin), one record per line; splits lines into
//! lowercase words, re-keys by word through the lanes, counts per word in an LMDB-backed store,
//! and prints `word<TAB>count` lines sorted by word. With `--state-dir` the counts persist.
//!
//! On Kafka (`--bootstrap`): reads lines from the input topic and writes each word's running
//! count (key: the word, value: the count as decimal text) to the output topic, exactly-once,
//! until SIGTERM/SIGINT or, with `--exit-when-idle`, until it has been idle that long.

mod app;

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use stoat::Config;
#[cfg(feature = "kafka")]
use stoat::{Guarantee, KafkaConfig};

const USAGE: &str = "usage: word_count [FILE] [--state-dir DIR] [--lanes N]
       word_count --bootstrap HOST:PORT --input TOPIC --output TOPIC [--app-id ID] [--state-dir DIR]
                  [--lanes N] [--exit-when-idle SECS] [--at-least-once] [--http ADDR]";

#[derive(Default)]
struct Args {
    file: Option<PathBuf>,
    config: Config,
    bootstrap: Option<String>,
    input: Option<String>,
    output: Option<String>,
    app_id: Option<String>,
    idle: Option<Duration>,
    at_least_once: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args_os().skip(1);
    let mut args = Args::default();
    let value = |raw: &mut std::iter::Skip<std::env::ArgsOs>, flag: &str| {
        raw.next().and_then(|v| v.into_string().ok()).ok_or(format!("{flag} needs a value"))
    };
    while let Some(arg) = raw.next() {
        match arg.to_str() {
            Some("--state-dir") => args.config = args.config.state_dir(value(&mut raw, "--state-dir")?),
            Some("--lanes") => {
                let n = value(&mut raw, "--lanes")?;
                args.config =
                    args.config.lanes(n.parse().map_err(|_| format!("--lanes: `{n}` is not a number"))?);
            }
            Some("--bootstrap") => args.bootstrap = Some(value(&mut raw, "--bootstrap")?),
            Some("--input") => args.input = Some(value(&mut raw, "--input")?),
            Some("--output") => args.output = Some(value(&mut raw, "--output")?),
            Some("--app-id") => args.app_id = Some(value(&mut raw, "--app-id")?),
            Some("--exit-when-idle") => {
                let s = value(&mut raw, "--exit-when-idle")?;
                let secs: f64 =
                    s.parse().map_err(|_| format!("--exit-when-idle: `{s}` is not a number of seconds"))?;
                args.idle = Some(Duration::from_secs_f64(secs.max(0.0)));
            }
            Some("--at-least-once") => args.at_least_once = true,
            Some("--http") => {
                let addr = value(&mut raw, "--http")?;
                let addr = addr
                    .parse()
                    .map_err(|_| format!("--http: `{addr}` is not an address such as 127.0.0.1:8080"))?;
                args.config = args.config.http(addr);
            }
            Some("-h" | "--help") => return Err(String::new()),
            Some(flag) if flag.starts_with("--") => return Err(format!("unknown option `{flag}`")),
            _ if args.file.is_none() => args.file = Some(PathBuf::from(arg)),
            _ => return Err("more than one input file given".into()),
        }
    }
    if args.bootstrap.is_some() && (args.input.is_none() || args.output.is_none()) {
        return Err("--bootstrap needs --input and --output".into());
    }
    if args.bootstrap.is_none() && (args.input.is_some() || args.output.is_some() || args.idle.is_some()) {
        return Err("--input, --output and --exit-when-idle need --bootstrap".into());
    }
    Ok(args)
}

#[cfg(feature = "kafka")]
fn run_kafka(args: Args, bootstrap: String) -> ExitCode {
    let (input, output) = (args.input.unwrap_or_default(), args.output.unwrap_or_default());
    let app_id = args.app_id.unwrap_or_else(|| "word-count".into());
    let topology = app::topology_for(&app_id, &input, &output);
    let guarantee = if args.at_least_once { Guarantee::AtLeastOnce } else { Guarantee::ExactlyOnce };
    let kafka = KafkaConfig::new(bootstrap).guarantee(guarantee);
    match app::run_on_kafka(&topology, args.config, kafka, args.idle) {
        Ok(stats) => {
            tracing::info!(?stats, "word count stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("word_count: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "kafka"))]
fn run_kafka(_: Args, _: String) -> ExitCode {
    eprintln!("word_count: built without the `kafka` cargo feature; rebuild with it to run on Kafka");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    stoat::logging::init();
    let mut args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("word_count: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(bootstrap) = args.bootstrap.take() {
        return run_kafka(args, bootstrap);
    }
    let config = std::mem::take(&mut args.config);
    let counts = match &args.file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => app::run(BufReader::new(f), config),
            Err(e) => {
                eprintln!("word_count: cannot open {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => app::run(std::io::stdin().lock(), config),
    };
    let counts = match counts {
        Ok(counts) => counts,
        Err(e) => {
            eprintln!("word_count: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (word, n) in counts {
        if writeln!(out, "{word}\t{n}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
