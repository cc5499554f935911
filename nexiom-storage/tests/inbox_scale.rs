//! The inbox lists over 10,000 conversations, on both backends: every view
//! returns the right items in the right order, page after page by cursor;
//! on PostgreSQL each view's plan reads through its index (EXPLAIN after
//! ANALYZE), the conversations inserted by set-based statements as routing
//! does, their items kept by the statement triggers.
#![allow(clippy::unwrap_used, clippy::manual_is_multiple_of, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use nexiom_core::*;
use nexiom_storage::conformance::{postgres_test_store, postgres_test_url, t0};
use nexiom_storage::{MemoryStore, PgStore, Store};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const N: usize = 10_000;

fn secs(n: usize) -> Duration {
    Duration::seconds(i64::try_from(n).unwrap())
}

fn triage_of(i: usize) -> Option<Triage> {
    match i % 10 {
        0 => Some(Triage::Escalate),
        1..=4 => Some(Triage::Ignore),
        5..=8 => Some(Triage::AutoReply),
        _ => None,
    }
}

/// Conversation `i`: its contact wrote at t0 + i s (triaged by
/// [`triage_of`]); every third was answered 30 s later.
struct Spec {
    tenant: TenantId,
    channels: [ChannelId; 2],
    ids: Vec<ConversationId>,
}

impl Spec {
    fn since(&self, i: usize) -> DateTime<Utc> {
        if i % 3 == 0 {
            t0() + secs(i) + secs(30)
        } else {
            t0() + secs(i)
        }
    }

    fn expected(&self, keep: impl Fn(usize) -> bool) -> Vec<InboxSubject> {
        let mut rows: Vec<(DateTime<Utc>, Uuid, usize)> = (0..N)
            .filter(|&i| i % 13 != 0 && keep(i))
            .map(|i| (self.since(i), self.ids[i].as_uuid(), i))
            .collect();
        rows.sort();
        rows.into_iter()
            .map(|(_, _, i)| InboxSubject::Conversation(self.ids[i]))
            .collect()
    }
}

async fn tenant_and_channels(s: &dyn Store) -> (TenantId, [ChannelId; 2]) {
    let tenant = s.create_tenant(NewTenant::new("Acme", t0())).await.unwrap();
    let mut channels = Vec::new();
    for account in ["page-a", "page-b"] {
        channels.push(
            s.create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::Facebook,
                external_account_id: account.into(),
                name: account.into(),
                credentials: Credentials::default(),
                created_at: t0(),
            })
            .await
            .unwrap()
            .id,
        );
    }
    (tenant.id, [channels[0], channels[1]])
}

/// The fixture through the store's API (the memory backend).
async fn fixture_via_api(s: &dyn Store) -> Spec {
    let (tenant, channels) = tenant_and_channels(s).await;
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        let cc = s
            .insert_contact_channel(NewContactChannel {
                tenant_id: tenant,
                platform: Platform::Facebook,
                external_handle: format!("h{i}"),
                display_name: None,
                created_at: t0(),
            })
            .await
            .unwrap()
            .record;
        let conv = s
            .insert_open_conversation(tenant, cc.contact_id, channels[i % 2], t0())
            .await
            .unwrap()
            .record;
        let message = |direction, at, key: String| NewMessage {
            tenant_id: tenant,
            conversation_id: conv.id,
            direction,
            text: "t".into(),
            has_media: false,
            provider_message_id: Some(key),
            in_reply_to: None,
            delivery_status: None,
            created_at: at,
            stored_at: at,
        };
        let m = s
            .insert_message(message(
                MessageDirection::Inbound,
                t0() + secs(i),
                format!("in{i}"),
            ))
            .await
            .unwrap()
            .record;
        if let Some(t) = triage_of(i) {
            s.set_message_triage(tenant, m.id, t, 1.0, None)
                .await
                .unwrap();
        }
        if i % 3 == 0 {
            s.insert_message(message(
                MessageDirection::Outbound,
                t0() + secs(i) + secs(30),
                format!("out{i}"),
            ))
            .await
            .unwrap();
        }
        ids.push(conv.id);
    }
    Spec {
        tenant,
        channels,
        ids,
    }
}

