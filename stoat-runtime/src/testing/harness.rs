//! [`Harness`]: one operator on scratch state, called record by record, for unit tests.
//! `#[stoat::operator]` generates `harness()` on every operator.

use super::super::state::{StateEnv, StateSet, StateWriter};
use crate::error::{BoxError, Error, RecordLocation, Result};
use crate::record::Record;
use crate::topology::{Context, Emitter, Operator};

/// Runs operator `O` on records with key `K` and value `V`, with its state in a temporary
/// directory.
pub struct Harness<O: Operator<K, V>, K, V> {
    op: O,
    state: O::State,
    writer: StateWriter,
    env: StateEnv,
    epoch: u64,
    offset: u64,
    _dir: tempfile::TempDir,
}

impl<O: Operator<K, V>, K, V> std::fmt::Debug for Harness<O, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("operator", &O::NAME).field("epoch", &self.epoch).finish()
    }
}

impl<O: Operator<K, V>, K, V> Harness<O, K, V> {
    /// A harness for `op` with empty scratch state.
    pub fn new(op: O) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("stoat-harness-")
            .tempdir()
            .map_err(|source| Error::Io { what: "cannot create a scratch state directory".into(), source })?;
        let env = StateEnv::open(dir.path(), "harness", &O::State::stores(), 1 << 30, 126, false)?;
        let state = O::State::open(&env)?;
        let writer = StateWriter::start(env.clone())?;
        Ok(Harness { op, state, writer, env, epoch: 0, offset: 0, _dir: dir })
    }

    /// Processes one record; returns what the operator emitted, or its error as
    /// [`Error::Operator`].
    pub fn process(&mut self, key: K, value: V) -> Result<Vec<(O::OutKey, O::OutValue)>> {
        Ok(self.process_record(Record::new(key, value))?.into_iter().map(|r| (r.key, r.value)).collect())
    }

    /// Processes one full record; outputs carry its timestamp.
    pub fn process_record(&mut self, record: Record<K, V>) -> Result<Vec<Record<O::OutKey, O::OutValue>>> {
        let offset = self.offset;
        let ctx = Context::detached("harness", 0, offset, record.timestamp);
        self.offset += 1;
        let (timestamp, headers) = (record.timestamp, record.headers.clone());
        let mut out = Emitter::default();
        let result = self.op.process(record, &mut self.state, &ctx, &mut out);
        self.state.end_batch();
        result.map_err(|source: BoxError| Error::Operator {
            operator: O::NAME,
            location: RecordLocation { topic: "harness".into(), partition: 0, offset },
            source,
        })?;
        Ok(out
            .drain()
            .map(|(key, value)| Record { key, value, timestamp, headers: headers.clone() })
            .collect())
    }

    /// The operator's state (its writes of this epoch are visible through it).
    pub fn state(&mut self) -> &mut O::State {
        &mut self.state
    }

    /// Ends the epoch: writes the buffered state changes to LMDB.
    pub fn commit(&mut self) -> Result<()> {
        let mut deltas = Vec::new();
        self.state.seal(&mut deltas)?;
        self.epoch += 1;
        self.writer.commit_blocking(self.epoch, deltas, Vec::new())?;
        Ok(())
    }

    /// Reads committed state through a fresh instance of the state struct.
    pub fn read_committed<R>(&self, f: impl FnOnce(&O::State) -> R) -> Result<R> {
        crate::app::read_state(&self.env, f)
    }
}
