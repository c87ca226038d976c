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
use crate::operator::{Call, Data, Key, Keyed, ParamMut, ParamRef, Registry};
use crate::record::{Envelope, Record};
use crate::state::{StoreKey, StoreValue};

/// One update of a table: the key's value before and after (`None`: absent).
#[derive(Clone, Debug)]
pub(super) struct Change<V> {
    pub old: Option<V>,
    pub new: Option<V>,
}

/// What a table update does to one group of a grouped table: take a value out, put one in, or
/// both (an update that stays in its group: one output, as Kafka Streams' KIP-904).
#[derive(Clone, Debug)]
pub(super) struct Adjust<V> {
    sub: Option<V>,
    add: Option<V>,
}

/// Reads a table's current entry for a key, on the lane that owns the key: its store's entry,
/// through the filters and mappings of a derived table (Kafka Streams' value getters).
pub(super) type Getter<K, V> =
    Arc<dyn Fn(&Call<'_>, &K) -> std::result::Result<Option<Entry<V>>, BoxError> + Send + Sync>;

/// A table: the latest value of each key of a topic (Kafka Streams' `KTable`), kept in a named
/// state store, or derived from one (`filter`, `map_values`).
pub struct KTable<K, V> {
    /// The table's updates, with the values they replace.
    pub(super) updates: Stream<K, Change<V>>,
    /// How to read a key's current entry (`None`: the table could not be built).
    pub(super) getter: Option<Getter<K, V>>,
    pub(super) store: &'static str,
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
        super::aggregate::claim(&updates, store, "table");
        let slot = {
            let mut graph = lock(&self.graph);
            let mut registry = Registry::for_store(&mut graph.states, store, "table");
            match <Keyed<Entry<V>> as ParamMut<K>>::register(&mut registry) {
                Ok(slot) => Some(slot),
                Err(e) => {
                    graph.errors.push(e);
                    None
                }
            }
        };
        // Nothing needs to consume a table's changes: joins read its store.
        let changes = updates.internal::<K, Change<V>>();
        if let Some(slot) = slot {
            let outlet = Arc::clone(&changes.outlet);
            updates.outlet.add(Arc::new(move |lanes| {
                Box::new(UpsertNode::<K, V> { slot, next: outlet.instantiate(lanes) })
            }));
        }
        let getter = slot.map(|slot| {
            Arc::new(move |call: &Call<'_>, key: &K| {
                let store = <Keyed<Entry<V>> as ParamRef<K>>::fetch(&slot, call, key)?;
                Ok(store.get()?)
            }) as Getter<K, V>
        });
        KTable { updates: changes, getter, store }
    }
}

impl<K: Key + StoreKey, V: Data> KTable<K, V> {
    /// The entries for which `keep(key, value)` holds (Kafka Streams' `KTable#filter`): an entry
    /// that stops matching leaves the table (a `None` update downstream); an update where neither
    /// the old nor the new value matches is not passed on. Joins read it through its source's
    /// store.
    pub fn filter(&self, keep: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        let keep = Arc::new(keep);
        let k2 = Arc::clone(&keep);
        let updates = self.updates.internal();
        self.updates.add_fn("filter", &updates, false, move |r: Record<K, Change<V>>, out| {
            let pass = |v: Option<V>| v.filter(|v| k2(&r.key, v));
            let change = Change { old: pass(r.value.old), new: pass(r.value.new) };
            if change.old.is_some() || change.new.is_some() {
                out.push(Record { key: r.key, value: change, timestamp: r.timestamp, headers: r.headers });
            }
        });
        let getter = self.getter.clone().map(|parent| {
            Arc::new(move |call: &Call<'_>, key: &K| Ok(parent(call, key)?.filter(|e| keep(key, &e.value))))
                as Getter<K, V>
        });
        KTable { updates, getter, store: self.store }
    }

    /// Each entry's value mapped by `f` (Kafka Streams' `KTable#mapValues`).
    pub fn map_values<V2: Data>(&self, f: impl Fn(&V) -> V2 + Send + Sync + 'static) -> KTable<K, V2> {
        let f = Arc::new(f);
        let f2 = Arc::clone(&f);
        let updates = self.updates.internal();
        self.updates.add_fn("map_values", &updates, false, move |r: Record<K, Change<V>>, out| {
            let change =
                Change { old: r.value.old.as_ref().map(|v| f2(v)), new: r.value.new.as_ref().map(|v| f2(v)) };
            out.push(Record { key: r.key, value: change, timestamp: r.timestamp, headers: r.headers });
        });
        let getter = self.getter.clone().map(|parent| {
            Arc::new(move |call: &Call<'_>, key: &K| {
                Ok(parent(call, key)?.map(|e| Entry { value: f(&e.value), timestamp: e.timestamp }))
            }) as Getter<K, V2>
        });
        KTable { updates, getter, store: self.store }
    }
}

impl<K: Key + StoreKey, V: Data> KTable<K, V> {
    /// The table's updates as a stream: each upsert as `Some(value)`, each delete as `None`
    /// (Kafka Streams' `toStream()`).
    pub fn to_stream(&self) -> Stream<K, Option<V>> {
        self.updates.map_values(|change: Change<V>| change.new)
    }

