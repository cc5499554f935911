//! [`TenantSettings`]: what each tenant configures on its own (triage, reply
//! drafting, auto-replies per channel, worker overrides). Secrets (an API key
//! of the tenant's own) are not here: they are stored sealed, apart, and
//! never read back into this type.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::enums::Triage;
use crate::error::CoreError;
use crate::id::ChannelId;
use crate::validate;

/// The default similarity threshold of triage (an item closer than this to
/// an ignore-example is ignored).
pub const DEFAULT_TENANT_SIMILARITY: f64 = 0.70;

/// How a tenant's items are triaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriageSettings {
    /// Outcome when no rule decides (default `auto_reply`).
    pub default_outcome: Triage,
    /// Similarity (strictly) above which an item like an ignore-example is
    /// ignored, in `0..=1` (default 0.70).
    pub similarity_threshold: f64,
}

impl Default for TriageSettings {
    fn default() -> Self {
        TriageSettings {
            default_outcome: Triage::AutoReply,
            similarity_threshold: DEFAULT_TENANT_SIMILARITY,
        }
    }
}

/// How a tenant's replies are drafted; `None` keeps the generator's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplySettings {
    /// The chat model.
    pub model: Option<String>,
    /// The system prompt (instructions and tone).
    pub prompt: Option<String>,
    /// Sampling temperature, `0..=2`.
    pub temperature: Option<f64>,
    /// The language to answer in (a BCP 47 tag such as `fr` or `en-GB`).
    pub language: Option<String>,
}

/// One tenant's settings. Every field has a default, so a tenant that never
/// saved any has [`TenantSettings::default`]; unknown fields are refused (a
/// typo is an error, not a silent default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Triage.
    pub triage: TriageSettings,
    /// Reply drafting.
    pub reply: ReplySettings,
    /// Channels whose items are never auto-replied (they are decided as when
    /// AI control is OFF).
    pub auto_reply_off_channels: BTreeSet<ChannelId>,
    /// Worker name → enabled, overriding the worker's global flag for this
    /// tenant (workers that work tenant by tenant honour it).
    pub workers: BTreeMap<String, bool>,
}

/// The longest system prompt accepted, in bytes.
pub const MAX_PROMPT_LEN: usize = 8 * 1024;

impl TenantSettings {
    /// Refuses values out of range: a threshold outside `0..=1`, a
    /// temperature outside `0..=2`, an empty or over-long model, prompt or
    /// language, a language that is not a BCP 47-like tag, a bad worker name.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::unit_interval(
            "triage.similarity_threshold",
            self.triage.similarity_threshold,
        )?;
        if let Some(model) = &self.reply.model {
            validate::key("reply.model", model)?;
        }
        if let Some(prompt) = &self.reply.prompt {
            validate::text("reply.prompt", prompt)?;
            if prompt.trim().is_empty() || prompt.len() > MAX_PROMPT_LEN {
                return Err(CoreError::invalid(
                    "reply.prompt",
                    format!("must be 1 to {MAX_PROMPT_LEN} bytes"),
                ));
            }
        }
        if let Some(t) = self.reply.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err(CoreError::invalid(
                "reply.temperature",
                format!("{t} is not between 0 and 2"),
            ));
        }
        if let Some(language) = &self.reply.language {
            let tag_ok = !language.is_empty()
                && language.len() <= 35
                && language.split('-').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !tag_ok {
                return Err(CoreError::invalid(
                    "reply.language",
                    format!("{language:?} is not a language tag such as \"fr\" or \"en-GB\""),
                ));
            }
        }
        for name in self.workers.keys() {
            validate::key("workers", name)?;
        }
        Ok(())
    }

    /// Whether the worker runs for this tenant: its override, else `global`.
    pub fn worker_enabled(&self, worker: &str, global: bool) -> bool {
        self.workers.get(worker).copied().unwrap_or(global)
    }

    /// Whether items of `channel` may be auto-replied.
    pub fn auto_reply_on(&self, channel: ChannelId) -> bool {
        !self.auto_reply_off_channels.contains(&channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_fields_are_refused() {
        let s = TenantSettings::default();
        assert!(s.validate().is_ok());
        assert_eq!(s.triage.default_outcome, Triage::AutoReply);
        let parsed: TenantSettings =
            serde_json::from_value(serde_json::json!({"triage": {"default_outcome": "escalate"}}))
                .unwrap();
        assert_eq!(parsed.triage.default_outcome, Triage::Escalate);
        assert_eq!(
            parsed.triage.similarity_threshold,
            DEFAULT_TENANT_SIMILARITY
        );
        assert!(
            serde_json::from_value::<TenantSettings>(
                serde_json::json!({"triage": {"treshold": 1}})
            )
            .is_err()
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut s = TenantSettings::default();
        s.triage.similarity_threshold = 1.5;
        assert!(s.validate().is_err());
        let mut s = TenantSettings::default();
        s.reply.temperature = Some(2.5);
        assert!(s.validate().is_err());
        let mut s = TenantSettings::default();
        s.reply.language = Some("fr FR".into());
        assert!(s.validate().is_err());
        s.reply.language = Some("en-GB".into());
        assert!(s.validate().is_ok());
        s.reply.prompt = Some("  ".into());
        assert!(s.validate().is_err());
    }

    #[test]
    fn overrides() {
        let mut s = TenantSettings::default();
        s.workers.insert("aggregate_kpis".into(), false);
        assert!(!s.worker_enabled("aggregate_kpis", true));
        assert!(s.worker_enabled("cluster_daily", true));
        assert!(!s.worker_enabled("cluster_daily", false));
        let channel = ChannelId::generate();
        s.auto_reply_off_channels.insert(channel);
        assert!(!s.auto_reply_on(channel));
        assert!(s.auto_reply_on(ChannelId::generate()));
    }
}
