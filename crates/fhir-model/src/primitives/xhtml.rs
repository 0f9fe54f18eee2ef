//! The narrative `div` (type `xhtml`), as the specification defines it (narrative.html and the
//! invariants of `Narrative.div`):
//!
//! - well-formed XML, parsed by `roxmltree` (a conforming, dependency-free parser; with no DTD
//!   allowed, no entity can be declared or fetched), starting with its root element: no XML
//!   declaration, processing instruction or DTD;
//! - the root is a `div` in the XHTML namespace, and every element is in that namespace;
//! - txt-1: only the basic formatting elements of HTML 4.0 chapters 7–11 (less 9.4, `ins` and
//!   `del`) and 15 (less the deprecated `font`, `basefont`, `center`, `s`, `strike`, `u`), `a`,
//!   images (`img`, `map`, `area`), with their attributes and style attributes; so no `script`,
//!   `style` element, `object`, `applet`, `embed`, `iframe`, `frame`, `form`, `input`, `base`,
//!   `link`, `meta`, `head` or `body`, no event attributes (`onclick`...), no `xlink:` or other
//!   foreign attributes. Links and image sources must not run code: a URL is relative or uses
//!   http, https, ftp, mailto, tel or urn, and an image may also be a `data:image/...` URL.
//!   A style attribute may not load or run anything: no `expression(`, `javascript:`,
//!   `behavior`, `-moz-binding`, `@import`, CSS escapes, or `url(` other than a data image.
//! - txt-2: some non-whitespace text, or an image.
//!
//! The narrative is shown to every person who reads the record: this check is what keeps a
//! stored resource from carrying script into a viewer that renders it.

use std::fmt;

use roxmltree::{Document, Node, NodeType, ParsingOptions};

const XHTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// The elements a narrative may use.
const ELEMENTS: &[&str] = &[
    // Chapter 7, the body's structure (head and body themselves are not allowed).
    "div",
    "span",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "address",
    // Chapter 8, language and direction.
    "bdo",
    // Chapter 9, text: phrases, quotations, sub- and superscripts, paragraphs and lines.
    "em",
    "strong",
    "dfn",
    "code",
    "samp",
    "kbd",
    "var",
    "cite",
    "abbr",
    "acronym",
    "blockquote",
    "q",
    "sub",
    "sup",
    "p",
    "br",
    "pre",
    // Chapter 10, lists.
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    // Chapter 11, tables.
    "table",
    "caption",
    "thead",
    "tfoot",
    "tbody",
    "colgroup",
    "col",
    "tr",
    "th",
    "td",
    // Chapter 15, font styles and rules.
    "tt",
    "i",
    "b",
    "big",
    "small",
    "hr",
    // Links and images.
    "a",
    "img",
    "map",
    "area",
];

/// Attributes any element may carry: the core and language attributes of HTML 4.0, and the
/// presentational ones of chapters 11 and 15, which lay out but never load or run anything.
const COMMON_ATTRIBUTES: &[&str] = &[
    "id",
    "class",
    "style",
    "title",
    "lang",
    "dir",
    "align",
    "valign",
    "width",
    "height",
    "char",
    "charoff",
    "span",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
    "border",
    "cellspacing",
    "cellpadding",
    "summary",
    "frame",
    "rules",
    "nowrap",
    "bgcolor",
    "clear",
    "noshade",
    "size",
    "compact",
    "start",
    "value",
    "hspace",
    "vspace",
];

/// Attributes with a meaning on particular elements only.
fn element_attribute(element: &str, attribute: &str) -> bool {
    match element {
        "a" => matches!(
            attribute,
            "href"
                | "name"
                | "hreflang"
                | "type"
                | "rel"
                | "rev"
                | "charset"
                | "shape"
                | "coords"
                | "accesskey"
                | "tabindex"
        ),
        "img" => matches!(attribute, "src" | "alt" | "longdesc" | "usemap" | "ismap"),
        "map" => attribute == "name",
        "area" => matches!(
            attribute,
            "href" | "nohref" | "shape" | "coords" | "alt" | "accesskey" | "tabindex"
        ),
        "blockquote" | "q" => attribute == "cite",
        "ol" | "ul" | "li" => attribute == "type",
        _ => false,
    }
}