/// The same fixture in a few set-based statements (Postgres), the items
/// made by the triggers.
async fn fixture_via_sql(store: &PgStore, raw: &sqlx::PgPool) -> Spec {
    let (tenant, channels) = tenant_and_channels(store).await;
    let ids: Vec<ConversationId> = (0..N).map(|_| ConversationId::generate()).collect();
    let contacts: Vec<Uuid> = (0..N).map(|_| Uuid::now_v7()).collect();
    let conv: Vec<Uuid> = ids.iter().map(ConversationId::as_uuid).collect();
    let channel: Vec<Uuid> = (0..N).map(|i| channels[i % 2].as_uuid()).collect();
    let handles: Vec<String> = (0..N).map(|i| format!("h{i}")).collect();
    let mut tx = raw.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO contacts (id, tenant_id, display_name, created_at) \
         SELECT c, $1, NULL, $3 FROM UNNEST($2::uuid[]) AS c",
    )
    .bind(tenant.as_uuid())
    .bind(&contacts)
    .bind(t0())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO contact_channels (id, tenant_id, contact_id, platform, external_handle, \
             created_at) \
         SELECT gen_random_uuid(), $1, c, 'facebook', h, $4 \
         FROM UNNEST($2::uuid[], $3::text[]) AS u(c, h)",
    )
    .bind(tenant.as_uuid())
    .bind(&contacts)
    .bind(&handles)
    .bind(t0())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, \
             last_message_at, created_at) \
         SELECT v, $1, c, ch, 'open', NULL, $5 \
         FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[]) AS u(v, c, ch)",
    )
    .bind(tenant.as_uuid())
    .bind(&conv)
    .bind(&contacts)
    .bind(&channel)
    .bind(t0())
    .execute(&mut *tx)
    .await
    .unwrap();
    let mut m_conv = Vec::new();
    let mut m_channel = Vec::new();
    let mut m_dir = Vec::new();
    let mut m_triage: Vec<Option<&str>> = Vec::new();
    let mut m_at = Vec::new();
    let mut m_key = Vec::new();
    for i in 0..N {
        m_conv.push(conv[i]);
        m_channel.push(channel[i]);
        m_dir.push("inbound");
        m_triage.push(triage_of(i).map(Triage::as_str));
        m_at.push(t0() + secs(i));
        m_key.push(format!("in{i}"));
        if i % 3 == 0 {
            m_conv.push(conv[i]);
            m_channel.push(channel[i]);
            m_dir.push("outbound");
            m_triage.push(None);
            m_at.push(t0() + secs(i) + secs(30));
            m_key.push(format!("out{i}"));
        }
    }
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
             has_media, provider_message_id, in_reply_to, triage, confidence, ai_decision_id, \
             delivery_status, created_at, stored_at) \
         SELECT gen_random_uuid(), $1, v, ch, d, 't', false, k, NULL, t, \
             CASE WHEN t IS NULL THEN NULL ELSE 1.0 END, NULL, NULL, at, at \
         FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], \
             $7::text[]) AS u(v, ch, d, t, at, k)",
    )
    .bind(tenant.as_uuid())
    .bind(&m_conv)
    .bind(&m_channel)
    .bind(&m_dir)
    .bind(&m_triage)
    .bind(&m_at)
    .bind(&m_key)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Spec {
        tenant,
        channels,
        ids,
    }
}

/// People's state through the API: assigned, labelled, resolved.
async fn people(s: Arc<dyn Store>, spec: &Spec) {
    let work: Vec<usize> = (0..N)
        .filter(|i| i % 7 == 0 || i % 11 == 0 || i % 13 == 0)
        .collect();
    futures_util::stream::iter(work)
        .for_each_concurrent(8, |i| {
            let s = Arc::clone(&s);
            let subject = InboxSubject::Conversation(spec.ids[i]);
            let tenant = spec.tenant;
            async move {
                if i % 7 == 0 {
                    s.assign_inbox_item(tenant, subject, Some("ana"))
                        .await
                        .unwrap();
                }
                if i % 11 == 0 {
                    s.label_inbox_item(tenant, subject, &["vip".into()], &[])
                        .await
                        .unwrap();
                }
                if i % 13 == 0 {
                    s.set_inbox_status(tenant, subject, InboxStatus::Resolved, t0() + secs(20_000))
                        .await
                        .unwrap();
                }
            }
        })
        .await;
}

