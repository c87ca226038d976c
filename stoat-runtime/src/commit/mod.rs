//! Epochs and the commit: the coordinator dispatches input to the lanes, ends an epoch on a
//! trigger (time, record count, end of input, stop), waits for the lanes to go quiet, collects
//! their state changes, commits the log (outputs and input offsets, atomically) and then LMDB,
//! while the next epoch is already being processed.
//!
//! - `coordinator`: the engine and its epoch loop;
//! - `pipeline`: an epoch's commit, running while the next epoch is processed;
//! - `recovery`: retrying an epoch after a transient error, or stopping after any other;
//! - `conflicts`: the debug-build check for a key two lanes wrote in one epoch;
//! - `restore`: bringing LMDB up to date from the changelogs before the first epoch;
//! - `shutdown`: the stop request.

mod conflicts;
mod coordinator;
mod event_time;
mod order;
mod pipeline;
mod recovery;
mod restore;
mod shutdown;

pub(crate) use coordinator::Engine;
pub(crate) use restore::restore;
pub use shutdown::Shutdown;
