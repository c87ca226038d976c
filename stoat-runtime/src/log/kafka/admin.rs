//! Creating the compacted changelog topics the app's stores need.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::config::{creation_error, KafkaConfig};
use crate::error::{Error, Result};

/// Creates each topic (one partition, `cleanup.policy=compact`, the broker's default
/// replication) unless it exists.
pub(crate) async fn ensure_compacted_topics(config: &KafkaConfig, topics: &[&str]) -> Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> =
        config.client("admin")?.create().map_err(|e| creation_error("admin client", e))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact"))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(config.timeout));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| Error::Log(format!("cannot create changelog topics: {e}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Log(format!("cannot create changelog topic `{topic}`: {code}")))
            }
        }
    }
    Ok(())
}
