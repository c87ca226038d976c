//! Stream aggregations: `group_by_key` / `group_by` (a re-key in memory, no repartition topic)
//! into `count`, `reduce` and `aggregate`. Each aggregation keeps one entry per key in a named
//! LMDB store (with its changelog `<app>-<store>-changelog`) on the lane that owns the key, and
//! emits every update, as Kafka Streams does with its record cache off: the output's timestamp
//! is the largest input timestamp seen for the key.

use std::sync::Arc;

use super::replica::Entry;
use super::{lock, SlotId, Stream};
use crate::error::{BoxError, Panicked, Result};
use rustc_hash::FxHashMap;

use crate::lane::{LaneCx, Phase, Push};
use crate::operator::{Call, Data, Key, TableView};
use crate::record::{Envelope, Record};
use crate::state::{StoreKey, StoreValue};

/// A stream grouped by key, ready to aggregate (Kafka Streams' `KGroupedStream`). Each group's
/// records are processed on the lane that owns its key, in the order they reach it.
pub struct Grouped<K, V> {
    pub(super) stream: Stream<K, V>,
}

impl<K, V> std::fmt::Debug for Grouped<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grouped").field("stream", &self.stream).finish()
    }
}

impl<K: Key, V: Data> Stream<K, V> {
    /// Groups the records by their current key. The stream must have a key (records without
    /// one are spread over the lanes): use [`Stream::group_by`] otherwise.
    pub fn group_by_key(&self) -> Grouped<K, V> {
        if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
            lock(&self.graph).errors.push(
                "`group_by_key` on a stream without a key (`()`): its records are spread over the lanes; group them with `group_by(|_, v| ...)`".into(),
            );
        }
        Grouped { stream: self.alias() }
    }

    /// Groups the records by `key(key, value)`, moving each to the lane that owns its group
    /// (in memory: no repartition topic).
    pub fn group_by<K2: Key>(&self, key: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> Grouped<K2, V> {
        Grouped { stream: self.key_by(key) }
    }
}

/// `count`, `reduce` and `aggregate` of a grouping in terms of its `fold`, whose outputs are
/// keyed by `$out` (the key, or the key and its window); `$per` says what each aggregate covers.
macro_rules! fold_shorthands {
    ($out:ty, $per:literal) => {
        #[doc = concat!("The number of records per key", $per, ", in the store `store`; emits the new count on every record (Kafka Streams' `count().toStream()`).")]
        pub fn count(&self, store: &'static str) -> Stream<$out, u64> {
            self.fold(store, "count", |_, old: Option<u64>, _| old.unwrap_or(0) + 1)
        }

        #[doc = concat!("Combines each key's values", $per, " with `f(aggregate, value)`, starting from the first value; emits the new aggregate on every record.")]
        pub fn reduce(
            &self,
            store: &'static str,
            f: impl Fn(V, V) -> V + Send + Sync + 'static,
        ) -> Stream<$out, V>
        where
            V: StoreValue,
        {
            self.fold(store, "reduce", move |_, old: Option<V>, value| match old {
                Some(acc) => f(acc, value),
                None => value,
            })
        }

        #[doc = concat!("Folds each key's values", $per, ": `init()` to start, then `f(key, value, aggregate)`; emits the new aggregate on every record.")]
        pub fn aggregate<A: Data + StoreValue>(
            &self,
            store: &'static str,
            init: impl Fn() -> A + Send + Sync + 'static,
            f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        ) -> Stream<$out, A> {
            self.fold(store, "aggregate", move |key, old: Option<A>, value| {
                f(key, value, old.unwrap_or_else(&init))
            })
        }
    };
}
pub(super) use fold_shorthands;

impl<K: Key + StoreKey, V: Data> Grouped<K, V> {
    fold_shorthands!(K, "");

    pub(super) fn fold<A: Data + StoreValue>(
        &self,
        store: &'static str,
        what: &'static str,
        f: impl Fn(&K, Option<A>, V) -> A + Send + Sync + 'static,
    ) -> Stream<K, A> {
        let next = self.stream.derive::<K, A>(format!("the output of `{what}` into store `{store}`"));
        if claim(&self.stream, store, what) {
            self.fold_into(store, what, f, &next);
        }
        next
    }

