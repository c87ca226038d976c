//! Kafka Streams itself as the test oracle: runs one of the reference topologies of
//! `tests/kafka-streams-oracle/Oracle.java` under Kafka Streams' TopologyTestDriver (cache off) on
//! the given input and returns what it emitted. The jars are fetched once with Maven into
//! `.kafka/oracle-libs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A record in or out: topic, key, value (`None`: null), timestamp.
pub type Line = (String, Option<String>, Option<String>, i64);

fn libs() -> &'static PathBuf {
    static LIBS: OnceLock<PathBuf> = OnceLock::new();
    LIBS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let libs = root.join(".kafka/oracle-libs");
        if !libs.join(".complete").exists() {
            let ok = Command::new("mvn")
                .args(["-B", "-q", "-f"])
                .arg(root.join("tests/kafka-streams-oracle/pom.xml"))
                .args(["dependency:copy-dependencies", "-DincludeScope=runtime"])
                .arg(format!("-DoutputDirectory={}", libs.display()))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "fetching Kafka Streams with Maven failed");
            std::fs::write(libs.join(".complete"), b"").expect("mark the oracle's jars complete");
        }
        libs
    })
}

fn field(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("\\N")
}

/// What Kafka Streams emits for `topology` on `input`, in order per output topic.
pub fn kafka_streams(topology: &str, input: &[Line]) -> Vec<Line> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(libs().join("*"))
        .arg(root.join("tests/kafka-streams-oracle/Oracle.java"))
        .arg(topology)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java");
    let mut text = String::new();
    for (topic, key, value, ts) in input {
        text.push_str(&format!("{topic}\t{}\t{}\t{ts}\n", field(key), field(value)));
    }
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write the input");
    let out = child.wait_with_output().expect("the oracle's output");
    assert!(out.status.success(), "the oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    let parse = |s: &str| (s != "\\N").then(|| s.to_string());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            (f[0].to_string(), parse(f[1]), parse(f[2]), f[3].parse().expect("a timestamp"))
        })
        .collect()
}
