//! The lane task: takes batches from its channel into its pipeline's queues, runs the deepest
//! queued work first (a record at a time, within the in-flight budget), and at the barrier hands
//! over its buffered state changes, or discards them when the epoch was aborted.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Entry, LaneCx, Phase, Root, BATCH};
use crate::error::{Error, Panicked, Result};
use crate::state::StoreDelta;

/// Steps a lane runs at most without yielding to the other tasks of its worker.
const STEPS_PER_YIELD: usize = 8;

pub(crate) enum LaneMsg {
    Batch {
        entry: Entry,
        records: Box<dyn Any + Send>,
        count: usize,
    },
    /// The epoch's input is all processed: release what nodes hold until its end (with the
    /// epoch's stream time per source group); replies with how many records they released.
    EndEpoch(std::sync::Arc<Vec<i64>>, oneshot::Sender<Result<usize>>),
    Seal(oneshot::Sender<Result<LaneSeal>>),
    Discard(oneshot::Sender<Result<()>>),
    /// The epoch is being aborted: drop its work now, async calls in flight included (they
    /// count in flight until dropped, and the abort waits for that).
    Halted,
    /// The previous epoch's transaction is committed: hand the held outputs to the log.
    Flush,
}

/// What a lane hands over at the barrier.
#[derive(Debug, Default)]
pub(crate) struct LaneSeal {
    pub deltas: Vec<StoreDelta>,
}

pub(crate) struct LanePipeline {
    pub sources: Vec<Box<dyn Root>>,
    pub points: Vec<Box<dyn Root>>,
    /// Source batches in the order they arrived (source index, records not yet run), so that
    /// records of different sources run in the order they were dispatched.
    pub arrivals: std::collections::VecDeque<(usize, usize)>,
}

impl LanePipeline {
    fn root(&mut self, entry: Entry) -> Option<&mut Box<dyn Root>> {
        match entry {
            Entry::Source(i) => self.sources.get_mut(i),
            Entry::Point(i) => self.points.get_mut(i),
        }
    }

    /// Queues a batch that arrived for `entry`.
    fn enqueue(&mut self, entry: Entry, records: Box<dyn Any + Send>, count: usize) -> Result<()> {
        let root =
            self.root(entry).ok_or_else(|| Error::Runtime(format!("no entry {entry:?} on this lane")))?;
        root.enqueue(records)?;
        if let Entry::Source(i) = entry {
            self.arrivals.push_back((i, count));
        }
        Ok(())
    }

    /// Records queued on this lane: its sources' batches not yet run (re-keyed records count
    /// where they wait, in the budget).
    fn queued(&self) -> usize {
        self.arrivals.iter().map(|&(_, left)| left).sum()
    }

    /// The deepest entry with queued records; among sources, the one whose batch came first.
    fn deepest_queued(&self) -> Option<Entry> {
        if let Some(i) = self.points.iter().rposition(|r| r.has_queued()) {
            return Some(Entry::Point(i));
        }
        self.arrivals.front().map(|&(i, _)| Entry::Source(i))
    }

    /// Runs up to a batch of `entry`'s queued records while the budget allows, then hands on
    /// what they re-keyed and releases read transactions. Returns how many records it took.
    fn step(&mut self, entry: Entry, cx: &mut LaneCx) -> (usize, Result<()>) {
        let depth = entry.depth();
        let shared = Arc::clone(&cx.shared);
        let go = move |cx: &LaneCx| shared.budget.may_run(depth, cx.unsent);
        // A source runs no further than its batch at the front of the arrivals.
        let max = match entry {
            Entry::Source(_) => self.arrivals.front().map_or(0, |&(_, left)| left.min(BATCH)),
            Entry::Point(_) => BATCH,
        };
        let (ran, mut result) = match self.root(entry) {
            Some(root) => root.step(cx, max, &go),
            None => (0, Ok(())),
        };
        if let (Entry::Source(_), Some(front)) = (entry, self.arrivals.front_mut()) {
            front.1 = front.1.saturating_sub(ran);
            if front.1 == 0 {
                self.arrivals.pop_front();
            }
        }
        if result.is_ok() {
            result = self.sources.iter_mut().chain(self.points.iter_mut()).try_for_each(|r| r.flush(cx));
        }
        for state in &mut cx.states {
            state.get_mut().end_batch();
        }
        (ran, result)
    }

