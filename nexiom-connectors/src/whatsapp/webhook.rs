//! WhatsApp webhook normalization (platform-apis §1.3, §1.4): `object =
//! whatsapp_business_account` → `entry[]` → `changes[]` → `value` with either
//! `messages[]` (+ `contacts[]`) or `statuses[]` (field `messages`), or
//! `user_preferences[]` (field `user_preferences`: a user stops or resumes
//! marketing messages). A message without a body of text (a location,
//! contact cards, an order, a form's reply) is given one that says what it
//! is; reactions, system notices (a number changed) and group messages are
//! kept as `Other` events, never a customer's message to answer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexiom_core::{DeliveryStatus, EventKind, Platform};
use serde_json::Value;

use crate::error::ConnectorError;
use crate::graph::webhook::{entries, moved_into, reject, required, s, strict};
use crate::time::{self, Unit};
use crate::types::{NormalizedEvent, WebhookItem};

const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// All or nothing (see [`strict`]).
pub(crate) fn normalize(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    strict(normalize_events(body, now)?)
}

/// Event by event: `Err` only for a body that is not a WhatsApp payload.
pub(crate) fn normalize_events(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<WebhookItem>, ConnectorError> {
    let mut out = Vec::new();
    for mut entry in entries(body, "whatsapp_business_account")? {
        let Some(changes) = entry.get_mut("changes").and_then(Value::as_array_mut) else {
            continue;
        };
        for change in changes {
            let field = change.get("field").and_then(Value::as_str);
            if !matches!(field, Some("messages" | "user_preferences")) {
                continue;
            }
            match change.get_mut("value").filter(|v| v.is_object()) {
                Some(value) => normalize_value(value, now, &mut out),
                None => out.push(Err(reject(
                    &Platform::WhatsApp,
                    None,
                    change,
                    "/value/id",
                    "change without a value object".into(),
                ))),
            }
        }
    }
    Ok(out)
}

/// Reads one `value` object. Each event's JSON is moved out of the parsed
/// body into its payload (not copied); a refused event keeps it too.
fn normalize_value(value: &mut Value, now: DateTime<Utc>, out: &mut Vec<WebhookItem>) {
    let account = s(value, "/metadata/phone_number_id");
    let names: HashMap<String, String> = value
        .get("contacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((s(c, "/wa_id")?, s(c, "/profile/name")?)))
        .collect();
    let mut read =
        |key: &str, id_pointer: &str, f: &dyn Fn(&Value) -> Result<NormalizedEvent, String>| {
            let items = value.get_mut(key).and_then(Value::as_array_mut);
            for item in items.into_iter().flatten() {
                let read = f(item);
                out.push(moved_into(read, item, |item, reason| {
                    reject(
                        &Platform::WhatsApp,
                        account.clone(),
                        item,
                        id_pointer,
                        reason,
                    )
                }));
            }
        };
    read("messages", "/id", &|m| message(m, &account, &names, now));
    read("user_preferences", "/wa_id", &|p| {
        preference(p, &account, &names, now)
    });
    read("statuses", "/id", &|st| status(st, &account, now));
    read("errors", "/code", &|e| account_error(e, &account, now));
}

/// A `value.errors[]` entry: an error the platform reports about the
/// account's webhook rather than about one message (a message it could not
/// hand over, say). Kept as an [`EventKind::Other`] event whose text is the
/// error's code, title and details, and logged, so that it is seen rather
/// than dropped. It has no id nor time: its id is the account's and a digest
/// of the error (a redelivery is the same event, and so is the same error
/// reported again later: it is stored once, logged each time), its time the
/// reception.
fn account_error(
    e: &Value,
    account: &Option<String>,
    now: DateTime<Utc>,
) -> Result<NormalizedEvent, String> {
    use sha2::Digest;
    if !e.is_object() {
        return Err("an error entry that is not an object".into());
    }
    let code = e.get("code").and_then(time::as_i64);
    let title = s(e, "/title").or_else(|| s(e, "/message"));
    let details = s(e, "/error_data/details");
    let text = [
        code.map(|c| c.to_string()),
        title.clone(),
        details.map(|d| format!("({d})")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    tracing::warn!(account = ?account, code, title = ?title, "WhatsApp reported an error for the account");
    let digest = hex::encode(sha2::Sha256::digest(e.to_string().as_bytes()));
    Ok(NormalizedEvent {
        platform: Platform::WhatsApp,
        account_id: account.clone(),
        event_id: format!(
            "{}:error:{}",
            account.as_deref().unwrap_or("-"),
            &digest[..32]
        ),
        kind: EventKind::Other,
        sender_id: None,
        sender_name: None,
        text: Some(text),
        has_media: false,
        delivery_status: None,
        message_id: None,
        thread_id: None,
        post_id: None,
        parent_id: None,
        occurred_at: now,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

fn message(
    m: &Value,
    account: &Option<String>,
    names: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<NormalizedEvent, String> {
    let id = required(m, "/id", "message")?;
    let from = s(m, "/from");
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("unknown");
    let text = match kind {
        "text" => s(m, "/text/body"),
        "button" => s(m, "/button/text"),
        "interactive" => s(m, "/interactive/button_reply/title")
            .or_else(|| s(m, "/interactive/list_reply/title"))
            .or_else(|| s(m, "/interactive/nfm_reply/body"))
            .or_else(|| Some("[form reply]".to_owned())),
        "reaction" => s(m, "/reaction/emoji"),
        "location" => Some(location(m)),
        "contacts" => Some(contacts(m)),
        "order" => Some(order(m)),
        "system" => s(m, "/system/body"),
        k if MEDIA_TYPES.contains(&k) => s(m, &format!("/{k}/caption")),
        _ => None,
    };
    // Kept as events, not as a customer's message to answer: a reaction
    // (to the message it names), a system notice (a number changed), and a
    // group's message (a conversation is one customer's; answering there
    // would answer the group's content in private).
    let not_a_message = matches!(kind, "reaction" | "system") || m.get("group_id").is_some();
    let occurred_at = time::event_time(&[(m.get("timestamp"), Unit::Secs)], now, "message")?;
    Ok(NormalizedEvent {
        platform: Platform::WhatsApp,
        account_id: account.clone(),
        event_id: id,
        kind: if not_a_message {
            EventKind::Other
        } else {
            EventKind::Message
        },
        sender_name: from.as_ref().and_then(|f| names.get(f).cloned()),
        sender_id: from.clone(),
        text,
        has_media: MEDIA_TYPES.contains(&kind),
        delivery_status: None,
        message_id: None,
        thread_id: from,
        post_id: None,
        parent_id: s(m, "/context/id").or_else(|| s(m, "/reaction/message_id")),
        occurred_at,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

/// A shared location as text: `[location] name, address (latitude,
/// longitude)`, with the parts it has.
fn location(m: &Value) -> String {
    let place: Vec<String> = ["/location/name", "/location/address"]
        .iter()
        .filter_map(|p| s(m, p))
        .collect();
    let at = match (s(m, "/location/latitude"), s(m, "/location/longitude")) {
        (Some(lat), Some(long)) => format!("({lat}, {long})"),
        _ => String::new(),
    };
    let parts: Vec<String> = [place.join(", "), at]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    format!("[location] {}", parts.join(" "))
        .trim_end()
        .to_owned()
}

/// Shared contact cards as text: `[contact] name, name` (their formatted
/// names, or their first phone number).
fn contacts(m: &Value) -> String {
    let names: Vec<String> = m
        .get("contacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| s(c, "/name/formatted_name").or_else(|| s(c, "/phones/0/phone")))
        .collect();
    format!("[contact] {}", names.join(", "))
        .trim_end()
        .to_owned()
}

/// An order from the catalog as text: `[order] N items: note` (the item
/// count summed over its quantities; the customer's note when given).
fn order(m: &Value) -> String {
    let items: u64 = m
        .pointer("/order/product_items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            i.get("quantity")
                .and_then(|q| q.as_u64().or_else(|| q.as_str()?.parse().ok()))
                .unwrap_or(1)
        })
        .fold(0, u64::saturating_add);
    let noun = if items == 1 { "item" } else { "items" };
    match s(m, "/order/text") {
        Some(note) => format!("[order] {items} {noun}: {note}"),
        None => format!("[order] {items} {noun}"),
    }
}

/// A `user_preferences` entry: a user who stops or resumes marketing
/// messages. `marketing_messages` with `stop` / `resume` is a
/// [`EventKind::Preference`] (`text` = the value, `sender_id` = the wa_id);
/// any other category or value is kept as `Other`.
fn preference(
    p: &Value,
    account: &Option<String>,
    names: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<NormalizedEvent, String> {
    let wa_id = required(p, "/wa_id", "user preference")?;
    let value = required(p, "/value", "user preference")?;
    let category = s(p, "/category").unwrap_or_else(|| "unknown".to_owned());
    let occurred_at = time::event_time(&[(p.get("timestamp"), Unit::Secs)], now, "preference")?;
    let known = category == "marketing_messages" && matches!(value.as_str(), "stop" | "resume");
    Ok(NormalizedEvent {
        platform: Platform::WhatsApp,
        account_id: account.clone(),
        // Scoped by the business number: the same user stopping two
        // numbers' marketing in the same second is two events (event ids
        // are unique per platform).
        event_id: format!(
            "{}:{wa_id}:{category}:{value}:{}",
            account.as_deref().unwrap_or("-"),
            occurred_at.timestamp()
        ),
        kind: if known {
            EventKind::Preference
        } else {
            EventKind::Other
        },
        sender_name: names.get(&wa_id).cloned(),
        sender_id: Some(wa_id.clone()),
        text: Some(value),
        has_media: false,
        delivery_status: None,
        message_id: None,
        thread_id: Some(wa_id),
        post_id: None,
        parent_id: None,
        occurred_at,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

fn status(
    st: &Value,
    account: &Option<String>,
    now: DateTime<Utc>,
) -> Result<NormalizedEvent, String> {
    let id = required(st, "/id", "status")?;
    let status_text = required(st, "/status", "status")?;
    // Unknown statuses (e.g. "deleted", "warning") are kept as `Other`.
    let status = status_text.parse::<DeliveryStatus>().ok();
    let recipient = s(st, "/recipient_id");
    let occurred_at = time::event_time(&[(st.get("timestamp"), Unit::Secs)], now, "status")?;
    Ok(NormalizedEvent {
        platform: Platform::WhatsApp,
        account_id: account.clone(),
        event_id: format!("{id}:{status_text}"),
        kind: if status.is_some() {
            EventKind::Status
        } else {
            EventKind::Other
        },
        sender_id: None,
        sender_name: None,
        text: s(st, "/errors/0/title").or_else(|| s(st, "/errors/0/message")),
        has_media: false,
        delivery_status: status,
        message_id: Some(id),
        thread_id: recipient,
        post_id: None,
        parent_id: None,
        occurred_at,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `value.errors[]` (an error about the account's webhook, not one
    /// message) beside a message: both are events, the error an `Other`
    /// event naming its code and title, with the same id when redelivered.
    #[test]
    fn account_errors_are_kept_as_events() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{
            "messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"15550000000","phone_number_id":"PNID"},
            "messages":[{"from":"16505551234","id":"wamid.A","timestamp":"1767225000","type":"text","text":{"body":"hi"}}],
            "errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}]
            }}]}]}"#;
        let items = normalize_events(body, now()).unwrap();
        assert_eq!(items.len(), 2);
        let error = items[1].as_ref().unwrap();
        assert_eq!(error.kind, EventKind::Other);
        assert_eq!(error.account_id.as_deref(), Some("PNID"));
        assert_eq!(
            error.text.as_deref(),
            Some("131051 Message type unknown (Message type is currently not supported.)")
        );
        assert!(
            error.event_id.starts_with("PNID:error:"),
            "{}",
            error.event_id
        );
        assert_eq!(error.payload["code"], 131_051);
        let again = normalize_events(body, now()).unwrap();
        assert_eq!(again[1].as_ref().unwrap().event_id, error.event_id);
        assert_eq!(items[0].as_ref().unwrap().event_id, "wamid.A");
    }

    #[test]
    fn marketing_preferences_become_preference_events() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"user_preferences","value":{
            "messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"15550000000","phone_number_id":"PNID"},
            "contacts":[{"profile":{"name":"Ana"},"wa_id":"16505551234"}],
            "user_preferences":[
                {"wa_id":"16505551234","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1767225000},
                {"wa_id":"16505551234","detail":"?","category":"something_new","value":"stop","timestamp":1767225001},
                {"detail":"no wa_id","category":"marketing_messages","value":"resume","timestamp":1767225002}
            ]}}]}]}"#;
        let items = normalize_events(body, now()).unwrap();
        assert_eq!(items.len(), 3);
        // Each item's payload is its own entry of the body, read or refused.
        let raw: Value = serde_json::from_slice(body).unwrap();
        let entries = &raw["entry"][0]["changes"][0]["value"]["user_preferences"];
        assert_eq!(items[0].as_ref().unwrap().payload, entries[0]);
        assert_eq!(items[1].as_ref().unwrap().payload, entries[1]);
        assert_eq!(items[2].as_ref().unwrap_err().payload, entries[2]);
        let stop = items[0].as_ref().unwrap();
        assert_eq!(stop.kind, EventKind::Preference);
        assert_eq!(stop.account_id.as_deref(), Some("PNID"));
        assert_eq!(stop.sender_id.as_deref(), Some("16505551234"));
        assert_eq!(stop.sender_name.as_deref(), Some("Ana"));
        assert_eq!(stop.text.as_deref(), Some("stop"));
        assert_eq!(stop.occurred_at.timestamp(), 1_767_225_000);
        assert_eq!(
            stop.event_id,
            "PNID:16505551234:marketing_messages:stop:1767225000"
        );
        // The same stop for another business number is another event.
        let other = std::str::from_utf8(body).unwrap().replace(
            "\"phone_number_id\":\"PNID\"",
            "\"phone_number_id\":\"PNID2\"",
        );
        let items = normalize_events(other.as_bytes(), now()).unwrap();
        assert_eq!(
            items[0].as_ref().unwrap().event_id,
            "PNID2:16505551234:marketing_messages:stop:1767225000"
        );
        assert_eq!(items[1].as_ref().unwrap().kind, EventKind::Other);
        assert!(
            items[2].is_err(),
            "a preference without a wa_id is rejected"
        );
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01")
    }

    #[test]
    fn message_types_without_a_body_are_told_and_non_messages_kept_apart() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{
            "metadata":{"phone_number_id":"PNID"},
            "messages":[
            {"from":"1631","id":"wamid.L","timestamp":"1700000000","type":"location",
             "location":{"latitude":48.8566,"longitude":2.3522,"name":"Shop","address":"1 rue X"}},
            {"from":"1631","id":"wamid.C","timestamp":"1700000001","type":"contacts",
             "contacts":[{"name":{"formatted_name":"Ann Lee"},"phones":[{"phone":"+1 555"}]},{"phones":[{"phone":"+1 666"}]}]},
            {"from":"1631","id":"wamid.O","timestamp":"1700000002","type":"order",
             "order":{"catalog_id":"cat","text":"gift wrap please","product_items":[
               {"product_retailer_id":"a","quantity":2,"item_price":10,"currency":"EUR"},
               {"product_retailer_id":"b","quantity":"1","item_price":5,"currency":"EUR"}]}},
            {"from":"1631","id":"wamid.F","timestamp":"1700000003","type":"interactive",
             "interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":"{}"}}},
            {"from":"1631","id":"wamid.R","timestamp":"1700000004","type":"reaction",
             "reaction":{"message_id":"wamid.OUT","emoji":"\ud83d\udc4d"}},
            {"from":"1631","id":"wamid.S","timestamp":"1700000005","type":"system",
             "system":{"body":"Ann changed from 1631 to 1632","wa_id":"1632","type":"user_changed_number"}},
            {"from":"1631","id":"wamid.G","timestamp":"1700000006","type":"text","group_id":"G1",
             "text":{"body":"hello group"}}]}}]}]}"#;
        let ev = normalize(body, now()).expect("events");
        let text = |i: usize| ev[i].text.as_deref();
        assert_eq!(text(0), Some("[location] Shop, 1 rue X (48.8566, 2.3522)"));
        assert_eq!(text(1), Some("[contact] Ann Lee, +1 666"));
        assert_eq!(text(2), Some("[order] 3 items: gift wrap please"));
        assert_eq!(text(3), Some("Sent"));
        assert!(ev[..4].iter().all(|e| e.kind == EventKind::Message));
        // A reaction, a system notice, a group's message: kept, not messages.
        assert_eq!(
            (ev[4].kind, text(4), ev[4].parent_id.as_deref()),
            (EventKind::Other, Some("\u{1f44d}"), Some("wamid.OUT"))
        );
        assert_eq!(ev[5].kind, EventKind::Other);
        assert_eq!(ev[6].kind, EventKind::Other);
        assert_eq!(text(6), Some("hello group"));
    }

    #[test]
    fn text_message_and_status() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{
            "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"PNID"},
            "contacts":[{"profile":{"name":"Kerry"},"wa_id":"16315551234"}],
            "messages":[{"from":"16315551234","id":"wamid.A","timestamp":"1700000000","type":"text","text":{"body":"Bonjour \u00e9"}}]}},
            {"field":"messages","value":{"metadata":{"phone_number_id":"PNID"},
            "statuses":[{"id":"wamid.OUT","status":"delivered","timestamp":"1700000100","recipient_id":"16315551234"}]}}]}]}"#;
        let ev = normalize(body, now()).expect("events");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event_id, "wamid.A");
        assert_eq!(ev[0].sender_name.as_deref(), Some("Kerry"));
        assert_eq!(ev[0].text.as_deref(), Some("Bonjour é"));
        assert_eq!(ev[0].account_id.as_deref(), Some("PNID"));
        assert_eq!(ev[0].occurred_at.timestamp(), 1_700_000_000);
        assert_eq!(ev[1].kind, EventKind::Status);
        assert_eq!(ev[1].event_id, "wamid.OUT:delivered");
        assert_eq!(ev[1].delivery_status, Some(DeliveryStatus::Delivered));
        assert_eq!(ev[1].message_id.as_deref(), Some("wamid.OUT"));
        let raw: Value = serde_json::from_slice(body).unwrap();
        let changes = &raw["entry"][0]["changes"];
        assert_eq!(ev[0].payload, changes[0]["value"]["messages"][0]);
        assert_eq!(ev[1].payload, changes[1]["value"]["statuses"][0]);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"not json"[..],
            br#"{"object":"page","entry":[]}"#,
            br#"{"object":"whatsapp_business_account"}"#,
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"type":"text"}]}}]}]}"#,
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"x","timestamp":"soon"}]}}]}]}"#,
        ] {
            assert!(normalize(bad, now()).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let empty = normalize(
            br#"{"object":"whatsapp_business_account","entry":[]}"#,
            now(),
        )
        .expect("ok");
        assert!(empty.is_empty());
    }

    #[test]
    fn each_event_is_read_on_its_own_and_times_are_checked() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
            "metadata":{"phone_number_id":"PNID"},
            "messages":[
              {"from":"1","id":"good.1","timestamp":"1700000000","type":"text","text":{"body":"a"}},
              {"from":"1","id":"no.time","type":"text","text":{"body":"b"}},
              {"from":"1","id":"negative","timestamp":"-5","type":"text","text":{"body":"c"}},
              {"from":"1","id":"in.ms","timestamp":"1700000000123","type":"text","text":{"body":"d"}},
              {"from":"1","timestamp":"1700000000","type":"text"},
              {"from":"1","id":"good.2","timestamp":1700000001,"type":"text","text":{"body":"e"}}],
            "statuses":[{"id":"out.1","status":"read","timestamp":"99999999999999999"}]}},
            {"field":"messages"}]}]}"#;
        let items = normalize_events(body, now()).expect("a payload");
        assert_eq!(items.len(), 8);
        let ok: Vec<&str> = items
            .iter()
            .filter_map(|i| i.as_ref().ok().map(|e| e.event_id.as_str()))
            .collect();
        assert_eq!(ok, ["good.1", "in.ms", "good.2"]);
        let in_ms = items[3].as_ref().expect("ms read as ms");
        assert_eq!(in_ms.occurred_at.timestamp_millis(), 1_700_000_000_123);
        let rejected: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(rejected.len(), 5);
        assert_eq!(rejected[0].event_id.as_deref(), Some("no.time"));
        assert_eq!(rejected[0].reason, "message without a valid timestamp");
        assert_eq!(rejected[0].account_id.as_deref(), Some("PNID"));
        assert_eq!(rejected[1].event_id.as_deref(), Some("negative"));
        assert!(rejected[1].reason.contains("implausible"));
        assert_eq!(rejected[2].event_id, None);
        assert_eq!(rejected[2].reason, "message without /id");
        assert!(
            rejected[3].reason.contains("implausible"),
            "status far in the future"
        );
        assert_eq!(rejected[4].reason, "change without a value object");
        // All or nothing, as before.
        assert!(normalize(body, now()).is_err());
    }
}
