//! The inbox refresh under concurrent writers on PostgreSQL: a statement
//! that writes a message recomputes its conversation's inbox item after
//! locking it; a second writer of the same conversation waits for that lock,
//! and its refresh must then see the first writer's committed message, or
//! it would overwrite the item with a state that misses it.
//!
//! Each refresh statement runs in its own snapshot (a volatile function in
//! READ COMMITTED takes one per statement, in SQL as in PL/pgSQL), so the
//! statements after the lock see what the lock waited for. These tests pin
//! that: a refresh computed from a snapshot taken before the lock would
//! leave the wrong `waiting_since` or `last_inbound_at` below.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a failing test

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use nexiom_storage::conformance::{postgres_test_store, postgres_test_url};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, minute, 0).unwrap()
}

#[derive(Clone, Copy)]
struct Conversation {
    tenant: Uuid,
    channel: Uuid,
    id: Uuid,
}

/// A tenant, a channel, a contact and one open conversation, written as the
/// schema's owner (policies bypassed).
async fn conversation(raw: &PgPool) -> Conversation {
    let (tenant, channel, contact, id) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let mut tx = raw.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO tenants (id, name, time_zone, created_at) VALUES ($1, 'T', 'UTC', $2)",
    )
    .bind(tenant)
    .bind(at(0))
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO channels (id, tenant_id, platform, external_account_id, name, status, \
         created_at) VALUES ($1, $2, 'whatsapp', $3, 'C', 'active', $4)",
    )
    .bind(channel)
    .bind(tenant)
    .bind(format!("acct-{channel}"))
    .bind(at(0))
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO contacts (id, tenant_id, created_at) VALUES ($1, $2, $3)")
        .bind(contact)
        .bind(tenant)
        .bind(at(0))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, created_at) \
         VALUES ($1, $2, $3, $4, 'open', $5)",
    )
    .bind(id)
    .bind(tenant)
    .bind(contact)
    .bind(channel)
    .bind(at(0))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Conversation {
        tenant,
        channel,
        id,
    }
}

/// Inserts one message (its statement trigger refreshes the item).
async fn message(conn: &mut PgConnection, c: &Conversation, direction: &str, minute: u32) {
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
         has_media, created_at, stored_at) VALUES ($1, $2, $3, $4, $5, 'x', false, $6, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(c.tenant)
    .bind(c.id)
    .bind(c.channel)
    .bind(direction)
    .bind(at(minute))
    .execute(conn)
    .await
    .unwrap();
}

/// `(waiting_since, last_inbound_at, last_activity_at)` of the item.
type Item = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, DateTime<Utc>);

async fn item(raw: &PgPool, c: &Conversation) -> Item {
    sqlx::query_as(
        "SELECT waiting_since, last_inbound_at, last_activity_at FROM inbox_items \
         WHERE subject_id = $1",
    )
    .bind(c.id)
    .fetch_one(raw)
    .await
    .unwrap()
}

/// Waits until the backend `pid` waits for a lock.
async fn until_blocked(raw: &PgPool, pid: i32) {
    for _ in 0..500 {
        let waiting: bool = sqlx::query_scalar(
            "SELECT COALESCE(bool_or(wait_event_type = 'Lock'), false) \
             FROM pg_stat_activity WHERE pid = $1",
        )
        .bind(pid)
        .fetch_one(raw)
        .await
        .unwrap();
        if waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the second writer never waited for the item lock");
}

/// Writer A inserts `first` in an open transaction (its refresh holds the
/// item's lock); writer B inserts `second` and waits for that lock; A
/// commits; then B's statement finishes. Returns the item afterwards.
async fn race(first: (&str, u32), second: (&str, u32), setup: &[(&str, u32)]) -> Option<Item> {
    let test = postgres_test_store().await?;
    let url = postgres_test_url().await?;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", test.schema().unwrap())]);
    let raw = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .unwrap();
    let c = conversation(&raw).await;
    let mut setup_conn = raw.acquire().await.unwrap();
    for (direction, minute) in setup {
        message(&mut setup_conn, &c, direction, *minute).await;
    }
    drop(setup_conn);

    let mut a = PgConnection::connect_with(&options).await.unwrap();
    let mut b = PgConnection::connect_with(&options).await.unwrap();
    let b_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut b)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut a).await.unwrap();
    message(&mut a, &c, first.0, first.1).await;
    let second_writer = {
        let (direction, minute) = (second.0.to_owned(), second.1);
        tokio::spawn(async move {
            message(&mut b, &c, &direction, minute).await;
            b
        })
    };
    until_blocked(&raw, b_pid).await;
    sqlx::query("COMMIT").execute(&mut a).await.unwrap();
    let _b = second_writer.await.unwrap();
    let got = item(&raw, &c).await;
    raw.close().await;
    test.cleanup().await;
    Some(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_waiting_writer_sees_the_earlier_writers_later_message() {
    // A writes 10:10 and holds; B writes 10:05 behind it. B's refresh must
    // count A's message: the latest inbound is 10:10, not B's 10:05.
    let Some((waiting, last_in, activity)) = race(("inbound", 10), ("inbound", 5), &[]).await
    else {
        return;
    };
    assert_eq!(waiting, Some(at(5)));
    assert_eq!(last_in, Some(at(10)));
    assert_eq!(activity, at(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_waiting_writer_sees_the_reply_that_answered_the_customer() {
    // The customer wrote at 10:01; an agent's reply at 10:20 (A) commits
    // while a customer message of 10:15 (B) waits. Everything inbound is
    // answered: nothing waits. A refresh that missed A's reply would say
    // the customer has waited since 10:01.
    let Some((waiting, last_in, activity)) =
        race(("outbound", 20), ("inbound", 15), &[("inbound", 1)]).await
    else {
        return;
    };
    assert_eq!(waiting, None, "the 10:20 reply answered every message");
    assert_eq!(last_in, Some(at(15)));
    assert_eq!(activity, at(20));
}
