//! The checks of webhooks: documented samples, tampered signatures and
//! garbage bodies.

use super::run::{Check, Run, expect};
use crate::connector::PlatformConnectorExt;
use crate::error::{ConnectorError, WebhookError};
use crate::types::NormalizedEvent;
use crate::webhook::WebhookHeaders;

impl Run<'_> {
    pub(super) async fn webhook_samples(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        let samples = self.h.webhook_samples();
        expect(!samples.is_empty(), || {
            "the harness has no webhook sample".into()
        })?;
        for s in &samples {
            let headers = self.h.sign(&s.body);
            let events = c
                .verify_and_handle(&headers, &s.body)
                .map_err(|e| format!("sample {}: {e}", s.name))?;
            expect(events.len() == s.expected.len(), || {
                format!(
                    "sample {}: {} events, expected {}: {:?}",
                    s.name,
                    events.len(),
                    s.expected.len(),
                    events.iter().map(|e| &e.event_id).collect::<Vec<_>>()
                )
            })?;
            for (want, got) in s.expected.iter().zip(&events) {
                want.check(got)
                    .map_err(|d| format!("sample {}: {d}", s.name))?;
            }
            // Read event by event (as ingestion does), at the latest event's
            // time: the same events, none refused.
            let now = events
                .iter()
                .map(|e| e.occurred_at)
                .max()
                .unwrap_or_else(chrono::Utc::now);
            let items = c
                .verify_and_handle_events(&headers, &s.body, now)
                .map_err(|e| format!("sample {}, event by event: {e}", s.name))?;
            let per_event: Vec<NormalizedEvent> = items
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|r| format!("sample {}: event refused: {}", s.name, r.reason))?;
            expect(per_event == events, || {
                format!(
                    "sample {}: read event by event, the events differ from handle_webhook's",
                    s.name
                )
            })?;
        }
        Ok(())
    }

    pub(super) async fn tampered_webhooks(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        for s in self.h.webhook_samples() {
            let headers = self.h.sign(&s.body);
            if self.h.signs_bodies() {
                let mut tampered = s.body.clone();
                if let Some(b) = tampered.get_mut(s.body.len() / 2) {
                    *b ^= 0x01;
                }
                let mismatch = c.verify_webhook(&headers, &tampered);
                expect(
                    matches!(
                        mismatch,
                        Err(ConnectorError::Webhook(
                            WebhookError::SignatureMismatch { .. }
                        ))
                    ),
                    || format!("sample {}: tampered body gave {mismatch:?}", s.name),
                )?;
                let other = self.h.sign(b"another body");
                expect(c.verify_and_handle(&other, &s.body).is_err(), || {
                    format!(
                        "sample {}: a signature of another body was accepted",
                        s.name
                    )
                })?;
            }
            let missing = c.verify_webhook(&WebhookHeaders::new(), &s.body);
            expect(
                matches!(
                    missing,
                    Err(ConnectorError::Webhook(
                        WebhookError::MissingSignature { .. }
                    ))
                ),
                || format!("sample {}: no signature gave {missing:?}", s.name),
            )?;
            let malformed = c.verify_webhook(&self.h.malformed_signature(), &s.body);
            expect(
                matches!(
                    malformed,
                    Err(ConnectorError::Webhook(
                        WebhookError::MalformedSignature { .. }
                    ))
                ),
                || format!("sample {}: malformed signature gave {malformed:?}", s.name),
            )?;
        }
        Ok(())
    }

    pub(super) async fn garbage_webhooks(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        for body in [
            &b""[..],
            b"not json",
            b"{\"object\":\"nope\"}",
            b"null",
            b"\xff\xfe",
        ] {
            // Event by event, garbage is an `Err` or refused events, never an event.
            if let Ok(items) = c.handle_webhook_events(body, chrono::Utc::now())
                && items.iter().any(Result::is_ok)
            {
                return Err(format!(
                    "{:?} read event by event to an event",
                    String::from_utf8_lossy(body)
                ));
            }
            match c.handle_webhook(body) {
                Err(e) => self.seen(&e),
                Ok(ev) => {
                    return Err(format!(
                        "{:?} normalized to {} events",
                        String::from_utf8_lossy(body),
                        ev.len()
                    ));
                }
            }
        }
        Ok(())
    }
}
