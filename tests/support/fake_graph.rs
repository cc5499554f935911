//! A local fake of the Graph API's Page publishing, stateful enough for load
//! and fault tests: `POST /{version}/{page}/feed` creates a post (after a
//! random latency), `GET /{version}/{page}/published_posts` lists a Page's
//! posts newest first with Graph's cursor paging (the lookup after an
//! ambiguous answer reads it). It can answer a share of calls with HTTP 500
//! (half of them after creating the post, as a platform that acted and then
//! failed), and answer 429 with `Retry-After` for chosen Pages. It records
//! every post created (to count duplicates) and the most publish calls ever
//! in flight per Page.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};

/// How the fake platform behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeGraphConfig {
    /// Latency of each publish call, uniform in `[min, max]` milliseconds.
    pub latency_ms: (u64, u64),
    /// Share of publish calls answered 500 (half of them after creating the
    /// post).
    pub error_rate: f64,
    /// Pages that answer every publish with 429 and `Retry-After: retry_after_secs`.
    pub throttled: HashSet<String>,
    /// The `Retry-After` of a throttled Page, in seconds.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone)]
struct FakePost {
    id: String,
    message: String,
    created: chrono::DateTime<Utc>,
}

#[derive(Default)]
struct Pages {
    posts: HashMap<String, Vec<FakePost>>,
    in_flight: HashMap<String, usize>,
    peak: HashMap<String, usize>,
}

struct Inner {
    config: FakeGraphConfig,
    pages: Mutex<Pages>,
    next_id: AtomicU64,
    publish_calls: AtomicU64,
    throttled_calls: AtomicU64,
    errors: AtomicU64,
}

/// A running fake; dropped with the process.
#[derive(Clone)]
pub struct FakeGraph {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeGraph {
    /// Starts the fake on a free local port.
    pub async fn start(config: FakeGraphConfig) -> FakeGraph {
        let inner = Arc::new(Inner {
            config,
            pages: Mutex::default(),
            next_id: AtomicU64::new(1),
            publish_calls: AtomicU64::new(0),
            throttled_calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/{version}/{page}/feed", post(publish))
            .route("/{version}/{page}/published_posts", get(listing))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGraph { addr, inner }
    }

    /// The base URL to give the connector.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every post created: `(page, message)`.
    pub fn created(&self) -> Vec<(String, String)> {
        let pages = self.inner.pages.lock().unwrap();
        pages
            .posts
            .iter()
            .flat_map(|(page, posts)| posts.iter().map(move |p| (page.clone(), p.message.clone())))
            .collect()
    }

    /// Messages created more than once.
    pub fn duplicates(&self) -> Vec<String> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (_, message) in self.created() {
            *seen.entry(message).or_default() += 1;
        }
        seen.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(m, _)| m)
            .collect()
    }

    /// The most publish calls ever in flight on one Page, over all Pages.
    pub fn peak_in_flight_per_page(&self) -> usize {
        let pages = self.inner.pages.lock().unwrap();
        pages.peak.values().copied().max().unwrap_or(0)
    }

    /// Publish calls received, answered 429, and answered 500.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.inner.publish_calls.load(Ordering::Relaxed),
            self.inner.throttled_calls.load(Ordering::Relaxed),
            self.inner.errors.load(Ordering::Relaxed),
        )
    }
}

fn graph_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "OAuthException", "code": code}})),
    )
        .into_response()
}

/// Leaves the in-flight count of a Page when dropped (also when the caller
/// hangs up and the handler is dropped).
struct InFlight {
    inner: Arc<Inner>,
    page: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut pages = self.inner.pages.lock().unwrap();
        if let Some(n) = pages.in_flight.get_mut(&self.page) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn publish(
    State(inner): State<Arc<Inner>>,
    Path((_version, page)): Path<(String, String)>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    inner.publish_calls.fetch_add(1, Ordering::Relaxed);
    let _in_flight = {
        let mut pages = inner.pages.lock().unwrap();
        let n = pages.in_flight.entry(page.clone()).or_default();
        *n += 1;
        let n = *n;
        let peak = pages.peak.entry(page.clone()).or_default();
        *peak = (*peak).max(n);
        InFlight {
            inner: inner.clone(),
            page: page.clone(),
        }
    };
    let (min, max) = inner.config.latency_ms;
    if max > 0 {
        let ms = fastrand::u64(min..=max.max(min));
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if inner.config.throttled.contains(&page) {
        inner.throttled_calls.fetch_add(1, Ordering::Relaxed);
        let mut response = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            4,
            "(#4) Application request limit reached",
        );
        response.headers_mut().insert(
            "retry-after",
            inner.config.retry_after_secs.to_string().parse().unwrap(),
        );
        return response;
    }
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "message")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let fail = fastrand::f64() < inner.config.error_rate;
    let act = !fail || fastrand::bool();
    let id = format!("{page}_{}", inner.next_id.fetch_add(1, Ordering::Relaxed));
    if act {
        let mut pages = inner.pages.lock().unwrap();
        pages.posts.entry(page.clone()).or_default().push(FakePost {
            id: id.clone(),
            message,
            created: Utc::now(),
        });
    }
    if fail {
        inner.errors.fetch_add(1, Ordering::Relaxed);
        return graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            1,
            "An unknown error has occurred.",
        );
    }
    axum::Json(json!({ "id": id })).into_response()
}

async fn listing(
    State(inner): State<Arc<Inner>>,
    Path((_version, page)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let start: usize = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let posts: Vec<FakePost> = {
        let pages = inner.pages.lock().unwrap();
        let mut posts = pages.posts.get(&page).cloned().unwrap_or_default();
        posts.reverse();
        posts
    };
    let slice: Vec<Value> = posts
        .iter()
        .skip(start)
        .take(limit)
        .map(|p| {
            json!({
                "id": p.id,
                "message": p.message,
                "created_time": p.created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
                "permalink_url": format!("https://www.facebook.com/{}", p.id),
            })
        })
        .collect();
    let end = start + slice.len();
    let mut paging = json!({"cursors": {"before": start.to_string(), "after": end.to_string()}});
    if end < posts.len() {
        paging["next"] = json!(format!("https://graph.facebook.com/next?after={end}"));
    }
    axum::Json(json!({"data": slice, "paging": paging})).into_response()
}
