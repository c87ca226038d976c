//! Stream-stream joins over time windows (Kafka Streams' `KStream#join`, `leftJoin` and
//! `outerJoin` with `JoinWindows`). Both sides keep their records for the join's retention
//! (window span plus grace) in stores keyed by (key, timestamp). A record joins, at once, the
//! other side's records of its key whose timestamps lie within its window, with the larger
//! timestamp of the two. In a left or outer join, a record that finds no partner waits until
//! its window closes (stream time past its timestamp, the window's reach and the grace) and is
//! then emitted alone with its own timestamp, unless a partner arrived meanwhile; one whose
//! window has already passed when it arrives is emitted alone at once. Late records are not
//! dropped, as in Kafka Streams.
//!
//! Stream time is the one stamped on each record when it was dispatched (both sides' sources
//! share it), so what joins and what closes depends neither on the number of lanes nor on how
//! they interleave. A key's closed records are emitted before anything else of that key, and
//! the rest when the epoch ends, so each key's outputs come in one order whatever the epoch
//! boundaries.

mod node;
mod state;

use std::sync::Arc;
use std::time::Duration;

use self::node::{LeftOf, RightOf, SideNode};
use self::state::JoinState;

use super::window::millis;
use super::{aggregate::claim, lock, Stream};
use crate::operator::{Data, Key};
use crate::state::{StoreKey, StoreValue};

/// How far apart in time two records may be to join, and how long a record waits for a partner
/// after that (Kafka Streams' `JoinWindows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinWindows {
    before: i64,
    after: i64,
    grace: i64,
}

impl JoinWindows {
    /// Records join when their timestamps differ by at most `difference`; a left or outer join
    /// waits `grace` more for late partners before emitting a record alone.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows { before: d, after: d, grace: millis(grace) }
    }

    /// Records join when their timestamps differ by at most `difference`, with no grace.
    pub fn of_time_difference_without_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// A left record joins right records up to `before` earlier than itself (and a right record
    /// left records up to `before` later).
    pub fn before(mut self, before: Duration) -> Self {
        self.before = millis(before);
        self
    }

    /// A left record joins right records up to `after` later than itself (and a right record
    /// left records up to `after` earlier).
    pub fn after(mut self, after: Duration) -> Self {
        self.after = millis(after);
        self
    }

    /// How far before and after its own timestamp a record of `side` finds partners.
    fn reach(&self, side: Side) -> (i64, i64) {
        match side {
            Side::Left => (self.before, self.after),
            Side::Right => (self.after, self.before),
        }
    }

    /// How long each side keeps its records: the window's span and the grace period.
    fn retention(&self) -> i64 {
        self.before.saturating_add(self.after).saturating_add(self.grace)
    }

    /// The stream time after which a record of `side` at `ts` can no longer get a partner: its
    /// window is closed once stream time is past it.
    fn close(&self, side: Side, ts: i64) -> i64 {
        ts.saturating_add(self.reach(side).1).saturating_add(self.grace)
    }
}

/// Which side of the join a record comes from. Right sorts first: Kafka Streams emits records
/// that closed together in (timestamp, right before left, key) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Side {
    Right,
    Left,
}

/// What a join joins: `(left, right)` with either missing where the join emits records alone.
type Joiner<L, R, O> = Arc<dyn Fn(Option<L>, Option<R>) -> Option<O> + Send + Sync>;

/// The fixed part of one join, shared by its nodes.
struct Spec<L, R, O> {
    what: &'static str,
    windows: JoinWindows,
    /// Whether unmatched left (right) records are emitted alone.
    left_alone: bool,
    right_alone: bool,
    joiner: Joiner<L, R, O>,
    /// The lane slot of the join's state.
    slot: usize,
    /// A source of the join (its group's stream time closes windows at the epoch's end).
    source: usize,
}

impl<L, R, O> Spec<L, R, O> {
    fn alone(&self, side: Side) -> bool {
        match side {
            Side::Left => self.left_alone,
            Side::Right => self.right_alone,
        }
    }
}

