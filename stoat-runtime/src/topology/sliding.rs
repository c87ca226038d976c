//! Sliding windows (Kafka Streams' `SlidingWindows`): windows of a fixed size `[start, start +
//! size]` (both ends inclusive) defined by the records themselves. Each record has a window that
//! ends at it (its left window) and, if later records of its key are near, one that starts just
//! after it (its right window); a record updates every existing window of its key that contains
//! it, and creates its own windows from its neighbours' aggregates, as Kafka Streams 4.4's
//! `KStreamSlidingWindowAggregate` does. A window takes a record while its end is at least
//! stream time minus the grace period; a record whose windows have all closed is dropped and
//! counted.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::aggregate::{claim, fold_shorthands};
use super::replica::{Entry, LaneTable};
use super::waiting::Waiting;
use super::window::{millis, window_owner, Window, Windowed};
use super::{lock, Grouped, Stream};
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{LaneCx, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Origin, Record};
use crate::state::{StoreKey, StoreValue};

/// Windows of `size` around each record, accepting records up to `grace` late (Kafka Streams'
/// `SlidingWindows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindows {
    size: i64,
    grace: i64,
}

impl SlidingWindows {
    /// Records within `difference` of each other share windows; records up to `grace` late are
    /// still counted.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        SlidingWindows { size: millis(difference), grace: millis(grace) }
    }

    /// Sliding windows with no grace.
    pub fn of_time_difference_with_no_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }
}

/// A grouped stream cut into sliding windows, ready to aggregate.
pub struct SlidingGrouped<K, V> {
    grouped: Grouped<K, V>,
    windows: SlidingWindows,
    /// Emit each window once, when it closes.
    on_close: bool,
}

impl<K, V> fmt::Debug for SlidingGrouped<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingGrouped").field("windows", &self.windows).finish_non_exhaustive()
    }
}

impl<K: Key + StoreKey, V: Data> Grouped<K, V> {
    /// Cuts each group into sliding windows for a windowed aggregation.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingGrouped<K, V> {
        SlidingGrouped { grouped: Grouped { stream: self.stream.alias() }, windows, on_close: false }
    }
}

impl<K: Key + StoreKey, V: Data> SlidingGrouped<K, V> {
    /// Emits each window once, with its final aggregate, when stream time has passed its end
    /// plus the grace period (Kafka Streams' `suppress(untilWindowCloses(..))`), at the end of
    /// that epoch, instead of on every update.
    pub fn emit_on_window_close(mut self) -> Self {
        self.on_close = true;
        self
    }

    fold_shorthands!(Windowed<K>, " and window");

    fn fold<A: Data + StoreValue>(
        &self,
        store: &'static str,
        what: &'static str,
        f: impl Fn(&K, Option<A>, V) -> A + Send + Sync + 'static,
    ) -> Stream<Windowed<K>, A> {
        let stream = &self.grouped.stream;
        let next = stream
            .derive::<Windowed<K>, A>(format!("the output of sliding-window `{what}` into store `{store}`"));
        if !claim(stream, store, what) {
            return next;
        }
        let slot = {
            let mut graph = lock(&stream.graph);
            graph.states.push(LaneTable::<(K, i64), Slide<A>>::slot(
                store,
                "SlidingWindows",
                1,
                window_owner::<K>,
            ));
            graph.epoch_end |= self.on_close;
            graph.states.len() - 1
        };
        let (f, windows, outlet) = (Arc::new(f), self.windows, Arc::clone(&next.outlet));
        let (on_close, source) = (self.on_close, stream.source);
        stream.outlet.add(Arc::new(move |lanes| {
            Box::new(SlidingNode {
                what,
                slot,
                windows,
                f: Arc::clone(&f),
                next: outlet.instantiate(lanes),
                closing: on_close.then(|| (source, Waiting::default())),
            })
        }));
        next
    }
}

/// A stored sliding window: its aggregate and largest timestamp, and, with emit-on-close,
/// whether it has been emitted (it stays, as later windows are made from it).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Slide<A> {
    value: A,
    timestamp: i64,
    emitted: bool,
}

/// One sliding-window aggregation on one lane.
struct SlidingNode<F, K, A> {
    what: &'static str,
    slot: usize,
    windows: SlidingWindows,
    f: Arc<F>,
    next: Box<dyn Push<Windowed<K>, A>>,
    /// With emit-on-close: a source of the stream (its group's time closes windows) and this
    /// lane's windows waiting to close, by end.
    closing: Option<(usize, Waiting<(K, i64)>)>,
}

/// Folds a record's value into a window's aggregate (`None`: a new window).
type Fold<'f, A, V> = dyn FnMut(Option<A>, &V) -> std::result::Result<A, BoxError> + 'f;

