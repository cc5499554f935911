//! The builder shared by the three Meta connectors (generated per connector by
//! `meta_builder!`, so each has its own type and docs).

/// Generates `$builder` for `$connector` with the Graph settings.
macro_rules! meta_builder {
    ($builder:ident, $connector:ident, $platform:literal, $env_prefix:literal) => {
        #[doc = concat!("Builds a [`", stringify!($connector), "`].")]
        ///
        /// Defaults: `https://graph.facebook.com`, Graph version
        /// [`DEFAULT_GRAPH_VERSION`](crate::DEFAULT_GRAPH_VERSION), default HTTP
        /// settings, the system clock, no app secret (webhook verification then
        /// fails with `NotConfigured`).
        #[derive(Debug, Clone, Default)]
        pub struct $builder {
            graph: $crate::graph::GraphConfig,
            http: $crate::http::HttpConfig,
            clock: Option<std::sync::Arc<dyn nexiom_core::Clock>>,
            core: Option<$crate::http::HttpCore>,
        }

        impl $builder {
            /// A builder with the defaults.
            pub fn new() -> Self {
                Self::default()
            }

            #[doc = concat!("A builder configured from the environment: `META_APP_ID`, `META_APP_SECRET`, `META_GRAPH_VERSION`, `", $env_prefix, "_API_BASE_URL`, `", $env_prefix, "_VERIFY_TOKEN` (each optional).")]
            pub fn from_env() -> Self {
                let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
                let mut b = Self::new();
                if let Some(v) = var("META_APP_ID") {
                    b.graph.app_id = Some(v);
                }
                if let Some(v) = var("META_APP_SECRET") {
                    b.graph.app_secret = Some(v.into());
                }
                if let Some(v) = var("META_GRAPH_VERSION") {
                    b.graph.version = v;
                }
                if let Some(v) = var(concat!($env_prefix, "_API_BASE_URL")) {
                    b.graph.base_url = v;
                }
                if let Some(v) = var(concat!($env_prefix, "_VERIFY_TOKEN")) {
                    b.graph.verify_token = Some(v.into());
                }
                b
            }

            /// The Graph base URL (a local server in tests).
            pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
                self.graph.base_url = url.into();
                self
            }

            /// The Graph API version, for example `v25.0`.
            pub fn with_version(mut self, version: impl Into<String>) -> Self {
                self.graph.version = version.into();
                self
            }

            /// The Meta app id (token exchange).
            pub fn with_app_id(mut self, app_id: impl Into<String>) -> Self {
                self.graph.app_id = Some(app_id.into());
                self
            }

            /// The Meta app secret (webhook signatures, token exchange).
            pub fn with_app_secret(mut self, secret: impl Into<nexiom_core::SecretString>) -> Self {
                self.graph.app_secret = Some(secret.into());
                self
            }

            /// The webhook handshake's verify token.
            pub fn with_verify_token(mut self, token: impl Into<nexiom_core::SecretString>) -> Self {
                self.graph.verify_token = Some(token.into());
                self
            }

            /// HTTP settings (timeouts, retries, breaker). Ignored with
            /// [`with_http_core`](Self::with_http_core).
            pub fn with_http_config(mut self, http: $crate::http::HttpConfig) -> Self {
                self.http = http;
                self
            }

            /// The clock (token expiry, schedule windows, policy). Ignored with
            /// [`with_http_core`](Self::with_http_core), whose clock is used.
            pub fn with_clock(mut self, clock: std::sync::Arc<dyn nexiom_core::Clock>) -> Self {
                self.clock = Some(clock);
                self
            }

            /// Shares an HTTP core (connection pool, per-channel guard) with other
            /// connectors.
            pub fn with_http_core(mut self, core: $crate::http::HttpCore) -> Self {
                self.core = Some(core);
                self
            }

            fn parts(
                self,
            ) -> Result<($crate::graph::GraphClient, $crate::webhook::MetaWebhookVerifier), $crate::error::ConnectorError> {
                let core = match self.core {
                    Some(core) => core,
                    None => $crate::http::HttpCore::new(
                        self.http,
                        self.clock
                            .unwrap_or_else(|| std::sync::Arc::new(nexiom_core::SystemClock)),
                    )?,
                };
                let verifier = $crate::webhook::MetaWebhookVerifier::new(
                    self.graph.app_secret.clone(),
                    self.graph.verify_token.clone(),
                );
                let graph = $crate::graph::GraphClient::new($platform, core, &self.graph)?;
                Ok((graph, verifier))
            }
        }
    };
}

pub(crate) use meta_builder;
