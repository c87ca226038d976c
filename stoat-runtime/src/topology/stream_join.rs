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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::replica::LaneTable;
use super::window::{millis, window_owner};
use super::{aggregate::claim, lock, ErasedState, Stream};
use crate::error::{BoxError, Panicked, Result, StoreError};
use crate::lane::{lane_of, LaneCx, Phase, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Headers, Origin, Record};
use crate::state::{StoreDelta, StoreKey, StoreValue};

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

/// One stored record: its value, and whether it still waits for a partner (to be emitted alone
/// when its window closes).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Held<V> {
    value: V,
    pending: bool,
}

/// A side's records by (key, timestamp), several per pair in arrival order.
type SideTable<K, V> = LaneTable<(K, i64), Vec<Held<V>>>;

/// Where a stored record is in time: (timestamp, side, encoded key).
type At = (i64, Side, Vec<u8>);

/// When a waiting record's window closes, and the record: (close, side, timestamp). Records
/// are emitted alone in this order, so that records that close in different epochs come out in
/// the order they would in one.
type Due = (i64, Side, i64);

/// A lane's records of its own keys by time, to close and expire them without scanning the
/// stores. Rebuilt from the stores after a start or an aborted epoch.
struct TimeIndex<K> {
    /// Every stored (timestamp, side, key), forgotten once out of retention.
    stored: BTreeMap<At, K>,
    /// Records that waited for a partner when stored, by (close, side, key, timestamp); one
    /// matched since is skipped when due.
    pending: BTreeMap<(i64, Side, Vec<u8>, i64), K>,
    /// The same, per key.
    waiting: HashMap<K, BTreeSet<Due>>,
}

impl<K: Key + StoreKey> TimeIndex<K> {
    fn new() -> Self {
        TimeIndex { stored: BTreeMap::new(), pending: BTreeMap::new(), waiting: HashMap::new() }
    }

    /// Adds `key`'s record of `side` at `ts`, waiting until `close` if it waits.
    fn add(&mut self, side: Side, key: &K, ts: i64, waits: Option<i64>) {
        let mut bytes = Vec::new();
        key.encode_key(&mut bytes);
        if let Some(close) = waits {
            self.pending.insert((close, side, bytes.clone(), ts), key.clone());
            self.waiting.entry(key.clone()).or_default().insert((close, side, ts));
        }
        self.stored.insert((ts, side, bytes), key.clone());
    }

    /// Forgets that `key`'s record `due` waits.
    fn forget(&mut self, key: &K, (close, side, ts): Due) {
        let mut bytes = Vec::new();
        key.encode_key(&mut bytes);
        self.pending.remove(&(close, side, bytes, ts));
        if let Some(set) = self.waiting.get_mut(key) {
            set.remove(&(close, side, ts));
            if set.is_empty() {
                self.waiting.remove(key);
            }
        }
    }
}

/// A lane's state of one join: both sides' stores and the time index of its keys.
pub(crate) struct JoinState<K, L, R> {
    left: SideTable<K, L>,
    right: SideTable<K, R>,
    index: TimeIndex<K>,
    /// Whether `index` reflects the stores.
    indexed: bool,
}

/// A pair to join (a record alone has `None` on the other side), with its key and timestamp,
/// and whether it comes from the record being processed (else from the store: a record that
/// waited).
type Pair<K, L, R> = (K, Option<L>, Option<R>, i64, bool);

impl<K: Key + StoreKey, L: Data + StoreValue, R: Data + StoreValue> JoinState<K, L, R> {
    fn slot((left, right): (&'static str, &'static str)) -> super::StateSlot {
        let specs = vec![
            SideTable::<K, L>::spec(left, "StreamJoin", 1),
            SideTable::<K, R>::spec(right, "StreamJoin", 1),
        ];
        let id = super::SlotId::Keyed(left, std::any::TypeId::of::<Self>());
        super::StateSlot::custom(id, specs, move |env| {
            Ok(Box::new(JoinState {
                left: SideTable::<K, L>::open(env, left, window_owner::<K>)?,
                right: SideTable::<K, R>::open(env, right, window_owner::<K>)?,
                index: TimeIndex::new(),
                indexed: false,
            }) as Box<dyn ErasedState>)
        })
    }

