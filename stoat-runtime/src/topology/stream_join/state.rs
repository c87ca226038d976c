//! A stream-stream join's state on one lane: both sides' stores of recent records by (key,
//! timestamp), and an index of this lane's records by time, to emit waiting records when their
//! windows close and to expire records past retention without scanning the stores.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{JoinWindows, Side};
use crate::error::StoreError;
use crate::lane::lane_of;
use crate::operator::{Data, Key};
use crate::state::{key_bytes, StoreDelta, StoreKey, StoreValue};
use crate::topology::window::window_owner;
use crate::topology::{ErasedState, LaneTable, SlotId, StateSlot};

/// One stored record: its value, and whether it still waits for a partner (to be emitted alone
/// when its window closes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Held<V> {
    pub(super) value: V,
    pub(super) pending: bool,
}

/// A side's records by (key, timestamp), several per pair in arrival order.
pub(super) type SideTable<K, V> = LaneTable<(K, i64), Vec<Held<V>>>;

/// Where a stored record is in time: (timestamp, side, encoded key).
type At = (i64, Side, Vec<u8>);

/// When a waiting record's window closes, and the record: (close, side, timestamp). Records
/// are emitted alone in this order, so that records that close in different epochs come out in
/// the order they would in one.
type Due = (i64, Side, i64);

/// A lane's records of its own keys by time, to close and expire them without scanning the
/// stores. Rebuilt from the stores after a start or an aborted epoch.
pub(super) struct TimeIndex<K> {
    /// Every stored (timestamp, side, key), forgotten once out of retention.
    stored: BTreeMap<At, K>,
    /// Records that waited for a partner when stored, by (close, side, key, timestamp); one
    /// matched since is skipped when due.
    pending: BTreeMap<(i64, Side, Vec<u8>, i64), K>,
    /// The same, per key.
    waiting: HashMap<K, BTreeSet<Due>>,
}

impl<K: Key + StoreKey> TimeIndex<K> {
    fn new() -> Self {
        TimeIndex { stored: BTreeMap::new(), pending: BTreeMap::new(), waiting: HashMap::new() }
    }

    /// Adds `key`'s record of `side` at `ts`, waiting until `close` if it waits.
    pub(super) fn add(&mut self, side: Side, key: &K, ts: i64, waits: Option<i64>) {
        let bytes = key_bytes(key);
        if let Some(close) = waits {
            self.pending.insert((close, side, bytes.clone(), ts), key.clone());
            self.waiting.entry(key.clone()).or_default().insert((close, side, ts));
        }
        self.stored.insert((ts, side, bytes), key.clone());
    }

    /// Forgets that `key`'s record `due` waits.
    fn forget(&mut self, key: &K, (close, side, ts): Due) {
        let bytes = key_bytes(key);
        self.pending.remove(&(close, side, bytes, ts));
        if let Some(set) = self.waiting.get_mut(key) {
            set.remove(&(close, side, ts));
            if set.is_empty() {
                self.waiting.remove(key);
            }
        }
    }
}

/// A lane's state of one join: both sides' stores and the time index of its keys.
pub(crate) struct JoinState<K, L, R> {
    pub(super) left: SideTable<K, L>,
    pub(super) right: SideTable<K, R>,
    pub(super) index: TimeIndex<K>,
    /// Whether `index` reflects the stores.
    pub(super) indexed: bool,
}

/// A pair to join (a record alone has `None` on the other side), with its key and timestamp,
/// and whether it comes from the record being processed (else from the store: a record that
/// waited).
pub(super) type Pair<K, L, R> = (K, Option<L>, Option<R>, i64, bool);

impl<K: Key + StoreKey, L: Data + StoreValue, R: Data + StoreValue> JoinState<K, L, R> {
    pub(super) fn slot((left, right): (&'static str, &'static str)) -> StateSlot {
        let specs = vec![
            SideTable::<K, L>::spec(left, "StreamJoin", 1),
            SideTable::<K, R>::spec(right, "StreamJoin", 1),
        ];
        let id = SlotId::Keyed(left, std::any::TypeId::of::<Self>());
        StateSlot::custom(id, specs, move |env| {
            Ok(Box::new(JoinState {
                left: SideTable::<K, L>::open(env, left, window_owner::<K>)?,
                right: SideTable::<K, R>::open(env, right, window_owner::<K>)?,
                index: TimeIndex::new(),
                indexed: false,
            }) as Box<dyn ErasedState>)
        })
    }

