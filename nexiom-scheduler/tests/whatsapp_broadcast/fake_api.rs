//! The fake WhatsApp Cloud API's `/messages` endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use wiremock::{Request, Respond, ResponseTemplate};

/// The fake Cloud API's `/messages`: every request is logged (recipient and
/// body); a recipient may be scripted to fail its first calls with 503, or to
/// get its answer only after a long wait (the request is taken in at once).
#[derive(Clone, Default)]
pub struct FakeMessages {
    pub log: Arc<Mutex<Vec<Value>>>,
    pub failures: Arc<Mutex<HashMap<String, u32>>>,
    pub throttled: Arc<Mutex<HashMap<String, u32>>>,
    /// Answered 130429 with no Retry-After (Meta's throttles often come so).
    pub throttled_silently: Arc<Mutex<HashMap<String, u32>>>,
    /// Answered 131056, the pair rate limit (about this recipient alone).
    pub pair_limited: Arc<Mutex<HashMap<String, u32>>>,
    /// The next calls, whoever the recipient, answered 131031: the business
    /// account is locked (a refusal of the sender, not of the recipient).
    pub account_locked: Arc<Mutex<u32>>,
    pub slow: Arc<Mutex<Option<String>>>,
    pub arrived_slow: Arc<Notify>,
}

impl FakeMessages {
    pub fn calls_to(&self, recipient: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["to"] == recipient)
            .count()
    }

    pub fn calls(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

impl Respond for FakeMessages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push(body);
            log.len()
        };
        {
            let mut locked = self.account_locked.lock().unwrap();
            if *locked > 0 {
                *locked -= 1;
                return ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "message": "(#131031) Business Account locked", "type": "OAuthException",
                    "code": 131031, "error_data": {"messaging_product": "whatsapp",
                        "details": "Your WhatsApp Business Account has been locked"}}}));
            }
        }
        if let Some(left) = self.failures.lock().unwrap().get_mut(&to)
            && *left > 0
        {
            *left -= 1;
            return ResponseTemplate::new(503).set_body_json(
                json!({"error": {"message": "Service temporarily unavailable", "code": 2}}),
            );
        }
        if let Some(left) = self.throttled.lock().unwrap().get_mut(&to)
            && *left > 0
        {
            *left -= 1;
            return ResponseTemplate::new(400)
                .insert_header("Retry-After", "120")
                .set_body_json(json!({"error": {
                    "message": "(#130429) Rate limit hit", "code": 130429}}));
        }
        // The pair rate limit comes with a Retry-After here: it is still
        // that recipient's alone.
        let silent = (
            &self.throttled_silently,
            130_429,
            "(#130429) Rate limit hit",
            None,
        );
        let pair = (
            &self.pair_limited,
            131_056,
            "(#131056) Pair rate limit hit",
            Some("120"),
        );
        for (map, code, message, wait) in [silent, pair] {
            if let Some(left) = map.lock().unwrap().get_mut(&to)
                && *left > 0
            {
                *left -= 1;
                let answer = ResponseTemplate::new(400)
                    .set_body_json(json!({"error": {"message": message, "code": code}}));
                return match wait {
                    Some(wait) => answer.insert_header("Retry-After", wait),
                    None => answer,
                };
            }
        }
        let ok = ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": format!("wamid.{n}")}],
        }));
        if self.slow.lock().unwrap().as_deref() == Some(to.as_str()) {
            self.arrived_slow.notify_one();
            return ok.set_delay(StdDuration::from_secs(60));
        }
        ok
    }
}
