//! The HTTP endpoints (cargo feature `http`, on by default), served when `Config::http` names
//! an address: what a Kubernetes probe, a Prometheus scrape or an operator asks of a running app.
//! axum on the app's own tokio runtime; handlers see the engine only through [`Status`], the
//! statistics, the log's view of its input and short LMDB read transactions, so a slow client
//! never holds up processing.
//!
//! - `health`: `GET /health/live` and `GET /health/ready`;
//! - `prometheus`: the process's metrics recorder and `GET /metrics`;
//! - `stores`: `GET /stores`, `GET /stores/{store}` (scans) and `GET /stores/{store}/keys/{key}`;
//! - `control`: `POST /pause`, `POST /resume`, `GET /offsets`;
//! - `topology`: `GET /topology` (a page with the picture), `/topology.svg`, `/topology.txt`.
//!
//! No response carries a setting: secrets in the Kafka configuration never reach it.

mod control;
mod health;
pub(crate) mod prometheus;
mod stores;
mod topology;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::{Error, Result};
use crate::log::Log;
use crate::state::{StateEnv, StoreSpec};
use crate::stats::Stats;
use crate::status::Status;

/// What the handlers read: shared with the app, never locked for long.
pub(crate) struct Observed {
    pub app: String,
    pub description: crate::topology::describe::Description,
    pub status: Arc<Status>,
    pub stats: Arc<Stats>,
    pub state: StateEnv,
    pub stores: Vec<StoreSpec>,
    pub log: Arc<dyn Log>,
    pub liveness_timeout: Duration,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

type Shared = axum::extract::State<Arc<Observed>>;

/// Binds `addr` now (so a port in use is the app's error at start) and serves the endpoints on
/// `runtime` until it shuts down. Returns the address bound (port 0 picks one).
pub(crate) fn serve(
    addr: SocketAddr,
    observed: Arc<Observed>,
    runtime: &tokio::runtime::Runtime,
) -> Result<SocketAddr> {
    let io = |what: String| move |cause| Error::Io { what, cause };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(io(format!("cannot listen for HTTP on {addr} (`Config::http`)")))?;
    listener.set_nonblocking(true).map_err(io(format!("cannot set up the HTTP listener on {addr}")))?;
    let bound =
        listener.local_addr().map_err(io(format!("cannot read the HTTP listener's address ({addr})")))?;
    let router = Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(prometheus::render))
        .route("/stores", get(stores::list))
        .route("/stores/{store}", get(stores::scan))
        .route("/stores/{store}/keys/{key}", get(stores::get))
        .route("/pause", post(control::pause))
        .route("/resume", post(control::resume))
        .route("/offsets", get(control::offsets))
        .route("/topology", get(topology::page))
        .route("/topology.svg", get(topology::svg))
        .route("/topology.txt", get(topology::text))
        .with_state(observed);
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(io(format!("cannot serve HTTP on {addr}")))?
    };
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(%bound, "HTTP endpoints listening");
    Ok(bound)
}

/// A JSON error response: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError(status, message.into()).into_response()
}

/// A request that failed: its status and what to tell the client.
#[derive(Debug)]
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}
