//! Restoring state from changelogs before processing starts: each store's changelog is replayed
//! from the offset LMDB last recorded for it, so state that is behind the log (a crash between
//! the log commit and the LMDB commit) or missing (a new disk) catches up.

use crate::error::Result;
use crate::log::Log;
use crate::state::{StateEnv, StateWriter, StoreDelta, StoreSpec};

/// Replays every store's changelog tail into LMDB; returns how many changes were applied.
pub(crate) fn restore(
    log: &dyn Log,
    state: &StateEnv,
    writer: &StateWriter,
    stores: &[StoreSpec],
) -> Result<u64> {
    let epoch = state.committed_epoch()?;
    let mut applied = 0u64;
    for spec in stores {
        let from = state.changelog_offset(spec.name)?;
        let mut apply = |entries: Vec<(Vec<u8>, Option<Vec<u8>>)>, next: u64| -> Result<()> {
            applied += entries.len() as u64;
            let delta = StoreDelta { store: spec.name, entries };
            writer.commit_blocking(epoch, vec![delta], vec![(spec.name.to_string(), next)])?;
            Ok(())
        };
        log.restore(spec.name, from, &mut apply)?;
    }
    if applied > 0 {
        tracing::info!(applied, "state restored from changelogs");
    }
    Ok(applied)
}
