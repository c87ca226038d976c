//! Tables from topics and stream-table joins. A [`KTable`] reads a topic as upserts (a null
//! value deletes its key) into a named LMDB store, on the lane that owns each key. A stream
//! joined to it looks each record's key up on that same lane, so it sees every earlier update of
//! the key in the order they arrived: no co-partitioning, no repartition topic, and a result that
//! does not depend on when another lane commits.

use std::sync::Arc;

use super::aggregate::Entry;
use super::{lock, Stream, Topology};
use crate::codec::Nullable;
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{LaneCx, Push};
use crate::operator::{Call, Context, Data, Key, Keyed, ParamMut, ParamRef, Registry};
use crate::record::{Envelope, Record};
use crate::state::{StoreKey, StoreValue};

/// A table: the latest value of each key of a topic (Kafka Streams' `KTable`), kept in a named
/// state store.
pub struct KTable<K, V> {
    /// The table's updates: `None` deletes a key.
    updates: Stream<K, Option<V>>,
    /// The lane slot of its store.
    slot: Option<usize>,
    store: &'static str,
}

impl<K, V> std::fmt::Debug for KTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KTable").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Topology {
    /// The table of `topic`'s records in the store `store`: each record sets its key's value,
    /// a null value (a tombstone) deletes it, a null key is dropped and counted. The store has
    /// its own changelog (`<app>-<store>-changelog`) and is restored from it on start.
    pub fn table<K, V>(&self, topic: &super::Topic<K, V>, store: &'static str) -> KTable<K, V>
    where
        K: Key + StoreKey,
        V: Data + StoreValue,
    {
        let updates = self.stream_with(topic.name(), topic.key_codec(), Nullable(topic.value_codec()));
        let slot = {
            let mut graph = lock(&self.graph);
            let mut registry = Registry::new(&mut graph.states, store, 1);
            match <Keyed<Entry<V>> as ParamMut<K>>::register(&mut registry) {
                Ok(slot) => Some(slot),
                Err(e) => {
                    graph.errors.push(e.replace("operator", "table"));
                    None
                }
            }
        };
        // Nothing needs to consume a table's changes: joins read its store.
        let changes = updates.internal::<K, Option<V>>();
        if let Some(slot) = slot {
            let outlet = Arc::clone(&changes.outlet);
            updates.outlet.add(Arc::new(move |lanes| {
                Box::new(UpsertNode::<K, V> {
                    slot,
                    ctx: Context::default(),
                    next: outlet.instantiate(lanes),
                })
            }));
        }
        KTable { updates: changes, slot, store }
    }
}

impl<K: Key + StoreKey, V: Data + StoreValue> KTable<K, V> {
    /// The table's updates as a stream: each upsert as `Some(value)`, each delete as `None`
    /// (Kafka Streams' `toStream()`).
    pub fn to_stream(&self) -> Stream<K, Option<V>> {
        let next = self.updates.derive::<K, Option<V>>(format!("`to_stream` of table `{}`", self.store));
        let outlet = Arc::clone(&next.outlet);
        self.updates.outlet.add(Arc::new(move |lanes| outlet.instantiate(lanes)));
        next
    }

    /// The store's name.
    pub fn store(&self) -> &'static str {
        self.store
    }
}

impl<K: Key + StoreKey, V: Data> Stream<K, V> {
    /// Joins each record to the table's current value for its key: `joiner(value, table_value)`,
    /// with the record's timestamp; a record whose key is not in the table gives nothing (Kafka
    /// Streams' inner `join`).
    pub fn join<T, R>(
        &self,
        table: &KTable<K, T>,
        joiner: impl Fn(V, T) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        T: Data + StoreValue,
        R: Data,
    {
        self.lookup(table, "join", move |v, t: Option<T>| t.map(|t| joiner(v, t)))
    }

    /// Like [`Stream::join`], but a record whose key is not in the table is joined to `None`
    /// (Kafka Streams' `leftJoin`).
    pub fn left_join<T, R>(
        &self,
        table: &KTable<K, T>,
        joiner: impl Fn(V, Option<T>) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        T: Data + StoreValue,
        R: Data,
    {
        self.lookup(table, "left_join", move |v, t| Some(joiner(v, t)))
    }

    fn lookup<T, R>(
        &self,
        table: &KTable<K, T>,
        what: &'static str,
        f: impl Fn(V, Option<T>) -> Option<R> + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        T: Data + StoreValue,
        R: Data,
    {
        let next = self.derive::<K, R>(format!("the output of `{what}` with table `{}`", table.store));
        if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
            lock(&self.graph).errors.push(format!(
                "`{what}` with table `{}` on a stream without a key (`()`): give the records the table's key first (`key_by`)",
                table.store
            ));
        }
        let Some(slot) = table.slot else { return next };
        let f = Arc::new(f);
        let outlet = Arc::clone(&next.outlet);
        self.outlet.add(Arc::new(move |lanes| {
            Box::new(LookupNode {
                what,
                slot,
                f: Arc::clone(&f),
                ctx: Context::default(),
                next: outlet.instantiate(lanes),
                _table: std::marker::PhantomData::<fn(T)>,
            })
        }));
        next
    }
}

/// Writes a table's updates to its store and passes them on.
struct UpsertNode<K, V> {
    slot: usize,
    /// A context for borrowing the store (its fields are not read).
    ctx: Context,
    next: Box<dyn Push<K, Option<V>>>,
}

impl<K: Key + StoreKey, V: Data + StoreValue> Push<K, Option<V>> for UpsertNode<K, V> {
    fn push(&mut self, env: Envelope<K, Option<V>>, cx: &mut LaneCx) -> Result<()> {
        let written = {
            let call = Call { context: &self.ctx, states: &cx.states };
            let record = &env.record;
            (|| -> std::result::Result<(), BoxError> {
                let mut store = <Keyed<Entry<V>> as ParamMut<K>>::fetch(&self.slot, &call, &record.key)?;
                match &record.value {
                    Some(value) => store.set(Entry { value: value.clone(), timestamp: record.timestamp })?,
                    None => store.delete()?,
                }
                Ok(())
            })()
        };
        match written {
            Ok(()) => self.next.push(env, cx),
            Err(e) => cx.operator_error("table", env.origin, e),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}

/// Looks each record's key up in a table's store (on this lane, which owns the key) and joins.
struct LookupNode<F, K, T, R> {
    what: &'static str,
    slot: usize,
    f: Arc<F>,
    ctx: Context,
    next: Box<dyn Push<K, R>>,
    _table: std::marker::PhantomData<fn(T)>,
}

impl<F, K, V, T, R> Push<K, V> for LookupNode<F, K, T, R>
where
    F: Fn(V, Option<T>) -> Option<R> + Send + Sync + 'static,
    K: Key + StoreKey,
    V: Send + 'static,
    T: Data + StoreValue,
    R: Send + 'static,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        let joined = {
            let call = Call { context: &self.ctx, states: &cx.states };
            let found = (|| -> std::result::Result<Option<T>, BoxError> {
                let store = <Keyed<Entry<T>> as ParamRef<K>>::fetch(&self.slot, &call, &key)?;
                Ok(store.get()?.map(|e| e.value))
            })();
            match found {
                Ok(found) => {
                    let f = &self.f;
                    Panicked::catch(|| f(value, found)).map_err(|p| Box::new(p) as BoxError)
                }
                Err(e) => Err(e),
            }
        };
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
