//! Crash safety on a real broker: the word count app is SIGKILLed at random moments (at least 20
//! times) while it works through a large input, and restarted each time, sometimes with its
//! state directory deleted (so it restores from the changelog). At the end every word's outputs,
//! read with read_committed, are exactly 1, 2, ..., n with n the oracle's count: nothing lost,
//! nothing duplicated, no aborted record visible.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::kafka::{check_word_counts, word_count_bin, Kafka};
use support::Rng;

fn spawn(k: &Kafka, state: &std::path::Path, idle: Option<&str>) -> Child {
    let mut cmd = Command::new(word_count_bin());
    cmd.env("RUST_LOG", "info,librdkafka=warn");
    cmd.args(["--bootstrap", &k.bootstrap, "--input", "crash-lines", "--output", "crash-counts"])
        .args(["--app-id", "crash", "--lanes", "5", "--state-dir"])
        .arg(state);
    if let Some(secs) = idle {
        cmd.args(["--exit-when-idle", secs]);
    }
    let stderr = if idle.is_some() { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().expect("spawn word_count")
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let k = Kafka::single();
    k.create_topic("crash-lines", 4);
    k.create_topic("crash-counts", 4);
    let corpus = support::zipf_corpus(17, 100_000, 3_000);
    let oracle = support::oracle(&corpus);
    let words: u64 = oracle.values().sum();
    // Input arrives while the app is killed and restarted, so every run has work in hand.
    let mut chunks = corpus.chunks(corpus.len() / 25);
    if let Some(chunk) = chunks.next() {
        k.produce_lines("crash-lines", chunk);
    }

    let state = tempfile::tempdir().expect("state dir");
    let mut rng = Rng::new(99);
    let started = Instant::now();
    let mut kills = 0;
    let mut wiped = 0;
    while kills < 20 {
        let mut child = spawn(&k, state.path(), None);
        if let Some(chunk) = chunks.next() {
            k.produce_lines("crash-lines", chunk);
        }
        let wait = Duration::from_millis(500 + rng.below(2_000) as u64);
        std::thread::sleep(wait);
        if let Ok(Some(status)) = child.try_wait() {
            panic!("word_count exited on its own ({status}) before kill {kills}");
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        kills += 1;
        if kills % 4 == 0 {
            std::fs::remove_dir_all(state.path()).expect("wipe state");
            wiped += 1;
        }
    }
    for chunk in chunks {
        k.produce_lines("crash-lines", chunk);
    }
    let before = k.read_committed("crash-counts").len() as u64;
    assert!(before > 0 && before < words, "the killed runs made progress ({before} of {words} outputs)");
    let finish = spawn(&k, state.path(), Some("3"));
    let status = finish.wait_with_output().expect("final run");
    let log = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "the final run failed: {log}");
    let outputs = k.read_committed("crash-counts");
    eprintln!(
        "crash test: {kills} kills ({wiped} with the state dir deleted), {} lines, {words} words, {before} outputs committed before the final run, {} in all, {:?}",
        corpus.len(),
        outputs.len(),
        started.elapsed()
    );
    if let Err(e) = check_word_counts(&outputs, &oracle) {
        panic!("{e}\nthe final run said:\n{log}");
    }
    assert_eq!(outputs.len() as u64, words, "one committed output per word occurrence");
}
