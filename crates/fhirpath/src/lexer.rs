//! Splits FHIRPath source text into tokens, skipping whitespace and comments.

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A plain identifier, or a keyword (`and`, `div`, `true`...): the parser decides.
    Identifier(String),
    /// A `` `delimited` `` identifier: never a keyword.
    Delimited(String),
    /// A string literal, escapes already decoded.
    String(String),
    /// A number as written: `12`, `1.50`.
    Number(String),
    /// A date, date-time or time literal without the `@`: `2015-02-04T14`, `T10:30`.
    DateTime(String),
    /// `%name` or `` %`name` `` or `%'name'`.
    Constant(String),
    /// `$this`, `$index`, `$total`.
    Special(String),
    Symbol(&'static str),
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct Spanned {
    pub token: Token,
    /// Byte offset of the token's first character.
    pub offset: usize,
}

// Two-character symbols come first so that `<=` is not read as `<` then `=`.
const SYMBOLS: [&str; 22] = [
    "<=", ">=", "!=", "!~", "(", ")", "[", "]", "{", "}", ".", ",", "+", "-", "*", "/", "&", "|",
    "<", ">", "=", "~",
];

pub(crate) fn tokenize(source: &str) -> Result<Vec<Spanned>, ParseError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if source[i..].starts_with("//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if source[i..].starts_with("/*") {
            match source[i + 2..].find("*/") {
                Some(end) => i = i + 2 + end + 2,
                None => return Err(ParseError::syntax(source, i, "unterminated comment")),
            }
            continue;
        }
        let start = i;
        let token = match c {
            b'\'' => {
                let (text, next) = read_quoted(source, i, b'\'')?;
                i = next;
                Token::String(text)
            }
            b'`' => {
                let (text, next) = read_quoted(source, i, b'`')?;
                i = next;
                Token::Delimited(text)
            }
            b'%' => {
                i += 1;
                let name = match bytes.get(i) {
                    Some(b'`') => {
                        let (text, next) = read_quoted(source, i, b'`')?;
                        i = next;
                        text
                    }
                    Some(b'\'') => {
                        let (text, next) = read_quoted(source, i, b'\'')?;
                        i = next;
                        text
                    }
                    _ => {
                        let end = identifier_end(bytes, i);
                        if end == i {
                            return Err(ParseError::syntax(
                                source,
                                start,
                                "expected a name after %",
                            ));
                        }
                        let name = source[i..end].to_string();
                        i = end;
                        name
                    }
                };
                Token::Constant(name)
            }
            b'$' => {
                let end = identifier_end(bytes, i + 1);
                let name = &source[i + 1..end];
                if !matches!(name, "this" | "index" | "total") {
                    return Err(ParseError::syntax(
                        source,
                        start,
                        format!("unknown special variable ${name}"),
                    ));
                }
                i = end;
                Token::Special(name.to_string())
            }
            b'@' => {
                let end = date_time_end(bytes, i + 1);
                if end == i + 1 {
                    return Err(ParseError::syntax(
                        source,
                        start,
                        "expected a date or time after @",
                    ));
                }
                let text = source[i + 1..end].to_string();
                i = end;
                Token::DateTime(text)
            }
            b'0'..=b'9' => {
                let mut end = i;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                // `1.5` is a decimal, but `1.round()` is an integer followed by an invocation.
                if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
                    end += 1;
                    while end < bytes.len() && bytes[end].is_ascii_digit() {
                        end += 1;
                    }
                }
                let text = source[i..end].to_string();
                i = end;
                Token::Number(text)
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let end = identifier_end(bytes, i);
                let text = source[i..end].to_string();
                i = end;
                Token::Identifier(text)
            }
            _ => {
                let Some(symbol) = SYMBOLS.iter().find(|s| source[i..].starts_with(**s)) else {
                    let ch = source[i..].chars().next().unwrap_or(' ');
                    return Err(ParseError::syntax(
                        source,
                        start,
                        format!("unexpected character {ch:?}"),
                    ));
                };
                i += symbol.len();
                Token::Symbol(symbol)
            }
        };
        tokens.push(Spanned {
            token,
            offset: start,
        });
    }
    tokens.push(Spanned {
        token: Token::End,
        offset: source.len(),
    });
    Ok(tokens)
}

fn identifier_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
        i += 1;
    }
    i
}

