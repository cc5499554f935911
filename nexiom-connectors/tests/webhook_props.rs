//! Property tests: arbitrary bytes and arbitrary (also envelope-shaped) JSON fed
//! to every connector's `verify_webhook` and `handle_webhook` give errors or
//! well-formed events, never a panic.

mod common;

use std::sync::Arc;

use nexiom_connectors::{MockConnector, PlatformConnector, WebhookHeaders};
use nexiom_core::Platform;
use proptest::prelude::*;
use serde_json::{Map, Value};

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

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("comment"),
            Just("messages"),
            Just("feed"),
            Just("add"),
            Just("1700000000"),
            Just("COMMENT"),
            Just("text"),
            Just("delivered"),
            Just("instagram"),
            Just("page"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop_oneof![
        Just("id"),
        Just("entry"),
        Just("changes"),
        Just("field"),
        Just("value"),
        Just("messages"),
        Just("statuses"),
        Just("timestamp"),
        Just("time"),
        Just("from"),
        Just("messaging"),
        Just("message"),
        Just("mid"),
        Just("item"),
        Just("verb"),
        Just("comment_id"),
        Just("created_time"),
        Just("notificationId"),
        Just("action"),
        Just("lastModifiedAt"),
        Just("notifications"),
        Just("status"),
        Just("text"),
        Just("parent_id"),
        Just("post_id"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn envelope() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("whatsapp_business_account"),
            Just("instagram"),
            Just("page"),
            Just("other")
        ],
        prop::collection::vec(json_value(), 0..4),
    )
        .prop_map(|(object, entry)| serde_json::json!({"object": object, "entry": entry}))
}

fn check_events(c: &dyn PlatformConnector, body: &[u8]) {
    if let Ok(events) = c.handle_webhook(body) {
        for e in events {
            assert!(!e.event_id.is_empty(), "{}: empty event id", c.name());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), sig in ".{0,80}") {
        for c in connectors() {
            let headers = WebhookHeaders::new()
                .with("X-Hub-Signature-256", sig.clone())
                .with("X-LI-Signature", sig.clone());
            prop_assert!(c.verify_webhook(&headers, &body).is_err());
            prop_assert!(c.verify_webhook(&WebhookHeaders::new(), &body).is_err());
            let r = c.handle_webhook(&body);
            if serde_json::from_slice::<Value>(&body).is_err() {
                prop_assert!(r.is_err(), "{} accepted non-JSON", c.name());
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        let body = serde_json::to_vec(&v).expect("json");
        for c in connectors() {
            prop_assert!(c.verify_webhook(&WebhookHeaders::new(), &body).is_err());
            check_events(c.as_ref(), &body);
        }
    }

    #[test]
    fn envelope_shaped_json_never_panics(v in envelope()) {
        let body = serde_json::to_vec(&v).expect("json");
        for c in connectors() {
            check_events(c.as_ref(), &body);
        }
    }
}
