//! Table-table joins (inner, left, outer) on the key both tables share. An update of either
//! side looks the other side's current entry up in its store, on the lane that owns the key (both
//! tables' updates of a key arrive there, in dispatch order), and emits the joined table's new
//! value for the key, or `None` when the key leaves it. What is emitted when follows Kafka Streams
//! 4.4 with its cache off, spurious tombstones included; the timestamp is the larger of the
//! update's and the other row's.

use std::sync::Arc;

use super::table::{Change, Getter, KTable};
use super::Stream;
use crate::error::{Panicked, Result};
use crate::lane::{LaneCx, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Record};
use crate::state::StoreKey;

/// Which rows a table-table join keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Inner,
    Left,
    Outer,
}

/// Which side of the join an update comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

impl<K: Key + StoreKey, A: Data> KTable<K, A> {
    /// The inner join with `other` on the key: a key is in the result while both tables have it,
    /// with value `joiner(a, b)`. Returns the joined table's updates (`None`: the key left it).
    pub fn join<B, R>(
        &self,
        other: &KTable<K, B>,
        joiner: impl Fn(A, B) -> R + Send + Sync + 'static,
    ) -> Stream<K, Option<R>>
    where
        B: Data,
        R: Data,
    {
        self.join_tables(other, Kind::Inner, move |a, b| match (a, b) {
            (Some(a), Some(b)) => Some(joiner(a, b)),
            _ => None,
        })
    }

    /// The left join with `other`: a key is in the result while this table has it, with value
    /// `joiner(a, b)` (`b` is `None` when `other` lacks the key).
    pub fn left_join<B, R>(
        &self,
        other: &KTable<K, B>,
        joiner: impl Fn(A, Option<B>) -> R + Send + Sync + 'static,
    ) -> Stream<K, Option<R>>
    where
        B: Data,
        R: Data,
    {
        self.join_tables(other, Kind::Left, move |a, b| a.map(|a| joiner(a, b)))
    }

    /// The outer join with `other`: a key is in the result while either table has it, with value
    /// `joiner(a, b)`.
    pub fn outer_join<B, R>(
        &self,
        other: &KTable<K, B>,
        joiner: impl Fn(Option<A>, Option<B>) -> R + Send + Sync + 'static,
    ) -> Stream<K, Option<R>>
    where
        B: Data,
        R: Data,
    {
        self.join_tables(other, Kind::Outer, move |a, b| (a.is_some() || b.is_some()).then(|| joiner(a, b)))
    }

    fn join_tables<B, R>(
        &self,
        other: &KTable<K, B>,
        kind: Kind,
        joiner: impl Fn(Option<A>, Option<B>) -> Option<R> + Send + Sync + 'static,
    ) -> Stream<K, Option<R>>
    where
        B: Data,
        R: Data,
    {
        let what = match kind {
            Kind::Inner => "join",
            Kind::Left => "left_join",
            Kind::Outer => "outer_join",
        };
        let next = self.updates.derive::<K, Option<R>>(format!(
            "the output of `{what}` of tables `{}` and `{}`",
            self.store, other.store
        ));
        self.updates.meets(&other.updates);
        self.updates.feeds(&other.updates, &next);
        let (Some(left_get), Some(right_get)) = (self.getter.clone(), other.getter.clone()) else {
            return next;
        };
        let joiner = Arc::new(joiner);
        // An update of the left table looks the right one up, and the other way round.
        let (out, j) = (Arc::clone(&next.outlet), Arc::clone(&joiner));
        self.updates.outlet.add(Arc::new(move |lanes| {
            let j = Arc::clone(&j);
            let f = move |mine: Option<A>, theirs: Option<B>| j(mine, theirs);
            Box::new(TableJoinNode::<_, K, A, B, R> {
                kind,
                side: Side::Left,
                other: Arc::clone(&right_get),
                f,
                next: out.instantiate(lanes),
                _types: std::marker::PhantomData,
            })
        }));
        let out = Arc::clone(&next.outlet);
        other.updates.outlet.add(Arc::new(move |lanes| {
            let j = Arc::clone(&joiner);
            let f = move |mine: Option<B>, theirs: Option<A>| j(theirs, mine);
            Box::new(TableJoinNode::<_, K, B, A, R> {
                kind,
                side: Side::Right,
                other: Arc::clone(&left_get),
                f,
                next: out.instantiate(lanes),
                _types: std::marker::PhantomData,
            })
        }));
        next
    }
}

/// One side of a table-table join on one lane: `Mine` is this side's value type, `Theirs` the
/// other's; `f(mine, theirs)` is the joined value (already ordered left, right).
struct TableJoinNode<F, K, Mine, Theirs, R> {
    kind: Kind,
    side: Side,
    /// Reads the other table's entry for a key.
    other: Getter<K, Theirs>,
    f: F,
    next: Box<dyn Push<K, Option<R>>>,
    _types: std::marker::PhantomData<fn(Mine, Theirs)>,
}

impl<F, K, Mine, Theirs, R> Push<K, Change<Mine>> for TableJoinNode<F, K, Mine, Theirs, R>
where
    F: Fn(Option<Mine>, Option<Theirs>) -> Option<R> + Send + 'static,
    K: Key + StoreKey,
    Mine: Data,
    Theirs: Data,
    R: Send + 'static,
{
    fn push(&mut self, env: Envelope<K, Change<Mine>>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value: change, timestamp, headers } = record;
        let theirs = {
            let call = Call::on_states(&cx.states);
            (self.other)(&call, &key)
        };
        let theirs = match theirs {
            Ok(t) => t,
            Err(e) => return cx.operator_error("table join", origin, e),
        };
        // Whether this update reaches the joined table at all (Kafka Streams 4.4).
        let (has_old, has_new, has_theirs) = (change.old.is_some(), change.new.is_some(), theirs.is_some());
        let emits = match (self.kind, self.side) {
            (Kind::Inner, _) => has_theirs,
            (Kind::Left, Side::Left) | (Kind::Outer, _) => has_old || has_new || has_theirs,
            // A right-side update reaches a left join only where the left row exists.
            (Kind::Left, Side::Right) => has_theirs,
        };
        if !emits {
            return Ok(());
        }
        let timestamp = theirs.as_ref().map_or(timestamp, |t| t.timestamp.max(timestamp));
        let f = &self.f;
        let joined = Panicked::catch(|| f(change.new, theirs.map(|t| t.value)));
        match joined {
            Ok(value) => {
                self.next.push(Envelope { record: Record { key, value, timestamp, headers }, origin }, cx)
            }
            Err(panic) => cx.operator_error("table join", origin, Box::new(panic)),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}
