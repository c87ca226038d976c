//! The nodes of a lane pipeline: operators, closures (filter, map_values, key_by), re-key points,
//! sinks, fan-out. Each is instantiated once per lane.

use std::marker::PhantomData;
use std::sync::Arc;

use super::ErasedState;
use crate::codec::Codec;
use crate::error::{BoxError, Error, Panicked, Result};
use crate::lane::{lane_of, LaneCx, Phase, Push};
use crate::log::OutRecord;
use crate::operator::{Call, Context, Emitter, Key, Operator, Timers};
use crate::record::{Envelope, Origin, Record};

/// A `#[stoat::operator]` node. It keeps one [`Context`] it updates per record, so a call
/// allocates nothing the record did not bring.
pub(crate) struct OpNode<O: Operator<K, V, M>, K, V, M> {
    op: Arc<O>,
    slots: Arc<O::Slots>,
    ctx: Context,
    /// The source whose topic `ctx` names.
    source: Option<u32>,
    /// A source of the operator's stream: its group's stream time fires timers when an epoch
    /// ends.
    stream_source: usize,
    /// With `expire_after`: the lane slots of its key-scoped state, which a key's expiry clears.
    expiring: Arc<Vec<usize>>,
    out: Emitter<O::OutKey, O::OutValue>,
    next: Box<dyn Push<O::OutKey, O::OutValue>>,
    _types: PhantomData<fn(K, V, M)>,
}

impl<O: Operator<K, V, M>, K, V, M> OpNode<O, K, V, M> {
    pub fn new(
        op: Arc<O>,
        slots: Arc<O::Slots>,
        (stream_source, expiring): (usize, Arc<Vec<usize>>),
        next: Box<dyn Push<O::OutKey, O::OutValue>>,
    ) -> Self {
        OpNode {
            op,
            slots,
            ctx: Context::default(),
            source: None,
            stream_source,
            expiring,
            out: Emitter::default(),
            next,
            _types: PhantomData,
        }
    }
}

impl<O: Operator<K, V, M>, K: 'static, V: 'static, M: 'static> OpNode<O, K, V, M> {
    /// Runs `f` on the operator's timers in lane slot `slot`.
    fn with_timers<R>(
        slot: usize,
        cx: &LaneCx,
        f: impl FnOnce(&mut Timers) -> std::result::Result<R, crate::error::StoreError>,
    ) -> std::result::Result<R, BoxError> {
        let call = Call::on_states(&cx.states);
        let mut guard = call.borrow_mut(slot)?;
        let timers = guard
            .as_any_mut()
            .downcast_mut::<Timers>()
            .ok_or_else(|| format!("state slot {slot} does not hold timers"))?;
        Ok(f(timers)?)
    }

    /// Fires the due timers, of `only` that key (stream time) or of every key of the lane, at
    /// stream time and wall clock `now`: calls the operator's `#[on_timer]` method for each and
    /// passes its outputs on. Returns how many records it emitted.
    fn fire(
        &mut self,
        slot: usize,
        only: Option<&K>,
        now: (i64, i64),
        origin: Origin,
        cx: &mut LaneCx,
    ) -> Result<usize> {
        let lane = (cx.lane, cx.lanes());
        let only = only.map(|k| k as &dyn std::any::Any);
        let due = match Self::with_timers(slot, cx, |t| t.take_due(only, now, lane)) {
            Ok(due) => due,
            Err(e) => return cx.operator_error(O::NAME, origin, e).map(|()| 0),
        };
        let mut emitted = 0;
        for (key, timer, expiry) in due {
            if expiry {
                // The key's state is deleted, as if it had never been seen.
                let cleared = self.expiring.iter().try_for_each(|&slot| {
                    let call = Call::on_states(&cx.states);
                    let mut state = call.borrow_mut(slot)?;
                    state.expire_key(&*key).map_err(BoxError::from)
                });
                if let Err(e) = cleared {
                    return cx.operator_error(O::NAME, origin, e).map(|()| emitted);
                }
                continue;
            }
            let Ok(key) = key.downcast::<K>() else { continue };
            // A timer's context: its time is the timestamp; there are no headers.
            self.ctx.timestamp = timer.time();
            self.ctx.headers.clear();
            (self.ctx.stream_time, self.ctx.wall_clock) = now;
            let call = Call { context: &self.ctx, states: &cx.states };
            let result = Panicked::catch(|| self.op.fire(&self.slots, *key, timer, &call, &mut self.out))
                .unwrap_or_else(|p| Err(Box::new(p) as BoxError));
            if let Err(e) = result {
                self.out.out.clear();
                let (time, domain) = (timer.time(), timer.domain());
                let e = TimerFailed { time, domain, cause: e };
                cx.operator_error(O::NAME, origin, Box::new(e))?;
                continue;
            }
            for out in self.out.out.drain(..) {
                let record = self.ctx.complete(out);
                self.next.push(Envelope { record, origin }, cx)?;
                emitted += 1;
            }
        }
        Ok(emitted)
    }
}

