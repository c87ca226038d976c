//! Lanes: lightweight tokio tasks, each owning the keys that hash to it. A record runs through
//! the operators of its segment on the lane that owns its key; a re-keying node hands it to the
//! lane owning the new key through that lane's channel, never through a topic.

mod context;
mod task;

pub(crate) use context::{dead_letter, LaneCx, Shared};
pub(crate) use task::{spawn_lane, LaneMsg, LanePipeline};

use std::any::Any;
use std::hash::{Hash, Hasher};

use crate::error::Result;
use crate::record::Envelope;

/// Records per batch between the dispatcher, lanes and re-key points.
pub(crate) const BATCH: usize = 256;

/// The lane that owns `key` among `lanes` lanes: a fixed hash, so a key always maps to the same
/// lane for a given lane count.
pub(crate) fn lane_of<K: Hash + ?Sized>(key: &K, lanes: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    ((u128::from(h.finish()) * lanes as u128) >> 64) as usize
}

/// Where a lane batch enters the lane's pipeline: a source, or a re-key point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Source(usize),
    Point(usize),
}

/// A node of a lane's pipeline that takes records of one type.
pub(crate) trait Push<K, V>: Send {
    fn push(&mut self, env: Envelope<K, V>, cx: &mut LaneCx) -> Result<()>;
    /// End of a batch: hand buffered records on (re-key batches).
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()>;
}

/// The entry of a lane pipeline: takes a type-erased batch of envelopes.
pub(crate) trait Root: Send {
    fn run(&mut self, batch: Box<dyn Any + Send>, cx: &mut LaneCx) -> Result<()>;
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()>;
}

pub(crate) struct RootOf<K, V> {
    pub next: Box<dyn Push<K, V>>,
}

impl<K: Send + 'static, V: Send + 'static> Root for RootOf<K, V> {
    fn run(&mut self, batch: Box<dyn Any + Send>, cx: &mut LaneCx) -> Result<()> {
        let batch = batch
            .downcast::<Vec<Envelope<K, V>>>()
            .map_err(|_| crate::error::Error::Runtime("a lane received a batch of the wrong type".into()))?;
        for env in *batch {
            self.next.push(env, cx)?;
        }
        Ok(())
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::lane_of;

    #[test]
    fn lanes_are_stable_and_spread() {
        let mut seen = vec![0usize; 7];
        for i in 0..7000u32 {
            let l = lane_of(&format!("key-{i}"), 7);
            assert_eq!(l, lane_of(&format!("key-{i}"), 7));
            seen[l] += 1;
        }
        assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
    }
}
