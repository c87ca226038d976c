//! Engine benchmark: the Kafka benchmark's two workloads through stoat's embedded runtime (no
//! broker) against plain single-threaded loops doing the same work: (b) word count (lanes,
//! re-keying, LMDB state, epochs) against a `HashMap<String, u64>`; (a) the stateless 1 KB
//! transform against a loop over the values. Prints throughputs and ratios.
//!
//! `cargo bench --bench engine [-- LINES] [wordcount|stateless]` (default 300 000 lines, and as
//! many 1 KB records; both workloads).

#[path = "../examples/word_count/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "stoat-app/stateless.rs"]
mod stateless;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stoat::prelude::*;

const RUNS: usize = 3;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn hand_written(lines: &[String]) -> HashMap<String, u64> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for line in lines {
        for w in line.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            *counts.entry(w.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

fn stoat_run(lines: &[String], lanes: usize) -> stoat::Result<(Duration, usize)> {
    stoat_run_on(lines, Config::default().lanes(lanes), 1)
}

/// Word count on an embedded log whose input topic has `partitions` partitions.
fn stoat_run_on(lines: &[String], config: Config, partitions: u32) -> stoat::Result<(Duration, usize)> {
    let mut app = App::embedded_on(
        &app::topology(),
        config,
        std::sync::Arc::new(stoat::log::EmbeddedLog::new(partitions)),
    )?;
    let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no embedded log".into()))?;
    for line in lines {
        log.produce(app::LINES.name(), None, Some(line.as_bytes().to_vec()), 0, Vec::new());
    }
    let start = Instant::now();
    app.run_until_idle()?;
    let elapsed = start.elapsed();
    let words = app.read_state(|c: &app::Counts| c.per_word.iter())??.len();
    Ok((elapsed, words))
}

fn main() -> stoat::Result<()> {
    let lines: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(300_000);
    // `cargo bench` passes `--bench`; any other word names a workload to run alone.
    let only: Vec<String> =
        std::env::args().skip(1).filter(|a| !a.starts_with('-') && a.parse::<usize>().is_err()).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
    if wanted("wordcount") {
        wordcount_bench(lines, cpus)?;
    }
    if wanted("stateless") {
        stateless_bench(lines, cpus)?;
    }
    if wanted("rekey-order") {
        rekey_order_bench(lines, cpus)?;
    }
    Ok(())
}

/// The cost of `RekeyOrder::InputPartition` on word count (unkeyed lines, re-keyed by word): the
/// lines of each input partition are split on one lane instead of on every lane.
fn rekey_order_bench(lines: usize, cpus: usize) -> stoat::Result<()> {
    let corpus = support::zipf_corpus(42, lines, 20_000);
    let words: u64 = support::oracle(&corpus).values().sum();
    for partitions in [1, 4] {
        println!("re-key order: word count, {lines} lines on {partitions} partition(s), {cpus} lanes, median of {RUNS} runs");
        let mut rates = Vec::new();
        for order in [RekeyOrder::PerKey, RekeyOrder::InputPartition] {
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let config = Config::default().lanes(cpus).rekey_order(order);
                times.push(stoat_run_on(&corpus, config, partitions)?.0);
            }
            let t = median(times);
            let rate = words as f64 / t.as_secs_f64();
            println!("{:<32} {:>12.0} words/s  ({:?})", format!("{order:?}:"), rate, t);
            rates.push(rate);
        }
        println!("ratio InputPartition / PerKey: {:.3}", rates[1] / rates[0]);
    }
    Ok(())
}

fn wordcount_bench(lines: usize, cpus: usize) -> stoat::Result<()> {
    let corpus = support::zipf_corpus(42, lines, 20_000);
    let words: u64 = support::oracle(&corpus).values().sum();
    println!("word count: {lines} lines, {words} words, {cpus} CPUs, median of {RUNS} runs");

    let mut loop_times = Vec::new();
    let mut distinct = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        distinct = std::hint::black_box(hand_written(&corpus)).len();
        loop_times.push(start.elapsed());
    }
    let mut stoat_times = Vec::new();
    for _ in 0..RUNS {
        let (t, n) = stoat_run(&corpus, cpus)?;
        assert_eq!(n, distinct, "stoat and the loop disagree on the number of words");
        stoat_times.push(t);
    }
    let (lt, st) = (median(loop_times), median(stoat_times));
    let rate = |t: Duration| words as f64 / t.as_secs_f64();
    println!("hand-written loop (1 thread): {:>12.0} words/s  ({:?})", rate(lt), lt);
    println!("stoat embedded ({cpus} lanes):     {:>12.0} words/s  ({:?})", rate(st), st);
    println!("ratio stoat / loop: {:.3}", rate(st) / rate(lt));
    Ok(())
}

fn stateless_values(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = support::Rng::new(7);
    (0..n)
        .map(|i| {
            let mut v = format!("seq{i:010}|").into_bytes();
            while v.len() < 1024 {
                v.push(b"abcdefghijklmnopqrstuvwxyz ,."[rng.below(29)]);
            }
            (format!("key-{:05}", rng.below(10_000)), v)
        })
        .collect()
}

fn stateless_loop(records: &[(String, Vec<u8>)]) -> usize {
    let mut kept = 0;
    for (_, v) in records {
        let h = stateless::fnv1a(v);
        if !h.is_multiple_of(10) {
            let mut out: Vec<u8> = v.iter().map(u8::to_ascii_uppercase).collect();
            out.push(b':');
            out.extend_from_slice(format!("{h:x}").as_bytes());
            kept += std::hint::black_box(out).len().min(1);
        }
    }
    kept
}

fn stateless_bench(n: usize, cpus: usize) -> stoat::Result<()> {
    let records = stateless_values(n);
    println!("stateless 1 KB transform: {n} records");
    let mut loop_times = Vec::new();
    let mut kept = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        kept = stateless_loop(&records);
        loop_times.push(start.elapsed());
    }
    let mut stoat_times = Vec::new();
    for _ in 0..RUNS {
        let mut app = App::embedded(
            &stateless::topology("engine-stateless", "in", "out"),
            Config::default().lanes(cpus),
        )?;
        let log = app.embedded_log().cloned().ok_or(stoat::Error::Runtime("no embedded log".into()))?;
        for (k, v) in &records {
            log.produce("in", Some(k.as_bytes().to_vec()), Some(v.clone()), 0, Vec::new());
        }
        let start = Instant::now();
        let stats = app.run_until_idle()?;
        stoat_times.push(start.elapsed());
        assert_eq!(stats.records_out as usize, kept, "stoat and the loop disagree on the kept records");
    }
    let (lt, st) = (median(loop_times), median(stoat_times));
    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    println!("hand-written loop (1 thread): {:>12.0} records/s  ({:?})", rate(lt), lt);
    println!("stoat embedded ({cpus} lanes):     {:>12.0} records/s  ({:?})", rate(st), st);
    println!("ratio stoat / loop: {:.3}", rate(st) / rate(lt));
    Ok(())
}