/// The end of a date/time literal body starting at `i` (just after `@`). The shape is checked
/// later, when the literal is parsed into a value.
fn date_time_end(bytes: &[u8], mut i: usize) -> usize {
    let digits = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    let time = |i: &mut usize| {
        digits(i);
        while *i + 1 < bytes.len() && bytes[*i] == b':' && bytes[*i + 1].is_ascii_digit() {
            *i += 1;
            digits(i);
        }
        if *i + 1 < bytes.len() && bytes[*i] == b'.' && bytes[*i + 1].is_ascii_digit() {
            *i += 1;
            digits(i);
        }
    };
    let zone = |i: &mut usize| {
        if *i < bytes.len() && bytes[*i] == b'Z' {
            *i += 1;
        } else if *i + 2 < bytes.len()
            && (bytes[*i] == b'+' || bytes[*i] == b'-')
            && bytes[*i + 1].is_ascii_digit()
            && bytes[*i + 2].is_ascii_digit()
        {
            *i += 3;
            if *i + 2 < bytes.len() && bytes[*i] == b':' && bytes[*i + 1].is_ascii_digit() {
                *i += 3;
            }
        }
    };
    if i < bytes.len() && bytes[i] == b'T' {
        i += 1;
        time(&mut i);
        // A zone on a time literal is not FHIRPath; it is read here so that the literal can be
        // rejected with a clear message instead of a confusing one about a stray `Z`.
        zone(&mut i);
        return i;
    }
    digits(&mut i);
    for _ in 0..2 {
        if i + 1 < bytes.len() && bytes[i] == b'-' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            digits(&mut i);
        }
    }
    if i < bytes.len() && bytes[i] == b'T' {
        i += 1;
        if i < bytes.len() && bytes[i].is_ascii_digit() {
            time(&mut i);
            zone(&mut i);
        }
    }
    i
}

/// Reads a quoted string or delimited identifier starting at the opening quote; returns the
/// decoded text and the offset after the closing quote.
fn read_quoted(source: &str, start: usize, quote: u8) -> Result<(String, usize), ParseError> {
    let bytes = source.as_bytes();
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = bytes.get(i) else {
            return Err(ParseError::syntax(source, start, "unterminated string"));
        };
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == b'\\' {
            let Some(&e) = bytes.get(i + 1) else {
                return Err(ParseError::syntax(source, i, "unterminated escape"));
            };
            i += 2;
            match e {
                b'\'' => out.push('\''),
                b'"' => out.push('"'),
                b'`' => out.push('`'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let hex = source
                        .get(i..i + 4)
                        .ok_or_else(|| ParseError::syntax(source, i, "short \\u escape"))?;
                    let code = u32::from_str_radix(hex, 16)
                        .map_err(|_| ParseError::syntax(source, i, "bad \\u escape"))?;
                    i += 4;
                    // A UTF-16 surrogate pair written as two escapes is one character.
                    let low = (0xd800..0xdc00)
                        .contains(&code)
                        .then(|| source.get(i..i + 6))
                        .flatten()
                        .and_then(|next| next.strip_prefix("\\u"))
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                        .filter(|low| (0xdc00..0xe000).contains(low));
                    match low {
                        Some(low) => {
                            let combined = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                            out.push(char::from_u32(combined).unwrap_or('\u{fffd}'));
                            i += 6;
                        }
                        None => out.push(char::from_u32(code).unwrap_or('\u{fffd}')),
                    }
                }
                _ => return Err(ParseError::syntax(source, i - 2, "unknown escape")),
            }
            continue;
        }
        let ch = source[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Token> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect()
    }

    #[test]
    fn an_integer_followed_by_a_function_is_not_a_decimal() {
        assert_eq!(
            kinds("1.round()"),
            vec![
                Token::Number("1".into()),
                Token::Symbol("."),
                Token::Identifier("round".into()),
                Token::Symbol("("),
                Token::Symbol(")"),
                Token::End
            ]
        );
    }

    #[test]
    fn date_time_literals_keep_their_written_precision() {
        assert_eq!(kinds("@2015-02T")[0], Token::DateTime("2015-02T".into()));
        assert_eq!(
            kinds("@2017-11-05T01:30:00.0-04:00 >")[0],
            Token::DateTime("2017-11-05T01:30:00.0-04:00".into())
        );
        assert_eq!(kinds("@T10:30.x")[0], Token::DateTime("T10:30".into()));
    }

    #[test]
    fn an_unterminated_comment_reports_where_it_starts() {
        let err = tokenize("2 + 2 /* not finished").unwrap_err();
        assert_eq!(err.position.column, 7);
    }

    #[test]
    fn string_escapes_are_decoded() {
        assert_eq!(kinds(r"'P\u0065ter\n'")[0], Token::String("Peter\n".into()));
    }
}
