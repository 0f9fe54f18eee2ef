//! The narrative `div`: well-formed XHTML rooted at an XHTML `div`, holding only what txt-1
//! allows (no script, no active content, no URL that runs code), with some content (txt-2).

use fhir_model::primitives::{XhtmlError, check_xhtml};
use serde_json::json;

use super::{NS, check_all, patient};

fn div(inner: &str) -> String {
    format!("<div xmlns=\"{NS}\">{inner}</div>")
}

#[test]
fn narratives_as_the_specification_and_generators_write_them_are_accepted() {
    let accepted = [
        div("text"),
        div("<p>Peter &amp; <b>James</b> &#160;&#xA9; <![CDATA[a < b]]></p><!-- a note -->"),
        format!("<n:div xmlns:n=\"{NS}\"><n:p>prefixed</n:p></n:div>"),
        format!("<div xmlns=\"{NS}\" xml:lang=\"en\" lang=\"en\" dir=\"ltr\">languages</div>"),
        div(
            "<table class=\"grid\" border=\"0\" cellpadding=\"0\" cellspacing=\"0\" style=\"border: 0px #F0F0F0 solid\"><tbody><tr style=\"border: 1px\"><td colspan=\"2\" valign=\"top\" style=\"vertical-align: top; background-image: url(data: image/png;base64,iVBORw0KGgo=)\">cell</td></tr></tbody></table>",
        ),
        div(
            "<a href=\"http://hl7.org/fhir\">http</a><a href=\"https://x.org/a?b=c#d\">https</a><a href=\"mailto:a@b.org\">mail</a><a href=\"Patient/123\">relative</a><a href=\"#section\">fragment</a><a name=\"here\">anchor</a><a href=\"urn:uuid:6f1c2a9e-0000-4000-8000-00000000000a\">urn</a><a href=\"a/b:c\">colon in the path</a>",
        ),
        div("<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"an image\"/>"),
        div("<img src=\"data: image/png;base64,iVBORw0KGgo=\" alt=\"as the spec writes it\"/>"),
        div("<img src=\"#contained-binary\"/>"),
        div(
            "<ul><li>one</li></ul><ol start=\"2\" type=\"a\"><li value=\"3\">two</li></ol><dl><dt>t</dt><dd>d</dd></dl><blockquote cite=\"http://x.org\">q</blockquote><pre>  pre  </pre><hr/><br clear=\"all\"/><h1>h</h1><sub>s</sub><sup>s</sup><tt>t</tt><i>i</i><big>b</big><small>s</small>",
        ),
        div(
            "<map name=\"m\"><area shape=\"rect\" coords=\"0,0,1,1\" href=\"#a\" alt=\"a\"/></map>x",
        ),
        format!("{}\n", div("trailing whitespace is fine")),
        div(&format!(
            "{}deep{}",
            "<span>".repeat(50_000),
            "</span>".repeat(50_000)
        )),
    ];
    for text in accepted {
        if let Err(error) = check_xhtml(&text) {
            panic!("{text}: {error}");
        }
    }
}

