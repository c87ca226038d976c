//! Crash safety on a real broker: an app is SIGKILLed at random moments while it works through
//! a large input, and restarted each time, sometimes with its state directory deleted (so it
//! restores from the changelogs). Word count: at the end every word's outputs, read with
//! read_committed, are exactly 1, 2, ..., n with n the oracle's count. Ledger (a table, a table
//! aggregation with a subtractor, a stream-table join, a foreign-key join, a windowed count emitted
//! on close, a stream-stream left join): every payment has exactly one receipt and one status,
//! every region's last totals equal the oracle's, every window is emitted once. Nothing lost,
//! nothing duplicated, no aborted record visible.

mod support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::OnceLock;

use support::kafka::{check_word_counts, example_bin, word_count_bin, Kafka};
use support::Rng;

/// One broker for the crash tests, which run one at a time (each keeps the machine busy).
fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Kafka> = OnceLock::new();
    KAFKA.get_or_init(Kafka::single)
}

fn spawn(k: &Kafka, state: &std::path::Path, idle: Option<&str>) -> Child {
    let mut cmd = Command::new(word_count_bin());
    cmd.env("RUST_LOG", "info,librdkafka=warn");
    cmd.args(["--bootstrap", &k.bootstrap, "--input", "crash-lines", "--output", "crash-counts"])
        .args(["--app-id", "crash", "--lanes", "5", "--state-dir"])
        .arg(state);
    if let Some(secs) = idle {
        cmd.args(["--exit-when-idle", secs]);
    }
    let stderr = child_stderr(idle);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().expect("spawn word_count")
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let _serial = Kafka::one_at_a_time();
    let k = kafka();
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
        let mut child = spawn(k, state.path(), None);
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
    let finish = spawn(k, state.path(), Some("3"));
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

/// Where a spawned app's log goes: piped for the final run (`idle`), which the checks print; for
/// the killed runs, appended to the file `CRASH_LOG` names if set (for diagnosing a failure).
fn child_stderr(idle: Option<&str>) -> Stdio {
    let kept = std::env::var_os("CRASH_LOG")
        .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    match (idle, kept) {
        (Some(_), _) => Stdio::piped(),
        (None, Some(file)) => Stdio::from(file),
        (None, None) => Stdio::null(),
    }
}

fn spawn_ledger(k: &Kafka, state: &std::path::Path, idle: Option<&str>) -> Child {
    let mut cmd = Command::new(example_bin("ledger"));
    cmd.env("RUST_LOG", "info,librdkafka=warn");
    cmd.args(["--bootstrap", &k.bootstrap, "--app-id", "ledger", "--lanes", "3", "--state-dir"]).arg(state);
    if let Some(secs) = idle {
        cmd.args(["--exit-when-idle", secs]);
    }
    let stderr = child_stderr(idle);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().expect("spawn ledger")
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Account {
    region: String,
    balance: i64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Totals {
    sum: i64,
    count: i64,
}

/// Account changes (opens, updates, moves between regions, closes), payments and region
/// managers (appointed, replaced, gone), in order.
enum Event {
    Account(String, Option<Account>),
    /// Payment id, account id, event time.
    Payment(String, String, i64),
    Region(String, Option<String>),
}

#[test]
fn sigkill_during_a_table_aggregation_and_joins_loses_and_duplicates_nothing() {
    let _serial = Kafka::one_at_a_time();
    let k = kafka();
    for t in [
        "ledger-accounts",
        "ledger-payments",
        "ledger-regions",
        "ledger-region-totals",
        "ledger-receipts",
        "ledger-account-managers",
        "ledger-payments-per-second",
        "ledger-confirmations",
        "ledger-payment-status",
        "ledger-follow-ups",
        "ledger-ticks",
        "ledger-risk-scores",
        "ledger-account-risk",
    ] {
        k.create_topic(t, 3);
    }
    let mut rng = Rng::new(7);
    let regions = ["eu", "us", "apac", "latam", "mea"];
    let mut events = Vec::new();
    let mut accounts: HashMap<String, Account> = HashMap::new();
    let mut managers: HashMap<String, String> = HashMap::new();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    for i in 0..12_000 {
        let id = format!("a{}", rng.below(400));
        if rng.below(25) == 0 {
            let region = regions[rng.below(regions.len())].to_string();
            let manager = (rng.below(4) > 0).then(|| format!("m{i}"));
            match &manager {
                Some(m) => managers.insert(region.clone(), m.clone()),
                None => managers.remove(&region),
            };
            events.push(Event::Region(region, manager));
        } else if rng.below(3) == 0 {
            // Event time runs ahead of the wall clock, 10 ms per event: a few seconds per chunk.
            events.push(Event::Payment(format!("p{i}"), id, base + 10 * i as i64));
        } else if rng.below(12) == 0 {
            accounts.remove(&id);
            events.push(Event::Account(id, None));
        } else {
            let a = Account {
                region: regions[rng.below(regions.len())].into(),
                balance: rng.below(1_000) as i64,
            };
            accounts.insert(id.clone(), a.clone());
            events.push(Event::Account(id, Some(a)));
        }
    }
    // The oracle: each region's totals over the accounts open at the end.
    let mut expected: HashMap<String, Totals> = HashMap::new();
    for a in accounts.values() {
        let t = expected.entry(a.region.clone()).or_insert(Totals { sum: 0, count: 0 });
        t.sum += a.balance;
        t.count += 1;
    }
    let produce = |chunk: &[Event]| {
        let mut acc = Vec::new();
        let mut pay = Vec::new();
        let mut reg = Vec::new();
        let mut conf = Vec::new();
        for e in chunk {
            match e {
                Event::Region(region, m) => {
                    reg.push((region.clone(), m.as_ref().map(|m| m.as_bytes().to_vec())))
                }
                Event::Account(id, a) => {
                    let value = a.as_ref().map(|a| serde_json::to_vec(a).unwrap_or_default());
                    acc.push((id.clone(), value));
                }
                Event::Payment(pid, id, ts) => {
                    pay.push((Some(id.as_bytes().to_vec()), pid.as_bytes().to_vec(), *ts));
                    if let Some(c) = confirmation(pid) {
                        conf.push((Some(pid.as_bytes().to_vec()), c.into_bytes(), ts + 1_000));
                    }
                }
            }
        }
        k.produce_at("ledger-confirmations", conf);
        k.produce_nullable("ledger-regions", reg);
        k.produce_nullable("ledger-accounts", acc);
        k.produce_at("ledger-payments", pay);
    };
    let mut chunks = events.chunks(events.len() / 16);
    if let Some(chunk) = chunks.next() {
        produce(chunk);
    }
    let state = tempfile::tempdir().expect("state dir");
    let mut kills = 0;
    while kills < 10 {
        let mut child = spawn_ledger(k, state.path(), None);
        if let Some(chunk) = chunks.next() {
            produce(chunk);
        }
        std::thread::sleep(Duration::from_millis(700 + rng.below(2_000) as u64));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ledger exited on its own ({status}) before kill {kills}");
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        kills += 1;
        if kills % 3 == 0 {
            std::fs::remove_dir_all(state.path()).expect("wipe state");
        }
    }
    for chunk in chunks {
        produce(chunk);
    }
    let payments = events.iter().filter(|e| matches!(e, Event::Payment(..))).count();
    let finish = spawn_ledger(k, state.path(), Some("8"));
    // Once every payment is processed (each has its receipt), a last payment far ahead in event
    // time closes every window. Sent earlier, it could be dispatched before other partitions'
    // payments, which would then be late (stream time is shared by the partitions).
    // Likewise every confirmation must be in before the tick: a partition with nothing fetched
    // is not waited for on Kafka (see "Which record is processed next" in the book).
    let confirmed =
        events.iter().filter(|e| matches!(e, Event::Payment(pid, ..) if confirmation(pid).is_some())).count();
    let started = std::time::Instant::now();
    while k.read_committed("ledger-receipts").len() < payments
        || k.read_committed("ledger-payment-status")
            .iter()
            .filter(|(_, v, _)| v.as_deref().is_some_and(|v| v.starts_with(b"c")))
            .count()
            < confirmed
    {
        assert!(started.elapsed() < Duration::from_secs(180), "the final run did not catch up");
        std::thread::sleep(Duration::from_millis(500));
    }
    let tick = base + 10 * events.len() as i64 + 600_000;
    k.produce_at("ledger-payments", [(Some(b"tick".to_vec()), b"p-tick".to_vec(), tick)]);
    let status = finish.wait_with_output().expect("final run");
    let log = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "the final run failed: {log}");

    // Every payment has exactly one receipt.
    let mut receipts: HashMap<String, usize> = HashMap::new();
    for (_, v, _) in k.read_committed("ledger-receipts") {
        let text = String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned();
        let pid = text.split(' ').next().unwrap_or_default().to_string();
        *receipts.entry(pid).or_default() += 1;
    }
    let twice: Vec<_> = receipts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "payments with more than one receipt: {twice:?}");
    assert_eq!(receipts.len(), payments + 1, "one receipt per payment (and the tick)");
    eprintln!(
        "ledger crash test: {kills} kills (3 with the state dir deleted), {} events, {payments} payments, {} regions",
        events.len(),
        expected.len()
    );

    // Each region's last committed totals match the oracle: an update applied twice or lost
    // would leave them off for good.
    let mut last: HashMap<String, Totals> = HashMap::new();
    for (key, value, _) in k.read_committed("ledger-region-totals") {
        let region = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let totals: Totals =
            serde_json::from_slice(value.as_deref().unwrap_or_default()).expect("totals json");
        last.insert(region, totals);
    }
    for (region, t) in &expected {
        assert_eq!(last.get(region), Some(t), "region {region} after {kills} kills: {log}");
    }
    for (region, t) in &last {
        if !expected.contains_key(region) {
            assert_eq!((t.sum, t.count), (0, 0), "region {region} has no open account left");
        }
    }

    // The foreign-key join's last committed row per account is the join of the final tables: a
    // subscription lost or applied twice across the crashes would leave a row stale.
    let mut rows: HashMap<String, Option<String>> = HashMap::new();
    for (key, value, _) in k.read_committed("ledger-account-managers") {
        let id = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        rows.insert(id, value.map(|v| String::from_utf8_lossy(&v).into_owned()));
    }
    let mut joined = 0;
    for (id, a) in &accounts {
        let want = managers.get(&a.region).map(|m| format!("{} {m}", a.region));
        let got = rows.get(id).cloned().flatten();
        assert_eq!(got, want, "account {id}'s manager row after {kills} kills");
        joined += usize::from(want.is_some());
    }
    for (id, row) in &rows {
        if !accounts.contains_key(id) {
            assert_eq!(row, &None, "closed account {id} still has a manager row");
        }
    }
    assert!(joined > 100, "the foreign-key join joined only {joined} accounts: the test says little");

    // Payments per account and second, emitted once when the second closed: after the kills,
    // every window the tick closed is there exactly once, with its count; no other window is.
    let mut expected_windows: HashMap<(String, i64), u64> = HashMap::new();
    for e in &events {
        if let Event::Payment(_, id, ts) = e {
            *expected_windows.entry((id.clone(), ts - ts.rem_euclid(1_000))).or_default() += 1;
        }
    }
    let mut seen: HashMap<(String, i64), u64> = HashMap::new();
    for (key, value, _) in k.read_committed("ledger-payments-per-second") {
        let key = key.unwrap_or_default();
        let (id, start) = key.split_at(key.len().saturating_sub(8));
        let start = i64::from_be_bytes(start.try_into().expect("8-byte window start"));
        let n = u64::from_be_bytes(value.as_deref().unwrap_or_default().try_into().expect("8-byte count"));
        let window = (String::from_utf8_lossy(id).into_owned(), start);
        assert!(seen.insert(window.clone(), n).is_none(), "window {window:?} emitted twice");
    }
    let mut missing: Vec<_> = expected_windows
        .keys()
        .filter(|w| !seen.contains_key(*w))
        .map(|(id, start)| (start - base, id.clone()))
        .collect();
    missing.sort();
    let extra: Vec<_> = seen.keys().filter(|w| !expected_windows.contains_key(*w)).take(5).collect();
    assert_eq!(
        seen.len(),
        expected_windows.len(),
        "every closed window once, and no other; missing (start - base, account): {:?} .. {:?}; extra {extra:?}; the final run said: {log}",
        &missing[..missing.len().min(8)],
        &missing[missing.len().saturating_sub(8)..]
    );
    for (window, n) in &expected_windows {
        assert_eq!(seen.get(window), Some(n), "window {window:?} after {kills} kills");
    }

    // The stream-stream left join: one status per payment, its confirmation or, once the tick
    // closed its window, `unconfirmed`; none twice (a waiting payment emitted again after a crash,
    // or both alone and joined).
    let mut statuses: HashMap<String, String> = HashMap::new();
    for (key, value, _) in k.read_committed("ledger-payment-status") {
        let pid = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let status = String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned();
        if let Some(before) = statuses.insert(pid.clone(), status.clone()) {
            panic!("payment {pid}: status {before} and then {status}; the final run said: {log}");
        }
    }
    let mut unconfirmed = 0;
    for e in &events {
        if let Event::Payment(pid, ..) = e {
            let want = confirmation(pid).unwrap_or_else(|| "unconfirmed".into());
            unconfirmed += usize::from(want == "unconfirmed");
            assert_eq!(statuses.get(pid), Some(&want), "payment {pid}'s status after {kills} kills");
        }
    }
    assert_eq!(statuses.len(), payments, "a status per payment, and no other");
    assert!(unconfirmed > 100, "only {unconfirmed} unconfirmed payments: the test says little");

    // Timers: one follow-up per account and instant 5 s after its payments, each exactly once
    // (a timer lost, or fired again after a crash, would show).
    let mut want: HashSet<(String, i64)> = HashSet::new();
    for e in &events {
        if let Event::Payment(_, id, ts) = e {
            want.insert((id.clone(), ts + 5_000));
        }
    }
    let mut fired: HashSet<(String, i64)> = HashSet::new();
    for (key, value, _) in k.read_committed("ledger-follow-ups") {
        let id = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let at = i64::from_be_bytes(value.as_deref().unwrap_or_default().try_into().expect("8-byte time"));
        assert!(fired.insert((id.clone(), at)), "follow-up of {id} at {at} fired twice");
    }
    assert_eq!(fired.len(), want.len(), "every timer fired once, and no other");
    assert_eq!(fired, want);

    // The schedule: one tick per second of wall clock since the first, none twice, none
    // missing (seconds the app was down are emitted when it is back).
    let mut ticks: Vec<i64> = k
        .read_committed("ledger-ticks")
        .iter()
        .map(|(_, v, _)| {
            i64::from_be_bytes(v.as_deref().unwrap_or_default().try_into().expect("8-byte instant"))
        })
        .collect();
    ticks.sort_unstable();
    assert!(ticks.len() > 20, "ticks: {}", ticks.len());
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], 1_000, "ticks {} and {}: one per second, once", pair[0], pair[1]);
    }
    check_risk(k, &events, kills);
}

