//! Webhook verification: request headers, Meta's `hub.*` handshake and
//! `X-Hub-Signature-256`, LinkedIn's `challengeCode` and `X-LI-Signature`.
//!
//! Signatures are always computed over the exact received bytes (never over
//! re-serialized JSON: Meta signs an escaped-unicode form, so re-serializing breaks
//! non-ASCII text) and compared in constant time (`Mac::verify_slice`, `subtle`).

use std::fmt;

use hmac::{Hmac, Mac};
use nexiom_core::SecretString;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::WebhookError;
use crate::types::ChallengeResponse;

type HmacSha256 = Hmac<Sha256>;

/// The headers of a webhook request, looked up case-insensitively.
///
/// Built from any iterator of name/value pairs, or from a `reqwest` / `http`
/// `HeaderMap` (values that are not visible ASCII are dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders(Vec<(String, String)>);

impl WebhookHeaders {
    /// No headers.
    pub fn new() -> Self {
        WebhookHeaders::default()
    }

    /// The same headers with one more.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for WebhookHeaders {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        WebhookHeaders(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<&reqwest::header::HeaderMap> for WebhookHeaders {
    fn from(map: &reqwest::header::HeaderMap) -> Self {
        map.iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_owned(), v.to_owned()))
            })
            .collect()
    }
}

/// Hex HMAC-SHA256 of `message` keyed by `key` (lower case).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    hex::encode(hmac_sha256(key, message))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn verify_hmac(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            for p in parts {
                mac.update(p);
            }
            mac.verify_slice(expected).is_ok()
        }
        Err(_) => false,
    }
}

fn decode_sig_hex(header: &'static str, hex_part: &str) -> Result<Vec<u8>, WebhookError> {
    let hex_part = hex_part.trim();
    if hex_part.len() != 64 {
        return Err(WebhookError::MalformedSignature {
            header,
            reason: "expected 64 hex digits",
        });
    }
    hex::decode(hex_part).map_err(|_| WebhookError::MalformedSignature {
        header,
        reason: "not hexadecimal",
    })
}

/// Meta's header for SHA-256 payload signatures.
pub const META_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// LinkedIn's header for payload signatures.
pub const LINKEDIN_SIGNATURE_HEADER: &str = "X-LI-Signature";

/// Checks Meta webhooks (WhatsApp, Instagram, Page, Messenger: one app secret covers
/// them all) and answers the `hub.*` handshake.
///
/// # Not a signing oracle
///
/// The handshake never computes anything with the app secret: it compares the
/// verify token (a different value, never a MAC key) and echoes `hub.challenge`
/// unchanged, and only a short token of `A-Z a-z 0-9 - _` at that. Nothing an
/// outsider sends is ever answered with an HMAC under the app secret, so no
/// answer of this verifier can serve as an `X-Hub-Signature-256`. The WhatsApp,
/// Instagram and Facebook connectors and `MockConnector` all use this verifier.
#[derive(Clone, Default)]
pub struct MetaWebhookVerifier {
    app_secret: Option<SecretString>,
    verify_token: Option<SecretString>,
}

