//! Windowed aggregations over event time: tumbling and hopping windows with a grace period
//! (Kafka Streams' `TimeWindows`). A record updates every window that contains its timestamp
//! and is still open; a window closes once stream time reaches its end plus the grace period,
//! and records for closed windows are dropped and counted.
//!
//! Stream time is the largest timestamp dispatched so far from the sources the record's stream
//! meets (stamped on each record when it is dispatched, carried through re-keys), so whether a
//! record is late does not depend on the number of lanes or on how they interleave.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::aggregate::{claim, fold_shorthands};
use super::replica::{Entry, LaneTable};
use super::{lock, Grouped, Stream};
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{lane_of, LaneCx, Phase, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Record};
use crate::state::{key_bytes, StoreKey, StoreValue};

/// A time window `[start, end)`, in ms since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// The first instant in the window.
    pub start: i64,
    /// The first instant after it.
    pub end: i64,
}

/// A key and the window of its aggregate: the key of a windowed aggregation's outputs. It prints
/// as Kafka Streams' `Windowed` does (`[key@start/end]`) and is written to topics as its
/// `TimeWindowedSerializer` writes it (see [`TimeWindowed`](crate::codec::TimeWindowed)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

impl<K: fmt::Display> fmt::Display for Windowed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}@{}/{}]", self.key, self.window.start, self.window.end)
    }
}

/// Tumbling or hopping windows aligned to the epoch (Kafka Streams' `TimeWindows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindows {
    size: i64,
    advance: i64,
    grace: i64,
}

pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl TimeWindows {
    /// Tumbling windows of `size` that accept records up to `grace` after they end.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size = millis(size).max(1);
        TimeWindows { size, advance: size, grace: millis(grace) }
    }

    /// Tumbling windows of `size` that accept no record after they end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Hopping windows: a new window every `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance = millis(advance).clamp(1, self.size);
        self
    }

    /// The window size.
    pub fn size(&self) -> Duration {
        Duration::from_millis(self.size as u64)
    }

    /// The windows that contain `timestamp`, by ascending start (Kafka Streams' `windowsFor`).
    fn windows_for(&self, timestamp: i64) -> impl Iterator<Item = Window> + '_ {
        let first = ((timestamp - self.size + self.advance).max(0) / self.advance) * self.advance;
        (0..)
            .map(move |i| first + i * self.advance)
            .take_while(move |&start| start <= timestamp)
            .map(|start| Window { start, end: start + self.size })
    }
}

/// What emit-on-close does when its bound on windows waiting to close is reached (Kafka
/// Streams' `Suppressed.BufferConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferFull {
    /// Stop the app with [`Error::BufferFull`](crate::Error::BufferFull) (`shutDownWhenFull`).
    StopApp,
    /// Emit the window that would close first now, with its aggregate so far, and forget it
    /// (`emitEarlyWhenFull`): a later record for it starts it again, so it may come out more
    /// than once.
    EmitEarly,
}

/// A grouped stream cut into windows, ready to aggregate (Kafka Streams'
/// `TimeWindowedKStream`).
pub struct WindowedGrouped<K, V> {
    grouped: Grouped<K, V>,
    windows: TimeWindows,
    /// Emit each window once, when it closes (Kafka Streams' `EmitStrategy.onWindowClose()`).
    on_close: bool,
    /// With `on_close`: at most this many windows wait to close, and what happens beyond.
    bound: Option<(usize, BufferFull)>,
}

impl<K, V> fmt::Debug for WindowedGrouped<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedGrouped").field("windows", &self.windows).finish_non_exhaustive()
    }
}

impl<K: Key + StoreKey, V: Data> Grouped<K, V> {
    /// Cuts each group into `windows` for a windowed aggregation.
    pub fn windowed_by(&self, windows: TimeWindows) -> WindowedGrouped<K, V> {
        WindowedGrouped {
            grouped: Grouped { stream: self.stream.alias() },
            windows,
            on_close: false,
            bound: None,
        }
    }
}

/// The lane that owns a window store entry: the lane of its key.
pub(super) fn window_owner<K: std::hash::Hash>(entry: &(K, i64), lanes: usize) -> usize {
    lane_of(&entry.0, lanes)
}

impl<K: Key + StoreKey, V: Data> WindowedGrouped<K, V> {
    /// Emits each window once, with its final aggregate, when it closes (stream time at its end
    /// plus the grace period), instead of on every update (Kafka Streams'
    /// `emitStrategy(EmitStrategy.onWindowClose())`, or `suppress(untilWindowCloses(..))`).
    /// Windows that close in an epoch are emitted when it ends, in order of end, then key.
    pub fn emit_on_window_close(mut self) -> Self {
        self.on_close = true;
        self
    }