    /// Flushes every node for `phase` (the epoch's end, or its abort).
    fn flush_for(&mut self, cx: &mut LaneCx, phase: Phase) -> Result<()> {
        cx.phase = phase;
        let flushed = self.sources.iter_mut().chain(self.points.iter_mut()).try_for_each(|r| r.flush(cx));
        cx.phase = Phase::Batch;
        for state in &mut cx.states {
            state.get_mut().end_batch();
        }
        flushed
    }

    /// Releases what nodes hold until the epoch's end; returns how many records.
    fn end_epoch(&mut self, cx: &mut LaneCx) -> Result<usize> {
        cx.released = 0;
        self.flush_for(cx, Phase::EpochEnd)?;
        Ok(std::mem::take(&mut cx.released))
    }

    fn seal(&mut self, cx: &mut LaneCx) -> Result<LaneSeal> {
        let mut deltas = Vec::new();
        for state in &mut cx.states {
            state.get_mut().seal(&mut deltas)?;
        }
        Ok(LaneSeal { deltas })
    }

    /// Forgets the aborted epoch: queued records, outputs and buffered state changes.
    fn discard(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.arrivals.clear();
        for (i, root) in self.sources.iter_mut().enumerate() {
            let n = root.clear();
            cx.shared.done(Entry::Source(i), n);
        }
        for (i, root) in self.points.iter_mut().enumerate() {
            let n = root.clear();
            cx.shared.done(Entry::Point(i), n);
        }
        // Nodes drop what they hold for the epoch's end (and unsent re-keyed records).
        self.flush_for(cx, Phase::Discard)?;
        cx.outputs.clear();
        for state in &mut cx.states {
            state.get_mut().discard();
        }
        Ok(())
    }
}

/// A lane's metrics, registered once (each step then costs a few atomic operations).
struct LaneMeters {
    records: metrics::Counter,
    queued: metrics::Gauge,
    process: metrics::Histogram,
}

impl LaneMeters {
    fn new(lane: usize) -> Self {
        let label = lane.to_string();
        LaneMeters {
            records: metrics::counter!("stoat_lane_records_total", "lane" => label.clone()),
            queued: metrics::gauge!("stoat_lane_queued_records", "lane" => label),
            process: metrics::histogram!("stoat_process_seconds"),
        }
    }

    /// A step ran `ran` records in `took`, leaving `queued`.
    fn stepped(&self, ran: usize, took: std::time::Duration, queued: usize) {
        if ran > 0 {
            self.records.increment(ran as u64);
            self.process.record(took.as_secs_f64() / ran as f64);
        }
        self.queued.set(queued as f64);
    }
}

/// Hands the lane's buffered outputs to the log (waiting, without blocking, while its buffers
/// are full), unless the previous epoch's transaction is still being committed: then they wait
/// in the buffer (the coordinator bounds how much it dispatches meanwhile) until a later step or
/// the seal, which comes after that commit.
async fn flush_outputs(cx: &mut LaneCx) -> Result<()> {
    if cx.outputs.is_empty() || cx.shared.must_hold(cx.lane) {
        return Ok(());
    }
    let outputs = std::mem::take(&mut cx.outputs);
    cx.shared.stats.add_out(&outputs);
    cx.shared.log.append(outputs).await?;
    Ok(())
}

/// The outputs of an epoch being sealed: the previous epoch's commit has finished (the
/// coordinator waits for it before sealing), so they go to the log now.
async fn seal_flush(cx: &mut LaneCx) -> Result<()> {
    if cx.shared.outputs_held() {
        return Err(Error::Runtime(format!(
            "lane {} was asked to seal an epoch while the previous one was still committing",
            cx.lane
        )));
    }
    flush_outputs(cx).await
}

fn caught<R>(lane: usize, f: impl FnOnce() -> Result<R>) -> Result<R> {
    Panicked::catch(f).unwrap_or_else(|panic| Err(Error::Runtime(format!("lane {lane}: {panic}"))))
}

