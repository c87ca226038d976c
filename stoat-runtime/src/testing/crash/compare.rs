//! The committed outputs of a crash-test run, and how two runs' outputs differ: per output
//! topic and key, the records in the order they were committed (the order Kafka Streams and
//! stoat guarantee per key), or as a multiset when order is not defined; and the state stores
//! the run left, entry by entry.

use std::collections::BTreeMap;

use crate::log::EmbeddedLog;

/// How two runs' records of one key are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compare {
    /// The same records in the same order.
    InOrder,
    /// The same records, in any order.
    Unordered,
    /// The same last record.
    Latest,
}

/// A committed record's value and timestamp.
type Committed = (Option<Vec<u8>>, i64);

/// Per (topic, key): the committed records' values and timestamps, in offset order.
#[derive(Debug, Default)]
pub(super) struct Outputs {
    by_key: BTreeMap<(String, Option<Vec<u8>>), Vec<Committed>>,
    count: usize,
}

impl Outputs {
    /// Every committed record of `topics`.
    pub fn read(log: &EmbeddedLog, topics: &[String]) -> Outputs {
        let mut outputs = Outputs::default();
        for topic in topics {
            for (_, record) in log.read_all(topic) {
                outputs
                    .by_key
                    .entry((topic.clone(), record.key.clone()))
                    .or_default()
                    .push((record.value.clone(), record.timestamp));
                outputs.count += 1;
            }
        }
        outputs
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The first difference between these (expected) outputs and `got`, described.
    pub fn first_difference(&self, got: &Outputs, compare: Compare) -> Option<String> {
        let keys: std::collections::BTreeSet<_> = self.by_key.keys().chain(got.by_key.keys()).collect();
        for key in keys {
            let mut want = self.by_key.get(key).cloned().unwrap_or_default();
            let mut have = got.by_key.get(key).cloned().unwrap_or_default();
            match compare {
                Compare::InOrder => {}
                Compare::Unordered => {
                    want.sort();
                    have.sort();
                }
                Compare::Latest => {
                    want = want.split_off(want.len().saturating_sub(1));
                    have = have.split_off(have.len().saturating_sub(1));
                }
            }
            let at = match want.iter().zip(&have).position(|(w, h)| w != h) {
                Some(i) => i,
                None if want.len() == have.len() => continue,
                None => want.len().min(have.len()),
            };
            let (topic, k) = key;
            let show = |r: Option<&Committed>| match r {
                Some((value, ts)) => format!("{} at {ts}", bytes(value.as_deref())),
                None => "nothing".to_string(),
            };
            return Some(format!(
                "topic `{topic}`, key {}, its record #{}: expected {}, got {} ({} records expected for the key, {} committed)",
                bytes(k.as_deref()),
                at + 1,
                show(want.get(at)),
                show(have.get(at)),
                want.len(),
                have.len()
            ));
        }
        None
    }
}

/// Every entry of every state store, as committed in LMDB at a run's end.
#[derive(Debug, Default)]
pub(super) struct States {
    by_key: BTreeMap<(&'static str, Vec<u8>), Vec<u8>>,
}

impl States {
    pub fn read(
        state: &crate::state::StateEnv,
        stores: &[crate::state::StoreSpec],
    ) -> crate::error::Result<States> {
        let mut states = States::default();
        for spec in stores {
            state.dump(spec.name, |key, value| {
                states.by_key.insert((spec.name, key.to_vec()), value.to_vec());
            })?;
        }
        Ok(states)
    }

    /// The first entry that differs between these (expected) stores and `got`, described.
    pub fn first_difference(&self, got: &States) -> Option<String> {
        let keys: std::collections::BTreeSet<_> = self.by_key.keys().chain(got.by_key.keys()).collect();
        for key in keys {
            let (want, have) = (self.by_key.get(key), got.by_key.get(key));
            if want == have {
                continue;
            }
            let (store, k) = key;
            // Stored keys start with stoat's tag byte.
            let shown = k.get(1..).unwrap_or_default();
            let show = |v: Option<&Vec<u8>>| v.map_or("no entry".to_string(), |v| bytes(Some(v)));
            return Some(format!(
                "state store `{store}`, key {}: expected {}, got {}",
                bytes(Some(shown)),
                show(want),
                show(have)
            ));
        }
        None
    }
}

/// Bytes as text where they are printable UTF-8, else as hex (`0x...`).
fn bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
            _ => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        },
    }
}
