//! [`Capabilities`]: what a platform (through its connector) accepts, and the
//! validation of content against it before any request is sent.

use chrono::{DateTime, Utc};
use nexiom_core::{Content, MediaKind};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// What a connector can do and the limits its platform documents.
///
/// Limits set to `None` are not checked (the platform publishes none, or this
/// connector does not know it). Sizes are in MB of 10^6 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Direct messages to a contact (`send_message`).
    pub dm: bool,
    /// Comments can be listed and replied to.
    pub comments: bool,
    /// The platform can hold a post and publish it at a given time itself.
    pub schedule_native: bool,
    /// Media kinds this connector publishes.
    pub media_kinds: Vec<MediaKind>,
    /// Largest image accepted, in MB.
    pub max_image_mb: Option<u32>,
    /// Largest video accepted, in MB.
    pub max_video_mb: Option<u32>,
    /// Longest video accepted, in seconds.
    pub max_video_seconds: Option<u32>,
    /// Longest text accepted, in characters (Unicode scalar values).
    pub max_text_length: usize,
    /// Longest text accepted next to media (a caption), when it differs.
    pub max_caption_length: Option<usize>,
    /// Most media items in one post.
    pub max_media_items: usize,
    /// A post must carry at least one media item (Instagram).
    pub requires_media: bool,
    /// The link is sent inside the text ([`Content::text_with_link`]: a
    /// WhatsApp message, an Instagram caption), so it counts toward the
    /// text's limit.
    #[serde(default)]
    pub link_in_text: bool,
}

impl Default for Capabilities {
    /// Permissive capabilities (used by the mock connector): everything allowed,
    /// 64 KiB of text, 10 media items.
    fn default() -> Self {
        Capabilities {
            dm: true,
            comments: true,
            schedule_native: false,
            media_kinds: MediaKind::ALL.to_vec(),
            max_image_mb: None,
            max_video_mb: None,
            max_video_seconds: None,
            max_text_length: 65_536,
            max_caption_length: None,
            max_media_items: 10,
            requires_media: false,
            link_in_text: false,
        }
    }
}

const MB: u64 = 1_000_000;

