//! [`LinkedInBuilder`]: hosts, `LinkedIn-Version`, app credentials, paging and
//! the HTTP core of a [`LinkedInConnector`].

use std::fmt;
use std::sync::Arc;

use nexiom_core::{Clock, SecretString, SystemClock};
use url::Url;

use super::LinkedInConnector;
use crate::error::ConnectorError;
use crate::http::{HttpConfig, HttpCore};
use crate::webhook::LinkedInWebhookVerifier;

/// The default REST host.
pub const DEFAULT_LINKEDIN_BASE_URL: &str = "https://api.linkedin.com";
/// The default OAuth host.
pub const DEFAULT_LINKEDIN_OAUTH_URL: &str = "https://www.linkedin.com";
/// The default `LinkedIn-Version` (YYYYMM; each version lives at least a year).
pub const DEFAULT_LINKEDIN_VERSION: &str = "202601";

/// Builds a [`LinkedInConnector`].
#[derive(Clone, Default)]
pub struct LinkedInBuilder {
    base_url: Option<String>,
    oauth_url: Option<String>,
    version: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    application_id: Option<String>,
    page_size: Option<u32>,
    http: HttpConfig,
    clock: Option<Arc<dyn Clock>>,
    core: Option<HttpCore>,
}

impl fmt::Debug for LinkedInBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInBuilder")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl LinkedInBuilder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        LinkedInBuilder::default()
    }

    /// Configured from `LINKEDIN_API_BASE_URL`, `LINKEDIN_OAUTH_BASE_URL`,
    /// `LINKEDIN_VERSION`, `LINKEDIN_CLIENT_ID`, `LINKEDIN_CLIENT_SECRET`,
    /// `LINKEDIN_APPLICATION_ID` (each optional).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        LinkedInBuilder {
            base_url: var("LINKEDIN_API_BASE_URL"),
            oauth_url: var("LINKEDIN_OAUTH_BASE_URL"),
            version: var("LINKEDIN_VERSION"),
            client_id: var("LINKEDIN_CLIENT_ID"),
            client_secret: var("LINKEDIN_CLIENT_SECRET").map(SecretString::new),
            application_id: var("LINKEDIN_APPLICATION_ID"),
            ..LinkedInBuilder::default()
        }
    }

    /// The REST base URL (a local server in tests).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The OAuth base URL (a local server in tests).
    pub fn with_oauth_url(mut self, url: impl Into<String>) -> Self {
        self.oauth_url = Some(url.into());
        self
    }

    /// The `LinkedIn-Version` header value (`YYYYMM`).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The app's client id (refresh grant).
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The app's client secret (refresh grant, webhook signatures).
    pub fn with_client_secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The developer application id (webhook subscriptions).
    pub fn with_application_id(mut self, id: impl Into<String>) -> Self {
        self.application_id = Some(id.into());
        self
    }

    /// Comments per page (1 to 100, default 50).
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n.clamp(1, 100));
        self
    }

    /// HTTP settings. Ignored with [`with_http_core`](Self::with_http_core).
    pub fn with_http_config(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// The clock. Ignored with [`with_http_core`](Self::with_http_core).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Shares an HTTP core with other connectors.
    pub fn with_http_core(mut self, core: HttpCore) -> Self {
        self.core = Some(core);
        self
    }

    /// Builds the connector.
    pub fn build(self) -> Result<LinkedInConnector, ConnectorError> {
        let parse = |s: Option<String>, default: &str, what: &str| {
            let raw = s.unwrap_or_else(|| default.to_owned());
            Url::parse(raw.trim_end_matches('/'))
                .map_err(|e| {
                    ConnectorError::config(format!("invalid LinkedIn {what} {raw:?}: {e}"))
                })
                .map(|u| u.as_str().trim_end_matches('/').to_owned())
        };
        let base = parse(self.base_url, DEFAULT_LINKEDIN_BASE_URL, "base URL")?;
        let oauth = parse(self.oauth_url, DEFAULT_LINKEDIN_OAUTH_URL, "OAuth URL")?;
        let version = self
            .version
            .unwrap_or_else(|| DEFAULT_LINKEDIN_VERSION.to_owned());
        if version.len() != 6 || !version.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConnectorError::config(format!(
                "invalid LinkedIn-Version {version:?} (expected YYYYMM)"
            )));
        }
        let core = match self.core {
            Some(c) => c,
            None => HttpCore::new(
                self.http,
                self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            )?,
        };
        let client_secret = self.client_secret.filter(|s| !s.is_empty());
        Ok(LinkedInConnector {
            verifier: LinkedInWebhookVerifier::new(client_secret.clone()),
            core,
            base,
            oauth,
            version,
            client_id: self.client_id,
            client_secret,
            application_id: self.application_id,
            page_size: self.page_size.unwrap_or(50),
            capabilities: LinkedInConnector::default_capabilities(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_checks_version_and_debug_is_redacted() {
        assert!(
            LinkedInConnector::builder()
                .with_version("2026-01")
                .build()
                .is_err()
        );
        let c = LinkedInConnector::builder()
            .with_client_secret("li-very-secret")
            .build()
            .expect("build");
        assert!(!format!("{c:?}").contains("li-very-secret"));
    }
}
