//! String helpers that need more than the standard library offers: Unicode-aware indexing,
//! base64 and hex (`encode`/`decode`), HTML and JSON escaping (`escape`/`unescape`).

/// The `start`..`start+len` characters of `s` (by Unicode scalar, not byte).
pub(crate) fn char_substring(s: &str, start: usize, len: Option<usize>) -> &str {
    if s.is_ascii() {
        let end = len.map_or(s.len(), |l| start.saturating_add(l).min(s.len()));
        return &s[start.min(s.len())..end.max(start.min(s.len()))];
    }
    let mut indices = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()));
    let Some(from) = indices.nth(start) else {
        return "";
    };
    let to = match len {
        Some(0) => from,
        Some(l) => indices.nth(l - 1).unwrap_or(s.len()),
        None => s.len(),
    };
    &s[from..to]
}

pub(crate) fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// The character index of `needle` in `s`, or -1.
pub(crate) fn char_index_of(s: &str, needle: &str) -> i64 {
    match s.find(needle) {
        Some(byte) => s[..byte].chars().count() as i64,
        None => -1,
    }
}

/// Base64 engines for `encode`/`decode`: padded on output; on input, padding optional and
/// whitespace ignored, as the specification's examples are written.
fn base64_engine(url: bool) -> base64::engine::GeneralPurpose {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    if url {
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
    } else {
        GeneralPurpose::new(&base64::alphabet::STANDARD, config)
    }
}

fn base64_encode(bytes: &[u8], url: bool) -> String {
    use base64::Engine;
    base64_engine(url).encode(bytes)
}

fn base64_decode(text: &str, url: bool) -> Option<Vec<u8>> {
    use base64::Engine;
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64_engine(url).decode(text).ok()
}

pub(crate) fn encode(s: &str, format: &str) -> Option<String> {
    Some(match format {
        "base64" => base64_encode(s.as_bytes(), false),
        "urlbase64" => base64_encode(s.as_bytes(), true),
        "hex" => s.bytes().map(|b| format!("{b:02x}")).collect(),
        _ => return None,
    })
}

pub(crate) fn decode(s: &str, format: &str) -> Option<String> {
    let bytes = match format {
        "base64" => base64_decode(s, false)?,
        "urlbase64" => base64_decode(s, true)?,
        "hex" => {
            if !s.len().is_multiple_of(2) {
                return None;
            }
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect::<Option<_>>()?
        }
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

pub(crate) fn escape(s: &str, format: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    match format {
        "html" => {
            for c in s.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    c => out.push(c),
                }
            }
        }
        "json" => {
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c => out.push(c),
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

pub(crate) fn unescape(s: &str, format: &str) -> Option<String> {
    match format {
        "html" => Some(
            s.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        ),
        "json" => {
            let mut out = String::with_capacity(s.len());
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next()? {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    other => out.push(other),
                }
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_count_characters_not_bytes() {
        assert_eq!(char_substring("héllo", 1, Some(3)), "éll");
        assert_eq!(char_substring("12345", 2, None), "345");
        assert_eq!(char_substring("12345", 2, Some(5)), "345");
        assert_eq!(char_index_of("日本語-テキスト", "-"), 3);
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(encode("subjects?_d", "base64").unwrap(), "c3ViamVjdHM/X2Q=");
        assert_eq!(
            encode("subjects?_d", "urlbase64").unwrap(),
            "c3ViamVjdHM_X2Q="
        );
        assert_eq!(decode("dGVzdA==", "base64").unwrap(), "test");
        assert_eq!(decode("74657374", "hex").unwrap(), "test");
    }
}