impl<K: Key + StoreKey, V: Data + StoreValue> Stream<K, V> {
    /// Joins each record to `other`'s records of the same key whose timestamps are within
    /// `windows` of its own: `joiner(value, other_value)` per pair, with the later timestamp of
    /// the two (Kafka Streams' `KStream#join(KStream, ValueJoiner, JoinWindows)`). Each side's
    /// recent records are kept in the stores `{store}.left` and `{store}.right`.
    pub fn join_stream<V2, R>(
        &self,
        other: &Stream<K, V2>,
        windows: JoinWindows,
        store: &'static str,
        joiner: impl Fn(V, V2) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        V2: Data + StoreValue,
        R: Data,
    {
        let joiner = Arc::new(move |l: Option<V>, r: Option<V2>| match (l, r) {
            (Some(l), Some(r)) => Some(joiner(l, r)),
            _ => None,
        });
        self.join_streams(other, windows, store, "join_stream", (false, false), joiner)
    }

    /// Like [`Stream::join_stream`], but a record of this stream that finds no partner is
    /// emitted as `joiner(value, None)` once its window closes (Kafka Streams' `leftJoin`).
    pub fn left_join_stream<V2, R>(
        &self,
        other: &Stream<K, V2>,
        windows: JoinWindows,
        store: &'static str,
        joiner: impl Fn(V, Option<V2>) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        V2: Data + StoreValue,
        R: Data,
    {
        let joiner = Arc::new(move |l: Option<V>, r| l.map(|l| joiner(l, r)));
        self.join_streams(other, windows, store, "left_join_stream", (true, false), joiner)
    }

    /// Like [`Stream::left_join_stream`], with records of either side that find no partner
    /// emitted alone (Kafka Streams' `outerJoin`).
    pub fn outer_join_stream<V2, R>(
        &self,
        other: &Stream<K, V2>,
        windows: JoinWindows,
        store: &'static str,
        joiner: impl Fn(Option<V>, Option<V2>) -> R + Send + Sync + 'static,
    ) -> Stream<K, R>
    where
        V2: Data + StoreValue,
        R: Data,
    {
        let joiner =
            Arc::new(move |l: Option<V>, r: Option<V2>| (l.is_some() || r.is_some()).then(|| joiner(l, r)));
        self.join_streams(other, windows, store, "outer_join_stream", (true, true), joiner)
    }

    fn join_streams<V2, R>(
        &self,
        other: &Stream<K, V2>,
        windows: JoinWindows,
        store: &'static str,
        what: &'static str,
        (left_alone, right_alone): (bool, bool),
        joiner: Joiner<V, V2, R>,
    ) -> Stream<K, R>
    where
        V2: Data + StoreValue,
        R: Data,
    {
        let next = self.derive::<K, R>(format!("the output of `{what}` into stores `{store}.left/right`"));
        self.meets(other);
        self.feeds(other, &next);
        if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
            lock(&self.graph).errors.push(format!(
                "`{what}` on streams without a key (`()`): records join by key; give them one first (`key_by`)"
            ));
            return next;
        }
        let names: (&'static str, &'static str) =
            (Box::leak(format!("{store}.left").into()), Box::leak(format!("{store}.right").into()));
        if !claim(self, names.0, what) || !claim(self, names.1, what) {
            return next;
        }
        let slot = {
            let mut graph = lock(&self.graph);
            graph.states.push(JoinState::<K, V, V2>::slot(names));
            // Unmatched records close at the epoch's end; stored ones expire there.
            graph.epoch_end = true;
            graph.states.len() - 1
        };
        let spec =
            Arc::new(Spec { what, windows, left_alone, right_alone, joiner, slot, source: self.source });
        let (out, s) = (Arc::clone(&next.outlet), Arc::clone(&spec));
        self.outlet.add(Arc::new(move |lanes| {
            Box::new(SideNode::<LeftOf, K, V, V2, R>::new(Arc::clone(&s), out.instantiate(lanes)))
        }));
        let out = Arc::clone(&next.outlet);
        other.outlet.add(Arc::new(move |lanes| {
            Box::new(SideNode::<RightOf, K, V, V2, R>::new(Arc::clone(&spec), out.instantiate(lanes)))
        }));
        next
    }
}
