//! Session windows (Kafka Streams' `SessionWindows`): a key's records separated by less than an
//! inactivity gap form one session. A record merges with the key's sessions within a gap of it;
//! every session it merges is replaced: a tombstone for each old one, then the merged session's
//! new aggregate. A session whose end (its last record, inclusive) is more than gap plus grace
//! behind stream time is closed: a record that would only reach closed sessions is dropped and
//! counted, and closed sessions are no longer found.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::replica::{Entry, LaneTable};
use super::waiting::Waiting;
use super::window::{millis, Window};
use super::{aggregate::claim, lock, Grouped, Stream};
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{lane_of, LaneCx, Phase, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Origin, Record};
use crate::state::{StoreKey, StoreValue};

/// A key and its session `[start, end]` (both inclusive: the session's first and last record):
/// the key of a session aggregation's outputs. Prints as Kafka Streams' `Windowed` does
/// (`[key@start/end]`) and is written as its `SessionWindowedSerializer` writes it (see
/// [`SessionWindowedCodec`](crate::codec::SessionWindowedCodec)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionWindowed<K> {
    /// The record key.
    pub key: K,
    /// The session: its first and last record's timestamps.
    pub window: Window,
}

impl<K: fmt::Display> fmt::Display for SessionWindowed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}@{}/{}]", self.key, self.window.start, self.window.end)
    }
}

/// Sessions of activity separated by an inactivity gap (Kafka Streams' `SessionWindows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionWindows {
    gap: i64,
    grace: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap` without records, accepting records up to `grace` late.
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        SessionWindows { gap: millis(gap), grace: millis(grace) }
    }

    /// Sessions that end after `gap` without records, with no grace.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }
}

/// A grouped stream cut into sessions, ready to aggregate (Kafka Streams'
/// `SessionWindowedKStream`).
pub struct SessionGrouped<K, V> {
    grouped: Grouped<K, V>,
    sessions: SessionWindows,
    /// Emit each session once, when it closes.
    on_close: bool,
}

impl<K, V> fmt::Debug for SessionGrouped<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGrouped").field("sessions", &self.sessions).finish_non_exhaustive()
    }
}

impl<K: Key + StoreKey, V: Data> Grouped<K, V> {
    /// Cuts each group into sessions for a session aggregation.
    pub fn windowed_by_session(&self, sessions: SessionWindows) -> SessionGrouped<K, V> {
        SessionGrouped { grouped: Grouped { stream: self.stream.alias() }, sessions, on_close: false }
    }
}

/// The lane that owns a session store entry `(key, end, start)`: the lane of its key.
fn session_owner<K: std::hash::Hash>(entry: &(K, i64, i64), lanes: usize) -> usize {
    lane_of(&entry.0, lanes)
}

impl<K: Key + StoreKey, V: Data> SessionGrouped<K, V> {
    /// Emits each session once, with its final aggregate, when stream time has passed its end
    /// plus the gap plus the grace period (Kafka Streams' `suppress(untilWindowCloses(..))` on
    /// session windows), at the end of that epoch; merged sessions are never emitted (no
    /// tombstones).
    pub fn emit_on_window_close(mut self) -> Self {
        self.on_close = true;
        self
    }

    /// The number of records per key and session, in the store `store`. Emits, per record,
    /// `None` for every session it merged, then the merged session's count.
    pub fn count(&self, store: &'static str) -> Stream<SessionWindowed<K>, Option<u64>> {
        self.fold(store, "count", |_, _, n: u64| n + 1, |_, a, b| a + b, || 0)
    }

    /// Folds each key's values per session: `init()` for a new session, `aggregator(key,
    /// value, aggregate)` per record, `merger(key, a, b)` when a record joins sessions.
    pub fn aggregate<A: Data + StoreValue>(
        &self,
        store: &'static str,
        init: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
    ) -> Stream<SessionWindowed<K>, Option<A>> {
        self.fold(store, "aggregate", aggregator, merger, init)
    }

    fn fold<A: Data + StoreValue>(
        &self,
        store: &'static str,
        what: &'static str,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        init: impl Fn() -> A + Send + Sync + 'static,
    ) -> Stream<SessionWindowed<K>, Option<A>> {
        let stream = &self.grouped.stream;
        let next = stream.derive(format!("the output of session `{what}` into store `{store}`"));
        if !claim(stream, store, what) {
            return next;
        }
        let slot = {
            let mut graph = lock(&stream.graph);
            graph.states.push(LaneTable::<(K, i64, i64), Entry<A>>::slot(
                store,
                "Sessions",
                1,
                session_owner::<K>,
            ));
            graph.epoch_end |= self.on_close;
            graph.states.len() - 1
        };
        let fns = Arc::new(SessionFns { aggregator, merger, init });
        let (sessions, outlet) = (self.sessions, Arc::clone(&next.outlet));
        let (on_close, source) = (self.on_close, stream.source);
        stream.outlet.add(Arc::new(move |lanes| {
            Box::new(SessionNode {
                what,
                slot,
                sessions,
                fns: Arc::clone(&fns),
                next: outlet.instantiate(lanes),
                closing: on_close.then(|| (source, Waiting::default())),
            })
        }));
        next
    }
}