impl fmt::Debug for MetaWebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaWebhookVerifier")
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "verify_token",
                &self.verify_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl MetaWebhookVerifier {
    /// A verifier with the app secret (signatures) and the verify token (handshake);
    /// either may be absent, and the check that needs it then fails with
    /// [`WebhookError::NotConfigured`].
    pub fn new(app_secret: Option<SecretString>, verify_token: Option<SecretString>) -> Self {
        MetaWebhookVerifier {
            app_secret: app_secret.filter(|s| !s.is_empty()),
            verify_token: verify_token.filter(|s| !s.is_empty()),
        }
    }

    /// Checks `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256(app secret,
    /// raw body), in constant time.
    pub fn verify(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), WebhookError> {
        let secret = self
            .app_secret
            .as_ref()
            .ok_or(WebhookError::NotConfigured { what: "app secret" })?;
        let header = META_SIGNATURE_HEADER;
        let value = headers
            .get(header)
            .ok_or(WebhookError::MissingSignature { header })?;
        let hex_part =
            value
                .trim()
                .strip_prefix("sha256=")
                .ok_or(WebhookError::MalformedSignature {
                    header,
                    reason: "expected the form sha256=<hex>",
                })?;
        let expected = decode_sig_hex(header, hex_part)?;
        if verify_hmac(secret.expose().as_bytes(), &[body], &expected) {
            Ok(())
        } else {
            Err(WebhookError::SignatureMismatch { header })
        }
    }

    /// The header value Meta would send for `body` (for tests and local tools).
    pub fn sign(app_secret: &SecretString, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hmac_sha256_hex(app_secret.expose().as_bytes(), body)
        )
    }

    /// Answers `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: the
    /// challenge as a plain-text body when the token matches (compared in constant
    /// time), otherwise [`WebhookError::HandshakeRefused`] (answer 403).
    pub fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, WebhookError> {
        let expected = self
            .verify_token
            .as_ref()
            .ok_or(WebhookError::NotConfigured {
                what: "verify token",
            })?;
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name || k.replace('.', "_") == name.replace('.', "_"))
                .map(|(_, v)| v.as_str())
        };
        if param("hub.mode") != Some("subscribe") {
            return Err(WebhookError::HandshakeRefused {
                reason: "hub.mode is not subscribe",
            });
        }
        let token = param("hub.verify_token").ok_or(WebhookError::HandshakeRefused {
            reason: "hub.verify_token is missing",
        })?;
        if !bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) {
            return Err(WebhookError::HandshakeRefused {
                reason: "hub.verify_token does not match",
            });
        }
        let challenge = param("hub.challenge").ok_or(WebhookError::HandshakeRefused {
            reason: "hub.challenge is missing",
        })?;
        if challenge.is_empty()
            || challenge.len() > 256
            || !challenge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(WebhookError::HandshakeRefused {
                reason: "hub.challenge is not a plain token",
            });
        }
        Ok(ChallengeResponse {
            status: 200,
            content_type: "text/plain",
            body: challenge.to_owned(),
        })
    }
}

/// Checks LinkedIn webhooks and answers its `challengeCode` validation.
///
/// # Not a signing oracle
///
/// LinkedIn's validation answers `HMAC-SHA256(client secret, challengeCode)`,
/// and [`verify`](Self::verify) accepts `HMAC-SHA256(client secret, body)` as
/// `X-LI-Signature`: the same key over attacker-chosen bytes. Answering any
/// code would let anyone obtain a valid signature for a notification of their
/// choosing by sending it as the code. So only codes shaped like the ones
/// LinkedIn sends, a UUID (36 characters, `8-4-4-4-12` hexadecimal digits), are
/// answered; anything else is [`WebhookError::HandshakeRefused`] before any HMAC
/// is computed. Upper-case hex digits are accepted too (UUIDs are read
/// case-insensitively): no UUID-shaped string is a JSON document, nor starts
/// with `hmacsha256=`, so a signature over one authenticates no notification.
#[derive(Clone, Default)]
pub struct LinkedInWebhookVerifier {
    client_secret: Option<SecretString>,
}

