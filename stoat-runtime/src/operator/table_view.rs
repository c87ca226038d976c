//! [`TableView<K, V>`]: an operator reads a table of the DSL (`Topology::table`, `to_table`,
//! `global_table`) by taking `&TableView<K, V>`. The table is found by its key and value types,
//! as a system parameter is in bevy: a topology with one table of `String` to `Customer` needs
//! no name to find it.

use std::any::{Any, TypeId};
use std::cell::{Cell, Ref};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::context::Call;
use super::param::{ParamRef, Registry};
use super::Key;
use crate::error::{BoxError, StoreError};
use crate::lane::lane_of;
use crate::state::{StoreDelta, StoreKey, StoreValue, Table};
use crate::topology::{Entry, ErasedState, HoldsCopy, LaneTable, SlotId, StateSlot};

/// A table of the topology, read by an operator: `get(key)` is the key's current value, as of
/// the record being processed (every update dispatched before it, this epoch's included).
///
/// A table is kept on the lanes that own its keys, so an operator reads the key of the record it
/// processes (its lane owns it); a global table, which every lane follows, can be read under
/// any key. Reading another key of a plain table is an error naming the table, since the value
/// would depend on when the other lane commits.
///
/// ```ignore
/// use stoat::prelude::*;
///
/// #[stoat::operator]
/// fn greet(#[key] id: &String, visit: String, customers: &TableView<String, Customer>) -> Result<String, StoreError> {
///     let name = customers.get(id)?.map_or("stranger".into(), |c| c.name);
///     Ok(format!("{visit}: hello {name}"))
/// }
/// ```
pub struct TableView<K, V> {
    pub(crate) copy: LaneTable<K, Entry<V>>,
    store: &'static str,
    /// Whether every lane follows every update (a global table, or a table a foreign-key join
    /// reads).
    replicated: Arc<AtomicBool>,
    /// The reading lane and the number of lanes, while an operator holds it.
    reader: Cell<Option<(usize, usize)>>,
}

impl<K, V> std::fmt::Debug for TableView<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableView").field("store", &self.store).finish_non_exhaustive()
    }
}

impl<K: StoreKey + Key, V: StoreValue> TableView<K, V> {
    /// The key's current value.
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        Ok(self.get_with_timestamp(key)?.map(|(v, _)| v))
    }

    /// The key's current value and the timestamp of the update that set it.
    pub fn get_with_timestamp(&self, key: &K) -> Result<Option<(V, i64)>, StoreError> {
        if let Some((lane, lanes)) = self.reader.get() {
            let owner = lane_of(key, lanes);
            if owner != lane && !self.replicated.load(Ordering::Relaxed) {
                return Err(StoreError::NotOwned { store: self.store.to_string(), lane, owner });
            }
        }
        Ok(self.copy.table.get(key)?.map(|e| (e.value, e.timestamp)))
    }

    /// The table's store.
    pub fn name(&self) -> &'static str {
        self.store
    }

    /// The lane slot of a table kept in `store` (`declared` and `version` name its schema).
    pub(crate) fn slot(
        store: &'static str,
        declared: &'static str,
        version: u32,
        replicated: Arc<AtomicBool>,
    ) -> StateSlot {
        LaneTable::<K, Entry<V>>::slot_of(
            SlotId::Keyed(store, TypeId::of::<Self>()),
            store,
            declared,
            version,
            lane_of::<K>,
            move |copy| {
                Box::new(TableView {
                    copy,
                    store,
                    replicated: Arc::clone(&replicated),
                    reader: Cell::new(None),
                })
            },
        )
    }

    /// Reads the table in lane slot `slot` (a DSL node).
    pub(crate) fn read<R>(
        call: &Call<'_>,
        slot: usize,
        f: impl FnOnce(&Table<K, Entry<V>>) -> Result<R, StoreError>,
    ) -> Result<R, BoxError> {
        LaneTable::read_in::<Self, R>(call, slot, f)
    }

    /// Writes the table in lane slot `slot`, on lane `lane` of `lanes` (a DSL node).
    pub(crate) fn write<R>(
        call: &Call<'_>,
        slot: usize,
        lane: (usize, usize),
        f: impl FnOnce(&mut Table<K, Entry<V>>) -> Result<R, StoreError>,
    ) -> Result<R, BoxError> {
        LaneTable::write_in::<Self, R>(call, slot, lane, f)
    }
}

impl<K: 'static, V: 'static> HoldsCopy<K, Entry<V>> for TableView<K, V> {
    fn copy(&self) -> &LaneTable<K, Entry<V>> {
        &self.copy
    }
    fn copy_mut(&mut self) -> &mut LaneTable<K, Entry<V>> {
        &mut self.copy
    }
}

fn mismatch(slot: usize) -> String {
    format!("state slot {slot} holds another store than a table")
}

impl<K: StoreKey + Key, V: StoreValue> ErasedState for TableView<K, V> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn end_batch(&mut self) {
        self.reader.set(None);
        self.copy.end_batch()
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.copy.seal(out)
    }
    fn discard(&mut self) {
        self.reader.set(None);
        self.copy.discard()
    }
}

impl<K0, K: StoreKey + Key, V: StoreValue> ParamRef<K0> for TableView<K, V> {
    type Slot = usize;
    type Guard<'c> = Ref<'c, TableView<K, V>>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        let what = format!("&TableView<{}, {}>", std::any::type_name::<K>(), std::any::type_name::<V>());
        registry.existing(|id| matches!(id, SlotId::Keyed(_, t) if *t == TypeId::of::<Self>()), &what)
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, _: &K0) -> Result<Ref<'c, Self>, BoxError> {
        let state = call.borrow(*slot)?;
        let view =
            Ref::filter_map(state, |s| s.as_any().downcast_ref::<Self>()).map_err(|_| mismatch(*slot))?;
        view.reader.set(Some((call.context.lane, call.context.lanes)));
        Ok(view)
    }
}
