//! Kafka connection settings: bootstrap servers, the delivery guarantee, the offset reset policy,
//! and any librdkafka property by name (security settings included). Checked when the app starts.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use crate::error::Error;

/// Exactly-once (the default) or at-least-once processing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Guarantee {
    /// One Kafka transaction per epoch: outputs, changelogs and input offsets commit together.
    #[default]
    ExactlyOnce,
    /// No transactions: outputs are flushed, then input offsets committed. A crash can repeat
    /// the records of the last epoch; nothing is lost.
    AtLeastOnce,
}

/// Where to start reading a partition the application has no committed offset for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OffsetReset {
    /// From the beginning.
    #[default]
    Earliest,
    /// From the end (only records written after the start).
    Latest,
}

/// How to reach and use Kafka: `KafkaConfig::new` and the builder methods. Its `Debug` output
/// hides the values of secret properties (passwords, keys, JAAS configurations).
#[derive(Clone)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// The delivery guarantee.
    pub guarantee: Guarantee,
    /// The offset reset policy.
    pub offset_reset: OffsetReset,
    /// How long a transactional operation (init, commit, abort) may take.
    pub timeout: Duration,
    /// librdkafka properties applied to every client (e.g. `security.protocol`, `sasl.*`,
    /// `ssl.*`); `consumer.` and `producer.` prefixes apply one to that client only.
    pub properties: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: Vec<(&str, &str)> =
            self.properties.iter().map(|(k, v)| (k.as_str(), shown(k, v))).collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("guarantee", &self.guarantee)
            .field("offset_reset", &self.offset_reset)
            .field("timeout", &self.timeout)
            .field("properties", &properties)
            .finish()
    }
}

/// Whether a librdkafka property holds a secret: its value never goes into a log or an error.
pub(crate) fn is_secret(name: &str) -> bool {
    const SECRET: [&str; 6] = ["password", "secret", "jaas", "token", "credential", ".pem"];
    let name = name.to_ascii_lowercase();
    SECRET.iter().any(|s| name.contains(s)) || name.ends_with(".key")
}

/// A property's value as logs and errors may show it.
pub(crate) fn shown<'a>(name: &str, value: &'a str) -> &'a str {
    if is_secret(name) {
        "<redacted>"
    } else {
        value
    }
}

/// Properties stoat sets itself; setting them by hand would break its guarantees.
const RESERVED: &[&str] = &[
    "group.id",
    "transactional.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "enable.idempotence",
    "bootstrap.servers",
];

impl KafkaConfig {
    /// Settings for the cluster at `bootstrap_servers`, exactly-once.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            guarantee: Guarantee::ExactlyOnce,
            offset_reset: OffsetReset::Earliest,
            timeout: Duration::from_secs(60),
            properties: Vec::new(),
        }
    }

    /// Sets a librdkafka property (prefix `consumer.` or `producer.` for one client only).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Sets the delivery guarantee.
    pub fn guarantee(mut self, guarantee: Guarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// Sets how long a transactional operation, or a wait for a full producer queue, may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the offset reset policy.
    pub fn offset_reset(mut self, reset: OffsetReset) -> Self {
        self.offset_reset = reset;
        self
    }

    /// Whether the user set librdkafka property `name` (for any client, or with a `consumer.` /
    /// `producer.` prefix): stoat's own defaults then stand aside.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.properties.iter().any(|(k, _)| {
            k == name
                || k.split_once('.')
                    .is_some_and(|(p, rest)| matches!(p, "consumer" | "producer") && rest == name)
        })
    }

    /// The client configuration for `client` ("consumer", "producer" or "admin").
    pub(crate) fn client(&self, client: &str) -> Result<ClientConfig, Error> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(Error::Config("Kafka bootstrap servers are empty".into()));
        }
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            let (target, name) = match key.split_once('.') {
                Some((prefix @ ("consumer" | "producer"), rest)) => (Some(prefix), rest),
                _ => (None, key.as_str()),
            };
            if RESERVED.contains(&name) {
                return Err(Error::Config(format!(
                    "Kafka property `{key}` is set by stoat itself (from the app id and the guarantee); remove it"
                )));
            }
            if target.is_none() || target == Some(client) {
                cfg.set(name, value);
            }
        }
        Ok(cfg)
    }
}

/// Turns a client creation error into a configuration error naming the property.
pub(crate) fn creation_error(client: &str, e: KafkaError) -> Error {
    match e {
        KafkaError::ClientConfig(_, description, key, value) => {
            // librdkafka may quote the value in its description too.
            let description = match is_secret(&key) && !value.is_empty() {
                true => description.replace(&value, "<redacted>"),
                false => description,
            };
            let value = shown(&key, &value);
            Error::Config(format!("Kafka {client} property `{key}` = `{value}`: {description}"))
        }
        other => Error::Config(format!("cannot create the Kafka {client}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::KafkaConfig;

    #[test]
    fn user_properties_are_found_with_or_without_a_client_prefix() {
        let config = KafkaConfig::new("localhost:9092")
            .set("consumer.queued.max.messages.kbytes", "1024")
            .set("retry.backoff.ms", "50")
            .set("fetch.queue.backoff.ms", "5");
        assert!(config.has("queued.max.messages.kbytes"));
        assert!(config.has("retry.backoff.ms"));
        assert!(config.has("fetch.queue.backoff.ms"));
        assert!(!config.has("queue.backoff.ms"), "only client prefixes are stripped");
        assert!(!config.has("queue.buffering.max.kbytes"));
    }

    #[test]
    fn secrets_never_show_in_debug_output_or_property_errors() {
        let config = KafkaConfig::new("localhost:9092")
            .set("sasl.username", "stoat")
            .set("sasl.password", "hunter2")
            .set("ssl.key.password", "s3cret-key")
            .set("sasl.jaas.config", "org.apache.kafka... password=\"j4as\";")
            .set("sasl.oauthbearer.client.secret", "0auth");
        let shown = format!("{config:?}");
        for secret in ["hunter2", "s3cret-key", "j4as", "0auth"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("stoat"), "other values stay visible: {shown}");
        let bad = rdkafka::error::KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2\" for configuration property \"sasl.password\"".into(),
            "sasl.password".into(),
            "hunter2".into(),
        );
        let text = super::creation_error("consumer", bad).to_string();
        assert!(text.contains("sasl.password") && !text.contains("hunter2"), "{text}");
    }
}
