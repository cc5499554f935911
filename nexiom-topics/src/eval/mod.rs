//! The labelled evaluation set and its scores.
//!
//! [`messages.txt`](https://example.invalid) (in this module's folder) holds
//! hand-written messages to a restaurant chain: 12 topics of uneven weight,
//! French and English, at least 12 full phrasings per topic and language,
//! written one by one, plus messages of 2 to 4 words and off-topic messages.
//! [`generate`] composes a set of any size from them, deterministically from a
//! seed: each message is a phrasing with, at random, a greeting or an
//! `@mention` before it, emoji or punctuation after it, a phrase of the other
//! language (code-mixing), its accents removed, all lower case or all caps,
//! and one or two typos (a letter dropped, doubled or swapped). A tenth of the
//! set is off-topic.
//!
//! [`score`] reports the adjusted Rand index and NMI per language and overall
//! (unassigned messages count as one cluster), the share of off-topic
//! messages left unassigned and the share kept out of on-topic clusters;
//! [`kmeans`] is the baseline's clustering.

mod kmeans;

pub use kmeans::{kmeans, word_tfidf};

use crate::metrics::{ari, nmi};

const DATA: &str = include_str!("messages.txt");

/// A message's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// French.
    Fr,
    /// English.
    En,
}

/// One generated message.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledMessage {
    /// The text.
    pub text: String,
    /// Its topic's index in [`EvalSet::topics`]; `None` for off-topic.
    pub topic: Option<usize>,
    /// Its language.
    pub lang: Lang,
    /// The phrasing it renders (an index over the data file's distinct
    /// phrasings): messages of one phrasing differ only by the generator's
    /// noise.
    pub phrasing: usize,
}

/// A generated set.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSet {
    /// Topic names, heaviest first.
    pub topics: Vec<String>,
    /// The messages, shuffled.
    pub messages: Vec<LabelledMessage>,
}

impl EvalSet {
    /// The reference label of each message (off-topic is one more label).
    pub fn labels(&self) -> Vec<usize> {
        let noise = self.topics.len();
        self.messages
            .iter()
            .map(|m| m.topic.unwrap_or(noise))
            .collect()
    }
}

#[derive(Default)]
struct Pool {
    name: String,
    weight: f32,
    full: [Vec<&'static str>; 2],
    short: [Vec<&'static str>; 2],
}

/// The topics (and, last, the off-topic pool) of the data file.
fn pools() -> Vec<Pool> {
    let mut pools: Vec<Pool> = Vec::new();
    for line in DATA.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_prefix("= ") {
            let parts: Vec<&str> = head.split_whitespace().collect();
            let (name, weight) = match parts.as_slice() {
                ["topic", name, w] => (name.to_string(), w.parse().unwrap_or(1.0)),
                ["noise", w] => (String::new(), w.parse().unwrap_or(1.0)),
                _ => continue,
            };
            pools.push(Pool {
                name,
                weight,
                ..Pool::default()
            });
            continue;
        }
        let Some(pool) = pools.last_mut() else {
            continue;
        };
        let Some((tag, text)) = line.split_once(": ") else {
            continue;
        };
        match tag {
            "fr" => pool.full[0].push(text),
            "en" => pool.full[1].push(text),
            "fr2" => pool.short[0].push(text),
            "en2" => pool.short[1].push(text),
            _ => {}
        }
    }
    pools
}

/// How many phrasings each topic has per language: `(topic, fr full, en
/// full, fr short, en short)`, off-topic last (named `""`).
pub fn phrasing_counts() -> Vec<(String, usize, usize, usize, usize)> {
    pools()
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.full[0].len(),
                p.full[1].len(),
                p.short[0].len(),
                p.short[1].len(),
            )
        })
        .collect()
}

