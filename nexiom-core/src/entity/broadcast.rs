//! WhatsApp broadcasts: who a post on a WhatsApp channel goes to (explicit
//! recipients or a stored audience of opted-in contacts), the approved
//! template used outside a recipient's 24-hour window, and one delivery record
//! per (post, recipient).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::enums::{BroadcastDeliveryState, DeliveryStatus};
use crate::error::CoreError;
use crate::id::{AudienceId, BroadcastContactId, BroadcastDeliveryId, ChannelId, PostId, TenantId};
use crate::validate;

/// At most this many explicit recipients on one post (a larger list belongs in
/// a stored [`Audience`]).
pub const MAX_EXPLICIT_RECIPIENTS: usize = 1_000;

/// At most this many template parameters.
pub const MAX_TEMPLATE_PARAMETERS: usize = 20;

/// Checks a WhatsApp recipient: a phone number or wa_id, digits with an
/// optional leading `+`, 1 to 20 digits.
pub fn validate_recipient(field: &'static str, recipient: &str) -> Result<(), CoreError> {
    let digits = recipient.strip_prefix('+').unwrap_or(recipient);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CoreError::invalid(
            field,
            format!("{recipient:?} is not a phone number or wa_id"),
        ));
    }
    Ok(())
}

/// The form a recipient is stored and compared in: without the leading `+`
/// (WhatsApp's `wa_id`, what webhooks carry).
pub fn normalize_recipient(recipient: &str) -> String {
    recipient.strip_prefix('+').unwrap_or(recipient).to_owned()
}

/// A contact of a WhatsApp channel and its marketing opt-in: the time and
/// source of the opt-in, and the time and reason of an opt-out (which wins
/// until the contact opts in again). Opted-out contacts are never sent a
/// broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastContact {
    /// Id.
    pub id: BroadcastContactId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The WhatsApp channel (business phone number).
    pub channel_id: ChannelId,
    /// The contact's wa_id (digits, no `+`).
    pub recipient: String,
    /// When the contact last opted in.
    pub opted_in_at: Option<DateTime<Utc>>,
    /// Where that opt-in came from (a form, a keyword, an import...).
    pub opt_in_source: Option<String>,
    /// When the contact last opted out (set: never sent to).
    pub opted_out_at: Option<DateTime<Utc>>,
    /// Why (for example the platform's "stop" preference).
    pub opt_out_reason: Option<String>,
    /// The time of the last change applied (older changes are ignored).
    pub updated_at: DateTime<Utc>,
}

impl BroadcastContact {
    /// Opted in and not opted out since.
    pub fn is_opted_in(&self) -> bool {
        self.opted_in_at.is_some() && self.opted_out_at.is_none()
    }
}

/// An opt-in or opt-out of a channel's contact, as of `at`. A change older
/// than the contact's last applied change is ignored (webhooks arrive out of
/// order).
#[derive(Debug, Clone, PartialEq)]
pub struct OptChange {
    /// Owner.
    pub tenant_id: TenantId,
    /// The WhatsApp channel.
    pub channel_id: ChannelId,
    /// Phone number or wa_id (stored without the `+`).
    pub recipient: String,
    /// `true`: opt in (clears an opt-out); `false`: opt out.
    pub opted_in: bool,
    /// The source of an opt-in, or the reason of an opt-out (non-empty).
    pub source: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl OptChange {
    /// Checks the recipient and the source; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate_recipient("recipient", &self.recipient)?;
        validate::key("source", &self.source)
    }
}

/// A named list of a channel's opted-in contacts, to broadcast to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audience {
    /// Id.
    pub id: AudienceId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The WhatsApp channel its contacts belong to.
    pub channel_id: ChannelId,
    /// Name, unique per channel.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input to create an [`Audience`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudience {
    /// Owner.
    pub tenant_id: TenantId,
    /// The WhatsApp channel.
    pub channel_id: ChannelId,
    /// Name (non-empty, unique per channel).
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewAudience {
    /// Checks the name; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)
    }
}

/// Who a WhatsApp post goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BroadcastAudience {
    /// These phone numbers / wa_ids (1 to [`MAX_EXPLICIT_RECIPIENTS`];
    /// duplicates count once). A recipient who opted out is still skipped.
    Recipients {
        /// The recipients.
        recipients: Vec<String>,
    },
    /// The opted-in members of a stored audience of the post's channel, as
    /// they are when the post is first claimed.
    Stored {
        /// The audience.
        audience_id: AudienceId,
    },
}

/// An approved WhatsApp template: what goes to a recipient outside the
/// 24-hour window (and to everyone when the post has no free-form use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastTemplate {
    /// The template's name, as approved.
    pub name: String,
    /// Its language code (for example `en_US`).
    pub language: String,
    /// The body's text parameters, in order.
    pub parameters: Vec<String>,
}

impl BroadcastTemplate {
    /// Checks the name, language and parameters.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("template.name", &self.name)?;
        validate::key("template.language", &self.language)?;
        if self.parameters.len() > MAX_TEMPLATE_PARAMETERS {
            return Err(CoreError::invalid(
                "template.parameters",
                format!("at most {MAX_TEMPLATE_PARAMETERS}"),
            ));
        }
        for p in &self.parameters {
            validate::text("template.parameters", p)?;
        }
        Ok(())
    }
}