impl fmt::Debug for LinkedInWebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInWebhookVerifier")
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl LinkedInWebhookVerifier {
    /// A verifier keyed by the app's client secret.
    pub fn new(client_secret: Option<SecretString>) -> Self {
        LinkedInWebhookVerifier {
            client_secret: client_secret.filter(|s| !s.is_empty()),
        }
    }

    fn secret(&self) -> Result<&SecretString, WebhookError> {
        self.client_secret
            .as_ref()
            .ok_or(WebhookError::NotConfigured {
                what: "client secret",
            })
    }

    /// Checks `X-LI-Signature`. The docs are ambiguous about where `hmacsha256=`
    /// goes, so both documented readings are accepted, each compared in constant
    /// time: (a) the header is `hex(HMAC(secret, "hmacsha256=" + body))`, (b) the
    /// header is `"hmacsha256=" + hex(HMAC(secret, body))`. An optional
    /// `hmacsha256=` prefix is stripped from the header first.
    ///
    /// A body that is a challenge code (a UUID, maybe with surrounding
    /// whitespace) is refused whatever its signature: the challenge endpoint
    /// answers such a code with its MAC under the same key, so a signature
    /// for it proves nothing, and no notification is a bare UUID.
    pub fn verify(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), WebhookError> {
        let secret = self.secret()?;
        let header = LINKEDIN_SIGNATURE_HEADER;
        if std::str::from_utf8(body).is_ok_and(|text| is_uuid(text.trim())) {
            return Err(WebhookError::SignatureMismatch { header });
        }
        let value = headers
            .get(header)
            .ok_or(WebhookError::MissingSignature { header })?;
        let value = value.trim();
        let hex_part = value.strip_prefix("hmacsha256=").unwrap_or(value);
        let expected = decode_sig_hex(header, hex_part)?;
        let key = secret.expose().as_bytes();
        // Both readings are always computed so timing does not reveal which matched.
        let a = verify_hmac(key, &[b"hmacsha256=", body], &expected);
        let b = verify_hmac(key, &[body], &expected);
        if a | b {
            Ok(())
        } else {
            Err(WebhookError::SignatureMismatch { header })
        }
    }

    /// The header value under reading (b), for tests and local tools.
    pub fn sign(client_secret: &SecretString, body: &[u8]) -> String {
        format!(
            "hmacsha256={}",
            hmac_sha256_hex(client_secret.expose().as_bytes(), body)
        )
    }

    /// Answers `GET ?challengeCode=<uuid>` with the JSON body
    /// `{"challengeCode": …, "challengeResponse": hex(HMAC-SHA256(clientSecret, challengeCode))}`.
    /// A code that is not a UUID is [`WebhookError::HandshakeRefused`] (see
    /// "Not a signing oracle" above).
    pub fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, WebhookError> {
        let code = query
            .iter()
            .find(|(k, _)| k == "challengeCode")
            .map(|(_, v)| v.as_str())
            .ok_or(WebhookError::HandshakeRefused {
                reason: "challengeCode is missing",
            })?;
        // Checked before the secret is touched: the answer is a MAC under the
        // key that also authenticates notification bodies.
        if !is_uuid(code) {
            return Err(WebhookError::HandshakeRefused {
                reason: "challengeCode is not a UUID (8-4-4-4-12 hexadecimal digits)",
            });
        }
        let secret = self.secret()?;
        let response = hmac_sha256_hex(secret.expose().as_bytes(), code.as_bytes());
        let body = serde_json::json!({"challengeCode": code, "challengeResponse": response});
        Ok(ChallengeResponse {
            status: 200,
            content_type: "application/json",
            body: body.to_string(),
        })
    }
}

