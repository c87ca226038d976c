//! The order in which polled input records are dispatched. By default records of several
//! partitions are merged by timestamp, each partition kept in offset order: the next record is
//! the one with the smallest timestamp among the partitions' next records, which is how a Kafka
//! Streams task chooses among its input partitions. Records are kept per partition across polls,
//! and while a partition that the log says has more records has none at hand, nothing is
//! dispatched (for at most `Config::max_partition_wait`): what one poll happened to return does
//! not decide the order, so the order is the input's, not the fetches'.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::time::Instant;

use super::coordinator::FETCH;
use crate::config::Config;
use crate::error::Result;
use crate::log::{Log, Polled};

/// Input records at hand, per partition, merged by timestamp when dispatched. Ties go to the
/// lower (source, partition).
#[derive(Default)]
pub(crate) struct TimestampMerge {
    queues: BTreeMap<(u32, u32), VecDeque<Polled>>,
    heap: BinaryHeap<Reverse<(i64, u32, u32)>>,
    buffered: usize,
    /// Key and value bytes of the records at hand.
    bytes: usize,
}

fn size(p: &Polled) -> usize {
    p.record.key.as_ref().map_or(0, Vec::len) + p.record.value.as_ref().map_or(0, Vec::len)
}

impl TimestampMerge {
    /// Takes a poll's records.
    pub fn add(&mut self, polled: &mut Vec<Polled>) {
        self.buffered += polled.len();
        self.bytes += polled.iter().map(size).sum::<usize>();
        for p in polled.drain(..) {
            self.queues.entry((p.source, p.partition)).or_default().push_back(p);
        }
    }

    /// Records at hand.
    pub fn len(&self) -> usize {
        self.buffered
    }

    /// Key and value bytes at hand.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a record of partition `id` is at hand.
    pub fn has(&self, id: &(u32, u32)) -> bool {
        self.queues.get(id).is_some_and(|q| !q.is_empty())
    }

    /// Forgets the records at hand (the log rewinds to the committed offsets).
    pub fn clear(&mut self) {
        self.queues.clear();
        self.buffered = 0;
        self.bytes = 0;
    }

    /// Moves up to `max` records to `out`, in timestamp order across partitions. Unless
    /// `force`, it stops as soon as a partition in `lagging` (sorted; the log has more of its
    /// records) has none at hand: its next record may be older than every record at hand.
    /// Returns whether it stopped for that reason.
    pub fn take(&mut self, max: usize, lagging: &[(u32, u32)], force: bool, out: &mut Vec<Polled>) -> bool {
        let starved = |queues: &BTreeMap<(u32, u32), VecDeque<Polled>>, id: &(u32, u32)| {
            queues.get(id).is_none_or(VecDeque::is_empty)
        };
        if !force && lagging.iter().any(|id| starved(&self.queues, id)) {
            return self.buffered > 0;
        }
        self.heap.clear();
        for (&(source, partition), queue) in &self.queues {
            if let Some(head) = queue.front() {
                self.heap.push(Reverse((head.record.timestamp, source, partition)));
            }
        }
        let mut taken = 0;
        let mut blocked = false;
        while taken < max {
            let Some(Reverse((_, source, partition))) = self.heap.pop() else { break };
            let id = (source, partition);
            let Some(queue) = self.queues.get_mut(&id) else { continue };
            let Some(p) = queue.pop_front() else { continue };
            self.bytes -= size(&p);
            out.push(p);
            taken += 1;
            match queue.front() {
                Some(next) => self.heap.push(Reverse((next.record.timestamp, source, partition))),
                None if !force && lagging.binary_search(&id).is_ok() => {
                    blocked = true;
                    break;
                }
                None => {}
            }
        }
        self.buffered -= taken;
        self.queues.retain(|_, q| !q.is_empty());
        blocked
    }
}

