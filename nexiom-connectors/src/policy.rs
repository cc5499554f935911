//! Messaging-window policy, checked before a send (platform-apis §1.1, §2.6).

use chrono::{DateTime, Utc};

use crate::error::PolicyError;
use crate::types::{MessageBody, OutboundMessage};

/// WhatsApp's customer-service window and Messenger / Instagram's standard
/// messaging window, in hours.
pub(crate) const MESSAGING_WINDOW_HOURS: i64 = 24;

/// Refuses a free-form message whose contact last wrote more than the window ago.
/// Templates pass (they are what WhatsApp allows outside the window); an unknown
/// last-inbound time passes (the platform decides).
pub(crate) fn check_window(
    platform: &str,
    message: &OutboundMessage,
    now: DateTime<Utc>,
    allowed: &'static str,
) -> Result<(), PolicyError> {
    if matches!(message.body, MessageBody::Template(_)) {
        return Ok(());
    }
    let Some(last) = message.last_inbound_at else {
        return Ok(());
    };
    let age = now - last;
    if age > chrono::Duration::hours(MESSAGING_WINDOW_HOURS) {
        return Err(PolicyError::OutsideMessagingWindow {
            platform: platform.to_owned(),
            hours_since: age.num_hours(),
            window_hours: MESSAGING_WINDOW_HOURS,
            allowed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Template;
    use chrono::TimeZone;

    #[test]
    fn free_form_outside_window_is_refused_templates_pass() {
        let now = Utc
            .with_ymd_and_hms(2026, 5, 2, 12, 0, 0)
            .single()
            .expect("t");
        let mut m = OutboundMessage::text("+33600000000", "hello");
        m.last_inbound_at = Some(now - chrono::Duration::hours(25));
        let err = check_window("whatsapp", &m, now, "a template message").expect_err("outside");
        assert!(err.to_string().contains("a template message"));
        m.last_inbound_at = Some(now - chrono::Duration::hours(23));
        assert!(check_window("whatsapp", &m, now, "x").is_ok());
        m.last_inbound_at = None;
        assert!(check_window("whatsapp", &m, now, "x").is_ok());
        let mut t =
            OutboundMessage::template("+33600000000", Template::new("hello_world", "en_US"));
        t.last_inbound_at = Some(now - chrono::Duration::days(30));
        assert!(check_window("whatsapp", &t, now, "x").is_ok());
    }
}
