//! Shared setup of the scheduler's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use nexiom_scheduler::{BatchConfig, MockGateway, PublishConfig, PublishQueue, RetryPolicy};
use nexiom_storage::Store;

/// Runs each listed `async fn(Arc<dyn Store>)` on memory and on Postgres (when
/// `DATABASE_URL` is set; required under `CI=true`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::memory_test_store().await else { return };
                    super::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable (see README: Tests)")]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::postgres_test_store().await else { return };
                    super::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
    };
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

pub struct Env {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub tenant: TenantId,
    pub channel: ChannelId,
}

impl Env {
    pub async fn new(store: Arc<dyn Store>) -> Env {
        Env::at(store, t0()).await
    }

    pub async fn at(store: Arc<dyn Store>, now: DateTime<Utc>) -> Env {
        let clock = Arc::new(ManualClock::new(now));
        let tenant = store
            .create_tenant(NewTenant::new("Acme", now))
            .await
            .unwrap();
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::Facebook,
                external_account_id: format!("page-{}", tenant.id),
                name: "Page".into(),
                credentials: Credentials {
                    access_token: Some(SecretString::new("old-token")),
                    ..Credentials::default()
                },
                created_at: now,
            })
            .await
            .unwrap();
        Env {
            store,
            clock,
            tenant: tenant.id,
            channel: channel.id,
        }
    }

    pub fn queue(&self, worker: &str, gateway: Arc<MockGateway>) -> PublishQueue {
        let config = PublishConfig {
            retry: RetryPolicy {
                jitter: false,
                ..RetryPolicy::default()
            },
            ..PublishConfig::for_worker(worker)
        };
        PublishQueue::new(self.store.clone(), gateway, self.clock.clone(), config)
    }

    pub async fn post_at(&self, text: &str, at: DateTime<Utc>) -> ScheduledPost {
        self.store
            .insert_post(NewScheduledPost::one_off(
                self.tenant,
                self.channel,
                Content::text(text),
                at,
                self.clock.now(),
            ))
            .await
            .unwrap()
            .record
    }

    pub async fn post(&self, id: PostId) -> ScheduledPost {
        self.store.get_post(self.tenant, id).await.unwrap()
    }

    pub async fn runs(&self, id: PostId) -> Vec<PostRun> {
        self.store.list_post_runs(self.tenant, id).await.unwrap()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

pub fn batch(size: u32) -> BatchConfig {
    BatchConfig {
        batch_size: size,
        ..BatchConfig::default()
    }
}
