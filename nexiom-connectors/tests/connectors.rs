//! Connector behaviour beyond the contract suite, against a local wiremock
//! server, one module per connector and one for the HTTP core:
//!
//! - `whatsapp` — Graph throttling codes, messaging policy, broadcasts;
//! - `instagram` — the container flow, comments, replies and hiding;
//! - `instagram_lost_answer` — a lost `media_publish` answer settled from
//!   the container's status;
//! - `facebook` — native scheduling, token exchange, the webhook handshake;
//! - `linkedin` — refresh and replies;
//! - `http_core` — retries, breaker, rate budget, ambiguous outcomes.

mod common;
mod connectors {
    mod facebook;
    mod http_core;
    mod instagram;
    mod instagram_lost_answer;
    mod linkedin;
    mod whatsapp;
}

use wiremock::MockServer;

/// How many requests `server` has received so far.
async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}