const GREETINGS: [&[&str]; 2] = [
    &[
        "Bonjour, ",
        "Salut ",
        "Bonsoir ",
        "@ChezNexiom ",
        "@ChezNexiom_Lyon ",
        "Coucou ",
        "Bjr ",
    ],
    &[
        "Hi, ",
        "Hello ",
        "Hey ",
        "@ChezNexiom ",
        "@NexiomEats ",
        "Hi team, ",
        "Yo ",
    ],
];
const ENDINGS: [&[&str]; 2] = [
    &[
        " 😡",
        " 🙏",
        " 😭😭",
        " !!!",
        " ??",
        " 🤔",
        " merci",
        " svp",
        " 😤",
        " ...",
        " 👍",
    ],
    &[
        " 😡",
        " 🙏",
        " 😭😭",
        " !!!",
        " ??",
        " 🤔",
        " thanks",
        " pls",
        " 😤",
        " ...",
        " 👍",
    ],
];
/// A phrase of the other language, as people mix them.
const MIXING: [&[&str]; 2] = [
    &[
        " seriously",
        " asap",
        " wtf",
        " please",
        " come on",
        " not cool",
    ],
    &[
        " franchement",
        " svp",
        " c'est abusé",
        " merci d'avance",
        " bref",
        " voilà",
    ],
];

/// A set of `total` messages (10% off-topic), the same for the same seed.
pub fn generate(total: usize, seed: u64) -> EvalSet {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pools = pools();
    let weights: f32 = pools.iter().map(|p| p.weight).sum();
    let topics: Vec<String> = pools
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| p.name.clone())
        .collect();
    let mut messages = Vec::with_capacity(total);
    let mut phrasings: std::collections::HashMap<(usize, &str), usize> =
        std::collections::HashMap::new();
    for (i, pool) in pools.iter().enumerate() {
        let count = (total as f32 * pool.weight / weights).round() as usize;
        let topic = (!pool.name.is_empty()).then_some(i);
        for _ in 0..count {
            let lang = if rng.f32() < 0.55 { 0 } else { 1 };
            let short = rng.f32() < 0.2 && !pool.short[lang].is_empty();
            let source = if short {
                &pool.short[lang]
            } else {
                &pool.full[lang]
            };
            if source.is_empty() {
                continue;
            }
            let base = source[rng.usize(..source.len())];
            let next = phrasings.len();
            let phrasing = *phrasings.entry((i, base)).or_insert(next);
            messages.push(LabelledMessage {
                text: vary(base, lang, &mut rng),
                topic,
                lang: if lang == 0 { Lang::Fr } else { Lang::En },
                phrasing,
            });
        }
    }
    rng.shuffle(&mut messages);
    EvalSet { topics, messages }
}

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// One noisy rendering of a phrasing.
fn vary(base: &str, lang: usize, rng: &mut fastrand::Rng) -> String {
    let mut text = base.to_owned();
    if rng.f32() < 0.3 {
        text = typos(&text, 1 + rng.usize(..2), rng);
    }
    if rng.f32() < 0.3 {
        text = text.chars().map(strip_accent).collect();
    }
    if rng.f32() < 0.12 {
        text.push_str(pick(rng, MIXING[lang]));
    }
    if rng.f32() < 0.3 {
        text = format!("{}{text}", pick(rng, GREETINGS[lang]));
    }
    if rng.f32() < 0.35 {
        text.push_str(pick(rng, ENDINGS[lang]));
    }
    let case = rng.f32();
    if case < 0.15 {
        text = text.to_lowercase();
    } else if case < 0.22 {
        text = text.to_uppercase();
    }
    text
}

fn strip_accent(c: char) -> char {
    match c {
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' => 'E',
        'à' | 'â' => 'a',
        'À' | 'Â' => 'A',
        'ç' => 'c',
        'ù' | 'û' => 'u',
        'ô' => 'o',
        'î' | 'ï' => 'i',
        other => other,
    }
}

/// `count` typos, each in a word of 4 letters or more: a letter dropped,
/// doubled, or swapped with the next.
fn typos(text: &str, count: usize, rng: &mut fastrand::Rng) -> String {
    let mut words: Vec<Vec<char>> = text.split(' ').map(|w| w.chars().collect()).collect();
    let long: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].iter().filter(|c| c.is_alphabetic()).count() >= 4)
        .collect();
    if long.is_empty() {
        return text.to_owned();
    }
    for _ in 0..count {
        let w = &mut words[long[rng.usize(..long.len())]];
        let at = 1 + rng.usize(..w.len() - 2);
        match rng.u8(..3) {
            0 => {
                w.remove(at);
            }
            1 => {
                let c = w[at];
                w.insert(at, c);
            }
            _ => w.swap(at, at + 1),
        }
    }
    words
        .into_iter()
        .map(|w| w.into_iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// ARI and NMI of one slice of the set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Adjusted Rand index.
    pub ari: f64,
    /// Normalized mutual information.
    pub nmi: f64,
    /// Messages in the slice.
    pub messages: usize,
}

