//! The baselines: the seed's per-event loop in PL/pgSQL, the floor (the
//! same rows inserted with `UNNEST`, nothing looked up), and the lean paths
//! (the floor plus the router's other steps, as one bare statement: see
//! `lean.rs`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::lean::Lean;
use crate::{Shape, World};

/// A time-ordered UUID (version 7 layout) in SQL, so the loop's keys land
/// at the right end of the indexes as the store's `Uuid::now_v7` do.
const UUID7: &str = "CREATE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ \
     SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING \
         substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) \
         FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid $$";

/// The seed's algorithm, one event at a time, server-side.
const SEED_LOOP: &str = r"
CREATE FUNCTION bench_route_seed(p_limit integer, p_at timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    e record;
    v_contact uuid;
    v_conv uuid;
    v_msg uuid;
    n integer := 0;
BEGIN
    FOR e IN
        SELECT * FROM webhook_events
        WHERE routed_at IS NULL
        ORDER BY received_at, id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        n := n + 1;
        v_conv := NULL;
        IF e.kind = 'message' AND e.sender_id IS NOT NULL THEN
            SELECT contact_id INTO v_contact FROM contact_channels
            WHERE tenant_id = e.tenant_id AND platform = e.platform
                AND external_handle = e.sender_id;
            IF NOT FOUND THEN
                v_contact := bench_uuid7();
                INSERT INTO contacts (id, tenant_id, display_name, created_at)
                VALUES (v_contact, e.tenant_id, e.sender_name, p_at);
                INSERT INTO contact_channels (id, tenant_id, contact_id, platform,
                    external_handle, created_at)
                VALUES (bench_uuid7(), e.tenant_id, v_contact, e.platform, e.sender_id, p_at);
            END IF;
            SELECT id INTO v_conv FROM conversations
            WHERE contact_id = v_contact AND channel_id = e.channel_id AND status = 'open';
            IF NOT FOUND THEN
                v_conv := bench_uuid7();
                INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status,
                    last_message_at, created_at)
                VALUES (v_conv, e.tenant_id, v_contact, e.channel_id, 'open', NULL, p_at);
            END IF;
            INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text,
                has_media, provider_message_id, created_at, stored_at)
            VALUES (bench_uuid7(), e.tenant_id, v_conv, e.channel_id, 'inbound',
                COALESCE(e.text, ''), e.has_media, e.event_id, e.occurred_at, p_at)
            ON CONFLICT DO NOTHING
            RETURNING id INTO v_msg;
            IF v_msg IS NOT NULL THEN
                UPDATE conversations
                SET last_message_at = GREATEST(last_message_at, e.occurred_at)
                WHERE id = v_conv;
            ELSE
                SELECT conversation_id INTO v_conv FROM messages
                WHERE channel_id = e.channel_id AND provider_message_id = e.event_id;
            END IF;
        END IF;
        UPDATE webhook_events SET routed_at = p_at, conversation_id = v_conv WHERE id = e.id;
    END LOOP;
    RETURN n;
END $$";

/// The seed's loop, one call (one transaction) per batch: (events, seconds).
pub async fn run_plpgsql(world: &World, shape: Shape) -> (u64, f64) {
    let pool = world.store.pool();
    sqlx::query(UUID7)
        .execute(pool)
        .await
        .expect("install uuid7");
    sqlx::query(SEED_LOOP)
        .execute(pool)
        .await
        .expect("install the loop");
    let batch = i32::try_from(shape.batch).expect("BATCH fits an integer");
    let start = Instant::now();
    let mut routed = 0;
    loop {
        let n: i32 = sqlx::query_scalar("SELECT bench_route_seed($1, $2)")
            .bind(batch)
            .bind(world.at)
            .fetch_one(pool)
            .await
            .expect("seed loop");
        if n == 0 {
            break;
        }
        routed += u64::try_from(n).unwrap();
    }
    (routed, start.elapsed().as_secs_f64())
}

/// The rows one batch creates.
#[derive(Default)]
struct BatchRows {
    contacts: Vec<Uuid>,
    names: Vec<String>,
    handles: Vec<Uuid>,
    handle_contacts: Vec<Uuid>,
    handle_ids: Vec<String>,
    conversations: Vec<Uuid>,
    conversation_contacts: Vec<Uuid>,
    conversation_last: Vec<DateTime<Utc>>,
    messages: Vec<Uuid>,
    message_conversations: Vec<Uuid>,
    texts: Vec<String>,
    media: Vec<bool>,
    provider_ids: Vec<String>,
    created: Vec<DateTime<Utc>>,
}

type EventRow = (String, String, String, String, bool, DateTime<Utc>);

