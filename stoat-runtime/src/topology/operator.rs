//! The traits a node of a topology implements: [`Operator`] (what `#[stoat::operator]`
//! generates), the record bounds [`Key`] and [`Data`], and what an operator sees while it runs:
//! its [`Context`] and the [`Emitter`] it writes its outputs to.

use std::hash::Hash;

use crate::error::BoxError;
use crate::record::Record;
use crate::state::StateSet;

/// A type usable as a record key: it is hashed to pick the lane that owns it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a record key",
    note = "record keys must be `Hash + Eq + Clone + Send + 'static`"
)]
pub trait Key: Hash + Eq + Clone + Send + 'static {}
impl<T: Hash + Eq + Clone + Send + 'static> Key for T {}

/// A type usable as a record value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a record value",
    note = "record values must be `Clone + Send + 'static`"
)]
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// A node that processes records with key `K` and value `V`. `#[stoat::operator]` implements it
/// for the unit struct it makes of a function; the signature decides `K`, `V`, the outputs and the
/// state.
#[diagnostic::on_unimplemented(
    message = "operator `{Self}` does not take records with key `{K}` and value `{V}`",
    label = "this stream carries key `{K}` and value `{V}`",
    note = "an operator's record parameters (value, or key and value) must match the stream it is applied to"
)]
pub trait Operator<K, V>: Send + Sync + 'static {
    /// The key of the records it emits.
    type OutKey: Key;
    /// The value of the records it emits.
    type OutValue: Data;
    /// The state it reads and writes (`()` for none).
    type State: StateSet;
    /// Its name, for errors, logs and metrics.
    const NAME: &'static str;
    /// Whether its outputs carry new keys (and so move to the lanes that own them).
    const REKEYS: bool;

    /// Processes one record, writing outputs to `out`. An `Err` goes to the error policy.
    fn process(
        &self,
        record: Record<K, V>,
        state: &mut Self::State,
        ctx: &Context<'_>,
        out: &mut Emitter<Self::OutKey, Self::OutValue>,
    ) -> Result<(), BoxError>;
}

/// What an operator knows about the record it processes.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
    pub(crate) lane: usize,
}

impl<'a> Context<'a> {
    /// A context for calling an operator by hand (tests, harnesses).
    pub fn detached(topic: &'a str, partition: u32, offset: u64, timestamp: i64) -> Self {
        Context { topic, partition, offset, timestamp, lane: 0 }
    }
    /// The source topic of the input record this one derives from.
    pub fn topic(&self) -> &str {
        self.topic
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
    /// The lane running the operator.
    pub fn lane(&self) -> usize {
        self.lane
    }
}

/// Collects an operator's outputs for one input record.
#[derive(Debug)]
pub struct Emitter<K, V> {
    pub(crate) out: Vec<(K, V)>,
}

impl<K, V> Default for Emitter<K, V> {
    fn default() -> Self {
        Emitter { out: Vec::new() }
    }
}

impl<K, V> Emitter<K, V> {
    /// Emits one record.
    pub fn emit(&mut self, key: K, value: V) {
        self.out.push((key, value));
    }
    /// Emits the records of an iterator.
    pub fn emit_all(&mut self, records: impl IntoIterator<Item = (K, V)>) {
        self.out.extend(records);
    }
    /// Takes the emitted records.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (K, V)> {
        self.out.drain(..)
    }
}
