//! One record's call of an async operator, to its end: attempts with a timeout each, a permit of
//! the cross-lane limit held during an attempt (not while backing off), retries with doubling
//! backoff and jitter, and a panic caught as the record's error (never retried).

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use tokio::sync::Semaphore;

use crate::error::{BoxError, Panicked};
use crate::operator::{AsyncSettings, Context, Emitter, Operator};
use crate::record::Record;

/// An async operator as every lane calls it.
pub(crate) struct Calls<O: Operator<K, V, M>, K, V, M> {
    pub op: Arc<O>,
    pub slots: Arc<O::Slots>,
    pub settings: AsyncSettings,
    /// The cross-lane limit, if set.
    pub limit: Option<Arc<Semaphore>>,
    pub _types: std::marker::PhantomData<fn(K, V, M)>,
}

/// Why a record's call failed for good.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallFailed {
    #[error("its call failed after {attempts} attempt(s); the last error: {cause}")]
    Failed {
        attempts: u32,
        #[source]
        cause: BoxError,
    },
    #[error("its call timed out ({timeout:?}) in the last of {attempts} attempt(s)")]
    TimedOut { attempts: u32, timeout: std::time::Duration },
}

/// A random number for jitter.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now())
}

impl<O: Operator<K, V, M>, K: Clone, V: Clone, M> Calls<O, K, V, M> {
    /// Calls the operator on `record` until an attempt succeeds or the retries are used up.
    pub async fn call(
        &self,
        record: Record<K, V>,
        context: &Context,
    ) -> Result<Emitter<O::OutKey, O::OutValue>, BoxError> {
        let s = &self.settings;
        let attempts = s.retries.saturating_add(1);
        let mut record = Some(record);
        let mut last = None;
        for n in 1..=attempts {
            let input = match (n == attempts, &mut record) {
                (true, r) => r.take(),
                (false, r) => r.as_ref().map(Record::duplicate),
            };
            let Some(input) = input else { break };
            let permit = match &self.limit {
                Some(limit) => Some(Arc::clone(limit).acquire_owned().await?),
                None => None,
            };
            let started = Panicked::catch(|| self.op.start(&self.slots, input, context));
            let outcome = match started {
                Ok(call) => tokio::time::timeout(s.timeout, CatchUnwind(call)).await,
                Err(panic) => Ok(Err(panic)),
            };
            drop(permit);
            match outcome {
                Ok(Ok(Ok(out))) => return Ok(out),
                Ok(Ok(Err(cause))) => last = Some(CallFailed::Failed { attempts: n, cause }),
                Ok(Err(panic)) => return Err(Box::new(panic)),
                Err(_) => last = Some(CallFailed::TimedOut { attempts: n, timeout: s.timeout }),
            }
            if n < attempts {
                metrics::counter!("stoat_async_retries_total", "operator" => O::NAME).increment(1);
                tokio::time::sleep(s.delay(n, random())).await;
            }
        }
        Err(Box::new(last.unwrap_or(CallFailed::Failed { attempts, cause: "no attempt was made".into() })))
    }
}

/// A future whose panic while polled is its output's `Err`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match Panicked::catch(|| Pin::new(inner).poll(cx)) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