pub(crate) fn spawn_lane(
    mut cx: LaneCx,
    mut pipeline: LanePipeline,
    mut rx: UnboundedReceiver<LaneMsg>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shared = Arc::clone(&cx.shared);
        let lane = cx.lane;
        let mut arrived: Option<LaneMsg> = None;
        let mut steps_since_yield = 0;
        let meters = LaneMeters::new(lane);
        loop {
            // Take what has arrived; run the deepest queued work first.
            let msg = match arrived.take().map(Ok).unwrap_or_else(|| rx.try_recv()) {
                Ok(msg) => Some(msg),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
            };
            if let Some(msg) = msg {
                match msg {
                    LaneMsg::Batch { entry, records, count } => {
                        let queued = if shared.has_failed() {
                            // After a failure the epoch is lost: drop (but count) what arrives.
                            Err(None)
                        } else {
                            pipeline.enqueue(entry, records, count).map_err(Some)
                        };
                        if let Err(error) = queued {
                            if let Some(e) = error {
                                shared.fail(e);
                            }
                            shared.done(entry, count);
                        }
                    }
                    LaneMsg::EndEpoch(stream_times, reply) => {
                        cx.stream_times = stream_times;
                        let released = match caught(lane, || pipeline.end_epoch(&mut cx)) {
                            Ok(n) => flush_outputs(&mut cx).await.map(|()| n),
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(released);
                    }
                    LaneMsg::Seal(reply) => {
                        let sealed = match seal_flush(&mut cx).await {
                            Ok(()) => caught(lane, || pipeline.seal(&mut cx)),
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(sealed);
                    }
                    LaneMsg::Discard(reply) => {
                        let _ = reply.send(caught(lane, || pipeline.discard(&mut cx)));
                    }
                    LaneMsg::Halted => {
                        if shared.has_failed() {
                            let _ = caught(lane, || pipeline.discard(&mut cx));
                        }
                    }
                    LaneMsg::Flush => {
                        if let Err(e) = flush_outputs(&mut cx).await {
                            tracing::error!(lane, error = %e, "lane failed");
                            shared.fail(e);
                            let _ = caught(lane, || pipeline.discard(&mut cx));
                        }
                    }
                }
                continue;
            }
            let Some(entry) = pipeline.deepest_queued() else {
                // Nothing queued: wait for the next message.
                match rx.recv().await {
                    Some(msg) => {
                        arrived = Some(msg);
                        continue;
                    }
                    None => return,
                }
            };
            if shared.has_failed() {
                let _ = caught(lane, || pipeline.discard(&mut cx));
                continue;
            }
            if !shared.budget.may_run(entry.depth(), cx.unsent) {
                // Over budget with deeper work elsewhere: wait until that moves on.
                let freed = shared.budget.freed.notified();
                tokio::pin!(freed);
                freed.as_mut().enable();
                if !shared.budget.may_run(entry.depth(), cx.unsent) {
                    let _waiting = shared.budget.wait();
                    tokio::select! {
                        _ = freed => {}
                        msg = rx.recv() => match msg {
                            Some(msg) => arrived = Some(msg),
                            None => return,
                        },
                        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                    // Messages may have arrived meanwhile: look again from the top.
                    continue;
                }
            }
            let stepped = std::time::Instant::now();
            let (ran, result) = Panicked::catch(|| pipeline.step(entry, &mut cx)).unwrap_or_else(|panic| {
                // The panic was outside any operator (operators' panics are their records'
                // errors); the step's records are lost with the epoch.
                (0, Err(Error::Runtime(format!("lane {lane}: {panic}"))))
            });
            let result = match result {
                Ok(()) => flush_outputs(&mut cx).await,
                Err(e) => Err(e),
            };
            shared.done(entry, ran);
            meters.stepped(ran, stepped.elapsed(), pipeline.queued());
            match result {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(lane, error = %e, "lane failed");
                    shared.fail(e);
                    // The failed record and the rest of its epoch are dropped (and counted).
                    let _ = caught(lane, || pipeline.discard(&mut cx));
                }
            }
            // Let the other tasks of this worker run when this lane has more to do; when it has
            // not, it usually waits for its next message, which yields anyway (a lane kept busy
            // by messages alone yields every few steps).
            steps_since_yield += 1;
            if pipeline.deepest_queued().is_some() || steps_since_yield >= STEPS_PER_YIELD {
                steps_since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    })
}