    pub(super) fn ensure_index(
        &mut self,
        windows: &JoinWindows,
        (lane, lanes): (usize, usize),
    ) -> Result<(), StoreError> {
        if self.indexed {
            return Ok(());
        }
        let mut index = TimeIndex::new();
        for ((key, ts), held) in self.left.table.iter()? {
            if lane_of(&key, lanes) == lane {
                let waits = held.iter().any(|h| h.pending).then(|| windows.close(Side::Left, ts));
                index.add(Side::Left, &key, ts, waits);
            }
        }
        for ((key, ts), held) in self.right.table.iter()? {
            if lane_of(&key, lanes) == lane {
                let waits = held.iter().any(|h| h.pending).then(|| windows.close(Side::Right, ts));
                index.add(Side::Right, &key, ts, waits);
            }
        }
        self.index = index;
        self.indexed = true;
        Ok(())
    }

    /// Takes `key`'s records `due` that still wait, into `out`.
    fn take_waiting(
        &mut self,
        key: &K,
        due: Due,
        lane: (usize, usize),
        out: &mut Vec<Pair<K, L, R>>,
    ) -> Result<(), StoreError> {
        self.index.forget(key, due);
        let (_, side, ts) = due;
        match side {
            Side::Left => take_from(&mut self.left, key, ts, lane, |v| {
                out.push((key.clone(), Some(v), None, ts, false))
            }),
            Side::Right => take_from(&mut self.right, key, ts, lane, |v| {
                out.push((key.clone(), None, Some(v), ts, false))
            }),
        }
    }

    /// Takes `key`'s waiting records whose windows stream time `st` has closed, in order of
    /// closing.
    pub(super) fn close_key(
        &mut self,
        key: &K,
        st: i64,
        lane: (usize, usize),
        out: &mut Vec<Pair<K, L, R>>,
    ) -> Result<(), StoreError> {
        let Some(set) = self.index.waiting.get(key) else { return Ok(()) };
        let due: Vec<Due> = set.iter().copied().take_while(|&(close, _, _)| close < st).collect();
        for due in due {
            self.take_waiting(key, due, lane, out)?;
        }
        Ok(())
    }

    /// At the epoch's end: takes every waiting record whose window has closed at stream time
    /// `st`, and deletes the records out of retention.
    pub(super) fn close_all(
        &mut self,
        st: i64,
        windows: &JoinWindows,
        lane: (usize, usize),
        out: &mut Vec<Pair<K, L, R>>,
    ) -> Result<(), StoreError> {
        let due: Vec<(Due, K)> = self
            .index
            .pending
            .iter()
            .take_while(|((close, ..), _)| *close < st)
            .map(|(&(close, side, _, ts), key)| ((close, side, ts), key.clone()))
            .collect();
        for (due, key) in due {
            self.take_waiting(&key, due, lane, out)?;
        }
        let horizon = st.saturating_sub(windows.retention());
        while let Some(first) = self.index.stored.first_entry() {
            if first.key().0 >= horizon {
                break;
            }
            let ((ts, side, _), key) = first.remove_entry();
            match side {
                Side::Left => self.left.on_lane(lane).delete(&(key, ts))?,
                Side::Right => self.right.on_lane(lane).delete(&(key, ts))?,
            }
        }
        Ok(())
    }
}

/// Marks `key`'s records at `ts` in `table` as no longer waiting, handing each that waited to
/// `emit`.
fn take_from<K: Key + StoreKey, V: Data + StoreValue>(
    table: &mut SideTable<K, V>,
    key: &K,
    ts: i64,
    lane: (usize, usize),
    mut emit: impl FnMut(V),
) -> Result<(), StoreError> {
    let id = (key.clone(), ts);
    let table = table.on_lane(lane);
    let Some(mut held) = table.get(&id)? else { return Ok(()) };
    let mut changed = false;
    for h in held.iter_mut().filter(|h| h.pending) {
        h.pending = false;
        changed = true;
        emit(h.value.clone());
    }
    if changed {
        table.put(id, held)?;
    }
    Ok(())
}

impl<K: Key + StoreKey, L: 'static, R: 'static> ErasedState for JoinState<K, L, R>
where
    L: Data + StoreValue,
    R: Data + StoreValue,
{
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn end_batch(&mut self) {
        ErasedState::end_batch(&mut self.left);
        ErasedState::end_batch(&mut self.right);
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.left.seal(out)?;
        self.right.seal(out)
    }
    fn discard(&mut self) {
        ErasedState::discard(&mut self.left);
        ErasedState::discard(&mut self.right);
    }
}
