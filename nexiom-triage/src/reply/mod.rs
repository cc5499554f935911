//! Reply generation: the [`ReplyGenerator`] trait and its two implementations,
//! [`TemplateGenerator`] (per-tenant templates) and [`OpenAiCompatibleGenerator`]
//! (any OpenAI-compatible chat-completions endpoint, such as OpenRouter).
//!
//! A generator drafts the answer to one inbound message or comment and says how
//! confident it is; triage compares that confidence with the deciding rule's
//! `confidence_min`. A generator never sends anything: sending is the
//! auto-reply step's job, under the tenant's AI control.

mod openai;
mod template;

use std::fmt;

use async_trait::async_trait;
use nexiom_core::TenantId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use openai::{
    DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MAX_RESPONSE_BYTES, OpenAiCompatibleGenerator,
    OpenAiConfig, error_excerpt,
};
pub use template::TemplateGenerator;

/// What a draft answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// A direct message.
    Message,
    /// A public comment on a post.
    Comment,
}

/// The item to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyRequest<'a> {
    /// Whose item it is (templates are per tenant).
    pub tenant_id: TenantId,
    /// A direct message or a comment.
    pub kind: ReplyKind,
    /// The contact's display name, when known.
    pub contact_name: Option<&'a str>,
    /// The text received.
    pub text: &'a str,
}

/// A drafted reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The reply text (never empty).
    pub text: String,
    /// How sure the generator is that the draft is a good answer, in `0..=1`;
    /// `None` when it could not say (a rule with `confidence_min` then
    /// escalates the item).
    pub confidence: Option<f64>,
}

/// Why no draft could be made. Triage never fails on it: the item is escalated
/// with this error as the reason.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// No template is configured for the tenant (and no default).
    #[error("no reply template is configured for tenant {0}")]
    NoTemplate(TenantId),
    /// The generator is not configured (a missing API key or model).
    #[error("the reply generator is not configured: {0}")]
    NotConfigured(String),
    /// The endpoint could not be reached, or did not answer in time.
    #[error("the reply endpoint could not be reached: {0}")]
    Transport(String),
    /// The endpoint answered with an error status.
    #[error("the reply endpoint answered HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What the endpoint said: a short excerpt, with the API key, bearer
        /// tokens, `sk-` keys and the customer's text taken out.
        message: String,
    },
    /// The endpoint's answer is larger than the configured cap; it was not
    /// read further.
    #[error("the reply endpoint's answer is larger than the {limit_bytes}-byte limit")]
    TooLarge {
        /// The cap in force.
        limit_bytes: usize,
    },
    /// The endpoint's answer holds no usable draft.
    #[error("the reply endpoint's answer holds no usable draft: {0}")]
    Malformed(String),
}

/// Drafts replies. Implementations must be cheap to share (`Send + Sync`), must
/// not panic on any input, and must keep secrets out of their errors.
#[async_trait]
pub trait ReplyGenerator: Send + Sync + fmt::Debug {
    /// Drafts the reply to one item.
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError>;

    /// Drafts the reply with a tenant's own settings (model, prompt,
    /// temperature, language; `None` fields keep the generator's). A
    /// generator that has no use for them (templates) drafts as
    /// [`ReplyGenerator::generate`] does, which is the default.
    async fn generate_with(
        &self,
        request: &ReplyRequest<'_>,
        settings: &nexiom_core::ReplySettings,
    ) -> Result<Draft, ReplyError> {
        let _ = settings;
        self.generate(request).await
    }
}

/// A confidence as a generator may report it: kept when it is a number in
/// `0..=1`, dropped otherwise.
pub(crate) fn clean_confidence(value: Option<f64>) -> Option<f64> {
    value.filter(|c| c.is_finite() && (0.0..=1.0).contains(c))
}
