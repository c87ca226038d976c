//! [`Harness`]: one operator on scratch state, called record by record, for unit tests.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::error::{BoxError, Error, RecordLocation, Result};
use crate::operator::{Context, Emitter, Operator, Registry};
use crate::record::Record;
use crate::state::{StateEnv, StateWriter, StoreSpec};
use crate::topology::{ErasedState, SlotId, StateSlot};

/// Runs an operator on records with key `K` and value `V`, with its state in a temporary
/// directory: `Harness::new(count {})`.
pub struct Harness<O: Operator<K, V, M>, K, V, M> {
    op: O,
    slots: O::Slots,
    states: Vec<RefCell<Box<dyn ErasedState>>>,
    ids: Vec<SlotId>,
    writer: StateWriter,
    env: StateEnv,
    epoch: u64,
    offset: u64,
    _dir: tempfile::TempDir,
    _types: PhantomData<fn(K, V, M)>,
}

impl<O: Operator<K, V, M>, K, V, M> std::fmt::Debug for Harness<O, K, V, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("operator", &O::NAME).field("epoch", &self.epoch).finish()
    }
}

impl<O: Operator<K, V, M>, K, V, M> Harness<O, K, V, M> {
    /// A harness for `op` with empty scratch state.
    pub fn new(op: O) -> Result<Self> {
        if O::ASYNC.is_some() {
            return Err(Error::Topology {
                app: "harness".into(),
                reason: format!(
                    "operator `{}` is async: call its function directly (it is a plain `async fn`), or run it in a `TestDriver`",
                    O::NAME
                ),
            });
        }
        let mut slots_decl: Vec<StateSlot> = Vec::new();
        let resources = crate::operator::resource::Resources::default();
        let slots = op
            .register(&mut Registry::new(&mut slots_decl, &resources, O::NAME, O::VERSION))
            .map_err(|reason| Error::Topology { app: "harness".into(), reason })?;
        let dir = tempfile::Builder::new()
            .prefix("stoat-harness-")
            .tempdir()
            .map_err(|cause| Error::Io { what: "cannot create a scratch state directory".into(), cause })?;
        let stores: Vec<StoreSpec> = slots_decl.iter().flat_map(|s| s.stores.iter().cloned()).collect();
        let env = StateEnv::open(dir.path(), "harness", &stores, 1 << 30, 126, false)?;
        let mut states = Vec::new();
        for slot in &slots_decl {
            states.push(RefCell::new((slot.open)(&env)?));
        }
        let writer = StateWriter::start(env.clone(), None)?;
        let ids = slots_decl.iter().map(|s| s.id).collect();
        Ok(Harness {
            op,
            slots,
            states,
            ids,
            writer,
            env,
            epoch: 0,
            offset: 0,
            _dir: dir,
            _types: PhantomData,
        })
    }

    /// Processes one record; returns what the operator emitted, or its error as
    /// [`Error::Operator`].
    pub fn process(&mut self, key: K, value: V) -> Result<Vec<(O::OutKey, O::OutValue)>> {
        Ok(self.process_record(Record::new(key, value))?.into_iter().map(|r| (r.key, r.value)).collect())
    }

    /// Processes one full record; outputs carry its timestamp and headers unless the operator
    /// set their own.
    pub fn process_record(
        &mut self,
        mut record: Record<K, V>,
    ) -> Result<Vec<Record<O::OutKey, O::OutValue>>> {
        let offset = self.offset;
        self.offset += 1;
        let ctx = Context::detached("harness", 0, offset, record.timestamp)
            .with_headers(std::mem::take(&mut record.headers));
        let mut out = Emitter::default();
        let result =
            crate::topology::call_operator(&self.op, &self.slots, record, &ctx, &self.states, &mut out);
        for state in &mut self.states {
            state.get_mut().end_batch();
        }
        result.map_err(|source: BoxError| Error::Operator {
            operator: O::NAME,
            location: RecordLocation { topic: "harness".into(), partition: 0, offset },
            cause: source,
        })?;
        Ok(out.out.drain(..).map(|e| ctx.complete(e)).collect())
    }

    /// The lane's instance of state struct `S` (its writes of this epoch are visible through
    /// it); an error if the operator does not take `S`.
    pub fn state<S: crate::state::StateSet>(&mut self) -> Result<&mut S> {
        let at = self.ids.iter().position(|id| *id == SlotId::of::<S>());
        at.and_then(|i| self.states[i].get_mut().as_any_mut().downcast_mut::<S>()).ok_or_else(|| {
            Error::Runtime(format!(
                "operator `{}` does not take state `{}`",
                O::NAME,
                std::any::type_name::<S>()
            ))
        })
    }

    /// Ends the epoch: writes the buffered state changes to LMDB.
    pub fn commit(&mut self) -> Result<()> {
        let mut deltas = Vec::new();
        for state in &mut self.states {
            state.get_mut().seal(&mut deltas)?;
        }
        self.epoch += 1;
        self.writer.commit_blocking(self.epoch, deltas, Vec::new())?;
        Ok(())
    }

    /// Reads committed state through a fresh instance of a state struct `S`.
    pub fn read_committed<S: crate::state::StateSet, R>(&self, f: impl FnOnce(&S) -> R) -> Result<R> {
        crate::app::read_state(&self.env, f)
    }
}
