//! Where a simulated crash strikes: [`CrashPoint`], and the switch the log wrapper and the state
//! writer consult at each step of a commit (and of a restore). Once it has fired, the app is
//! dead: every later call to the log or to LMDB fails, as if the process were gone, and what
//! survives is exactly what had been committed to each before.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A step of the commit protocol (or of a restart) a crash can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashPoint {
    /// The epoch's outputs have been handed to the log's open transaction; its changelogs,
    /// offsets and commit have not.
    AfterOutputs,
    /// The epoch's state changes are in the changelogs of the open transaction; the input offsets
    /// and the commit are not. (The offsets travel in the transaction's commit: on Kafka they are
    /// sent to the transaction just before it commits, and count only if it does, so a crash
    /// between the two leaves the same as this one.)
    AfterChangelog,
    /// The log has committed the epoch (outputs, changelogs, offsets); LMDB has not: the state
    /// directory is one epoch behind the log.
    AfterLogCommit,
    /// LMDB has committed the epoch too: the crash comes before anything of the next epoch.
    AfterStateCommit,
    /// On the restart after an [`CrashPoint::AfterLogCommit`] crash, after the first batch of
    /// changelog records has been restored into LMDB.
    DuringRestore,
}

impl CrashPoint {
    /// Every point, in the order a commit passes them.
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::AfterOutputs,
        CrashPoint::AfterChangelog,
        CrashPoint::AfterLogCommit,
        CrashPoint::AfterStateCommit,
        CrashPoint::DuringRestore,
    ];
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CrashPoint::AfterOutputs => "after the outputs",
            CrashPoint::AfterChangelog => "after the changelogs",
            CrashPoint::AfterLogCommit => "after the log commit (before the state commit)",
            CrashPoint::AfterStateCommit => "after the state commit",
            CrashPoint::DuringRestore => "during the restore",
        })
    }
}

/// One app instance's crash plan: strike at `point` of its `epoch`-th commit (or, for
/// [`CrashPoint::DuringRestore`], at its restore), and the state after.
#[derive(Debug)]
pub(crate) struct CrashSwitch {
    plan: Option<(CrashPoint, u64)>,
    /// Commits the log has been asked for (the epoch being committed is this + 1).
    commits: AtomicU64,
    /// Whether the epoch being committed has passed its outputs (a changelog was appended).
    changelogs: AtomicBool,
    dead: AtomicBool,
    fired: Mutex<Option<CrashPoint>>,
}

impl CrashSwitch {
    /// A switch that strikes at `point` of the `epoch`-th commit (1-based); `None`: never.
    pub fn new(plan: Option<(CrashPoint, u64)>) -> Self {
        CrashSwitch {
            plan,
            commits: AtomicU64::new(0),
            changelogs: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            fired: Mutex::new(None),
        }
    }

    /// Whether the app has crashed.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The point it crashed at, if it has.
    pub fn fired(&self) -> Option<CrashPoint> {
        *self.fired.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Epochs the log has committed for this app instance.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// The error every call gets once the app is dead.
    pub fn error(&self) -> crate::error::Error {
        let at = self.fired().map_or_else(|| "a crash".to_string(), |p| p.to_string());
        crate::error::Error::Runtime(format!("the app crashed (simulated, {at})"))
    }

    fn strike(&self, point: CrashPoint) -> bool {
        let epoch = self.commits.load(Ordering::Acquire) + 1;
        let due = match self.plan {
            Some((p, e)) if p == point => point == CrashPoint::DuringRestore || e == epoch,
            _ => false,
        };
        if due {
            *self.fired.lock().unwrap_or_else(|p| p.into_inner()) = Some(point);
            self.dead.store(true, Ordering::Release);
        }
        due
    }

    /// The log is asked to add changelog records: the epoch's outputs are all handed over.
    /// Returns whether the app dies now.
    pub fn changelog(&self) -> bool {
        if self.changelogs.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.strike(CrashPoint::AfterOutputs)
    }

    /// The log is asked to commit; returns whether the app dies before it does.
    pub fn before_log_commit(&self) -> bool {
        if !self.changelogs.load(Ordering::Acquire) && self.strike(CrashPoint::AfterOutputs) {
            return true;
        }
        self.strike(CrashPoint::AfterChangelog)
    }

    /// The log has committed; returns whether the app dies now.
    pub fn after_log_commit(&self) -> bool {
        let died = self.strike(CrashPoint::AfterLogCommit);
        self.changelogs.store(false, Ordering::Release);
        self.commits.fetch_add(1, Ordering::AcqRel);
        died
    }

    /// LMDB has committed an epoch (the log's count has moved on by then); returns whether the
    /// app dies now.
    pub fn after_state_commit(&self) -> bool {
        let (point, epoch) = match self.plan {
            Some(plan) => plan,
            None => return false,
        };
        let due = point == CrashPoint::AfterStateCommit && self.commits.load(Ordering::Acquire) == epoch;
        if due {
            *self.fired.lock().unwrap_or_else(|p| p.into_inner()) = Some(point);
            self.dead.store(true, Ordering::Release);
        }
        due
    }

    /// A batch of changelog records has been restored into LMDB; returns whether the app dies.
    pub fn after_restore_batch(&self) -> bool {
        self.strike(CrashPoint::DuringRestore)
    }
}
