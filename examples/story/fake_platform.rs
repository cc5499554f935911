//! The fake platform: a local axum server answering the documented Graph and
//! LinkedIn shapes, which the real connectors are pointed at.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::outcome::StoryError;
use super::setup::PAGE_ID;

#[derive(Default)]
struct FakeState {
    requests: Vec<String>,
    feed_calls: u32,
    seq: u32,
}

/// A local stand-in for graph.facebook.com and api.linkedin.com.
pub struct FakePlatform {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakePlatform {
    /// Starts the fake platform on an ephemeral loopback port.
    pub async fn start() -> Result<FakePlatform, StoryError> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = Arc::clone(&state);
        let router = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let shared = Arc::clone(&shared);
            async move { answer(&shared, &method, &uri, &body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FakePlatform {
            base_url,
            state,
            stop: Some(stop),
        })
    }

    /// Requests received so far (`METHOD /path`).
    pub fn requests(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// Stops the server.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn answer(state: &Mutex<FakeState>, method: &Method, uri: &Uri, _body: &[u8]) -> Response {
    let Ok(mut s) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let path = uri.path().to_owned();
    s.requests.push(format!("{method} {path}"));
    s.seq += 1;
    let n = s.seq;
    if *method == Method::GET && path.starts_with("/v25.0/") && path.ends_with("/comments") {
        // One comment under any Facebook post, in the Graph shape.
        let post = path
            .trim_start_matches("/v25.0/")
            .trim_end_matches("/comments");
        return axum::Json(json!({
            "data": [{
                "id": format!("{post}_poll1"),
                "message": "Is the chestnut brioche available this weekend?",
                "created_time": "2026-11-23T09:30:00+0000",
                "from": { "id": "5550001", "name": "Léa" },
                "is_hidden": false
            }],
            "paging": { "cursors": { "before": "b", "after": "a" } }
        }))
        .into_response();
    }
    if *method == Method::GET && path.starts_with("/rest/socialActions/") {
        return axum::Json(json!({
            "elements": [],
            "paging": { "start": 0, "count": 50, "total": 0 }
        }))
        .into_response();
    }
    if *method != Method::POST {
        return graph_error(
            StatusCode::NOT_FOUND,
            803,
            "Unknown path in the fake platform",
        );
    }
    if path.ends_with("/feed") {
        s.feed_calls += 1;
        if s.feed_calls == 1 {
            // Graph's application rate limit: HTTP 400 with code 4.
            return graph_error(
                StatusCode::BAD_REQUEST,
                4,
                "(#4) Application request limit reached",
            );
        }
        return axum::Json(json!({ "id": format!("{PAGE_ID}_{}", 9000 + n) })).into_response();
    }
    if path.ends_with("/messages") {
        return axum::Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": "33612345678", "wa_id": "33612345678" }],
            "messages": [{ "id": format!("wamid.out.{n}") }],
        }))
        .into_response();
    }
    if path.ends_with("/comments") || path.ends_with("/replies") {
        return axum::Json(json!({ "id": format!("reply_{n}") })).into_response();
    }
    if path == "/rest/posts" {
        return (
            StatusCode::CREATED,
            [("x-restli-id", format!("urn:li:share:{}", 7000 + n))],
        )
            .into_response();
    }
    graph_error(
        StatusCode::NOT_FOUND,
        803,
        "Unknown path in the fake platform",
    )
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Fake"}})),
    )
        .into_response()
}