/// Scores of a clustering of an [`EvalSet`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// French messages only.
    pub fr: Agreement,
    /// English messages only.
    pub en: Agreement,
    /// Every message.
    pub overall: Agreement,
    /// Off-topic messages left unassigned, as a share of the off-topic ones.
    pub noise_unassigned: f64,
    /// Off-topic messages kept out of on-topic clusters (unassigned, or in a
    /// cluster made mostly of off-topic messages: chatter that repeats, such
    /// as comments on a photo, is a subject of its own), as a share of the
    /// off-topic ones.
    pub noise_kept_out: f64,
    /// Distinct clusters.
    pub clusters: usize,
}

/// Scores `assignments` (one per message, `None`: unassigned) against the set.
pub fn score(set: &EvalSet, assignments: &[Option<usize>]) -> Scores {
    let labels = set.labels();
    let slice = |lang: Option<Lang>| {
        let idx: Vec<usize> = (0..set.messages.len())
            .filter(|&i| lang.is_none_or(|l| set.messages[i].lang == l))
            .collect();
        let t: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        let p: Vec<Option<usize>> = idx
            .iter()
            .map(|&i| assignments.get(i).copied().flatten())
            .collect();
        Agreement {
            ari: ari(&t, &p),
            nmi: nmi(&t, &p),
            messages: idx.len(),
        }
    };
    let noise: Vec<usize> = (0..set.messages.len())
        .filter(|&i| set.messages[i].topic.is_none())
        .collect();
    let left = noise
        .iter()
        .filter(|&&i| assignments.get(i).copied().flatten().is_none())
        .count();
    let mut distinct: Vec<usize> = assignments.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    // Clusters made mostly of off-topic messages.
    let mut counts: std::collections::HashMap<usize, (usize, usize)> =
        std::collections::HashMap::new();
    for (i, a) in assignments.iter().enumerate().take(set.messages.len()) {
        if let Some(k) = a {
            let entry = counts.entry(*k).or_insert((0, 0));
            entry.0 += 1;
            if set.messages[i].topic.is_none() {
                entry.1 += 1;
            }
        }
    }
    let kept_out = noise
        .iter()
        .filter(|&&i| {
            assignments
                .get(i)
                .copied()
                .flatten()
                .is_none_or(|k| counts.get(&k).is_some_and(|(all, off)| off * 2 > *all))
        })
        .count();
    Scores {
        fr: slice(Some(Lang::Fr)),
        en: slice(Some(Lang::En)),
        overall: slice(None),
        noise_unassigned: if noise.is_empty() {
            1.0
        } else {
            left as f64 / noise.len() as f64
        },
        noise_kept_out: if noise.is_empty() {
            1.0
        } else {
            kept_out as f64 / noise.len() as f64
        },
        clusters: distinct.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_is_as_rich_as_promised() {
        let counts = phrasing_counts();
        assert_eq!(counts.len(), 13, "12 topics and the off-topic pool");
        for (name, fr, en, fr2, en2) in &counts {
            assert!(*fr >= 12 && *en >= 12, "{name}: {fr} fr, {en} en");
            assert!(*fr2 >= 4 && *en2 >= 4, "{name}: short forms");
        }
    }

    #[test]
    fn generation_is_deterministic_and_mixed() {
        let a = generate(2000, 7);
        assert_eq!(a, generate(2000, 7));
        assert!(a.messages.len() >= 1990);
        let noise = a.messages.iter().filter(|m| m.topic.is_none()).count();
        assert!((150..=250).contains(&noise), "{noise}");
        let caps = a
            .messages
            .iter()
            .filter(|m| m.text == m.text.to_uppercase())
            .count();
        assert!(caps > 50);
        assert!(a.messages.iter().any(|m| m.text.contains('@')));
        let fr = a.messages.iter().filter(|m| m.lang == Lang::Fr).count();
        assert!(fr > 900 && fr < 1300, "{fr}");
    }
}
