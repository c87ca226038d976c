//! Restoring state from changelogs before processing starts: each store's changelog is replayed
//! from the offset LMDB last recorded for it, so state that is behind the log (a crash between
//! the log commit and the LMDB commit) or missing (a new disk) catches up.
//!
//! State that no longer fits its changelog is not patched: a recorded offset past the
//! changelog's end (the topic was deleted and created again) is an error, or with
//! `Config::rebuild_foreign_state` a rebuild from the start; state last committed longer ago than
//! the changelog keeps tombstones is always rebuilt from the start (a replay of the tail could
//! miss deletes compaction has dropped, and resurrect their keys).

use crate::error::{Result, StoreError};
use crate::log::Log;
use crate::state::{StateEnv, StateWriter, StoreDelta, StoreSpec};

/// Replays every store's changelog tail into LMDB; returns how many changes were applied.
pub(crate) fn restore(
    log: &dyn Log,
    state: &StateEnv,
    writer: &StateWriter,
    stores: &[StoreSpec],
    rebuild: bool,
) -> Result<u64> {
    let epoch = state.committed_epoch()?;
    let now = crate::record::now_millis();
    let age = state
        .committed_at()?
        .map(|at| std::time::Duration::from_millis(now.saturating_sub(at).max(0) as u64));
    let mut applied = 0u64;
    for spec in stores {
        let mut from = state.changelog_offset(spec.name)?;
        let info = log.changelog_info(spec.name)?;
        let end = info.as_ref().map_or(0, |i| i.end);
        if let Some(info) = info {
            if from > info.end {
                let reason = format!(
                    "the state reflects changelog offset {from}, but the changelog ends at offset {}: the topic was deleted and created again (or belongs to another cluster)",
                    info.end
                );
                if !rebuild {
                    return Err(StoreError::Stale {
                        store: spec.name.to_string(),
                        path: state.path().display().to_string(),
                        changelog: info.topic,
                        reason: format!("{reason}; set `Config::rebuild_foreign_state` to rebuild the store from the changelog"),
                    }
                    .into());
                }
                tracing::warn!(store = spec.name, %reason, "rebuilding the store from its changelog");
                state.clear_store(spec.name)?;
                from = 0;
            } else if from > 0
                && from < info.end
                && age.zip(info.delete_retention).is_some_and(|(a, r)| a > r)
            {
                tracing::info!(store = spec.name, ?age, retention = ?info.delete_retention,
                    "state is older than the changelog keeps deletes: rebuilding the store from the start");
                state.clear_store(spec.name)?;
                from = 0;
            }
        }
        // Restore progress, per store: changelog records still to replay.
        let remaining = metrics::gauge!("stoat_restore_remaining_records", "store" => spec.name);
        remaining.set(end.saturating_sub(from) as f64);
        let mut apply = |entries: Vec<(Vec<u8>, Option<Vec<u8>>)>, next: u64| -> Result<()> {
            applied += entries.len() as u64;
            remaining.set(end.saturating_sub(next) as f64);
            let delta = StoreDelta { store: spec.name, entries };
            writer.commit_blocking(epoch, vec![delta], vec![(spec.name.to_string(), next)])?;
            Ok(())
        };
        log.restore(spec.name, from, &mut apply)?;
        remaining.set(0.0);
    }
    if applied > 0 {
        tracing::info!(applied, "state restored from changelogs");
    }
    Ok(applied)
}
