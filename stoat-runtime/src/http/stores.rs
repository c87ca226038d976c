//! Interactive queries: every store's committed entries as JSON, through the store's own key and
//! value types ([`JsonCodec`](crate::state::JsonCodec)). A key in a path or query parameter is
//! JSON (`42`, `["a",1]`, `"text"`), and for string keys the bare text works too.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, Shared};
use crate::state::{JsonCodec, Scan, StoreSpec};

/// The most entries one scan returns, whatever `limit` asks.
const MAX_LIMIT: usize = 10_000;

type Answer = Result<Json<Value>, ApiError>;

/// `GET /stores`: every store, its declared type and its committed entry count.
pub(super) async fn list(State(o): Shared) -> Json<Value> {
    let stores: Vec<Value> = o
        .stores
        .iter()
        .map(|s| {
            json!({ "name": s.name, "kind": s.kind, "declared": s.declared, "entries": o.state.entries(s.name).ok() })
        })
        .collect();
    Json(json!({ "stores": stores }))
}

fn spec<'a>(stores: &'a [StoreSpec], name: &str) -> Result<&'a StoreSpec, ApiError> {
    stores.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = stores.iter().map(|s| s.name).collect();
        ApiError(StatusCode::NOT_FOUND, format!("no store `{name}`; the stores are: {}", names.join(", ")))
    })
}

/// A key (or prefix) as the user wrote it: JSON if it parses and fits, else the bare text.
fn encode(
    text: &str,
    what: &str,
    to_bytes: impl Fn(&Value) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, ApiError> {
    let parsed = serde_json::from_str::<Value>(text).ok();
    let mut last = String::new();
    for candidate in parsed.into_iter().chain(std::iter::once(Value::String(text.to_string()))) {
        match to_bytes(&candidate) {
            Ok(bytes) => return Ok(bytes),
            Err(e) => last = e,
        }
    }
    Err(ApiError(StatusCode::BAD_REQUEST, format!("`{text}` is not a {what} of this store: {last}")))
}

fn entry(codec: &JsonCodec, key: &[u8], value: &[u8]) -> Result<Value, ApiError> {
    let decode = |r: Result<Value, String>| r.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e));
    Ok(json!({ "key": decode(codec.key_to_json(key))?, "value": decode(codec.value_to_json(value))? }))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `GET /stores/{store}/keys/{key}`: the key's committed value, 404 when it has none.
pub(super) async fn get(State(o): Shared, Path((store, key)): Path<(String, String)>) -> Answer {
    let spec = spec(&o.stores, &store)?;
    let raw = encode(&key, "key", |v| spec.json.key_from_json(v))?;
    match o.state.get_raw(spec.name, &raw).map_err(internal)? {
        Some(value) => Ok(Json(entry(&spec.json, &raw, &value)?)),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("store `{store}` has no value under {key}"))),
    }
}

/// What a scan asks: `prefix`, or `from` (included) and `to` (excluded); `limit` (default 100).
#[derive(Debug, serde::Deserialize)]
pub(super) struct ScanParams {
    prefix: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// `GET /stores/{store}?prefix=..|from=..&to=..&limit=..`: committed entries in key order, and
/// whether more matched.
pub(super) async fn scan(
    State(o): Shared,
    Path(store): Path<String>,
    Query(params): Query<ScanParams>,
) -> Answer {
    let spec = spec(&o.stores, &store)?;
    let key = |text: Option<&str>| text.map(|t| encode(t, "key", |v| spec.json.key_from_json(v))).transpose();
    let prefix = params
        .prefix
        .as_deref()
        .map(|t| encode(t, "key prefix", |v| spec.json.prefix_from_json(v)))
        .transpose()?;
    let (from, to) = (key(params.from.as_deref())?, key(params.to.as_deref())?);
    if prefix.is_some() && (from.is_some() || to.is_some()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a scan takes `prefix`, or `from` and `to`, not both".into(),
        ));
    }
    let limit = params.limit.unwrap_or(100).min(MAX_LIMIT);
    let (entries, more) = o.state.scan_raw(spec.name, &Scan { from, to, prefix, limit }).map_err(internal)?;
    let out = entries.iter().map(|(k, v)| entry(&spec.json, k, v)).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "store": spec.name, "entries": out, "more": more })))
}
