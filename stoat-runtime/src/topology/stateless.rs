//! The stateless half of the DSL, as closures over a stream's records: `filter`, `filter_not`,
//! `map`, `map_values`, `flat_map`, `flat_map_values`, `key_by`/`select_key`, `split` (first
//! match wins, optional default branch), `merge`, `peek`, `foreach` and `print`. Outputs keep the
//! input's timestamp and headers, as in Kafka Streams. Methods that change the key route their
//! outputs to the lanes owning the new keys, in memory. For anything these do not cover, write an
//! operator and use [`Stream::process`].

use std::fmt::Debug;
use std::sync::Arc;

use super::nodes::{FnNode, Predicate, SplitNode};
use super::Stream;
use crate::lane::Push;
use crate::operator::{Data, Key};
use crate::record::Record;

impl<K: Key, V: Data> Stream<K, V> {
    /// Adds a closure node from this stream to `next` (through a re-key point if `rekeys`).
    pub(super) fn add_fn<K2: Key, V2: Data>(
        &self,
        name: &'static str,
        next: &Stream<K2, V2>,
        rekeys: bool,
        f: impl Fn(Record<K, V>, &mut Vec<Record<K2, V2>>) + Send + Sync + 'static,
    ) {
        let f = Arc::new(f);
        let point = rekeys.then(|| self.rekey_point(next));
        let outlet = Arc::clone(&next.outlet);
        self.outlet.add(Arc::new(move |lanes| {
            let downstream: Box<dyn Push<K2, V2>> = match point {
                Some(p) => Box::new(super::nodes::RekeyNode::new(p)),
                None => outlet.instantiate(lanes),
            };
            Box::new(FnNode { name, f: Arc::clone(&f), buf: Vec::new(), next: downstream })
        }));
    }

    /// A stream derived by the DSL method `name`.
    fn step<K2: Key, V2: Data>(&self, name: &str) -> Stream<K2, V2> {
        self.derive(format!("the output of `{name}`"))
    }

