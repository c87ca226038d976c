//! Epochs and the commit: the coordinator dispatches input to the lanes, ends an epoch on a
//! trigger (time, record count, end of input, stop), waits for the lanes to go quiet, collects
//! their state changes, commits the log (outputs and input offsets, atomically) and then LMDB.

mod conflicts;
mod coordinator;
mod restore;
mod shutdown;

pub use coordinator::Engine;
pub(crate) use restore::restore;
pub use shutdown::Shutdown;
