//! The order in which polled input records are dispatched. By default records of several
//! partitions are merged by timestamp, each partition kept in offset order: the next record is
//! the one with the smallest timestamp among the partitions' next records, which is how a Kafka
//! Streams task chooses among its input partitions. It applies to what one poll returned (the
//! records at hand), so it is deterministic for a given input and does not depend on the number
//! of lanes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::log::Polled;

/// Reorders `polled` into timestamp order across partitions, keeping each partition's order.
/// Ties go to the partition whose records came first in the poll (so a run of equal timestamps
/// stays on one partition). `scratch` is reused.
pub(crate) fn by_timestamp(polled: &mut Vec<Polled>, scratch: &mut Vec<Polled>) {
    if polled.len() < 2 {
        return;
    }
    // Each partition's records, in poll order, as index lists into `polled`.
    let mut queues: Vec<Vec<usize>> = Vec::new();
    let mut queue_of: HashMap<(u32, u32), usize> = HashMap::new();
    for (i, p) in polled.iter().enumerate() {
        let q = *queue_of.entry((p.source, p.partition)).or_insert_with(|| {
            queues.push(Vec::new());
            queues.len() - 1
        });
        queues[q].push(i);
    }
    if queues.len() < 2 {
        return;
    }
    let mut heads = vec![0usize; queues.len()];
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> =
        queues.iter().enumerate().map(|(q, idx)| Reverse((polled[idx[0]].record.timestamp, q))).collect();
    let mut order = Vec::with_capacity(polled.len());
    while let Some(Reverse((_, q))) = heap.pop() {
        order.push(queues[q][heads[q]]);
        heads[q] += 1;
        if let Some(&next) = queues[q].get(heads[q]) {
            heap.push(Reverse((polled[next].record.timestamp, q)));
        }
    }
    scratch.clear();
    let mut taken: Vec<Option<Polled>> = polled.drain(..).map(Some).collect();
    for i in order {
        if let Some(p) = taken[i].take() {
            scratch.push(p);
        }
    }
    std::mem::swap(polled, scratch);
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
    fn partitions_merge_by_timestamp_and_keep_their_own_order() {
        // Partition 0 is out of order in itself (30 before 10): it stays so.
        let mut polled = vec![rec(0, 0, 30), rec(0, 1, 10), rec(0, 2, 40), rec(1, 0, 20), rec(1, 1, 35)];
        by_timestamp(&mut polled, &mut Vec::new());
        let got: Vec<(u32, u64)> = polled.iter().map(|p| (p.partition, p.record.offset)).collect();
        assert_eq!(got, vec![(1, 0), (0, 0), (0, 1), (1, 1), (0, 2)]);
    }

    #[test]
    fn ties_go_to_the_partition_polled_first_and_keep_it() {
        let mut polled = vec![rec(3, 0, 5), rec(1, 0, 5), rec(3, 1, 5)];
        by_timestamp(&mut polled, &mut Vec::new());
        let got: Vec<(u32, u64)> = polled.iter().map(|p| (p.partition, p.record.offset)).collect();
        assert_eq!(got, vec![(3, 0), (3, 1), (1, 0)]);
    }
}
