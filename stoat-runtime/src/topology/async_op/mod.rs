//! Async operators on lanes: a record whose call awaits (a REST call, a query) parks only
//! itself. The operator's node hands each record to its lane's [`LaneCalls`] and goes on; the
//! finished calls come back to the same lane through a point of their own ([`CallsRoot`]), so
//! what follows the operator runs on the lane as for any other record. Until then a record
//! counts in flight at that point, so the barrier waits for every call of its epoch; an aborted
//! epoch drops its calls with it, and their records are read again.

mod call;
mod lane;

pub(crate) use call::Calls;

use std::collections::VecDeque;
use std::sync::Arc;

use lane::{Completion, Completions, Job, LaneCalls};

use crate::error::Result;
use crate::lane::{Entry, LaneCx, Phase, Push, Root};
use crate::operator::{Context, Data, Key, Operator};
use crate::record::Envelope;

/// The node of an async operator on one lane.
pub(crate) struct CallsNode<O: Operator<K, V, M>, K, V, M> {
    calls: Arc<Calls<O, K, V, M>>,
    point: usize,
    /// Made on the first record (it needs the lane).
    lane: Option<Arc<LaneCalls<O, K, V, M>>>,
    /// The source whose topic `topic` is.
    source: Option<u32>,
    topic: Arc<str>,
}

impl<O: Operator<K, V, M>, K, V, M> CallsNode<O, K, V, M> {
    pub fn new(calls: Arc<Calls<O, K, V, M>>, point: usize) -> Self {
        CallsNode { calls, point, lane: None, source: None, topic: Arc::from("") }
    }
}

impl<O, K, V, M> Push<K, V> for CallsNode<O, K, V, M>
where
    O: Operator<K, V, M>,
    K: Key,
    V: Data,
    M: 'static,
{
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { mut record, origin } = env;
        let (calls, point) = (&self.calls, self.point);
        let lane = self.lane.get_or_insert_with(|| {
            Arc::new(LaneCalls::new(Arc::clone(calls), point, cx.lane, Arc::clone(&cx.shared)))
        });
        if self.source != Some(origin.source) {
            self.topic =
                cx.shared.source_topics.get(origin.source as usize).cloned().unwrap_or_else(|| Arc::from(""));
            self.source = Some(origin.source);
        }
        let context = Context {
            topic: Arc::clone(&self.topic),
            partition: origin.partition,
            offset: origin.offset,
            timestamp: record.timestamp,
            headers: std::mem::take(&mut record.headers),
            lane: cx.lane,
            lanes: cx.lanes(),
            stream_time: origin.stream_time,
            wall_clock: 0,
        };
        cx.shared.count_in(Entry::Point(point), 1);
        lane.accept(Job { record, origin, context });
        Ok(())
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        if cx.phase == Phase::Discard {
            if let Some(lane) = &self.lane {
                lane.discard();
            }
        }
        Ok(())
    }
}

impl<O: Operator<K, V, M>, K, V, M> Drop for CallsNode<O, K, V, M> {
    fn drop(&mut self) {
        if let Some(lane) = &self.lane {
            lane.abort();
        }
    }
}

/// Where an async operator's finished calls enter the lane: their outputs go on downstream,
/// their errors to the error policy.
pub(crate) struct CallsRoot<K, V> {
    operator: &'static str,
    queue: VecDeque<Completion<K, V>>,
    next: Box<dyn Push<K, V>>,
}

impl<K, V> CallsRoot<K, V> {
    pub fn new(operator: &'static str, next: Box<dyn Push<K, V>>) -> Self {
        CallsRoot { operator, queue: VecDeque::new(), next }
    }
}

impl<K: Send + 'static, V: Send + 'static> Root for CallsRoot<K, V> {
    fn enqueue(&mut self, batch: Box<dyn std::any::Any + Send>) -> Result<()> {
        let from = batch.downcast::<Arc<dyn Completions<K, V>>>().map_err(|_| {
            crate::error::Error::Runtime(
                "an async operator's point received a batch of the wrong type".into(),
            )
        })?;
        from.take(&mut self.queue);
        Ok(())
    }
    fn split(&self) -> Option<crate::lane::Split> {
        // Its records come from its own lane's calls only.
        None
    }
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn step(&mut self, cx: &mut LaneCx, max: usize, go: &dyn Fn(&LaneCx) -> bool) -> (usize, Result<()>) {
        let mut ran = 0;
        while ran < max {
            let Some(Completion { origin, result }) = self.queue.pop_front() else { break };
            ran += 1;
            let pushed = match result {
                Ok(records) => {
                    records.into_iter().try_for_each(|record| self.next.push(Envelope { record, origin }, cx))
                }
                Err(e) => cx.operator_error(self.operator, origin, e),
            };
            if let Err(e) = pushed {
                return (ran, Err(e));
            }
            if !go(cx) {
                break;
            }
        }
        (ran, Ok(()))
    }
    fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }
    fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}
