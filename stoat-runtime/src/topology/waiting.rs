//! Windows waiting to close, for aggregations that emit each window once when it closes: a
//! lane's index of its own keys' windows by closing time, so an epoch's end finds the due ones
//! without scanning the store. The store holds the windows themselves (a restart finds them);
//! the index is rebuilt from it after a start or an aborted epoch.

use std::collections::BTreeMap;

use crate::state::{key_bytes, StoreKey};

/// Where a window is in the index: (closing time, encoded key, tiebreak).
type At = (i64, Vec<u8>, i64);

/// A lane's windows waiting to close, by when they close, with their store ids.
pub(super) struct Waiting<I> {
    index: Option<BTreeMap<At, I>>,
}

impl<I> Default for Waiting<I> {
    fn default() -> Self {
        Waiting { index: None }
    }
}

impl<I> Waiting<I> {
    /// Whether the index has been built since the last start or abort.
    pub fn loaded(&self) -> bool {
        self.index.is_some()
    }

    /// Builds the index from the store's windows of this lane.
    pub fn load<K: StoreKey>(&mut self, windows: impl Iterator<Item = (i64, K, i64, I)>) {
        let mut index = BTreeMap::new();
        for (close, key, tiebreak, id) in windows {
            index.insert((close, key_bytes(&key), tiebreak), id);
        }
        self.index = Some(index);
    }

    /// Forgets the index (the aborted epoch's changes are gone).
    pub fn reset(&mut self) {
        self.index = None;
    }

    /// A window of `key` that closes at `close` waits (if the index is built; otherwise the
    /// store has it).
    pub fn add<K: StoreKey>(&mut self, close: i64, key: &K, tiebreak: i64, id: I) {
        if let Some(index) = &mut self.index {
            index.insert((close, key_bytes(key), tiebreak), id);
        }
    }

    /// A window no longer waits (merged into another).
    pub fn remove<K: StoreKey>(&mut self, close: i64, key: &K, tiebreak: i64) {
        if let Some(index) = &mut self.index {
            index.remove(&(close, key_bytes(key), tiebreak));
        }
    }

    /// Takes the windows that close at or before `time`, in order of closing, then key.
    pub fn due(&mut self, time: i64) -> Vec<I> {
        let mut due = Vec::new();
        if let Some(index) = &mut self.index {
            while let Some(entry) = index.first_entry() {
                if entry.key().0 > time {
                    break;
                }
                due.push(entry.remove());
            }
        }
        due
    }
}
