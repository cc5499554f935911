//! The webhook receiver as an axum [`Router`]: one path per platform.
//!
//! - `GET /webhooks/{platform}`: the platform's subscription handshake, answered
//!   by the connector (`answer_challenge`: Meta's `hub.*`, LinkedIn's
//!   `challengeCode`); a refused handshake is 403.
//! - `POST /webhooks/{platform}`: `InboundPipeline::ingest_webhook`: the
//!   signature over the exact raw body is checked (401 when it does not
//!   verify, nothing stored), then each event is stored raw on its own,
//!   deduplicated on `(platform, event_id)`; an event that cannot be read or
//!   stored (and a verified body that is not a payload at all) is kept as a
//!   dead letter instead, so one bad event never loses its neighbours. Only
//!   when every event is stored or dead-lettered does the platform get its
//!   200; a store outage answers 503 so that the platform delivers again. Nothing else runs on the request path:
//!   routing, triage and replies are the worker's.
//! - Bodies above the limit are refused with 413 before they are read in full;
//!   a body not received within the body read timeout is answered 408 and the
//!   connection closed (`serve.rs` adds the header read timeout and the
//!   connection cap).
//! - `GET /healthz`: 200 `ok`.
//!
//! Used by `examples/webhook_server/main.rs`, by the tests in `tests/` and by the
//! load check (they include this file with `#[path = ...] mod app;`).
#![allow(dead_code)] // each includer uses a different part of this module

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use nexiom::connectors::{ConnectorError, ConnectorRegistry, WebhookError, WebhookHeaders};
use nexiom::core::Clock;
use nexiom::scheduler::inbound::{InboundError, InboundPipeline};
use nexiom::storage::Store;
use nexiom::triage::TemplateGenerator;

/// The default body-size limit: 4 MiB. Meta batches up to 1,000 updates in
/// one request and WhatsApp payloads can reach 3 MB; a body refused with 413
/// is refused again on every redelivery, so its events would never arrive.
/// Bodies are read whole before their signature can be checked: at most
/// `max connections × limit` bytes are held at once (2 GiB at the defaults;
/// lower either on a small host).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The default body read timeout: 30 s (a 4 MiB body takes seconds even on
/// a slow link; a client that has not sent it by then is stalled or hostile).
pub const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the handlers share: the inbound pipeline (its ingestion step only),
/// the connectors by name and the body-size limit.
#[derive(Clone)]
pub struct AppState {
    /// Stores raw events (its clock stamps `received_at`).
    pub pipeline: InboundPipeline,
    /// Connectors by registry name (`whatsapp`, `instagram`, …): the path segment.
    pub connectors: ConnectorRegistry,
    /// Largest accepted body, in bytes.
    pub body_limit: usize,
    /// Time allowed to receive the whole body (408 and the connection closed
    /// after it).
    pub body_read_timeout: std::time::Duration,
}

impl AppState {
    /// A state over `store` with the default body limit. The pipeline's reply
    /// generator is never called on the request path (replies are the
    /// worker's), so a template generator without templates stands in.
    pub fn new(
        store: Arc<dyn Store>,
        connectors: ConnectorRegistry,
        clock: Arc<dyn Clock>,
    ) -> Self {
        AppState {
            pipeline: InboundPipeline::new(store, clock, Arc::new(TemplateGenerator::new())),
            connectors,
            body_limit: DEFAULT_BODY_LIMIT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }

    /// Another body read timeout.
    pub fn with_body_read_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Another body limit.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

/// The receiver's routes over `state`.
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/webhooks/{platform}", get(verify).post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The response, and the connection closed after it (its body was not read
/// in full, so it cannot carry another request).
fn close(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

async fn verify(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Ok(connector) = state.connectors.get(&platform) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown platform {platform}"),
        );
    };
    match connector.answer_challenge(&query) {
        Ok(answer) => (
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, answer.content_type)],
            answer.body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(platform, error = %e, "webhook handshake refused");
            text(StatusCode::FORBIDDEN, "handshake refused")
        }
    }
}

async fn receive(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(connector) = state.connectors.get(&platform) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown platform {platform}"),
        );
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.body_limit as u64) {
        return close(text(StatusCode::PAYLOAD_TOO_LARGE, "body too large"));
    }
    let body = match tokio::time::timeout(
        state.body_read_timeout,
        axum::body::to_bytes(body, state.body_limit),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return close(text(StatusCode::PAYLOAD_TOO_LARGE, "body too large")),
        Err(_) => {
            tracing::warn!(platform, "webhook body not received in time");
            return close(text(
                StatusCode::REQUEST_TIMEOUT,
                "body not received in time",
            ));
        }
    };
    let headers: WebhookHeaders = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    match state
        .pipeline
        .ingest_webhook(connector.as_ref(), &headers, &body)
        .await
    {
        Ok(report) => {
            tracing::debug!(
                platform,
                events = report.events,
                stored = report.stored,
                unknown_account = report.unknown_account,
                dead_lettered = report.dead_lettered,
                "webhook ingested"
            );
            text(StatusCode::OK, "EVENT_RECEIVED")
        }
        Err(InboundError::Webhook(ConnectorError::Webhook(
            e @ WebhookError::InvalidPayload { .. },
        ))) => {
            tracing::warn!(platform, error = %e, "webhook body not understood");
            text(StatusCode::BAD_REQUEST, "payload not understood")
        }
        Err(e @ InboundError::Webhook(_)) => {
            tracing::warn!(platform, error = %e, "webhook refused");
            text(StatusCode::UNAUTHORIZED, "signature does not verify")
        }
        Err(e) => {
            tracing::error!(platform, error = %e, "webhook not stored");
            text(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}
