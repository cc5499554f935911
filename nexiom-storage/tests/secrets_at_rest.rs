//! Secrets at rest on PostgreSQL: tokens and setting values are sealed before
//! they reach the database, bound to their row, and re-sealed by a key
//! rotation that never makes a read fail.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a failing test

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use nexiom_core::{
    ChannelId, ChannelStatus, Credentials, NewChannel, NewTenant, Platform, SecretString, TenantId,
};
use nexiom_storage::conformance::{TestStore, postgres_test_store, postgres_test_url};
use nexiom_storage::secrets::{KeyId, KeyProvider, Sealer, SealingKey, Slot, StaticKeys};
use nexiom_storage::{CredentialStore, PgStore, SettingsStore, StorageError, TenantStore};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

fn keys(id: &str, key: &SealingKey) -> StaticKeys {
    StaticKeys::new(KeyId::new(id).unwrap(), key.clone())
}

/// A migrated schema, and a raw pool on it (superuser, policies bypassed).
async fn schema() -> Option<(TestStore, PgConnectOptions, PgPool)> {
    let test = postgres_test_store().await?;
    let url = postgres_test_url().await?;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", test.schema().unwrap())]);
    let raw = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.clone())
        .await
        .unwrap();
    Some((test, options, raw))
}

fn store(raw: &PgPool, keys: StaticKeys) -> PgStore {
    PgStore::from_pool(raw.clone()).with_keys(Arc::new(keys))
}

fn creds(access: &str, refresh: &str) -> Credentials {
    Credentials {
        access_token: Some(SecretString::new(access)),
        refresh_token: Some(SecretString::new(refresh)),
        expires_at: None,
    }
}

fn new_channel(tenant: TenantId, account: &str, access: &str) -> NewChannel {
    NewChannel {
        tenant_id: tenant,
        platform: Platform::Facebook,
        external_account_id: account.into(),
        name: "Page".into(),
        credentials: creds(access, &format!("{access}-refresh")),
        created_at: t0(),
    }
}

