//! Prometheus metrics. Everything stoat measures goes through the `metrics` facade; with the
//! HTTP endpoints on, the app installs `metrics-exporter-prometheus`'s recorder for the process
//! (once: a recorder is global) and `/metrics` renders it. Gauges that describe the present (state
//! size per store, lag per input partition, the app's phase) are set at each scrape. An
//! application that installed its own recorder first keeps it: `/metrics` then says so.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::Shared;
use crate::status::Phase;

/// Histogram buckets (seconds) for every `*_seconds` metric: from 100 us to a minute.
const BUCKETS: [f64; 16] =
    [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder, once; `None` when another recorder was there.
pub(crate) fn install() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS) {
                Ok(builder) => builder,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot configure the Prometheus histograms");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(_) => {
                    tracing::warn!("a metrics recorder is already installed: stoat's /metrics stays empty; scrape the application's own exporter");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`: the Prometheus text format.
pub(super) async fn render(State(o): Shared) -> Response {
    let Some(handle) = &o.metrics else {
        return super::error(
            StatusCode::NOT_FOUND,
            "the application installed its own metrics recorder: scrape its exporter instead",
        );
    };
    for spec in &o.stores {
        if let Ok(n) = o.state.entries(spec.name) {
            metrics::gauge!("stoat_store_entries", "store" => spec.name).set(n as f64);
        }
    }
    for offset in super::control::offsets_of(&o) {
        let (topic, partition, lag) = offset.labels();
        if let Some(lag) = lag {
            metrics::gauge!("stoat_consumer_lag", "topic" => topic, "partition" => partition).set(lag as f64);
        }
    }
    let phase = o.status.phase();
    for p in [Phase::Starting, Phase::Restoring, Phase::Running, Phase::Stopped, Phase::Failed] {
        let name =
            serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        metrics::gauge!("stoat_phase", "phase" => name).set(if p == phase { 1.0 } else { 0.0 });
    }
    metrics::gauge!("stoat_paused").set(if o.status.is_paused() { 1.0 } else { 0.0 });
    metrics::gauge!("stoat_seconds_since_last_commit").set(o.status.since_last_commit().as_secs_f64());
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}
