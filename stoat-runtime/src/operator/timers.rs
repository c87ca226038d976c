//! Keyed timers: an operator with an `#[on_timer]` method sets timers for the key it processes
//! (`&mut Timers`), on stream time or on the wall clock; each fires once, on the key's lane,
//! calling that method with the key and the [`Timer`]. Timers live in a store named
//! `<operator>.timers` (changelogged like any store), so they survive restarts, and a timer's
//! firing commits with its effects in one epoch: it fires exactly once.
//!
//! A stream-time timer fires once the stream time stamped on the operator's records reaches
//! it: before the key's next record that carries such a stream time, or when the epoch in which
//! stream time reached it ends, whichever comes first, so each key's outputs are the same
//! whatever the lanes and epochs. A wall-clock timer fires at the end of the first epoch after
//! the clock reaches it (epochs end at least every commit interval while the topology has
//! timers, input or not).

use std::any::Any;
use std::cell::{Ref, RefMut};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::context::Call;
use super::param::{ParamMut, ParamRef, Registry};
use super::Key;
use crate::error::{BoxError, StoreError};
use crate::lane::lane_of;
use crate::state::{key_bytes, StateEnv, Store, StoreDecl, StoreDelta, StoreKey, Table};
use crate::topology::{ErasedState, SlotId, StateSlot};

/// Which clock a timer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeDomain {
    /// Stream time: the largest record timestamp dispatched so far from the operator's sources.
    StreamTime,
    /// The wall clock (the test driver's own clock in tests).
    WallClock,
}

impl TimeDomain {
    fn code(self) -> u8 {
        match self {
            TimeDomain::StreamTime => 0,
            TimeDomain::WallClock => 1,
        }
    }
    fn of(code: u8) -> Self {
        if code == 0 {
            TimeDomain::StreamTime
        } else {
            TimeDomain::WallClock
        }
    }
}

/// A timer that fired: what an `#[on_timer]` method gets after the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    time: i64,
    domain: TimeDomain,
}

impl Timer {
    /// The time it was set for (ms since the Unix epoch); also the default timestamp of what the
    /// method emits.
    pub fn time(&self) -> i64 {
        self.time
    }
    /// The clock it followed.
    pub fn domain(&self) -> TimeDomain {
        self.domain
    }
}

/// The timers of the key being processed. Take it as `&mut Timers` in an operator that has an
/// `#[on_timer]` method.
///
/// ```ignore
/// #[stoat::operator]
/// impl Reminder {
///     fn order(&self, #[key] user: &String, at: i64, timers: &mut Timers) -> Result<Option<String>, StoreError> {
///         timers.at(at + 60_000)?; // a minute of stream time later
///         Ok(None)
///     }
///     #[on_timer]
///     fn remind(&self, #[key] user: &String, timer: Timer) -> String {
///         format!("{user}: still there at {}?", timer.time())
///     }
/// }
/// ```
pub struct Timers {
    inner: Box<dyn CurrentTimers>,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").field("store", &self.inner.name()).finish()
    }
}

