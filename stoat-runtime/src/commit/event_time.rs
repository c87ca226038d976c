//! Event time per source group, stamped on every record at dispatch: what windows, joins and
//! timers go by. By default it is Kafka Streams' stream time: the largest timestamp dispatched so
//! far from the group's partitions. With [`Watermarks`](crate::config::TimeSemantics), it is a
//! watermark: the smallest of the group's live partitions' largest timestamps, minus a bound on
//! out-of-orderness, where a partition that delivered nothing for a while (on the wall clock)
//! no longer holds it back. Either way it never goes back.

use std::collections::{BTreeMap, HashMap};

use crate::config::TimeSemantics;

/// One input partition's time for the watermark.
#[derive(Clone, Copy, Debug)]
struct Part {
    group: usize,
    /// Its largest timestamp so far.
    time: i64,
    /// When (wall clock) it last delivered a record.
    seen: i64,
    idle: bool,
}

/// Event time of every source group.
#[derive(Debug)]
pub(crate) struct EventTime {
    semantics: TimeSemantics,
    /// Per source, its group.
    groups: Vec<usize>,
    /// Per group, its time.
    times: Vec<i64>,
    parts: HashMap<(u32, u32), Part>,
    /// Per group, the times of its live partitions (a multiset: time -> how many).
    live: Vec<BTreeMap<i64, usize>>,
}

impl EventTime {
    /// Event time from committed partition times (a restart resumes where it was).
    pub fn new(
        semantics: TimeSemantics,
        groups: &[usize],
        partition_times: impl Iterator<Item = ((u32, u32), i64)>,
        now: i64,
    ) -> Self {
        let mut time = EventTime {
            semantics,
            groups: groups.to_vec(),
            times: vec![i64::MIN; groups.len()],
            parts: HashMap::new(),
            live: vec![BTreeMap::new(); groups.len()],
        };
        for (part, t) in partition_times {
            if t > i64::MIN {
                time.observe(part, t, now);
            }
        }
        time
    }

    /// Per group, its time.
    pub fn times(&self) -> &[i64] {
        &self.times
    }

    /// The group of `source`.
    pub fn group_of(&self, source: u32) -> usize {
        self.groups.get(source as usize).copied().unwrap_or(source as usize)
    }

    /// A record of partition `part` with timestamp `ts` is dispatched at wall clock `now`:
    /// returns its group's time with it.
    pub fn observe(&mut self, part: (u32, u32), ts: i64, now: i64) -> i64 {
        let group = self.group_of(part.0);
        let Some(current) = self.times.get(group).copied() else { return ts };
        let TimeSemantics::Watermarks { out_of_orderness, .. } = self.semantics else {
            let time = current.max(ts);
            self.times[group] = time;
            return time;
        };
        let entry = self.parts.entry(part).or_insert(Part { group, time: i64::MIN, seen: now, idle: true });
        let live = &mut self.live[group];
        if !entry.idle {
            remove(live, entry.time);
        }
        entry.time = entry.time.max(ts);
        entry.seen = now;
        entry.idle = false;
        *live.entry(entry.time).or_default() += 1;
        self.advance(group, out_of_orderness)
    }

    /// Partition `part` has records not yet dispatched: until it delivers (or goes idle), it
    /// holds its group's watermark back.
    pub fn pending(&mut self, part: (u32, u32), now: i64) {
        if !matches!(self.semantics, TimeSemantics::Watermarks { .. }) || self.parts.contains_key(&part) {
            return;
        }
        let group = self.group_of(part.0);
        if let Some(live) = self.live.get_mut(group) {
            self.parts.insert(part, Part { group, time: i64::MIN, seen: now, idle: false });
            *live.entry(i64::MIN).or_default() += 1;
        }
    }

    /// Moves every group's time on to at least `to` (a test driver advancing time by hand).
    pub fn advance_to(&mut self, to: i64) {
        for t in &mut self.times {
            *t = (*t).max(to);
        }
    }

    /// Partitions that delivered nothing for the idle time stop holding their groups back.
    pub fn sweep(&mut self, now: i64) {
        let TimeSemantics::Watermarks { out_of_orderness, idle_after } = self.semantics else { return };
        let idle_after = i64::try_from(idle_after.as_millis()).unwrap_or(i64::MAX);
        let mut moved = Vec::new();
        for part in self.parts.values_mut() {
            if !part.idle && now.saturating_sub(part.seen) >= idle_after {
                part.idle = true;
                remove(&mut self.live[part.group], part.time);
                moved.push(part.group);
            }
        }
        for group in moved {
            self.advance(group, out_of_orderness);
        }
    }

    /// The group's watermark from its live partitions, if that moves it on.
    fn advance(&mut self, group: usize, bound: std::time::Duration) -> i64 {
        let bound = i64::try_from(bound.as_millis()).unwrap_or(i64::MAX);
        if let Some((&least, _)) = self.live[group].first_key_value() {
            let watermark = least.saturating_sub(bound);
            self.times[group] = self.times[group].max(watermark);
        }
        self.times[group]
    }
}

fn remove(live: &mut BTreeMap<i64, usize>, time: i64) {
    if let Some(n) = live.get_mut(&time) {
        *n -= 1;
        if *n == 0 {
            live.remove(&time);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn watermarks(bound: u64, idle: u64) -> TimeSemantics {
        TimeSemantics::Watermarks {
            out_of_orderness: Duration::from_millis(bound),
            idle_after: Duration::from_millis(idle),
        }
    }

    #[test]
    fn stream_time_is_the_largest_timestamp() {
        let mut t = EventTime::new(TimeSemantics::StreamTime, &[0, 0], std::iter::empty(), 0);
        assert_eq!(t.observe((0, 0), 100, 0), 100);
        assert_eq!(t.observe((1, 0), 50, 0), 100);
        assert_eq!(t.observe((1, 0), 150, 0), 150);
    }

    #[test]
    fn a_watermark_is_the_slowest_live_partition_minus_the_bound_and_never_goes_back() {
        let mut t = EventTime::new(watermarks(10, 1_000), &[0], std::iter::empty(), 0);
        assert_eq!(t.observe((0, 0), 100, 0), 90);
        assert_eq!(t.observe((0, 1), 50, 0), 90, "a slower partition does not move it back");
        assert_eq!(t.observe((0, 0), 200, 0), 90, "partition 1 holds it");
        assert_eq!(t.observe((0, 1), 120, 0), 110);
        // Partition 1 goes quiet (partition 0 delivers at 600): after the idle time, partition 0
        // alone sets it.
        assert_eq!(t.observe((0, 0), 200, 600), 110);
        t.sweep(999);
        assert_eq!(t.times()[0], 110);
        t.sweep(1_000);
        assert_eq!(t.times()[0], 190);
        // It delivers again, far behind: it holds the watermark again, which stays.
        assert_eq!(t.observe((0, 1), 130, 1_500), 190);
        assert_eq!(t.observe((0, 0), 300, 1_500), 190);
        assert_eq!(t.observe((0, 1), 400, 1_500), 290);
    }
}
