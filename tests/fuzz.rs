//! Property-based fuzzing (proptest) of what reads untrusted bytes or text: every codec, the
//! state key encoding, configuration parsing and the record path. Arbitrary input never panics;
//! what is valid round-trips (and keys sort like their encodings); every bad record is accounted
//! for by the error policy. Bounded by case counts so the suite stays quick; `PROPTEST_CASES=N`
//! runs each target longer.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use stoat::codec::{Binary, Codec, Json, Nullable, RawBytes, SessionWindowedCodec, Text, TimeWindowed, Utf8};
use stoat::prelude::*;
use stoat::{Settings, StoreKey, Window};

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Decoding arbitrary bytes returns a value or an error, never a panic; a decoded value
/// encodes back to bytes that decode to it again.
fn decode_is_total<T: PartialEq + std::fmt::Debug + 'static>(codec: &dyn Codec<T>, bytes: Option<&[u8]>) {
    if let Ok(value) = codec.decode(bytes) {
        let again = codec.encode(&value).map(|b| codec.decode(b.as_deref()));
        match again {
            Ok(Ok(v)) => assert_eq!(v, value, "{} re-decodes what it decoded", codec.name()),
            other => panic!("{}: a decoded value does not round-trip: {other:?}", codec.name()),
        }
    }
}

fn round_trips<T: PartialEq + std::fmt::Debug + 'static>(codec: &dyn Codec<T>, value: T) {
    let bytes =
        codec.encode(&value).unwrap_or_else(|e| panic!("{} cannot encode {value:?}: {e}", codec.name()));
    let back = codec
        .decode(bytes.as_deref())
        .unwrap_or_else(|e| panic!("{} cannot decode its own bytes: {e}", codec.name()));
    assert_eq!(back, value);
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    customer: String,
    lines: Vec<(String, i32)>,
    note: Option<String>,
}

fn order() -> impl Strategy<Value = Order> {
    (
        any::<u64>(),
        ".{0,12}",
        prop::collection::vec((".{0,6}", any::<i32>()), 0..4),
        proptest::option::of(".{0,8}"),
    )
        .prop_map(|(id, customer, lines, note)| Order { id, customer, lines, note })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn codecs_never_panic_on_arbitrary_bytes(bytes in proptest::option::of(prop::collection::vec(any::<u8>(), 0..64))) {
        let b = bytes.as_deref();
        decode_is_total(&Utf8, b);
        decode_is_total(&RawBytes, b);
        decode_is_total(&Binary::<u64>::new(), b);
        decode_is_total(&Binary::<i32>::new(), b);
        decode_is_total(&Binary::<bool>::new(), b);
        decode_is_total(&Text::<i64>::new(), b);
        decode_is_total(&Nullable(Utf8), b);
        decode_is_total(&Json::<Order>::new(), b);
        decode_is_total(&TimeWindowed::new(Utf8, Duration::from_secs(60)), b);
        decode_is_total(&SessionWindowedCodec::new(Binary::<u64>::new()), b);
        // Floats: NaN never equals itself, so only "no panic".
        let _ = Binary::<f64>::new().decode(b);
    }

    #[test]
    fn codecs_round_trip_arbitrary_values(
        text in ".{0,40}",
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        n in any::<i64>(),
        o in order(),
        start in 0i64..4_000_000_000_000,
    ) {
        round_trips(&Utf8, text.clone());
        round_trips(&RawBytes, bytes);
        round_trips(&Binary::<i64>::new(), n);
        round_trips(&Text::<i64>::new(), n);
        round_trips(&Nullable(Utf8), Some(text.clone()));
        round_trips(&Nullable(Utf8), None);
        round_trips(&Json::<Order>::new(), o);
        let size = 60_000;
        let start = start - start % size;
        let window = Window { start, end: start + size };
        round_trips(&TimeWindowed::new(Utf8, Duration::from_millis(size as u64)), Windowed { key: text.clone(), window });
        let session = Window { start, end: start + (n.rem_euclid(1_000_000)) };
        round_trips(&SessionWindowedCodec::new(Utf8), SessionWindowed { key: text, window: session });
    }
}

fn key_bytes<K: StoreKey>(k: &K) -> Vec<u8> {
    let mut out = Vec::new();
    k.encode_key(&mut out);
    out
}

/// A key type's encoding round-trips, sorts like the keys, and arbitrary bytes never panic it.
fn key_laws<K: StoreKey + Ord + std::fmt::Debug>(a: &K, b: &K, junk: &[u8]) {
    let (ea, eb) = (key_bytes(a), key_bytes(b));
    assert_eq!(K::decode_key(&ea).as_ref(), Ok(a));
    assert_eq!(a.cmp(b), ea.cmp(&eb), "{a:?} vs {b:?}: the encodings sort like the keys");
    let mut nested = Vec::new();
    a.encode_nested(&mut nested);
    nested.extend_from_slice(junk);
    let mut rest = nested.as_slice();
    assert_eq!(K::decode_nested(&mut rest).as_ref(), Ok(a));
    assert_eq!(rest, junk, "a nested key stops where it ends");
    let _ = K::decode_key(junk);
    let _ = K::decode_nested(&mut &junk[..]);
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn key_encodings_round_trip_sort_and_survive_junk(
        (i1, i2) in (any::<i64>(), any::<i64>()),
        (u1, u2) in (any::<u32>(), any::<u32>()),
        (s1, s2) in ("\\PC{0,12}|[a\\x00\\xff]{0,6}", "\\PC{0,12}|[a\\x00\\xff]{0,6}"),
        (b1, b2) in (prop::collection::vec(any::<u8>(), 0..12), prop::collection::vec(any::<u8>(), 0..12)),
        (t1, t2) in ((".{0,6}", any::<u64>()), (".{0,6}", any::<u64>())),
        (w1, w2) in ((any::<i32>(), ".{0,4}", any::<bool>()), (any::<i32>(), ".{0,4}", any::<bool>())),
        junk in prop::collection::vec(any::<u8>(), 0..24),
    ) {
        key_laws(&i1, &i2, &junk);
        key_laws(&u1, &u2, &junk);
        key_laws(&s1, &s2, &junk);
        key_laws(&b1, &b2, &junk);
        key_laws(&t1, &t2, &junk);
        key_laws(&w1, &w2, &junk);
    }
}

