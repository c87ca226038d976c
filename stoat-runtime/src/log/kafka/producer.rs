//! The producer side: one producer for the whole app (transactional under exactly-once), a
//! delivery tracker that records failures and the offsets changelog records landed at, sends
//! that wait (serving callbacks) while librdkafka's queue is full, for a bounded time, without
//! blocking an async thread, and the serve / drain loops that wait for acknowledgements without
//! rust-rdkafka's fixed 100 ms poll slices. Errors are classified: transient ones (timeouts,
//! an unreachable broker) make the engine retry the epoch; fatal ones stop it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use crate::error::{Error, Result};
use crate::record::Headers;

/// Delivery reports: the first failure, and per changelog (by opaque index) the next offset;
/// and a refusal for want of an ACL, which librdkafka reports only in its log when it fails a
/// transaction (the records' own reports then say "purged").
#[derive(Default)]
pub(crate) struct Tracker {
    failure: Mutex<Option<Error>>,
    changelog_next: Mutex<HashMap<usize, u64>>,
    denied: Mutex<Option<Error>>,
    /// The app's watch for refused logins.
    pub auth: std::sync::Arc<super::auth::AuthWatch>,
}

impl ClientContext for Tracker {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if matches!(fac, "TXNERR" | "ADDPARTS" | "ADDOFFSETS") && message.contains("uthorization failed") {
            let mut denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
            denied.get_or_insert_with(|| refused_by_log(message));
        }
        self.auth.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.auth.error(error, reason);
    }
}

impl ProducerContext for Tracker {
    /// 0 for an output record, `i + 1` for a record of changelog `i`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        match result {
            Ok(msg) if opaque > 0 => {
                let next = msg.offset().max(0) as u64 + 1;
                let mut map = self.changelog_next.lock().unwrap_or_else(|p| p.into_inner());
                let slot = map.entry(opaque - 1).or_insert(0);
                *slot = (*slot).max(next);
            }
            Ok(_) => {}
            Err((e, msg)) => {
                let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                failure.get_or_insert_with(|| delivery_error(msg.topic(), e));
            }
        }
    }
}

impl Tracker {
    /// A context reporting refused logins to `auth`.
    pub fn watched(auth: std::sync::Arc<super::auth::AuthWatch>) -> Self {
        Tracker { auth, ..Tracker::default() }
    }

    /// A refused login or request for want of an ACL, if one was seen.
    pub fn take_denied(&self) -> Option<Error> {
        self.auth.failure().or_else(|| self.denied.lock().unwrap_or_else(|p| p.into_inner()).take())
    }

    /// The first failure: a refusal for want of an ACL before any delivery failure it caused.
    pub fn take_failure(&self) -> Option<Error> {
        let failure = self.failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.denied.lock().unwrap_or_else(|p| p.into_inner()).take().or(failure)
    }

    pub fn take_changelog_offsets(&self) -> HashMap<usize, u64> {
        std::mem::take(&mut *self.changelog_next.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn kafka_headers(headers: &Headers) -> Option<OwnedHeaders> {
    if headers.is_empty() {
        return None;
    }
    let mut out = OwnedHeaders::new_with_capacity(headers.len());
    for (key, value) in headers {
        out = out.insert(Header { key, value: Some(value) });
    }
    Some(out)
}

/// A record for `topic`, as the producer takes it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record<'a>(
    topic: &'a str,
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    timestamp: Option<i64>,
    headers: &Headers,
    opaque: usize,
) -> BaseRecord<'a, [u8], [u8], usize> {
    let mut record = BaseRecord::with_opaque_to(topic, opaque);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    if let Some(p) = partition {
        record = record.partition(p);
    }
    if let Some(ts) = timestamp.filter(|&t| t >= 0) {
        record = record.timestamp(ts);
    }
    if let Some(h) = kafka_headers(headers) {
        record = record.headers(h);
    }
    record
}

/// What one try to hand a record to librdkafka came to.
pub(crate) enum Sent<'a> {
    Queued,
    /// The queue is full: try again once librdkafka has sent some.
    Full(BaseRecord<'a, [u8], [u8], usize>),
}

/// Hands `record` to librdkafka without waiting.
pub(crate) fn try_send<'a>(
    producer: &BaseProducer<Tracker>,
    record: BaseRecord<'a, [u8], [u8], usize>,
) -> Result<Sent<'a>> {
    match producer.send(record) {
        Ok(()) => Ok(Sent::Queued),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => Ok(Sent::Full(back)),
        Err((e, back)) => Err(Error::Log(format!("cannot send a record to topic `{}`: {e}", back.topic))),
    }
}

