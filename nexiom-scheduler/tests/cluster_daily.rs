//! The `cluster_daily` worker on the runtime, over both backends: a tenant's
//! messages and a busy post's comments become stored topics with an execution
//! log; the next day's run keeps the topic ids and records a trend; the flag
//! stops it without a restart; a failing labeller leaves the terms label; a
//! failing scope leaves the others saved, and an overlong label is cut.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use nexiom_storage::conformance::{memory_test_store, postgres_test_store};
use nexiom_topics::{EmbedError, Embedder, Labeller, LocalEmbedder, TopicRunner};

/// Two subjects people raise, each in ten phrasings, and a post's comments.
const DELIVERY: [&str; 10] = [
    "ma livraison est en retard",
    "livraison en retard encore une fois",
    "la livraison a une heure de retard",
    "toujours pas de livraison, quel retard",
    "retard de livraison ce soir",
    "livraison très en retard aujourd'hui",
    "encore du retard sur la livraison",
    "la livraison de ma commande est en retard",
    "énorme retard de livraison",
    "livraison en retard, personne ne répond",
];
const HOURS: [&str; 10] = [
    "quels sont vos horaires d'ouverture",
    "horaires d'ouverture le dimanche ?",
    "vos horaires d'ouverture ont changé ?",
    "horaires d'ouverture du samedi svp",
    "les horaires d'ouverture pendant les fêtes",
    "horaires d'ouverture ce soir",
    "vos horaires d'ouverture en août ?",
    "horaires d'ouverture du restaurant",
    "horaires d'ouverture lundi",
    "où trouver vos horaires d'ouverture",
];

#[derive(Debug)]
struct BrokenLabeller;

#[async_trait]
impl Labeller for BrokenLabeller {
    async fn label(&self, _: TenantId, _: &[String], _: &[&str]) -> Option<String> {
        None
    }
}

/// The Bistro tenant, its Instagram channel `account` and one guest's
/// conversation, all created 30 days before `at`.
async fn bistro(
    store: &dyn Store,
    account: &str,
    at: DateTime<Utc>,
) -> (Tenant, Channel, ConversationId) {
    let tenant = store
        .create_tenant(NewTenant::new("Bistro", at - Duration::days(30)))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Instagram,
            external_account_id: account.into(),
            name: "Bistro".into(),
            credentials: Credentials::default(),
            created_at: at - Duration::days(30),
        })
        .await
        .unwrap();
    let cc = store
        .insert_contact_channel(NewContactChannel {
            tenant_id: tenant.id,
            platform: Platform::Instagram,
            external_handle: "guest".into(),
            display_name: None,
            created_at: at - Duration::days(30),
        })
        .await
        .unwrap()
        .record;
    let conv = store
        .insert_open_conversation(
            tenant.id,
            cc.contact_id,
            channel.id,
            at - Duration::days(30),
        )
        .await
        .unwrap()
        .record
        .id;
    (tenant, channel, conv)
}

/// Messages of the 24 hours before `end` in `conv`, 3 rounds of both
/// subjects, each tagged `tag`.
async fn write_day(
    store: &dyn Store,
    tenant: TenantId,
    conv: ConversationId,
    end: DateTime<Utc>,
    tag: &str,
) {
    let mut n = 0;
    for round in 0..3 {
        for text in DELIVERY.iter().chain(HOURS.iter()) {
            n += 1;
            let at = end - Duration::minutes(10 * n);
            store
                .insert_message(NewMessage {
                    tenant_id: tenant,
                    conversation_id: conv,
                    direction: MessageDirection::Inbound,
                    text: format!("{text} ({tag} {round})"),
                    has_media: false,
                    provider_message_id: None,
                    in_reply_to: None,
                    delivery_status: None,
                    created_at: at,
                    stored_at: at,
                })
                .await
                .unwrap();
        }
    }
}

