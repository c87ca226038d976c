//! Global tables and stream-global-table joins. Every update of a global table goes to every
//! lane, in dispatch order with the lane's other input, and each lane applies it to its own
//! copy of the epoch's changes; only the lane that owns the key writes it to the store (and its
//! changelog). So a stream record on any lane looks any key up and sees exactly the updates
//! dispatched before it: no re-keying of the stream, no co-partitioning, and a result that does
//! not depend on the number of lanes or on when a lane commits.

use std::sync::Arc;

use super::aggregate::claim;
use super::replica::Entry;
use super::{lock, Stream, Topology};
use crate::codec::Nullable;
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{LaneCx, Push};
use crate::operator::{Call, Data, Key, TableView};
use crate::record::{Envelope, Record};
use crate::state::{StoreKey, StoreValue};

/// A table every lane reads in full (Kafka Streams' `GlobalKTable`), kept in a named store.
pub struct GlobalTable<K, V> {
    slot: Option<usize>,
    store: &'static str,
    /// Its topic's node in the topology's description.
    node: usize,
    _types: std::marker::PhantomData<fn(K, V)>,
}

impl<K, V> std::fmt::Debug for GlobalTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalTable").field("store", &self.store).finish_non_exhaustive()
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
        let updates = self.source_of(
            topic.name(),
            topic.key_codec(),
            Nullable(topic.value_codec()),
            Arc::new(true.into()),
            true,
            None,
        );
        let claimed = claim(&updates, store, "global table");
        let slot = claimed.then(|| {
            let mut graph = lock(&self.graph);
            graph.states.push(TableView::<K, V>::slot(store, "GlobalTable", 1, Arc::new(true.into())));
            graph.states.len() - 1
        });
        if let Some(slot) = slot {
            updates.outlet.add(Arc::new(move |_| {
                Box::new(GlobalUpsert::<K, V> { slot, _types: std::marker::PhantomData })
            }));
        }
        GlobalTable { slot, store, node: updates.node, _types: std::marker::PhantomData }
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
        lock(&self.graph).described.link(table.node, next.node);
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
        let lane = (cx.lane, cx.lanes());
        let applied = TableView::<K, V>::write(&Call::on_states(&cx.states), self.slot, lane, |table| {
            match record.value {
                Some(value) => table.put(record.key, Entry { value, timestamp: record.timestamp }),
                None => table.delete(&record.key),
            }
        });
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
            let call = Call::on_states(&cx.states);
            let found = TableView::<GK, T>::read(&call, self.slot, |t| t.get(&table_key))?.map(|e| e.value);
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