/// Bytes (keys and values) of records at hand beyond which the merge goes on without the
/// partitions it waits for, before `Config::max_partition_wait`. A consumer hands over records in
/// the order it fetched them, so reaching a lagging partition's first records can take polling
/// (and holding) every record fetched before them: after a restart with a backlog, tens of
/// thousands. Going on earlier would dispatch them ahead of the lagging partition's older
/// records, which then come after stream time passed them (found by the ledger crash test).
const MAX_HELD_BYTES: usize = 64 << 20;

/// Polls per call while the merge is held back and records keep coming.
const ROUNDS: usize = 32;

/// The timestamp order of input across polls: the records at hand, the partitions that have
/// more in the log, and those that kept the others waiting past `Config::max_partition_wait`
/// (idle until they deliver a record).
#[derive(Default)]
pub(crate) struct InputOrder {
    merge: TimestampMerge,
    lagging: Vec<(u32, u32)>,
    idle: HashSet<(u32, u32)>,
    /// Since when the merge has waited for a partition.
    waiting_since: Option<Instant>,
    /// Whether going on without a partition because too much was held has been logged.
    told_full: bool,
}

impl InputOrder {
    /// The partitions that, as of the last fetch, have records not yet fetched.
    pub(super) fn lagging(&self) -> &[(u32, u32)] {
        &self.lagging
    }

    /// The dispatcher could not take input for `stalled` (lanes were busy): that time does
    /// not count as waiting for a partition, as nothing was fetched meanwhile.
    pub(super) fn stalled(&mut self, stalled: std::time::Duration) {
        if let Some(since) = &mut self.waiting_since {
            *since += stalled;
        }
    }

    /// Forgets the records at hand (the log rewinds to the committed offsets).
    pub(super) fn clear(&mut self) {
        self.merge.clear();
        self.idle.clear();
        self.waiting_since = None;
    }

