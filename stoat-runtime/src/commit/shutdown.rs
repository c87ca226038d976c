//! A stop request: cloneable, triggered from anywhere (a signal handler, a test), awaited by the
//! coordinator, which then finishes and commits the open epoch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Requests a graceful stop.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<(AtomicBool, Notify)>,
}

impl Shutdown {
    /// A new, untriggered request.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the application to stop after committing its open epoch.
    pub fn trigger(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }
    /// Whether a stop was requested.
    pub fn is_triggered(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }
    /// Resolves once a stop is requested.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.1.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}
