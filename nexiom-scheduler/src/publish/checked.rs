//! A gateway's answers made storable before the queue acts on them.
//!
//! A batch's settlements go to the store in one statement, which refuses
//! the whole batch when one value is invalid. What a platform answers is
//! outside input: an error message may hold a NUL character (PostgreSQL
//! cannot store it), a "published" answer may carry an id the store refuses
//! (blank, a control character, longer than a key). So every answer is
//! checked here, once, where it enters the queue:
//!
//! - failure messages keep their text with NUL characters replaced and are
//!   cut to what a text column takes;
//! - a URL that cannot be stored is dropped (it is informative only);
//! - a publication whose id cannot be stored is an ambiguous outcome: the
//!   platform may have created the post, but the queue cannot record it, so
//!   it is looked up (and a lookup answering such an id cannot tell), and
//!   the post ends `outcome_unknown` instead of being published twice or
//!   poisoning its batch.

use nexiom_core::validate::{self, MAX_TEXT_LEN};

use super::gateway::{PublishFailure, PublishedPost};

/// `text` as a text column takes it: NUL characters replaced by U+FFFD, at
/// most [`MAX_TEXT_LEN`] bytes (cut at a character boundary).
pub(crate) fn storable_text(text: &str) -> String {
    let mut text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_owned()
    };
    if text.len() > MAX_TEXT_LEN {
        let mut end = MAX_TEXT_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `failure` with a storable message.
pub(super) fn failure(failure: PublishFailure) -> PublishFailure {
    let clean = |m: String| {
        if m.contains('\0') || m.len() > MAX_TEXT_LEN {
            storable_text(&m)
        } else {
            m
        }
    };
    match failure {
        PublishFailure::RateLimited {
            message,
            retry_after,
        } => PublishFailure::RateLimited {
            message: clean(message),
            retry_after,
        },
        PublishFailure::Transient {
            message,
            retry_after,
        } => PublishFailure::Transient {
            message: clean(message),
            retry_after,
        },
        PublishFailure::Unauthorized(m) => PublishFailure::Unauthorized(clean(m)),
        PublishFailure::Permanent(m) => PublishFailure::Permanent(clean(m)),
        PublishFailure::Ambiguous(m) => PublishFailure::Ambiguous(clean(m)),
        PublishFailure::NeedsReauth(m) => PublishFailure::NeedsReauth(clean(m)),
    }
}

/// The post as it can be stored, or why its id cannot be.
fn storable(mut post: PublishedPost) -> Result<PublishedPost, String> {
    if let Err(err) = validate::key("platform_post_id", &post.platform_post_id) {
        return Err(err.to_string());
    }
    if validate::opt_text("url", post.url.as_deref()).is_err() {
        post.url = None;
    }
    Ok(post)
}

/// A publish call's answer, checked.
pub(super) fn published(
    result: Result<PublishedPost, PublishFailure>,
) -> Result<PublishedPost, PublishFailure> {
    match result {
        Ok(post) => storable(post).map_err(|why| {
            PublishFailure::Ambiguous(format!(
                "the platform answered that it published the post with an id that cannot be \
                 stored ({why})"
            ))
        }),
        Err(f) => Err(failure(f)),
    }
}

/// A lookup's answer, checked: a post found under an id that cannot be
/// stored leaves the lookup unable to tell.
pub(super) fn looked_up(
    result: Result<Option<PublishedPost>, PublishFailure>,
) -> Result<Option<PublishedPost>, PublishFailure> {
    match result {
        Ok(Some(post)) => storable(post).map(Some).map_err(|why| {
            PublishFailure::Permanent(format!(
                "the post was found under an id that cannot be stored ({why})"
            ))
        }),
        Ok(None) => Ok(None),
        Err(f) => Err(failure(f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, url: Option<&str>) -> PublishedPost {
        PublishedPost {
            platform_post_id: id.into(),
            url: url.map(Into::into),
        }
    }

    #[test]
    fn messages_lose_their_nul_characters_and_are_cut_to_a_text_column() {
        let f = failure(PublishFailure::Permanent("bad\0request".into()));
        assert_eq!(f.message(), "bad\u{FFFD}request");
        let long = "é".repeat(MAX_TEXT_LEN);
        let cut = storable_text(&long);
        assert!(cut.len() <= MAX_TEXT_LEN && cut.chars().all(|c| c == 'é'));
        assert!(validate::text("m", &storable_text("a\0b")).is_ok());
    }

    #[test]
    fn an_id_that_cannot_be_stored_is_an_ambiguous_publication() {
        for id in [" ", "1\u{7}2", &"9".repeat(300)] {
            let answer = published(Ok(post(id, None)));
            assert!(
                matches!(&answer, Err(PublishFailure::Ambiguous(m)) if m.contains("cannot be stored")),
                "{id:?}: {answer:?}"
            );
            assert!(matches!(
                looked_up(Ok(Some(post(id, None)))),
                Err(PublishFailure::Permanent(_))
            ));
        }
        let ok = published(Ok(post("123_456", Some("https://x/\0")))).unwrap();
        assert_eq!(ok.platform_post_id, "123_456");
        assert_eq!(ok.url, None, "a URL that cannot be stored is dropped");
        assert_eq!(looked_up(Ok(None)), Ok(None));
    }
}
