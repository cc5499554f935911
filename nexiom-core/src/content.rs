//! [`Content`]: what a post or a message carries.

use serde::{Deserialize, Serialize};

use crate::enums::MediaKind;
use crate::error::CoreError;
use crate::validate;

/// A media attachment, referenced by URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// Image, video, audio or document.
    pub kind: MediaKind,
    /// Where the platform can fetch it (a public URL).
    pub url: String,
    /// Size in bytes, when known (checked against a connector's limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Duration in seconds for video and audio, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u32>,
    /// MIME type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl Media {
    /// A media item of `kind` at `url`, size and duration unknown.
    pub fn new(kind: MediaKind, url: impl Into<String>) -> Self {
        Media {
            kind,
            url: url.into(),
            size_bytes: None,
            duration_secs: None,
            mime_type: None,
        }
    }

    /// The same media with its size in bytes.
    pub fn with_size(mut self, size_bytes: u64) -> Self {
        self.size_bytes = Some(size_bytes);
        self
    }
}

/// Text, media and an optional link: the payload of a post or message.
///
/// ```
/// use nexiom_core::{Content, Media, MediaKind};
/// let c = Content::text("Spring sale starts today")
///     .with_media(Media::new(MediaKind::Image, "https://cdn.example/sale.jpg"))
///     .with_link("https://shop.example/sale");
/// assert_eq!(c.char_count(), 24);
/// assert!(c.has_media());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Content {
    /// The text (may be empty for a media-only post).
    #[serde(default)]
    pub text: String,
    /// Attachments, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Media>,
    /// A link to attach, when the platform supports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Content {
    /// Text-only content.
    pub fn text(text: impl Into<String>) -> Self {
        Content {
            text: text.into(),
            ..Content::default()
        }
    }

    /// Adds a media attachment.
    pub fn with_media(mut self, media: Media) -> Self {
        self.media.push(media);
        self
    }

    /// Sets the link.
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// Length of the text in Unicode scalar values (what platforms count).
    pub fn char_count(&self) -> usize {
        self.text.chars().count()
    }

    /// The text with the link after it on a line of its own, unless the text
    /// holds the link already: what a platform without a link field (a
    /// WhatsApp message, an Instagram caption) is sent.
    pub fn text_with_link(&self) -> String {
        match &self.link {
            Some(link) if !self.text.contains(link.as_str()) => {
                if self.text.is_empty() {
                    link.clone()
                } else {
                    format!("{}\n{link}", self.text)
                }
            }
            _ => self.text.clone(),
        }
    }

    /// Whether any media is attached.
    pub fn has_media(&self) -> bool {
        !self.media.is_empty()
    }

    /// Whether there is neither text, media nor link.
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty() && self.media.is_empty() && self.link.is_none()
    }

    /// Checks the text, then link and media (as `content`); the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::text("text", &self.text)?;
        validate::opt_text("content", self.link.as_deref())?;
        for media in &self.media {
            validate::text("content", &media.url)?;
            validate::opt_text("content", media.mime_type.as_deref())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_reports_text_then_content() {
        assert_eq!(Content::text("Hello").validate(), Ok(()));
        assert!(matches!(
            Content::text("bad\0text").validate(),
            Err(CoreError::Invalid { field: "text", .. })
        ));
        let media = Content::text("ok").with_media(Media::new(MediaKind::Image, "https://x/\0"));
        assert!(matches!(
            media.validate(),
            Err(CoreError::Invalid {
                field: "content",
                ..
            })
        ));
        let both = Content::text("a\0").with_link("b\0");
        assert!(matches!(
            both.validate(),
            Err(CoreError::Invalid { field: "text", .. })
        ));
    }
}
