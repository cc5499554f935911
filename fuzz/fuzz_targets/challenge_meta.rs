//! Arbitrary query strings into Meta's `hub.*` handshake (every Meta connector's
//! `answer_challenge`): a refusal, or the challenge echoed as a plain token only
//! when the mode is `subscribe` and the verify token matches.
//!
//! Input: a raw query string, e.g.
//! `hub.mode=subscribe&hub.verify_token=fuzz-verify-token&hub.challenge=1158201444`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexiom_connectors::PlatformConnector;
use nexiom_fuzz::{FACEBOOK, INSTAGRAM, VERIFY_TOKEN, WHATSAPP, query_pairs};

fuzz_target!(|raw: &[u8]| {
    let query = query_pairs(raw);
    let connectors: [&dyn PlatformConnector; 3] = [&*WHATSAPP, &*INSTAGRAM, &*FACEBOOK];
    let first = connectors[0].answer_challenge(&query).is_ok();
    for c in connectors {
        let answer = c.answer_challenge(&query);
        assert_eq!(answer.is_ok(), first, "the Meta connectors disagree");
        match answer {
            Ok(a) => {
                assert_eq!(a.status, 200);
                assert!(!a.body.is_empty() && a.body.len() <= 256);
                assert!(
                    a.body
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "echoed a challenge that is not a plain token: {:?}",
                    a.body
                );
                assert!(
                    query.iter().any(|(_, v)| v == VERIFY_TOKEN),
                    "answered without the verify token"
                );
                assert!(
                    query.iter().any(|(_, v)| v == &a.body),
                    "echoed a value not sent"
                );
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    !msg.contains(VERIFY_TOKEN),
                    "the verify token leaked: {msg}"
                );
            }
        }
    }
});