/// The ledger's risk score of a payment id.
fn risk_of(payment: &str) -> u64 {
    payment.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 100
}

/// The async operator: one score per payment, none twice; and the state after it, each
/// account's running sum of scores, ends at the sum of its payments' scores (a call lost or
/// replayed into state twice across the kills would show).
fn check_risk(k: &Kafka, events: &[Event], kills: usize) {
    let mut scores: HashMap<String, (String, u64)> = HashMap::new();
    for (key, value, _) in k.read_committed("ledger-risk-scores") {
        let account = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let text = String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned();
        let (pid, score) = text.split_once(' ').expect("`<payment> <score>`");
        let score: u64 = score.parse().expect("a numeric score");
        assert!(scores.insert(pid.to_string(), (account, score)).is_none(), "payment {pid} scored twice");
    }
    // The last payment, the tick that closes the windows, is scored too.
    let tick = scores.remove("p-tick");
    assert_eq!(tick, Some(("tick".to_string(), risk_of("p-tick"))), "the tick's score");
    let mut sums: HashMap<String, u64> = HashMap::from([("tick".to_string(), risk_of("p-tick"))]);
    let mut payments = 0;
    for e in events {
        if let Event::Payment(pid, id, _) = e {
            payments += 1;
            assert_eq!(
                scores.get(pid),
                Some(&(id.clone(), risk_of(pid))),
                "payment {pid}'s score after {kills} kills"
            );
            *sums.entry(id.clone()).or_default() += risk_of(pid);
        }
    }
    assert_eq!(scores.len(), payments, "a score per payment, and no other");
    let mut last: HashMap<String, u64> = HashMap::new();
    for (key, value, _) in k.read_committed("ledger-account-risk") {
        let account = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let sum = u64::from_be_bytes(value.as_deref().unwrap_or_default().try_into().expect("8-byte sum"));
        last.insert(account, sum);
    }
    assert_eq!(last, sums, "each account's risk sum after {kills} kills");
}

/// The confirmation of payment `pid` (`p<i>`), for three payments in four.
fn confirmation(pid: &str) -> Option<String> {
    let i: u64 = pid.trim_start_matches('p').parse().ok()?;
    (!i.is_multiple_of(4)).then(|| format!("c{i}"))
}
