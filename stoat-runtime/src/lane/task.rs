//! The lane-group task. Lanes are not tokio tasks of their own: one task runs a group of them
//! (lane `l` belongs to group `l % groups`), so that ten thousand lanes cost the wake-ups and
//! messages of a few dozen tasks. The task takes the batches addressed to its lanes into their
//! pipelines, runs the lanes with queued work in turn (each its deepest queued work first, within
//! the in-flight budget), gathers their outputs into one buffer handed to the log at once, and
//! answers the coordinator's barrier messages for all its lanes together.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::pipeline::{LanePipeline, LaneSeal};
use super::{Arrivals, Entry, LaneCx, Outbox, Root, Shared};
use crate::error::{Error, Panicked, Result};
use crate::log::OutRecord;

/// Steps a group runs at most without yielding to the other tasks of its worker; it yields
/// sooner once it has run a batch's worth of records. (A yield can wake an idle worker to steal
/// the task: with many lanes per group, yielding every few steps woke one every few records.)
const STEPS_PER_YIELD: usize = 64;

/// Outputs a group gathers at most before handing them to the log (it hands them on sooner
/// whenever it has nothing queued).
const OUTPUT_BATCH: usize = 4096;

/// A message to a lane group.
pub(crate) enum LaneMsg {
    /// A [`GroupBatch`](super::GroupBatch) of `count` records for the group's lanes.
    Records {
        entry: Entry,
        records: Box<dyn Any + Send>,
        count: usize,
    },
    /// An async operator's finished calls for one lane (counted in flight already).
    Calls {
        lane: usize,
        entry: Entry,
        calls: Box<dyn Any + Send>,
    },
    /// The epoch's input is all processed: release what nodes hold until its end (with the
    /// epoch's stream time per source group); replies with how many records they released.
    EndEpoch(Arc<Vec<i64>>, oneshot::Sender<Result<usize>>),
    /// Every lane of the group hands over its buffered state changes.
    Seal(oneshot::Sender<Result<Vec<LaneSeal>>>),
    Discard(oneshot::Sender<Result<()>>),
    /// The epoch is being aborted: drop its work now, async calls in flight included (they
    /// count in flight until dropped, and the abort waits for that).
    Halted,
    /// The previous epoch's transaction is committed: hand the held outputs to the log.
    Flush,
}

/// A lane group's metrics, registered once (each step then costs a few atomic operations).
/// Per group rather than per lane: 10,000 lanes would be 20,000 series.
struct GroupMeters {
    records: metrics::Counter,
    queued: metrics::Gauge,
    process: metrics::Histogram,
}

impl GroupMeters {
    fn new(group: usize) -> Self {
        let label = group.to_string();
        GroupMeters {
            records: metrics::counter!("stoat_lane_group_records_total", "group" => label.clone()),
            queued: metrics::gauge!("stoat_lane_group_queued_records", "group" => label),
            process: metrics::histogram!("stoat_process_seconds"),
        }
    }

    /// A step ran `ran` records in `took`, leaving `queued` input records on the group's lanes.
    fn stepped(&self, ran: usize, took: Duration, queued: usize) {
        if ran > 0 {
            self.records.increment(ran as u64);
            self.process.record(took.as_secs_f64() / ran as f64);
        }
        self.queued.set(queued as f64);
    }
}

/// One lane of a group.
pub(crate) struct Lane {
    cx: LaneCx,
    pipeline: LanePipeline,
    /// Whether it is in the group's ready queue.
    ready: bool,
}

impl Lane {
    pub fn new(cx: LaneCx, pipeline: LanePipeline) -> Self {
        Lane { cx, pipeline, ready: false }
    }
}

/// A group's lanes while a group batch is spread over them.
struct Spread<'a> {
    groups: usize,
    /// Records queued so far.
    queued: usize,
    lanes: &'a mut [Lane],
    ready: &'a mut VecDeque<usize>,
}

impl Arrivals for Spread<'_> {
    fn root(&mut self, lane: usize, entry: Entry) -> Result<&mut dyn Root> {
        let root = self.lanes.get_mut(lane / self.groups).and_then(|l| l.pipeline.root(entry));
        match root {
            Some(root) => Ok(root.as_mut()),
            None => Err(Error::Runtime(format!(
                "a group batch held lane {lane}, which has no entry {entry:?} in this group"
            ))),
        }
    }
    fn arrived(&mut self, lane: usize, entry: Entry, n: usize) {
        let local = lane / self.groups;
        if let Some(l) = self.lanes.get_mut(local) {
            l.pipeline.arrived(entry, n);
            self.queued += n;
            mark_ready(self.lanes, self.ready, local);
        }
    }
}