/// What a record does to its key's windows: the windows written, in the order they are emitted,
/// and how many closed windows it could not update.
struct Plan<A> {
    writes: Vec<(i64, Entry<A>)>,
    late: u64,
}

impl<A: Clone> Plan<A> {
    /// Kafka Streams' `updateWindowAndForward`: folds the record into the window at `start`
    /// (from `base`, `None` for a new window) unless the window has closed.
    fn update<V>(
        &mut self,
        start: i64,
        base: Option<Entry<A>>,
        (value, ts, size, close): (&V, i64, i64, i64),
        fold: &mut Fold<'_, A, V>,
    ) -> std::result::Result<(), BoxError> {
        if start + size < close {
            self.late += 1;
            return Ok(());
        }
        let timestamp = base.as_ref().map_or(ts, |b| b.timestamp.max(ts));
        let value = fold(base.map(|b| b.value), value)?;
        self.writes.push((start, Entry { value, timestamp }));
        Ok(())
    }
}

/// The windows of a record at `ts`, given its key's windows with starts in
/// `[max(0, ts - 2 size), ts + 1]` in ascending order.
fn plan<A: Clone, V>(
    existing: Vec<(i64, Entry<A>)>,
    value: &V,
    ts: i64,
    (size, close): (i64, i64),
    fold: &mut Fold<'_, A, V>,
) -> std::result::Result<Plan<A>, BoxError> {
    let mut plan = Plan { writes: Vec::new(), late: 0 };
    let at = (value, ts, size, close);
    let starts: HashSet<i64> = existing.iter().map(|(s, _)| *s).collect();
    let mut right_agg: Option<Entry<A>> = None;
    let mut right_created = false;
    let mut previous: Option<i64> = None;
    if ts < size {
        // Early records share the window [0, size] (no negative starts).
        let mut combined: Option<Entry<A>> = None;
        for (start, entry) in existing {
            if start == 0 {
                if entry.timestamp < ts {
                    previous = Some(entry.timestamp);
                }
                combined = Some(entry);
            } else if start <= ts {
                right_agg = Some(entry.clone());
                plan.update(start, Some(entry), at, fold)?;
            } else if start == ts + 1 {
                right_created = true;
            }
        }
        if right_agg.is_none() {
            right_agg = combined.clone().filter(|c| c.timestamp > ts);
        }
        if let Some(right) = right_agg.filter(|r| !right_created && r.timestamp > ts) {
            plan.writes.push((ts + 1, right));
        }
        if let Some(p) = previous.filter(|p| !starts.contains(&(p + 1))) {
            plan.update(p + 1, None, at, fold)?;
        }
        plan.update(0, combined, at, fold)?;
        return Ok(plan);
    }
    let mut left_agg: Option<Entry<A>> = None;
    let mut left_created = false;
    for (start, entry) in existing {
        let end = start + size;
        if end < ts {
            previous = Some(entry.timestamp);
            left_agg = Some(entry);
        } else if end == ts {
            left_created = true;
            if entry.timestamp < ts {
                previous = Some(entry.timestamp);
            }
            plan.update(start, Some(entry), at, fold)?;
        } else if start <= ts {
            right_agg = Some(entry.clone());
            plan.update(start, Some(entry), at, fold)?;
        } else if start == ts + 1 {
            right_created = true;
        }
    }
    // The previous record's right window, if the record falls in it.
    if let Some(p) = previous {
        if !starts.contains(&(p + 1)) && p + 1 + size >= ts {
            plan.update(p + 1, None, at, fold)?;
        }
    }
    // The record's left window, from the previous record's if that is in it.
    if !left_created {
        let base = match (previous, left_agg) {
            (Some(p), Some(left)) if ts - size <= p => Some(Entry { value: left.value, timestamp: ts }),
            _ => None,
        };
        plan.update(ts - size, base, at, fold)?;
    }
    // The record's right window, if later records are near.
    if let Some(right) = right_agg.filter(|r| !right_created && r.timestamp > ts) {
        plan.writes.push((ts + 1, right));
    }
    Ok(plan)
}