    /// Folds this stream into `store`, emitting to `next` (a cogroup folds several streams into
    /// one store and one output).
    pub(super) fn fold_into<A: Data + StoreValue>(
        &self,
        store: &'static str,
        what: &'static str,
        f: impl Fn(&K, Option<A>, V) -> A + Send + Sync + 'static,
        next: &Stream<K, A>,
    ) {
        // The store is a table operators can read (`&TableView<K, A>`), with the schema of the
        // `Keyed` store aggregations used to keep, so state stays readable.
        let slot = {
            let mut graph = lock(&self.stream.graph);
            // A cogroup folds several streams into one store: they share its slot.
            let id = SlotId::Keyed(store, std::any::TypeId::of::<TableView<K, A>>());
            match graph.states.iter().position(|s| s.id == id) {
                Some(slot) => slot,
                None => {
                    graph.states.push(TableView::<K, A>::slot(store, "Keyed", 1, Arc::default()));
                    graph.states.len() - 1
                }
            }
        };
        let f = Arc::new(f);
        let outlet = Arc::clone(&next.outlet);
        self.stream.outlet.add(Arc::new(move |lanes| {
            Box::new(FoldNode {
                what,
                slot,
                f: Arc::clone(&f),
                next: outlet.instantiate(lanes),
                held: Held::new(),
            })
        }));
    }
}

/// Claims `store` for one aggregation; a second claim is a topology error (two aggregations
/// would silently fold into one store). Returns whether the claim succeeded.
pub(super) fn claim<K, V>(stream: &Stream<K, V>, store: &'static str, what: &str) -> bool {
    let mut graph = lock(&stream.graph);
    if graph.aggregations.contains(&store) {
        graph.errors.push(format!(
            "store `{store}` is already used by another table or aggregation: give this `{what}` its own store (to fold several streams into one store, use `cogroup`)"
        ));
        return false;
    }
    graph.aggregations.push(store);
    true
}

/// One aggregation on one lane: reads the key's entry, folds the record in, writes it back and
/// emits the new aggregate, or, with [`Emission::LatestPerEpoch`](crate::config::Emission),
/// keeps the key's latest aggregate until the epoch ends.
struct FoldNode<F, K, A> {
    what: &'static str,
    slot: usize,
    f: Arc<F>,
    next: Box<dyn Push<K, A>>,
    held: Held<K, A>,
}

/// The aggregates an aggregation holds until the epoch ends: one per key, the latest, in the
/// order the keys were first updated.
struct Held<K, A> {
    records: Vec<Envelope<K, A>>,
    index: FxHashMap<K, usize>,
}

impl<K: Key, A> Held<K, A> {
    fn new() -> Self {
        Held { records: Vec::new(), index: FxHashMap::default() }
    }

    fn hold(&mut self, env: Envelope<K, A>) {
        match self.index.get(&env.record.key) {
            Some(&i) => self.records[i] = env,
            None => {
                self.index.insert(env.record.key.clone(), self.records.len());
                self.records.push(env);
            }
        }
    }

    fn clear(&mut self) {
        self.records.clear();
        self.index.clear();
    }
}

impl<F, K, V, A> Push<K, V> for FoldNode<F, K, A>
where
    F: Fn(&K, Option<A>, V) -> A + Send + Sync + 'static,
    K: Key + StoreKey,
    V: Send + 'static,
    A: Data + StoreValue,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        let lane = (cx.lane, cx.lanes());
        let folded = {
            let call = Call::on_states(&cx.states);
            let f = &self.f;
            let slot = &self.slot;
            let step = || -> std::result::Result<Entry<A>, BoxError> {
                let old = TableView::<K, A>::read(&call, *slot, |t| t.get(&key))?;
                let timestamp = old.as_ref().map_or(timestamp, |o| o.timestamp.max(timestamp));
                let entry = Entry { value: f(&key, old.map(|o| o.value), value), timestamp };
                TableView::<K, A>::write(&call, *slot, lane, |t| t.put(key.clone(), entry.clone()))?;
                Ok(entry)
            };
            Panicked::catch(step).unwrap_or_else(|p| Err(Box::new(p) as BoxError))
        };
        match folded {
            Ok(entry) => {
                let record = Record { key, value: entry.value, timestamp: entry.timestamp, headers };
                if cx.shared.once_per_epoch {
                    self.held.hold(Envelope { record, origin });
                    return Ok(());
                }
                self.next.push(Envelope { record, origin }, cx)
            }
            Err(e) => cx.operator_error(self.what, origin, e),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        match cx.phase {
            Phase::Batch => {}
            Phase::Discard => self.held.clear(),
            Phase::EpochEnd => {
                let held = std::mem::take(&mut self.held.records);
                self.held.index.clear();
                for env in held {
                    cx.released += 1;
                    self.next.push(env, cx)?;
                }
            }
        }
        self.next.flush(cx)
    }
}
