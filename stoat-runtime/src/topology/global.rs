//! Global tables and stream-global-table joins. Every update of a global table goes to every
//! lane, in dispatch order with the lane's other input, and each lane applies it to its own
//! copy of the epoch's changes; only the lane that owns the key writes it to the store (and its
//! changelog). So a stream record on any lane looks any key up and sees exactly the updates
//! dispatched before it: no re-keying of the stream, no co-partitioning, and a result that does
//! not depend on the number of lanes or on when a lane commits.

use std::any::Any;
use std::sync::Arc;

use super::aggregate::{claim, Entry};
use super::{lock, ErasedState, SlotId, StateSlot, Stream, Topology};
use crate::codec::Nullable;
use crate::error::{BoxError, Panicked, Result, StoreError};
use crate::lane::{lane_of, LaneCx, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Record};
use crate::state::{StateEnv, Store, StoreDecl, StoreDelta, StoreKey, StoreValue, Table};

/// A table every lane reads in full (Kafka Streams' `GlobalKTable`), kept in a named store.
pub struct GlobalTable<K, V> {
    slot: Option<usize>,
    store: &'static str,
    _types: std::marker::PhantomData<fn(K, V)>,
}

impl<K, V> std::fmt::Debug for GlobalTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalTable").field("store", &self.store).finish_non_exhaustive()
    }
}

/// A lane's copy of a global table: the store, with this epoch's updates of every key buffered;
/// at the barrier only the keys this lane owns are handed over.
struct GlobalCopy<K, V> {
    table: Table<K, Entry<V>>,
    /// (this lane, lanes), known once the lane has applied an update.
    owner: Option<(usize, usize)>,
}

impl<K: StoreKey + Key, V: StoreValue> ErasedState for GlobalCopy<K, V> {
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
        if let Some((lane, lanes)) = self.owner {
            self.table.retain_writes(|k| lane_of(k, lanes) == lane);
        }
        Store::seal(&mut self.table, out)
    }
}