/// Keys of the configuration, for near-valid documents.
const KEYS: &[&str] = &[
    "lanes",
    "commit_interval",
    "min_commit_interval",
    "commit_max_records",
    "worker_threads",
    "state_dir",
    "error_policy",
    "shutdown_timeout",
    "http",
    "lanez",
    "kafka.bootstrap_servers",
    "librdkafka.\"socket.timeout.ms\"",
];

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z0-9 ]{0,8}".prop_map(|s| format!("{s:?}")),
        (0u32..100_000, prop::sample::select(vec!["ms", "s", "min", "h", "parsecs", ""]))
            .prop_map(|(n, u)| format!("\"{n}{u}\"")),
        Just("true".to_string()),
        Just("[1, 2]".to_string()),
        Just("{ dead_letter = \"dlq\" }".to_string()),
        Just("\"127.0.0.1:0\"".to_string()),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn configuration_parsing_never_panics(text in "\\PC{0,80}") {
        let _ = Settings::from_toml(&text).map(|s| s.config());
    }

    #[test]
    fn near_valid_configurations_load_or_name_what_is_wrong(
        entries in prop::collection::vec((prop::sample::select(KEYS.to_vec()), toml_value()), 0..6),
    ) {
        let text: String = entries.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        match Settings::from_toml(&text) {
            Ok(settings) => {
                let _ = settings.config();
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.is_empty());
                prop_assert!(!message.contains("panicked"), "{}", message);
            }
        }
    }
}

#[stoat::operator]
fn total(#[key] key: &str, amount: u64, totals: &mut Keyed<u64>) -> Result<u64, StoreError> {
    let _ = key;
    let sum = totals.get()?.unwrap_or(0) + amount;
    totals.set(sum)?;
    Ok(sum)
}

/// A record of the fuzzed input: valid (a UTF-8 key and an 8-byte amount) or arbitrary bytes.
#[derive(Clone, Debug)]
enum Input {
    Valid(String, u64),
    Junk(Option<Vec<u8>>, Option<Vec<u8>>),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => ("[a-e]", 0u64..1000).prop_map(|(k, v)| Input::Valid(k, v)),
        1 => (
            proptest::option::of(prop::collection::vec(any::<u8>(), 0..10)),
            proptest::option::of(prop::collection::vec(any::<u8>(), 0..10)),
        )
            .prop_map(|(k, v)| Input::Junk(k, v)),
    ]
}

proptest! {
    #![proptest_config(cases(48))]

    /// Arbitrary bytes mixed with valid records through a stateful topology under the
    /// dead-letter policy: no panic, the valid records' totals are exact, and every record that
    /// is not valid is dead-lettered (or, for a null key or value, counted as dropped).
    #[test]
    fn the_record_path_accounts_for_every_bad_record(records in prop::collection::vec(input(), 1..120)) {
        let topology = Topology::new("fuzz-totals");
        topology.stream::<String, u64>("amounts").process(total {}).to("totals");
        let config = Config::default().lanes(3).error_policy(ErrorPolicy::DeadLetter("dlq".into()));
        let driver = TestDriver::with_config(&topology, config).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let raw = driver.input::<String, u64>("amounts");
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        let (mut bad, mut null) = (0u64, 0u64);
        for record in &records {
            let (key, value) = match record {
                Input::Valid(k, v) => {
                    *expected.entry(k.clone()).or_default() += v;
                    (Some(k.as_bytes().to_vec()), Some(v.to_be_bytes().to_vec()))
                }
                Input::Junk(k, v) => (k.clone(), v.clone()),
            };
            // As the source reads it: a null key drops the record, then an undecodable key is
            // bad, then a null value drops it, then an undecodable value is bad.
            if let Input::Junk(..) = record {
                match (key.as_deref(), value.as_deref()) {
                    (None, _) => null += 1,
                    (Some(k), _) if std::str::from_utf8(k).is_err() => bad += 1,
                    (Some(_), None) => null += 1,
                    (Some(_), Some(v)) if v.len() != 8 => bad += 1,
                    (Some(k), Some(v)) => {
                        let amount = u64::from_be_bytes(v.try_into().unwrap_or([0; 8]));
                        *expected.entry(String::from_utf8_lossy(k).into_owned()).or_default() += amount;
                    }
                }
            }
            raw.pipe_raw(key.as_deref(), value.as_deref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let totals = driver.output::<String, u64>("totals").read_key_values_to_map().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(totals.into_iter().collect::<BTreeMap<_, _>>(), expected);
        let dead = driver.output::<Option<Vec<u8>>, Option<Vec<u8>>>("dlq").read_values().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(dead.len() as u64, bad, "every undecodable record is dead-lettered");
        let stats = driver.stats();
        prop_assert_eq!(stats.skipped_decode, bad);
        prop_assert_eq!(stats.records_in, records.len() as u64);
        prop_assert_eq!(stats.dropped_null_keys + stats.dropped_null_values, null);
    }
}