/// Puts lane `local` in the ready queue unless it is there.
fn mark_ready(lanes: &mut [Lane], ready: &mut VecDeque<usize>, local: usize) {
    if let Some(lane) = lanes.get_mut(local) {
        if !lane.ready {
            lane.ready = true;
            ready.push_back(local);
        }
    }
}

fn caught<R>(lane: usize, f: impl FnOnce() -> Result<R>) -> Result<R> {
    Panicked::catch(f).unwrap_or_else(|panic| Err(Error::Runtime(format!("lane {lane}: {panic}"))))
}

struct Group {
    index: usize,
    shared: Arc<Shared>,
    /// Lane `index + i * groups` at `i`.
    lanes: Vec<Lane>,
    /// Lanes with queued work, in the order they got it.
    ready: VecDeque<usize>,
    /// The lanes' outputs, in the order they were made.
    outputs: Vec<OutRecord>,
    /// Re-keyed records on their way to other groups, lent to the lane that runs.
    outbox: Outbox,
    /// Records run and not yet counted done, per depth: counted together (see `settle`).
    finished: Vec<usize>,
    finished_total: usize,
    /// Input records queued on the lanes, for the metrics.
    queued_input: usize,
    meters: GroupMeters,
}

impl Group {
    fn local(&self, lane: usize) -> usize {
        lane / self.shared.groups()
    }

    fn mark_ready(&mut self, local: usize) {
        mark_ready(&mut self.lanes, &mut self.ready, local);
    }

    /// Lends the outbox to lane `local` (or takes it back).
    fn lend(&mut self, local: usize) {
        std::mem::swap(&mut self.outbox, &mut self.lanes[local].cx.outbox);
    }

    /// Counts the records run since the last time as done: once per batch's worth or whenever
    /// the group stops running, rather than after every lane's step, which with many lanes per
    /// group would wake the coordinator for every few records.
    fn settle(&mut self) {
        if self.finished_total == 0 {
            return;
        }
        self.finished_total = 0;
        for (depth, n) in self.finished.iter_mut().enumerate() {
            if *n > 0 {
                self.shared.budget.done(depth, std::mem::take(n));
            }
        }
        self.shared.progress.notify_one();
    }

    /// Sends the re-keyed records buffered.
    fn send_rekeyed(&mut self) -> Result<()> {
        self.outbox.send_all(&self.shared)
    }

    /// Takes a lane's outputs into the group's buffer.
    fn gather(&mut self, local: usize) {
        let outputs = &mut self.lanes[local].cx.outputs;
        if self.outputs.is_empty() {
            std::mem::swap(&mut self.outputs, outputs);
        } else {
            self.outputs.append(outputs);
        }
    }

    /// Hands the buffered outputs to the log (waiting, without blocking, while its buffers are
    /// full), unless the previous epoch's transaction is still being committed: then they wait
    /// (the coordinator bounds how much it dispatches meanwhile) until the group is rung, or
    /// the seal, which comes after that commit.
    async fn flush_outputs(&mut self) -> Result<()> {
        if self.outputs.is_empty() || self.shared.must_hold(self.index) {
            return Ok(());
        }
        let outputs = std::mem::take(&mut self.outputs);
        self.shared.stats.add_out(&outputs);
        self.shared.log.append(outputs).await?;
        Ok(())
    }

    /// Forgets the aborted epoch on every lane: queued records, outputs, state changes.
    fn discard_all(&mut self) -> Result<()> {
        self.settle();
        self.queued_input = 0;
        self.ready.clear();
        self.outputs.clear();
        self.outbox.clear(&self.shared);
        let mut first = Ok(());
        for lane in &mut self.lanes {
            lane.ready = false;
            let discarded = caught(lane.cx.lane, || lane.pipeline.discard(&mut lane.cx));
            if first.is_ok() {
                first = discarded;
            }
        }
        first
    }

    /// A lane failed: the epoch is lost (every lane drops its part of it).
    fn failed(&mut self, lane: usize, e: Error) {
        tracing::error!(lane, error = %e, "lane failed");
        self.shared.fail(e);
        let _ = self.discard_all();
    }

    /// The group's own work failed (handing on outputs or re-keyed records): reported as its
    /// first lane's.
    fn group_failed(&mut self, e: Error) {
        let first = self.lanes.first().map_or(self.index, |l| l.cx.lane);
        self.failed(first, e);
    }

    fn end_epoch(&mut self, stream_times: &Arc<Vec<i64>>) -> Result<usize> {
        let mut released = 0;
        for local in 0..self.lanes.len() {
            self.lend(local);
            let lane = &mut self.lanes[local];
            lane.cx.stream_times = Arc::clone(stream_times);
            let ended = caught(lane.cx.lane, || lane.pipeline.end_epoch(&mut lane.cx));
            self.lend(local);
            self.outbox.count(&self.shared);
            released += ended?;
            self.gather(local);
        }
        self.send_rekeyed()?;
        Ok(released)
    }

