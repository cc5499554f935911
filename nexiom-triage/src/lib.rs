//! Triage for Nexiom: deciding, for every inbound message and comment, whether to
//! ignore it, escalate it to a person, or answer it automatically — the last only
//! while the tenant's AI control is ON.
//!
//! Reply generation sits behind [`ReplyGenerator`]: [`TemplateGenerator`]
//! (per-tenant templates) and [`OpenAiCompatibleGenerator`] (chat completions).
//!
//! [`TriageEngine`] is pure (no I/O, no clock): compile a tenant's rules and
//! ignore-examples once, then decide any number of items. The order of the steps
//! is documented on [`TriageEngine`].
//!
//! ```
//! use chrono::Utc;
//! use nexiom_core::{AiRule, RuleId, RuleType, TenantId, Triage};
//! use nexiom_triage::{TriageConfig, TriageEngine, TriageInput};
//!
//! let rule = |name: &str, rule_type, keywords: &[&str]| AiRule {
//!     id: RuleId::generate(),
//!     tenant_id: TenantId::generate(),
//!     rule_type,
//!     name: name.into(),
//!     keywords: keywords.iter().map(|k| k.to_string()).collect(),
//!     patterns: vec![],
//!     confidence_min: None,
//!     enabled: true,
//!     priority: 0,
//!     created_at: Utc::now(),
//!     updated_at: Utc::now(),
//! };
//! let engine = TriageEngine::compile(
//!     &[rule("complaints", RuleType::Escalate, &["probleme", "remboursement"]),
//!       rule("opening hours", RuleType::Auto, &["horaires"])],
//!     &[],
//!     TriageConfig::default(),
//! )?;
//! let input = |text| TriageInput { text, has_media: false, generator_confidence: Some(0.9), ai_control_on: true };
//! assert_eq!(engine.decide(&input("Gros PROBLÈME avec ma commande")).triage, Triage::Escalate);
//! assert_eq!(engine.decide(&input("Quels sont vos horaires ?")).triage, Triage::AutoReply);
//! # Ok::<(), nexiom_triage::TriageError>(())
//! ```
#![forbid(unsafe_code)]

mod engine;
mod error;
mod reply;
mod similarity;
mod text;

pub use engine::{
    Classification, DEFAULT_SIMILARITY_THRESHOLD, Decision, Reason, RuleRef, TriageConfig,
    TriageEngine, TriageInput,
};
pub use error::TriageError;
pub use reply::{
    DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MAX_RESPONSE_BYTES, Draft, OpenAiCompatibleGenerator,
    OpenAiConfig, ReplyError, ReplyGenerator, ReplyKind, ReplyRequest, TemplateGenerator,
    error_excerpt,
};
pub use similarity::SimilarityStats;
pub use text::{fold, fold_for_matching};