    /// Keeps the records for which `keep` is true.
    pub fn filter(&self, keep: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Stream<K, V> {
        let next = self.step("filter");
        self.add_fn("filter", &next, false, move |r: Record<K, V>, out| {
            if keep(&r.key, &r.value) {
                out.push(r);
            }
        });
        next
    }

    /// Drops the records for which `drop` is true.
    pub fn filter_not(&self, drop: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Stream<K, V> {
        let next = self.step("filter_not");
        self.add_fn("filter_not", &next, false, move |r: Record<K, V>, out| {
            if !drop(&r.key, &r.value) {
                out.push(r);
            }
        });
        next
    }

    /// Replaces each value by `f(value)`; the key stays.
    pub fn map_values<V2: Data>(&self, f: impl Fn(V) -> V2 + Send + Sync + 'static) -> Stream<K, V2> {
        let next = self.step("map_values");
        self.add_fn("map_values", &next, false, move |r: Record<K, V>, out| {
            out.push(Record { key: r.key, value: f(r.value), timestamp: r.timestamp, headers: r.headers });
        });
        next
    }

    /// Replaces each record by `f(key, value)`, a new key and value; the record moves to the
    /// lane that owns its new key (in memory: no repartition topic).
    pub fn map<K2: Key, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> Stream<K2, V2> {
        let next = self.step("map");
        self.add_fn("map", &next, true, move |r: Record<K, V>, out| {
            let (key, value) = f(r.key, r.value);
            out.push(Record { key, value, timestamp: r.timestamp, headers: r.headers });
        });
        next
    }

    /// Replaces each value by any number of values (`f` returns an iterator, a `Vec`, an
    /// `Option`); each keeps the key, timestamp and headers.
    pub fn flat_map_values<V2: Data, I: IntoIterator<Item = V2>>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> Stream<K, V2> {
        let next = self.step("flat_map_values");
        self.add_fn("flat_map_values", &next, false, move |r: Record<K, V>, out| {
            for value in f(r.value) {
                out.push(Record {
                    key: r.key.clone(),
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                });
            }
        });
        next
    }

    /// Replaces each record by any number of records with new keys; each moves to the lane that
    /// owns its key.
    pub fn flat_map<K2: Key, V2: Data, I: IntoIterator<Item = (K2, V2)>>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> Stream<K2, V2> {
        let next = self.step("flat_map");
        self.add_fn("flat_map", &next, true, move |r: Record<K, V>, out| {
            for (key, value) in f(r.key, r.value) {
                out.push(Record { key, value, timestamp: r.timestamp, headers: r.headers.clone() });
            }
        });
        next
    }

    /// Gives each record the key `f(key, value)` and moves it to the lane that owns that key
    /// (in memory: no repartition topic).
    pub fn key_by<K2: Key>(&self, f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> Stream<K2, V> {
        let next = self.step("key_by");
        self.add_fn("key_by", &next, true, move |r: Record<K, V>, out| {
            let key = f(&r.key, &r.value);
            out.push(Record { key, value: r.value, timestamp: r.timestamp, headers: r.headers });
        });
        next
    }

    /// Kafka Streams' name for [`Stream::key_by`].
    pub fn select_key<K2: Key>(&self, f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> Stream<K2, V> {
        self.key_by(f)
    }

    /// Calls `f` on each record and passes the record on unchanged (for logging or metrics; `f`
    /// runs again if the epoch is retried).
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> Stream<K, V> {
        let next = self.step("peek");
        self.add_fn("peek", &next, false, move |r: Record<K, V>, out| {
            f(&r.key, &r.value);
            out.push(r);
        });
        next
    }

    /// Calls `f` on each record; the stream ends here. `f` is a side effect outside the epoch's
    /// transaction: it runs again for records of a retried or recovered epoch (at least once).
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let end = self.step::<K, V>("foreach");
        self.add_fn("foreach", &end, false, move |r: Record<K, V>, _: &mut Vec<Record<K, V>>| {
            f(&r.key, &r.value)
        });
        // Nothing follows a `foreach`: its (empty) output stream counts as consumed.
        end.outlet.add(Arc::new(|_| Box::new(super::nodes::Discard(std::marker::PhantomData))));
    }

    /// Prints each record to stdout as `[label]: key, value` (Kafka Streams' `print`), for
    /// debugging.
    pub fn print(&self, label: &str)
    where
        K: Debug,
        V: Debug,
    {
        let label = label.to_string();
        self.foreach(move |k, v| println!("[{label}]: {k:?}, {v:?}"));
    }

    /// One stream of the records of both (no order between the two is promised; each keeps its
    /// own order per key).
    pub fn merge(&self, other: &Stream<K, V>) -> Stream<K, V> {
        let next = self.step::<K, V>("merge");
        self.meets(other);
        self.feeds(other, &next);
        for upstream in [self, other] {
            let outlet = Arc::clone(&next.outlet);
            upstream.outlet.add(Arc::new(move |lanes| outlet.instantiate(lanes)));
        }
        next
    }

    /// Splits the stream by predicates: each record goes to the first branch whose predicate
    /// holds. Finish with [`Split::default_branch`] (records matching none go there) or
    /// [`Split::branches`] (they are dropped, as in Kafka Streams).
    ///
    /// ```ignore
    /// # use stoat::prelude::*;
    /// let topology = Topology::new("split");
    /// let branches = topology
    ///     .stream::<(), u64>("amounts")
    ///     .split()
    ///     .branch(|_, v| *v >= 1_000)
    ///     .branch(|_, v| *v >= 100)
    ///     .default_branch();
    /// branches[0].to("large");
    /// branches[1].to("medium");
    /// branches[2].to("small");
    /// ```
    pub fn split(&self) -> Split<K, V> {
        Split { stream: self.alias(), predicates: Vec::new() }
    }
}

/// A [`Stream::split`] being built.
pub struct Split<K, V> {
    stream: Stream<K, V>,
    predicates: Vec<Predicate<K, V>>,
}

impl<K, V> Debug for Split<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split").field("branches", &self.predicates.len()).finish()
    }
}

impl<K: Key, V: Data> Split<K, V> {
    /// Adds a branch for the records (not taken by an earlier branch) for which `when` is true.
    pub fn branch(mut self, when: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.predicates.push(Arc::new(when));
        self
    }

    /// The branches, in the order they were added; records that match none are dropped.
    pub fn branches(self) -> Vec<Stream<K, V>> {
        self.finish(false)
    }

    /// The branches, in the order they were added, then the default branch with the records
    /// that match none.
    pub fn default_branch(self) -> Vec<Stream<K, V>> {
        self.finish(true)
    }

    fn finish(self, with_default: bool) -> Vec<Stream<K, V>> {
        let count = self.predicates.len() + usize::from(with_default);
        let streams: Vec<Stream<K, V>> = (0..count)
            .map(|i| {
                let what = if i == self.predicates.len() {
                    "the default branch of `split`".to_string()
                } else {
                    format!("branch {i} of `split`")
                };
                self.stream.derive(what)
            })
            .collect();
        let predicates = Arc::new(self.predicates);
        let outlets: Vec<_> = streams.iter().map(|s| Arc::clone(&s.outlet)).collect();
        self.stream.outlet.add(Arc::new(move |lanes| {
            let outs = outlets.iter().map(|o| o.instantiate(lanes)).collect();
            Box::new(SplitNode { predicates: Arc::clone(&predicates), outs })
        }));
        streams
    }
}
