//! Messaging policy, checked before a send (platform-apis §1.1, §2.5, §2.6):
//! messaging windows and one private reply per comment.

use chrono::{DateTime, Utc};

use crate::error::PolicyError;
use crate::types::{MessageBody, OutboundMessage, PrivateReply};

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

/// Meta's private-reply window: 7 days from the comment's creation (Instagram and
/// Messenger Private Replies docs).
pub(crate) const PRIVATE_REPLY_WINDOW_DAYS: i64 = 7;

/// What a refused private reply may be replaced by.
pub(crate) const PRIVATE_REPLY_ALTERNATIVE: &str = "a public reply to the comment, or a direct message once the person writes to you (24 h window)";

/// Refuses a private reply the caller's record says was already sent, or to a
/// comment older than the window. A comment time in the future (clock skew) is
/// inside the window.
pub(crate) fn check_private_reply(
    platform: &str,
    reply: &PrivateReply,
    now: DateTime<Utc>,
) -> Result<(), PolicyError> {
    if reply.already_sent {
        return Err(PolicyError::PrivateReplyAlreadySent {
            platform: platform.to_owned(),
            comment_id: reply.comment_id.clone(),
            allowed: PRIVATE_REPLY_ALTERNATIVE,
        });
    }
    let age = now - reply.comment_created_at;
    if age > chrono::Duration::days(PRIVATE_REPLY_WINDOW_DAYS) {
        return Err(PolicyError::OutsidePrivateReplyWindow {
            platform: platform.to_owned(),
            comment_id: reply.comment_id.clone(),
            hours_since: age.num_hours(),
            window_days: PRIVATE_REPLY_WINDOW_DAYS,
            allowed: PRIVATE_REPLY_ALTERNATIVE,
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

    #[test]
    fn one_private_reply_per_comment_within_seven_days() {
        let now = Utc
            .with_ymd_and_hms(2026, 5, 9, 12, 0, 0)
            .single()
            .expect("t");
        let reply = PrivateReply::new("c1", "Here is the link", now - chrono::Duration::days(7));
        assert!(
            check_private_reply("instagram", &reply, now).is_ok(),
            "day 7 is inside"
        );
        let late = PrivateReply::new(
            "c1",
            "x",
            now - chrono::Duration::days(7) - chrono::Duration::seconds(1),
        );
        let err = check_private_reply("instagram", &late, now).expect_err("outside");
        assert!(matches!(
            err,
            PolicyError::OutsidePrivateReplyWindow {
                window_days: 7,
                hours_since: 168,
                ..
            }
        ));
        assert!(err.to_string().contains("a public reply"));
        let again = reply.clone().with_already_sent(true);
        let err = check_private_reply("facebook", &again, now).expect_err("second");
        assert!(
            matches!(err, PolicyError::PrivateReplyAlreadySent { ref comment_id, .. } if comment_id == "c1")
        );
        assert!(err.to_string().contains("one per comment"));
        let future = PrivateReply::new("c2", "x", now + chrono::Duration::minutes(5));
        assert!(check_private_reply("facebook", &future, now).is_ok());
    }
}
