//! String comparators and normalisation shared by every field: Jaro–Winkler, the
//! Damerau–Levenshtein distance (optimal string alignment), a Soundex code for romanised names,
//! and the folding that makes "Zhāng  Wei" and "zhang wei" the same text.

use unicode_normalization::UnicodeNormalization;

/// NFKC, lower case, accents removed from Latin letters, inner whitespace collapsed to one
/// space, punctuation dropped. Han characters pass through unchanged.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() || matches!(c, '-' | '\'' | '.' | ',' | '·' | '•' | '/') {
            space = true;
        }
    }
    // NFKD split full-width forms and Hangul; recompose what is left.
    out.nfc().collect()
}

/// Only the ASCII letters of `text`, lower case: the key romanised names are compared on.
pub fn letters(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Only the digits of `text`.
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Jaro–Winkler similarity in [0, 1] (prefix scale 0.1, up to 4 characters), on chars.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    if a == b {
        return if a.is_empty() { 0.0 } else { 1.0 };
    }
    jaro_winkler_where(a, b, |_| true)
}

/// Jaro–Winkler similarity of only the characters of `a` and `b` that `keep` accepts (an
/// address without its spaces, say), without building the filtered strings.
pub fn jaro_winkler_where(a: &str, b: &str, keep: impl Fn(char) -> bool) -> f64 {
    // Called for every compared pair: the characters go into stack buffers, not the heap.
    let (mut a_buf, mut b_buf) = (['\0'; 64], ['\0'; 64]);
    let a = fill(&mut a_buf, a.chars().filter(|c| keep(*c)));
    let b = fill(&mut b_buf, b.chars().filter(|c| keep(*c)));
    if a == b {
        return if a.is_empty() { 0.0 } else { 1.0 };
    }
    let jaro = jaro(a, b);
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count() as f64;
    jaro + prefix * 0.1 * (1.0 - jaro)
}

/// The first 64 of `chars` in `buffer`.
fn fill(buffer: &mut [char; 64], chars: impl Iterator<Item = char>) -> &[char] {
    let mut n = 0;
    for c in chars.take(64) {
        buffer[n] = c;
        n += 1;
    }
    &buffer[..n]
}

fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut a_matched = [false; 64];
    let mut b_matched = [false; 64];
    // Beyond 64 characters the comparison is not of names; compare the first 64.
    let a = &a[..a.len().min(64)];
    let b = &b[..b.len().min(64)];
    let mut matches = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let start = i.saturating_sub(window);
        let end = (i + window + 1).min(b.len());
        for j in start..end {
            if !b_matched[j] && b[j] == *ca {
                a_matched[i] = true;
                b_matched[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut k = 0usize;
    for (i, ca) in a.iter().enumerate() {
        if a_matched[i] {
            while !b_matched[k] {
                k += 1;
            }
            if *ca != b[k] {
                transpositions += 1;
            }
            k += 1;
        }
    }
    let m = matches as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64 / 2.0) / m) / 3.0
}

/// Edit distance counting an adjacent transposition as one edit (optimal string alignment).
pub fn edit_distance(a: &str, b: &str) -> usize {
    if a == b {
        return 0;
    }
    let (mut a_buf, mut b_buf) = (['\0'; 64], ['\0'; 64]);
    let a = fill(&mut a_buf, a.chars());
    let b = fill(&mut b_buf, b.chars());
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return n.max(m);
    }
    let width = m + 1;
    // Short strings (names, dates, identifiers) fit the stack table; longer ones (addresses
    // beyond 23 characters) take the heap.
    let mut stack = [0usize; 24 * 24];
    let mut heap = Vec::new();
    let d: &mut [usize] = if (n + 1) * width <= stack.len() {
        &mut stack[..(n + 1) * width]
    } else {
        heap.resize((n + 1) * width, 0);
        &mut heap
    };
    for i in 0..=n {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(m + 1) {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[n * width + m]
}

/// American Soundex of the ASCII letters of `name` ("" for none): a blocking key that survives
/// most one-letter typos of romanised names.
pub fn soundex(name: &str) -> String {
    let mut letters = name
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(|b| b.to_ascii_lowercase());
    let Some(first) = letters.next() else {
        return String::new();
    };
    let code = |b: u8| match b {
        b'b' | b'f' | b'p' | b'v' => b'1',
        b'c' | b'g' | b'j' | b'k' | b'q' | b's' | b'x' | b'z' => b'2',
        b'd' | b't' => b'3',
        b'l' => b'4',
        b'm' | b'n' => b'5',
        b'r' => b'6',
        b'h' | b'w' => b'h',
        _ => b'0',
    };
    let mut out = vec![first.to_ascii_uppercase()];
    let mut last = code(first);
    for b in letters {
        let c = code(b);
        if c == b'h' {
            continue;
        }
        if c != b'0' && c != last {
            out.push(c);
            if out.len() == 4 {
                break;
            }
        }
        last = c;
    }
    while out.len() < 4 {
        out.push(b'0');
    }
    String::from_utf8(out).unwrap_or_default()
}
