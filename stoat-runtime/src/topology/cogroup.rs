//! `cogroup`: several grouped streams with the same key folded into one aggregate per key, each
//! with its own aggregator (Kafka Streams' `KGroupedStream#cogroup`). One store, one output
//! stream; each record updates its key's aggregate on the lane that owns the key, and the output
//! carries the largest timestamp seen for the key.

use std::sync::Arc;

use super::aggregate::{claim, Grouped};
use super::Stream;
use crate::operator::{Data, Key};
use crate::state::{StoreKey, StoreValue};

/// Attaches one grouped stream's fold to the cogroup's store and output.
type Attach<K, A> = Box<dyn FnOnce(&'static str, Arc<dyn Fn() -> A + Send + Sync>, &Stream<K, A>)>;

/// Grouped streams being cogrouped into one aggregate per key.
pub struct Cogrouped<K, A> {
    first: Stream<K, A>,
    parts: Vec<Attach<K, A>>,
    /// The other streams' description nodes.
    others: Vec<Stream<(), ()>>,
}

impl<K, A> std::fmt::Debug for Cogrouped<K, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cogrouped").field("streams", &self.parts.len()).finish()
    }
}

impl<K: Key + StoreKey, V: Data> Grouped<K, V> {
    /// Starts a cogroup with this stream and its aggregator `f(key, value, aggregate)`; add
    /// streams with [`Cogrouped::cogroup`], finish with [`Cogrouped::aggregate`].
    pub fn cogroup<A: Data + StoreValue>(
        &self,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Cogrouped<K, A> {
        let mut cogrouped =
            Cogrouped { first: self.stream.internal::<K, A>(), parts: Vec::new(), others: Vec::new() };
        cogrouped.parts.push(part(self, f));
        cogrouped
    }
}

fn part<K, V, A>(grouped: &Grouped<K, V>, f: impl Fn(&K, V, A) -> A + Send + Sync + 'static) -> Attach<K, A>
where
    K: Key + StoreKey,
    V: Data,
    A: Data + StoreValue,
{
    let grouped = Grouped { stream: grouped.stream.alias() };
    Box::new(move |store, init, next| {
        grouped.fold_into(
            store,
            "cogroup",
            move |key, old: Option<A>, value| f(key, value, old.unwrap_or_else(|| init())),
            next,
        )
    })
}

impl<K: Key + StoreKey, A: Data + StoreValue> Cogrouped<K, A> {
    /// Adds a grouped stream with its aggregator.
    pub fn cogroup<V: Data>(
        mut self,
        other: &Grouped<K, V>,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Self {
        self.first.meets(&other.stream);
        self.others.push(other.stream.internal::<(), ()>());
        self.parts.push(part(other, f));
        self
    }

    /// Folds every stream into the store `store`, starting each key from `init()`; emits the
    /// key's new aggregate on every record of any of the streams.
    pub fn aggregate(
        self,
        store: &'static str,
        init: impl Fn() -> A + Send + Sync + 'static,
    ) -> Stream<K, A> {
        let next = self.first.derive::<K, A>(format!("the output of `cogroup` into store `{store}`"));
        for other in &self.others {
            self.first.feeds(other, &next);
        }
        if claim(&self.first, store, "cogroup") {
            let init: Arc<dyn Fn() -> A + Send + Sync> = Arc::new(init);
            for attach in self.parts {
                attach(store, Arc::clone(&init), &next);
            }
        }
        next
    }
}