    fn ensure_index(
        &mut self,
        windows: &JoinWindows,
        (lane, lanes): (usize, usize),
    ) -> Result<(), StoreError> {
        if self.indexed {
            return Ok(());
        }
        let mut index = TimeIndex::new();
        for ((key, ts), held) in self.left.table.iter()? {
            if lane_of(&key, lanes) == lane {
                let waits = held.iter().any(|h| h.pending).then(|| windows.close(Side::Left, ts));
                index.add(Side::Left, &key, ts, waits);
            }
        }
        for ((key, ts), held) in self.right.table.iter()? {
            if lane_of(&key, lanes) == lane {
                let waits = held.iter().any(|h| h.pending).then(|| windows.close(Side::Right, ts));
                index.add(Side::Right, &key, ts, waits);
            }
        }
        self.index = index;
        self.indexed = true;
        Ok(())
    }

    /// Takes `key`'s records `due` that still wait, into `out`.
    fn take_waiting(
        &mut self,
        key: &K,
        due: Due,
        lane: (usize, usize),
        out: &mut Vec<Pair<K, L, R>>,
    ) -> Result<(), StoreError> {
        self.index.forget(key, due);
        let (_, side, ts) = due;
        match side {
            Side::Left => take_from(&mut self.left, key, ts, lane, |v| {
                out.push((key.clone(), Some(v), None, ts, false))
            }),
            Side::Right => take_from(&mut self.right, key, ts, lane, |v| {
                out.push((key.clone(), None, Some(v), ts, false))
            }),
        }
    }

    /// Takes `key`'s waiting records whose windows stream time `st` has closed, in order of
    /// closing.
    fn close_key(
        &mut self,
        key: &K,
        st: i64,
        lane: (usize, usize),
        out: &mut Vec<Pair<K, L, R>>,
    ) -> Result<(), StoreError> {
        let Some(set) = self.index.waiting.get(key) else { return Ok(()) };
        let due: Vec<Due> = set.iter().copied().take_while(|&(close, _, _)| close < st).collect();
        for due in due {
            self.take_waiting(key, due, lane, out)?;
        }
        Ok(())
    }

    /// At the epoch's end: takes every waiting record whose window has closed at stream time
    /// `st`, and deletes the records out of retention.
    fn close_all(
        &mut self,
        st: i64,
        windows: &JoinWindows,
        lane: (usize, usize),
        out: &mut Vec<Pair<K, L, R>>,
    ) -> Result<(), StoreError> {
        let due: Vec<(Due, K)> = self
            .index
            .pending
            .iter()
            .take_while(|((close, ..), _)| *close < st)
            .map(|(&(close, side, _, ts), key)| ((close, side, ts), key.clone()))
            .collect();
        for (due, key) in due {
            self.take_waiting(&key, due, lane, out)?;
        }
        let horizon = st.saturating_sub(windows.retention());
        while let Some(first) = self.index.stored.first_entry() {
            if first.key().0 >= horizon {
                break;
            }
            let ((ts, side, _), key) = first.remove_entry();
            match side {
                Side::Left => self.left.on_lane(lane).delete(&(key, ts))?,
                Side::Right => self.right.on_lane(lane).delete(&(key, ts))?,
            }
        }
        Ok(())
    }
}

/// Marks `key`'s records at `ts` in `table` as no longer waiting, handing each that waited to
/// `emit`.
fn take_from<K: Key + StoreKey, V: Data + StoreValue>(
    table: &mut SideTable<K, V>,
    key: &K,
    ts: i64,
    lane: (usize, usize),
    mut emit: impl FnMut(V),
) -> Result<(), StoreError> {
    let id = (key.clone(), ts);
    let table = table.on_lane(lane);
    let Some(mut held) = table.get(&id)? else { return Ok(()) };
    let mut changed = false;
    for h in held.iter_mut().filter(|h| h.pending) {
        h.pending = false;
        changed = true;
        emit(h.value.clone());
    }
    if changed {
        table.put(id, held)?;
    }
    Ok(())
}

impl<K: Key + StoreKey, L: 'static, R: 'static> ErasedState for JoinState<K, L, R>
where
    L: Data + StoreValue,
    R: Data + StoreValue,
{
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn end_batch(&mut self) {
        ErasedState::end_batch(&mut self.left);
        ErasedState::end_batch(&mut self.right);
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.left.seal(out)?;
        self.right.seal(out)
    }
}

