//! Text normalization shared by keyword matching and similarity.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folds text for matching: canonical decomposition (NFD), combining marks
/// (diacritics) removed, then Unicode lower-casing, with `ß` expanded to `ss`.
///
/// So `Problème`, `PROBLEME` and `probleme` all fold to `probleme`. The result
/// keeps word boundaries (spaces and punctuation) where they were.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out, false);
    out
}

/// [`fold`], with every run of white space collapsed to one space and the ends
/// trimmed: the form keywords and texts are matched in, so that a multi-word
/// keyword matches whatever spacing the text uses.
pub fn fold_for_matching(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out, true);
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn fold_into(text: &str, out: &mut String, collapse_space: bool) {
    let mut last_was_space = true;
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if collapse_space && c.is_whitespace() {
            if !last_was_space {
                out.push(' ');
                last_was_space = true;
            }
            continue;
        }
        last_was_space = false;
        if c == 'ß' || c == 'ẞ' {
            out.push_str("ss");
            continue;
        }
        out.extend(c.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents() {
        let cases = [
            ("Problème", "probleme"),
            ("PROBLÈME", "probleme"),
            ("Ça coûte combien ?", "ca coute combien ?"),
            ("Ölçü", "olcu"),
            ("STRASSE Straße", "strasse strasse"),
            ("", ""),
            ("😀 Merci!", "😀 merci!"),
        ];
        for (input, expected) in cases {
            assert_eq!(fold(input), expected, "fold({input:?})");
        }
    }

    #[test]
    fn collapses_white_space_for_matching() {
        assert_eq!(fold_for_matching("  Mise \t en\n\nDEMEURE  "), "mise en demeure");
        assert_eq!(fold_for_matching("   "), "");
    }
}