    /// The outputs of an epoch being sealed: the previous epoch's commit has finished (the
    /// coordinator waits for it before sealing), so they go to the log now; then every lane's
    /// state changes.
    async fn seal(&mut self) -> Result<Vec<LaneSeal>> {
        if self.shared.outputs_held() {
            return Err(Error::Runtime(format!(
                "lane group {} was asked to seal an epoch while the previous one was still committing",
                self.index
            )));
        }
        self.flush_outputs().await?;
        self.lanes.iter_mut().map(|lane| caught(lane.cx.lane, || lane.pipeline.seal(&mut lane.cx))).collect()
    }

    /// Spreads a group batch over the lanes; returns how many records it queued, and whether
    /// it failed.
    fn spread(&mut self, entry: Entry, records: Box<dyn Any + Send>) -> (usize, Result<()>) {
        let Some(split) = self.lanes.first_mut().and_then(|l| l.pipeline.split(entry)) else {
            let e =
                Error::Runtime(format!("lane group {} cannot take a group batch for {entry:?}", self.index));
            return (0, Err(e));
        };
        let groups = self.shared.groups();
        let mut spread = Spread { groups, queued: 0, lanes: &mut self.lanes, ready: &mut self.ready };
        let result = split(records, entry, &mut spread);
        (spread.queued, result)
    }

    async fn handle(&mut self, msg: LaneMsg) {
        match msg {
            LaneMsg::Records { entry, records, count } => {
                let (queued, error) = if self.shared.has_failed() {
                    // After a failure the epoch is lost: drop (but count) what arrives.
                    (0, None)
                } else {
                    let (queued, result) = self.spread(entry, records);
                    (queued, result.err())
                };
                if let Entry::Source(_) = entry {
                    self.queued_input += queued;
                }
                if queued < count {
                    if let Some(e) = error {
                        self.shared.fail(e);
                    }
                    // What was queued counts as done when it runs or is discarded.
                    self.shared.done(entry, count - queued);
                }
            }
            LaneMsg::Calls { lane, entry, calls } => {
                // After a failure the epoch is lost: its calls were aborted and counted done.
                if !self.shared.has_failed() {
                    let local = self.local(lane);
                    let queued = match self.lanes.get_mut(local) {
                        Some(l) => l.pipeline.enqueue(entry, calls, 0),
                        None => Err(Error::Runtime(format!(
                            "lane group {} received calls for lane {lane}, not one of its own",
                            self.index
                        ))),
                    };
                    match queued {
                        Ok(()) => self.mark_ready(local),
                        Err(e) => self.shared.fail(e),
                    }
                }
            }
            LaneMsg::EndEpoch(stream_times, reply) => {
                let released = match self.end_epoch(&stream_times) {
                    Ok(n) => self.flush_outputs().await.map(|()| n),
                    Err(e) => Err(e),
                };
                let _ = reply.send(released);
            }
            LaneMsg::Seal(reply) => {
                let sealed = self.seal().await;
                let _ = reply.send(sealed);
            }
            LaneMsg::Discard(reply) => {
                let _ = reply.send(self.discard_all());
            }
            LaneMsg::Halted => {
                if self.shared.has_failed() {
                    let _ = self.discard_all();
                }
            }
            LaneMsg::Flush => {
                if let Err(e) = self.flush_outputs().await {
                    self.group_failed(e);
                }
            }
        }
    }