/// Calls `op` on one record, catching a panic as the record's error; outputs are in `out`.
pub(crate) fn call_operator<O: Operator<K, V, M>, K, V, M>(
    op: &O,
    slots: &O::Slots,
    record: Record<K, V>,
    ctx: &Context,
    states: &[std::cell::RefCell<Box<dyn ErasedState>>],
    out: &mut Emitter<O::OutKey, O::OutValue>,
) -> std::result::Result<(), BoxError> {
    let call = Call { context: ctx, states };
    let result = Panicked::catch(|| op.process(slots, record, &call, out))
        .unwrap_or_else(|p| Err(Box::new(p) as BoxError));
    if result.is_err() {
        out.out.clear();
    }
    result
}

impl<O: Operator<K, V, M>, K: Send + 'static, V: Send + 'static, M: 'static> Push<K, V>
    for OpNode<O, K, V, M>
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { mut record, origin } = env;
        if let Some(slot) = O::timers(&self.slots) {
            // The key's timers that stream time has reached fire before its record.
            let now = (origin.stream_time, cx.shared.clock.now());
            let lane = (cx.lane, cx.lanes());
            let key: &dyn std::any::Any = &record.key;
            match Self::with_timers(slot, cx, |t| t.key_due(key, now.0, lane)) {
                Ok(true) => {
                    self.fire(slot, Some(&record.key), now, origin, cx)?;
                }
                Ok(false) => {}
                Err(e) => return cx.operator_error(O::NAME, origin, e),
            }
            self.ctx.wall_clock = now.1;
        }
        self.ctx.stream_time = origin.stream_time;
        if self.source != Some(origin.source) {
            self.ctx.topic =
                cx.shared.source_topics.get(origin.source as usize).cloned().unwrap_or_else(|| Arc::from(""));
            self.source = Some(origin.source);
        }
        self.ctx.partition = origin.partition;
        self.ctx.offset = origin.offset;
        self.ctx.timestamp = record.timestamp;
        self.ctx.lane = cx.lane;
        self.ctx.lanes = cx.lanes();
        self.ctx.headers = std::mem::take(&mut record.headers);
        // With expiry: the timers hold the record's key, to count its state's life from a write.
        let expiry = match (O::EXPIRY, O::timers(&self.slots)) {
            (Some((after, domain)), Some(slot)) => {
                let now = match domain {
                    crate::operator::TimeDomain::StreamTime => self.ctx.stream_time,
                    crate::operator::TimeDomain::WallClock => self.ctx.wall_clock,
                };
                let times = (self.ctx.stream_time, self.ctx.wall_clock);
                let key: &dyn std::any::Any = &record.key;
                if let Err(e) = Self::with_timers(slot, cx, |t| Ok(t.enter(key, times))) {
                    return cx.operator_error(O::NAME, origin, e);
                }
                for &s in self.expiring.iter() {
                    if let Some(state) = cx.states.get(s) {
                        state.borrow_mut().take_written();
                    }
                }
                Some((slot, (domain, now.saturating_add(after))))
            }
            _ => None,
        };
        let result = call_operator(&*self.op, &self.slots, record, &self.ctx, &cx.states, &mut self.out);
        if let Err(e) = result {
            return cx.operator_error(O::NAME, origin, e);
        }
        if let Some((slot, at)) = expiry {
            // Written: the key's state now expires `after` from here.
            // Every slot's flag is taken (and so cleared), written or not.
            let mut written = false;
            for &s in self.expiring.iter() {
                if let Some(state) = cx.states.get(s) {
                    written |= state.borrow_mut().take_written();
                }
            }
            if written {
                let lane = (cx.lane, cx.lanes());
                if let Err(e) = Self::with_timers(slot, cx, |t| t.expire_current(at, lane)) {
                    return cx.operator_error(O::NAME, origin, e);
                }
            }
        }
        for emitted in self.out.out.drain(..) {
            let record = self.ctx.complete(emitted);
            self.next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        if let Some(slot) = O::timers(&self.slots) {
            match cx.phase {
                Phase::EpochEnd => {
                    let now = (cx.stream_time_of(self.stream_source), cx.shared.clock.now());
                    let origin = Origin { source: self.stream_source as u32, ..Default::default() };
                    let emitted = self.fire(slot, None, now, origin, cx)?;
                    cx.released += emitted;
                }
                Phase::Discard => {
                    if let Err(e) = Self::with_timers(slot, cx, |t| {
                        t.reset();
                        Ok(())
                    }) {
                        return Err(crate::error::Error::Runtime(e.to_string()));
                    }
                }
                Phase::Batch => {}
            }
        }
        self.next.flush(cx)
    }
}

/// An `#[on_timer]` method's error: which timer it was handling.
#[derive(Debug, thiserror::Error)]
#[error("its `#[on_timer]` method failed on the timer at {time} ({domain:?}): {cause}")]
struct TimerFailed {
    time: i64,
    domain: crate::operator::TimeDomain,
    cause: BoxError,
}

