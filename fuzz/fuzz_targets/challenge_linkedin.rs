//! Arbitrary query strings into LinkedIn's `challengeCode` validation: a
//! refusal, or JSON that echoes the code sent with
//! `hex(HMAC-SHA256(client secret, code))`.
//!
//! Input: a raw query string, e.g. `challengeCode=890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6a`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexiom_connectors::{PlatformConnector, hmac_sha256_hex};
use nexiom_fuzz::{LI_CLIENT_SECRET, LINKEDIN, query_pairs};

fuzz_target!(|raw: &[u8]| {
    let query = query_pairs(raw);
    match LINKEDIN.answer_challenge(&query) {
        Ok(a) => {
            assert_eq!(a.status, 200);
            assert_eq!(a.content_type, "application/json");
            let json: serde_json::Value = match serde_json::from_str(&a.body) {
                Ok(v) => v,
                Err(e) => panic!("the answer is not JSON ({e}): {:?}", a.body),
            };
            let code = json["challengeCode"].as_str().unwrap_or_default();
            assert!(
                query.iter().any(|(k, v)| k == "challengeCode" && v == code),
                "echoed a code not sent"
            );
            assert_eq!(
                json["challengeResponse"].as_str().unwrap_or_default(),
                hmac_sha256_hex(LI_CLIENT_SECRET.as_bytes(), code.as_bytes())
            );
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains(LI_CLIENT_SECRET), "the secret leaked: {msg}");
        }
    }
});
