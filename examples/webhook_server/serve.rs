//! Serving the receiver's [`Router`] so that no client can hold it: a header
//! read timeout, a body read timeout (in `app.rs`, around reading the body)
//! and a cap on concurrent connections.
//!
//! `axum::serve` does not expose hyper's header read timeout, so connections
//! are served here by hyper's HTTP/1 connection builder with a Tokio timer, in
//! an accept loop guarded by a semaphore:
//!
//! - **Header read timeout** (default 10 s): a client that does not finish
//!   sending its request line and headers in time (slowloris, a stalled
//!   connection, an idle keep-alive) is disconnected. Platforms send headers
//!   in one write, so 10 s is far above any honest client.
//! - **Body read timeout** (default 30 s, `AppState::body_read_timeout`): a
//!   body not received in full in time is answered 408 and the connection
//!   closed; a `Content-Length` above the body limit is refused with 413 before
//!   reading. Bodies are at most 4 MiB by default, which takes seconds even
//!   on a slow link, so 30 s leaves a wide margin.
//! - **Connection cap** (default 512): at the cap the accept loop stops
//!   accepting; new connections **wait** in the kernel's listen backlog
//!   (they are not refused) and are served as soon as a connection closes.
//!   A platform whose connection times out meanwhile delivers again later.
//!   512 bounds memory and file descriptors well below the default `ulimit -n`
//!   of 1024 while leaving room for bursts of deliveries.
//!
//! The signature is checked once the body is read, so a client without any
//! secret can hold a connection for the header and body timeouts (40 s at
//! the defaults), and 512 such clients hold every slot while platforms'
//! deliveries wait in the backlog. The cap is global, not per client: in
//! production put the receiver behind a proxy that limits connections per
//! address (the platforms deliver from a few published ranges).
#![allow(dead_code)] // each includer uses a different part of this module

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Default header read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on concurrent connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The connection limits (the body read timeout is the app's, see
/// `AppState::with_body_read_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time allowed for the request line and headers.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes,
/// then stops accepting and lets in-flight connections finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // At the cap, wait for a slot before accepting: new connections wait
        // in the listen backlog.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
