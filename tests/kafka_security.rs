//! stoat on a broker that takes only TLS with SASL/SCRAM and authorizes every request by ACL:
//! word count runs exactly-once with exactly the ACLs the book lists for an app, each missing
//! ACL gives an error that names it, and the password appears in no log line or error. The only
//! test of its binary, so the log it captures is the app's.

#[path = "../examples/word_count/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stoat::prelude::*;
use support::kafka::{check_word_counts, Kafka, Secured};

const PASSWORD: &str = "s3cret-Scram-pa55";

/// The ACLs the book's Operations chapter lists for app `app` reading `input`, writing `output`,
/// with a store `per_word` (word count's).
fn book_acls(app: &str, input: &str, output: &str) -> Vec<String> {
    let p = "User:stoat";
    let changelog = format!("{app}-per_word-changelog");
    let mut acls = vec![
        format!("{p} TOPIC LITERAL {input} READ"),
        format!("{p} TOPIC LITERAL {input} DESCRIBE"),
        format!("{p} TOPIC LITERAL {output} WRITE"),
        format!("{p} TOPIC LITERAL {output} DESCRIBE"),
        format!("{p} GROUP LITERAL {app} READ"),
        format!("{p} GROUP LITERAL {app} DESCRIBE"),
        format!("{p} TRANSACTIONAL_ID LITERAL stoat-{app} WRITE"),
        format!("{p} TRANSACTIONAL_ID LITERAL stoat-{app} DESCRIBE"),
    ];
    for op in ["CREATE", "WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS"] {
        acls.push(format!("{p} TOPIC LITERAL {changelog} {op}"));
    }
    acls
}

fn client(s: &Secured, password: &str) -> KafkaConfig {
    KafkaConfig::new(&s.sasl_ssl)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "stoat")
        .set("sasl.password", password)
        .set("ssl.ca.location", s.ca.display().to_string())
}

fn run(topology: &Topology, kafka: KafkaConfig, state: &std::path::Path) -> stoat::Result<stoat::RunStats> {
    let config = Config::default().lanes(3).state_dir(state);
    support::kafka::run_until_idle(topology, config, kafka, Duration::from_secs(90))
}

/// Every log line of the process, for the secrets check.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tls_scram_and_exactly_the_books_acls() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let s = Kafka::secured(&[("stoat", PASSWORD)]);
    let k = &s.kafka;
    let corpus = support::zipf_corpus(11, 3_000, 300);
    let oracle = support::oracle(&corpus);
    let mut errors = Vec::new();

    // With exactly the listed ACLs: exactly-once word count.
    k.create_topic("sec-lines", 2);
    k.create_topic("sec-counts", 2);
    k.produce_lines("sec-lines", &corpus);
    k.grant(&book_acls("sec", "sec-lines", "sec-counts"));
    let dir = tempfile::tempdir().expect("tempdir");
    let stats = run(&app::topology_for("sec", "sec-lines", "sec-counts"), client(&s, PASSWORD), dir.path());
    let stats = stats.unwrap_or_else(|e| panic!("word count with the book's ACLs failed: {e}"));
    assert_eq!(stats.records_in, corpus.len() as u64);
    if let Err(e) = check_word_counts(&k.read_committed("sec-counts"), &oracle) {
        panic!("{e}");
    }

    // Each ACL left out in turn (on an app of its own): an error that names what is missing.
    let cases: [(&str, &str, &[&str]); 4] = [
        ("nowrite", "TOPIC LITERAL nowrite-counts WRITE", &["authoriz", "nowrite-counts"]),
        ("noread", "TOPIC LITERAL noread-lines READ", &["authoriz", "noread-lines"]),
        ("nogroup", "GROUP LITERAL nogroup READ", &["authoriz", "group", "nogroup"]),
        (
            "notxn",
            "TRANSACTIONAL_ID LITERAL stoat-notxn WRITE",
            &["authoriz", "transactional id", "stoat-notxn"],
        ),
    ];
    for (app, missing, expect) in cases {
        let (input, output) = (format!("{app}-lines"), format!("{app}-counts"));
        k.create_topic(&input, 1);
        k.create_topic(&output, 1);
        k.produce_lines(&input, &corpus[..50]);
        let acls: Vec<String> =
            book_acls(app, &input, &output).into_iter().filter(|a| !a.ends_with(missing)).collect();
        assert_eq!(acls.len(), book_acls(app, &input, &output).len() - 1, "{missing} is left out");
        k.grant(&acls);
        let dir = tempfile::tempdir().expect("tempdir");
        let err = match run(&app::topology_for(app, &input, &output), client(&s, PASSWORD), dir.path()) {
            Err(e) => e.to_string(),
            Ok(stats) => {
                let logged =
                    String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
                let warns: Vec<&str> =
                    logged.lines().filter(|l| l.to_lowercase().contains("authoriz")).take(6).collect();
                panic!(
                    "{app}: the app ran without {missing}: {stats:?}; committed out: {}; {warns:#?}",
                    k.read_committed(&output).len()
                )
            }
        };
        let lower = err.to_lowercase();
        for word in expect {
            assert!(lower.contains(word), "{app}: the error should name `{word}`: {err}");
        }
        errors.push(err);
    }

    // A wrong password: refused at start, with the password in no message.
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "not-the-Pa55word";
    let err = run(&app::topology_for("sec", "sec-lines", "sec-counts"), client(&s, wrong), dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    if !err.to_lowercase().contains("authentication") {
        let logged = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        let all: Vec<&str> = logged.lines().filter(|l| l.contains("FAIL") || l.contains("Global")).collect();
        let lines = &all[all.len().saturating_sub(10)..];
        panic!("{err}\n{lines:#?}");
    }
    errors.push(err);

    for e in &errors {
        eprintln!("reported: {e}");
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(logged.len() > 1_000, "the log was captured ({} bytes)", logged.len());
    for secret in [PASSWORD, wrong] {
        assert!(!logged.contains(secret), "a password appears in the log");
        assert!(errors.iter().all(|e| !e.contains(secret)), "a password appears in an error");
    }
}