/// Whether `code` is a UUID in its text form: 36 characters, hyphens at 8, 13,
/// 18 and 23, hexadecimal digits (either case) elsewhere.
fn is_uuid(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The challenge endpoint's answer for a UUID is the MAC of that UUID:
    /// presented as the signature of a body that is that UUID, it is refused.
    #[test]
    fn a_challenge_answer_does_not_sign_its_code_as_a_body() {
        let secret = SecretString::new("client-secret-1");
        let v = LinkedInWebhookVerifier::new(Some(secret.clone()));
        let code = "890e4665-4dfe-4ab2-a7b6-4a5c1e0d7a2f";
        let answer = v
            .answer_challenge(&q(&[("challengeCode", code)]))
            .expect("a UUID is answered");
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        let mac = json["challengeResponse"].as_str().expect("response");
        for body in [code.to_owned(), format!(" {code}\n")] {
            let headers = WebhookHeaders::new().with(LINKEDIN_SIGNATURE_HEADER, mac);
            assert!(
                matches!(
                    v.verify(&headers, body.as_bytes()),
                    Err(WebhookError::SignatureMismatch { .. })
                ),
                "{body:?}"
            );
        }
        // A real notification signed the same way passes.
        let body = br#"{"notificationId":1}"#;
        let headers = WebhookHeaders::new().with(
            LINKEDIN_SIGNATURE_HEADER,
            LinkedInWebhookVerifier::sign(&secret, body),
        );
        assert_eq!(v.verify(&headers, body), Ok(()));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn meta_signature_cases_are_distinct() {
        let secret = SecretString::new("app-secret-123");
        let v = MetaWebhookVerifier::new(Some(secret.clone()), None);
        let body = br#"{"object":"page","entry":[]}"#;
        let good = WebhookHeaders::new().with(
            "x-hub-signature-256",
            MetaWebhookVerifier::sign(&secret, body),
        );
        assert_eq!(v.verify(&good, body), Ok(()));
        assert!(matches!(
            v.verify(&WebhookHeaders::new(), body),
            Err(WebhookError::MissingSignature { .. })
        ));
        let malformed = WebhookHeaders::new().with(META_SIGNATURE_HEADER, "sha1=abc");
        assert!(matches!(
            v.verify(&malformed, body),
            Err(WebhookError::MalformedSignature { .. })
        ));
        let not_hex =
            WebhookHeaders::new().with(META_SIGNATURE_HEADER, format!("sha256={}", "z".repeat(64)));
        assert!(matches!(
            v.verify(&not_hex, body),
            Err(WebhookError::MalformedSignature { .. })
        ));
        let mut tampered = body.to_vec();
        tampered[3] ^= 1;
        assert!(matches!(
            v.verify(&good, &tampered),
            Err(WebhookError::SignatureMismatch { .. })
        ));
        assert!(matches!(
            MetaWebhookVerifier::default().verify(&good, body),
            Err(WebhookError::NotConfigured { .. })
        ));
    }

    #[test]
    fn meta_handshake() {
        let v = MetaWebhookVerifier::new(None, Some("my-verify-token".into()));
        let ok = v
            .answer_challenge(&q(&[
                ("hub.mode", "subscribe"),
                ("hub.challenge", "1158201444"),
                ("hub.verify_token", "my-verify-token"),
            ]))
            .expect("handshake");
        assert_eq!(ok.body, "1158201444");
        assert_eq!(ok.status, 200);
        // PHP-style names are accepted too.
        assert!(
            v.answer_challenge(&q(&[
                ("hub_mode", "subscribe"),
                ("hub_challenge", "42"),
                ("hub_verify_token", "my-verify-token"),
            ]))
            .is_ok()
        );
        let bad = v.answer_challenge(&q(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "1"),
            ("hub.verify_token", "wrong"),
        ]));
        assert!(matches!(bad, Err(WebhookError::HandshakeRefused { .. })));
        let err = bad.expect_err("refused").to_string();
        assert!(!err.contains("my-verify-token"));
        let inject = v.answer_challenge(&q(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "<script>"),
            ("hub.verify_token", "my-verify-token"),
        ]));
        assert!(inject.is_err());
    }

    #[test]
    fn linkedin_accepts_both_readings_and_answers_challenge() {
        let secret = SecretString::new("li-client-secret");
        let v = LinkedInWebhookVerifier::new(Some(secret.clone()));
        let body = br#"{"notificationId":1}"#;
        let b = WebhookHeaders::new().with(
            "X-LI-Signature",
            LinkedInWebhookVerifier::sign(&secret, body),
        );
        assert_eq!(v.verify(&b, body), Ok(()));
        let bare = hmac_sha256_hex(secret.expose().as_bytes(), body);
        assert_eq!(
            v.verify(&WebhookHeaders::new().with("x-li-signature", bare), body),
            Ok(())
        );
        let mut prefixed = b"hmacsha256=".to_vec();
        prefixed.extend_from_slice(body);
        let a = hmac_sha256_hex(secret.expose().as_bytes(), &prefixed);
        assert_eq!(
            v.verify(&WebhookHeaders::new().with("x-li-signature", a), body),
            Ok(())
        );
        assert!(matches!(
            v.verify(&b, b"{\"notificationId\":2}"),
            Err(WebhookError::SignatureMismatch { .. })
        ));
        assert!(matches!(
            v.verify(&WebhookHeaders::new(), body),
            Err(WebhookError::MissingSignature { .. })
        ));
        assert!(matches!(
            v.verify(&WebhookHeaders::new().with("x-li-signature", "nope"), body),
            Err(WebhookError::MalformedSignature { .. })
        ));

        let answer = v
            .answer_challenge(&q(&[(
                "challengeCode",
                "890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6a",
            )]))
            .expect("challenge");
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(
            json["challengeCode"],
            "890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6a"
        );
        assert_eq!(
            json["challengeResponse"],
            hmac_sha256_hex(b"li-client-secret", b"890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6a")
        );
        assert_eq!(answer.content_type, "application/json");
    }
    /// A LinkedIn comment notification short enough to fit in a challenge code.
    const FORGED: &str = r#"{"notificationId":9,"action":"COMMENT","organizationalEntity":"urn:li:organization:2414183","generatedActivity":"urn:li:comment:(urn:li:activity:1,2)","decoratedGeneratedActivity":{"comment":{"text":"forged"}},"lastModifiedAt":1763800000000}"#;

    #[test]
    fn linkedin_challenge_is_not_a_signing_oracle() {
        assert!(FORGED.len() <= 256);
        let v = LinkedInWebhookVerifier::new(Some(SecretString::new("li-client-secret")));
        // The attacker asks the challenge endpoint to "sign" a notification...
        let answer = v.answer_challenge(&q(&[("challengeCode", FORGED)]));
        if let Ok(answer) = &answer {
            // ...and presents the answer as the signature of that notification.
            let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
            let sig = json["challengeResponse"]
                .as_str()
                .expect("response")
                .to_owned();
            let headers = WebhookHeaders::new().with(LINKEDIN_SIGNATURE_HEADER, sig);
            assert!(
                v.verify(&headers, FORGED.as_bytes()).is_err(),
                "a notification signed by the challenge endpoint was accepted"
            );
        }
        assert!(matches!(answer, Err(WebhookError::HandshakeRefused { .. })));
    }

    #[test]
    fn linkedin_challenge_must_be_a_uuid() {
        let v = LinkedInWebhookVerifier::new(Some(SecretString::new("li-client-secret")));
        let refused = |code: &str| {
            matches!(
                v.answer_challenge(&q(&[("challengeCode", code)])),
                Err(WebhookError::HandshakeRefused { .. })
            )
        };
        for bad in [
            "",
            "{}",
            "890e4a3b0d9c4a3c9bd17f0b2d1c1e6a",
            "890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6",
            "890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6aa",
            "890e4a3b-0d9c-4a3c-9bd1_7f0b2d1c1e6a",
            "890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6g",
            "890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1é",
            "{\"a\":1234567890123456789012345678901}",
            " 890e4a3b-0d9c-4a3c-9bd1-7f0b2d1c1e6a",
        ] {
            assert!(refused(bad), "{bad:?} was answered");
        }
        // Upper-case hex is a UUID too (RFC 9562 reads UUIDs case-insensitively).
        let upper = v
            .answer_challenge(&q(&[(
                "challengeCode",
                "890E4A3B-0D9C-4A3C-9BD1-7F0B2D1C1E6A",
            )]))
            .expect("upper case");
        assert!(upper.body.contains("890E4A3B-0D9C-4A3C-9BD1-7F0B2D1C1E6A"));
        // Refused before the secret is even looked up.
        assert!(matches!(
            LinkedInWebhookVerifier::default().answer_challenge(&q(&[("challengeCode", FORGED)])),
            Err(WebhookError::HandshakeRefused { .. })
        ));
    }
}