    /// Runs one step of lane `local`: up to a batch of its deepest queued work. Returns how
    /// many records it ran, or `None` when the budget does not let it run now.
    fn step(&mut self, local: usize) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        let lane = &mut self.lanes[local];
        let Some(entry) = lane.pipeline.deepest_queued() else {
            lane.ready = false;
            return Some(0);
        };
        if !shared.budget.may_run(entry.depth(), self.outbox.uncounted()) {
            return None;
        }
        self.lend(local);
        let lane = &mut self.lanes[local];
        let index = lane.cx.lane;
        let stepped = Instant::now();
        let (ran, result) =
            Panicked::catch(|| lane.pipeline.step(entry, &mut lane.cx)).unwrap_or_else(|panic| {
                // The panic was outside any operator (operators' panics are their records'
                // errors); the step's records are lost with the epoch.
                (0, Err(Error::Runtime(format!("lane {index}: {panic}"))))
            });
        self.lend(local);
        // What the step re-keyed counts in flight before its records stop counting, so the
        // barrier never sees nothing in flight while they wait here.
        self.outbox.count(&shared);
        let depth = entry.depth();
        if self.finished.len() <= depth {
            self.finished.resize(depth + 1, 0);
        }
        self.finished[depth] += ran;
        self.finished_total += ran;
        if let Entry::Source(_) = entry {
            self.queued_input = self.queued_input.saturating_sub(ran);
        }
        self.meters.stepped(ran, stepped.elapsed(), self.queued_input);
        let more = self.lanes[local].pipeline.deepest_queued().is_some();
        self.gather(local);
        match result {
            Ok(()) if more => self.ready.push_back(local),
            Ok(()) => self.lanes[local].ready = false,
            // The failed record and the rest of its epoch are dropped (and counted).
            Err(e) => self.failed(index, e),
        }
        Some(ran)
    }

    async fn run(mut self, mut rx: UnboundedReceiver<LaneMsg>) {
        let shared = Arc::clone(&self.shared);
        let mut arrived: Option<LaneMsg> = None;
        let (mut steps_since_yield, mut ran_since_yield) = (0, 0);
        // Ready lanes in a row the budget held back: a whole round of them means waiting.
        let mut held_back = 0;
        loop {
            // Take what has arrived first.
            let msg = match arrived.take().map(Ok).unwrap_or_else(|| rx.try_recv()) {
                Ok(msg) => Some(msg),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
            };
            if let Some(msg) = msg {
                self.handle(msg).await;
                continue;
            }
            if shared.has_failed() && !self.ready.is_empty() {
                let _ = self.discard_all();
                continue;
            }
            let Some(local) = self.ready.pop_front() else {
                // Nothing queued: hand the re-keyed records and outputs on and wait for the next
                // message.
                self.settle();
                if let Err(e) = self.send_rekeyed() {
                    self.group_failed(e);
                    continue;
                }
                if let Err(e) = self.flush_outputs().await {
                    self.group_failed(e);
                }
                match rx.recv().await {
                    Some(msg) => {
                        arrived = Some(msg);
                        continue;
                    }
                    None => return,
                }
            };
            let Some(ran) = self.step(local) else {
                // Over budget with deeper work elsewhere: try the next ready lane, and after a
                // whole round of them, wait until that work moves on.
                self.ready.push_back(local);
                held_back += 1;
                // What the group ran may be what the budget waits for.
                self.settle();
                if held_back >= self.ready.len() {
                    held_back = 0;
                    // What is buffered may be the deeper work waited for.
                    if let Err(e) = self.send_rekeyed() {
                        self.failed(self.lanes[local].cx.lane, e);
                        continue;
                    }
                    if let Err(e) = self.flush_outputs().await {
                        self.failed(self.lanes[local].cx.lane, e);
                        continue;
                    }
                    let freed = shared.budget.freed.notified();
                    tokio::pin!(freed);
                    freed.as_mut().enable();
                    let deepest = self.lanes[local].pipeline.deepest_queued();
                    if deepest.is_some_and(|entry| !shared.budget.may_run(entry.depth(), 0)) {
                        let _waiting = shared.budget.wait();
                        tokio::select! {
                            _ = freed => {}
                            msg = rx.recv() => match msg {
                                Some(msg) => arrived = Some(msg),
                                None => return,
                            },
                            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                        }
                    }
                }
                continue;
            };
            held_back = 0;
            if self.outbox.is_due() {
                if let Err(e) = self.send_rekeyed() {
                    self.failed(self.lanes[local].cx.lane, e);
                    continue;
                }
            }
            if self.outputs.len() >= OUTPUT_BATCH {
                if let Err(e) = self.flush_outputs().await {
                    self.failed(self.lanes[local].cx.lane, e);
                }
            }
            // Let the other tasks of this worker run every few steps.
            if self.finished_total >= super::BATCH {
                self.settle();
            }
            steps_since_yield += 1;
            ran_since_yield += ran;
            if steps_since_yield >= STEPS_PER_YIELD || ran_since_yield >= super::BATCH {
                (steps_since_yield, ran_since_yield) = (0, 0);
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Spawns the task running group `index`'s lanes (lane `index + i * groups` at `i`).
pub(crate) fn spawn_group(
    index: usize,
    shared: Arc<Shared>,
    lanes: Vec<Lane>,
    rx: UnboundedReceiver<LaneMsg>,
) -> JoinHandle<()> {
    let outbox = Outbox::new(shared.groups());
    let group = Group {
        index,
        shared,
        lanes,
        ready: VecDeque::new(),
        outputs: Vec::new(),
        outbox,
        finished: Vec::new(),
        finished_total: 0,
        queued_input: 0,
        meters: GroupMeters::new(index),
    };
    tokio::spawn(group.run(rx))
}