    /// Groups the table's entries by `f(key, value)` = (group, value), for an aggregation that
    /// follows every entry: an update subtracts the entry's old value from its old group and adds
    /// the new value to its new group (Kafka Streams' `KTable#groupBy`). Each group lives on the
    /// lane that owns it.
    pub fn group_by<K2, V2>(
        &self,
        f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    ) -> GroupedTable<K2, V2>
    where
        K2: Key + StoreKey,
        V2: Data,
    {
        let adjustments = self.updates.flat_map(move |key, change: Change<V>| {
            let old = change.old.as_ref().map(|v| f(&key, v));
            let new = change.new.as_ref().map(|v| f(&key, v));
            let mut out = Vec::with_capacity(2);
            match (old, new) {
                (Some((g_old, v_old)), Some((g_new, v_new))) if g_old == g_new => {
                    out.push((g_new, Adjust { sub: Some(v_old), add: Some(v_new) }));
                }
                (old, new) => {
                    if let Some((g, v)) = old {
                        out.push((g, Adjust { sub: Some(v), add: None }));
                    }
                    if let Some((g, v)) = new {
                        out.push((g, Adjust { sub: None, add: Some(v) }));
                    }
                }
            }
            out
        });
        GroupedTable { grouped: super::Grouped { stream: adjustments } }
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
        T: Data,
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
        T: Data,
        R: Data,
    {
        let next = self.derive::<K, R>(format!("the output of `{what}` with table `{}`", table.store));
        if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
            lock(&self.graph).errors.push(format!(
                "`{what}` with table `{}` on a stream without a key (`()`): give the records the table's key first (`key_by`)",
                table.store
            ));
        }
        let Some(getter) = table.getter.clone() else { return next };
        let f = Arc::new(f);
        let outlet = Arc::clone(&next.outlet);
        self.outlet.add(Arc::new(move |lanes| {
            Box::new(LookupNode {
                what,
                getter: Arc::clone(&getter),
                f: Arc::clone(&f),
                next: outlet.instantiate(lanes),
                _table: std::marker::PhantomData::<fn(T)>,
            })
        }));
        next
    }
}

/// Writes a table's updates to its store and passes them on with the values they replace.
struct UpsertNode<K, V> {
    slot: usize,
    next: Box<dyn Push<K, Change<V>>>,
}

impl<K: Key + StoreKey, V: Data + StoreValue> Push<K, Option<V>> for UpsertNode<K, V> {
    fn push(&mut self, env: Envelope<K, Option<V>>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let written = {
            let call = Call::on_states(&cx.states);
            (|| -> std::result::Result<Option<V>, BoxError> {
                let mut store = <Keyed<Entry<V>> as ParamMut<K>>::fetch(&self.slot, &call, &record.key)?;
                let old = store.get()?.map(|e| e.value);
                match &record.value {
                    Some(value) => store.set(Entry { value: value.clone(), timestamp: record.timestamp })?,
                    None => store.delete()?,
                }
                Ok(old)
            })()
        };
        match written {
            Ok(old) => {
                let Record { key, value, timestamp, headers } = record;
                let change = Record { key, value: Change { old, new: value }, timestamp, headers };
                self.next.push(Envelope { record: change, origin }, cx)
            }
            Err(e) => cx.operator_error("table", origin, e),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}

/// Looks each record's key up in a table's store (on this lane, which owns the key) and joins.
struct LookupNode<F, K, T, R> {
    what: &'static str,
    getter: Getter<K, T>,
    f: Arc<F>,
    next: Box<dyn Push<K, R>>,
    _table: std::marker::PhantomData<fn(T)>,
}

impl<F, K, V, T, R> Push<K, V> for LookupNode<F, K, T, R>
where
    F: Fn(V, Option<T>) -> Option<R> + Send + Sync + 'static,
    K: Key + StoreKey,
    V: Send + 'static,
    T: Data,
    R: Send + 'static,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        let joined = {
            let call = Call::on_states(&cx.states);
            let found = (|| -> std::result::Result<Option<T>, BoxError> {
                Ok((self.getter)(&call, &key)?.map(|e| e.value))
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

/// A table grouped for an aggregation (Kafka Streams' `KGroupedTable`).
pub struct GroupedTable<K, V> {
    grouped: super::Grouped<K, Adjust<V>>,
}

impl<K, V> std::fmt::Debug for GroupedTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedTable").finish_non_exhaustive()
    }
}

impl<K: Key + StoreKey, V: Data> GroupedTable<K, V> {
    /// Aggregates each group in the store `store`: `init()` for a new group, `adder(group,
    /// value, aggregate)` for a value entering it, `subtractor(group, value, aggregate)` for a
    /// value leaving it (an update within one group runs both, subtractor first, and emits once).
    /// Emits the group's new aggregate on every update, with the largest timestamp seen for it;
    /// a group that becomes empty keeps its aggregate, as in Kafka Streams.
    pub fn aggregate<A: Data + StoreValue>(
        &self,
        store: &'static str,
        init: impl Fn() -> A + Send + Sync + 'static,
        adder: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Stream<K, A> {
        self.grouped.fold(store, "aggregate", move |key, old: Option<A>, adjust: Adjust<V>| {
            let mut acc = old.unwrap_or_else(&init);
            if let Some(v) = adjust.sub {
                acc = subtractor(key, v, acc);
            }
            if let Some(v) = adjust.add {
                acc = adder(key, v, acc);
            }
            acc
        })
    }

    /// The number of entries per group, in the store `store`.
    pub fn count(&self, store: &'static str) -> Stream<K, u64> {
        self.aggregate(store, || 0u64, |_, _, n| n + 1, |_, _, n| n.saturating_sub(1))
    }
}