async fn raw_tokens(raw: &PgPool, id: ChannelId) -> (String, String) {
    sqlx::query_as("SELECT access_token, refresh_token FROM channels WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_one(raw)
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn tokens_and_settings_never_reach_the_database_in_plain_text() {
    let Some((test, _, raw)) = schema().await else {
        return;
    };
    let s = store(&raw, keys("k1", &SealingKey::generate()));
    let tenant = s.create_tenant(NewTenant::new("Acme", t0())).await.unwrap();
    let token = format!("EAAG{}", Uuid::now_v7().simple());
    let channel = s
        .create_channel(new_channel(tenant.id, "page-1", &token))
        .await
        .unwrap();
    assert_eq!(
        channel.credentials.access_token.as_ref().unwrap().expose(),
        token
    );
    let (access, refresh) = raw_tokens(&raw, channel.id).await;
    for stored in [&access, &refresh] {
        assert!(stored.starts_with("nxenc:v1:k1:"), "{stored}");
        assert!(!stored.contains(&token[4..]), "token bytes in the column");
    }
    let newer = format!("EAAG{}", Uuid::now_v7().simple());
    s.update_channel_credentials(tenant.id, channel.id, creds(&newer, "r2"))
        .await
        .unwrap();
    let (access, _) = raw_tokens(&raw, channel.id).await;
    assert!(access.starts_with("nxenc:v1:k1:") && !access.contains(&newer[4..]));
    let read = s.get_channel(tenant.id, channel.id).await.unwrap();
    assert_eq!(read.credentials.access_token.unwrap().expose(), newer);
    assert_eq!(read.credentials.refresh_token.unwrap().expose(), "r2");
    let listed = s.list_channels(tenant.id).await.unwrap();
    assert_eq!(
        listed[0]
            .credentials
            .access_token
            .as_ref()
            .unwrap()
            .expose(),
        newer
    );
    let found = s
        .find_channel_by_account(&Platform::Facebook, "page-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.credentials.access_token.unwrap().expose(), newer);

    s.set_setting("OPENAI_API_KEY", SecretString::new("sk-live-123456"), t0())
        .await
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT value FROM app_settings WHERE key = $1")
        .bind("OPENAI_API_KEY")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(stored.starts_with("nxenc:v1:k1:") && !stored.contains("sk-live"));
    let setting = s.get_setting("OPENAI_API_KEY").await.unwrap().unwrap();
    assert_eq!(setting.value.expose(), "sk-live-123456");

    // Without keys, a secret is refused before anything is written.
    let keyless = PgStore::from_pool(raw.clone());
    let err = keyless
        .create_channel(new_channel(tenant.id, "page-2", "EAAGplain"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Secret { .. }), "{err}");
    let err = keyless
        .set_setting("X", SecretString::new("plain"), t0())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Secret { .. }), "{err}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM channels")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(count, 1);
    // And it cannot read a sealed token either (it says why).
    let err = keyless
        .get_channel(tenant.id, channel.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no encryption keys"), "{err}");
    raw.close().await;
    test.cleanup().await;
}

#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_sealed_value_moved_to_another_row_does_not_decrypt() {
    let Some((test, _, raw)) = schema().await else {
        return;
    };
    let s = store(&raw, keys("k1", &SealingKey::generate()));
    let a = s.create_tenant(NewTenant::new("A", t0())).await.unwrap();
    let b = s.create_tenant(NewTenant::new("B", t0())).await.unwrap();
    let ca = s
        .create_channel(new_channel(a.id, "pa", "EAAG-a"))
        .await
        .unwrap();
    let ca2 = s
        .create_channel(new_channel(a.id, "pa2", "EAAG-a2"))
        .await
        .unwrap();
    let cb = s
        .create_channel(new_channel(b.id, "pb", "EAAG-b"))
        .await
        .unwrap();
    let intact = s
        .create_channel(new_channel(a.id, "pa3", "EAAG-a3"))
        .await
        .unwrap();
    // Another tenant's row, another row of the same tenant, another column.
    for (target, column) in [
        (cb.id, "access_token"),
        (ca2.id, "access_token"),
        (ca.id, "refresh_token"),
    ] {
        sqlx::query(&format!(
            "UPDATE channels SET {column} = (SELECT access_token FROM channels WHERE id = $1) \
             WHERE id = $2"
        ))
        .bind(ca.id.as_uuid())
        .bind(target.as_uuid())
        .execute(&raw)
        .await
        .unwrap();
    }
    for (tenant, id) in [(b.id, cb.id), (a.id, ca2.id), (a.id, ca.id)] {
        let err = s.get_channel(tenant, id).await.unwrap_err();
        assert!(matches!(err, StorageError::Secret { .. }), "{err}");
        assert!(err.to_string().contains("does not decrypt"), "{err}");
    }
    // A batch read leaves out the channels that do not open and still
    // answers the others (the publish queue reads its batch's channels so).
    let read = s
        .get_channels(a.id, &[ca.id, ca2.id, intact.id])
        .await
        .unwrap();
    assert_eq!(read.len(), 1, "only the intact channel opens");
    assert_eq!(read[0].id, intact.id);
    assert_eq!(
        read[0].credentials.access_token.as_ref().unwrap().expose(),
        "EAAG-a3"
    );
    assert!(s.get_channels(b.id, &[cb.id]).await.unwrap().is_empty());
    // A webhook for the account still finds its tenant: the lookup that
    // routes events opens no token (the full read says why it cannot).
    assert!(
        s.find_channel_by_account(&Platform::Facebook, "pb")
            .await
            .is_err()
    );
    assert_eq!(
        s.find_channel_ref_by_account(&Platform::Facebook, "pb")
            .await
            .unwrap(),
        Some((b.id, cb.id))
    );
    // Reconnecting mends such a channel: the tokens it replaces are not
    // opened first.
    let mended = s
        .reconnect_channel(a.id, ca2.id, creds("EAAG-new", "new-refresh"), t0())
        .await
        .unwrap();
    assert_eq!(
        mended.credentials.access_token.unwrap().expose(),
        "EAAG-new"
    );
    let read = s.get_channel(a.id, ca2.id).await.unwrap();
    assert_eq!(read.credentials.access_token.unwrap().expose(), "EAAG-new");
    raw.close().await;
    test.cleanup().await;
}

/// One value that does not open (copied from another row) does not stop a
/// rotation: every other channel and setting is re-sealed with the new key,
/// and the report names the one left as it was, by column, tenant and row.
#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_value_that_does_not_open_is_named_and_the_rotation_goes_on() {
    let Some((test, _, raw)) = schema().await else {
        return;
    };
    let k1 = SealingKey::generate();
    let s = store(&raw, keys("k1", &k1));
    let a = s.create_tenant(NewTenant::new("A", t0())).await.unwrap();
    let mut channels = Vec::new();
    for i in 0..3 {
        channels.push(
            s.create_channel(new_channel(a.id, &format!("p{i}"), &format!("EAAG-{i}")))
                .await
                .unwrap(),
        );
    }
    s.set_setting("K", SecretString::new("v"), t0())
        .await
        .unwrap();
    // The first channel's token copied onto the second (ids are in
    // creation order, so the bad row comes before the third).
    sqlx::query(
        "UPDATE channels SET access_token = (SELECT access_token FROM channels WHERE id = $1) \
         WHERE id = $2",
    )
    .bind(channels[0].id.as_uuid())
    .bind(channels[1].id.as_uuid())
    .execute(&raw)
    .await
    .unwrap();
    let k2 = SealingKey::generate();
    let both = PgStore::from_pool(raw.clone()).with_keys(Arc::new(
        keys("k2", &k2).with_previous(KeyId::new("k1").unwrap(), k1.clone()),
    ));
    let report = both.rotate_keys(1).await.unwrap();
    assert_eq!(
        report.channels, 3,
        "the bad row's refresh token is re-sealed"
    );
    assert_eq!(report.settings, 1);
    assert_eq!(report.unreadable.len(), 1, "{:?}", report.unreadable);
    let bad = &report.unreadable[0];
    assert_eq!(bad.column, "channels.access_token");
    assert_eq!(bad.tenant, Some(a.id));
    assert_eq!(bad.row, channels[1].id.to_string());
    assert!(bad.to_string().contains("does not decrypt"), "{bad}");
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT access_token FROM channels WHERE access_token NOT LIKE 'nxenc:v1:k2:%' \
         UNION ALL SELECT value FROM app_settings WHERE value NOT LIKE 'nxenc:v1:k2:%'",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(left.len(), 1, "only the bad value is left under k1");
    for i in [0, 2] {
        let c = both.get_channel(a.id, channels[i].id).await.unwrap();
        assert_eq!(
            c.credentials.access_token.unwrap().expose(),
            format!("EAAG-{i}")
        );
    }
    // Reconnected, the channel rotates like the others.
    both.reconnect_channel(a.id, channels[1].id, creds("EAAG-1b", "r"), t0())
        .await
        .unwrap();
    let again = both.rotate_keys(1).await.unwrap();
    assert!(again.unreadable.is_empty(), "{:?}", again.unreadable);
    raw.close().await;
    test.cleanup().await;
}

