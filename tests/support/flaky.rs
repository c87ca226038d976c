//! A log that fails chosen commits and appends with a transient error, as a broker outage
//! would: epochs abort and are retried.

/// A log that fails some commits and appends with a transient error, as a broker outage would.
pub struct Flaky {
    inner: stoat::log::EmbeddedSession,
    commits: std::sync::atomic::AtomicUsize,
    appends: std::sync::atomic::AtomicUsize,
    /// Commit and append calls (counted from 1) that fail.
    failing_commits: Vec<usize>,
    failing_appends: Vec<usize>,
}

impl stoat::log::Log for Flaky {
    fn assign(&self, group: &str, topics: &[String]) -> stoat::Result<()> {
        self.inner.assign(group, topics)
    }
    fn poll(&self, max: usize, out: &mut Vec<stoat::log::Polled>) -> stoat::Result<()> {
        self.inner.poll(max, out)
    }
    fn append(&self, records: Vec<stoat::log::OutRecord>) -> stoat::log::BoxFuture<'_, stoat::Result<()>> {
        let n = self.appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.failing_appends.contains(&n) {
            return Box::pin(std::future::ready(Err(stoat::Error::Transient(format!(
                "append {n} timed out"
            )))));
        }
        self.inner.append(records)
    }
    fn commit(
        &self,
        group: &str,
        offsets: &[stoat::log::CommitOffset],
    ) -> stoat::Result<stoat::log::CommitReceipt> {
        let n = self.commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.failing_commits.contains(&n) {
            return Err(stoat::Error::Transient(format!("commit {n} timed out")));
        }
        self.inner.commit(group, offsets)
    }
    fn abort(&self) -> stoat::Result<()> {
        self.inner.abort()
    }
    fn wait_for_data(&self) -> stoat::log::BoxFuture<'_, ()> {
        self.inner.wait_for_data()
    }
}

impl Flaky {
    /// Fails commit and append calls (counted from 1) whose numbers are listed.
    pub fn new(
        inner: stoat::log::EmbeddedSession,
        failing_commits: Vec<usize>,
        failing_appends: Vec<usize>,
    ) -> Self {
        Flaky {
            inner,
            commits: Default::default(),
            appends: Default::default(),
            failing_commits,
            failing_appends,
        }
    }
}