/// What a post on a WhatsApp channel is sent as: its audience and, for the
/// recipients outside their 24-hour window, an approved template. Free-form
/// content goes only to recipients inside their window; without a template,
/// the others are refused before any call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostBroadcast {
    /// Owner.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// Who receives it.
    pub audience: BroadcastAudience,
    /// The template used outside the window.
    pub template: Option<BroadcastTemplate>,
}

impl PostBroadcast {
    /// Checks the recipients and the template; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        if let BroadcastAudience::Recipients { recipients } = &self.audience {
            if recipients.is_empty() || recipients.len() > MAX_EXPLICIT_RECIPIENTS {
                return Err(CoreError::invalid(
                    "recipients",
                    format!("1 to {MAX_EXPLICIT_RECIPIENTS} recipients"),
                ));
            }
            for r in recipients {
                validate_recipient("recipients", r)?;
            }
        }
        if let Some(t) = &self.template {
            t.validate()?;
        }
        Ok(())
    }
}

/// One recipient's message of a broadcast post, unique by (post, recipient):
/// a retry or a second worker finds this record and never sends twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastDelivery {
    /// Id (sent as the message's `biz_opaque_callback_data`, which status
    /// webhooks echo).
    pub id: BroadcastDeliveryId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// The recipient's wa_id.
    pub recipient: String,
    /// Where the send is.
    pub state: BroadcastDeliveryState,
    /// Attempts started.
    pub attempts: u32,
    /// Earliest next attempt of a `pending` delivery (`None`: at once).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last error.
    pub error: Option<String>,
    /// The platform's message id (wamid) once sent.
    pub provider_message_id: Option<String>,
    /// The latest delivery status the platform reported (monotonic).
    pub delivery_status: Option<DeliveryStatus>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A `pending` delivery claimed for a send (now `sending`), with what the
/// sender needs to choose free-form or template.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery, `sending`, its attempt counted.
    pub delivery: BroadcastDelivery,
    /// When the recipient last wrote to the channel, if ever (the 24-hour
    /// window is counted from it).
    pub last_inbound_at: Option<DateTime<Utc>>,
}

/// How one send ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Accepted by the platform with this message id.
    Sent {
        /// The wamid.
        provider_message_id: String,
    },
    /// Failed; tried again (back to `pending`) not before `next_attempt_at`.
    Retry {
        /// The error.
        error: String,
        /// Earliest next attempt.
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed for good.
    Failed {
        /// The error.
        error: String,
    },
}

impl DeliveryOutcome {
    /// Checks the strings; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        match self {
            DeliveryOutcome::Sent {
                provider_message_id,
            } => validate::key("provider_message_id", provider_message_id),
            DeliveryOutcome::Retry { error, .. } | DeliveryOutcome::Failed { error } => {
                validate::text("error", error)
            }
        }
    }
}

/// Where a broadcast post's deliveries are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BroadcastCounts {
    /// Waiting for an attempt.
    pub pending: u64,
    /// Claimed for a send.
    pub sending: u64,
    /// Sent.
    pub sent: u64,
    /// Failed for good.
    pub failed: u64,
    /// Of the `sent`: those the platform then reported `failed` by a status
    /// webhook (taken by the Cloud API, never delivered: a number that is
    /// not on WhatsApp, an undeliverable message). Counted within `sent`,
    /// not beside it.
    #[serde(default)]
    pub undelivered: u64,
    /// The earliest `next_attempt_at` among pending deliveries that have one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl BroadcastCounts {
    /// Every delivery is sent or failed for good.
    pub fn is_settled(&self) -> bool {
        self.pending == 0 && self.sending == 0
    }

    /// All deliveries.
    pub fn total(&self) -> u64 {
        self.pending + self.sending + self.sent + self.failed
    }

    /// The post's one-line account of its fan-out, as its `error_message`
    /// carries it: `"2 of 3 recipients sent, 1 failed"`.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} recipients sent, {} failed",
            self.sent,
            self.total(),
            self.failed
        )
    }
}

/// The `platform_post_id` of a broadcast post once published (a broadcast
/// is many messages, so it has no platform id of its own):
/// `"broadcast:<post id>"`.
pub fn broadcast_platform_post_id(post: PostId) -> String {
    format!("broadcast:{post}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_and_normalized() {
        assert!(validate_recipient("r", "+33612345678").is_ok());
        assert!(validate_recipient("r", "15551234567").is_ok());
        for bad in ["", "+", "abc", "+33 6", "123456789012345678901"] {
            assert!(validate_recipient("r", bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_recipient("+33612345678"), "33612345678");
        assert_eq!(normalize_recipient("15551234567"), "15551234567");
    }

    #[test]
    fn broadcast_specs_are_checked() {
        let post = PostBroadcast {
            tenant_id: TenantId::generate(),
            post_id: PostId::generate(),
            audience: BroadcastAudience::Recipients { recipients: vec![] },
            template: None,
        };
        assert!(post.validate().is_err());
        let ok = PostBroadcast {
            audience: BroadcastAudience::Recipients {
                recipients: vec!["+15551234567".into()],
            },
            template: Some(BroadcastTemplate {
                name: "promo_v1".into(),
                language: "en_US".into(),
                parameters: vec!["Alex".into()],
            }),
            ..post.clone()
        };
        assert!(ok.validate().is_ok());
        let bad_template = PostBroadcast {
            template: Some(BroadcastTemplate {
                name: String::new(),
                language: "en_US".into(),
                parameters: vec![],
            }),
            ..ok
        };
        assert!(bad_template.validate().is_err());
    }
}