/// A view, which conversations it shows, and the index it must read.
type View<'a> = (InboxView, Box<dyn Fn(usize) -> bool + 'a>, &'static str);

fn views(spec: &Spec) -> Vec<View<'_>> {
    vec![
        (
            InboxView::UnassignedEscalations,
            Box::new(|i| triage_of(i) == Some(Triage::Escalate) && i % 7 != 0),
            "ix_inbox_unassigned_escalations",
        ),
        (
            InboxView::AssignedTo("ana".into()),
            Box::new(|i| i % 7 == 0),
            "ix_inbox_assignee",
        ),
        (
            InboxView::Label("vip".into()),
            Box::new(|i| i % 11 == 0),
            "ix_inbox_labels",
        ),
        (
            InboxView::Channel(spec.channels[1]),
            Box::new(|i| i % 2 == 1),
            "ix_inbox_channel",
        ),
        (
            InboxView::Triage(Triage::Ignore),
            Box::new(|i| triage_of(i) == Some(Triage::Ignore)),
            "ix_inbox_triage",
        ),
        (
            InboxView::WaitingLongerThan(Duration::seconds(1000)),
            Box::new(|i| i % 3 != 0 && i <= 5000),
            "ix_inbox_waiting",
        ),
    ]
}

fn now() -> DateTime<Utc> {
    t0() + Duration::seconds(6000)
}

/// Every view, paged 250 at a time, equals the expectation.
async fn lists_are_right(s: &dyn Store, spec: &Spec) -> Vec<(InboxQuery, &'static str)> {
    let mut second_pages = Vec::new();
    for (view, keep, index) in views(spec) {
        let expected = spec.expected(keep);
        assert!(expected.len() > 250, "{view:?}: a view of several pages");
        let mut query = InboxQuery {
            tenant_id: spec.tenant,
            view: view.clone(),
            now: now(),
            after: None,
            limit: 250,
        };
        let mut got = Vec::new();
        loop {
            let page = s.list_inbox(query.clone()).await.unwrap();
            got.extend(page.items.iter().map(|i| i.subject));
            match page.next {
                Some(next) => {
                    if query.after.is_none() {
                        second_pages.push((
                            InboxQuery {
                                after: Some(next),
                                ..query.clone()
                            },
                            index,
                        ));
                    }
                    query.after = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(got.len(), expected.len(), "{view:?}");
        assert!(got == expected, "{view:?}: items or order differ");
    }
    second_pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_lists_over_10000_conversations() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let spec = fixture_via_api(store.as_ref()).await;
    people(Arc::clone(&store), &spec).await;
    lists_are_right(store.as_ref(), &spec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn postgres_lists_over_10000_conversations_read_their_indexes() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let url = postgres_test_url().await.unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", test.schema().unwrap())]);
    let raw = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let pg = PgStore::from_pool(raw.clone()).with_keys(nexiom_storage::conformance::test_keys());
    let spec = fixture_via_sql(&pg, &raw).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox_items")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(
        count,
        i64::try_from(N).unwrap(),
        "one item per conversation"
    );
    people(test.store(), &spec).await;
    sqlx::query("ANALYZE").execute(&raw).await.unwrap();
    let second_pages = lists_are_right(test.store().as_ref(), &spec).await;
    assert_eq!(second_pages.len(), 6);
    for (query, index) in second_pages {
        for q in [
            InboxQuery {
                after: None,
                ..query.clone()
            },
            query,
        ] {
            let plan = pg.explain_inbox(&q).await.unwrap();
            assert!(
                plan.contains(index) && !plan.contains("Seq Scan"),
                "{:?} does not read {index}:\n{plan}",
                q.view
            );
        }
    }
    raw.close().await;
    test.cleanup().await;
}