struct SessionFns<G, M, I> {
    aggregator: G,
    merger: M,
    init: I,
}

/// A session's store key: (key, end, start).
type SessionId<K> = (K, i64, i64);

/// One session aggregation on one lane.
struct SessionNode<G, M, I, K, A> {
    what: &'static str,
    slot: usize,
    sessions: SessionWindows,
    fns: Arc<SessionFns<G, M, I>>,
    next: Box<dyn Push<SessionWindowed<K>, Option<A>>>,
    /// With emit-on-close: a source of the stream (its group's time closes sessions) and this
    /// lane's sessions waiting to close, by end plus gap plus grace.
    closing: Option<(usize, Waiting<SessionId<K>>)>,
}

/// What a record does to its key's sessions: the sessions it replaces (their windows and
/// old ends, as tombstones) and the merged session.
type Merge<A> = (Vec<Window>, Option<(Window, Entry<A>)>);

impl<G, M, I, K, V, A> Push<K, V> for SessionNode<G, M, I, K, A>
where
    G: Fn(&K, V, A) -> A + Send + Sync + 'static,
    M: Fn(&K, A, A) -> A + Send + Sync + 'static,
    I: Fn() -> A + Send + Sync + 'static,
    K: Key + StoreKey,
    V: Data,
    A: Data + StoreValue,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value, timestamp, headers } = record;
        let SessionWindows { gap, grace } = self.sessions;
        let st = origin.stream_time;
        let lane = (cx.lane, cx.lanes());
        let final_only = self.closing.is_some();
        let merged = {
            let call = Call::on_states(&cx.states);
            let (fns, slot) = (&self.fns, self.slot);
            (|| -> std::result::Result<Merge<A>, BoxError> {
                // The key's sessions within a gap of the record that the store still keeps
                // (retention: gap plus grace behind stream time), by end.
                let (kept, expired): (Vec<_>, Vec<_>) =
                    LaneTable::<(K, i64, i64), Entry<A>>::read(&call, slot, |t| t.prefix(&key))?
                        .into_iter()
                        .partition(|((_, end, _), _)| *end > st - gap - grace);
                let found: Vec<((K, i64, i64), Entry<A>)> = kept
                    .into_iter()
                    .filter(|((_, end, start), _)| *end >= timestamp - gap && *start <= timestamp + gap)
                    .collect();
                let mut window = Window { start: timestamp, end: timestamp };
                for ((_, end, start), _) in &found {
                    window = Window { start: window.start.min(*start), end: window.end.max(*end) };
                }
                // With emit-on-close, closed sessions leave the store when emitted.
                if !expired.is_empty() && !final_only {
                    // Sessions past retention are never found again: forget them.
                    LaneTable::<(K, i64, i64), Entry<A>>::write(&call, slot, lane, |t| {
                        expired.iter().try_for_each(|(id, _)| t.delete(id))
                    })?;
                }
                if window.end < st - grace - gap {
                    return Ok((Vec::new(), None));
                }
                let mut acc: Option<A> = None;
                let mut ts = timestamp;
                for (_, entry) in &found {
                    ts = ts.max(entry.timestamp);
                    let value = entry.value.clone();
                    acc = Some(match acc.take() {
                        None => value,
                        Some(a) => Panicked::catch(|| (fns.merger)(&key, a, value))?,
                    });
                }
                let start = match acc {
                    Some(a) => a,
                    None => Panicked::catch(|| (fns.init)())?,
                };
                let value = Panicked::catch(|| (fns.aggregator)(&key, value, start))?;
                let entry = Entry { value, timestamp: ts };
                let replaced: Vec<Window> =
                    found.iter().map(|((_, end, start), _)| Window { start: *start, end: *end }).collect();
                LaneTable::<(K, i64, i64), Entry<A>>::write(&call, slot, lane, |t| {
                    for ((k, end, start), _) in &found {
                        t.delete(&(k.clone(), *end, *start))?;
                    }
                    t.put((key.clone(), window.end, window.start), entry.clone())
                })?;
                Ok((replaced, Some((window, entry))))
            })()
        };
        let (replaced, session) = match merged {
            Ok(merged) => merged,
            Err(e) => return cx.operator_error(self.what, origin, e),
        };
        let Some((window, entry)) = session else {
            cx.shared.stats.drop_late(1);
            return Ok(());
        };
        if let Some((_, waiting)) = &mut self.closing {
            let closes = |end: i64| end.saturating_add(gap).saturating_add(grace);
            for old in replaced {
                waiting.remove(closes(old.end), &key, old.start);
            }
            waiting.add(closes(window.end), &key, window.start, (key.clone(), window.end, window.start));
            return Ok(());
        }
        for old in replaced {
            let record = Record {
                key: SessionWindowed { key: key.clone(), window: old },
                value: None,
                timestamp: old.end,
                headers: headers.clone(),
            };
            self.next.push(Envelope { record, origin }, cx)?;
        }
        let record = Record {
            key: SessionWindowed { key, window },
            value: Some(entry.value),
            timestamp: window.end,
            headers,
        };
        self.next.push(Envelope { record, origin }, cx)
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        match (cx.phase, &mut self.closing) {
            (Phase::Discard, Some((_, waiting))) => waiting.reset(),
            (Phase::EpochEnd, Some(_)) => {
                if let Err(e) = self.emit_closed(cx) {
                    return cx.operator_error(self.what, Origin::default(), e);
                }
            }
            _ => {}
        }
        self.next.flush(cx)
    }
}