/// Why a narrative is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XhtmlError {
    /// Not well-formed XML, or not starting with its root element.
    Malformed(String),
    /// Well-formed, but the root is not an XHTML `div`.
    Root(String),
    /// txt-1: something the narrative may not hold, said with where it is.
    NotAllowed(String),
    /// txt-2: no text and no image.
    Empty,
}

impl XhtmlError {
    /// The invariant broken, when the fault is one of txt-1 and txt-2 rather than the XML.
    pub fn invariant(&self) -> Option<&'static str> {
        match self {
            XhtmlError::Malformed(_) | XhtmlError::Root(_) => None,
            XhtmlError::NotAllowed(_) => Some("txt-1"),
            XhtmlError::Empty => Some("txt-2"),
        }
    }
}

impl fmt::Display for XhtmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XhtmlError::Malformed(why) => {
                write!(f, "the narrative is not well-formed XHTML: {why}")
            }
            XhtmlError::Root(why) => write!(
                f,
                "the narrative must be a <div> in the namespace {XHTML_NAMESPACE}: {why}"
            ),
            XhtmlError::NotAllowed(what) => write!(
                f,
                "{what}; a narrative may hold only basic HTML formatting, links and images (txt-1)"
            ),
            XhtmlError::Empty => {
                f.write_str("the narrative has no text and no image; it must say something (txt-2)")
            }
        }
    }
}

impl std::error::Error for XhtmlError {}

/// Whether `text` is a narrative `div` the specification allows.
pub fn is_valid_xhtml(text: &str) -> bool {
    check_xhtml(text).is_ok()
}

/// Checks a narrative `div` against the rules above; the error says what is wrong and where.
pub fn check_xhtml(text: &str) -> Result<(), XhtmlError> {
    // The root element comes first: no declaration, processing instruction, DTD or whitespace
    // before it (roxmltree would accept the first three, and XML the last).
    let mut start = text.chars();
    if start.next() != Some('<') || !start.next().is_some_and(|c| c.is_alphabetic() || c == '_') {
        return Err(XhtmlError::Malformed(
            "it must start with its root element, <div".to_owned(),
        ));
    }
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let document = Document::parse_with_options(text, options).map_err(|error| {
        let hint = match error {
            roxmltree::Error::UnknownEntityReference(..) => {
                " (a narrative has no DTD, so only &lt; &gt; &amp; &quot; &apos; and numeric references such as &#160; are defined)"
            }
            roxmltree::Error::DtdDetected => " (a narrative may not declare a DTD)",
            _ => "",
        };
        XhtmlError::Malformed(format!("{error}{hint}"))
    })?;
    let root = document.root_element();
    if root.tag_name().name() != "div" || root.tag_name().namespace() != Some(XHTML_NAMESPACE) {
        return Err(XhtmlError::Root(format!(
            "the root is <{}> in {}",
            root.tag_name().name(),
            namespace_name(root.tag_name().namespace())
        )));
    }
    let mut has_content = false;
    // `descendants` walks iteratively: however deep the nesting, no recursion.
    for node in root.descendants() {
        match node.node_type() {
            NodeType::Element => {
                check_element(&document, node)?;
                has_content |= node.tag_name().name() == "img" && node.has_attribute("src");
            }
            NodeType::Text => {
                has_content |= node.text().is_some_and(|t| !t.trim().is_empty());
            }
            NodeType::PI => {
                return Err(XhtmlError::NotAllowed(format!(
                    "a processing instruction {}",
                    at(&document, node)
                )));
            }
            NodeType::Comment | NodeType::Root => {}
        }
    }
    if has_content {
        Ok(())
    } else {
        Err(XhtmlError::Empty)
    }
}

