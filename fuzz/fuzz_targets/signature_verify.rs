//! Arbitrary headers and bodies into every connector's `verify_webhook` (Meta's
//! `X-Hub-Signature-256`, LinkedIn's `X-LI-Signature`): accepted only when the
//! signature header really is the HMAC of the body, refused otherwise, never a
//! panic.
//!
//! Input: `Name: value` header lines, an empty line, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexiom_connectors::hmac_sha256_hex;
use nexiom_fuzz::{APP_SECRET, LI_CLIENT_SECRET, connectors, headers_and_body};

fn good(secret: &str, message: &[u8]) -> String {
    hmac_sha256_hex(secret.as_bytes(), message)
}

fuzz_target!(|raw: &[u8]| {
    let (headers, body) = headers_and_body(raw);
    let mut li_prefixed = b"hmacsha256=".to_vec();
    li_prefixed.extend_from_slice(body);
    for c in connectors() {
        let linkedin = c.name() == "linkedin";
        let result = c.verify_webhook(&headers, body);
        let header = if linkedin {
            "X-LI-Signature"
        } else {
            "X-Hub-Signature-256"
        };
        match result {
            Ok(()) => {
                // Only the first header of that name counts, and it must be the HMAC.
                let value = headers
                    .get(header)
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let ok = if linkedin {
                    let hex = value.strip_prefix("hmacsha256=").unwrap_or(&value).trim();
                    hex == good(LI_CLIENT_SECRET, body)
                        || hex == good(LI_CLIENT_SECRET, &li_prefixed)
                } else {
                    value.strip_prefix("sha256=").map(str::trim) == Some(&*good(APP_SECRET, body))
                };
                assert!(ok, "{} accepted a wrong signature: {value:?}", c.name());
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains(APP_SECRET) && !msg.contains(LI_CLIENT_SECRET));
            }
        }
    }
});