impl Capabilities {
    /// Checks `content` (and a native schedule request) against these capabilities.
    ///
    /// Connectors call it before any request, so a post that can never pass fails
    /// without touching the platform.
    ///
    /// ```
    /// use nexiom_connectors::{Capabilities, ValidationError};
    /// use nexiom_core::Content;
    /// let caps = Capabilities { max_text_length: 5, ..Capabilities::default() };
    /// let err = caps.validate("linkedin", &Content::text("too long"), None).unwrap_err();
    /// assert!(matches!(err, ValidationError::TextTooLong { len: 8, max: 5, .. }));
    /// ```
    pub fn validate(
        &self,
        platform: &str,
        content: &Content,
        schedule_at: Option<DateTime<Utc>>,
    ) -> Result<(), ValidationError> {
        if content.is_empty() {
            return Err(ValidationError::EmptyContent);
        }
        let max_text = if content.has_media() {
            self.max_caption_length.unwrap_or(self.max_text_length)
        } else {
            self.max_text_length
        };
        let len = if self.link_in_text {
            content.text_with_link().chars().count()
        } else {
            content.char_count()
        };
        if len > max_text {
            return Err(ValidationError::TextTooLong {
                platform: platform.to_owned(),
                len,
                max: max_text,
            });
        }
        if self.requires_media && !content.has_media() {
            return Err(ValidationError::MediaRequired {
                platform: platform.to_owned(),
            });
        }
        for media in &content.media {
            if !self.media_kinds.contains(&media.kind) {
                return Err(ValidationError::UnsupportedMedia {
                    platform: platform.to_owned(),
                    kind: media.kind,
                });
            }
            if media.url.trim().is_empty() {
                return Err(ValidationError::InvalidField {
                    field: "media.url",
                    reason: "must not be empty".into(),
                });
            }
            let limit_mb = match media.kind {
                MediaKind::Image => self.max_image_mb,
                MediaKind::Video => self.max_video_mb,
                _ => None,
            };
            if let (Some(max_mb), Some(size)) = (limit_mb, media.size_bytes)
                && size > u64::from(max_mb) * MB
            {
                return Err(ValidationError::MediaTooLarge {
                    platform: platform.to_owned(),
                    kind: media.kind,
                    size_bytes: size,
                    max_mb,
                });
            }
            if media.kind == MediaKind::Video
                && let (Some(max_secs), Some(secs)) = (self.max_video_seconds, media.duration_secs)
                && secs > max_secs
            {
                return Err(ValidationError::VideoTooLong {
                    platform: platform.to_owned(),
                    secs,
                    max_secs,
                });
            }
        }
        if content.media.len() > self.max_media_items {
            return Err(ValidationError::TooManyMedia {
                platform: platform.to_owned(),
                count: content.media.len(),
                max: self.max_media_items,
            });
        }
        if schedule_at.is_some() && !self.schedule_native {
            return Err(ValidationError::SchedulingUnsupported {
                platform: platform.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexiom_core::Media;

    fn ig_like() -> Capabilities {
        Capabilities {
            media_kinds: vec![MediaKind::Image, MediaKind::Video],
            max_image_mb: Some(8),
            max_video_seconds: Some(900),
            max_text_length: 2200,
            max_media_items: 1,
            requires_media: true,
            ..Capabilities::default()
        }
    }

    #[test]
    fn refuses_what_the_platform_cannot_take() {
        let caps = ig_like();
        assert_eq!(
            caps.validate("instagram", &Content::default(), None),
            Err(ValidationError::EmptyContent)
        );
        assert!(matches!(
            caps.validate("instagram", &Content::text("no media"), None),
            Err(ValidationError::MediaRequired { .. })
        ));
        let doc = Content::text("x").with_media(Media::new(MediaKind::Document, "https://a/b.pdf"));
        assert!(matches!(
            caps.validate("instagram", &doc, None),
            Err(ValidationError::UnsupportedMedia {
                kind: MediaKind::Document,
                ..
            })
        ));
        let big = Content::text("x")
            .with_media(Media::new(MediaKind::Image, "https://a/b.jpg").with_size(9_000_000));
        assert!(matches!(
            caps.validate("instagram", &big, None),
            Err(ValidationError::MediaTooLarge { max_mb: 8, .. })
        ));
        let mut long = Media::new(MediaKind::Video, "https://a/b.mp4");
        long.duration_secs = Some(901);
        assert!(matches!(
            caps.validate("instagram", &Content::text("x").with_media(long), None),
            Err(ValidationError::VideoTooLong { .. })
        ));
        let two = Content::text("x")
            .with_media(Media::new(MediaKind::Image, "https://a/1.jpg"))
            .with_media(Media::new(MediaKind::Image, "https://a/2.jpg"));
        assert!(matches!(
            caps.validate("instagram", &two, None),
            Err(ValidationError::TooManyMedia { .. })
        ));
        let ok = Content::text("hello").with_media(Media::new(MediaKind::Image, "https://a/1.jpg"));
        assert_eq!(caps.validate("instagram", &ok, None), Ok(()));
        assert!(matches!(
            caps.validate("instagram", &ok, Some(Utc::now())),
            Err(ValidationError::SchedulingUnsupported { .. })
        ));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let caps = Capabilities {
            max_text_length: 3,
            ..Capabilities::default()
        };
        assert_eq!(caps.validate("x", &Content::text("éàü"), None), Ok(()));
        assert!(caps.validate("x", &Content::text("éàüö"), None).is_err());
    }

    #[test]
    fn a_link_sent_inside_the_text_counts_toward_its_limit() {
        let caps = Capabilities {
            max_text_length: 20,
            link_in_text: true,
            ..Capabilities::default()
        };
        let text = "a".repeat(15);
        let with_link = Content::text(text.as_str()).with_link("https://x.io/p");
        // 15 + a line break + 14: refused before any call, not by the platform.
        assert!(matches!(
            caps.validate("x", &with_link, None),
            Err(ValidationError::TextTooLong {
                len: 30,
                max: 20,
                ..
            })
        ));
        // A text that holds the link already is sent as it is.
        let holds = Content::text("see https://x.io/p").with_link("https://x.io/p");
        assert_eq!(caps.validate("x", &holds, None), Ok(()));
        let separate = Capabilities {
            link_in_text: false,
            ..caps
        };
        assert_eq!(separate.validate("x", &with_link, None), Ok(()));
    }
}
