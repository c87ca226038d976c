//! What an operator sees besides its record: [`Context`] (where the record came from, its
//! timestamp and headers) and [`Call`], what the runtime hands a generated operator per record.

use std::cell::{Ref, RefCell, RefMut};
use std::sync::Arc;
use std::sync::LazyLock;

use super::output::Emitted;
use crate::record::{Headers, Record};
use crate::topology::ErasedState;

/// What an operator knows about the record it processes. Take it as `&Context`.
#[derive(Clone, Debug)]
pub struct Context {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
    pub(crate) headers: Headers,
    pub(crate) lane: usize,
    /// How many lanes the app runs.
    pub(crate) lanes: usize,
    /// Stream time when the record was dispatched.
    pub(crate) stream_time: i64,
    /// The wall clock when the call began (set for operators with timers only).
    pub(crate) wall_clock: i64,
}

impl Default for Context {
    fn default() -> Self {
        Context::detached("", 0, 0, 0)
    }
}

impl Context {
    /// A context for calling an operator function by hand (tests).
    pub fn detached(topic: &str, partition: u32, offset: u64, timestamp: i64) -> Self {
        Context {
            topic: Arc::from(topic),
            partition,
            offset,
            timestamp,
            headers: Headers::new(),
            lane: 0,
            lanes: 1,
            stream_time: timestamp,
            wall_clock: 0,
        }
    }
    /// The same context with these headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
    /// The source topic of the input record this one derives from.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// Its partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }
    /// Its offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The record's timestamp (ms since the Unix epoch).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// The record's headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
    /// The value of the record's last header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
    /// Stream time as the record was dispatched: the largest timestamp dispatched so far from
    /// the sources its stream meets (this record's included).
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }
    /// The lane running the operator.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// An output record: what the operator set, the input's timestamp and headers otherwise.
    pub(crate) fn complete<K, V>(&self, emitted: Emitted<K, V>) -> Record<K, V> {
        let headers = match emitted.headers {
            None => self.headers.clone(),
            Some(mut added) if emitted.extend => {
                let mut all = self.headers.clone();
                all.append(&mut added);
                all
            }
            Some(set) => set,
        };
        Record {
            key: emitted.key,
            value: emitted.value,
            timestamp: emitted.timestamp.unwrap_or(self.timestamp),
            headers,
        }
    }
}

/// One call of an operator: the record's context and the lane's state instances, which
/// operator parameters borrow from.
#[doc(hidden)]
pub struct Call<'c> {
    pub(crate) context: &'c Context,
    pub(crate) states: &'c [RefCell<Box<dyn ErasedState>>],
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("context", self.context).finish_non_exhaustive()
    }
}

impl<'c> Call<'c> {
    /// The record's context.
    pub fn context(&self) -> &'c Context {
        self.context
    }
    /// A call that only borrows the lane's stores (a DSL node's, with no record context).
    pub(crate) fn on_states(states: &'c [RefCell<Box<dyn ErasedState>>]) -> Self {
        static NO_CONTEXT: LazyLock<Context> = LazyLock::new(Context::default);
        Call { context: &NO_CONTEXT, states }
    }

    pub(crate) fn state(&self, slot: usize) -> Result<&'c RefCell<Box<dyn ErasedState>>, String> {
        self.states.get(slot).ok_or_else(|| format!("no state slot {slot} on this lane"))
    }

    /// Borrows a lane slot for reading.
    pub(crate) fn borrow(&self, slot: usize) -> Result<Ref<'c, Box<dyn ErasedState>>, String> {
        self.state(slot)?.try_borrow().map_err(|_| format!("state slot {slot} is already borrowed"))
    }

    /// Borrows a lane slot for writing.
    pub(crate) fn borrow_mut(&self, slot: usize) -> Result<RefMut<'c, Box<dyn ErasedState>>, String> {
        self.state(slot)?.try_borrow_mut().map_err(|_| format!("state slot {slot} is already borrowed"))
    }
}