async fn scenario(store: Arc<dyn Store>) {
    let day1 = Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap(); // 03:00 in Paris
    let clock = Arc::new(ManualClock::new(day1));
    let (tenant, channel, conv) = bistro(store.as_ref(), "ig-bistro", day1).await;
    let post = store
        .insert_post(NewScheduledPost::one_off(
            tenant.id,
            channel.id,
            Content::text("Winter menu!"),
            day1 - Duration::days(2),
            day1 - Duration::days(2),
        ))
        .await
        .unwrap()
        .record
        .id;
    write_day(store.as_ref(), tenant.id, conv, day1, "j1").await;
    for (i, text) in DELIVERY
        .iter()
        .chain(HOURS.iter())
        .chain(DELIVERY.iter())
        .enumerate()
    {
        let at = day1 - Duration::hours(1) - Duration::minutes(i as i64);
        store
            .insert_comment(NewComment {
                tenant_id: tenant.id,
                post_id: post,
                platform_comment_id: format!("c{i}"),
                parent_platform_comment_id: None,
                author_id: None,
                author_name: None,
                text: text.to_string(),
                created_at: at,
                stored_at: at,
                hidden: false,
            })
            .await
            .unwrap();
    }

    let runner = TopicRunner::new(Arc::clone(&store), Arc::new(LocalEmbedder::default()))
        .with_labeller(Arc::new(BrokenLabeller));
    let mut runtime = WorkerRuntime::new(Arc::clone(&store), clock.clone());
    runtime.register(Arc::new(ClusterDailyWorker::new(
        Arc::clone(&store),
        runner,
    )));
    let shutdown = Shutdown::never();

    let runs = runtime.run_once(&shutdown).await.unwrap();
    let WorkerRun::Ran(log) = &runs[0].1 else {
        panic!("{runs:?}")
    };
    assert_eq!(log.worker_name, CLUSTER_DAILY);
    assert_eq!(
        (log.status, log.items_processed, log.items_failed),
        (RunStatus::Completed, 1, 0)
    );
    let scopes: Vec<&str> = log.results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scope"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, vec!["daily", "weekly", "post"]);

    let day = NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
    let top = store
        .top_topics(tenant.id, TopicScope::Daily, day, day, 10)
        .await
        .unwrap();
    assert_eq!(top.len(), 2, "{top:?}");
    let labels: Vec<&str> = top.iter().map(|t| t.topic.label.as_str()).collect();
    assert!(
        labels
            .iter()
            .any(|l| l.contains("livraison") || l.contains("retard")),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.contains("horaires") || l.contains("ouverture")),
        "{labels:?}"
    );
    assert!(top.iter().all(|t| t.size >= 25), "{top:?}");
    let page = store
        .messages_in_topic(tenant.id, top[0].topic.id, None, 5)
        .await
        .unwrap();
    assert_eq!(page.members.len(), 5);
    assert!(page.next.is_some());
    let post_topics = store.topics_for_post(tenant.id, post).await.unwrap();
    assert_eq!(post_topics.len(), 2, "{post_topics:?}");
    assert!(post_topics[0].size >= post_topics[1].size);

    // The next day: new messages on the same subjects keep the topic ids.
    let day2 = day1 + Duration::days(1);
    clock.set(day2);
    write_day(store.as_ref(), tenant.id, conv, day2, "j2").await;
    runtime.run_once(&shutdown).await.unwrap();
    let next = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let top2 = store
        .top_topics(tenant.id, TopicScope::Daily, next, next, 10)
        .await
        .unwrap();
    let mut ids1: Vec<TopicId> = top.iter().map(|t| t.topic.id).collect();
    let mut ids2: Vec<TopicId> = top2.iter().map(|t| t.topic.id).collect();
    ids1.sort();
    ids2.sort();
    assert_eq!(ids1, ids2, "the same subjects keep their ids");
    assert!(
        top2.iter().all(|t| t.today >= 15 && t.yesterday >= 25),
        "{:?}",
        top2.iter()
            .map(|t| (t.today, t.yesterday))
            .collect::<Vec<_>>()
    );

    // Switched off: no run, no log.
    store
        .set_worker_flag(CLUSTER_DAILY, false, day2)
        .await
        .unwrap();
    clock.set(day2 + Duration::days(1));
    let off = runtime.run_once(&shutdown).await.unwrap();
    assert_eq!(off[0].1, WorkerRun::Disabled);
    assert_eq!(
        store
            .list_executions(Some(CLUSTER_DAILY), 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Fails its first call (the daily scope's), then embeds as the local one.
#[derive(Debug)]
struct FailsFirst {
    inner: Arc<dyn Embedder>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl Embedder for FailsFirst {
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(EmbedError::Status {
                status: 400,
                message: "an input is over the model's token limit".into(),
            });
        }
        self.inner.embed(texts).await
    }
    fn fitted(&self, corpus: &[String]) -> Option<Arc<dyn Embedder>> {
        Some(Arc::new(FailsFirst {
            inner: self
                .inner
                .fitted(corpus)
                .unwrap_or_else(|| Arc::clone(&self.inner)),
            calls: Arc::clone(&self.calls),
        }))
    }
}

/// Answers a label of more than 200 bytes (a script without spaces).
#[derive(Debug)]
struct WordyLabeller;

#[async_trait]
impl Labeller for WordyLabeller {
    async fn label(&self, _: TenantId, _: &[String], _: &[&str]) -> Option<String> {
        Some("配送が遅れている荷物について問い合わせ".repeat(6))
    }
}

/// One scope failing (the embedder refuses the daily run's texts) does not
/// keep the weekly run from saving its topics, and a labeller's answer longer
/// than a topic's label holds is cut to fit instead of making the run
/// unsavable.
async fn a_failing_scope_and_a_long_label_leave_the_other_scopes_saved(store: Arc<dyn Store>) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap();
    let (tenant, _, conv) = bistro(store.as_ref(), "ig-bistro-2", now).await;
    write_day(store.as_ref(), tenant.id, conv, now, "j1").await;
    let embedder = FailsFirst {
        inner: Arc::new(LocalEmbedder::default()),
        calls: Arc::default(),
    };
    let runner = TopicRunner::new(Arc::clone(&store), Arc::new(embedder))
        .with_labeller(Arc::new(WordyLabeller));
    let result = runner.run_tenant(&tenant, now).await;
    assert!(result.is_err(), "the daily scope's failure is reported");
    assert!(
        store
            .list_topics(tenant.id, TopicScope::Daily)
            .await
            .unwrap()
            .is_empty()
    );
    let weekly = store
        .list_topics(tenant.id, TopicScope::Weekly)
        .await
        .unwrap();
    assert_eq!(weekly.len(), 2, "the weekly run went on: {weekly:?}");
    for topic in &weekly {
        assert!(topic.label.len() <= MAX_TOPIC_LABEL_LEN, "{}", topic.label);
        assert!(topic.label.ends_with('…'), "{}", topic.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scope_on_memory() {
    let t = memory_test_store().await.unwrap();
    a_failing_scope_and_a_long_label_leave_the_other_scopes_saved(t.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_failing_scope_on_postgres() {
    let Some(t) = postgres_test_store().await else {
        return;
    };
    a_failing_scope_and_a_long_label_leave_the_other_scopes_saved(t.store()).await;
    t.cleanup().await;
}

/// Embeds as the local embedder unfitted (an embedder that learns nothing
/// from the window, as a model's API), counting the texts it is given.
#[derive(Debug, Default)]
struct Counting {
    inner: LocalEmbedder,
    texts: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Embedder for Counting {
    fn model(&self) -> &str {
        "counting-local"
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.texts
            .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

/// The tenant's daily topics, by id: (id, label).
async fn daily_topics(store: &dyn Store, tenant: TenantId) -> Vec<(TopicId, String)> {
    let mut topics = store.list_topics(tenant, TopicScope::Daily).await.unwrap();
    topics.sort_by_key(|t| t.id);
    topics.into_iter().map(|t| (t.id, t.label)).collect()
}

/// The next run over the same items reads their stored vectors back: only
/// an item new since is embedded, and the topics are the same.
async fn stored_vectors_are_reused(store: Arc<dyn Store>) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap();
    let (tenant, _, conv) = bistro(store.as_ref(), "ig-bistro-3", now).await;
    write_day(store.as_ref(), tenant.id, conv, now, "j1").await;
    let embedder = Arc::new(Counting::default());
    let runner = TopicRunner::new(Arc::clone(&store), embedder.clone());
    let embedded = || embedder.texts.load(std::sync::atomic::Ordering::SeqCst);
    runner.run_tenant(&tenant, now).await.unwrap();
    let first = embedded();
    assert_eq!(first, 60, "the day's 60 messages, once for both scopes");
    let daily = daily_topics(store.as_ref(), tenant.id).await;
    assert_eq!(daily.len(), 2, "{daily:?}");
    runner
        .run_tenant(&tenant, now + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(embedded(), first, "nothing embedded again");
    assert_eq!(daily_topics(store.as_ref(), tenant.id).await, daily);
    store
        .insert_message(NewMessage {
            tenant_id: tenant.id,
            conversation_id: conv,
            direction: MessageDirection::Inbound,
            text: "livraison en retard, encore".into(),
            has_media: false,
            provider_message_id: None,
            in_reply_to: None,
            delivery_status: None,
            created_at: now + Duration::minutes(1),
            stored_at: now + Duration::minutes(1),
        })
        .await
        .unwrap();
    runner
        .run_tenant(&tenant, now + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(embedded(), first + 1, "only the new message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_vectors_are_reused_on_memory() {
    let t = memory_test_store().await.unwrap();
    stored_vectors_are_reused(t.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn stored_vectors_are_reused_on_postgres() {
    let Some(t) = postgres_test_store().await else {
        return;
    };
    stored_vectors_are_reused(t.store()).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_daily_on_memory() {
    let t = memory_test_store().await.unwrap();
    scenario(t.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn cluster_daily_on_postgres() {
    let Some(t) = postgres_test_store().await else {
        return;
    };
    scenario(t.store()).await;
    t.cleanup().await;
}
