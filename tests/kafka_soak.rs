//! The soak: word count on a three-node cluster (replication 3, min ISR 2) SIGKILLed at 100
//! random moments (`SOAK_KILLS`) while input keeps arriving, the state directory deleted at every
//! fifth kill, and one broker SIGKILLed a third of the way in and restarted at two thirds. At the
//! end every word's outputs, read with read_committed, are exactly 1, 2, ..., n: nothing lost,
//! nothing duplicated. Too long for the default test command (minutes); run it with
//!
//! ```sh
//! cargo test --test kafka_soak -- --ignored --nocapture
//! ```
//!
//! and record its last line in `benches/results/soak.txt`.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::kafka::{check_word_counts, word_count_bin, Kafka};
use support::Rng;

fn spawn(k: &Kafka, state: &std::path::Path, idle: Option<&str>) -> Child {
    let mut cmd = Command::new(word_count_bin());
    cmd.env("RUST_LOG", "warn");
    cmd.args(["--bootstrap", &k.bootstrap, "--input", "soak-lines", "--output", "soak-counts"])
        .args(["--app-id", "soak", "--lanes", "5", "--state-dir"])
        .arg(state);
    if let Some(secs) = idle {
        cmd.args(["--exit-when-idle", secs]);
    }
    // Its log (warnings and errors only: a pipe it cannot fill) tells why a run stopped.
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn word_count")
}

#[test]
#[ignore = "minutes long: run on request (see the file's doc comment)"]
fn a_hundred_sigkills_and_a_broker_loss_lose_and_duplicate_nothing() {
    let kills_wanted: usize = std::env::var("SOAK_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(100);
    let mut k = Kafka::three_nodes();
    k.create_topic("soak-lines", 4);
    k.create_topic("soak-counts", 4);
    let corpus = support::zipf_corpus(2026, 200_000, 5_000);
    let oracle = support::oracle(&corpus);
    let words: u64 = oracle.values().sum();
    let per_kill = corpus.len() / (kills_wanted + 10);
    let mut chunks = corpus.chunks(per_kill.max(1));
    if let Some(chunk) = chunks.next() {
        k.produce_lines("soak-lines", chunk);
    }
    let state = tempfile::tempdir().expect("state dir");
    let mut rng = Rng::new(7);
    let started = Instant::now();
    let (mut kills, mut wiped) = (0, 0);
    let mut early_exits: Vec<String> = Vec::new();
    while kills < kills_wanted {
        if kills == kills_wanted / 3 {
            k.nodes[1].kill();
        }
        if kills == 2 * kills_wanted / 3 {
            k.nodes[1].restart();
        }
        let mut child = spawn(&k, state.path(), None);
        if let Some(chunk) = chunks.next() {
            k.produce_lines("soak-lines", chunk);
        }
        std::thread::sleep(Duration::from_millis(300 + rng.below(2_500) as u64));
        let stopped = matches!(child.try_wait(), Ok(Some(_)));
        let _ = child.kill(); // SIGKILL
        let out = child.wait_with_output().expect("a killed run");
        if stopped {
            // It stopped by itself: a restart follows, as a supervisor would do; why is kept.
            let log = String::from_utf8_lossy(&out.stderr);
            let why = log.lines().rev().find(|l| l.contains("word_count:")).unwrap_or("no error printed");
            early_exits.push(format!("kill {kills}: {} ({})", out.status, why.trim()));
        }
        kills += 1;
        if kills % 5 == 0 {
            std::fs::remove_dir_all(state.path()).expect("wipe state");
            wiped += 1;
        }
    }
    for chunk in chunks {
        k.produce_lines("soak-lines", chunk);
    }
    let finish = spawn(&k, state.path(), Some("5"));
    let out = finish.wait_with_output().expect("final run");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the final run failed: {log}");
    let outputs = k.read_committed("soak-counts");
    if let Err(e) = check_word_counts(&outputs, &oracle) {
        panic!("{e}\nthe final run said:\n{log}");
    }
    assert_eq!(outputs.len() as u64, words, "one committed output per word occurrence");
    let summary = format!(
        "soak: {kills} SIGKILLs ({wiped} with the state dir deleted, {} runs that had stopped by themselves), broker 2 of 3 SIGKILLed at kill {} and restarted at kill {}, {} lines, {words} words, {} outputs, 0 lost, 0 duplicated, {:?}",
        early_exits.len(),
        kills_wanted / 3,
        2 * kills_wanted / 3,
        corpus.len(),
        outputs.len(),
        started.elapsed()
    );
    eprintln!("{summary}");
    for exit in &early_exits {
        eprintln!("soak: stopped by itself before {exit}");
    }
}
