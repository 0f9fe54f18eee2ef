//! `multipart/related` bodies (RFC 2387, as PS3.18 8.6.1.2 uses them): the boundary from the
//! Content-Type, the parts split at their delimiters, each with its headers. A body whose
//! delimiters are missing or malformed is refused, never partly read.

/// One part: its headers (names in lower case) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A media type's parameter (`boundary`, `type`, `transfer-syntax`), unquoted.
pub fn parameter(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The media type without its parameters, in lower case.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Splits `body` at `boundary`.
pub fn split<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err("the multipart boundary must be 1 to 70 characters".into());
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = find(body, delimiter, 0)
        .ok_or("the body does not contain the boundary the Content-Type names")?;
    let mut parts = Vec::new();
    loop {
        let after = at + delimiter.len();
        if body[after..].starts_with(b"--") {
            return if parts.is_empty() {
                Err("the multipart body has no parts".into())
            } else {
                Ok(parts)
            };
        }
        // The rest of the delimiter line (transport padding), then the part.
        let line_end =
            find(body, b"\r\n", after).ok_or("a multipart delimiter line is not ended")?;
        let start = line_end + 2;
        let next = find(
            body,
            &[b"\r\n", delimiter].concat(),
            start.saturating_sub(2),
        )
        .ok_or("the multipart body ends without its closing boundary")?;
        if next + 2 < start {
            return Err("a multipart part is malformed".into());
        }
        let content = &body[start..next.max(start)];
        parts.push(part(content)?);
        at = next + 2;
    }
}

fn part(content: &[u8]) -> Result<Part<'_>, String> {
    let (head, body) = match find(content, b"\r\n\r\n", 0) {
        Some(end) => (&content[..end], &content[end + 4..]),
        None if content.starts_with(b"\r\n") => (&content[..0], &content[2..]),
        None => return Err("a multipart part has no blank line after its headers".into()),
    };
    let head = std::str::from_utf8(head).map_err(|_| "a multipart part's headers are not text")?;
    let mut headers = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a multipart part's header line '{line}' has no colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Part { headers, body })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A `multipart/related` body of `parts`, each with its own Content-Type.
pub fn build(boundary: &str, parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size: usize = parts.iter().map(|(_, b)| b.len() + 128).sum();
    let mut body = Vec::with_capacity(size + 64);
    for (content_type, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}