/// The floor: the rows routing creates, computed beforehand (untimed), then
/// inserted batch by batch, one transaction each (timed): (events, seconds).
/// With `lean`, each transaction first runs that lean path's statement
/// ([`Lean::statement`]).
pub async fn run_unnest(world: &World, shape: Shape, lean: Option<Lean>) -> (u64, f64) {
    let pool = world.store.pool();
    if let Some(lean) = lean {
        lean.prepare(pool).await;
    }
    let known: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT cc.external_handle, c.id FROM contact_channels cc \
         JOIN conversations c ON c.contact_id = cc.contact_id AND c.status = 'open'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut conversation_of: HashMap<String, Uuid> = known.into_iter().collect();
    let stored: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT provider_message_id FROM messages")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT event_id, sender_id, sender_name, COALESCE(text, ''), has_media, occurred_at \
         FROM webhook_events ORDER BY received_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut batches = Vec::new();
    for chunk in events.chunks(shape.batch as usize) {
        let mut rows = BatchRows::default();
        let mut opened: HashMap<Uuid, usize> = HashMap::new();
        for (event_id, sender, name, text, media, occurred_at) in chunk {
            if stored.contains(event_id) {
                continue;
            }
            let conversation = match conversation_of.get(sender) {
                Some(c) => *c,
                None => {
                    let (contact, conversation) = (Uuid::now_v7(), Uuid::now_v7());
                    rows.contacts.push(contact);
                    rows.names.push(name.clone());
                    rows.handles.push(Uuid::now_v7());
                    rows.handle_contacts.push(contact);
                    rows.handle_ids.push(sender.clone());
                    rows.conversations.push(conversation);
                    rows.conversation_contacts.push(contact);
                    rows.conversation_last.push(*occurred_at);
                    opened.insert(conversation, rows.conversations.len() - 1);
                    conversation_of.insert(sender.clone(), conversation);
                    conversation
                }
            };
            if let Some(&i) = opened.get(&conversation) {
                rows.conversation_last[i] = rows.conversation_last[i].max(*occurred_at);
            }
            rows.messages.push(Uuid::now_v7());
            rows.message_conversations.push(conversation);
            rows.texts.push(text.clone());
            rows.media.push(*media);
            rows.provider_ids.push(event_id.clone());
            rows.created.push(*occurred_at);
        }
        batches.push(rows);
    }
    let (tenant, channel, at) = (world.tenant.as_uuid(), world.channel.as_uuid(), world.at);
    let lean_sql = lean.map(Lean::statement);
    let start = Instant::now();
    let mut marked = 0;
    for rows in &batches {
        let mut tx = pool.begin().await.unwrap();
        if let Some(lean) = &lean_sql {
            let n: i64 = sqlx::query_scalar(lean)
                .bind(i64::from(shape.batch))
                .bind(at)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            marked += n;
        }
        if !rows.contacts.is_empty() {
            sqlx::query(
                "INSERT INTO contacts (id, tenant_id, display_name, created_at) \
                 SELECT u.id, $1, u.name, $2 FROM UNNEST($3::uuid[], $4::text[]) AS u(id, name)",
            )
            .bind(tenant)
            .bind(at)
            .bind(&rows.contacts)
            .bind(&rows.names)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO contact_channels (id, tenant_id, contact_id, platform, \
                     external_handle, created_at) \
                 SELECT u.id, $1, u.contact_id, 'whatsapp', u.handle, $2 \
                 FROM UNNEST($3::uuid[], $4::uuid[], $5::text[]) AS u(id, contact_id, handle)",
            )
            .bind(tenant)
            .bind(at)
            .bind(&rows.handles)
            .bind(&rows.handle_contacts)
            .bind(&rows.handle_ids)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, \
                     last_message_at, created_at) \
                 SELECT u.id, $1, u.contact_id, $2, 'open', u.last_at, $3 \
                 FROM UNNEST($4::uuid[], $5::uuid[], $6::timestamptz[]) \
                     AS u(id, contact_id, last_at)",
            )
            .bind(tenant)
            .bind(channel)
            .bind(at)
            .bind(&rows.conversations)
            .bind(&rows.conversation_contacts)
            .bind(&rows.conversation_last)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        if !rows.messages.is_empty() {
            sqlx::query(
                "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, \
                     text, has_media, provider_message_id, in_reply_to, triage, confidence, \
                     ai_decision_id, delivery_status, created_at, stored_at) \
                 SELECT u.id, $1, u.conversation_id, $2, 'inbound', u.text, u.has_media, u.pid, \
                     NULL, NULL, NULL, NULL, NULL, u.created_at, $3 \
                 FROM UNNEST($4::uuid[], $5::uuid[], $6::text[], $7::bool[], $8::text[], \
                     $9::timestamptz[]) AS u(id, conversation_id, text, has_media, pid, created_at)",
            )
            .bind(tenant)
            .bind(channel)
            .bind(at)
            .bind(&rows.messages)
            .bind(&rows.message_conversations)
            .bind(&rows.texts)
            .bind(&rows.media)
            .bind(&rows.provider_ids)
            .bind(&rows.created)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    if lean.is_some() {
        assert_eq!(
            marked,
            i64::try_from(events.len()).unwrap(),
            "lean: every event marked"
        );
    }
    (events.len() as u64, elapsed)
}