    /// Like [`WindowedGrouped::emit_on_window_close`], with at most `max_windows` windows
    /// waiting to close (split evenly over the lanes), and `when_full` beyond that. Without a
    /// bound, waiting windows are kept in the store (on disk), as many as the grace period
    /// lets open.
    pub fn emit_on_window_close_bounded(mut self, max_windows: usize, when_full: BufferFull) -> Self {
        self.on_close = true;
        self.bound = Some((max_windows.max(1), when_full));
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
        let next =
            stream.derive::<Windowed<K>, A>(format!("the output of windowed `{what}` into store `{store}`"));
        if !claim(stream, store, what) {
            return next;
        }
        let slot = {
            let mut graph = lock(&stream.graph);
            graph.states.push(LaneTable::<(K, i64), Entry<A>>::slot(store, "Windowed", 1, window_owner::<K>));
            graph.epoch_end |= self.on_close;
            graph.states.len() - 1
        };
        let (f, windows, on_close, source, bound) =
            (Arc::new(f), self.windows, self.on_close, stream.source, self.bound);
        let outlet = Arc::clone(&next.outlet);
        stream.outlet.add(Arc::new(move |lanes| {
            Box::new(WindowFoldNode {
                what,
                slot,
                windows,
                f: Arc::clone(&f),
                next: outlet.instantiate(lanes),
                closing: on_close.then_some(Closing {
                    source,
                    open: None,
                    bound: bound.map(|(max, when)| (max.div_ceil(lanes).max(1), when)),
                    store,
                }),
            })
        }));
        next
    }
}

/// One windowed aggregation on one lane.
struct WindowFoldNode<F, K, A> {
    what: &'static str,
    slot: usize,
    windows: TimeWindows,
    f: Arc<F>,
    next: Box<dyn Push<Windowed<K>, A>>,
    /// With `emit_on_window_close`: the windows this lane keeps open.
    closing: Option<Closing<K>>,
}

/// The open windows of one lane, to emit when they close. A window's entry leaves the store
/// when it is emitted, so the store holds exactly the open windows (and a restart finds them).
struct Closing<K> {
    /// A source upstream of the aggregation: its group's stream time closes the windows.
    source: usize,
    /// `None` until read from the store (at the first epoch end, and again after an aborted
    /// epoch).
    open: Option<OpenWindows<K>>,
    /// This lane's share of the bound on waiting windows, and the policy beyond it.
    bound: Option<(usize, BufferFull)>,
    store: &'static str,
}

/// (end, encoded key) -> (key, start): open windows in the order they are emitted.
type OpenWindows<K> = std::collections::BTreeMap<(i64, Vec<u8>), (K, i64)>;

impl<F, K, V, A> Push<K, V> for WindowFoldNode<F, K, A>
where
    F: Fn(&K, Option<A>, V) -> A + Send + Sync + 'static,
    K: Key + StoreKey,
    V: Data,
    A: Data + StoreValue,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        // A window is open while stream time is before its end plus the grace period.
        let close = origin.stream_time.saturating_sub(self.windows.grace);
        let lane = (cx.lane, cx.lanes());
        let mut late = 0u64;
        let mut updated = Vec::new();
        let final_only = self.closing.is_some();
        let folded = {
            let call = Call::on_states(&cx.states);
            let (f, slot) = (&self.f, self.slot);
            (|| -> std::result::Result<(), BoxError> {
                for window in self.windows.windows_for(timestamp) {
                    if window.end <= close {
                        late += 1;
                        continue;
                    }
                    let id = (key.clone(), window.start);
                    let old = LaneTable::<(K, i64), Entry<A>>::read(&call, slot, |t| t.get(&id))?;
                    let ts = old.as_ref().map_or(timestamp, |o| o.timestamp.max(timestamp));
                    let fresh = old.is_none();
                    let value = Panicked::catch(|| f(&key, old.map(|o| o.value), value.clone()))?;
                    let entry = Entry { value, timestamp: ts };
                    LaneTable::<(K, i64), Entry<A>>::write(&call, slot, lane, |t| {
                        if fresh && !final_only {
                            // A new window: forget the key's windows that can no longer change.
                            for ((k, start), _) in t.prefix(&key)? {
                                if start + self.windows.size <= close {
                                    t.delete(&(k, start))?;
                                }
                            }
                        }
                        t.put(id, entry.clone())
                    })?;
                    updated.push((window, entry));
                }
                Ok(())
            })()
        };
        if late > 0 {
            cx.shared.stats.drop_late(late);
        }
        if let Err(e) = folded {
            return cx.operator_error(self.what, origin, e);
        }
        if let Some(closing) = &mut self.closing {
            if closing.bound.is_some() && closing.open.is_none() {
                // A bound needs the count of waiting windows: read them now.
                if let Err(e) = self.load_open(cx) {
                    return cx.operator_error(self.what, origin, e);
                }
            }
            let Some(closing) = &mut self.closing else { return Ok(()) };
            if let Some(open) = &mut closing.open {
                for (window, _) in updated {
                    open.insert((window.end, key_bytes(&key)), (key.clone(), window.start));
                }
            }
            return self.enforce_bound(origin, cx);
        }
        for (window, entry) in updated {
            let record = Record {
                key: Windowed { key: key.clone(), window },
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
            (Phase::Discard, Some(closing)) => closing.open = None,
            (Phase::EpochEnd, Some(_)) => {
                if let Err(e) = self.emit_closed(cx) {
                    return cx.operator_error(self.what, crate::record::Origin::default(), e);
                }
            }
            _ => {}
        }
        self.next.flush(cx)
    }
}

