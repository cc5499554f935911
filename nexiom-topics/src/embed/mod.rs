//! Embeddings: the [`Embedder`] trait, the local [`LocalEmbedder`] (no network,
//! no model) and the [`OpenAiEmbedder`] client.

mod local;
mod openai;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

pub use local::{DEFAULT_DIMENSION, LocalEmbedder};
pub use openai::{DEFAULT_EMBEDDINGS_MODEL, MAX_INPUT_CHARS, OpenAiEmbedder, OpenAiEmbedderConfig};

/// Why texts could not be embedded.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The embedder is not configured (a missing API key or model, a zero
    /// dimension).
    #[error("the embedder is not configured: {0}")]
    NotConfigured(String),
    /// The endpoint could not be reached or did not answer in time, after
    /// every retry.
    #[error("the embeddings endpoint could not be reached: {0}")]
    Transport(String),
    /// The endpoint answered with an error status (after every retry for a
    /// 429 or 5xx).
    #[error("the embeddings endpoint answered HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What the endpoint said (truncated).
        message: String,
    },
    /// The answer is not usable: not JSON, too large, a vector missing, of
    /// another dimension or not finite.
    #[error("the embeddings endpoint's answer is not usable: {0}")]
    Malformed(String),
}

/// Turns texts into vectors of one fixed dimension, L2-normalized, in the
/// order of the texts. Implementations must be cheap to share, must not panic
/// on any text, and must keep secrets out of their errors and logs.
#[async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// The model's name, stored with each vector (vectors of different models
    /// are never compared).
    fn model(&self) -> &str;
    /// The length of every vector.
    fn dimension(&self) -> usize;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// For an embedder that learns from the texts it is about to embed (the
    /// local one's document frequencies), its copy fitted on `corpus`;
    /// `None` (the default) for one that does not.
    fn fitted(&self, corpus: &[String]) -> Option<Arc<dyn Embedder>> {
        let _ = corpus;
        None
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}
