//! Scheduled sources: a stream that emits a record at each instant of a schedule (every
//! interval, aligned to the Unix epoch, or a cron pattern, in UTC) on the wall clock. An epoch
//! ends at least every commit interval while the topology has one, and at each epoch's end the
//! lane that owns the schedule emits every instant that has come since the last one it
//! emitted. That last instant is state (a store named after the schedule, changelogged): it
//! commits with the epoch's outputs, so after a crash no instant is emitted twice, and instants
//! passed while the app was down are emitted when it is back.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::replica::LaneTable;
use super::window::millis;
use super::{lock, RootFactory, Stream, Topology};
use crate::error::{BoxError, Error, Result};
use crate::lane::{lane_of, LaneCx, Phase, Push, RootOf};
use crate::operator::Call;
use crate::record::{Envelope, Origin, Record};

/// When a scheduled source emits.
#[derive(Clone, Debug)]
pub struct Schedule(When);

#[derive(Clone, Debug)]
enum When {
    Every(i64),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// At every multiple of `interval` since the Unix epoch (so every minute on the minute).
    pub fn every(interval: Duration) -> Self {
        Schedule(When::Every(millis(interval).max(1)))
    }

    /// At the instants a cron pattern names, in UTC: five fields (minute, hour, day of month,
    /// month, day of week) or six with seconds first, e.g. `"0 */15 * * * *"`.
    pub fn cron(pattern: &str) -> Result<Self> {
        let cron = croner::Cron::from_str(pattern)
            .map_err(|e| Error::Config(format!("`{pattern}` is not a cron pattern (Schedule::cron): {e}")))?;
        Ok(Schedule(When::Cron(Box::new(cron))))
    }

    /// The first instant of the schedule after `after` (ms since the Unix epoch).
    fn next_after(&self, after: i64) -> Option<i64> {
        match &self.0 {
            When::Every(every) => after.div_euclid(*every).checked_add(1)?.checked_mul(*every),
            When::Cron(cron) => {
                // Cron works in whole seconds: from the second `after` falls in.
                let from = chrono::DateTime::from_timestamp(after.div_euclid(1_000), 0)?;
                cron.find_next_occurrence(&from, false).ok().map(|t| t.timestamp().saturating_mul(1_000))
            }
        }
    }
}

/// At most this many instants per epoch (a long outage's backlog comes over several).
const MAX_PER_EPOCH: usize = 10_000;

impl Topology {
    /// A stream with one record at each instant of `schedule` on the wall clock: key `name`,
    /// value and timestamp the instant (ms since the Unix epoch). The last instant emitted is
    /// kept in the store `name`, so each instant is emitted exactly once, across crashes too.
    pub fn schedule(&self, name: &'static str, schedule: Schedule) -> Stream<String, i64> {
        let outlet = super::Outlet::<String, i64>::new();
        let mut graph = lock(&self.graph);
        graph.streams.push((
            format!("the stream of schedule `{name}`"),
            Arc::clone(&outlet) as Arc<dyn super::Consumed>,
        ));
        if graph.aggregations.contains(&name) {
            graph.errors.push(format!("store `{name}` is already used; give the schedule another name"));
        }
        graph.aggregations.push(name);
        graph.states.push(LaneTable::<String, i64>::slot(name, "Schedule", 1, lane_of));
        let slot = graph.states.len() - 1;
        // Epochs then end (and the schedule is looked at) every commit interval.
        graph.epoch_end = true;
        graph.timers = true;
        graph.schedules += 1;
        let (out, schedule) = (Arc::clone(&outlet), Arc::new(schedule));
        let root: RootFactory = Arc::new(move |lanes| {
            let node =
                ScheduleNode { name, slot, schedule: Arc::clone(&schedule), next: out.instantiate(lanes) };
            Box::new(RootOf::<(), ()>::new(Box::new(node)))
        });
        graph.points.push(root);
        let node = graph.described.add(
            super::describe::NodeKind::Schedule,
            format!("schedule `{name}`"),
            Vec::new(),
        );
        drop(graph);
        Stream {
            graph: Arc::clone(&self.graph),
            outlet,
            node,
            source: super::NO_SOURCE,
            _types: std::marker::PhantomData,
        }
    }
}

/// A schedule on one lane: at an epoch's end, on the lane that owns it, emits its due instants.
struct ScheduleNode {
    name: &'static str,
    slot: usize,
    schedule: Arc<Schedule>,
    next: Box<dyn Push<String, i64>>,
}

impl ScheduleNode {
    /// The instants due at `now` after the last one emitted, and records the last of them (or,
    /// the first time, `now` itself, where the schedule starts).
    fn due(&self, now: i64, cx: &LaneCx) -> std::result::Result<Vec<i64>, BoxError> {
        let call = Call::on_states(&cx.states);
        let key = self.name.to_string();
        let last = LaneTable::<String, i64>::read(&call, self.slot, |t| t.get(&key))?;
        let mut due = Vec::new();
        let mut at = match last {
            Some(last) => last,
            None => now,
        };
        while due.len() < MAX_PER_EPOCH {
            match self.schedule.next_after(at) {
                Some(next) if next <= now => {
                    due.push(next);
                    at = next;
                }
                _ => break,
            }
        }
        if last != Some(at) {
            let lane = (cx.lane, cx.lanes());
            LaneTable::<String, i64>::write(&call, self.slot, lane, |t| t.put(key, at))?;
        }
        Ok(due)
    }
}

impl Push<(), ()> for ScheduleNode {
    fn push(&mut self, _: Envelope<(), ()>, _: &mut LaneCx) -> Result<()> {
        Ok(())
    }

    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        if cx.phase == Phase::EpochEnd && lane_of(&self.name.to_string(), cx.lanes()) == cx.lane {
            let now = cx.shared.clock.now();
            let due = match self.due(now, cx) {
                Ok(due) => due,
                Err(e) => return cx.operator_error(self.name, Origin::default(), e),
            };
            for at in due {
                let record =
                    Record { key: self.name.to_string(), value: at, timestamp: at, headers: Vec::new() };
                let origin = Origin { stream_time: at, ..Origin::default() };
                cx.released += 1;
                self.next.push(Envelope { record, origin }, cx)?;
            }
        }
        self.next.flush(cx)
    }
}
