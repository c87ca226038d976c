//! Telling a refused login from a slow broker. When the broker rejects the app's credentials
//! (SASL) or the TLS handshake fails, librdkafka reports it in its log and as an error event, and the
//! requests waiting on the connection time out; [`AuthWatch`], shared by the contexts of the
//! app's clients, keeps that report so the timeout can be told for what it is.

use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::error::Error;

/// Keeps the first authentication failure a client reports.
#[derive(Default)]
pub(crate) struct AuthWatch {
    failed: Mutex<Option<String>>,
}

/// The admin client's context: the app's shared watch.
pub(crate) struct Watched(pub Arc<AuthWatch>);

impl ClientContext for Watched {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.log(level, fac, message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason);
    }
}

impl AuthWatch {
    /// A librdkafka log line, watched and passed on to `tracing`: broker threads log a failed
    /// login as it happens (`FAIL`), while its error event waits in a queue until it is served.
    pub fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "FAIL"
            && (message.contains("SASL authentication error") || message.contains("SSL handshake failed"))
        {
            self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| message.to_string());
        }
        forward_log(level, fac, message);
    }

    /// A librdkafka error event, watched and passed on to `tracing`.
    pub fn error(&self, error: KafkaError, reason: &str) {
        if let Some(e) = authentication(&error, reason) {
            self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        }
        tracing::error!(target: "librdkafka", "librdkafka: {error}: {reason}");
    }

    /// The authentication failure seen, as the error to report, if there was one.
    pub fn failure(&self) -> Option<Error> {
        let detail = self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        Some(Error::Authentication { detail })
    }
}

/// What an error event says, if it is a failed login or TLS handshake.
pub(crate) fn authentication(error: &KafkaError, reason: &str) -> Option<String> {
    let code = error.rdkafka_error_code()?;
    matches!(
        code,
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed | RDKafkaErrorCode::SSL
    )
    .then(|| format!("{error}: {reason}"))
}

/// Waits until `producer` has reached the cluster (its metadata answered), serving its events
/// meanwhile so that a refused login is seen as it happens rather than as a timeout later. A
/// cluster that does not answer within `timeout` is left to the calls that need it to report
/// (an at-least-once app may start before its brokers).
pub(crate) fn check_login<C: rdkafka::producer::ProducerContext>(
    producer: &rdkafka::producer::BaseProducer<C>,
    auth: &AuthWatch,
    timeout: std::time::Duration,
) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let answered = rdkafka::producer::Producer::client(producer)
            .fetch_metadata(None, std::time::Duration::from_millis(250));
        producer.poll(std::time::Duration::ZERO);
        if let Some(refused) = auth.failure() {
            return Err(refused);
        }
        match answered {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => {
                tracing::warn!(error = %e, ?timeout, "the cluster did not answer at start");
                return Ok(());
            }
            Err(_) => {}
        }
    }
}

/// Forwards a librdkafka log line to `tracing` (as rust-rdkafka's default context does), for
/// contexts that look at some lines first.
pub(crate) fn forward_log(level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
        L::Notice | L::Info => tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}"),
        L::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
    }
}
