//! Topics for Nexiom: what people talk about, per day and per post.
//!
//! - [`Embedder`]: [`LocalEmbedder`] (TF-IDF over words, word pairs and
//!   character n-grams, accents folded, hashed to a fixed dimension; no
//!   network, no model) or [`OpenAiEmbedder`] (any OpenAI-compatible
//!   `/embeddings` endpoint, batched, retried, with timeouts).
//! - [`cluster`]: HDBSCAN on a bounded sample for dense groups, merged into
//!   topics by average linkage, the other points assigned to their nearest
//!   topic when close enough; noise stays unassigned. Deterministic for a
//!   seed.
//! - [`c_tf_idf`] labels, an optional [`Labeller`] ([`GeneratorLabeller`]
//!   through the chat-completions generator of `nexiom-triage`).
//! - [`match_topics`]: a topic keeps its id from one day to the next.
//! - [`TopicRunner`]: a tenant's runs (last 24 hours, last 7 days, each post
//!   with at least 20 comments), stored through `TopicStore`.
//! - [`eval`]: the labelled evaluation set and its scores.
//!
//! ```
//! use nexiom_topics::{LocalEmbedder, TopicConfig, find_topics};
//!
//! let texts: Vec<String> = (0..30)
//!     .flat_map(|i| [
//!         format!("ma livraison est en retard, commande {i}"),
//!         format!("quels sont vos horaires d'ouverture le samedi {i} ?"),
//!     ])
//!     .collect();
//! let embedder = LocalEmbedder::default().fit(&texts);
//! let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedder.embed_one(t)).collect();
//! let topics = find_topics(&texts, &vectors, &TopicConfig::default());
//! assert_eq!(topics.len(), 2);
//! assert!(topics.iter().any(|t| t.terms.contains(&"horaires".to_string())));
//! ```
#![forbid(unsafe_code)]

mod cluster;
mod embed;
mod error;
pub mod eval;
mod features;
mod hdbscan;
mod identity;
mod label;
mod metrics;
mod model;
mod runner;

pub use cluster::{
    Cluster, ClusterConfig, Clustering, FALLBACK_POINTS, MergeUntil, cluster, dot, merge_groups,
};
pub use embed::{
    DEFAULT_DIMENSION, DEFAULT_EMBEDDINGS_MODEL, EmbedError, Embedder, LocalEmbedder,
    MAX_INPUT_CHARS, OpenAiEmbedder, OpenAiEmbedderConfig,
};
pub use error::TopicsError;
pub use features::{features, is_stopword, words};
pub use hdbscan::{DistanceMatrix, HdbscanParams, hdbscan};
pub use identity::match_topics;
pub use label::{
    GeneratorLabeller, LABEL_SYSTEM_PROMPT, Labeller, c_tf_idf, fit_label, terms_label,
};
pub use metrics::{ari, nmi};
pub use model::{FoundTopic, TopicConfig, assignments, find_topics};
pub use runner::{RunnerConfig, ScopeReport, TopicRunner};
