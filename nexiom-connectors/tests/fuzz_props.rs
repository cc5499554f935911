//! The stable, short counterpart of the cargo-fuzz targets in `fuzz/` (run in CI
//! by `cargo test`): mutations of the documented webhook payloads (fields
//! removed, types swapped, huge and negative numbers, deep nesting, odd strings)
//! into every normalizer, signed and unsigned, and arbitrary query pairs into
//! both challenge handlers. Each gives an error or well-formed events / answers,
//! never a panic. (Arbitrary bytes and arbitrary JSON are in `webhook_props.rs`.)

mod common;

use std::sync::Arc;

use nexiom_connectors::{
    MOCK_VERIFY_TOKEN, MetaWebhookVerifier, MockConnector, PlatformConnector, PlatformConnectorExt,
    WebhookHeaders, hmac_sha256_hex,
};
use nexiom_core::{Content, Media, MediaKind, Platform, SecretString};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// The documented payloads and the connector each belongs to (index into
/// [`connectors`]).
const FIXTURES: &[(&str, usize)] = &[
    ("whatsapp_text_message.json", 0),
    ("whatsapp_image_reply.json", 0),
    ("whatsapp_statuses.json", 0),
    ("instagram_comment.json", 1),
    ("instagram_comment_reply_unwrapped.json", 1),
    ("instagram_dm.json", 1),
    ("facebook_feed_comments.json", 2),
    ("messenger_message.json", 2),
    ("linkedin_comment_notification.json", 3),
    ("linkedin_notifications_envelope.json", 3),
];

fn connectors() -> Vec<Arc<dyn PlatformConnector>> {
    let base = "http://127.0.0.1:9";
    vec![
        Arc::new(common::whatsapp(base).expect("whatsapp")),
        Arc::new(common::instagram(base).expect("instagram")),
        Arc::new(common::facebook(base).expect("facebook")),
        Arc::new(common::linkedin(base).expect("linkedin")),
        Arc::new(MockConnector::new(Platform::WhatsApp)),
    ]
}

fn fixtures() -> Vec<(Value, usize)> {
    FIXTURES
        .iter()
        .map(|(name, c)| {
            let v = serde_json::from_slice(&common::fixture(name)).expect("fixture JSON");
            (v, *c)
        })
        .collect()
}

/// What to do at one place of a payload.
#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    SwapType,
    Replace(Value),
    Nest(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::Remove),
        3 => Just(Mutation::SwapType),
        3 => prop_oneof![
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(i64::MAX)),
            Just(json!(1e308)),
            Just(json!(-1e308)),
            Just(json!(-1)),
            Just(json!(-1_700_000_000)),
            Just(json!(0)),
            Just(json!(1.5)),
            Just(json!("99999999999999999999999999")),
            Just(json!("-1")),
            Just(json!("")),
            Just(json!("\u{0}\u{7}\u{202e}")),
            Just(json!("x".repeat(10_000))),
            Just(Value::Null),
            Just(json!([])),
            Just(json!({})),
        ]
        .prop_map(Mutation::Replace),
        1 => (1usize..120).prop_map(Mutation::Nest),
    ]
}

/// Every JSON pointer in `v` (the root included).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn swapped(v: &Value) -> Value {
    match v {
        Value::String(s) => s.parse::<i64>().map_or(json!(42), |n| json!(n + 1)),
        Value::Number(n) => json!(n.to_string()),
        Value::Bool(b) => json!(i32::from(*b)),
        Value::Null => json!(false),
        Value::Array(items) => json!({"0": items.first().cloned().unwrap_or(Value::Null)}),
        Value::Object(map) => Value::Array(map.values().cloned().collect()),
    }
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!("deep"), |inner, i| {
        if i % 2 == 0 {
            json!([inner])
        } else {
            json!({ "value": inner })
        }
    })
}

fn apply(root: &mut Value, at: &Index, m: &Mutation) {
    let mut all = Vec::new();
    pointers(root, String::new(), &mut all);
    let pointer = at.get(&all).clone();
    apply_at(root, &pointer, m);
}

fn apply_at(root: &mut Value, pointer: &str, m: &Mutation) {
    if let Mutation::Remove = m {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            *root = Value::Null;
            return;
        };
        match root.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&last.replace("~1", "/").replace("~0", "~"));
            }
            Some(Value::Array(items)) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
            _ => {}
        }
        return;
    }
    if let Some(slot) = root.pointer_mut(pointer) {
        *slot = match m {
            Mutation::SwapType => swapped(slot),
            Mutation::Replace(v) => v.clone(),
            Mutation::Nest(depth) => nested(*depth),
            Mutation::Remove => Value::Null,
        };
    }
}

fn sign(c: &dyn PlatformConnector, body: &[u8]) -> WebhookHeaders {
    if c.name() == "linkedin" {
        WebhookHeaders::new().with(
            "X-LI-Signature",
            format!(
                "hmacsha256={}",
                hmac_sha256_hex(common::LI_CLIENT_SECRET.as_bytes(), body)
            ),
        )
    } else {
        WebhookHeaders::new().with(
            "X-Hub-Signature-256",
            MetaWebhookVerifier::sign(&SecretString::new(common::APP_SECRET), body),
        )
    }
}

