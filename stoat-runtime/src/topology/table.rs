//! Tables from topics and stream-table joins. A [`KTable`] reads a topic as upserts (a null
//! value deletes its key) into a named LMDB store, on the lane that owns each key. A stream
//! joined to it looks each record's key up on that same lane, so it sees every earlier update of
//! the key in the order they arrived: no co-partitioning, no repartition topic, and a result that
//! does not depend on when another lane commits.

use std::sync::Arc;

use std::sync::atomic::AtomicBool;

use super::replica::Entry;
use super::{lock, Stream, Topology};
use crate::codec::Nullable;
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{lane_of, LaneCx, Push};
use crate::operator::{Call, Data, Key, TableView};
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
    /// The table's updates, with the values they replace, on the lane that owns each key.
    pub(super) updates: Stream<K, Change<V>>,
    /// How to read a key's current entry (`None`: the table could not be built).
    pub(super) getter: Option<Getter<K, V>>,
    pub(super) store: &'static str,
    /// For a table read from a topic: how to replicate it on every lane.
    pub(super) replication: Option<Replication<K, V>>,
}

/// How a table read from a topic is replicated when something needs every lane to follow it
/// (a foreign-key join): its source then sends every record to every lane, each lane keeps the
/// epoch's updates of every key in its copy of the store (sealing only its own), and `everywhere`
/// carries every update on every lane.
pub(super) struct Replication<K, V> {
    pub broadcast: Arc<AtomicBool>,
    pub everywhere: Stream<K, Change<V>>,
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
        let broadcast = Arc::new(AtomicBool::new(false));
        let upserts = self.source_of(
            topic.name(),
            topic.key_codec(),
            Nullable(topic.value_codec()),
            Arc::clone(&broadcast),
            false,
            None,
        );
        let replication = Replication { broadcast, everywhere: upserts.internal::<K, Change<V>>() };
        let mut table = upserts.upsert_into(store, "table", Some(&replication));
        table.replication = Some(replication);
        table
    }
}

impl<K: Key + StoreKey, V: Data + StoreValue> Stream<K, Option<V>> {
    /// The table of this stream's records in the store `store`: `Some(value)` sets the key's
    /// value, `None` deletes it (Kafka Streams' `toTable()`, where a null value deletes). A stream
    /// of plain values becomes a table with `.map_values(Some).to_table(store)`.
    pub fn to_table(&self, store: &'static str) -> KTable<K, V> {
        self.upsert_into(store, "to_table", None)
    }

    /// Upserts this stream's records into a new table's store; with `replication` (a table read
    /// from a topic), every update also goes to its `everywhere` stream on every lane it reaches.
    fn upsert_into(
        &self,
        store: &'static str,
        what: &'static str,
        replication: Option<&Replication<K, V>>,
    ) -> KTable<K, V> {
        // Nothing needs to consume a table's changes: joins read its store.
        let changes = self.internal::<K, Change<V>>();
        let mut table = KTable { updates: changes.alias(), getter: None, store, replication: None };
        if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
            lock(&self.graph).errors.push(format!(
                "{what} `{store}` keeps its entries by key, but its stream has no key (`()`): records without a key are spread over the lanes; give the records a key first (e.g. `key_by`)"
            ));
            return table;
        }
        if !super::aggregate::claim(self, store, what) {
            return table;
        }
        let slot = {
            let mut graph = lock(&self.graph);
            // The schema of the `Keyed` store tables used to keep, so state stays readable.
            let replicated = replication.map_or_else(Arc::default, |r| Arc::clone(&r.broadcast));
            graph.states.push(TableView::<K, V>::slot(store, "Keyed", 1, replicated));
            graph.states.len() - 1
        };
        let (next, all) =
            (Arc::clone(&changes.outlet), replication.map(|r| Arc::clone(&r.everywhere.outlet)));
        self.outlet.add(Arc::new(move |lanes| {
            Box::new(UpsertNode::<K, V> {
                slot,
                next: next.instantiate(lanes),
                everywhere: all.as_ref().map(|all| all.instantiate(lanes)),
            })
        }));
        table.getter = Some(Arc::new(move |call: &Call<'_>, key: &K| {
            TableView::<K, V>::read(call, slot, |t| t.get(key))
        }));
        table
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
        KTable { updates, getter, store: self.store, replication: None }
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
        KTable { updates, getter, store: self.store, replication: None }
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
        self.meets(&table.updates);
        self.feeds(&table.updates, &next);
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

/// Writes a table's updates to this lane's copy of its store and passes on those of the keys
/// this lane owns, with the values they replace (a replicated table's lanes see every key's).
struct UpsertNode<K, V> {
    slot: usize,
    next: Box<dyn Push<K, Change<V>>>,
    /// Where every update goes, owned or not (a replicated table's).
    everywhere: Option<Box<dyn Push<K, Change<V>>>>,
}

impl<K: Key + StoreKey, V: Data + StoreValue> Push<K, Option<V>> for UpsertNode<K, V> {
    fn push(&mut self, env: Envelope<K, Option<V>>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let lane = (cx.lane, cx.lanes());
        let written = TableView::<K, V>::write(&Call::on_states(&cx.states), self.slot, lane, |table| {
            let old = table.get(&record.key)?.map(|e| e.value);
            match &record.value {
                Some(value) => table
                    .put(record.key.clone(), Entry { value: value.clone(), timestamp: record.timestamp })?,
                None => table.delete(&record.key)?,
            }
            Ok(old)
        });
        let old = match written {
            Ok(old) => old,
            Err(e) => return cx.operator_error("table", origin, e),
        };
        let Record { key, value, timestamp, headers } = record;
        let owned = lane_of(&key, lane.1) == lane.0;
        let change = Record { key, value: Change { old, new: value }, timestamp, headers };
        match (&mut self.everywhere, owned) {
            (Some(all), true) => {
                all.push(Envelope { record: change.duplicate(), origin }, cx)?;
                self.next.push(Envelope { record: change, origin }, cx)
            }
            (Some(all), false) => all.push(Envelope { record: change, origin }, cx),
            (None, true) => self.next.push(Envelope { record: change, origin }, cx),
            (None, false) => Ok(()),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        if let Some(all) = &mut self.everywhere {
            all.flush(cx)?;
        }
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
