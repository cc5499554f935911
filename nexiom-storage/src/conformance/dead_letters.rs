//! Conformance tests of dead letters (`DeadLetterStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;

use super::fixtures::world;
use crate::{StorageError, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// Dead letters are stored once per `(platform, key)` (a redelivery adds no
/// row), with or without a tenant, listed newest first per tenant or for all,
/// a key another tenant's letter holds is a conflict (that letter never
/// handed over), and bad input (empty key, over-long excerpt, unknown
/// tenant, another tenant's channel) is refused without a write.
pub async fn dead_letters_are_stored_once_and_listed(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::WhatsApp, "pn-dead-a").await;
    let b = world(s, "Beta", Platform::WhatsApp, "pn-dead-b").await;

    // An event with a NUL and invalid UTF-8: stored, its excerpt made storable.
    let raw = b"{\"id\":\"x\",\"text\":\"a\x00b\"}\xff";
    let first = NewDeadLetter::new(Platform::WhatsApp, "k1", raw, "text: NUL", t0())
        .for_channel(a.tenant.id, a.channel.id);
    let stored = s.insert_dead_letter(first.clone()).await.unwrap();
    assert!(stored.created);
    assert_eq!(stored.record.tenant_id, Some(a.tenant.id));
    assert_eq!(stored.record.channel_id, Some(a.channel.id));
    assert!(!stored.record.excerpt.contains('\0'));
    assert_eq!(stored.record.reason, "text: NUL");

    // A redelivery (same key, later): the stored row, unchanged.
    let again = s
        .insert_dead_letter(NewDeadLetter {
            received_at: t0() + Duration::minutes(5),
            reason: "another reason".into(),
            ..first.clone()
        })
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record, stored.record);

    // The same key on another platform is another dead letter; no tenant is fine.
    let other_platform = s
        .insert_dead_letter(NewDeadLetter::new(
            Platform::Instagram,
            "k1",
            b"not json",
            "not a payload",
            t0() + Duration::minutes(1),
        ))
        .await
        .unwrap();
    assert!(other_platform.created);
    assert_eq!(other_platform.record.tenant_id, None);
    let of_b = s
        .insert_dead_letter(
            NewDeadLetter::new(
                Platform::WhatsApp,
                "k2",
                b"{}",
                "r",
                t0() + Duration::minutes(2),
            )
            .for_channel(b.tenant.id, b.channel.id),
        )
        .await
        .unwrap()
        .record;

    // B naming a key A's letter holds: a conflict, A's letter not handed
    // over; a caller with no tenant (the receiver's) is given it.
    match s
        .insert_dead_letter(NewDeadLetter {
            tenant_id: Some(b.tenant.id),
            channel_id: Some(b.channel.id),
            ..first.clone()
        })
        .await
    {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    let unknown_account = s
        .insert_dead_letter(NewDeadLetter {
            tenant_id: None,
            channel_id: None,
            ..first.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        (unknown_account.created, unknown_account.record.id),
        (false, stored.record.id)
    );

    // Refused: nothing written.
    let bad_inputs = [
        NewDeadLetter {
            key: String::new(),
            ..first.clone()
        },
        NewDeadLetter {
            key: "k\u{7}".into(),
            ..first.clone()
        },
        NewDeadLetter {
            excerpt: "a".repeat(MAX_DEAD_LETTER_EXCERPT + 1),
            key: "k3".into(),
            ..first.clone()
        },
        NewDeadLetter {
            reason: "r\0".into(),
            key: "k4".into(),
            ..first.clone()
        },
    ];
    for bad in bad_inputs {
        assert!(matches!(
            s.insert_dead_letter(bad).await,
            Err(StorageError::Invalid(_))
        ));
    }
    let unknown_tenant = NewDeadLetter::new(Platform::WhatsApp, "k5", b"{}", "r", t0())
        .for_channel(TenantId::generate(), a.channel.id);
    assert!(matches!(
        s.insert_dead_letter(unknown_tenant).await,
        Err(StorageError::UnknownReference {
            entity: "tenant",
            ..
        })
    ));
    let foreign_channel = NewDeadLetter::new(Platform::WhatsApp, "k6", b"{}", "r", t0())
        .for_channel(a.tenant.id, b.channel.id);
    assert!(matches!(
        s.insert_dead_letter(foreign_channel).await,
        Err(StorageError::UnknownReference {
            entity: "channel",
            ..
        })
    ));

    // Listing: newest first; per tenant or all.
    let all = s.list_dead_letters(None, 10).await.unwrap();
    assert_eq!(
        all,
        vec![
            of_b.clone(),
            other_platform.record.clone(),
            stored.record.clone()
        ]
    );
    assert_eq!(s.list_dead_letters(None, 2).await.unwrap().len(), 2);
    assert_eq!(
        s.list_dead_letters(Some(a.tenant.id), 10).await.unwrap(),
        vec![stored.record.clone()]
    );
    assert_eq!(
        s.list_dead_letters(Some(b.tenant.id), 10).await.unwrap(),
        vec![of_b]
    );
    assert!(s.list_dead_letters(None, 0).await.unwrap().is_empty());
    assert!(
        s.list_dead_letters(Some(TenantId::generate()), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Many dead letters at once (a webhook body's): each stored once per
/// `(platform, key)` (a key given twice, or stored before, adds no row),
/// with or without a tenant, the count of new ones returned; one bad letter
/// or one channel that is not its tenant's refuses the call before anything
/// is written.
pub async fn dead_letters_are_stored_in_batches(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::WhatsApp, "pn-batch-a").await;
    let b = world(s, "Beta", Platform::WhatsApp, "pn-batch-b").await;
    let letter = |key: &str, minute: i64| {
        NewDeadLetter::new(
            Platform::WhatsApp,
            key,
            format!("{{\"id\":\"{key}\"}}").as_bytes(),
            "r",
            t0() + Duration::minutes(minute),
        )
    };
    let earlier = s.insert_dead_letter(letter("b0", 0)).await.unwrap().record;

    let batch = vec![
        letter("b1", 1),
        letter("b2", 2).for_channel(a.tenant.id, a.channel.id),
        letter("b3", 3).for_channel(b.tenant.id, b.channel.id),
        // Given twice in the call, and stored before: one row each.
        letter("b1", 4).for_channel(a.tenant.id, a.channel.id),
        letter("b0", 5),
        NewDeadLetter::new(
            Platform::Instagram,
            "b1",
            b"{}",
            "r",
            t0() + Duration::minutes(6),
        ),
    ];
    assert_eq!(s.insert_dead_letters(&batch).await.unwrap(), 4);
    // Again (a redelivery of the body): nothing new.
    assert_eq!(s.insert_dead_letters(&batch).await.unwrap(), 0);
    assert_eq!(s.insert_dead_letters(&[]).await.unwrap(), 0);

    let all = s.list_dead_letters(None, 10).await.unwrap();
    let keys: Vec<(&str, &str, Option<TenantId>)> = all
        .iter()
        .map(|d| (d.platform.as_str(), d.key.as_str(), d.tenant_id))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("instagram", "b1", None),
            ("whatsapp", "b3", Some(b.tenant.id)),
            ("whatsapp", "b2", Some(a.tenant.id)),
            ("whatsapp", "b1", None),
            ("whatsapp", "b0", None),
        ]
    );
    assert_eq!(all.last(), Some(&earlier), "the stored letter unchanged");
    let b2 = &all[2];
    assert_eq!(b2.channel_id, Some(a.channel.id));
    assert_eq!(b2.received_at, t0() + Duration::minutes(2));
    assert_eq!(b2.excerpt, "{\"id\":\"b2\"}");
    assert_eq!(
        s.list_dead_letters(Some(b.tenant.id), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A body of B's naming a key A's letter holds (an account moved between
    // tenants, a body delivered again): stored already, not a failure of the
    // body's other letters.
    let moved = [
        letter("b2", 7).for_channel(b.tenant.id, b.channel.id),
        letter("b4", 7).for_channel(b.tenant.id, b.channel.id),
    ];
    assert_eq!(s.insert_dead_letters(&moved).await.unwrap(), 1);
    assert_eq!(
        s.insert_dead_letters(&[letter("b4", 8)]).await.unwrap(),
        0,
        "the key is taken"
    );
    let all_before = s.list_dead_letters(None, 10).await.unwrap();
    assert!(all_before.iter().any(|d| d.key == "b4"));
    assert_eq!(
        all_before
            .iter()
            .find(|d| d.key == "b2")
            .and_then(|d| d.tenant_id),
        Some(a.tenant.id)
    );

    // One bad letter: the call is refused, nothing written.
    let refused = s
        .insert_dead_letters(&[
            letter("c1", 7),
            NewDeadLetter {
                key: String::new(),
                ..letter("c2", 8)
            },
        ])
        .await;
    assert!(matches!(refused, Err(StorageError::Invalid(_))));
    // A channel that is not the tenant's: the call refused whole, the other
    // tenants' letters and those without a tenant not written either.
    let foreign = s
        .insert_dead_letters(&[
            letter("c3", 9).for_channel(a.tenant.id, a.channel.id),
            letter("c4", 10).for_channel(b.tenant.id, b.channel.id),
            letter("c5", 11),
            letter("c6", 12).for_channel(a.tenant.id, b.channel.id),
        ])
        .await;
    assert!(matches!(
        foreign,
        Err(StorageError::UnknownReference {
            entity: "channel",
            ..
        })
    ));
    assert_eq!(s.list_dead_letters(None, 10).await.unwrap().len(), 6);

    // A key given twice: the later copy is dropped whatever it names, even
    // a channel that is not its tenant's.
    let twice = s
        .insert_dead_letters(&[
            letter("d1", 13),
            letter("d1", 14).for_channel(a.tenant.id, b.channel.id),
        ])
        .await
        .unwrap();
    assert_eq!(twice, 1);
    let newest = s.list_dead_letters(None, 1).await.unwrap();
    assert_eq!(newest[0].key, "d1");
    assert_eq!(newest[0].tenant_id, None);
}
