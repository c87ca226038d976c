//! One side of a stream-stream join on one lane: stores the record, pairs it with the other
//! side's records in its window, and (the left side's node) emits waiting records whose windows
//! closed and expires old ones when the epoch ends.

use std::sync::Arc;

use super::state::{Held, JoinState, Pair, SideTable};
use super::{Side, Spec};
use crate::error::{BoxError, Panicked, Result, StoreError};
use crate::lane::{LaneCx, Phase, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Headers, Origin, Record};
use crate::state::{StoreKey, StoreValue};

/// A node's own side's store and the other's.
type Sides<'a, K, Mine, Theirs> = (&'a mut SideTable<K, Mine>, &'a mut SideTable<K, Theirs>);

/// Which side a node serves: its value type and the other's, in the join's types.
pub(super) trait SideOf<K, L, R>: Send + Sync + 'static {
    type Mine: Data + StoreValue;
    type Theirs: Data + StoreValue;
    const SIDE: Side;
    fn split(state: &mut JoinState<K, L, R>) -> Sides<'_, K, Self::Mine, Self::Theirs>;
    /// Puts a pair in (left, right) order.
    fn pair(mine: Option<Self::Mine>, theirs: Option<Self::Theirs>) -> (Option<L>, Option<R>);
}

pub(super) struct LeftOf;
pub(super) struct RightOf;

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
pub(super) struct SideNode<S, K, L, R, O> {
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
    pub(super) fn new(spec: Arc<Spec<L, R, O>>, next: Box<dyn Push<K, O>>) -> Self {
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