/// A node's own side's store and the other's.
type Sides<'a, K, Mine, Theirs> = (&'a mut SideTable<K, Mine>, &'a mut SideTable<K, Theirs>);

/// Which side a node serves: its value type and the other's, in the join's types.
trait SideOf<K, L, R>: Send + Sync + 'static {
    type Mine: Data + StoreValue;
    type Theirs: Data + StoreValue;
    const SIDE: Side;
    fn split(state: &mut JoinState<K, L, R>) -> Sides<'_, K, Self::Mine, Self::Theirs>;
    /// Puts a pair in (left, right) order.
    fn pair(mine: Option<Self::Mine>, theirs: Option<Self::Theirs>) -> (Option<L>, Option<R>);
}

struct LeftOf;
struct RightOf;

impl<K: Key + StoreKey, L: Data + StoreValue, R: Data + StoreValue> SideOf<K, L, R> for LeftOf {
    type Mine = L;
    type Theirs = R;
    const SIDE: Side = Side::Left;
    fn split(state: &mut JoinState<K, L, R>) -> (&mut SideTable<K, L>, &mut SideTable<K, R>) {
        (&mut state.left, &mut state.right)
    }
    fn pair(mine: Option<L>, theirs: Option<R>) -> (Option<L>, Option<R>) {
        (mine, theirs)
    }
}

impl<K: Key + StoreKey, L: Data + StoreValue, R: Data + StoreValue> SideOf<K, L, R> for RightOf {
    type Mine = R;
    type Theirs = L;
    const SIDE: Side = Side::Right;
    fn split(state: &mut JoinState<K, L, R>) -> (&mut SideTable<K, R>, &mut SideTable<K, L>) {
        (&mut state.right, &mut state.left)
    }
    fn pair(mine: Option<R>, theirs: Option<L>) -> (Option<L>, Option<R>) {
        (theirs, mine)
    }
}

/// One side of a join on one lane. The left side's node also closes and expires records when
/// the epoch ends.
struct SideNode<S, K, L, R, O> {
    spec: Arc<Spec<L, R, O>>,
    /// Pairs to join, and their timestamps; reused.
    pairs: Vec<Pair<K, L, R>>,
    next: Box<dyn Push<K, O>>,
    _side: std::marker::PhantomData<fn(S)>,
}

