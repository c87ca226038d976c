//! Debug builds check every epoch for a key that two lanes wrote to the same store. Each lane
//! buffers its own writes, so the epoch would keep one lane's value and drop the other's: a
//! topology that writes state under a key other than the record's key (which its lane owns) has
//! a race. Release builds skip the check (it costs a pass over every change of the epoch).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::state::StoreDelta;

/// Fails when two lanes' deltas hold the same key of the same store.
pub(crate) fn check(deltas: &[StoreDelta], lanes: &[usize]) -> Result<()> {
    let mut owner: HashMap<(&str, &[u8]), usize> = HashMap::new();
    for (delta, &lane) in deltas.iter().zip(lanes) {
        for (key, _) in &delta.entries {
            match owner.insert((delta.store, key.as_slice()), lane) {
                Some(other) if other != lane => {
                    return Err(Error::Runtime(format!(
                        "state store `{}`: lanes {other} and {lane} both wrote the key {key:02x?} in one epoch, so one write would be lost; write state only under the key of the record being processed (re-key first, e.g. with `key_by`), so that one lane owns each key (checked in debug builds)",
                        delta.store
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
