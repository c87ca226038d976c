//! [`Keyed<V>`]: state scoped to the key of the record being processed. An operator takes it as
//! `&mut Keyed<V>`; it reads and writes one value per key in a store named after the operator,
//! and can touch no other key, so no two lanes ever write the same entry.

use std::any::Any;
use std::cell::{Ref, RefMut};

use super::context::Call;
use super::param::{ParamMut, ParamRef, Registry};
use super::Key;
use crate::error::{BoxError, StoreError};
use crate::state::{StateEnv, Store, StoreDecl, StoreDelta, StoreKey, StoreValue, Table};
use crate::topology::{ErasedState, SlotId, StateSlot};

/// The current record's slot of a per-key store: `get`, `set`, `delete` touch the entry of the
/// key being processed and no other. The store is named after the operator (its changelog is
/// `<app>-<operator>-changelog`); every key's value has type `V`.
///
/// ```ignore
/// use stoat::prelude::*;
///
/// #[stoat::operator]
/// fn running_total(amount: u64, total: &mut Keyed<u64>) -> Result<u64, StoreError> {
///     let sum = total.get()?.unwrap_or(0) + amount;
///     total.set(sum)?;
///     Ok(sum)
/// }
/// ```
pub struct Keyed<V> {
    store: Box<dyn CurrentKey<V>>,
    /// Written (set or deleted) since the runtime last asked (state expiry counts from writes).
    written: bool,
}

impl<V> std::fmt::Debug for Keyed<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed").field("store", &self.store.name()).finish()
    }
}

impl<V: StoreValue> Keyed<V> {
    /// The current key's value, including a write made earlier in this epoch.
    pub fn get(&self) -> Result<Option<V>, StoreError> {
        self.store.get()
    }
    /// Sets the current key's value.
    pub fn set(&mut self, value: V) -> Result<(), StoreError> {
        self.written = true;
        self.store.set(value)
    }
    /// Deletes the current key's value (a tombstone in the changelog).
    pub fn delete(&mut self) -> Result<(), StoreError> {
        self.written = true;
        self.store.delete()
    }
    /// The store's name.
    pub fn name(&self) -> &'static str {
        self.store.name()
    }
}

/// A table with the key of the current call; type-erased over the key type.
trait CurrentKey<V>: Send {
    fn name(&self) -> &'static str;
    fn set_key(&mut self, key: &dyn Any) -> bool;
    fn get(&self) -> Result<Option<V>, StoreError>;
    fn set(&mut self, value: V) -> Result<(), StoreError>;
    fn delete(&mut self) -> Result<(), StoreError>;
    fn end_batch(&mut self);
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
    fn discard(&mut self);
}

struct KeyedTable<K, V> {
    table: Table<K, V>,
    key: Option<K>,
}

impl<K: StoreKey + Key, V: StoreValue> KeyedTable<K, V> {
    fn key(&self) -> Result<&K, StoreError> {
        self.key.as_ref().ok_or_else(|| StoreError::NoKey(self.table.name().to_string()))
    }
}

impl<K: StoreKey + Key, V: StoreValue> CurrentKey<V> for KeyedTable<K, V> {
    fn name(&self) -> &'static str {
        self.table.name()
    }
    fn set_key(&mut self, key: &dyn Any) -> bool {
        match key.downcast_ref::<K>() {
            Some(k) => {
                match &mut self.key {
                    Some(current) if current == k => {}
                    slot => *slot = Some(k.clone()),
                }
                true
            }
            None => false,
        }
    }
    fn get(&self) -> Result<Option<V>, StoreError> {
        self.table.get(self.key()?)
    }
    fn set(&mut self, value: V) -> Result<(), StoreError> {
        let key = self.key()?.clone();
        self.table.put(key, value)
    }
    fn delete(&mut self) -> Result<(), StoreError> {
        let key = self.key()?.clone();
        self.table.delete(&key)
    }
    fn end_batch(&mut self) {
        Store::end_batch(&mut self.table)
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.key = None;
        Store::seal(&mut self.table, out)
    }
    fn discard(&mut self) {
        self.key = None;
        Store::discard(&mut self.table)
    }
}

impl<V: 'static> ErasedState for Keyed<V> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn end_batch(&mut self) {
        self.store.end_batch()
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.store.seal(out)
    }
    fn discard(&mut self) {
        self.store.discard()
    }
    fn expire_key(&mut self, key: &dyn Any) -> Result<(), StoreError> {
        if self.store.set_key(key) {
            self.store.delete()?;
        }
        Ok(())
    }
    fn take_written(&mut self) -> bool {
        std::mem::take(&mut self.written)
    }
}

/// The registering operator's `Keyed` slot: its store, named after it, keyed by `K`.
fn register<K: StoreKey + Key, V: StoreValue>(
    registry: &mut Registry<'_>,
    mutable: bool,
) -> Result<usize, String> {
    let (name, version) = (registry.operator(), registry.version());
    if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
        return Err(format!(
            "operator `{name}` keeps key-scoped state (`Keyed`), but its stream has no key (`()`): records without a key are spread over the lanes, so one entry would be written by several; give the records a key first (e.g. `key_by`)"
        ));
    }
    let id = SlotId::Keyed(name, std::any::TypeId::of::<(K, V)>());
    let make = move || {
        let decl = StoreDecl { name, owner: name, declared: "Keyed", version };
        let spec = <Table<K, V> as Store>::spec(decl);
        StateSlot::custom(id, vec![spec], move |env: &StateEnv| {
            let table = <Table<K, V> as Store>::open(env, name)?;
            let store: Box<dyn CurrentKey<V>> = Box::new(KeyedTable { table, key: None });
            Ok(Box::new(Keyed { store, written: false }) as Box<dyn ErasedState>)
        })
    };
    registry.slot(id, make, mutable, "Keyed")
}

impl<K: StoreKey + Key, V: StoreValue> ParamRef<K> for Keyed<V> {
    type Slot = usize;
    type Guard<'c> = Ref<'c, Keyed<V>>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        register::<K, V>(registry, false)
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, key: &K) -> Result<Ref<'c, Keyed<V>>, BoxError> {
        // Point the store at this record's key, then hand out a shared borrow.
        drop(<Keyed<V> as ParamMut<K>>::fetch(slot, call, key)?);
        let state = call.borrow(*slot)?;
        Ok(Ref::filter_map(state, |s| s.as_any().downcast_ref::<Keyed<V>>())
            .map_err(|_| format!("state slot {slot} does not hold a `Keyed` store"))?)
    }
}

impl<K: StoreKey + Key, V: StoreValue> ParamMut<K> for Keyed<V> {
    type Slot = usize;
    type Guard<'c> = RefMut<'c, Keyed<V>>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        register::<K, V>(registry, true)
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, key: &K) -> Result<RefMut<'c, Keyed<V>>, BoxError> {
        let state = call.borrow_mut(*slot)?;
        let mut keyed = RefMut::filter_map(state, |s| s.as_any_mut().downcast_mut::<Keyed<V>>())
            .map_err(|_| format!("state slot {slot} does not hold a `Keyed` store"))?;
        if !keyed.store.set_key(key) {
            return Err(format!("store `{}` holds another key type", keyed.name()).into());
        }
        Ok(keyed)
    }
}
