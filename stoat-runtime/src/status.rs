//! What an application is doing right now, for the operator's eyes (health probes, the HTTP
//! endpoints, [`AppHandle`](crate::app::AppHandle)): its phase (restoring state, running, paused,
//! stopped, failed), when its last epoch committed, the input positions that commit stored, and
//! the pause switch the coordinator obeys. The coordinator and the app write it; readers never
//! block them.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Where an application is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Opening its state and connecting to the log.
    Starting,
    /// Replaying changelogs into its state before processing.
    Restoring,
    /// Processing (or waiting for input).
    Running,
    /// Stopped after committing its last epoch.
    Stopped,
    /// Stopped by an error it could not recover from.
    Failed,
}

impl Phase {
    fn code(self) -> u8 {
        match self {
            Phase::Starting => 0,
            Phase::Restoring => 1,
            Phase::Running => 2,
            Phase::Stopped => 3,
            Phase::Failed => 4,
        }
    }

    fn from_code(code: u8) -> Phase {
        match code {
            0 => Phase::Starting,
            1 => Phase::Restoring,
            2 => Phase::Running,
            3 => Phase::Stopped,
            _ => Phase::Failed,
        }
    }
}

/// An input partition's committed position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CommittedOffset {
    /// The input topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The next offset the app reads after a restart.
    pub offset: u64,
}

/// The live status, shared by the app, its engine and whoever observes it.
#[derive(Debug)]
pub struct Status {
    phase: AtomicU8,
    paused: AtomicBool,
    /// Rings when the app is resumed (or asked to stop while paused).
    pub(crate) resumed: Notify,
    started: Instant,
    /// When the last epoch committed (or the app started running).
    last_commit: Mutex<Instant>,
    committed: Mutex<Vec<CommittedOffset>>,
    failure: Mutex<Option<String>>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            phase: AtomicU8::new(Phase::Starting.code()),
            paused: AtomicBool::new(false),
            resumed: Notify::new(),
            started: Instant::now(),
            last_commit: Mutex::new(Instant::now()),
            committed: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
        }
    }
}

impl Status {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_code(self.phase.load(Ordering::Acquire))
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        if phase == Phase::Running {
            *self.last_commit.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
        self.phase.store(phase.code(), Ordering::Release);
    }

    /// The app stopped with `error`.
    pub(crate) fn failed(&self, error: &str) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        self.set_phase(Phase::Failed);
    }

    /// The error that stopped the app, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether reading input is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Pauses reading input: the open epoch commits what it has, and no new records are read
    /// until [`Status::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Resumes reading input after [`Status::pause`].
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.resumed.notify_waiters();
    }

    /// How long ago the last epoch committed (or the app started running, if none has).
    pub fn since_last_commit(&self) -> Duration {
        self.last_commit.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// How long ago the app was created.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The input positions of the last commit.
    pub fn committed(&self) -> Vec<CommittedOffset> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An epoch committed these positions.
    pub(crate) fn epoch_committed(&self, positions: Vec<CommittedOffset>) {
        *self.last_commit.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        for p in positions {
            match committed.iter_mut().find(|c| c.topic == p.topic && c.partition == p.partition) {
                Some(c) => c.offset = p.offset,
                None => committed.push(p),
            }
        }
        committed.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    }
}
