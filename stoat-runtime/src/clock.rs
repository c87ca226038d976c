//! The wall clock that wall-clock timers follow: the system clock, or, in tests, a clock that
//! moves only when the test driver advances it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A wall clock in milliseconds since the Unix epoch.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(None)
    }

    /// A clock that stands at `start` until advanced.
    pub fn manual(start: i64) -> Self {
        Clock(Some(Arc::new(AtomicI64::new(start))))
    }

    /// Whether it moves only when advanced.
    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }

    /// The time now.
    pub fn now(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::Acquire),
            None => crate::record::now_millis(),
        }
    }

    /// Moves a manual clock on by `by` (the system clock moves by itself).
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.0 {
            t.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::AcqRel);
        }
    }
}
