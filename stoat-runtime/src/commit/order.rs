//! The order in which polled input records are dispatched. By default records of several
//! partitions are merged by timestamp, each partition kept in offset order: the next record is
//! the one with the smallest timestamp among the partitions' next records, which is how a Kafka
//! Streams task chooses among its input partitions. It applies to what one poll returned (the
//! records at hand), so it is deterministic for a given input and does not depend on the number
//! of lanes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::log::Polled;

/// Puts a poll's records in timestamp order across partitions, keeping each partition's order.
/// Ties go to the partition whose records came first in the poll (so a run of equal timestamps
/// stays on one partition). Its buffers are reused from poll to poll.
#[derive(Default)]
pub(crate) struct TimestampMerge {
    queue_of: HashMap<(u32, u32), usize>,
    queues: Vec<Vec<usize>>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    slots: Vec<Option<Polled>>,
}

impl TimestampMerge {
    pub fn apply(&mut self, polled: &mut Vec<Polled>) {
        // Already in order (one partition, or in-order input): nothing to do.
        if polled.windows(2).all(|w| w[0].record.timestamp <= w[1].record.timestamp) {
            return;
        }
        self.queue_of.clear();
        self.queues.iter_mut().for_each(Vec::clear);
        let mut used = 0;
        for (i, p) in polled.iter().enumerate() {
            let q = *self.queue_of.entry((p.source, p.partition)).or_insert_with(|| {
                used += 1;
                used - 1
            });
            if q == self.queues.len() {
                self.queues.push(Vec::new());
            }
            self.queues[q].push(i);
        }
        if used < 2 {
            return;
        }
        self.heap.clear();
        for q in 0..used {
            self.heap.push(Reverse((polled[self.queues[q][0]].record.timestamp, q)));
        }
        let mut heads = vec![0usize; used];
        self.slots.clear();
        self.slots.extend(polled.drain(..).map(Some));
        while let Some(Reverse((_, q))) = self.heap.pop() {
            let at = self.queues[q][heads[q]];
            if let Some(p) = self.slots[at].take() {
                polled.push(p);
            }
            heads[q] += 1;
            if let Some(&next) = self.queues[q].get(heads[q]) {
                if let Some(p) = &self.slots[next] {
                    self.heap.push(Reverse((p.record.timestamp, q)));
                }
            }
        }
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

    #[test]
    fn a_merge_reuses_its_buffers_across_polls() {
        let mut merge = TimestampMerge::default();
        for _ in 0..3 {
            let mut polled = vec![rec(0, 0, 9), rec(2, 0, 1), rec(0, 1, 3)];
            merge.apply(&mut polled);
            let got: Vec<(u32, u64)> = polled.iter().map(|p| (p.partition, p.record.offset)).collect();
            assert_eq!(got, vec![(2, 0), (0, 0), (0, 1)]);
        }
    }

    #[test]
    fn partitions_merge_by_timestamp_and_keep_their_own_order() {
        // Partition 0 is out of order in itself (30 before 10): it stays so.
        let mut polled = vec![rec(0, 0, 30), rec(0, 1, 10), rec(0, 2, 40), rec(1, 0, 20), rec(1, 1, 35)];
        TimestampMerge::default().apply(&mut polled);
        let got: Vec<(u32, u64)> = polled.iter().map(|p| (p.partition, p.record.offset)).collect();
        assert_eq!(got, vec![(1, 0), (0, 0), (0, 1), (1, 1), (0, 2)]);
    }

    #[test]
    fn ties_go_to_the_partition_polled_first_and_keep_it() {
        // Partition 1 is out of order in itself, so the merge runs.
        let mut polled = vec![rec(3, 0, 5), rec(1, 0, 5), rec(3, 1, 5), rec(1, 1, 1)];
        TimestampMerge::default().apply(&mut polled);
        let got: Vec<(u32, u64)> = polled.iter().map(|p| (p.partition, p.record.offset)).collect();
        assert_eq!(got, vec![(3, 0), (3, 1), (1, 0), (1, 1)]);
    }
}