fn check(c: &dyn PlatformConnector, body: &[u8]) {
    match c.handle_webhook(body) {
        Ok(events) => {
            for e in events {
                assert!(!e.event_id.is_empty(), "{}: empty event id", c.name());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A documented payload with up to four mutations: its own connector (signed,
    /// through `verify_and_handle`) and every other one give events or an error.
    #[test]
    fn mutated_documented_payloads_never_panic(
        which in any::<Index>(),
        mutations in prop::collection::vec((any::<Index>(), mutation()), 1..5),
    ) {
        let all = fixtures();
        let (mut payload, own) = which.get(&all).clone();
        for (at, m) in &mutations {
            apply(&mut payload, at, m);
        }
        let body = serde_json::to_vec(&payload).expect("serialize");
        let connectors = connectors();
        let c = connectors[own].as_ref();
        let headers = sign(c, &body);
        prop_assert!(c.verify_webhook(&headers, &body).is_ok(), "{}: own signature refused", c.name());
        if let Ok(events) = c.verify_and_handle(&headers, &body) {
            for e in events {
                prop_assert!(!e.event_id.is_empty());
            }
        }
        for other in &connectors {
            check(other.as_ref(), &body);
        }
    }

    /// Arbitrary query pairs (the documented names among them) into every
    /// connector's `answer_challenge`: refused, or answered only as documented.
    #[test]
    fn arbitrary_challenge_queries_never_panic(
        pairs in prop::collection::vec(
            (
                prop_oneof![
                    Just("hub.mode".to_owned()),
                    Just("hub.verify_token".to_owned()),
                    Just("hub.challenge".to_owned()),
                    Just("hub_challenge".to_owned()),
                    Just("challengeCode".to_owned()),
                    ".{0,12}",
                ],
                prop_oneof![
                    Just("subscribe".to_owned()),
                    Just(common::VERIFY_TOKEN.to_owned()),
                    Just(MOCK_VERIFY_TOKEN.to_owned()),
                    Just("890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6a".to_owned()),
                    Just(r#"{"notificationId":1}"#.to_owned()),
                    "[a-zA-Z0-9_-]{1,20}",
                    ".{0,300}",
                ],
            ),
            0..6,
        ),
    ) {
        for c in connectors() {
            let Ok(answer) = c.answer_challenge(&pairs) else {
                continue;
            };
            prop_assert_eq!(answer.status, 200);
            if c.name() == "linkedin" {
                let json: Value = serde_json::from_str(&answer.body).expect("LinkedIn answers JSON");
                let code = json["challengeCode"].as_str().unwrap_or_default();
                prop_assert!(pairs.iter().any(|(k, v)| k == "challengeCode" && v == code));
                // Only a UUID is ever signed: the challenge is no signing oracle.
                let groups: Vec<&str> = code.split('-').collect();
                prop_assert!(
                    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
                        && groups.iter().all(|g| g.chars().all(|ch| ch.is_ascii_hexdigit())),
                    "LinkedIn signed a code that is not a UUID: {:?}", code
                );
                prop_assert_eq!(
                    json["challengeResponse"].as_str().unwrap_or_default(),
                    hmac_sha256_hex(common::LI_CLIENT_SECRET.as_bytes(), code.as_bytes())
                );
            } else {
                prop_assert!(pairs.iter().any(|(_, v)| v == &answer.body), "echoed a value not sent");
                prop_assert!(
                    answer.body.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
                    "{} echoed {:?}", c.name(), answer.body
                );
            }
        }
    }
}

fn content() -> impl Strategy<Value = Content> {
    let media = (
        prop::sample::select(MediaKind::ALL),
        ".{0,20}",
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u32>()),
        prop::option::of(".{0,10}"),
    )
        .prop_map(|(kind, url, size_bytes, duration_secs, mime_type)| Media {
            kind,
            url,
            size_bytes,
            duration_secs,
            mime_type,
        });
    (
        prop_oneof![".{0,40}", "[a-z ]{2990,3010}", Just(String::new())],
        prop::collection::vec(media, 0..12),
        prop::option::of(".{0,20}"),
    )
        .prop_map(|(text, media, link)| Content { text, media, link })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary content into `Content::validate` and every connector's
    /// capability check: refused, or within the limits it declares.
    #[test]
    fn arbitrary_content_validation_never_panics(
        c in content(),
        schedule in prop::option::of(any::<i64>()),
    ) {
        let _ = c.validate();
        let at = schedule.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        for conn in connectors() {
            let caps = conn.capabilities();
            if caps.validate(conn.name(), &c, at).is_ok() {
                prop_assert!(!c.is_empty());
                prop_assert!(c.media.len() <= caps.max_media_items);
                prop_assert!(c.media.iter().all(|m| caps.media_kinds.contains(&m.kind)));
                prop_assert!(!caps.requires_media || c.has_media());
            }
        }
    }
}

#[test]
fn every_fixture_mutation_point_is_reachable() {
    // The pointer list covers nested keys (a removal there is a real mutation).
    let (v, _) = fixtures().remove(0);
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    assert!(
        all.iter()
            .any(|p| p.starts_with("/entry/0/changes/0/value/"))
    );
    let mut removed = v.clone();
    apply_at(&mut removed, "/object", &Mutation::Remove);
    assert!(removed.get("object").is_none());
    apply_at(&mut removed, "/entry/0", &Mutation::Nest(3));
    assert_eq!(removed["entry"][0], json!([{"value": ["deep"]}]));
}
