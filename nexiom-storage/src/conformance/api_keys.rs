//! Conformance tests of API keys (`ApiKeyStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;

use crate::{StorageError, Store};

/// Whole seconds, so both backends store the times exactly.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

async fn tenant(s: &dyn Store, name: &str) -> Tenant {
    s.create_tenant(NewTenant::new(name, t0())).await.unwrap()
}

async fn issue(s: &dyn Store, tenant: TenantId, name: &str, at: DateTime<Utc>) -> IssuedApiKey {
    s.create_api_key(NewApiKey::new(tenant, name, at))
        .await
        .unwrap()
}

/// The token's random part after the characters the prefix shows: what must
/// never appear anywhere but in the issued token.
fn hidden_part(issued: &IssuedApiKey) -> &str {
    &issued.secret.expose()[45..]
}

/// `token` with its character at byte `at` replaced by another base64url one.
fn changed_at(token: &str, at: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A key is issued once with its token (`nxk_`, the tenant, `_`, 43 random
/// characters); lists show its name, prefix and times, never the token or a
/// hash, oldest first and per tenant; a bad name or an unknown tenant is
/// refused without a write.
pub async fn api_keys_are_issued_once_and_listed_by_prefix(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = tenant(s, "Acme").await;
    let b = tenant(s, "Beta").await;

    let first = issue(s, a.id, "ci", t0()).await;
    let second = issue(s, a.id, "billing", t0() + Duration::minutes(1)).await;
    let of_b = issue(s, b.id, "ci", t0()).await;

    let token = first.secret.expose();
    assert_eq!(token.len(), API_KEY_TOKEN_LEN);
    assert!(token.starts_with(&format!("{API_KEY_SCHEME}{}_", a.id.as_uuid().simple())));
    assert!(
        token[37..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    assert_eq!(first.key.tenant_id, a.id);
    assert_eq!(first.key.name, "ci");
    assert_eq!(first.key.prefix, format!("nxk_{}", &token[37..45]));
    assert_eq!(first.key.created_at, t0());
    assert_eq!(first.key.revoked_at, None);
    assert_eq!(first.key.last_used_at, None);
    assert_ne!(first.secret, second.secret);
    assert!(!format!("{first:?}").contains(hidden_part(&first)));

    let listed = s.list_api_keys(a.id).await.unwrap();
    assert_eq!(listed, vec![first.key.clone(), second.key.clone()]);
    let shown = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
    for issued in [&first, &second] {
        assert!(!shown.contains(issued.secret.expose()));
        assert!(!shown.contains(hidden_part(issued)));
    }
    assert_eq!(s.list_api_keys(b.id).await.unwrap(), vec![of_b.key]);
    assert!(
        s.list_api_keys(TenantId::generate())
            .await
            .unwrap()
            .is_empty()
    );

    for bad in ["", "  ", "line\nbreak", &"n".repeat(256)] {
        let refused = s.create_api_key(NewApiKey::new(a.id, bad, t0())).await;
        assert!(
            matches!(refused, Err(StorageError::Invalid(_))),
            "{bad:?}: {refused:?}"
        );
    }
    let unknown = TenantId::generate();
    let refused = s.create_api_key(NewApiKey::new(unknown, "ci", t0())).await;
    assert!(
        matches!(
            &refused,
            Err(StorageError::UnknownReference { entity: "tenant", id }) if *id == unknown.to_string()
        ),
        "{refused:?}"
    );
    assert_eq!(s.list_api_keys(a.id).await.unwrap().len(), 2);
    assert!(s.list_api_keys(unknown).await.unwrap().is_empty());
}

/// Only the exact token of an unrevoked key verifies; every other input is
/// `Ok(None)`, whatever its shape: a changed character, a truncated or
/// lengthened token, the tenant swapped for another, garbage.
pub async fn api_keys_verify_only_the_exact_token(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = tenant(s, "Acme").await;
    let b = tenant(s, "Beta").await;
    let first = issue(s, a.id, "ci", t0()).await;
    let second = issue(s, a.id, "billing", t0()).await;
    let of_b = issue(s, b.id, "ci", t0()).await;
    let at = t0() + Duration::hours(1);

    // Two keys of one tenant, and another tenant's key, each verify as itself.
    for issued in [&first, &second, &of_b] {
        let found = s
            .verify_api_key(issued.secret.expose(), at)
            .await
            .unwrap()
            .expect("the exact token verifies");
        assert_eq!(
            found,
            ApiKey {
                last_used_at: Some(at),
                ..issued.key.clone()
            }
        );
    }

    let token = first.secret.expose();
    let a_hex = a.id.as_uuid().simple().to_string();
    let b_hex = b.id.as_uuid().simple().to_string();
    let refused = [
        changed_at(token, token.len() - 1),
        changed_at(token, 40),
        token[..token.len() - 1].to_owned(),
        token[..45].to_owned(),
        format!("{token}A"),
        format!(" {token}"),
        token.replacen(&a_hex, &b_hex, 1),
        token.replacen(
            &a_hex,
            &TenantId::generate().as_uuid().simple().to_string(),
            1,
        ),
        token.replacen(&a_hex, &a_hex.to_uppercase(), 1),
        token.replacen(&a_hex, &a.id.to_string(), 1),
        token.replacen("nxk_", "NXK_", 1),
        format!("{}_{}", &token[..36], &of_b.secret.expose()[37..]),
        format!("{}{}", &token[..76], "é=="),
        first.key.prefix.clone(),
        String::new(),
        "nxk_".to_owned(),
        "nxk__".to_owned(),
        "Bearer nxk_".to_owned(),
        "\0".repeat(API_KEY_TOKEN_LEN),
        "é".repeat(API_KEY_TOKEN_LEN / 2),
        "🔑".repeat(API_KEY_TOKEN_LEN),
        "x".repeat(1 << 20),
        format!("nxk_{}_{}", "0".repeat(32), "A".repeat(43)),
    ];
    let later = at + Duration::hours(1);
    for candidate in &refused {
        let found = s.verify_api_key(candidate, later).await;
        assert!(matches!(found, Ok(None)), "{candidate:.100}: {found:?}");
    }
    // Nothing refused was recorded as a use, not even a near miss.
    let listed = s.list_api_keys(a.id).await.unwrap();
    assert!(listed.iter().all(|k| k.last_used_at == Some(at)));
}

/// Revoking is idempotent (the first `revoked_at` stays) and scoped to the
/// tenant (another tenant's key, or an unknown id, is `NotFound` and stays
/// valid); a revoked key never verifies, the tenant's other keys still do.
pub async fn api_key_revocation_is_idempotent_and_tenant_scoped(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = tenant(s, "Acme").await;
    let b = tenant(s, "Beta").await;
    let first = issue(s, a.id, "ci", t0()).await;
    let second = issue(s, a.id, "billing", t0()).await;
    let revoke_at = t0() + Duration::hours(1);

    for (owner, id) in [(b.id, first.key.id), (a.id, ApiKeyId::generate())] {
        let refused = s.revoke_api_key(owner, id, revoke_at).await;
        assert!(
            matches!(
                refused,
                Err(StorageError::NotFound {
                    entity: "api_key",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    assert!(
        s.verify_api_key(first.secret.expose(), revoke_at)
            .await
            .unwrap()
            .is_some()
    );

    let revoked = s
        .revoke_api_key(a.id, first.key.id, revoke_at)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(revoke_at));
    assert!(revoked.is_revoked());
    let again = s
        .revoke_api_key(a.id, first.key.id, revoke_at + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again, revoked);

    let later = revoke_at + Duration::minutes(5);
    assert_eq!(
        s.verify_api_key(first.secret.expose(), later)
            .await
            .unwrap(),
        None
    );
    assert!(
        s.verify_api_key(second.secret.expose(), later)
            .await
            .unwrap()
            .is_some()
    );
    let listed = s.list_api_keys(a.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], revoked, "still listed, with its revocation");
    assert_eq!(listed[1].revoked_at, None);
}

/// A verification records `last_used_at` when it was unset or at least a
/// minute older, never more often and never backwards.
pub async fn api_key_last_use_is_recorded_once_a_minute(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = tenant(s, "Acme").await;
    let issued = issue(s, a.id, "ci", t0()).await;
    let token = issued.secret.expose();
    let used = |at| async move {
        s.verify_api_key(token, at)
            .await
            .unwrap()
            .expect("verifies")
            .last_used_at
    };
    let t1 = t0() + Duration::hours(1);
    assert_eq!(used(t1).await, Some(t1));
    assert_eq!(used(t1 + Duration::seconds(59)).await, Some(t1));
    assert_eq!(used(t1 - Duration::minutes(10)).await, Some(t1));
    let t2 = t1 + Duration::seconds(60);
    assert_eq!(used(t2).await, Some(t2));
    assert_eq!(
        s.list_api_keys(a.id).await.unwrap()[0].last_used_at,
        Some(t2)
    );
}
