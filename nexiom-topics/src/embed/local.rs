//! [`LocalEmbedder`]: sparse TF-IDF over words, word pairs and character
//! n-grams, hashed into a fixed dimension.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{EmbedError, Embedder, normalize};
use crate::features::features;

/// The default vector length: small enough to store per message (2 KiB as
/// `float4[]`) and to index later, large enough that hashing collisions stay
/// rare for short texts.
pub const DEFAULT_DIMENSION: usize = 512;

/// A feature seen in fewer documents than this is dropped by a fitted embedder
/// (it cannot bring two texts closer).
const MIN_DF: u32 = 2;

/// The local embedder: needs no network and no model download.
///
/// Each text's [features](crate::features) get sub-linear term frequency
/// (`1 + ln tf`) times inverse document frequency, and are hashed into
/// `dimension` signed buckets (the "hashing trick": a second bit of the hash
/// chooses the sign, so collisions cancel out on average), then the vector is
/// L2-normalized.
///
/// Document frequencies come from [`LocalEmbedder::fit`] over the texts about
/// to be clustered (a day of a tenant's messages): features of only one text
/// are dropped and frequent ones weigh less. An unfitted embedder weighs every
/// feature 1.
#[derive(Debug, Clone)]
pub struct LocalEmbedder {
    dimension: usize,
    idf: Option<Arc<HashMap<u64, f32>>>,
}

impl Default for LocalEmbedder {
    fn default() -> Self {
        LocalEmbedder::new(DEFAULT_DIMENSION)
    }
}

impl LocalEmbedder {
    /// An unfitted embedder of `dimension` (at least 1; 0 becomes 1).
    pub fn new(dimension: usize) -> Self {
        LocalEmbedder {
            dimension: dimension.max(1),
            idf: None,
        }
    }

    /// The same embedder with document frequencies from `corpus`.
    pub fn fit<S: AsRef<str>>(&self, corpus: &[S]) -> LocalEmbedder {
        let mut df: HashMap<u64, u32> = HashMap::new();
        for text in corpus {
            for (h, _) in features(text.as_ref()) {
                *df.entry(h).or_insert(0) += 1;
            }
        }
        let n = corpus.len() as f32;
        let idf = df
            .into_iter()
            .filter(|(_, d)| *d >= MIN_DF)
            .map(|(h, d)| (h, ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0))
            .collect();
        LocalEmbedder {
            dimension: self.dimension,
            idf: Some(Arc::new(idf)),
        }
    }

    /// Whether [`fit`](LocalEmbedder::fit) gave it document frequencies.
    pub fn is_fitted(&self) -> bool {
        self.idf.is_some()
    }

    /// The vector of one text (synchronous; [`Embedder::embed`] calls it).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0_f32; self.dimension];
        let dim = self.dimension as u64;
        for (h, tf) in features(text) {
            let idf = match &self.idf {
                Some(idf) => match idf.get(&h) {
                    Some(w) => *w,
                    None => continue,
                },
                None => 1.0,
            };
            let tf = if tf > 1.0 { 1.0 + tf.ln() } else { tf };
            let weight = tf * idf;
            let mixed = h.rotate_left(29) ^ h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let bucket = usize::try_from(mixed % dim).unwrap_or(0);
            let sign = if (mixed >> 63) == 0 { 1.0 } else { -1.0 };
            v[bucket] += sign * weight;
        }
        normalize(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        "local-tfidf-hash-v1"
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }

    fn fitted(&self, corpus: &[String]) -> Option<Arc<dyn Embedder>> {
        Some(Arc::new(self.fit(corpus)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn close_texts_are_close_and_vectors_are_unit() {
        let e = LocalEmbedder::default();
        let a = e.embed_one("Ma livraison est en retard");
        let b = e.embed_one("livraison en RETARD !!");
        let c = e.embed_one("Quels sont vos horaires d'ouverture ?");
        assert!((cos(&a, &a) - 1.0).abs() < 1e-4);
        assert!(cos(&a, &b) > 0.6, "{}", cos(&a, &b));
        assert!(cos(&a, &c) < 0.2, "{}", cos(&a, &c));
        assert_eq!(
            e.embed_one("😀 !!").iter().filter(|x| **x != 0.0).count(),
            0
        );
    }

    #[test]
    fn accents_and_case_do_not_matter() {
        let e = LocalEmbedder::default();
        assert_eq!(e.embed_one("Livré à l'ÉTÉ"), e.embed_one("livre a l ete"));
    }

    #[test]
    fn fitting_drops_unique_features_and_is_deterministic() {
        let corpus = ["colis en retard", "retard du colis", "horaires du samedi"];
        let e = LocalEmbedder::new(64).fit(&corpus);
        assert!(e.is_fitted());
        // "samedi" and "horaires" occur once: nothing of the third text is kept
        // but shared character n-grams.
        let v = e.embed_one("colis en retard");
        assert_eq!(v, e.embed_one("colis en retard"));
        assert!((cos(&v, &v) - 1.0).abs() < 1e-4);
        assert_eq!(e.dimension(), 64);
    }
}