impl<G, M, I, K: Key + StoreKey, A: Data + StoreValue> SessionNode<G, M, I, K, A> {
    /// At the epoch's end: emits (and forgets) this lane's sessions that stream time has
    /// closed, in order of closing, then key.
    fn emit_closed(&mut self, cx: &mut LaneCx) -> std::result::Result<(), BoxError> {
        let SessionWindows { gap, grace } = self.sessions;
        let (lane, lanes) = (cx.lane, cx.lanes());
        let Some((source, waiting)) = &mut self.closing else { return Ok(()) };
        let source = *source;
        let call = Call::on_states(&cx.states);
        if !waiting.loaded() {
            let all = LaneTable::<(K, i64, i64), Entry<A>>::read(&call, self.slot, |t| t.iter())?;
            let mine = all.into_iter().filter(|((k, _, _), _)| lane_of(k, lanes) == lane);
            waiting.load(
                mine.map(|((k, end, start), _)| (end + gap + grace, k.clone(), start, (k, end, start))),
            );
        }
        let due = waiting.due(cx.stream_time_of(source));
        let mut emitted = Vec::with_capacity(due.len());
        LaneTable::<(K, i64, i64), Entry<A>>::write(&call, self.slot, (lane, lanes), |t| {
            for id in due {
                if let Some(entry) = t.get(&id)? {
                    t.delete(&id)?;
                    emitted.push((id, entry));
                }
            }
            Ok(())
        })?;
        let origin = Origin { source: source as u32, ..Origin::default() };
        for ((key, end, start), entry) in emitted {
            let record = Record {
                key: SessionWindowed { key, window: Window { start, end } },
                value: Some(entry.value),
                timestamp: end,
                headers: Default::default(),
            };
            cx.released += 1;
            self.next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }
}
