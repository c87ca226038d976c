//! The app's changelog topics: created when missing (one partition, compacted), and checked when
//! they exist: a changelog with more partitions or without compaction would lose or reorder state
//! on restore, so it is refused with an error naming the topic and the setting.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::auth::{AuthWatch, Watched};
use super::config::{creation_error, KafkaConfig};
use crate::error::{Error, Result};

/// What stoat reads from a changelog's configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChangelogConfig {
    /// How long the topic keeps tombstones (`delete.retention.ms`).
    pub delete_retention: Option<Duration>,
}

/// Creates each topic (one partition, `cleanup.policy=compact`, the broker's default
/// replication) unless it exists, then checks every one and returns its configuration.
pub(crate) async fn ensure_changelogs(
    config: &KafkaConfig,
    topics: &[&str],
    auth: &Arc<AuthWatch>,
) -> Result<Vec<ChangelogConfig>> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<Watched> = config
        .client("admin")?
        .create_with_context(Watched(Arc::clone(auth)))
        .map_err(|e| creation_error("admin client", e))?;
    let refused = |e: &dyn std::fmt::Display, what: &str| {
        auth.failure().unwrap_or_else(|| Error::Log(format!("{what}: {e}")))
    };
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact"))
        .collect();
    let options =
        AdminOptions::new().operation_timeout(Some(config.timeout)).request_timeout(Some(config.timeout));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| refused(&e, "cannot create changelog topics"))?;
    // Topics stoat just created are as it made them; only existing ones are checked (right
    // after a creation, the broker may not report the new topic's settings yet).
    let mut existing = Vec::new();
    for result in results {
        match result {
            Ok(_) => {}
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(topic),
            Err((topic, code)) => {
                let text = format!("cannot create changelog topic `{topic}`: {code}");
                let about = format!("`{topic}` (CREATE; or create it ahead: one partition, compacted)");
                return Err(super::producer::refused(code, &about, text.clone()).unwrap_or(Error::Log(text)));
            }
        }
    }
    let specifiers: Vec<ResourceSpecifier<'_>> = topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let described = admin
        .describe_configs(&specifiers, &options)
        .await
        .map_err(|e| refused(&e, "cannot read the configuration of the changelog topics"))?;
    let mut configs = Vec::with_capacity(topics.len());
    for (topic, result) in topics.iter().zip(described) {
        let checked = existing.iter().any(|t| t == topic);
        let resource = match result {
            Ok(resource) => resource,
            // A topic created a moment ago: its defaults apply (no retention-based rebuild).
            Err(_) if !checked => {
                configs.push(ChangelogConfig::default());
                continue;
            }
            Err(code) => {
                let text = format!("cannot read the configuration of changelog `{topic}`: {code}");
                let about = format!("`{topic}` (DESCRIBE_CONFIGS)");
                return Err(super::producer::refused(code, &about, text.clone()).unwrap_or(Error::Log(text)));
            }
        };
        let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
        let policy = value("cleanup.policy").unwrap_or_default();
        if checked && !policy.split(',').any(|p| p.trim() == "compact") {
            return Err(Error::Config(format!(
                "changelog topic `{topic}` has cleanup.policy={policy}: a changelog must be compacted (`compact`), or old state would be deleted; fix the topic or delete it to let stoat create it"
            )));
        }
        let delete_retention =
            value("delete.retention.ms").and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis);
        configs.push(ChangelogConfig { delete_retention });
    }
    // Partition counts come from metadata, a blocking call: off the async threads.
    let topics = existing;
    let timeout = config.timeout;
    tokio::task::spawn_blocking(move || -> Result<()> {
        for topic in &topics {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(topic), timeout)
                .map_err(|e| Error::Transient(format!("cannot read the metadata of changelog `{topic}`: {e}")))?;
            let partitions: usize = metadata.topics().iter().map(|t| t.partitions().len()).sum();
            if partitions != 1 {
                return Err(Error::Config(format!(
                    "changelog topic `{topic}` has {partitions} partitions: a changelog has exactly one (all of a store's changes in one order); delete the topic to let stoat create it"
                )));
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(Error::Runtime(format!("checking the changelog topics panicked: {e}"))))?;
    Ok(configs)
}
