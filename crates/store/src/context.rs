//! The request context: who is acting, for which organisation, for what purpose. It travels from
//! the edge (HTTP or the command line) through the services to the store with every call, so that
//! access decisions and audit records can be made wherever they are needed.

/// Who is asking, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// A unique id for the request, for logs and audit (`X-Request-Id`).
    pub request_id: String,
    /// The acting user (a Practitioner, Patient or system client reference), when known.
    pub user: Option<String>,
    /// The organisation the user acts for.
    pub organization: Option<String>,
    /// The purpose of use (`TREAT`, `ETREAT`, `HPAYMT`... from v3 PurposeOfUse).
    pub purpose_of_use: Option<String>,
    /// Emergency access outside normal consent, always audited.
    pub break_glass: bool,
}

impl RequestContext {
    /// The platform acting on its own behalf (start-up, imports from the command line).
    pub fn system(request_id: impl Into<String>) -> RequestContext {
        RequestContext {
            request_id: request_id.into(),
            user: None,
            organization: None,
            purpose_of_use: None,
            break_glass: false,
        }
    }
}