fn namespace_name(namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("the namespace {namespace}"),
        None => "no namespace".to_owned(),
    }
}

fn at(document: &Document<'_>, node: Node<'_, '_>) -> String {
    let position = document.text_pos_at(node.range().start);
    format!("at line {}, column {}", position.row, position.col)
}

fn check_element(document: &Document<'_>, node: Node<'_, '_>) -> Result<(), XhtmlError> {
    let name = node.tag_name().name();
    if node.tag_name().namespace() != Some(XHTML_NAMESPACE) {
        return Err(XhtmlError::NotAllowed(format!(
            "<{name}> {} is in {}, not in the XHTML namespace",
            at(document, node),
            namespace_name(node.tag_name().namespace())
        )));
    }
    if !ELEMENTS.contains(&name) {
        return Err(XhtmlError::NotAllowed(format!(
            "<{name}> {} is not allowed in a narrative",
            at(document, node)
        )));
    }
    for attribute in node.attributes() {
        let attribute_name = attribute.name();
        let allowed = match attribute.namespace() {
            None => {
                COMMON_ATTRIBUTES.contains(&attribute_name)
                    || element_attribute(name, attribute_name)
            }
            Some(XML_NAMESPACE) => matches!(attribute_name, "lang" | "space"),
            Some(_) => false,
        };
        if !allowed {
            let shown = match attribute.namespace() {
                Some(XML_NAMESPACE) => format!("xml:{attribute_name}"),
                Some(namespace) => format!("{{{namespace}}}{attribute_name}"),
                None => attribute_name.to_owned(),
            };
            return Err(XhtmlError::NotAllowed(format!(
                "the attribute {shown} on <{name}> {} is not allowed in a narrative",
                at(document, node)
            )));
        }
        let value = attribute.value();
        let safe = match attribute_name {
            "href" | "cite" | "longdesc" | "usemap" => is_safe_url(value, false),
            "src" => is_safe_url(value, name == "img"),
            "style" => is_safe_style(value),
            _ => true,
        };
        if !safe {
            return Err(XhtmlError::NotAllowed(format!(
                "the {attribute_name} '{}' on <{name}> {} could load or run something",
                shorten(value),
                at(document, node)
            )));
        }
    }
    Ok(())
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    } else {
        text.to_owned()
    }
}

/// A URL that cannot run code: relative (a path, `#fragment`, `?query`), or with one of the
/// schemes that only fetch or address; with `image`, also a `data:image/...` URL. Read as a
/// browser reads it: tabs and line breaks inside are ignored, and leading spaces and control
/// characters are dropped, so `java&#9;script:` is `javascript:`.
fn is_safe_url(url: &str, image: bool) -> bool {
    let cleaned: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let trimmed = cleaned.trim_start_matches(|c: char| c <= ' ');
    let Some((scheme, rest)) = trimmed.split_once(':') else {
        return true;
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        // A colon after a '/', '?' or '#', or after anything a scheme cannot hold, is part of
        // a relative URL.
        return true;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" | "ftp" | "mailto" | "tel" | "urn" => true,
        "data" => image && rest.trim_start().to_ascii_lowercase().starts_with("image/"),
        _ => false,
    }
}

/// A style attribute that only styles: nothing that loads a resource other than an embedded
/// image, runs script (old browsers ran `expression(...)` and `behavior`), or hides either
/// behind CSS escapes or comments.
fn is_safe_style(style: &str) -> bool {
    let lower = style.to_ascii_lowercase();
    const REFUSED: &[&str] = &[
        "expression",
        "javascript:",
        "vbscript:",
        "behavior",
        "-moz-binding",
        "@import",
        "\\",
        "/*",
    ];
    if REFUSED.iter().any(|word| lower.contains(word)) {
        return false;
    }
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("url(") {
        rest = &rest[at + 4..];
        let argument = rest.trim_start().trim_start_matches(['"', '\'']);
        if !argument.starts_with("data:") || !is_safe_url(argument, true) {
            return false;
        }
    }
    true
}
