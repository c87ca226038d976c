//! Per-lane copies of DSL stores. A [`LaneTable`] is a lane's view of one store: every write the
//! lane makes this epoch is visible to its own reads, but at the barrier it hands over only the
//! writes of the keys it owns. That lets a store be *replicated*: every lane applies every update
//! of a global table (or of a table a foreign-key join reads), in dispatch order with its other
//! input, so any lane reads any key as of the record it is processing, and still each key has
//! exactly one writer in the epoch's commit.

use std::any::Any;

use serde::{Deserialize, Serialize};

use super::{ErasedState, SlotId, StateSlot};
use crate::error::{BoxError, StoreError};
use crate::operator::{Call, Key};
use crate::state::{StateEnv, Store, StoreDecl, StoreDelta, StoreKey, StoreSpec, StoreValue, Table};

/// What a table or an aggregation stores per key: the value and its timestamp (for an
/// aggregate, the largest it has seen).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry<A> {
    pub value: A,
    pub timestamp: i64,
}

/// Which lane owns a store key among `lanes`.
pub(crate) type Owner<K> = fn(&K, usize) -> usize;

/// A lane's copy of a store: the table with this epoch's writes, of which only the owned keys'
/// are sealed.
pub(crate) struct LaneTable<K, V> {
    pub table: Table<K, V>,
    owner: Owner<K>,
    /// (this lane, lanes), known once the lane has written.
    lane: Option<(usize, usize)>,
}

impl<K: StoreKey + Key, V: StoreValue> LaneTable<K, V> {
    /// The lane slot of store `store`, keyed by `K`, holding `V`s, whose keys `owner` assigns
    /// to lanes. `declared` and `version` name its schema.
    pub fn slot(store: &'static str, declared: &'static str, version: u32, owner: Owner<K>) -> StateSlot {
        let id = SlotId::Keyed(store, std::any::TypeId::of::<LaneTable<K, V>>());
        Self::slot_of(id, store, declared, version, owner, |copy| Box::new(copy))
    }

    /// The lane slot `id` of store `store`, holding what `wrap` makes of the lane's copy.
    pub fn slot_of(
        id: SlotId,
        store: &'static str,
        declared: &'static str,
        version: u32,
        owner: Owner<K>,
        wrap: impl Fn(LaneTable<K, V>) -> Box<dyn ErasedState> + Send + Sync + 'static,
    ) -> StateSlot {
        StateSlot::custom(id, vec![Self::spec(store, declared, version)], move |env: &StateEnv| {
            Ok(wrap(Self::open(env, store, owner)?))
        })
    }

    /// The schema of store `store` (`declared` and `version` name it).
    pub fn spec(store: &'static str, declared: &'static str, version: u32) -> StoreSpec {
        <Table<K, V> as Store>::spec(StoreDecl { name: store, owner: store, declared, version })
    }

    /// A lane's copy of store `store`, whose keys `owner` assigns to lanes.
    pub fn open(env: &StateEnv, store: &'static str, owner: Owner<K>) -> Result<Self, StoreError> {
        Ok(LaneTable { table: <Table<K, V> as Store>::open(env, store)?, owner, lane: None })
    }

    /// The copy, for writing on lane `lane` of `lanes`.
    pub fn on_lane(&mut self, (lane, lanes): (usize, usize)) -> &mut Table<K, V> {
        self.lane = Some((lane, lanes));
        &mut self.table
    }

    /// Reads the copy in lane slot `slot`.
    pub fn read<R>(
        call: &Call<'_>,
        slot: usize,
        f: impl FnOnce(&Table<K, V>) -> Result<R, StoreError>,
    ) -> Result<R, BoxError> {
        Self::read_in::<Self, R>(call, slot, f)
    }

    /// Writes the copy in lane slot `slot`, on lane `lane` of `lanes`.
    pub fn write<R>(
        call: &Call<'_>,
        slot: usize,
        lane: (usize, usize),
        f: impl FnOnce(&mut Table<K, V>) -> Result<R, StoreError>,
    ) -> Result<R, BoxError> {
        Self::write_in::<Self, R>(call, slot, lane, f)
    }

    /// Reads the copy held by the `S` in lane slot `slot`.
    pub fn read_in<S: HoldsCopy<K, V>, R>(
        call: &Call<'_>,
        slot: usize,
        f: impl FnOnce(&Table<K, V>) -> Result<R, StoreError>,
    ) -> Result<R, BoxError> {
        let guard = call.borrow(slot)?;
        let holder = guard.as_any().downcast_ref::<S>().ok_or_else(|| mismatch(slot))?;
        Ok(f(&holder.copy().table)?)
    }

    /// Writes the copy held by the `S` in lane slot `slot`, on lane `lane` of `lanes`.
    pub fn write_in<S: HoldsCopy<K, V>, R>(
        call: &Call<'_>,
        slot: usize,
        lane: (usize, usize),
        f: impl FnOnce(&mut Table<K, V>) -> Result<R, StoreError>,
    ) -> Result<R, BoxError> {
        let mut guard = call.borrow_mut(slot)?;
        let holder = guard.as_any_mut().downcast_mut::<S>().ok_or_else(|| mismatch(slot))?;
        Ok(f(holder.copy_mut().on_lane(lane))?)
    }
}

/// A lane slot's content that holds a store copy: the copy itself, or a wrapper of it (a
/// table's `TableView`).
pub(crate) trait HoldsCopy<K, V>: Any {
    fn copy(&self) -> &LaneTable<K, V>;
    fn copy_mut(&mut self) -> &mut LaneTable<K, V>;
}

impl<K: 'static, V: 'static> HoldsCopy<K, V> for LaneTable<K, V> {
    fn copy(&self) -> &LaneTable<K, V> {
        self
    }
    fn copy_mut(&mut self) -> &mut LaneTable<K, V> {
        self
    }
}

fn mismatch(slot: usize) -> String {
    format!("state slot {slot} holds another store than the DSL expects")
}

impl<K: StoreKey + Key, V: StoreValue> ErasedState for LaneTable<K, V> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn end_batch(&mut self) {
        Store::end_batch(&mut self.table)
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        match self.lane {
            Some((lane, lanes)) => {
                let owner = self.owner;
                self.table.seal_where(out, |k| owner(k, lanes) == lane)
            }
            None => Store::seal(&mut self.table, out),
        }
    }
    fn discard(&mut self) {
        Store::discard(&mut self.table)
    }
}