/// A closure node: `filter`, `map`, `flat_map_values` and friends, as a function from one
/// record to any number, written into a buffer the node reuses.
pub(crate) struct FnNode<F, K2, V2> {
    /// The DSL method that made it (`filter`, `map_values`, ...), for errors.
    pub name: &'static str,
    pub f: Arc<F>,
    pub buf: Vec<Record<K2, V2>>,
    pub next: Box<dyn Push<K2, V2>>,
}

impl<F, K, V, K2, V2> Push<K, V> for FnNode<F, K2, V2>
where
    F: Fn(Record<K, V>, &mut Vec<Record<K2, V2>>) + Send + Sync + 'static,
    K2: Send + 'static,
    V2: Send + 'static,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let FnNode { name, f, buf, next } = self;
        if let Err(panic) = Panicked::catch(|| f(record, buf)) {
            buf.clear();
            return cx.operator_error(name, origin, Box::new(panic));
        }
        for record in buf.drain(..) {
            next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}

/// A predicate over a record's key and value, shared by every lane.
pub(crate) type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// `split`: each record goes to the first branch whose predicate holds, else to the default
/// branch (if there is one; otherwise it is dropped, as in Kafka Streams).
pub(crate) struct SplitNode<K, V> {
    pub predicates: Arc<Vec<Predicate<K, V>>>,
    /// One per predicate, then the default branch if any.
    pub outs: Vec<Box<dyn Push<K, V>>>,
}

impl<K: Send + 'static, V: Send + 'static> Push<K, V> for SplitNode<K, V> {
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let found =
            Panicked::catch(|| self.predicates.iter().position(|p| p(&env.record.key, &env.record.value)));
        let branch = match found {
            Ok(Some(i)) => i,
            Ok(None) => self.predicates.len(),
            Err(panic) => return cx.operator_error("split", env.origin, Box::new(panic)),
        };
        match self.outs.get_mut(branch) {
            Some(out) => out.push(env, cx),
            None => Ok(()),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.outs.iter_mut().try_for_each(|o| o.flush(cx))
    }
}

/// A re-key point: routes each record to the lane owning its key, through the outbox its lane
/// group shares (a batch per destination group, each record with its lane).
pub(crate) struct RekeyNode<K, V> {
    pub point: usize,
    types: PhantomData<fn(K, V)>,
}

impl<K, V> RekeyNode<K, V> {
    pub fn new(point: usize) -> Self {
        RekeyNode { point, types: PhantomData }
    }
}

impl<K: Key, V: Send + 'static> Push<K, V> for RekeyNode<K, V> {
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let lane = lane_of(&env.record.key, cx.lanes());
        cx.outbox.push(self.point, lane, env, &cx.shared)
    }
    fn flush(&mut self, _: &mut LaneCx) -> Result<()> {
        // The group sends (or, for an aborted epoch, drops) its outbox.
        Ok(())
    }
}

/// Writes records to a topic.
pub(crate) struct SinkNode<K, V> {
    pub topic: Arc<str>,
    pub key_codec: Arc<dyn Codec<K>>,
    pub value_codec: Arc<dyn Codec<V>>,
}

impl<K: Send + 'static, V: Send + 'static> Push<K, V> for SinkNode<K, V> {
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let encoded =
            self.key_codec.encode(&record.key).map_err(|e| ("key", e)).and_then(|k| {
                self.value_codec.encode(&record.value).map(|v| (k, v)).map_err(|e| ("value", e))
            });
        match encoded {
            Ok((key, value)) => cx.output(OutRecord {
                topic: Arc::clone(&self.topic),
                key,
                value,
                timestamp: record.timestamp,
                headers: record.headers,
            }),
            Err((part, source)) => {
                let error = Error::Encode {
                    part,
                    topic: self.topic.to_string(),
                    location: cx.shared.location(origin),
                    cause: source,
                };
                cx.encode_error(error)
            }
        }
    }
    fn flush(&mut self, _: &mut LaneCx) -> Result<()> {
        Ok(())
    }
}

/// Hands each record to several downstream nodes.
pub(crate) struct Fanout<K, V> {
    pub outs: Vec<Box<dyn Push<K, V>>>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Push<K, V> for Fanout<K, V> {
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let (last, rest) = match self.outs.split_last_mut() {
            Some(split) => split,
            None => return Ok(()),
        };
        for out in rest {
            out.push(Envelope { record: env.record.duplicate(), origin: env.origin }, cx)?;
        }
        last.push(env, cx)
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.outs.iter_mut().try_for_each(|o| o.flush(cx))
    }
}

/// The end of a stream nobody consumes.
pub(crate) struct Discard<K, V>(pub PhantomData<fn(K, V)>);

impl<K: Send + 'static, V: Send + 'static> Push<K, V> for Discard<K, V> {
    fn push(&mut self, _: Envelope<K, V>, _: &mut LaneCx) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self, _: &mut LaneCx) -> Result<()> {
        Ok(())
    }
}