impl<S, K, L, R, O> SideNode<S, K, L, R, O>
where
    S: SideOf<K, L, R>,
    K: Key + StoreKey,
    L: Data + StoreValue,
    R: Data + StoreValue,
    O: Data,
{
    fn new(spec: Arc<Spec<L, R, O>>, next: Box<dyn Push<K, O>>) -> Self {
        SideNode { spec, pairs: Vec::new(), next, _side: std::marker::PhantomData }
    }

    /// Stores the record and pairs it with its partners (and its key's closed records) into
    /// `self.pairs`.
    fn pair_up(
        &mut self,
        key: &K,
        value: S::Mine,
        ts: i64,
        st: i64,
        cx: &LaneCx,
    ) -> std::result::Result<(), BoxError> {
        let spec = Arc::clone(&self.spec);
        let lane = (cx.lane, cx.lanes());
        self.with_state(cx, |state, out| {
            let waits = spec.left_alone || spec.right_alone;
            if waits {
                state.ensure_index(&spec.windows, lane)?;
                state.close_key(key, st, lane, out)?;
            }
            let retention = spec.windows.retention();
            let (before, after) = spec.windows.reach(S::SIDE);
            // Partners out of retention are gone (Kafka Streams' window store no longer finds them).
            let from = ts.saturating_sub(before).max(st.saturating_sub(retention).saturating_add(1)).max(0);
            let to = ts.saturating_add(after).max(0);
            let (mine, theirs) = S::split(state);
            let mut matched = false;
            if from <= to {
                for ((k, at), mut held) in theirs.table.range((key.clone(), from)..=(key.clone(), to))? {
                    let mut changed = false;
                    for h in &mut held {
                        matched = true;
                        let (l, r) = S::pair(Some(value.clone()), Some(h.value.clone()));
                        out.push((key.clone(), l, r, ts.max(at), true));
                        changed |= std::mem::replace(&mut h.pending, false);
                    }
                    if changed {
                        theirs.on_lane(lane).put((k, at), held)?;
                    }
                }
            }
            let mut pending = false;
            if spec.alone(S::SIDE) && !matched {
                if ts.saturating_add(after) < st {
                    // Out of order: its window has already passed.
                    let (l, r) = S::pair(Some(value.clone()), None);
                    out.push((key.clone(), l, r, ts, true));
                } else {
                    pending = true;
                }
            }
            if pending || ts > st.saturating_sub(retention) {
                let id = (key.clone(), ts);
                let table = mine.on_lane(lane);
                let mut held = table.get(&id)?.unwrap_or_default();
                held.push(Held { value, pending });
                table.put(id, held)?;
                if state.indexed {
                    state.index.add(S::SIDE, key, ts, pending.then(|| spec.windows.close(S::SIDE, ts)));
                }
            }
            Ok(())
        })
    }

    /// Joins the pairs in `self.pairs` and passes the results on: those of the record being
    /// processed with its headers, records that waited with none.
    fn emit(&mut self, origin: Origin, headers: &Headers, cx: &mut LaneCx) -> Result<usize> {
        let mut pairs = std::mem::take(&mut self.pairs);
        let mut sent = 0;
        for (key, l, r, timestamp, own) in pairs.drain(..) {
            let joiner = &self.spec.joiner;
            match Panicked::catch(|| joiner(l, r)) {
                Ok(Some(value)) => {
                    let headers = if own { headers.clone() } else { Headers::default() };
                    let record = Record { key, value, timestamp, headers };
                    self.next.push(Envelope { record, origin }, cx)?;
                    sent += 1;
                }
                Ok(None) => {}
                Err(panic) => cx.operator_error(self.spec.what, origin, Box::new(panic))?,
            }
        }
        self.pairs = pairs;
        Ok(sent)
    }

    /// Runs `f` on this lane's join state.
    fn with_state<T>(
        &mut self,
        cx: &LaneCx,
        f: impl FnOnce(&mut JoinState<K, L, R>, &mut Vec<Pair<K, L, R>>) -> std::result::Result<T, StoreError>,
    ) -> std::result::Result<T, BoxError> {
        let call = Call::on_states(&cx.states);
        let mut guard = call.borrow_mut(self.spec.slot)?;
        let slot = self.spec.slot;
        let state = guard
            .as_any_mut()
            .downcast_mut::<JoinState<K, L, R>>()
            .ok_or_else(|| format!("state slot {slot} holds another store than the join expects"))?;
        Ok(f(state, &mut self.pairs)?)
    }
}

impl<S, K, L, R, O> Push<K, S::Mine> for SideNode<S, K, L, R, O>
where
    S: SideOf<K, L, R>,
    K: Key + StoreKey,
    L: Data + StoreValue,
    R: Data + StoreValue,
    O: Data,
{
    fn push(&mut self, env: Envelope<K, S::Mine>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        if let Err(e) = self.pair_up(&key, value, timestamp, origin.stream_time, cx) {
            self.pairs.clear();
            return cx.operator_error(self.spec.what, origin, e);
        }
        self.emit(origin, &headers, cx).map(drop)
    }

    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        let lane = (cx.lane, cx.lanes());
        let origin = Origin { source: self.spec.source as u32, ..Default::default() };
        let done = match cx.phase {
            // The aborted epoch's writes are gone: rebuild the index from the stores.
            Phase::Discard => self.with_state(cx, |state, _| {
                state.indexed = false;
                Ok(())
            }),
            // One node per join closes and expires its records.
            Phase::EpochEnd if S::SIDE == Side::Left => {
                let (st, windows) = (cx.stream_time_of(self.spec.source), self.spec.windows);
                self.with_state(cx, |state, out| {
                    state.ensure_index(&windows, lane)?;
                    state.close_all(st, &windows, lane, out)
                })
            }
            _ => Ok(()),
        };
        match done {
            Ok(()) => {
                let sent = self.emit(origin, &Headers::default(), cx)?;
                cx.released += sent;
            }
            Err(e) => {
                self.pairs.clear();
                cx.operator_error(self.spec.what, origin, e)?;
            }
        }
        self.next.flush(cx)
    }
}
