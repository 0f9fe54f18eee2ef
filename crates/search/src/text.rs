//! String normalisation for string search: case- and accent-insensitive, as FHIR asks.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, accents removed, whitespace runs folded to one space: `"  Ðr. Émile "` and
/// `"ðr. emile"` normalise alike. Chinese characters pass through unchanged.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalisation_folds_case_accents_and_spaces() {
        assert_eq!(normalize("  Émile  Zola "), "emile zola");
        assert_eq!(normalize("MÜLLER"), "muller");
        assert_eq!(normalize("张伟"), "张伟");
        assert_eq!(normalize(""), "");
    }
}
