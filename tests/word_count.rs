//! The word count example end to end on the embedded log: a 120K-line Zipf corpus with non-ASCII
//! words against an independent oracle, through the state store and through the output topic;
//! and state surviving a restart.

#[path = "../examples/word_count/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use std::collections::BTreeMap;
use std::io::Cursor;

use stoat::prelude::*;

fn as_input(lines: &[String]) -> Cursor<Vec<u8>> {
    Cursor::new(lines.join("\n").into_bytes())
}

#[test]
fn word_count_matches_the_oracle() -> stoat::Result<()> {
    let corpus = support::zipf_corpus(7, 120_000, 3_000);
    let expected = support::oracle(&corpus);
    assert!(expected.keys().any(|w| !w.is_ascii()), "the corpus has non-ASCII words");
    let counts: BTreeMap<String, u64> =
        app::run(as_input(&corpus), Config::default().lanes(8))?.into_iter().collect();
    assert_eq!(counts.len(), expected.len());
    assert_eq!(counts, expected);
    Ok(())
}

/// Many lanes run by few tasks, with a budget small enough that lanes wait for it: each task
/// takes turns among its lanes and waits only when none of them may run.
#[test]
fn many_lanes_on_few_tasks_under_a_tight_budget_match_the_oracle() -> stoat::Result<()> {
    let corpus = support::zipf_corpus(13, 20_000, 2_000);
    let expected = support::oracle(&corpus);
    let config = Config::default().lanes(1_000).lane_groups(3).max_in_flight(300);
    let counts: BTreeMap<String, u64> = app::run(as_input(&corpus), config)?.into_iter().collect();
    assert_eq!(counts, expected);
    Ok(())
}

#[test]
fn output_topic_carries_the_latest_count_per_word() -> stoat::Result<()> {
    let corpus = support::zipf_corpus(11, 20_000, 800);
    let expected = support::oracle(&corpus);
    let driver = TestDriver::with_config(&app::topology(), Config::default().lanes(5))?;
    let lines = driver.input_topic(&app::LINES);
    let counts = driver.output_topic(&app::COUNTS);
    for chunk in corpus.chunks(7_000) {
        lines.pipe_values(chunk.iter().cloned())?;
    }
    let latest: BTreeMap<String, u64> = counts.read_key_values_to_map()?.into_iter().collect();
    assert_eq!(latest, expected);
    let words: u64 = expected.values().sum();
    assert_eq!(driver.stats().records_out, words, "one output per word occurrence");
    Ok(())
}

#[test]
fn state_survives_a_restart() -> stoat::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|source| stoat::Error::Io { what: "tempdir".into(), cause: source })?;
    let corpus = support::zipf_corpus(3, 30_000, 1_000);
    let (first, second) = corpus.split_at(12_345);
    let config = || Config::default().lanes(3).state_dir(dir.path());
    let after_first: BTreeMap<_, _> = app::run(as_input(first), config())?.into_iter().collect();
    assert_eq!(after_first, support::oracle(first));
    let after_second: BTreeMap<_, _> = app::run(as_input(second), config())?.into_iter().collect();
    assert_eq!(after_second, support::oracle(&corpus), "the second run adds to the first");
    Ok(())
}