impl Timers {
    /// Sets a timer for the current key at stream time `time` (one per key and time: setting it
    /// again changes nothing). A time already reached fires at the next occasion.
    pub fn at(&mut self, time: i64) -> Result<(), StoreError> {
        self.inner.set(TimeDomain::StreamTime, time, true)
    }
    /// Sets a timer for the current key at wall-clock time `time`.
    pub fn at_wall_clock(&mut self, time: i64) -> Result<(), StoreError> {
        self.inner.set(TimeDomain::WallClock, time, true)
    }
    /// Deletes the current key's stream-time timer at `time`, if set.
    pub fn delete(&mut self, time: i64) -> Result<(), StoreError> {
        self.inner.set(TimeDomain::StreamTime, time, false)
    }
    /// Deletes the current key's wall-clock timer at `time`, if set.
    pub fn delete_wall_clock(&mut self, time: i64) -> Result<(), StoreError> {
        self.inner.set(TimeDomain::WallClock, time, false)
    }
    /// The current key's timers, by clock and time.
    pub fn pending(&self) -> Result<Vec<(TimeDomain, i64)>, StoreError> {
        self.inner.pending()
    }
    /// Stream time as of the record (or timer) being processed.
    pub fn stream_time(&self) -> i64 {
        self.inner.now().0
    }
    /// The wall clock, read when the record (or timer) began processing.
    pub fn wall_clock(&self) -> i64 {
        self.inner.now().1
    }
    /// The store's name.
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Whether `key` (the operator's key type) has a stream-time timer due at `st`.
    pub(crate) fn key_due(
        &mut self,
        key: &dyn Any,
        st: i64,
        lane: (usize, usize),
    ) -> Result<bool, StoreError> {
        self.inner.key_due(key, st, lane)
    }

    /// Takes the due timers (see [`TimerTable::take_due`]), keys type-erased.
    pub(crate) fn take_due(
        &mut self,
        only: Option<&dyn Any>,
        now: (i64, i64),
        lane: (usize, usize),
    ) -> Result<Vec<Fired>, StoreError> {
        self.inner.take_due(only, now, lane)
    }

    /// Points the timers at `key` (the operator's key type), with the call's times.
    pub(crate) fn enter(&mut self, key: &dyn Any, now: (i64, i64)) -> bool {
        self.inner.set_key(key, now)
    }

    /// Sets the current key's state expiry to `at` (replacing its previous one).
    pub(crate) fn expire_current(
        &mut self,
        at: (TimeDomain, i64),
        lane: (usize, usize),
    ) -> Result<(), StoreError> {
        self.inner.expire_current(at, lane)
    }

    /// Forgets the index (the aborted epoch's changes are gone).
    pub(crate) fn reset(&mut self) {
        self.inner.reset()
    }
}

/// A key's timers, type-erased over the key type.
trait CurrentTimers: Send {
    fn name(&self) -> &'static str;
    fn set_key(&mut self, key: &dyn Any, now: (i64, i64)) -> bool;
    fn now(&self) -> (i64, i64);
    fn set(&mut self, domain: TimeDomain, time: i64, on: bool) -> Result<(), StoreError>;
    fn pending(&self) -> Result<Vec<(TimeDomain, i64)>, StoreError>;
    fn expire_current(&mut self, at: (TimeDomain, i64), lane: (usize, usize)) -> Result<(), StoreError>;
    fn key_due(&mut self, key: &dyn Any, st: i64, lane: (usize, usize)) -> Result<bool, StoreError>;
    fn take_due(
        &mut self,
        only: Option<&dyn Any>,
        now: (i64, i64),
        lane: (usize, usize),
    ) -> Result<Vec<Fired>, StoreError>;
    fn reset(&mut self);
    fn end_batch(&mut self);
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
    fn discard(&mut self);
}

/// A timer that fired, with its key (of the operator's key type), and whether it is the key's
/// state expiry rather than one the operator set.
pub(crate) type Fired = (Box<dyn Any>, Timer, bool);

/// What a stored timer is: the operator's own, or its state's expiry; and its clock. Stored as
/// one byte (`code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Kind {
    expiry: bool,
    domain: TimeDomain,
}

impl Kind {
    fn code(self) -> u8 {
        self.domain.code() + if self.expiry { 2 } else { 0 }
    }
    fn of(code: u8) -> Self {
        Kind { expiry: code >= 2, domain: TimeDomain::of(code % 2) }
    }
}

/// Where a timer is in a lane's index: (kind, time, encoded key).
type Due = (u8, i64, Vec<u8>);

/// A lane's timers of the keys it owns, by time, to find the due ones without scanning.
#[derive(Default)]
struct TimerIndex<K> {
    due: BTreeMap<Due, K>,
    /// Stream-time timers per key (time, kind code).
    by_key: HashMap<K, BTreeSet<(i64, u8)>>,
    /// Each key's expiry timer.
    expiry: HashMap<K, (u8, i64)>,
}

/// One operator's timers on one lane: the store `(key, kind, time) -> ()`, the current key and
/// times, and the index of this lane's timers (built on first use).
struct TimerTable<K> {
    table: Table<(K, u8, i64), ()>,
    key: Option<K>,
    now: (i64, i64),
    index: Option<TimerIndex<K>>,
}

impl<K: StoreKey + Key> TimerTable<K> {
    fn key(&self) -> Result<&K, StoreError> {
        self.key.as_ref().ok_or_else(|| StoreError::NoKey(self.table.name().to_string()))
    }

    /// Points the table at `key`, with the times of the call.
    fn enter(&mut self, key: &K, now: (i64, i64)) {
        if self.key.as_ref() != Some(key) {
            self.key = Some(key.clone());
        }
        self.now = now;
    }

    fn index(&mut self, (lane, lanes): (usize, usize)) -> Result<&mut TimerIndex<K>, StoreError> {
        let index = match self.index.take() {
            Some(index) => index,
            None => {
                let mut index =
                    TimerIndex { due: BTreeMap::new(), by_key: HashMap::new(), expiry: HashMap::new() };
                for ((key, code, time), ()) in self.table.iter()? {
                    if lane_of(&key, lanes) == lane {
                        add(&mut index, &key, code, time);
                    }
                }
                index
            }
        };
        Ok(self.index.insert(index))
    }

    /// Whether `key` has a stream-time timer at or before `st`.
    fn key_due(&mut self, key: &K, st: i64, lane: (usize, usize)) -> Result<bool, StoreError> {
        let index = self.index(lane)?;
        Ok(index.by_key.get(key).and_then(|s| s.first()).is_some_and(|&(t, _)| t <= st))
    }