impl<F, K, A> WindowFoldNode<F, K, A>
where
    K: Key + StoreKey,
    A: Data + StoreValue,
{
    /// At the epoch's end: emits (and forgets) this lane's windows that stream time has closed,
    /// in order of end, then key.
    /// Reads this lane's windows waiting to close from the store (after a start or an aborted
    /// epoch).
    fn load_open(&mut self, cx: &LaneCx) -> std::result::Result<(), BoxError> {
        let (lane, lanes, size) = (cx.lane, cx.lanes(), self.windows.size);
        let Some(closing) = &mut self.closing else { return Ok(()) };
        if closing.open.is_some() {
            return Ok(());
        }
        let call = Call::on_states(&cx.states);
        let mut open = std::collections::BTreeMap::new();
        for ((key, start), _) in LaneTable::<(K, i64), Entry<A>>::read(&call, self.slot, |t| t.iter())? {
            if lane_of(&key, lanes) == lane {
                open.insert((start + size, key_bytes(&key)), (key, start));
            }
        }
        closing.open = Some(open);
        Ok(())
    }

    /// Beyond this lane's share of the bound: stops, or emits the windows that would close
    /// first early.
    fn enforce_bound(&mut self, origin: crate::record::Origin, cx: &mut LaneCx) -> Result<()> {
        let Some(closing) = &mut self.closing else { return Ok(()) };
        let (Some((limit, when_full)), Some(open)) = (closing.bound, &mut closing.open) else {
            return Ok(());
        };
        if open.len() <= limit {
            return Ok(());
        }
        if when_full == BufferFull::StopApp {
            return Err(crate::error::Error::BufferFull {
                store: closing.store.to_string(),
                limit: limit * cx.lanes(),
            });
        }
        let lane = (cx.lane, cx.lanes());
        let size = self.windows.size;
        while open.len() > limit {
            let Some(((end, _), (key, start))) = open.pop_first() else { break };
            let id = (key, start);
            let found = {
                let call = Call::on_states(&cx.states);
                LaneTable::<(K, i64), Entry<A>>::write(&call, self.slot, lane, |t| {
                    let found = t.get(&id)?;
                    t.delete(&id)?;
                    Ok(found)
                })
            };
            let entry = match found {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => return cx.operator_error(self.what, origin, e),
            };
            let record = Record {
                key: Windowed { key: id.0, window: Window { start, end: start + size } },
                value: entry.value,
                timestamp: entry.timestamp,
                headers: Default::default(),
            };
            debug_assert_eq!(end, start + size);
            self.next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }

    fn emit_closed(&mut self, cx: &mut LaneCx) -> std::result::Result<(), BoxError> {
        self.load_open(cx)?;
        let Some(closing) = &mut self.closing else { return Ok(()) };
        let close = cx.stream_time_of(closing.source).saturating_sub(self.windows.grace);
        let (lane, lanes) = (cx.lane, cx.lanes());
        let size = self.windows.size;
        let mut due = Vec::new();
        {
            let call = Call::on_states(&cx.states);
            let Some(open) = &mut closing.open else { return Ok(()) };
            while let Some(entry) = open.first_entry() {
                if entry.key().0 > close {
                    break;
                }
                let id = entry.remove();
                let found = LaneTable::<(K, i64), Entry<A>>::write(&call, self.slot, (lane, lanes), |t| {
                    let found = t.get(&id)?;
                    t.delete(&id)?;
                    Ok(found)
                })?;
                if let Some(found) = found {
                    due.push((id, found));
                }
            }
        }
        let origin = crate::record::Origin { source: closing.source as u32, ..Default::default() };
        for ((key, start), entry) in due {
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
