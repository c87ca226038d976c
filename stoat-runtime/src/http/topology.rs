//! `GET /topology`: what the app runs, as a page with the picture (an inline SVG laid out by
//! `topology::describe`, no script) and the same graph as text; `/topology.svg` and
//! `/topology.txt` alone.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::Shared;
use crate::topology::describe::escape;

/// `GET /topology`: an HTML page.
pub(super) async fn page(State(o): Shared) -> Html<String> {
    let stores: String = o
        .stores
        .iter()
        .map(|s| format!("<li><code>{}</code>: {}</li>", escape(s.name), escape(s.declared)))
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{app}: topology</title></head>\
         <body style=\"font-family:sans-serif\"><h1>{app}</h1><div id=\"picture\">{svg}</div>\
         <h2>Stores</h2><ul>{stores}</ul><h2>As text</h2><pre id=\"text\">{text}</pre></body></html>",
        app = escape(&o.app),
        svg = o.description.svg(),
        text = escape(&o.description.text()),
    ))
}

/// `GET /topology.svg`.
pub(super) async fn svg(State(o): Shared) -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], o.description.svg()).into_response()
}

/// `GET /topology.txt`.
pub(super) async fn text(State(o): Shared) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], o.description.text()).into_response()
}