    /// Sets `key`'s state expiry to `at`, replacing the one it had.
    fn expire_at(
        &mut self,
        key: &K,
        (domain, time): (TimeDomain, i64),
        lane: (usize, usize),
    ) -> Result<(), StoreError> {
        let code = Kind { expiry: true, domain }.code();
        let index = self.index(lane)?;
        let old = index.expiry.get(key).copied();
        if old == Some((code, time)) {
            return Ok(());
        }
        if let Some((old_code, old_time)) = old {
            remove(index, key, old_code, old_time);
        }
        add(index, key, code, time);
        if let Some((old_code, old_time)) = old {
            self.table.delete(&(key.clone(), old_code, old_time))?;
        }
        self.table.put((key.clone(), code, time), ())
    }

    /// Takes (deletes) the timers due at stream time `st` and wall clock `now`, of `key` only
    /// (stream time only) or of every key of this lane, in (kind, time, key) order.
    fn take_due(
        &mut self,
        only: Option<&K>,
        (st, now): (i64, i64),
        lane: (usize, usize),
    ) -> Result<Vec<(K, Timer, bool)>, StoreError> {
        let index = self.index(lane)?;
        let timer = |key: &K, code: u8, time: i64| {
            let kind = Kind::of(code);
            (key.clone(), Timer { time, domain: kind.domain }, kind.expiry)
        };
        let due: Vec<(K, Timer, bool)> = match only {
            Some(key) => index
                .by_key
                .get(key)
                .map(|times| {
                    times.iter().take_while(|(t, _)| *t <= st).map(|&(t, code)| timer(key, code, t)).collect()
                })
                .unwrap_or_default(),
            None => index
                .due
                .iter()
                .filter(|((code, time, _), _)| match Kind::of(*code).domain {
                    TimeDomain::StreamTime => *time <= st,
                    TimeDomain::WallClock => *time <= now,
                })
                .map(|(&(code, time, _), key)| timer(key, code, time))
                .collect(),
        };
        for (key, timer, expiry) in &due {
            remove(index, key, Kind { expiry: *expiry, domain: timer.domain }.code(), timer.time);
        }
        for (key, timer, expiry) in &due {
            let code = Kind { expiry: *expiry, domain: timer.domain }.code();
            self.table.delete(&(key.clone(), code, timer.time))?;
        }
        Ok(due)
    }
}

fn add<K: StoreKey + Key>(index: &mut TimerIndex<K>, key: &K, code: u8, time: i64) {
    index.due.insert((code, time, key_bytes(key)), key.clone());
    let kind = Kind::of(code);
    if kind.domain == TimeDomain::StreamTime {
        index.by_key.entry(key.clone()).or_default().insert((time, code));
    }
    if kind.expiry {
        index.expiry.insert(key.clone(), (code, time));
    }
}

fn remove<K: StoreKey + Key>(index: &mut TimerIndex<K>, key: &K, code: u8, time: i64) {
    index.due.remove(&(code, time, key_bytes(key)));
    let kind = Kind::of(code);
    if kind.domain == TimeDomain::StreamTime {
        if let Some(times) = index.by_key.get_mut(key) {
            times.remove(&(time, code));
            if times.is_empty() {
                index.by_key.remove(key);
            }
        }
    }
    if kind.expiry && index.expiry.get(key) == Some(&(code, time)) {
        index.expiry.remove(key);
    }
}

