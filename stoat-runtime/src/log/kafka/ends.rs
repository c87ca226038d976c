//! Where each input partition ends, as librdkafka's statistics report it (every 100 ms by
//! default): its last stable offset (what a read-committed consumer can reach) and the
//! consumer's positions. The engine waits for partitions that have records it has not been
//! handed yet before it runs ahead of them in time (Kafka Streams waits on the same knowledge),
//! and librdkafka has no cheaper way to tell: its cached watermarks hold the high watermark,
//! which open transactions keep out of reach.

use std::collections::HashMap;
use std::sync::Mutex;

use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

/// A partition's end and the consumer's positions in it, as of the last statistics.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct End {
    /// The offset after the last record a read-committed consumer can read.
    pub end: i64,
    /// The offset after the last record handed to the app, if any (-1 otherwise).
    pub app: i64,
    /// The group's committed offset (-1 if unknown).
    pub committed: i64,
    /// The next offset the consumer fetches from the broker (-1 if unknown).
    pub next: i64,
    /// Records fetched and not yet handed to the app.
    pub queued: i64,
}

impl End {
    /// Whether the consumer has handed the app everything up to the end: either its position is
    /// at the end, or it is one short while the fetcher is past the end with nothing queued
    /// (the last offset is the marker that committed a transaction, which librdkafka does not
    /// always step its position over).
    pub fn reached(&self, at: i64) -> bool {
        at >= self.end || (at == self.end - 1 && self.app == at && self.next >= self.end && self.queued == 0)
    }
}

/// The consumer's context: it keeps the partitions' ends from the statistics.
#[derive(Default)]
pub(super) struct Ends {
    /// Per topic, per partition (looked up by `&str` on every poll: no key to allocate).
    ends: Mutex<HashMap<String, HashMap<i32, End>>>,
    /// The app's watch for refused logins.
    pub auth: std::sync::Arc<super::auth::AuthWatch>,
}

impl Ends {
    /// A context reporting refused logins to `auth`.
    pub fn watched(auth: std::sync::Arc<super::auth::AuthWatch>) -> Self {
        Ends { ends: Default::default(), auth }
    }

    /// The last reported end of `topic`'s `partition`.
    pub fn of(&self, topic: &str, partition: i32) -> Option<End> {
        let ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        ends.get(topic).and_then(|p| p.get(&partition)).copied()
    }
}

impl ClientContext for Ends {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.auth.log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.auth.error(error, reason);
    }

    fn stats(&self, stats: Statistics) {
        let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        for (topic, t) in stats.topics {
            for (_, p) in t.partitions {
                // Partition -1 is the topic's internal "unassigned" queue.
                if p.partition < 0 {
                    continue;
                }
                let end = if p.ls_offset >= 0 { p.ls_offset } else { p.hi_offset };
                if end >= 0 {
                    let entry = End {
                        end,
                        app: p.app_offset,
                        committed: p.committed_offset,
                        next: p.next_offset,
                        queued: p.fetchq_cnt,
                    };
                    ends.entry(topic.clone()).or_default().insert(p.partition, entry);
                }
            }
        }
    }
}

impl ConsumerContext for Ends {}

#[cfg(test)]
mod tests {
    use super::End;

    #[test]
    fn a_partition_one_short_is_read_to_its_end_only_when_the_fetcher_has_nothing_left() {
        let end = |app, next, queued| End { end: 10, app, committed: -1, next, queued };
        assert!(end(10, 10, 0).reached(10));
        // The last offset is a transaction marker: fetched past, nothing queued.
        assert!(end(9, 10, 0).reached(9));
        // A record at offset 9 is still queued, or not fetched yet: not the end.
        assert!(!end(9, 10, 1).reached(9));
        assert!(!end(9, 9, 0).reached(9));
        // Stale statistics (the app's position moved since): not trusted.
        assert!(!end(8, 10, 0).reached(9));
        assert!(!end(8, 10, 0).reached(8));
    }
}
