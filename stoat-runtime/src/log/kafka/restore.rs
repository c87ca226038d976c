//! Replaying a changelog topic (read_committed) from an offset to its end.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::config::{creation_error, KafkaConfig};
use crate::error::{Error, Result};
use crate::log::RestoreSink;

/// Changes per batch handed to the state writer (sorted by key there: larger batches write
/// LMDB pages in longer runs).
const BATCH: usize = 50_000;

/// The end offset of partition 0 of `topic`. A broker that cannot tell yet (its partition's
/// leader just changed: "high watermark is not caught up", a lost connection) is asked again
/// until `deadline`, as librdkafka retries the rest of the restore; a refusal is not.
fn changelog_end(consumer: &BaseConsumer, topic: &str, timeout: Duration, deadline: Instant) -> Result<u64> {
    loop {
        let error = match consumer.fetch_watermarks(topic, 0, timeout) {
            Ok((_, high)) => return Ok(high.max(0) as u64),
            Err(e) => e,
        };
        let text = format!("cannot read the end of changelog `{topic}`: {error}");
        if let Some(code) = error.rdkafka_error_code() {
            if let Some(refused) =
                super::producer::refused(code, &format!("`{topic}` (DESCRIBE)"), text.clone())
            {
                return Err(refused);
            }
            if code == RDKafkaErrorCode::Fatal {
                return Err(Error::Log(text));
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Log(text));
        }
        tracing::warn!(topic, error = %error, "reading a changelog's end: asking again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads partition 0 of `topic` from `from` to its end, handing batches of changes and the
/// offset after them to `apply`.
pub(crate) fn replay(
    config: &KafkaConfig,
    topic: &str,
    from: u64,
    apply: &mut RestoreSink<'_>,
) -> Result<()> {
    let mut cfg = config.client("consumer")?;
    cfg.set("group.id", "stoat-restore")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // One partition read as fast as it can be: large fetches, many kept ahead, short waits
        // at the end of what is committed (with librdkafka's defaults a 1M-record changelog
        // took 6.8 s to replay, with these 1.3 s; `benches/restore.rs`).
        .set("max.partition.fetch.bytes", "16777216")
        .set("fetch.max.bytes", "67108864")
        .set("queued.min.messages", "1000000")
        .set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer = cfg.create().map_err(|e| creation_error("restore consumer", e))?;
    let deadline = Instant::now() + config.timeout.max(Duration::from_secs(300));
    let high = changelog_end(&consumer, topic, config.timeout, deadline)?;
    if from >= high {
        return Ok(());
    }
    tracing::info!(topic, from, to = high, "replaying changelog");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(from as i64)).map_err(|e| Error::Log(e.to_string()))?;
    consumer.assign(&tpl).map_err(|e| Error::Log(format!("cannot read changelog `{topic}`: {e}")))?;
    let mut batch = Vec::new();
    let mut next = from;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                next = msg.offset().max(0) as u64 + 1;
                if let Some(key) = msg.key() {
                    batch.push((key.to_vec(), msg.payload().map(<[u8]>::to_vec)));
                }
                if batch.len() >= BATCH {
                    apply(std::mem::take(&mut batch), next)?;
                }
            }
            // librdkafka reports a lost broker connection (one broker of several down) and the
            // like as it retries by itself: only a fatal error or a refusal ends the replay (the
            // deadline bounds the rest).
            Some(Err(e)) => {
                let text = format!("reading changelog `{topic}` failed: {e}");
                match e.rdkafka_error_code() {
                    Some(RDKafkaErrorCode::Fatal) => return Err(Error::Log(text)),
                    Some(code) => {
                        let about = format!("`{topic}` (READ)");
                        if let Some(refused) = super::producer::refused(code, &about, text.clone()) {
                            return Err(refused);
                        }
                        tracing::warn!(error = %e, topic, "reading a changelog: librdkafka retries");
                    }
                    None => return Err(Error::Log(text)),
                }
            }
            None => {
                // Transaction markers are never returned; the position moves past them.
                let position = consumer
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, 0).and_then(|e| e.offset().to_raw()))
                    .unwrap_or(-1);
                if position >= 0 && position as u64 >= high {
                    next = next.max(high);
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Log(format!(
                        "replaying changelog `{topic}` did not reach offset {high} in time"
                    )));
                }
            }
        }
        if next >= high {
            break;
        }
    }
    apply(batch, next)
}
