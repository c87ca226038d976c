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

/// A batch's changes sorted by key, the last change of a key kept: LMDB writes keys in order
/// much faster than scattered (a replayed store's keys arrive in no order), and only a key's last
/// change in the batch counts.
fn in_key_order(entries: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    // A stable sort keeps each key's changes in changelog order; the last of each run wins.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(entries.len());
    for entry in entries.drain(..) {
        match kept.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => kept.push(entry),
        }
    }
    *entries = kept;
}

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
        // A batch is applied while the next one is read: one batch waits at most.
        let mut pending: Option<crate::state::Pending> = None;
        let mut apply = |mut entries: Vec<(Vec<u8>, Option<Vec<u8>>)>, next: u64| -> Result<()> {
            applied += entries.len() as u64;
            remaining.set(end.saturating_sub(next) as f64);
            in_key_order(&mut entries);
            let delta = StoreDelta { store: spec.name, entries };
            if let Some(previous) = pending.take() {
                previous.wait()?;
            }
            pending = Some(writer.submit_restore(epoch, vec![delta], vec![(spec.name.to_string(), next)])?);
            Ok(())
        };
        let replayed = log.restore(spec.name, from, &mut apply);
        // The last batch is committed (or its failure reported) before anything else happens.
        let last = pending.take().map_or(Ok(()), crate::state::Pending::wait);
        replayed?;
        last?;
        remaining.set(0.0);
    }
    if applied > 0 {
        tracing::info!(applied, "state restored from changelogs");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::in_key_order;

    #[test]
    fn a_batch_is_sorted_by_key_and_keeps_each_keys_last_change() {
        let change = |k: &str, v: Option<&str>| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()));
        let mut batch = vec![
            change("b", Some("1")),
            change("a", Some("1")),
            change("b", None),
            change("c", Some("1")),
            change("a", Some("2")),
            change("b", Some("3")),
            change("c", None),
        ];
        in_key_order(&mut batch);
        assert_eq!(batch, vec![change("a", Some("2")), change("b", Some("3")), change("c", None)]);
    }
}
