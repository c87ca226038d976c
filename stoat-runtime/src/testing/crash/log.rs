//! The log as a crashing app sees it: every call goes to the real (embedded) log until the crash
//! switch fires; from then on every call fails, as the calls of a dead process never arrive.

use std::sync::Arc;

use super::switch::CrashSwitch;
use crate::error::Result;
use crate::log::{
    BoxFuture, ChangelogEntries, ChangelogInfo, CommitOffset, CommitReceipt, InputEnd, Log, OutRecord,
    Polled, RestoreSink,
};

pub(crate) struct CrashLog {
    pub inner: Arc<dyn Log>,
    pub switch: Arc<CrashSwitch>,
}

impl CrashLog {
    fn alive(&self) -> Result<()> {
        if self.switch.is_dead() {
            return Err(self.switch.error());
        }
        Ok(())
    }
}

impl Log for CrashLog {
    fn assign(&self, group: &str, topics: &[String]) -> Result<()> {
        self.alive()?;
        self.inner.assign(group, topics)
    }
    fn poll(&self, max: usize, out: &mut Vec<Polled>) -> Result<()> {
        self.alive()?;
        self.inner.poll(max, out)
    }
    fn append(&self, records: Vec<OutRecord>) -> BoxFuture<'_, Result<()>> {
        if self.switch.is_dead() {
            let error = self.switch.error();
            return Box::pin(std::future::ready(Err(error)));
        }
        self.inner.append(records)
    }
    fn append_changelog(&self, store: &str, entries: &ChangelogEntries) -> Result<()> {
        self.alive()?;
        if self.switch.changelog() {
            return Err(self.switch.error());
        }
        self.inner.append_changelog(store, entries)
    }
    fn commit(&self, group: &str, offsets: &[CommitOffset]) -> Result<CommitReceipt> {
        self.alive()?;
        if self.switch.before_log_commit() {
            return Err(self.switch.error());
        }
        let receipt = self.inner.commit(group, offsets)?;
        if self.switch.after_log_commit() {
            return Err(self.switch.error());
        }
        Ok(receipt)
    }
    fn abort(&self) -> Result<()> {
        self.alive()?;
        self.inner.abort()
    }
    fn changelog_info(&self, store: &str) -> Result<Option<ChangelogInfo>> {
        self.alive()?;
        self.inner.changelog_info(store)
    }
    fn keeps_changelogs(&self) -> bool {
        self.inner.keeps_changelogs()
    }
    fn restore(&self, store: &str, from: u64, apply: &mut RestoreSink<'_>) -> Result<()> {
        self.alive()?;
        self.inner.restore(store, from, apply)
    }
    fn caught_up(&self) -> Result<bool> {
        self.alive()?;
        self.inner.caught_up()
    }
    fn committed_times(&self, group: &str, topics: &[String]) -> Result<Vec<(u32, u32, i64)>> {
        self.alive()?;
        self.inner.committed_times(group, topics)
    }
    fn pause(&self, sources: &[u32], paused: bool) -> Result<()> {
        self.alive()?;
        self.inner.pause(sources, paused)
    }
    fn lagging(&self, out: &mut Vec<(u32, u32)>) -> Result<()> {
        self.alive()?;
        self.inner.lagging(out)
    }
    fn input_ends(&self) -> Result<Vec<InputEnd>> {
        self.alive()?;
        self.inner.input_ends()
    }
    fn sources_caught_up(&self, sources: &[u32]) -> Result<bool> {
        self.alive()?;
        self.inner.sources_caught_up(sources)
    }
    fn wait_for_data(&self) -> BoxFuture<'_, ()> {
        self.inner.wait_for_data()
    }
}