impl Topology {
    /// The global table of `topic`'s records in the store `store`: upserts, tombstones delete,
    /// null keys dropped and counted. Every lane sees every update, in dispatch order with its
    /// other input (Kafka Streams' `globalTable`).
    pub fn global_table<K, V>(&self, topic: &super::Topic<K, V>, store: &'static str) -> GlobalTable<K, V>
    where
        K: Key + StoreKey,
        V: Data + StoreValue,
    {
        let updates = self.source_of(topic.name(), topic.key_codec(), Nullable(topic.value_codec()), true);
        let claimed = claim(&updates, store, "global table");
        let id = SlotId::Keyed(store, std::any::TypeId::of::<GlobalCopy<K, V>>());
        let slot = claimed.then(|| {
            let mut graph = lock(&self.graph);
            let decl = StoreDecl { name: store, owner: store, declared: "GlobalTable", version: 1 };
            let spec = <Table<K, Entry<V>> as Store>::spec(decl);
            let open = move |env: &StateEnv| {
                let table = <Table<K, Entry<V>> as Store>::open(env, store)?;
                Ok(Box::new(GlobalCopy::<K, V> { table, owner: None }) as Box<dyn ErasedState>)
            };
            graph.states.push(StateSlot::custom(id, vec![spec], open));
            graph.states.len() - 1
        });
        if let Some(slot) = slot {
            updates.outlet.add(Arc::new(move |_| {
                Box::new(GlobalUpsert::<K, V> { slot, _types: std::marker::PhantomData })
            }));
        }
        GlobalTable { slot, store, _types: std::marker::PhantomData }
    }
}

impl<K: Key, V: Data> Stream<K, V> {
    /// Joins each record to the global table's entry for `key(key, value)`:
    /// `joiner(value, table_value)`, with the record's key and timestamp; a record whose table
    /// key is missing gives nothing (Kafka Streams' `join` with a `GlobalKTable`).
    pub fn join_global<GK, T, R>(
        &self,
        table: &GlobalTable<GK, T>,
        key: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(V, T) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        GK: Key + StoreKey,
        T: Data + StoreValue,
        R: Data,
    {
        self.lookup_global(table, "join_global", key, move |v, t: Option<T>| t.map(|t| joiner(v, t)))
    }

    /// Like [`Stream::join_global`], but a record whose table key is missing is joined to `None`
    /// (Kafka Streams' `leftJoin` with a `GlobalKTable`).
    pub fn left_join_global<GK, T, R>(
        &self,
        table: &GlobalTable<GK, T>,
        key: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(V, Option<T>) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        GK: Key + StoreKey,
        T: Data + StoreValue,
        R: Data,
    {
        self.lookup_global(table, "left_join_global", key, move |v, t| Some(joiner(v, t)))
    }

    fn lookup_global<GK, T, R>(
        &self,
        table: &GlobalTable<GK, T>,
        what: &'static str,
        key: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        f: impl Fn(V, Option<T>) -> Option<R> + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        GK: Key + StoreKey,
        T: Data + StoreValue,
        R: Data,
    {
        let next = self.derive::<K, R>(format!("the output of `{what}` with global table `{}`", table.store));
        let Some(slot) = table.slot else { return next };
        let (key, f) = (Arc::new(key), Arc::new(f));
        let outlet = Arc::clone(&next.outlet);
        self.outlet.add(Arc::new(move |lanes| {
            Box::new(GlobalLookup {
                what,
                slot,
                key: Arc::clone(&key),
                f: Arc::clone(&f),
                next: outlet.instantiate(lanes),
                _types: std::marker::PhantomData::<fn(GK, T)>,
            })
        }));
        next
    }
}

/// Applies a global table's updates to this lane's copy.
struct GlobalUpsert<K, V> {
    slot: usize,
    _types: std::marker::PhantomData<fn(K, V)>,
}

impl<K: Key + StoreKey, V: Data + StoreValue> Push<K, Option<V>> for GlobalUpsert<K, V> {
    fn push(&mut self, env: Envelope<K, Option<V>>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let (lane, lanes) = (cx.lane, cx.lanes());
        let applied = (|| -> std::result::Result<(), BoxError> {
            let cell = cx.states.get_mut(self.slot).ok_or("no state slot for the global table")?;
            let copy = cell
                .get_mut()
                .as_any_mut()
                .downcast_mut::<GlobalCopy<K, V>>()
                .ok_or("the global table's slot holds something else")?;
            copy.owner = Some((lane, lanes));
            match record.value {
                Some(value) => copy.table.put(record.key, Entry { value, timestamp: record.timestamp })?,
                None => copy.table.delete(&record.key)?,
            }
            Ok(())
        })();
        match applied {
            Ok(()) => Ok(()),
            Err(e) => cx.operator_error("global table", origin, e),
        }
    }
    fn flush(&mut self, _: &mut LaneCx) -> Result<()> {
        Ok(())
    }
}

/// Looks each record's table key up in this lane's copy of a global table and joins.
struct GlobalLookup<KF, F, K, GK, T, R> {
    what: &'static str,
    slot: usize,
    key: Arc<KF>,
    f: Arc<F>,
    next: Box<dyn Push<K, R>>,
    _types: std::marker::PhantomData<fn(GK, T)>,
}

impl<KF, F, K, V, GK, T, R> Push<K, V> for GlobalLookup<KF, F, K, GK, T, R>
where
    KF: Fn(&K, &V) -> GK + Send + Sync + 'static,
    F: Fn(V, Option<T>) -> Option<R> + Send + Sync + 'static,
    K: Send + 'static,
    V: Send + 'static,
    GK: Key + StoreKey,
    T: Data + StoreValue,
    R: Send + 'static,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        let joined = (|| -> std::result::Result<Option<R>, BoxError> {
            let table_key = Panicked::catch(|| (self.key)(&key, &value))?;
            let guard = Call::on_states(&cx.states).borrow(self.slot)?;
            let copy = guard
                .as_any()
                .downcast_ref::<GlobalCopy<GK, T>>()
                .ok_or("the global table's slot holds something else")?;
            let found = copy.table.get(&table_key)?.map(|e| e.value);
            drop(guard);
            Ok(Panicked::catch(|| (self.f)(value, found))?)
        })();
        match joined {
            Ok(Some(value)) => {
                self.next.push(Envelope { record: Record { key, value, timestamp, headers }, origin }, cx)
            }
            Ok(None) => Ok(()),
            Err(e) => cx.operator_error(self.what, origin, e),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}
