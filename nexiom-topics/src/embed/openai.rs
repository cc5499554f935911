//! [`OpenAiEmbedder`]: vectors from an OpenAI-compatible `/embeddings` endpoint.

use std::time::Duration;

use async_trait::async_trait;
use nexiom_core::SecretString;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::{EmbedError, Embedder, normalize};

/// The default model.
pub const DEFAULT_EMBEDDINGS_MODEL: &str = "text-embedding-3-small";

/// Characters of one text sent to be embedded. The endpoint refuses, for the
/// whole batch, an input over the model's token limit (8,192 for OpenAI's
/// embedding models), which one long comment in a rare script or of emoji
/// can pass at a few tokens a character; its first 2,000 characters say
/// enough of what it is about to cluster it.
pub const MAX_INPUT_CHARS: usize = 2_000;

/// `text` cut to its first [`MAX_INPUT_CHARS`] characters.
fn input(text: &str) -> &str {
    match text.char_indices().nth(MAX_INPUT_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Where and how to call the endpoint. The API key is a [`SecretString`]: it
/// is sent only in the `Authorization` header and never appears in `Debug`
/// output, errors or logs.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    /// API root; `/embeddings` is appended.
    pub base_url: String,
    /// Bearer token.
    pub api_key: SecretString,
    /// Model name.
    pub model: String,
    /// The length of the model's vectors (1536 for `text-embedding-3-small`);
    /// an answer of another length is refused.
    pub dimension: usize,
    /// Texts per request (default 64).
    pub batch_size: usize,
    /// Attempts per batch for a transport failure, a 429 or a 5xx (default 3).
    pub max_attempts: u32,
    /// Pause before the second attempt, doubled after each (default 500 ms).
    pub backoff: Duration,
    /// Timeout of one request (default 30 s).
    pub timeout: Duration,
    /// The largest answer read, in bytes (default 32 MiB); a larger one is
    /// refused as malformed rather than held in memory.
    pub max_response_bytes: usize,
}

impl OpenAiEmbedderConfig {
    /// The OpenAI API with this key and [`DEFAULT_EMBEDDINGS_MODEL`] (1536 dimensions).
    pub fn new(api_key: SecretString) -> Self {
        OpenAiEmbedderConfig {
            base_url: "https://api.openai.com/v1".to_owned(),
            api_key,
            model: DEFAULT_EMBEDDINGS_MODEL.to_owned(),
            dimension: 1536,
            batch_size: 64,
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
            max_response_bytes: 32 << 20,
        }
    }

    /// Another API root (a mock server in tests, another provider).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Another model, with the length of its vectors.
    pub fn with_model(mut self, model: impl Into<String>, dimension: usize) -> Self {
        self.model = model.into();
        self.dimension = dimension;
        self
    }
}

/// Embeds through an OpenAI-compatible `/embeddings` endpoint, `batch_size`
/// texts per request. A batch that fails with a transport error, a 429 or a
/// 5xx is tried again after a growing pause, up to `max_attempts`; any other
/// failure is returned at once. Vectors are checked (count, length, finite)
/// and L2-normalized.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    config: OpenAiEmbedderConfig,
    endpoint: String,
    client: reqwest::Client,
}

impl OpenAiEmbedder {
    /// A client for `config`. `NotConfigured` for an empty key or model, a zero
    /// dimension or batch size, or an HTTP client that cannot be built.
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self, EmbedError> {
        if config.api_key.is_empty() {
            return Err(EmbedError::NotConfigured("the API key is empty".into()));
        }
        if config.model.trim().is_empty() {
            return Err(EmbedError::NotConfigured("the model is empty".into()));
        }
        if config.dimension == 0 || config.batch_size == 0 {
            return Err(EmbedError::NotConfigured(
                "the dimension and the batch size must be at least 1".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| EmbedError::NotConfigured(format!("HTTP client: {e}")))?;
        let endpoint = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        Ok(OpenAiEmbedder {
            config,
            endpoint,
            client,
        })
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut pause = self.config.backoff;
        let attempts = self.config.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.request(texts).await {
                Ok(vectors) => return Ok(vectors),
                Err(e) if attempt < attempts && is_retryable(&e) => {
                    warn!(attempt, error = %e, "embeddings request failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(|t| input(t)).collect();
        let body = json!({ "model": self.config.model, "input": inputs });
        let mut response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(self.config.api_key.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| EmbedError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let cap = self.config.max_response_bytes;
        if response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(EmbedError::Malformed(format!(
                "the answer is larger than {cap} bytes"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| EmbedError::Transport(e.without_url().to_string()))?
        {
            if bytes.len() + chunk.len() > cap {
                return Err(EmbedError::Malformed(format!(
                    "the answer is larger than {cap} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Neither the key nor the customers' texts as sent (an endpoint
            // may echo its request) go into the error, which is logged and
            // stored.
            return Err(EmbedError::Status {
                status: status.as_u16(),
                message: nexiom_triage::error_excerpt(
                    &bytes,
                    &[self.config.api_key.expose()],
                    &inputs,
                ),
            });
        }
        let answer: EmbeddingsAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| EmbedError::Malformed(format!("not an embeddings answer: {e}")))?;
        self.vectors(answer, texts.len())
    }

    /// The answer's vectors in input order, checked and normalized.
    fn vectors(
        &self,
        answer: EmbeddingsAnswer,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in answer.data {
            let slot = slots.get_mut(item.index).ok_or_else(|| {
                EmbedError::Malformed(format!("index {} out of range", item.index))
            })?;
            if item.embedding.len() != self.config.dimension {
                return Err(EmbedError::Malformed(format!(
                    "a vector of {} dimensions where {} were expected",
                    item.embedding.len(),
                    self.config.dimension
                )));
            }
            if item.embedding.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::Malformed("a vector is not finite".into()));
            }
            let mut v = item.embedding;
            normalize(&mut v);
            *slot = Some(v);
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| EmbedError::Malformed(format!("no vector for text {i}"))))
            .collect()
    }
}

fn is_retryable(e: &EmbedError) -> bool {
    match e {
        EmbedError::Transport(_) => true,
        EmbedError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    #[serde(default)]
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.config.model
    }

    fn dimension(&self) -> usize {
        self.config.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_incomplete_configuration() {
        let empty = OpenAiEmbedderConfig::new(SecretString::new(""));
        assert!(matches!(
            OpenAiEmbedder::new(empty),
            Err(EmbedError::NotConfigured(_))
        ));
        let zero = OpenAiEmbedderConfig::new(SecretString::new("k")).with_model("m", 0);
        assert!(matches!(
            OpenAiEmbedder::new(zero),
            Err(EmbedError::NotConfigured(_))
        ));
        let long = "語".repeat(MAX_INPUT_CHARS + 10);
        assert_eq!(input(&long).chars().count(), MAX_INPUT_CHARS);
        assert_eq!(input("short"), "short");
        let debug = format!("{:?}", OpenAiEmbedderConfig::new(SecretString::new("sk-1")));
        assert!(!debug.contains("sk-1"));
    }
}
