//! A compiled topology: what the runtime needs to start lanes (pipeline factories, sources,
//! state slots, stores).

use std::any::{Any, TypeId};
use std::sync::Arc;

use super::source::SourceDecoder;
use super::RootFactory;
use crate::error::StoreError;
use crate::lane::LanePipeline;
use crate::state::{StateEnv, StateSet, StoreDelta, StoreSpec};

/// A lane's instance of a state struct (or of another per-lane store, such as `Keyed`),
/// type-erased.
pub(crate) trait ErasedState: Send {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn end_batch(&mut self);
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
    /// Forgets every write not committed (see [`StateSet::discard`]).
    fn discard(&mut self);
    /// Deletes what it holds for `key` (an operator's key-scoped state whose key expired);
    /// other kinds of state hold nothing to expire.
    fn expire_key(&mut self, _key: &dyn Any) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether an operator wrote it since the last call (and forgets that): key-scoped state
    /// expires counting from its last write.
    fn take_written(&mut self) -> bool {
        false
    }
}

impl<S: StateSet> ErasedState for S {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn end_batch(&mut self) {
        StateSet::end_batch(self)
    }
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        StateSet::seal(self, out)
    }
    fn discard(&mut self) {
        StateSet::discard(self)
    }
}

type OpenState = Arc<dyn Fn(&StateEnv) -> Result<Box<dyn ErasedState>, StoreError> + Send + Sync>;

/// What a lane slot holds: a state struct (one instance per lane, shared by every operator
/// that takes it), or an operator's key-scoped store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotId {
    Type(TypeId),
    /// An operator's key-scoped store: its name, and the key and value types.
    Keyed(&'static str, TypeId),
}

impl SlotId {
    pub fn of<S: 'static>() -> Self {
        SlotId::Type(TypeId::of::<S>())
    }
}

#[derive(Clone)]
pub(crate) struct StateSlot {
    pub id: SlotId,
    pub stores: Vec<StoreSpec>,
    pub open: OpenState,
}

impl StateSlot {
    pub fn of<S: StateSet>() -> Self {
        StateSlot::custom(SlotId::of::<S>(), S::stores(), |env| {
            Ok(Box::new(S::open(env)?) as Box<dyn ErasedState>)
        })
    }

    pub fn custom(
        id: SlotId,
        stores: Vec<StoreSpec>,
        open: impl Fn(&StateEnv) -> Result<Box<dyn ErasedState>, StoreError> + Send + Sync + 'static,
    ) -> Self {
        StateSlot { id, stores, open: Arc::new(open) }
    }
}

/// A checked, compiled topology.
pub struct Program {
    pub(crate) app: String,
    pub(crate) sources: Vec<Arc<dyn SourceDecoder>>,
    pub(crate) source_roots: Vec<RootFactory>,
    pub(crate) point_roots: Vec<RootFactory>,
    pub(crate) states: Vec<StateSlot>,
    pub(crate) stores: Vec<StoreSpec>,
    pub(crate) sinks: Vec<String>,
    /// Streams nothing consumes (their records are dropped), described.
    pub(crate) unconsumed: Vec<String>,
    /// Per source, its stream-time group (sources whose records meet share one).
    pub(crate) source_groups: Vec<usize>,
    /// Whether a node acts when an epoch ends (windows emitted when they close).
    pub(crate) epoch_end: bool,
    /// Whether an operator has timers: epochs then end (and commit) even without input.
    pub(crate) timers: bool,
    /// Its picture, for people.
    pub(crate) description: super::describe::Description,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("app", &self.app)
            .field("sources", &self.source_topics())
            .field("sinks", &self.sinks)
            .field("stores", &self.stores)
            .field("rekey_points", &self.point_roots.len())
            .finish()
    }
}

impl Program {
    /// The application id.
    pub fn app(&self) -> &str {
        &self.app
    }
    /// The topics it reads.
    pub fn source_topics(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.topic().to_string()).collect()
    }
    /// The topics it writes.
    pub fn sink_topics(&self) -> &[String] {
        &self.sinks
    }
    /// The streams nothing consumes, described (e.g. "the output of operator `count`"): their
    /// records are dropped. Building the topology logs a warning for each.
    pub fn unconsumed_streams(&self) -> &[String] {
        &self.unconsumed
    }

    /// What it looks like: sources, operators, sinks and how they connect (text, SVG).
    pub fn description(&self) -> &super::describe::Description {
        &self.description
    }

    /// The state stores it declares.
    pub fn stores(&self) -> &[StoreSpec] {
        &self.stores
    }

    /// A fresh pipeline for one lane.
    pub(crate) fn pipeline(&self, lanes: usize) -> LanePipeline {
        LanePipeline {
            sources: self.source_roots.iter().map(|f| f(lanes)).collect(),
            points: self.point_roots.iter().map(|f| f(lanes)).collect(),
            arrivals: Default::default(),
        }
    }
}