#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn plain_text_rows_are_sealed_by_the_migration_step() {
    let Some((test, _, raw)) = schema().await else {
        return;
    };
    let key = SealingKey::generate();
    let s = store(&raw, keys("k1", &key));
    let tenant = s
        .create_tenant(NewTenant::new("Legacy", t0()))
        .await
        .unwrap();
    // Rows as a version without encryption wrote them.
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO channels (id, tenant_id, platform, external_account_id, name, \
             access_token, refresh_token, status, created_at) \
         VALUES ($1, $2, 'facebook', 'legacy', 'Old page', 'EAAG-legacy', NULL, 'active', $3)",
    )
    .bind(id)
    .bind(tenant.id.as_uuid())
    .bind(t0())
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query("INSERT INTO app_settings (key, value, updated_at) VALUES ('K', 'plain', $1)")
        .bind(t0())
        .execute(&raw)
        .await
        .unwrap();
    s.migrate().await.unwrap();
    let (access, refresh): (String, Option<String>) =
        sqlx::query_as("SELECT access_token, refresh_token FROM channels WHERE id = $1")
            .bind(id)
            .fetch_one(&raw)
            .await
            .unwrap();
    assert!(access.starts_with("nxenc:v1:k1:"), "{access}");
    assert_eq!(refresh, None);
    let value: String = sqlx::query_scalar("SELECT value FROM app_settings WHERE key = 'K'")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(value.starts_with("nxenc:v1:k1:"), "{value}");
    let channel = s.get_channel(tenant.id, ChannelId::from(id)).await.unwrap();
    assert_eq!(
        channel.credentials.access_token.unwrap().expose(),
        "EAAG-legacy"
    );
    assert_eq!(
        s.get_setting("K").await.unwrap().unwrap().value.expose(),
        "plain"
    );
    raw.close().await;
    test.cleanup().await;
}

