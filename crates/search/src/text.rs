//! String normalisation for string search: case-, accent- and punctuation-insensitive, as FHIR
//! asks.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, accents and punctuation removed, whitespace runs folded to one space:
/// `"  Ðr. Émile "` and `"ðr emile"` normalise alike, and so do `O'Hara` and `OHara`. Chinese
/// characters pass through unchanged; Chinese punctuation (`·` in transliterated names, `、`)
/// is removed like any other.
///
/// R4 search.html 3.1.1.4.8: the search "is insensitive to casing and included combining
/// characters", and "punctuation and non-significant whitespace (e.g. repeated space
/// characters, tab vs space) should also be ignored".
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfd() {
        if is_combining_mark(c) || is_punctuation(c) {
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

/// ASCII punctuation and symbols, and the common Unicode punctuation: Latin-1 (`¡` `¿` `«`),
/// general punctuation (dashes, quotes, `…`), CJK punctuation (`、` `。` `「」`), the katakana
/// middle dot `・`, the middle dot `·`, and full-width forms (`，` `！`).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '\u{00A1}'..='\u{00BF}' if !c.is_alphanumeric())
        || matches!(c, '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205E}')
        || matches!(c, '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}' | '\u{30FB}')
        || matches!(
            c,
            '\u{FF01}'..='\u{FF0F}'
                | '\u{FF1A}'..='\u{FF20}'
                | '\u{FF3B}'..='\u{FF40}'
                | '\u{FF5B}'..='\u{FF65}'
        )
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

    #[test]
    fn string_search_ignores_punctuation() {
        assert_eq!(normalize("O'Hara248"), "ohara248");
        assert_eq!(normalize("Dr. Ðr."), "dr ðr");
        assert_eq!(normalize("02474-8620"), "024748620");
        assert_eq!(
            normalize("STEWARD MEDICAL GROUP, INC"),
            "steward medical group inc"
        );
        assert_eq!(normalize("阿卜杜拉·买买提"), "阿卜杜拉买买提");
        assert_eq!(normalize("北京，朝阳区、三里屯"), "北京朝阳区三里屯");
        assert_eq!(normalize("“Quoted” — text…"), "quoted text");
    }
}