impl<K: StoreKey + Key> CurrentTimers for TimerTable<K> {
    fn name(&self) -> &'static str {
        self.table.name()
    }
    fn set_key(&mut self, key: &dyn Any, now: (i64, i64)) -> bool {
        match key.downcast_ref::<K>() {
            Some(k) => {
                self.enter(k, now);
                true
            }
            None => false,
        }
    }
    fn now(&self) -> (i64, i64) {
        self.now
    }
    fn set(&mut self, domain: TimeDomain, time: i64, on: bool) -> Result<(), StoreError> {
        let key = self.key()?.clone();
        let code = Kind { expiry: false, domain }.code();
        let id = (key.clone(), code, time);
        if on {
            self.table.put(id, ())?;
        } else {
            self.table.delete(&id)?;
        }
        if let Some(index) = &mut self.index {
            if on {
                add(index, &key, code, time);
            } else {
                remove(index, &key, code, time);
            }
        }
        Ok(())
    }
    fn pending(&self) -> Result<Vec<(TimeDomain, i64)>, StoreError> {
        let key = self.key()?;
        Ok(self
            .table
            .prefix(key)?
            .into_iter()
            .map(|((_, code, time), ())| (Kind::of(code), time))
            .filter(|(kind, _)| !kind.expiry)
            .map(|(kind, time)| (kind.domain, time))
            .collect())
    }
    fn expire_current(&mut self, at: (TimeDomain, i64), lane: (usize, usize)) -> Result<(), StoreError> {
        let key = self.key()?.clone();
        TimerTable::expire_at(self, &key, at, lane)
    }
    fn key_due(&mut self, key: &dyn Any, st: i64, lane: (usize, usize)) -> Result<bool, StoreError> {
        match key.downcast_ref::<K>() {
            Some(key) => TimerTable::key_due(self, key, st, lane),
            None => Ok(false),
        }
    }
    fn take_due(
        &mut self,
        only: Option<&dyn Any>,
        now: (i64, i64),
        lane: (usize, usize),
    ) -> Result<Vec<Fired>, StoreError> {
        let only = match only {
            Some(key) => match key.downcast_ref::<K>() {
                Some(key) => Some(key),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let due = TimerTable::take_due(self, only, now, lane)?;
        Ok(due
            .into_iter()
            .map(|(key, timer, expiry)| (Box::new(key) as Box<dyn Any>, timer, expiry))
            .collect())
    }
    fn reset(&mut self) {
        self.index = None;
    }
    fn end_batch(&mut self) {
        Store::end_batch(&mut self.table)
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.key = None;
        Store::seal(&mut self.table, out)
    }
    fn discard(&mut self) {
        self.key = None;
        self.index = None;
        Store::discard(&mut self.table)
    }
}

impl ErasedState for Timers {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn end_batch(&mut self) {
        self.inner.end_batch()
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.inner.seal(out)
    }
    fn discard(&mut self) {
        self.inner.discard()
    }
}

/// The registering operator's timer slot: the store `<operator>.timers`, keyed by `K`.
/// `borrow`: how an operator parameter takes it (`Some(mutable)`); the runtime's own access
/// (`None`) is not a parameter's borrow.
pub(crate) fn register<K: StoreKey + Key>(
    registry: &mut Registry<'_>,
    borrow: Option<bool>,
) -> Result<usize, String> {
    let (operator, version) = (registry.operator(), registry.version());
    if std::any::TypeId::of::<K>() == std::any::TypeId::of::<()>() {
        return Err(format!(
            "operator `{operator}` sets timers, but its stream has no key (`()`): a timer belongs to a key and fires on its lane; give the records a key first (e.g. `key_by`)"
        ));
    }
    let name: &'static str = Box::leak(format!("{operator}.timers").into_boxed_str());
    let id = SlotId::Keyed(name, std::any::TypeId::of::<TimerTable<K>>());
    let make = move || {
        let decl = StoreDecl { name, owner: operator, declared: "Timers", version };
        let spec = <Table<(K, u8, i64), ()> as Store>::spec(decl);
        StateSlot::custom(id, vec![spec], move |env: &StateEnv| {
            let table = <Table<(K, u8, i64), ()> as Store>::open(env, name)?;
            let inner: Box<dyn CurrentTimers> =
                Box::new(TimerTable { table, key: None, now: (i64::MIN, 0), index: None });
            Ok(Box::new(Timers { inner }) as Box<dyn ErasedState>)
        })
    };
    match borrow {
        Some(mutable) => {
            registry.takes_timers = true;
            registry.slot(id, make, mutable, "Timers")
        }
        None => Ok(registry.unborrowed_slot(id, make)),
    }
}

impl<K: StoreKey + Key> ParamMut<K> for Timers {
    type Slot = usize;
    type Guard<'c> = RefMut<'c, Timers>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        register::<K>(registry, Some(true))
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, key: &K) -> Result<RefMut<'c, Timers>, BoxError> {
        let state = call.borrow_mut(*slot)?;
        let mut timers = RefMut::filter_map(state, |s| s.as_any_mut().downcast_mut::<Timers>())
            .map_err(|_| format!("state slot {slot} does not hold timers"))?;
        let now = (call.context.stream_time, call.context.wall_clock);
        if !timers.inner.set_key(key, now) {
            return Err(format!("timer store `{}` holds another key type", timers.name()).into());
        }
        Ok(timers)
    }
}

impl<K: StoreKey + Key> ParamRef<K> for Timers {
    type Slot = usize;
    type Guard<'c> = Ref<'c, Timers>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        register::<K>(registry, Some(false))
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, key: &K) -> Result<Ref<'c, Timers>, BoxError> {
        drop(<Timers as ParamMut<K>>::fetch(slot, call, key)?);
        let state = call.borrow(*slot)?;
        Ok(Ref::filter_map(state, |s| s.as_any().downcast_ref::<Timers>())
            .map_err(|_| format!("state slot {slot} does not hold timers"))?)
    }
}