/// 10,000 channels sealed with k1 are re-sealed with k2 while two readers
/// keep reading random channels and a writer keeps updating them: no read or
/// write fails, every value ends under k2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn rotation_reseals_10000_channels_while_reads_continue() {
    const CHANNELS: usize = 10_000;
    let Some((test, options, raw)) = schema().await else {
        return;
    };
    let k1 = SealingKey::generate();
    let k2 = SealingKey::generate();
    let old = store(&raw, keys("k1", &k1));
    let mut tenants = Vec::new();
    for i in 0..10 {
        tenants.push(
            old.create_tenant(NewTenant::new(format!("T{i}"), t0()))
                .await
                .unwrap()
                .id,
        );
    }
    // Bulk-load the channels, sealed as the store seals them.
    let sealer = Sealer::new(Arc::new(keys("k1", &k1)));
    let (mut ids, mut owners, mut accounts, mut access) = (vec![], vec![], vec![], vec![]);
    for i in 0..CHANNELS {
        let tenant = tenants[i % tenants.len()];
        let id = ChannelId::generate();
        let slot = Slot::tenant("channels.access_token", tenant, id);
        ids.push(id.as_uuid());
        owners.push(tenant.as_uuid());
        accounts.push(format!("acct-{i}"));
        access.push(sealer.seal(&slot, &format!("token-{i}")).unwrap());
    }
    sqlx::query(
        "INSERT INTO channels (id, tenant_id, platform, external_account_id, name, \
             access_token, status, created_at) \
         SELECT id, t, 'facebook', a, 'Page', tok, 'active', $5 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS u(id, t, a, tok)",
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&accounts)
    .bind(&access)
    .bind(t0())
    .execute(&raw)
    .await
    .unwrap();

    let both: Arc<dyn KeyProvider> =
        Arc::new(keys("k2", &k2).with_previous(KeyId::new("k1").unwrap(), k1.clone()));
    let rotating = PgStore::connect_with(options.clone(), 4)
        .await
        .unwrap()
        .with_keys(Arc::clone(&both));
    let reader = PgStore::connect_with(options, 4)
        .await
        .unwrap()
        .with_keys(both);
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..2 {
        let (reader, done, reads) = (reader.clone(), done.clone(), reads.clone());
        let (ids, tenants) = (ids.clone(), tenants.clone());
        readers.push(tokio::spawn(async move {
            let mut i = r * 7919;
            while !done.load(Ordering::Relaxed) {
                i = (i + 104_729) % CHANNELS;
                let channel = reader
                    .get_channel(tenants[i % tenants.len()], ChannelId::from(ids[i]))
                    .await
                    .unwrap_or_else(|e| panic!("read of channel {i} failed during rotation: {e}"));
                assert_eq!(
                    channel.credentials.access_token.unwrap().expose(),
                    format!("token-{i}")
                );
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // A writer keeps updating channels meanwhile: the rows it holds are
    // skipped by the first pass and must be re-sealed by the second.
    let writes = Arc::new(AtomicU64::new(0));
    {
        let (writer, done, writes) = (reader.clone(), done.clone(), writes.clone());
        let (ids, tenants) = (ids.clone(), tenants.clone());
        readers.push(tokio::spawn(async move {
            let mut i = 17;
            while !done.load(Ordering::Relaxed) {
                i = (i + 7_927) % CHANNELS;
                writer
                    .set_channel_status(
                        tenants[i % tenants.len()],
                        ChannelId::from(ids[i]),
                        ChannelStatus::Active,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("write of channel {i} failed during rotation: {e}"));
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let report = rotating.rotate_keys(250).await.unwrap();
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(report.channels, CHANNELS as u64);
    assert!(report.batches >= (CHANNELS / 250) as u64);
    assert!(reads.load(Ordering::Relaxed) > 0, "the readers never read");
    assert!(writes.load(Ordering::Relaxed) > 0, "the writer never wrote");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM channels WHERE access_token NOT LIKE 'nxenc:v1:k2:%'",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(left, 0);
    // A second rotation has nothing to do; k1 can be retired.
    assert_eq!(rotating.rotate_keys(250).await.unwrap().channels, 0);
    let only_k2 = store(&raw, keys("k2", &k2));
    let c = only_k2
        .get_channel(tenants[0], ChannelId::from(ids[0]))
        .await
        .unwrap();
    assert_eq!(c.credentials.access_token.unwrap().expose(), "token-0");
    let err = old
        .get_channel(tenants[0], ChannelId::from(ids[0]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key k2"), "{err}");
    raw.close().await;
    test.cleanup().await;
}
