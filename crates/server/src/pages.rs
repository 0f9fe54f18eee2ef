//! The sign-in pages: server-rendered HTML in Chinese and English, small enough for a phone
//! (a viewport, one column, system fonts, no script). Every value from outside (client names,
//! scopes, account names, messages, sealed state) goes through [`escape`]; the templates are
//! plain `format!` strings (decision 0014: a templating crate would add a dependency for four
//! pages).

use std::fmt::Write;

/// The pages' languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "zh-hans" => Some(Lang::Zh),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first of Chinese or English an `Accept-Language` header names (ignoring weights
    /// other than zero); Chinese when it names neither.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::Zh;
        };
        for range in header.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            if refused {
                continue;
            }
            if tag == "zh" || tag.starts_with("zh-") {
                return Lang::Zh;
            }
            if tag == "en" || tag.starts_with("en-") {
                return Lang::En;
            }
        }
        Lang::Zh
    }

    fn text(self, key: Text) -> &'static str {
        use Text::*;
        match (self, key) {
            (Lang::Zh, Title) => "登录 Meridian",
            (Lang::En, Title) => "Sign in to Meridian",
            (Lang::Zh, Asks) => "请求访问您的健康信息：",
            (Lang::En, Asks) => "asks to use your health information:",
            (Lang::Zh, Account) => "账号",
            (Lang::En, Account) => "Account",
            (Lang::Zh, Password) => "密码",
            (Lang::En, Password) => "Password",
            (Lang::Zh, SignIn) => "登录",
            (Lang::En, SignIn) => "Sign in",
            (Lang::Zh, WrongCredentials) => "账号或密码不正确。",
            (Lang::En, WrongCredentials) => "The account name or password is not right.",
            (Lang::Zh, Throttled) => "失败次数过多，请稍后再试（秒）：",
            (Lang::En, Throttled) => "Too many failed attempts; try again after (seconds):",
            (Lang::Zh, ChooseOrganization) => "请选择您本次代表的机构",
            (Lang::En, ChooseOrganization) => "Choose the organisation you act for",
            (Lang::Zh, Continue) => "继续",
            (Lang::En, Continue) => "Continue",
            (Lang::Zh, Approve) => "允许此应用：",
            (Lang::En, Approve) => "Allow this app to:",
            (Lang::Zh, Allow) => "允许",
            (Lang::En, Allow) => "Allow",
            (Lang::Zh, Deny) => "拒绝",
            (Lang::En, Deny) => "Deny",
            (Lang::Zh, Patient) => "患者（Patient/ID）",
            (Lang::En, Patient) => "Patient (Patient/ID)",
            (Lang::Zh, SignedInAs) => "已登录：",
            (Lang::En, SignedInAs) => "Signed in as",
            (Lang::Zh, Problem) => "无法继续",
            (Lang::En, Problem) => "This cannot go on",
            (Lang::Zh, Expired) => "页面已过期，请从应用重新开始登录。",
            (Lang::En, Expired) => "This page has expired; start signing in again from the app.",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Text {
    Title,
    Asks,
    Account,
    Password,
    SignIn,
    WrongCredentials,
    Throttled,
    ChooseOrganization,
    Continue,
    Approve,
    Allow,
    Deny,
    Patient,
    SignedInAs,
    Problem,
    Expired,
}

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;\
margin:0;background:#f4f6f8;color:#1b1f23}main{max-width:26rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:1.4rem}label{display:block;margin:1rem 0 .3rem}input[type=text],input[type=password]\
{width:100%;box-sizing:border-box;padding:.7rem;font-size:1rem;border:1px solid #9aa5b1;border-radius:.4rem}\
button{font-size:1rem;padding:.7rem 1.2rem;margin:1rem .5rem 0 0;border-radius:.4rem;border:0;\
background:#0b63c4;color:#fff}button.secondary{background:#dde3ea;color:#1b1f23}\
.error{background:#fde8e8;color:#8a1c1c;padding:.7rem;border-radius:.4rem}ul{padding-left:1.2rem}\
code{word-break:break-all}nav{text-align:right}nav button{background:none;color:#0b63c4;padding:0;margin:0 0 0 .8rem}";

/// A whole page around `body`, with the language switch (a form button re-posting `hidden`, or
/// a link for the first page).
fn page(lang: Lang, switch: &Switch<'_>, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main><nav>",
        if lang == Lang::Zh { "zh-CN" } else { "en" },
        lang.text(Text::Title),
    );
    match switch {
        Switch::Link(query) => {
            for (code, label) in [("zh", "中文"), ("en", "English")] {
                let _ = write!(
                    out,
                    "<a href=\"/auth/authorize?{}&amp;lang={code}\" hreflang=\"{code}\" style=\"margin-left:.8rem\">{label}</a>",
                    escape(query)
                );
            }
        }
        Switch::Form(hidden) => {
            out.push_str("<form method=\"post\" action=\"/auth/authorize\">");
            out.push_str(hidden);
            for (code, label) in [("zh", "中文"), ("en", "English")] {
                let _ = write!(
                    out,
                    "<button type=\"submit\" name=\"switch_lang\" value=\"{code}\">{label}</button>"
                );
            }
            out.push_str("</form>");
        }
        Switch::None => {}
    }
    out.push_str("</nav>");
    out.push_str(body);
    out.push_str("</main></body></html>");
    out
}

/// How a page offers the other language.
pub enum Switch<'a> {
    /// A link to the authorization request with `lang` (its query, without `lang`).
    Link(&'a str),
    /// Buttons in a form that re-posts these hidden fields.
    Form(&'a str),
    None,
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

fn client_line(lang: Lang, client: &str) -> String {
    format!(
        "<p><strong>{}</strong> {}</p>",
        escape(client),
        lang.text(Text::Asks)
    )
}

/// The sign-in form.
pub fn login(
    lang: Lang,
    switch: Switch<'_>,
    client: &str,
    scopes: &[String],
    sealed_request: &str,
    error: Option<String>,
    account: &str,
) -> String {
    let mut body = format!("<h1>{}</h1>", lang.text(Text::Title));
    body.push_str(&client_line(lang, client));
    body.push_str(&scope_list(scopes));
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(&error)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/auth/authorize\">{}{}{}\
         <label for=\"username\">{}</label><input type=\"text\" id=\"username\" name=\"username\" \
         autocomplete=\"username\" autocapitalize=\"none\" required value=\"{}\">\
         <label for=\"password\">{}</label><input type=\"password\" id=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required>\
         <button type=\"submit\">{}</button></form>",
        hidden("step", "login"),
        hidden("request", sealed_request),
        hidden("lang", lang.code()),
        lang.text(Text::Account),
        escape(account),
        lang.text(Text::Password),
        lang.text(Text::SignIn),
    );
    page(lang, &switch, &body)
}

/// The wrong-password and throttled messages.
pub fn sign_in_error(lang: Lang, throttled: Option<i64>) -> String {
    match throttled {
        Some(seconds) => format!("{} {seconds}", lang.text(Text::Throttled)),
        None => lang.text(Text::WrongCredentials).to_owned(),
    }
}

/// The organisation choice for a practitioner with roles at several.
pub fn organizations(
    lang: Lang,
    sealed_signed_in: &str,
    account: &str,
    organizations: &[String],
) -> String {
    let state = format!(
        "{}{}",
        hidden("signed", sealed_signed_in),
        hidden("step", "organization")
    );
    let mut body = format!(
        "<h1>{}</h1><p>{} <strong>{}</strong></p><form method=\"post\" action=\"/auth/authorize\">{}{}",
        lang.text(Text::ChooseOrganization),
        lang.text(Text::SignedInAs),
        escape(account),
        state,
        hidden("lang", lang.code()),
    );
    for (i, organization) in organizations.iter().enumerate() {
        let _ = write!(
            body,
            "<label><input type=\"radio\" name=\"organization\" value=\"{}\"{}> {}</label>",
            escape(organization),
            if i == 0 { " checked" } else { "" },
            escape(organization)
        );
    }
    let _ = write!(
        body,
        "<button type=\"submit\">{}</button></form>",
        lang.text(Text::Continue)
    );
    page(lang, &Switch::Form(&state), &body)
}

/// What the approval page shows.
pub struct Approval<'a> {
    pub lang: Lang,
    pub sealed_signed_in: &'a str,
    pub client: &'a str,
    pub account: &'a str,
    pub organization: Option<&'a str>,
    pub scopes: &'a [String],
    /// Whether to ask which patient (a practitioner's standalone `launch/patient`).
    pub ask_patient: bool,
    pub error: Option<&'a str>,
}

/// The approval of the scopes (and the patient, when one must be chosen).
pub fn approval(approval: &Approval<'_>) -> String {
    let &Approval {
        lang,
        sealed_signed_in,
        client,
        account,
        organization,
        scopes,
        ask_patient,
        error,
    } = approval;
    let state = format!(
        "{}{}",
        hidden("signed", sealed_signed_in),
        hidden("step", "approve")
    );
    let mut body = format!(
        "<h1>{}</h1><p>{} <strong>{}</strong>{}</p>",
        lang.text(Text::Approve),
        lang.text(Text::SignedInAs),
        escape(account),
        organization
            .map(|o| format!(" · {}", escape(o)))
            .unwrap_or_default()
    );
    body.push_str(&client_line(lang, client));
    body.push_str(&scope_list(scopes));
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/auth/authorize\">{state}{}",
        hidden("lang", lang.code())
    );
    if ask_patient {
        let _ = write!(
            body,
            "<label for=\"patient\">{}</label><input type=\"text\" id=\"patient\" name=\"patient\" autocapitalize=\"none\">",
            lang.text(Text::Patient)
        );
    }
    let _ = write!(
        body,
        "<button type=\"submit\" name=\"decision\" value=\"allow\">{}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">{}</button></form>",
        lang.text(Text::Allow),
        lang.text(Text::Deny)
    );
    page(lang, &Switch::Form(&state), &body)
}

/// A request that cannot go on.
pub fn problem(lang: Lang, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        lang.text(Text::Problem),
        escape(message)
    );
    page(lang, &Switch::None, &body)
}

pub fn expired(lang: Lang) -> String {
    problem(lang, lang.text(Text::Expired))
}

fn scope_list(scopes: &[String]) -> String {
    let mut out = String::from("<ul>");
    for scope in scopes {
        let _ = write!(out, "<li><code>{}</code></li>", escape(scope));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let html = login(
            Lang::En,
            Switch::Link("client_id=<x>"),
            "<script>alert(1)</script>",
            &["patient/*.rs\"><b>".into()],
            "\"sealed\"",
            Some("<i>".into()),
            "'><img src=x>",
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<i>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("name=\"viewport\""));
    }

    #[test]
    fn accept_language_picks_the_first_known_language() {
        assert_eq!(
            Lang::from_accept_language(Some("en-US,en;q=0.9,zh;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::Zh
        );
        assert_eq!(Lang::from_accept_language(Some("fr, en;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("en;q=0, zh")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(None), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("\u{0}garbage")), Lang::Zh);
    }
}
