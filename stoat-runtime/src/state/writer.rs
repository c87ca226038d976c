//! The single LMDB writer thread. LMDB allows one writer per environment and a heed write
//! transaction must commit on the thread that opened it, so every state change of an epoch goes
//! through this thread, in one write transaction per epoch.
//!
//! With a sync interval, commits are not flushed to disk one by one (LMDB's `NOSYNC`): the
//! thread flushes at most that long after a commit, and when it stops. The log is the source of
//! truth: a process crash loses nothing (the OS keeps the written pages), and an OS crash rolls
//! the state back to its last flush, changelog offsets included (they are written in the same
//! transaction), so a restart replays the changelogs' tails from there.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::env::StateEnv;
use crate::error::StoreError;
use crate::testing::crash::CrashSwitch;

/// The changes one lane made to one store during an epoch: encoded keys and values, `None` for a
/// delete. Keys are unique within a delta.
#[derive(Debug, Default)]
pub struct StoreDelta {
    /// The store's name.
    pub store: &'static str,
    /// `(key, Some(value))` puts, `(key, None)` deletes.
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

struct Job {
    epoch: u64,
    deltas: Vec<StoreDelta>,
    changelogs: Vec<(String, u64)>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the writer thread; dropping it stops the thread after the queued commits.
#[derive(Debug)]
pub struct StateWriter {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// A simulated crash (the crash test): once it has struck, nothing more is written.
    crash: Option<Arc<CrashSwitch>>,
}

impl StateWriter {
    /// Starts the writer thread for `state`: every commit durable on its own (`sync_every`
    /// `None`), or flushed to disk at most `sync_every` after it.
    pub fn start(state: StateEnv, sync_every: Option<Duration>) -> Result<StateWriter, StoreError> {
        if sync_every.is_some() {
            state.defer_syncs()?;
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("stoat-state-writer".into())
            .spawn(move || match sync_every {
                None => {
                    for job in rx {
                        let result = apply(&state, job.epoch, job.deltas, job.changelogs);
                        let _ = job.done.send(result);
                    }
                }
                Some(every) => write_and_flush(&state, &rx, every),
            })
            .map_err(|cause| StoreError::Open { path: "<writer thread>".into(), cause })?;
        Ok(StateWriter { jobs: Some(tx), thread: Some(thread), crash: None })
    }

    /// Lets `switch` crash the app at its state commits (the crash test).
    pub(crate) fn with_crash(mut self, switch: Arc<CrashSwitch>) -> Self {
        self.crash = Some(switch);
        self
    }

    fn submit(
        &self,
        epoch: u64,
        deltas: Vec<StoreDelta>,
        changelogs: Vec<(String, u64)>,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        submit(self.jobs.as_ref().ok_or(StoreError::WriterGone)?, epoch, deltas, changelogs)
    }

    /// A handle that commits through this writer from another thread (an epoch's commit runs
    /// off the coordinator while the next epoch is processed).
    pub(crate) fn handle(&self) -> Result<WriterHandle, StoreError> {
        Ok(WriterHandle { jobs: self.jobs.clone().ok_or(StoreError::WriterGone)?, crash: self.crash.clone() })
    }

    /// Writes `deltas` as epoch `epoch` in one transaction, with the changelog offsets
    /// (`(store, next offset)`) they bring the stores to; returns once it is committed. Not for
    /// async tasks: it blocks.
    pub fn commit_blocking(
        &self,
        epoch: u64,
        deltas: Vec<StoreDelta>,
        changelogs: Vec<(String, u64)>,
    ) -> Result<(), StoreError> {
        alive(&self.crash)?;
        self.submit(epoch, deltas, changelogs)?.blocking_recv().map_err(|_| StoreError::WriterGone)??;
        // Outside the engine, commits are the restore's.
        match &self.crash {
            Some(switch) if switch.after_restore_batch() => Err(StoreError::Crashed),
            _ => Ok(()),
        }
    }
}

/// A restore batch handed to the writer and not waited for yet: the restore reads the next batch
/// from the changelog while the writer applies this one.
#[derive(Debug)]
pub(crate) struct Pending {
    wait: oneshot::Receiver<Result<(), StoreError>>,
    crash: Option<Arc<CrashSwitch>>,
}

impl Pending {
    /// Waits until the batch is committed.
    pub fn wait(self) -> Result<(), StoreError> {
        self.wait.blocking_recv().map_err(|_| StoreError::WriterGone)??;
        match &self.crash {
            Some(switch) if switch.after_restore_batch() => Err(StoreError::Crashed),
            _ => Ok(()),
        }
    }
}

impl StateWriter {
    /// Hands a restore batch to the writer without waiting for it (see [`Pending`]).
    pub(crate) fn submit_restore(
        &self,
        epoch: u64,
        deltas: Vec<StoreDelta>,
        changelogs: Vec<(String, u64)>,
    ) -> Result<Pending, StoreError> {
        alive(&self.crash)?;
        let wait = self.submit(epoch, deltas, changelogs)?;
        Ok(Pending { wait, crash: self.crash.clone() })
    }
}

fn alive(crash: &Option<Arc<CrashSwitch>>) -> Result<(), StoreError> {
    match crash {
        Some(switch) if switch.is_dead() => Err(StoreError::Crashed),
        _ => Ok(()),
    }
}

/// Commits through a [`StateWriter`] from a thread that does not own it.
#[derive(Clone, Debug)]
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    crash: Option<Arc<CrashSwitch>>,
}

impl WriterHandle {
    /// Same as [`StateWriter::commit_blocking`].
    pub fn commit_blocking(
        &self,
        epoch: u64,
        deltas: Vec<StoreDelta>,
        changelogs: Vec<(String, u64)>,
    ) -> Result<(), StoreError> {
        alive(&self.crash)?;
        submit(&self.jobs, epoch, deltas, changelogs)?
            .blocking_recv()
            .map_err(|_| StoreError::WriterGone)??;
        match &self.crash {
            Some(switch) if switch.after_state_commit() => Err(StoreError::Crashed),
            _ => Ok(()),
        }
    }
}

fn submit(
    jobs: &mpsc::Sender<Job>,
    epoch: u64,
    deltas: Vec<StoreDelta>,
    changelogs: Vec<(String, u64)>,
) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
    let (done, wait) = oneshot::channel();
    jobs.send(Job { epoch, deltas, changelogs, done }).map_err(|_| StoreError::WriterGone)?;
    Ok(wait)
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer's loop with deferred syncs: applies jobs, flushes at most `every` after the
/// first unflushed commit, and once more when the channel closes. A failed flush fails the
/// next commit (or is logged, at the end).
fn write_and_flush(state: &StateEnv, rx: &mpsc::Receiver<Job>, every: Duration) {
    let mut unflushed: Option<Instant> = None;
    let mut failed: Option<StoreError> = None;
    let flush = |failed: &mut Option<StoreError>| {
        if let Err(e) = state.sync() {
            tracing::error!(error = %e, "flushing the state to disk failed");
            *failed = Some(e);
        }
    };
    loop {
        let wait = unflushed.map_or(Duration::from_secs(3600), |t| every.saturating_sub(t.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(job) => {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None => apply(state, job.epoch, job.deltas, job.changelogs),
                };
                let _ = job.done.send(result);
                unflushed.get_or_insert_with(Instant::now);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if unflushed.is_some() {
                    flush(&mut failed);
                }
                return;
            }
        }
        if unflushed.is_some_and(|t| t.elapsed() >= every) {
            flush(&mut failed);
            unflushed = None;
        }
    }
}

fn apply(
    state: &StateEnv,
    epoch: u64,
    deltas: Vec<StoreDelta>,
    changelogs: Vec<(String, u64)>,
) -> Result<(), StoreError> {
    let mut txn = state.env().write_txn().map_err(|e| state.error("<environment>", e))?;
    // Keys are tagged here, in one reused buffer, rather than by the database's key codec
    // (which would allocate a copy of every key).
    let mut tagged = Vec::new();
    for delta in deltas {
        let db = state.database(delta.store)?.remap_key_type::<heed::types::Bytes>();
        for (key, value) in delta.entries {
            super::tagged::tag_into(&mut tagged, |out| out.extend_from_slice(&key));
            let result = match value {
                Some(value) => db.put(&mut txn, &tagged, &value),
                None => db.delete(&mut txn, &tagged).map(|_| ()),
            };
            result.map_err(|e| state.error(delta.store, e))?;
        }
    }
    let meta = state.meta();
    meta.put(&mut txn, StateEnv::epoch_key(), &epoch.to_be_bytes()).map_err(|e| state.error("__stoat", e))?;
    let now = crate::record::now_millis();
    meta.put(&mut txn, StateEnv::committed_at_key(), &now.to_be_bytes())
        .map_err(|e| state.error("__stoat", e))?;
    for (store, next) in changelogs {
        let key = StateEnv::changelog_key(&store);
        meta.put(&mut txn, key.as_bytes(), &next.to_be_bytes()).map_err(|e| state.error("__stoat", e))?;
    }
    txn.commit().map_err(|e| state.error("<environment>", e))
}
