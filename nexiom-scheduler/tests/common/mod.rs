//! Shared setup of the scheduler's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_connectors::{ConnectorRegistry, MockConnector};
use nexiom_core::*;
use nexiom_scheduler::inbound::InboundPipeline;
use nexiom_scheduler::{
    BatchConfig, CommentPoller, MockGateway, PublishConfig, PublishFailure, PublishGateway,
    PublishQueue, PublishedPost, RetryPolicy,
};
use nexiom_storage::Store;
use nexiom_triage::TemplateGenerator;

/// Runs each listed `async fn(Arc<dyn Store>)` on memory and on Postgres (when
/// `DATABASE_URL` is set; required under `CI=true`). A test file split into
/// modules lists `module::function` (the module in scope where the macro is
/// called); the tests keep the function's name, as `memory::function` and
/// `postgres::function`.
#[macro_export]
macro_rules! on_both_backends {
    ($($module:ident :: $name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::memory_test_store().await else { return };
                    super::$module::$name(ts.store()).await;
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
                    super::$module::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
    };
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

    /// Switches auto-replies on for the tenant (an AUTO rule "hours" for
    /// comments asking for "horaires", and AI control ON), then builds the
    /// inbound pipeline answering through `mock` with `template`, and a
    /// comment poller over `mock` that runs that pipeline after each pass.
    pub async fn auto_replying(&self, mock: &MockConnector, template: &str) -> AutoReplying {
        let now = self.clock.now();
        self.store
            .create_rule(NewAiRule {
                tenant_id: self.tenant,
                rule_type: RuleType::Auto,
                name: "hours".into(),
                keywords: vec!["horaires".into()],
                patterns: vec![],
                confidence_min: None,
                enabled: true,
                priority: 1,
                at: now,
            })
            .await
            .unwrap();
        self.store
            .set_ai_control(self.tenant, true, None, now)
            .await
            .unwrap();
        let registry = ConnectorRegistry::new().with(Arc::new(mock.clone()));
        let inbound = InboundPipeline::new(
            self.store.clone(),
            self.clock.clone(),
            Arc::new(TemplateGenerator::new().with_template(self.tenant, template)),
        )
        .with_connectors(registry.clone());
        let poller = CommentPoller::new(self.store.clone(), self.clock.clone(), registry)
            .with_inbound(inbound.clone());
        AutoReplying { inbound, poller }
    }
}

/// What [`Env::auto_replying`] builds.
pub struct AutoReplying {
    /// Triages and auto-answers through the mock connector.
    pub inbound: InboundPipeline,
    /// Polls through the mock connector, then runs `inbound`.
    pub poller: CommentPoller,
}

pub fn batch(size: u32) -> BatchConfig {
    BatchConfig {
        batch_size: size,
        ..BatchConfig::default()
    }
}

/// The part of [`PublishGateway`] a test's platform scripts: `publish`, and
/// what it answers differently from the defaults (no lookup, no token
/// refresh). [`TestGateway`] makes it a gateway.
#[async_trait]
pub trait TestPlatform: Send + Sync {
    async fn publish(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure>;

    fn can_lookup(&self, _: &Channel) -> bool {
        false
    }

    async fn refresh_credentials(&self, _: &Channel) -> Result<Credentials, PublishFailure> {
        Err(PublishFailure::Permanent("no refresh here".into()))
    }
}

/// A [`TestPlatform`] as a [`PublishGateway`]: it refuses no content and its
/// lookup never finds anything (a feed that has not caught up); the rest is
/// the platform's. Derefs to the platform, for its counters.
pub struct TestGateway<P>(pub P);

impl<P> Deref for TestGateway<P> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.0
    }
}

#[async_trait]
impl<P: TestPlatform> PublishGateway for TestGateway<P> {
    fn refusal(&self, _: &Channel, _: &Content) -> Option<String> {
        None
    }

    async fn publish(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure> {
        self.0.publish(channel, content, reference).await
    }

    fn can_lookup(&self, channel: &Channel) -> bool {
        self.0.can_lookup(channel)
    }

    async fn lookup(
        &self,
        _: &Channel,
        _: &Content,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<Option<PublishedPost>, PublishFailure> {
        Ok(None)
    }

    async fn refresh_credentials(&self, channel: &Channel) -> Result<Credentials, PublishFailure> {
        self.0.refresh_credentials(channel).await
    }
}

/// The database's address and a store in a schema of its own; `None`
/// (with a notice) when no PostgreSQL is reachable.
pub async fn on_postgres() -> Option<(String, nexiom_storage::conformance::TestStore)> {
    let url = nexiom_storage::conformance::postgres_test_url().await?;
    let ts = nexiom_storage::conformance::postgres_test_store()
        .await
        .unwrap();
    Some((url, ts))
}

/// Runs `sql` in the test's schema on a connection of its own (bound to
/// `channel`'s id when given); returns the rows it touched.
pub async fn as_admin(
    url: &str,
    ts: &nexiom_storage::conformance::TestStore,
    sql: &str,
    channel: Option<&Channel>,
) -> u64 {
    let schema = ts.schema().unwrap().to_owned();
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::query(&format!("SET search_path TO \"{schema}\""))
        .execute(&admin)
        .await
        .unwrap();
    let done = match channel {
        Some(channel) => {
            sqlx::query(sql)
                .bind(channel.id.as_uuid())
                .execute(&admin)
                .await
        }
        None => sqlx::raw_sql(sql).execute(&admin).await,
    }
    .unwrap()
    .rows_affected();
    admin.close().await;
    done
}