/// The error when the queue stayed full until the deadline.
pub(crate) fn queue_full(waited: Duration) -> Error {
    Error::Transient(format!(
        "the producer's queue stayed full for {waited:?}: the broker is unreachable or too slow to take the records"
    ))
}

/// Sends one record from a thread that may block (the changelogs, at the barrier), waiting
/// while the producer queue is full, until `timeout`.
pub(crate) fn send_blocking(
    producer: &BaseProducer<Tracker>,
    mut record: BaseRecord<'_, [u8], [u8], usize>,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match try_send(producer, record)? {
            Sent::Queued => return Ok(()),
            Sent::Full(back) => {
                record = back;
                if !serve(producer) {
                    if Instant::now() >= deadline {
                        return Err(queue_full(timeout));
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
    }
}

/// A failed delivery, classified: a record the broker will never take (too large, a topic it
/// refuses) is fatal; everything else (timeouts, leaders moving, a broker down) is transient.
/// The ACL a refused request lacked, from the error code and what the request was about.
pub(crate) fn refused(code: RDKafkaErrorCode, about: &str, detail: String) -> Option<Error> {
    let needed = match code {
        RDKafkaErrorCode::TopicAuthorizationFailed => format!("access to topic {about}"),
        RDKafkaErrorCode::GroupAuthorizationFailed => format!("READ on group {about}"),
        RDKafkaErrorCode::TransactionalIdAuthorizationFailed => {
            format!("WRITE (and DESCRIBE) on transactional id {about}")
        }
        RDKafkaErrorCode::ClusterAuthorizationFailed => "an operation on the cluster".to_string(),
        _ => return None,
    };
    Some(Error::NotAuthorized { needed, detail })
}

/// A refusal librdkafka logged while adding a partition (or offsets) to a transaction.
fn refused_by_log(message: &str) -> Error {
    // `Failed to add partition "topic" [0] to transaction: ...`
    let topic = message.split('"').nth(1).filter(|_| message.contains("partition"));
    let needed = match topic {
        Some(topic) => format!("WRITE on topic `{topic}`"),
        None if message.contains("GROUP_AUTHORIZATION") || message.contains("Group authorization") => {
            "READ on the app's group (its app id)".to_string()
        }
        None => "an operation of the app's transaction".to_string(),
    };
    Error::NotAuthorized { needed, detail: message.to_string() }
}

fn delivery_error(topic: &str, e: &KafkaError) -> Error {
    const FATAL: [RDKafkaErrorCode; 5] = [
        RDKafkaErrorCode::MessageSizeTooLarge,
        RDKafkaErrorCode::TopicAuthorizationFailed,
        RDKafkaErrorCode::InvalidRecord,
        RDKafkaErrorCode::InvalidTopic,
        RDKafkaErrorCode::MessageBatchTooLarge,
    ];
    let text = format!("delivery to topic `{topic}` failed: {e}");
    if let Some(denied) =
        e.rdkafka_error_code().and_then(|c| refused(c, &format!("`{topic}` (WRITE)"), text.clone()))
    {
        return denied;
    }
    match e.rdkafka_error_code() {
        Some(code) if FATAL.contains(&code) => Error::Log(text),
        _ => Error::Transient(text),
    }
}

/// How many times a timed-out transactional call is resumed before giving up.
pub(crate) const RESUME_ATTEMPTS: u32 = 5;

/// Runs a transactional call, resuming it while librdkafka says it timed out or may be retried:
/// such a call must be called again, not abandoned (any other transactional call then fails with
/// "conflicting ... API call is already in progress", and a commit left in flight may still
/// complete). Returns the last error when the attempts run out.
pub(crate) fn resume<T>(mut call: impl FnMut() -> Result<T, KafkaError>) -> Result<T, KafkaError> {
    let mut attempt = 1;
    loop {
        match call() {
            Err(KafkaError::Transaction(e))
                if e.is_retriable()
                    && !e.txn_requires_abort()
                    && !e.is_fatal()
                    && attempt < RESUME_ATTEMPTS =>
            {
                tracing::warn!(error = %e, attempt, "a transactional call timed out; resuming it");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether `e` is a transactional error that left the call resumable (it timed out): the
/// transaction's outcome is not known yet.
pub(crate) fn unfinished(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.is_retriable() && !t.txn_requires_abort() && !t.is_fatal())
}

/// A transactional error, classified: fenced, fatal (the producer is unusable) or transient.
pub(crate) fn transaction_error(app: &str, what: &str, e: KafkaError) -> Error {
    const FENCED: [RDKafkaErrorCode; 3] =
        [RDKafkaErrorCode::ProducerFenced, RDKafkaErrorCode::Fenced, RDKafkaErrorCode::InvalidProducerEpoch];
    let fenced = matches!(&e, KafkaError::Transaction(t) if FENCED.contains(&t.code()))
        || e.rdkafka_error_code().is_some_and(|c| FENCED.contains(&c));
    let text = format!("{what} failed: {e}");
    let code = match &e {
        KafkaError::Transaction(t) => Some(t.code()),
        other => other.rdkafka_error_code(),
    };
    let about = match code {
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed) => {
            format!("`{}`", super::transactional_id(app))
        }
        _ => format!("`{app}` (the app id)"),
    };
    if let Some(denied) = code.and_then(|c| refused(c, &about, text.clone())) {
        return denied;
    }
    match &e {
        _ if fenced => Error::Fenced { app: app.to_string() },
        // A fatal error leaves the producer unusable: only a new instance can go on.
        KafkaError::Transaction(t) if t.is_fatal() => Error::Log(text),
        // Abortable or retriable (a timeout, the coordinator moving): abort and run the epoch
        // again.
        KafkaError::Transaction(_) => Error::Transient(text),
        _ => Error::Log(text),
    }
}

/// Serves every delivery report (and other producer event) that is ready, without waiting;
/// returns whether there was any.
///
/// rust-rdkafka's `poll(ZERO)` serves at most one event, and `poll(timeout)` runs until its
/// timeout has passed, busy-waiting through its last, sub-millisecond part (`poll(1 ms)` spins
/// for the whole millisecond; measured, it doubled the app's CPU per record). Serving one event
/// per call fell behind small records' reports (a stall with a broker down), so this polls until
/// the count of unserved work stops falling.
pub(crate) fn serve(producer: &BaseProducer<Tracker>) -> bool {
    let mut served = false;
    for _ in 0..4096 {
        let before = producer.in_flight_count();
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() >= before {
            break;
        }
        served = true;
    }
    served
}

/// Waits until every record sent so far is acknowledged (or failed), serving delivery reports,
/// for at most `timeout`; returns whether the queue drained.
///
/// rust-rdkafka's `flush` (also called by its `commit_transaction`) serves the event queue with
/// `poll(100 ms)`, which runs for its whole timeout even when the last report arrives at once:
/// every epoch paid ~100 ms (measured). Checking every 200 us returns right after the last
/// acknowledgement instead.
pub(crate) fn drain(producer: &BaseProducer<Tracker>, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        serve(producer);
        if producer.in_flight_count() == 0 {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Flushes the producer, serving delivery callbacks.
pub(crate) fn flush(producer: &BaseProducer<Tracker>, timeout: Duration) -> Result<()> {
    if drain(producer, timeout) {
        return Ok(());
    }
    producer.flush(Duration::ZERO).map_err(|e| {
        Error::Transient(format!("the records sent were not acknowledged within {timeout:?}: {e}"))
    })
}
