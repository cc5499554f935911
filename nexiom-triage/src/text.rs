//! Text normalization shared by keyword matching and similarity.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// Folds text for matching: canonical decomposition (NFD), combining marks
/// (diacritics) removed, then Unicode lower-casing, with the characters whose
/// case folding differs from their lower case folded as Unicode's full case
/// folding does: `ß` to `ss`, the micro sign `µ` to `μ`, Greek final `ς`
/// to `σ` (so `ΛΟΓΑΡΙΑΣΜΟΣ`
/// matches `λογαριασμός`), the long `ſ` to `s`, the Greek symbol variants
/// (`ϐ ϑ ϕ ϖ ϰ ϱ ϵ`) to their letters and the Latin ligatures `ﬀ`–`ﬆ` to
/// their letters.
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

/// Decomposes each character on its own (canonical decomposition) and drops the
/// combining marks. This equals NFD followed by dropping marks: NFD's only other
/// work, the canonical reordering of marks, is moot once every mark is dropped.
/// ASCII, most of the text in practice, takes a fast path.
fn fold_into(text: &str, out: &mut String, collapse_space: bool) {
    let mut last_was_space = true;
    let mut push = |c: char, out: &mut String| {
        if collapse_space && c.is_whitespace() {
            if !last_was_space {
                out.push(' ');
                last_was_space = true;
            }
            return;
        }
        last_was_space = false;
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if let Some(folded) = full_fold(c) {
            out.push_str(folded);
        } else {
            out.extend(c.to_lowercase());
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            // ASCII has no combining marks and decomposes to itself.
            push(c, out);
        } else {
            decompose_canonical(c, |d| {
                if !is_combining_mark(d) {
                    push(d, out);
                }
            });
        }
    }
}

/// The characters whose full case folding (Unicode's `CaseFolding.txt`,
/// statuses C and F) is not their lower case, among those a customer's text
/// holds in practice.
fn full_fold(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'µ' => "μ",
        'ς' => "σ",
        'ſ' => "s",
        'ϐ' => "β",
        'ϑ' => "θ",
        'ϕ' => "φ",
        'ϖ' => "π",
        'ϰ' => "κ",
        'ϱ' => "ρ",
        'ϵ' => "ε",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' | 'ﬆ' => "st",
        _ => return None,
    })
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
    fn equals_nfd_without_marks() {
        use unicode_normalization::UnicodeNormalization;
        let samples = [
            "Problème Ça Ölçü Ñandú",
            "e\u{301}e\u{300}\u{301} combining",
            "ǅ ǈ Ω K Å",
            "한국어 日本語 Ελληνικά",
        ];
        for s in samples {
            let reference: String = s
                .nfd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_lowercase)
                .collect();
            assert_eq!(fold(s), reference, "{s:?}");
        }
    }

    #[test]
    fn folds_as_unicode_case_folding_where_it_differs_from_lower_case() {
        // Upper and lower case of one Greek word meet at its final sigma.
        assert_eq!(fold("ΛΟΓΑΡΙΑΣΜΟΣ"), fold("λογαριασμός"));
        assert_eq!(fold("λογαριασμός"), "λογαριασμοσ");
        assert_eq!(fold("ﬁnal ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ"), "final flow ff ffi ffl st st");
        assert_eq!(fold("ſ ϐ ϑ ϕ ϖ ϰ ϱ ϵ"), "s β θ φ π κ ρ ε");
        assert_eq!(fold("5 µg"), fold("5 μg"));
    }

    #[test]
    fn collapses_white_space_for_matching() {
        assert_eq!(
            fold_for_matching("  Mise \t en\n\nDEMEURE  "),
            "mise en demeure"
        );
        assert_eq!(fold_for_matching("   "), "");
    }
}
