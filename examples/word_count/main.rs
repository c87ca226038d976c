//! Word count, stoat's main example.
//!
//! ```text
//! cargo run --release --example word_count -- [FILE] [--state-dir DIR] [--lanes N]
//! ```
//!
//! Reads FILE (or stdin), one record per line; splits lines into lowercase words, re-keys by word
//! through the lanes, counts per word in an LMDB-backed store, and prints `word<TAB>count` lines
//! sorted by word. With `--state-dir` the counts persist: a second run adds to the first.

mod app;

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use stoat::Config;

const USAGE: &str = "usage: word_count [FILE] [--state-dir DIR] [--lanes N]";

struct Args {
    file: Option<PathBuf>,
    config: Config,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let mut file = None;
    let mut config = Config::default();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--state-dir") => {
                let dir = args.next().ok_or("--state-dir needs a directory")?;
                config = config.state_dir(dir);
            }
            Some("--lanes") => {
                let n = args
                    .next()
                    .and_then(|n| n.to_str().map(str::to_owned))
                    .ok_or("--lanes needs a number")?;
                config = config.lanes(n.parse().map_err(|_| format!("--lanes: `{n}` is not a number"))?);
            }
            Some("-h" | "--help") => return Err(String::new()),
            Some(flag) if flag.starts_with("--") => return Err(format!("unknown option `{flag}`")),
            _ if file.is_none() => file = Some(PathBuf::from(arg)),
            _ => return Err("more than one input file given".into()),
        }
    }
    Ok(Args { file, config })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("word_count: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let counts = match &args.file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => app::run(BufReader::new(f), args.config),
            Err(e) => {
                eprintln!("word_count: cannot open {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => app::run(std::io::stdin().lock(), args.config),
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
