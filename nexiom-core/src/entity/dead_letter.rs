//! Dead letters: webhook events (or whole bodies) that were acknowledged to the
//! platform but could not be read or stored, kept raw so a person can see them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::{ChannelId, DeadLetterId, TenantId};
use crate::platform::Platform;
use crate::validate;

/// The longest excerpt kept of a dead-lettered event or body, in bytes.
pub const MAX_DEAD_LETTER_EXCERPT: usize = 16 * 1024;

/// The longest reason kept, in bytes.
pub const MAX_DEAD_LETTER_REASON: usize = 2 * 1024;

/// An event (or a whole body) that a verified webhook brought but that could
/// not be normalized or stored. Unique by `(platform, key)`: a redelivery of
/// the same event adds nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Id.
    pub id: DeadLetterId,
    /// Platform.
    pub platform: Platform,
    /// The tenant, when the event's account is connected.
    pub tenant_id: Option<TenantId>,
    /// The channel, when the event's account is connected.
    pub channel_id: Option<ChannelId>,
    /// The deduplication key (see [`NewDeadLetter::key`]).
    pub key: String,
    /// The start of the raw event (or body), at most [`MAX_DEAD_LETTER_EXCERPT`] bytes.
    pub excerpt: String,
    /// Why it was refused.
    pub reason: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// Input to store a [`DeadLetter`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// Platform.
    pub platform: Platform,
    /// Tenant, when known (must exist).
    pub tenant_id: Option<TenantId>,
    /// Channel, when known (needs the tenant, and must be the tenant's).
    pub channel_id: Option<ChannelId>,
    /// The deduplication key, a key: the same event delivered again must give
    /// the same key (for example a hash of its raw bytes).
    pub key: String,
    /// Excerpt (free text, at most [`MAX_DEAD_LETTER_EXCERPT`] bytes).
    pub excerpt: String,
    /// Reason (free text, at most [`MAX_DEAD_LETTER_REASON`] bytes).
    pub reason: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

impl NewDeadLetter {
    /// A dead letter for `raw` (any bytes) with `reason`: the excerpt is the
    /// start of `raw` as text (invalid UTF-8 and NUL characters replaced,
    /// cut to [`MAX_DEAD_LETTER_EXCERPT`] bytes on a character boundary) and
    /// the reason is made storable the same way. The key is given by the
    /// caller (it must be stable across redeliveries).
    pub fn new(
        platform: Platform,
        key: impl Into<String>,
        raw: &[u8],
        reason: &str,
        received_at: DateTime<Utc>,
    ) -> Self {
        NewDeadLetter {
            platform,
            tenant_id: None,
            channel_id: None,
            key: key.into(),
            excerpt: storable(&String::from_utf8_lossy(raw), MAX_DEAD_LETTER_EXCERPT),
            reason: storable(reason, MAX_DEAD_LETTER_REASON),
            received_at,
        }
    }

    /// The same dead letter, attributed to a tenant's channel.
    pub fn for_channel(mut self, tenant: TenantId, channel: ChannelId) -> Self {
        self.tenant_id = Some(tenant);
        self.channel_id = Some(channel);
        self
    }

    /// Checks the key, the excerpt and the reason, and that a channel comes
    /// with its tenant; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("key", &self.key)?;
        bounded("excerpt", &self.excerpt, MAX_DEAD_LETTER_EXCERPT)?;
        bounded("reason", &self.reason, MAX_DEAD_LETTER_REASON)?;
        if self.channel_id.is_some() && self.tenant_id.is_none() {
            return Err(CoreError::invalid(
                "channel_id",
                "a dead letter's channel needs its tenant",
            ));
        }
        Ok(())
    }
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), CoreError> {
    validate::text(field, value)?;
    if value.len() > max {
        return Err(CoreError::invalid(
            field,
            format!("is {} bytes long; the limit is {max}", value.len()),
        ));
    }
    Ok(())
}

/// `text` without NUL characters, cut to at most `max` bytes on a character
/// boundary.
fn storable(text: &str, max: usize) -> String {
    let mut out = text.replace('\0', "\u{FFFD}");
    if out.len() > max {
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_storable() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut raw = b"\xff\x00ok".to_vec();
        raw.extend("é".repeat(MAX_DEAD_LETTER_EXCERPT).as_bytes());
        let d = NewDeadLetter::new(Platform::WhatsApp, "k", &raw, "bad\0reason", at);
        assert!(d.excerpt.len() <= MAX_DEAD_LETTER_EXCERPT);
        assert!(d.excerpt.starts_with("\u{FFFD}\u{FFFD}ok"));
        assert!(!d.reason.contains('\0'));
        assert!(d.validate().is_ok());
        let orphan = NewDeadLetter {
            channel_id: Some(ChannelId::generate()),
            ..d.clone()
        };
        assert!(orphan.validate().is_err());
        let long = NewDeadLetter {
            excerpt: "a".repeat(MAX_DEAD_LETTER_EXCERPT + 1),
            ..d.clone()
        };
        assert!(long.validate().is_err());
        let no_key = NewDeadLetter {
            key: String::new(),
            ..d
        };
        assert!(no_key.validate().is_err());
    }
}