impl<F, K, V, A> Push<K, V> for SlidingNode<F, K, A>
where
    F: Fn(&K, Option<A>, V) -> A + Send + Sync + 'static,
    K: Key + StoreKey,
    V: Data,
    A: Data + StoreValue,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp: ts, headers } = record;
        let SlidingWindows { size, grace } = self.windows;
        let close = origin.stream_time.saturating_sub(grace);
        if ts.saturating_add(1).saturating_add(size) <= close {
            cx.shared.stats.drop_late(1);
            return Ok(());
        }
        let lane = (cx.lane, cx.lanes());
        let final_only = self.closing.is_some();
        let planned = {
            let call = Call::on_states(&cx.states);
            let (f, slot) = (&self.f, self.slot);
            (|| -> std::result::Result<Plan<A>, BoxError> {
                let from = (ts - 2 * size).max(0);
                let existing = LaneTable::<(K, i64), Slide<A>>::read(&call, slot, |t| {
                    t.range((key.clone(), from)..=(key.clone(), ts + 1))
                })?;
                let existing = existing
                    .into_iter()
                    .map(|((_, start), e)| (start, Entry { value: e.value, timestamp: e.timestamp }))
                    .collect();
                let mut fold = |old: Option<A>, v: &V| {
                    Panicked::catch(|| f(&key, old, v.clone())).map_err(BoxError::from)
                };
                let plan = plan(existing, &value, ts, (size, close), &mut fold)?;
                // Windows no later record can reach (it would be dropped, or fetch past them),
                // once emitted with emit-on-close.
                let horizon = close.saturating_sub(3 * size + 1);
                LaneTable::<(K, i64), Slide<A>>::write(&call, slot, lane, |t| {
                    for ((k, start), old) in t.range((key.clone(), i64::MIN)..(key.clone(), horizon))? {
                        if old.emitted || !final_only {
                            t.delete(&(k, start))?;
                        }
                    }
                    for (start, entry) in &plan.writes {
                        let slide =
                            Slide { value: entry.value.clone(), timestamp: entry.timestamp, emitted: false };
                        t.put((key.clone(), *start), slide)?;
                    }
                    Ok(())
                })?;
                Ok(plan)
            })()
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => return cx.operator_error(self.what, origin, e),
        };
        if plan.late > 0 {
            cx.shared.stats.drop_late(plan.late);
        }
        if let Some((_, waiting)) = &mut self.closing {
            for (start, _) in plan.writes {
                waiting.add(start + size, &key, start, (key.clone(), start));
            }
            return Ok(());
        }
        for (start, entry) in plan.writes {
            let record = Record {
                key: Windowed { key: key.clone(), window: Window { start, end: start + size } },
                value: entry.value,
                timestamp: entry.timestamp,
                headers: headers.clone(),
            };
            self.next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        match (cx.phase, &mut self.closing) {
            (crate::lane::Phase::Discard, Some((_, waiting))) => waiting.reset(),
            (crate::lane::Phase::EpochEnd, Some(_)) => {
                if let Err(e) = self.emit_closed(cx) {
                    return cx.operator_error(self.what, Origin::default(), e);
                }
            }
            _ => {}
        }
        self.next.flush(cx)
    }
}

impl<F, K: Key + StoreKey, A: Data + StoreValue> SlidingNode<F, K, A> {
    /// At the epoch's end: emits (and forgets) this lane's windows that stream time has closed
    /// (their end is before it minus grace), in order of end, then key.
    fn emit_closed(&mut self, cx: &mut LaneCx) -> std::result::Result<(), BoxError> {
        let SlidingWindows { size, grace } = self.windows;
        let (lane, lanes) = (cx.lane, cx.lanes());
        let Some((source, waiting)) = &mut self.closing else { return Ok(()) };
        let source = *source;
        let call = Call::on_states(&cx.states);
        if !waiting.loaded() {
            let all = LaneTable::<(K, i64), Slide<A>>::read(&call, self.slot, |t| t.iter())?;
            let mine =
                all.into_iter().filter(|((k, _), s)| !s.emitted && crate::lane::lane_of(k, lanes) == lane);
            waiting.load(mine.map(|((k, start), _)| (start + size, k.clone(), start, (k, start))));
        }
        // A window takes records while its end is at least stream time minus grace.
        let close = cx.stream_time_of(source).saturating_sub(grace);
        let due = waiting.due(close.saturating_sub(1));
        let mut emitted = Vec::with_capacity(due.len());
        LaneTable::<(K, i64), Slide<A>>::write(&call, self.slot, (lane, lanes), |t| {
            for id in due {
                if let Some(slide) = t.get(&id)? {
                    // Kept (marked): later windows of the key are made from it.
                    t.put(id.clone(), Slide { emitted: true, ..slide.clone() })?;
                    emitted.push((id, slide));
                }
            }
            Ok(())
        })?;
        let origin = Origin { source: source as u32, ..Origin::default() };
        for ((key, start), entry) in emitted {
            let record = Record {
                key: Windowed { key, window: Window { start, end: start + size } },
                value: entry.value,
                timestamp: entry.timestamp,
                headers: Default::default(),
            };
            cx.released += 1;
            self.next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }
}
