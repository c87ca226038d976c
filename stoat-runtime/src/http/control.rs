//! Pausing and resuming input, and where the app stands in each input partition: the offset its
//! last commit stored, the partition's end as the log last saw it, and the lag between them.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{Observed, Shared};

/// `POST /pause`: no new input is read until `/resume`; the open epoch commits what it has.
pub(super) async fn pause(State(o): Shared) -> Response {
    o.status.pause();
    tracing::info!("paused over HTTP");
    Json(json!({ "paused": true })).into_response()
}

/// `POST /resume`.
pub(super) async fn resume(State(o): Shared) -> Response {
    o.status.resume();
    tracing::info!("resumed over HTTP");
    Json(json!({ "paused": false })).into_response()
}

/// One input partition's position.
#[derive(Debug, serde::Serialize)]
pub(super) struct Offset {
    topic: String,
    partition: u32,
    /// The next offset the app reads after a restart (`null` before its first commit there).
    committed: Option<u64>,
    /// The offset after the partition's last readable record, as the log last saw it.
    end: Option<u64>,
    /// Records between the two.
    lag: Option<u64>,
}

/// Every input partition's position, in topic and partition order: committed as of this run's
/// last commit, else as the log knows the group's commit.
pub(super) fn offsets_of(o: &Observed) -> Vec<Offset> {
    let ends = o.log.input_ends().unwrap_or_default();
    let ours = o.status.committed();
    let mut out: Vec<Offset> = ends
        .into_iter()
        .map(|e| {
            let committed = ours
                .iter()
                .find(|c| c.topic == e.topic && c.partition == e.partition)
                .map(|c| c.offset)
                .or(e.committed);
            Offset {
                lag: committed.map(|c| e.end.saturating_sub(c)),
                topic: e.topic,
                partition: e.partition,
                committed,
                end: Some(e.end),
            }
        })
        .collect();
    for c in ours {
        if !out.iter().any(|o| o.topic == c.topic && o.partition == c.partition) {
            out.push(Offset {
                topic: c.topic,
                partition: c.partition,
                committed: Some(c.offset),
                end: None,
                lag: None,
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

/// Records committed nowhere yet across the input, as far as known.
pub(super) fn total_lag(o: &Observed) -> u64 {
    offsets_of(o).iter().map(|p| p.lag.or(p.end).unwrap_or(0)).sum()
}

/// `GET /offsets`.
pub(super) async fn offsets(State(o): Shared) -> Response {
    Json(json!({ "paused": o.status.is_paused(), "partitions": offsets_of(&o) })).into_response()
}

impl Offset {
    pub(super) fn labels(&self) -> (String, String, Option<u64>) {
        (self.topic.clone(), self.partition.to_string(), self.lag)
    }
}
