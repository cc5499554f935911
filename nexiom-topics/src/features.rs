//! Text to weighted hashed features: what the local embedder and the labels read.
//!
//! A text is folded ([`nexiom_triage::fold`]: lower case, accents removed), its
//! `@mentions`, links and emoji dropped, letters repeated three times or more
//! collapsed (`plsss` → `pls`), and cut into words of letters and digits. French
//! and English function words ([`is_stopword`]) and words of one character are
//! dropped. Its features are then:
//!
//! - each word (weight 1),
//! - each pair of adjacent kept words (weight [`BIGRAM_WEIGHT`]),
//! - the character 3-, 4- and 5-grams of each word framed as `<word>` (weight
//!   [`CHAR_WEIGHT`] each), which make `livraison`, `livraisn` and `livré` close.
//!
//! Features are 64-bit FNV-1a hashes (with a kind prefix, so a word and a
//! character n-gram never share a hash), sorted, so that everything built on
//! them is deterministic.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The weight of a word bigram, relative to a word.
pub const BIGRAM_WEIGHT: f32 = 0.6;
/// The weight of one character n-gram, relative to a word.
pub const CHAR_WEIGHT: f32 = 0.6;

/// French and English function words and chat fillers that say nothing of a
/// topic, folded (no accents).
const STOPWORDS: &[&str] = &[
    // French
    "a", "ai", "alors", "au", "aucun", "aussi", "autre", "aux", "avais", "avait", "avec", "avez",
    "avoir", "avons", "bah", "ben", "bon", "bonjour", "bonsoir", "c", "ca", "car", "ce", "cela",
    "ces", "cet", "cette", "chez", "ci", "comme", "comment", "d", "dans", "de", "des", "deja",
    "donc", "du", "elle", "elles", "en", "encore", "est", "et", "etait", "ete", "etes", "etre",
    "eu", "fait", "faire", "faut", "fois", "hello", "ici", "il", "ils", "j", "je", "jai", "juste",
    "l", "la", "le", "les", "leur", "leurs", "lui", "m", "ma", "mais", "me", "merci", "mes", "moi",
    "mon", "meme", "n", "ne", "ni", "nos", "notre", "nous", "on", "ont", "ou", "oui", "non", "par",
    "pas", "peu", "peut", "plus", "pour", "pourquoi", "qu", "quand", "que", "quel", "quelle",
    "quels", "quelles", "qui", "quoi", "s", "sa", "salut", "sans", "se", "ses", "si", "son",
    "sont", "sur", "svp", "t", "ta", "te", "tes", "toi", "ton", "tous", "tout", "toute", "tres",
    "trop", "tu", "un", "une", "va", "vais", "vas", "vont", "vos", "votre", "vous", "vu", "y",
    "coucou", "stp", "bjr", "slt", "cc", "wsh", "mdr", "lol", "ptdr", "etc", "vraiment", "deux",
    // English
    "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "get", "got", "had",
    "has", "have", "he", "her", "hey", "hi", "him", "his", "how", "i", "if", "im", "in", "into",
    "is", "it", "its", "just", "me", "my", "no", "not", "of", "oh", "ok", "okay", "on", "or",
    "our", "out", "please", "pls", "plz", "really", "so", "some", "still", "than", "thanks",
    "thank", "thx", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "too", "u", "up", "us", "very", "was", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "yes", "you", "your", "ur", "dont", "cant",
    "ive", "youre", "isnt", "didnt", "guys", "team", "anyone", "also", "yet", "now", "lot",
];

/// Whether the folded word is a French or English function word.
pub fn is_stopword(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
        .contains(word)
}

/// The kept words of `text`, folded, in order.
pub fn words(text: &str) -> Vec<String> {
    let folded = nexiom_triage::fold(text);
    let mut out = Vec::new();
    for raw in folded.split_whitespace() {
        if raw.starts_with('@') || raw.starts_with("http") || raw.starts_with("www.") {
            continue;
        }
        for piece in raw.split(|c: char| !c.is_alphanumeric()) {
            let word = collapse_repeats(piece);
            if word.chars().count() < 2
                || word.chars().all(|c| c.is_ascii_digit())
                || is_stopword(&word)
            {
                continue;
            }
            out.push(word);
        }
    }
    out
}

/// Runs of three or more of the same letter become one (`sooo` → `so`).
fn collapse_repeats(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        let run = j - i;
        let keep = if run >= 3 { 1 } else { run };
        for _ in 0..keep {
            out.push(chars[i]);
        }
        i = j;
    }
    out
}

/// FNV-1a over a kind byte and the bytes of the parts, separated.
pub(crate) fn hash(kind: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(kind);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            eat(0xff);
        }
        for b in part.bytes() {
            eat(b);
        }
    }
    h
}

/// The features of a text: `(hash, count weight)`, sorted by hash, each hash
/// once (weights of repeated features added).
pub fn features(text: &str) -> Vec<(u64, f32)> {
    let words = words(text);
    let mut out: Vec<(u64, f32)> = Vec::with_capacity(words.len() * 12);
    for (i, word) in words.iter().enumerate() {
        out.push((hash(b'w', &[word]), 1.0));
        if let Some(next) = words.get(i + 1) {
            out.push((hash(b'b', &[word, next]), BIGRAM_WEIGHT));
        }
        let framed: Vec<char> = std::iter::once('<')
            .chain(word.chars())
            .chain(std::iter::once('>'))
            .collect();
        for n in 3..=5 {
            if framed.len() < n {
                break;
            }
            for window in framed.windows(n) {
                let gram: String = window.iter().collect();
                out.push((hash(b'c', &[&gram]), CHAR_WEIGHT));
            }
        }
    }
    out.sort_unstable_by_key(|(h, _)| *h);
    let mut merged: Vec<(u64, f32)> = Vec::with_capacity(out.len());
    for (h, w) in out {
        match merged.last_mut() {
            Some((last, acc)) if *last == h => *acc += w,
            _ => merged.push((h, w)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_filtered() {
        assert_eq!(
            words("@acme Bonjour, ma LIVRAISON est en retard 😡 https://x.y retarddd 2"),
            vec!["livraison", "retard", "retard"]
        );
        assert_eq!(words("Où est mon colis ??"), vec!["colis"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn features_are_sorted_and_merged() {
        let f = features("colis colis");
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        let word = hash(b'w', &["colis"]);
        let weight = f.iter().find(|(h, _)| *h == word).map(|(_, w)| *w);
        assert_eq!(weight, Some(2.0));
        assert_ne!(hash(b'w', &["ab"]), hash(b'c', &["ab"]));
        assert_ne!(hash(b'b', &["a", "bc"]), hash(b'b', &["ab", "c"]));
    }
}
