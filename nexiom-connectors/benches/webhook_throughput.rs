//! Webhook verify + normalize throughput for a 2 KB WhatsApp body, beside the raw
//! HMAC-SHA256 throughput of the same bytes measured in the same run (the ratio is
//! the overhead over the crypto floor); then one batched body of 2,700 messages
//! (the receiver bench's large body), with its JSON parse alone beside it.
//!
//! ```text
//! cargo bench -p nexiom-connectors --bench webhook_throughput
//! ```
//!
//! Plain `std::time` timing (no benchmark framework): each measurement runs for
//! about one second after a warm-up and reports the mean.

use std::hint::black_box;
use std::time::{Duration, Instant};

use nexiom_connectors::{
    MetaWebhookVerifier, PlatformConnector, PlatformConnectorExt, WebhookHeaders,
    WhatsAppConnector, hmac_sha256_hex,
};
use nexiom_core::SecretString;

const SECRET: &str = "bench-app-secret-0123456789abcdef";

fn body_of_about(bytes: usize) -> Vec<u8> {
    let template = |text: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],"messages":[{{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{{"body":"{text}"}}}}]}}}}]}}]}}"#
        )
    };
    let overhead = template("").len();
    let text =
        "Bonjour, est-ce disponible en bleu ? ".repeat(bytes.saturating_sub(overhead) / 38 + 1);
    let body = template(&text[..bytes.saturating_sub(overhead).min(text.len())]);
    body.into_bytes()
}

/// One body of `events` text messages from 20 senders, as Meta batches a
/// busy number's traffic (the receiver bench's large body).
fn batched_body(events: usize) -> Vec<u8> {
    let contacts: Vec<String> = (0..20)
        .map(|s| format!(r#"{{"profile":{{"name":"C{s}"}},"wa_id":"3361{s:05}"}}"#))
        .collect();
    let messages: Vec<String> = (0..events)
        .map(|n| {
            format!(
                r#"{{"from":"3361{:05}","id":"w.b.{n}","timestamp":"1763780000","type":"text","text":{{"body":"k"}}}}"#,
                n % 20
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{}],"messages":[{}]}}}}]}}]}}"#,
        contacts.join(","),
        messages.join(",")
    )
    .into_bytes()
}

fn measure(name: &str, mut f: impl FnMut() -> usize) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        black_box(f());
    }
    let start = Instant::now();
    let mut iterations = 0u64;
    let mut items = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        items += f() as u64;
        iterations += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_sec = iterations as f64 / secs;
    println!(
        "{name:<32} {per_sec:>12.0} bodies/s  {:>12.0} events/s  {:>8.2} µs/body",
        items as f64 / secs,
        1e6 / per_sec
    );
    per_sec
}

fn main() {
    let body = body_of_about(2048);
    let headers = WebhookHeaders::new().with(
        "X-Hub-Signature-256",
        MetaWebhookVerifier::sign(&SecretString::new(SECRET), &body),
    );
    let connector = match WhatsAppConnector::builder().with_app_secret(SECRET).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot build the connector: {e}");
            return;
        }
    };
    match connector.verify_and_handle(&headers, &body) {
        Ok(events) if events.len() == 1 => {}
        other => {
            eprintln!("the benchmark body does not verify and normalize: {other:?}");
            return;
        }
    }
    println!("body: {} bytes", body.len());
    let hmac = measure("raw HMAC-SHA256", || {
        black_box(hmac_sha256_hex(SECRET.as_bytes(), black_box(&body)));
        1
    });
    let verify = measure("verify only", || {
        usize::from(
            connector
                .verify_webhook(black_box(&headers), black_box(&body))
                .is_ok(),
        )
    });
    let full = measure("verify + normalize", || {
        connector
            .verify_and_handle(black_box(&headers), black_box(&body))
            .map_or(0, |e| e.len())
    });
    println!(
        "verify + normalize runs at {:.1}% of the HMAC floor ({:.2}x slower); verify alone {:.1}%",
        100.0 * full / hmac,
        hmac / full,
        100.0 * verify / hmac
    );

    let big = batched_body(2_700);
    let big_headers = WebhookHeaders::new().with(
        "X-Hub-Signature-256",
        MetaWebhookVerifier::sign(&SecretString::new(SECRET), &big),
    );
    println!("batched body: {} bytes, 2,700 events", big.len());
    let parse = measure("parse only (serde_json::Value)", || {
        serde_json::from_slice::<serde_json::Value>(black_box(&big)).map_or(0, |_| 2_700)
    });
    let big_full = measure("verify + normalize", || {
        connector
            .verify_and_handle(black_box(&big_headers), black_box(&big))
            .map_or(0, |e| e.len())
    });
    println!(
        "{:.2} ms per batched body, of which parsing {:.2} ms",
        1e3 / big_full,
        1e3 / parse
    );
}
