//! [`TemplateGenerator`]: replies from per-tenant templates.

use std::collections::HashMap;

use async_trait::async_trait;
use nexiom_core::TenantId;

use super::{Draft, ReplyError, ReplyGenerator, ReplyRequest, clean_confidence};

/// Drafts replies from templates: one per tenant, with an optional default for
/// tenants that have none. `{name}` is replaced by the contact's name (or the
/// fallback, empty by default) and `{message}` by the text received; the
/// draft's confidence is the generator's configured confidence (1.0 by
/// default: a template says exactly what the tenant wrote).
///
/// ```
/// # tokio_test_block(async {
/// use nexiom_core::TenantId;
/// use nexiom_triage::{ReplyGenerator, ReplyKind, ReplyRequest, TemplateGenerator};
///
/// let tenant = TenantId::generate();
/// let generator = TemplateGenerator::new()
///     .with_template(tenant, "Bonjour {name}, merci pour « {message} » !");
/// let draft = generator
///     .generate(&ReplyRequest { tenant_id: tenant, kind: ReplyKind::Message,
///         contact_name: Some("Léa"), text: "Vos horaires ?" })
///     .await
///     .unwrap();
/// assert_eq!(draft.text, "Bonjour Léa, merci pour « Vos horaires ? » !");
/// assert_eq!(draft.confidence, Some(1.0));
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TemplateGenerator {
    templates: HashMap<TenantId, String>,
    default_template: Option<String>,
    name_fallback: String,
    confidence: f64,
}

impl Default for TemplateGenerator {
    fn default() -> Self {
        TemplateGenerator::new()
    }
}

impl TemplateGenerator {
    /// No templates yet, confidence 1.0, empty name fallback.
    pub fn new() -> Self {
        TemplateGenerator {
            templates: HashMap::new(),
            default_template: None,
            name_fallback: String::new(),
            confidence: 1.0,
        }
    }

    /// Sets the tenant's template.
    pub fn with_template(mut self, tenant: TenantId, template: impl Into<String>) -> Self {
        self.templates.insert(tenant, template.into());
        self
    }

    /// Sets the template of tenants that have none.
    pub fn with_default_template(mut self, template: impl Into<String>) -> Self {
        self.default_template = Some(template.into());
        self
    }

    /// What `{name}` becomes when the contact's name is unknown.
    pub fn with_name_fallback(mut self, fallback: impl Into<String>) -> Self {
        self.name_fallback = fallback.into();
        self
    }

    /// The confidence given to every draft (clamped into `0..=1`; a value that
    /// is not a number becomes 0).
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = if confidence.is_nan() {
            0.0
        } else {
            confidence.clamp(0.0, 1.0)
        };
        self
    }

    /// Fills a template. One pass, so a `{name}` inside the contact's message is
    /// left as written.
    fn render(template: &str, name: &str, message: &str) -> String {
        let mut out = String::with_capacity(template.len() + message.len());
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            if let Some(after) = tail.strip_prefix("{name}") {
                out.push_str(name);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{message}") {
                out.push_str(message);
                rest = after;
            } else {
                out.push('{');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }
}

#[async_trait]
impl ReplyGenerator for TemplateGenerator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        let template = self
            .templates
            .get(&request.tenant_id)
            .or(self.default_template.as_ref())
            .ok_or(ReplyError::NoTemplate(request.tenant_id))?;
        let name = request.contact_name.unwrap_or(&self.name_fallback);
        let text = Self::render(template, name, request.text);
        if text.trim().is_empty() {
            return Err(ReplyError::Malformed(format!(
                "the template of tenant {} renders an empty reply",
                request.tenant_id
            )));
        }
        Ok(Draft {
            text,
            confidence: clean_confidence(Some(self.confidence)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplyKind;

    fn request<'a>(tenant: TenantId, name: Option<&'a str>, text: &'a str) -> ReplyRequest<'a> {
        ReplyRequest {
            tenant_id: tenant,
            kind: ReplyKind::Comment,
            contact_name: name,
            text,
        }
    }

    #[tokio::test]
    async fn per_tenant_templates_default_and_fallbacks() {
        let a = TenantId::generate();
        let b = TenantId::generate();
        let only_a = TemplateGenerator::new()
            .with_template(a, "Hi {name}! You said: {message} {unknown} {")
            .with_name_fallback("there")
            .with_confidence(0.4);
        let draft = only_a
            .generate(&request(a, None, "{name} rocks"))
            .await
            .expect("draft");
        assert_eq!(draft.text, "Hi there! You said: {name} rocks {unknown} {");
        assert_eq!(draft.confidence, Some(0.4));
        assert_eq!(
            only_a.generate(&request(b, Some("Bo"), "x")).await,
            Err(ReplyError::NoTemplate(b))
        );
        let with_default = only_a.clone().with_default_template("Merci {name}");
        let draft = with_default
            .generate(&request(b, Some("Bo"), "x"))
            .await
            .expect("default");
        assert_eq!(draft.text, "Merci Bo");
        let blank = TemplateGenerator::new().with_default_template("{name}");
        assert!(matches!(
            blank.generate(&request(b, None, "x")).await,
            Err(ReplyError::Malformed(_))
        ));
        assert_eq!(
            TemplateGenerator::new()
                .with_confidence(f64::NAN)
                .confidence,
            0.0
        );
    }
}
