//! The probes. Liveness fails when the app has failed, or has committed nothing for
//! `Config::liveness_timeout` while input is waiting (a stalled commit pipeline: restart it).
//! Readiness holds only while the app processes: not while it starts or restores its state from
//! the changelogs, nor once it has stopped.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Shared;
use crate::status::Phase;

/// `GET /health/live`: 200 while the app works, 503 when it failed or stalled.
pub(super) async fn live(State(o): Shared) -> Response {
    let phase = o.status.phase();
    if phase == Phase::Failed {
        let body = json!({ "status": "failed", "phase": phase, "error": o.status.failure() });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let since = o.status.since_last_commit();
    if phase == Phase::Running && !o.status.is_paused() && since > o.liveness_timeout {
        let lag = super::control::total_lag(&o);
        if lag > 0 {
            let body = json!({
                "status": "stalled",
                "phase": phase,
                "seconds_since_last_commit": since.as_secs_f64(),
                "records_waiting": lag,
            });
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
    }
    let stats = o.stats.snapshot();
    let body = json!({
        "status": "live",
        "phase": phase,
        "epochs": stats.epochs,
        "records_in": stats.records_in,
        "seconds_since_last_commit": since.as_secs_f64(),
    });
    Json(body).into_response()
}

/// `GET /health/ready`: 200 while the app processes, 503 while it starts, restores or is stopped.
pub(super) async fn ready(State(o): Shared) -> Response {
    let phase = o.status.phase();
    let body =
        json!({ "status": if phase == Phase::Running { "ready" } else { "not ready" }, "phase": phase });
    let code = if phase == Phase::Running { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}
