//! The lane task: takes batches from its channel, runs them through the lane's pipeline, and at
//! the barrier hands over its buffered state changes.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Entry, LaneCx, Root};
use crate::error::{Error, Panicked, Result};
use crate::state::StoreDelta;

pub(crate) enum LaneMsg {
    Batch {
        entry: Entry,
        records: Box<dyn Any + Send>,
        count: usize,
    },
    Seal(oneshot::Sender<Result<LaneSeal>>),
    #[allow(dead_code)] // used by the transient-error recovery, next
    Discard(oneshot::Sender<Result<()>>),
}

/// What a lane hands over at the barrier.
#[derive(Debug, Default)]
pub(crate) struct LaneSeal {
    pub deltas: Vec<StoreDelta>,
}

pub(crate) struct LanePipeline {
    pub sources: Vec<Box<dyn Root>>,
    pub points: Vec<Box<dyn Root>>,
}

impl LanePipeline {
    fn run(&mut self, entry: Entry, records: Box<dyn Any + Send>, cx: &mut LaneCx) -> Result<()> {
        let root = match entry {
            Entry::Source(i) => self.sources.get_mut(i),
            Entry::Point(i) => self.points.get_mut(i),
        };
        if let Some(root) = root {
            root.run(records, cx)?;
        }
        for root in self.sources.iter_mut().chain(self.points.iter_mut()) {
            root.flush(cx)?;
        }
        for state in &mut cx.states {
            state.end_batch();
        }
        Ok(())
    }

    fn seal(&mut self, cx: &mut LaneCx) -> Result<LaneSeal> {
        cx.flush_outputs()?;
        let mut deltas = Vec::new();
        for state in &mut cx.states {
            state.seal(&mut deltas)?;
        }
        Ok(LaneSeal { deltas })
    }

    fn seal_into_void(&mut self, cx: &mut LaneCx) -> Result<()> {
        let mut deltas = Vec::new();
        for state in &mut cx.states {
            state.seal(&mut deltas)?;
        }
        Ok(())
    }
}

pub(crate) fn spawn_lane(
    mut cx: LaneCx,
    mut pipeline: LanePipeline,
    mut rx: UnboundedReceiver<LaneMsg>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shared = Arc::clone(&cx.shared);
        while let Some(msg) = rx.recv().await {
            match msg {
                LaneMsg::Batch { entry, records, count } => {
                    // After a failure the epoch is lost: skip (but count) what is still queued.
                    if !shared.has_failed() {
                        let result = Panicked::catch(|| pipeline.run(entry, records, &mut cx))
                            .unwrap_or_else(|panic| {
                                Err(Error::Runtime(format!("lane {}: {panic}", cx.lane)))
                            });
                        if let Err(e) = result {
                            tracing::error!(lane = cx.lane, error = %e, "lane failed");
                            shared.fail(e);
                        }
                    }
                    shared.done(count);
                }
                LaneMsg::Seal(reply) => {
                    let sealed = Panicked::catch(|| pipeline.seal(&mut cx))
                        .unwrap_or_else(|panic| Err(Error::Runtime(format!("lane {}: {panic}", cx.lane))));
                    let _ = reply.send(sealed);
                }
                LaneMsg::Discard(reply) => {
                    // The epoch was aborted: drop its outputs and buffered state changes.
                    cx.outputs.clear();
                    let discarded = Panicked::catch(|| pipeline.seal_into_void(&mut cx))
                        .unwrap_or_else(|panic| Err(Error::Runtime(format!("lane {}: {panic}", cx.lane))));
                    let _ = reply.send(discarded);
                }
            }
        }
    })
}
