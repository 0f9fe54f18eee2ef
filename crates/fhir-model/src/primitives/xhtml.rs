//! The narrative `div` (type `xhtml`): a check that it is well-formed XML rooted at a `div` in the
//! XHTML namespace. Not an HTML validator: which elements and attributes the narrative may use
//! (invariant txt-1) is left alone; tags must nest, attributes must be quoted, entities must be
//! spelled as entities, and nothing may follow the closing `</div>`.

const XHTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

/// Whether `text` is a well-formed XHTML fragment whose root is `<div xmlns="http://www.w3.org/1999/xhtml">`.
pub fn is_valid_xhtml(text: &str) -> bool {
    if !text.starts_with("<div") {
        return false;
    }
    let mut scanner = Markup {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    scanner.document().is_some()
}

struct Markup<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Markup<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) -> bool {
        let start = self.at;
        while self.peek().is_some_and(is_xml_space) {
            self.at += 1;
        }
        self.at > start
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self.peek().is_some_and(is_name_char) {
            self.at += 1;
        }
        Some(&self.text[start..self.at])
    }

    /// Skips past `terminator`, or fails when it never comes.
    fn skip_past(&mut self, terminator: &str) -> Option<()> {
        let offset = self.rest().find(terminator)?;
        self.at += offset + terminator.len();
        Some(())
    }

    /// `&name;`, `&#123;` or `&#x1F;`, with the cursor on the `&`.
    fn entity(&mut self) -> Option<()> {
        self.at += 1;
        if self.peek() == Some(b'#') {
            self.at += 1;
            let hex = self.peek() == Some(b'x');
            if hex {
                self.at += 1;
            }
            let start = self.at;
            while self.peek().is_some_and(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            }) {
                self.at += 1;
            }
            if self.at == start {
                return None;
            }
        } else {
            self.name()?;
        }
        (self.peek() == Some(b';')).then(|| self.at += 1)
    }

    /// The root element and what follows it (only whitespace and comments).
    fn document(&mut self) -> Option<()> {
        let mut open: Vec<&'a str> = Vec::new();
        let mut root_closed = false;
        let mut seen_root = false;
        while let Some(b) = self.peek() {
            match b {
                b'<' if self.rest().starts_with("<!--") => self.skip_past("-->")?,
                b'<' if self.rest().starts_with("<![CDATA[") && !open.is_empty() => {
                    self.skip_past("]]>")?
                }
                b'<' if self.rest().starts_with("<?") || self.rest().starts_with("<!") => {
                    return None;
                }
                b'<' if self.rest().starts_with("</") => {
                    self.at += 2;
                    let name = self.name()?;
                    self.skip_space();
                    if self.peek() != Some(b'>') || open.pop() != Some(name) {
                        return None;
                    }
                    self.at += 1;
                    root_closed = open.is_empty();
                }
                b'<' => {
                    if root_closed {
                        return None;
                    }
                    self.at += 1;
                    let name = self.name()?;
                    let is_root = !seen_root;
                    seen_root = true;
                    let mut has_namespace = false;
                    let self_closing = loop {
                        let spaced = self.skip_space();
                        match self.peek()? {
                            b'>' => {
                                self.at += 1;
                                break false;
                            }
                            b'/' => {
                                self.at += 1;
                                if self.peek() != Some(b'>') {
                                    return None;
                                }
                                self.at += 1;
                                break true;
                            }
                            _ if spaced => {
                                let (attribute, value) = self.attribute()?;
                                if attribute == "xmlns" && value == XHTML_NAMESPACE {
                                    has_namespace = true;
                                }
                            }
                            _ => return None,
                        }
                    };
                    if is_root && (name != "div" || !has_namespace) {
                        return None;
                    }
                    if self_closing {
                        root_closed = open.is_empty();
                    } else {
                        open.push(name);
                    }
                }
                b'&' if !open.is_empty() => self.entity()?,
                _ if root_closed || open.is_empty() => {
                    if !is_xml_space(b) {
                        return None;
                    }
                    self.at += 1;
                }
                _ => self.at += 1,
            }
        }
        (root_closed && open.is_empty()).then_some(())
    }

    /// `name = "value"` or `name = 'value'`; the value may hold entities but no `<`.
    fn attribute(&mut self) -> Option<(&'a str, &'a str)> {
        let name = self.name()?;
        self.skip_space();
        (self.peek() == Some(b'=')).then(|| self.at += 1)?;
        self.skip_space();
        let quote = self.peek().filter(|&q| q == b'"' || q == b'\'')?;
        self.at += 1;
        let start = self.at;
        loop {
            match self.peek()? {
                b if b == quote => break,
                b'<' => return None,
                b'&' => self.entity()?,
                _ => self.at += 1,
            }
        }
        let value = &self.text[start..self.at];
        self.at += 1;
        Some((name, value))
    }
}