/// Each refused narrative, and a word its error must contain.
#[test]
fn script_active_content_and_code_running_urls_are_refused_txt_1() {
    let refused = [
        (div("<script>alert(1)</script>x"), "<script>"),
        (div("<p>x</p><style>p {color: red}</style>"), "<style>"),
        (div("<object data=\"x.swf\"/>x"), "<object>"),
        (div("<applet code=\"x\"/>x"), "<applet>"),
        (div("<embed src=\"x.swf\"/>x"), "<embed>"),
        (div("<iframe src=\"http://x.org\"/>x"), "<iframe>"),
        (
            div("<form action=\"http://x.org\"><input name=\"q\"/></form>x"),
            "<form>",
        ),
        (div("<input name=\"q\"/>x"), "<input>"),
        (div("<base href=\"http://evil.org/\"/>x"), "<base>"),
        (
            div("<link rel=\"stylesheet\" href=\"http://x.org/a.css\"/>x"),
            "<link>",
        ),
        (
            div("<meta http-equiv=\"refresh\" content=\"0\"/>x"),
            "<meta>",
        ),
        (div("<body>x</body>"), "<body>"),
        (div("<font color=\"red\">x</font>"), "<font>"),
        (div("<u>x</u>"), "<u>"),
        (div("<ins>x</ins>"), "<ins>"),
        (div("<p onclick=\"alert(1)\">x</p>"), "onclick"),
        (div("<img src=\"x.png\" onerror=\"alert(1)\"/>"), "onerror"),
        (div("<p onClick=\"check\">x</p>"), "onClick"),
        (div("<a href=\"javascript:alert(1)\">x</a>"), "javascript:"),
        (div("<a href=\"JaVaScRiPt:alert(1)\">x</a>"), "JaVaScRiPt:"),
        (
            div("<a href=\" &#x20; javascript:alert(1)\">x</a>"),
            "javascript",
        ),
        (div("<a href=\"java&#9;script:alert(1)\">x</a>"), "script:"),
        (
            div("<a href=\"java&#x0A;script:alert(1)\">x</a>"),
            "script:",
        ),
        (div("<a href=\"vbscript:msgbox(1)\">x</a>"), "vbscript:"),
        (
            div("<a href=\"data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;\">x</a>"),
            "data:",
        ),
        (div("<a href=\"data:image/png;base64,AAAA\">x</a>"), "data:"),
        (div("<img src=\"javascript:alert(1)\"/>"), "javascript:"),
        (
            div("<img src=\"data:text/html;base64,PHNjcmlwdD4=\"/>"),
            "data:text/html",
        ),
        (
            div("<blockquote cite=\"javascript:x()\">q</blockquote>"),
            "javascript:",
        ),
        (div("<a target=\"_blank\" href=\"#\">x</a>"), "target"),
        (
            div("<p style=\"width: expression(alert(1))\">x</p>"),
            "expression",
        ),
        (
            div("<p style=\"background: url(http://tracker.org/a.gif)\">x</p>"),
            "url(",
        ),
        (
            div("<p style=\"background: url('javascript:alert(1)')\">x</p>"),
            "url(",
        ),
        (div("<p style=\"behavior: url(x.htc)\">x</p>"), "behavior"),
        (
            div("<p style=\"background: u\\72l(http://x.org)\">x</p>"),
            "u\\72l",
        ),
        (div("<p style=\"backg/**/round: red\">x</p>"), "/**/"),
        (
            div("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>x"),
            "http://www.w3.org/2000/svg",
        ),
        (
            div(
                "<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"javascript:alert(1)\">x</a>",
            ),
            "xlink",
        ),
        (div("<?php echo 1; ?>x"), "processing instruction"),
    ];
    let mut failures = Vec::new();
    for (text, word) in refused {
        match check_xhtml(&text) {
            Ok(()) => failures.push(format!("accepted: {text}")),
            Err(error @ XhtmlError::NotAllowed(_)) => {
                let message = error.to_string();
                if !message.contains(word) || !message.contains("(txt-1)") {
                    failures.push(format!("{text}: '{message}' does not name '{word}'"));
                }
            }
            Err(other) => failures.push(format!("{text}: not a txt-1 refusal: {other}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_narrative_says_something_txt_2() {
    for text in [
        div(""),
        div("  \n\t "),
        div("<p> </p><br/>"),
        div("<img alt=\"no source\"/>"),
        div("<!-- only a comment -->"),
    ] {
        assert_eq!(check_xhtml(&text), Err(XhtmlError::Empty), "{text}");
    }
}

#[test]
fn what_is_not_well_formed_xhtml_in_a_div_is_refused() {
    let malformed = [
        (div("<p>unclosed"), "Malformed"),
        (div("<b><i>crossed</b></i>"), "Malformed"),
        (div("<p>x</pa>"), "Malformed"),
        (div("a & b"), "Malformed"),
        (div("<a href=unquoted>x</a>"), "Malformed"),
        (div("a&nbsp;b"), "&#160;"),
        (
            format!(
                "<div xmlns=\"{NS}\"><!DOCTYPE foo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><p>&xxe;</p></div>"
            ),
            "Malformed",
        ),
        (
            format!("<!DOCTYPE div [<!ENTITY a \"aaaa\">]><div xmlns=\"{NS}\">&a;</div>"),
            "root element",
        ),
        (
            format!("<?xml version=\"1.0\"?>{}", div("x")),
            "root element",
        ),
        (format!(" {}", div("x")), "root element"),
        (format!("{}<div>second root</div>", div("x")), "Malformed"),
        (format!("{}trailing", div("x")), "Malformed"),
        (div("x\u{1}y"), "Malformed"),
        ("text".to_owned(), "root element"),
        (String::new(), "root element"),
        (div(&"<b>".repeat(100_000)), "Malformed"),
    ];
    let roots = [
        format!("<p xmlns=\"{NS}\">text</p>"),
        "<div>no namespace</div>".to_owned(),
        "<div xmlns=\"http://www.w3.org/1999/xhtmlx\">wrong namespace</div>".to_owned(),
    ];
    for (text, word) in malformed {
        match check_xhtml(&text) {
            Err(error @ XhtmlError::Malformed(_)) => {
                let message = format!("{error:?} {error}");
                assert!(message.contains(word), "{text}: {message}");
            }
            other => panic!("{}: {other:?}", text.chars().take(200).collect::<String>()),
        }
    }
    for text in roots {
        assert!(
            matches!(check_xhtml(&text), Err(XhtmlError::Root(_))),
            "{text}"
        );
    }
}

#[test]
fn a_refused_narrative_is_reported_at_its_div() {
    let narrative = |div: String| patient(json!({"text": {"status": "generated", "div": div}}));
    check_all(vec![
        (
            "script",
            narrative(div("<script>alert(document.cookie)</script>x")),
            vec![("invariant", "Patient.text.div")],
        ),
        (
            "nothing to say",
            narrative(div(" ")),
            vec![("invariant", "Patient.text.div")],
        ),
        (
            "not well-formed",
            narrative(div("<p>x")),
            vec![("value", "Patient.text.div")],
        ),
        (
            "in a contained resource",
            patient(
                json!({"contained": [{"resourceType": "Organization", "id": "o",
                                          "text": {"status": "generated", "div": div("<iframe src=\"http://x.org\"/>x")}}],
                           "managingOrganization": {"reference": "#o"}}),
            ),
            vec![("invariant", "Patient.contained[0].text.div")],
        ),
        (
            "in a Bundle entry",
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": narrative(div("<a href=\"javascript:steal()\">click</a>"))}
            ]}),
            vec![("invariant", "Bundle.entry[0].resource.text.div")],
        ),
        (
            "a narrative that is not a string",
            patient(json!({"text": {"status": "generated", "div": 7}})),
            vec![("structure", "Patient.text.div")],
        ),
    ]);
    let issues = fhir_model::validate(
        fhir_model::r4(),
        &narrative(div("<p>x</p><script>alert(1)</script>")),
    );
    assert!(
        issues[0]
            .diagnostics
            .contains("<script> at line 1, column 51 is not allowed in a narrative"),
        "{}",
        issues[0].diagnostics
    );
}