    /// Fetches and puts in `out` up to `max` records in dispatch order. `until_idle`: the run
    /// ends when nothing comes, so records at hand are not held for partitions to deliver.
    pub(super) fn next(
        &mut self,
        log: &dyn Log,
        max: usize,
        config: &Config,
        until_idle: bool,
        out: &mut Vec<Polled>,
    ) -> Result<()> {
        // Rounds while fetching brings the records a held-back partition owes: records come in
        // the order they were fetched, so its first ones may be behind many of the others'.
        for round in 0..ROUNDS {
            // Room for every partition's share of a poll, even with many records at hand; while
            // held back, whole polls, to reach the lagging partition's records soon.
            let room = match self.waiting_since {
                Some(_) => FETCH,
                None => FETCH.saturating_sub(self.merge.len()).max(FETCH / 8),
            };
            log.poll(room, out)?;
            let fetched = out.len();
            for p in out.iter() {
                self.idle.remove(&(p.source, p.partition));
            }
            self.merge.add(out);
            log.lagging(&mut self.lagging)?;
            let waited = self.waiting_since.is_some_and(|t| t.elapsed() >= config.max_partition_wait);
            if waited {
                // Partitions that kept the rest waiting that long are idle until they deliver.
                let merge = &self.merge;
                for &(source, partition) in self.lagging.iter().filter(|id| !merge.has(id)) {
                    if self.idle.insert((source, partition)) {
                        tracing::info!(
                            source,
                            partition,
                            waited = ?config.max_partition_wait,
                            "an input partition with records in the log delivered none: going on without it until it does (its records may come after stream time passed them)"
                        );
                    }
                }
                self.waiting_since = None;
            }
            let idle = &self.idle;
            self.lagging.retain(|id| !idle.contains(id));
            // A run that ends when idle must not end with records at hand: past the rounds,
            // or with nothing fetched, they go on.
            let full = self.merge.bytes() > MAX_HELD_BYTES;
            let starved = full && self.lagging.iter().any(|id| !self.merge.has(id));
            if starved && !std::mem::replace(&mut self.told_full, true) {
                tracing::info!(
                    held = self.merge.len(),
                    "input records held for a partition that has delivered none reached the limit: going on without it (its records may come after stream time passed them)"
                );
            }
            self.told_full &= starved;
            let force = full || (until_idle && (fetched == 0 || round == ROUNDS - 1));
            let blocked = self.merge.take(max, &self.lagging, force, out);
            self.waiting_since =
                if blocked { Some(self.waiting_since.unwrap_or_else(Instant::now)) } else { None };
            if !blocked || !out.is_empty() || fetched == 0 {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::log::LogRecord;

    fn rec(partition: u32, offset: u64, timestamp: i64) -> Polled {
        let record = LogRecord { offset, key: None, value: None, timestamp, headers: Vec::new() };
        Polled { source: 0, partition, record: Arc::new(record) }
    }

    fn order(polled: &[Polled]) -> Vec<(u32, u64)> {
        polled.iter().map(|p| (p.partition, p.record.offset)).collect()
    }

    #[test]
    fn partitions_merge_by_timestamp_and_keep_their_own_order() {
        // Partition 0 is out of order in itself (30 before 10): it stays so.
        let mut merge = TimestampMerge::default();
        merge.add(&mut vec![rec(0, 0, 30), rec(0, 1, 10), rec(0, 2, 40), rec(1, 0, 20), rec(1, 1, 35)]);
        let mut out = Vec::new();
        assert!(!merge.take(100, &[], false, &mut out));
        assert_eq!(order(&out), vec![(1, 0), (0, 0), (0, 1), (1, 1), (0, 2)]);
        assert_eq!(merge.len(), 0);
    }

    #[test]
    fn ties_go_to_the_lower_partition() {
        let mut merge = TimestampMerge::default();
        merge.add(&mut vec![rec(3, 0, 5), rec(1, 0, 5), rec(3, 1, 5), rec(1, 1, 7)]);
        let mut out = Vec::new();
        merge.take(100, &[], false, &mut out);
        assert_eq!(order(&out), vec![(1, 0), (3, 0), (3, 1), (1, 1)]);
    }

    #[test]
    fn a_partition_with_more_in_the_log_holds_the_others_back_until_its_records_come() {
        let mut merge = TimestampMerge::default();
        let mut out = Vec::new();
        // First poll: only partition 0's records came, though partition 1 has some.
        merge.add(&mut vec![rec(0, 0, 10), rec(0, 1, 30)]);
        assert!(merge.take(100, &[(0, 1)], false, &mut out), "held back");
        assert!(out.is_empty());
        // Next poll: partition 1's record, older than partition 0's second one.
        merge.add(&mut vec![rec(1, 0, 20)]);
        assert!(!merge.take(100, &[], false, &mut out));
        assert_eq!(order(&out), vec![(0, 0), (1, 0), (0, 1)]);
    }

    #[test]
    fn a_drained_lagging_partition_stops_the_merge_and_force_goes_on() {
        let mut merge = TimestampMerge::default();
        let mut out = Vec::new();
        merge.add(&mut vec![rec(0, 0, 10), rec(1, 0, 5), rec(0, 1, 30)]);
        // Partition 1 has more in the log: once its record at hand is taken, the merge stops
        // (its next record may be older than partition 0's).
        assert!(merge.take(100, &[(0, 1)], false, &mut out));
        assert_eq!(order(&out), vec![(1, 0)]);
        assert_eq!(merge.len(), 2);
        assert!(!merge.take(100, &[(0, 1)], true, &mut out), "forced");
        assert_eq!(order(&out), vec![(1, 0), (0, 0), (0, 1)]);
    }

    #[test]
    fn take_stops_at_max_and_keeps_the_rest() {
        let mut merge = TimestampMerge::default();
        let mut out = Vec::new();
        merge.add(&mut vec![rec(0, 0, 1), rec(0, 1, 2), rec(1, 0, 3)]);
        merge.take(2, &[], false, &mut out);
        assert_eq!(order(&out), vec![(0, 0), (0, 1)]);
        merge.clear();
        assert_eq!(merge.len(), 0);
    }
}
