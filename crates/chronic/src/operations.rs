//! The FHIR operation the chronic-disease service owns, declared once (the server dispatches
//! it and lists it in its CapabilityStatement from this table), and its implementation over
//! the query parameters or a `Parameters` body.

use caller::Caller;
use fhir_model::IssueCode;
use fhir_model::operation::{Audience, InvokeMethod, Level, OperationDecl, OperationKind};
use repository::{Repository, RepositoryError};
use serde_json::Value;

use crate::dates::{day_of, today};
use crate::worklist::{WorklistQuery, worklist};

/// `EpisodeOfCare/$worklist`: the managed residents a practitioner or an institution follows up
/// (`practitioner`, `organization`, `date`; the caller's own without them), with what is due
/// and the alerts not yet acknowledged, as a `Parameters` resource.
pub const WORKLIST: OperationDecl = OperationDecl {
    name: "$worklist",
    levels: &[Level::Type],
    resource_types: &["EpisodeOfCare"],
    methods: &[InvokeMethod::Get, InvokeMethod::Post],
    affects_state: false,
    definition: "https://meridian.example/fhir/OperationDefinition/EpisodeOfCare-worklist",
    kind: OperationKind::Operation,
    // Clinicians and institutions' clients; what each sees is bounded by the read path.
    audience: Audience::Institutions,
};

/// Every operation the chronic-disease service owns.
pub const OPERATIONS: &[OperationDecl] = &[WORKLIST];

/// `EpisodeOfCare/$worklist` from its parameters (a GET's query, or [`parameters_of`] a
/// POST's body): `practitioner` and `organization` (an id or a reference), `date`
/// (`YYYY-MM-DD`, today in China Standard Time when absent). Unknown parameters are refused,
/// as a FHIR operation refuses what it does not define.
pub fn invoke_worklist(
    repository: &Repository,
    caller: &Caller,
    params: &[(String, String)],
) -> Result<Value, RepositoryError> {
    let mut query = WorklistQuery {
        practitioner: None,
        organization: None,
        as_of: today(),
    };
    for (name, value) in params {
        let slot = match name.as_str() {
            "practitioner" => &mut query.practitioner,
            "organization" => &mut query.organization,
            "date" => {
                query.as_of = day_of(value).filter(|_| value.len() == 10).ok_or_else(|| {
                    RepositoryError::invalid_at(
                        IssueCode::Value,
                        format!("date must be a full date (YYYY-MM-DD), not {value:?}"),
                        "date",
                    )
                })?;
                continue;
            }
            // Paging and format parameters are the server's, not the operation's.
            other if other.starts_with('_') => continue,
            other => {
                return Err(RepositoryError::invalid_at(
                    IssueCode::NotSupported,
                    format!("$worklist has no parameter {other:?}"),
                    other,
                ));
            }
        };
        if slot.is_some() {
            return Err(RepositoryError::invalid_at(
                IssueCode::Value,
                format!("{name} is given more than once"),
                name,
            ));
        }
        let value = value.trim();
        let id = value.rsplit('/').next().unwrap_or_default();
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(RepositoryError::invalid_at(
                IssueCode::Value,
                format!("{name} must be an id or a reference, not {value:?}"),
                name,
            ));
        }
        *slot = Some(value.to_owned());
    }
    Ok(worklist(repository, caller, query)?.to_fhir())
}

/// The parameters of a POSTed `Parameters` body, as (name, value) pairs: `valueString`,
/// `valueId`, `valueDate`, `valueCode`, or a `valueReference`'s reference.
pub fn parameters_of(body: &Value) -> Result<Vec<(String, String)>, RepositoryError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(RepositoryError::invalid(
            IssueCode::Structure,
            "the body of $worklist must be a Parameters resource",
        ));
    }
    let mut pairs = Vec::new();
    for parameter in body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RepositoryError::invalid(IssueCode::Required, "a parameter needs a name")
            })?;
        let value = [
            "valueString",
            "valueId",
            "valueDate",
            "valueCode",
            "valueUri",
        ]
        .iter()
        .find_map(|key| parameter.get(*key).and_then(Value::as_str))
        .or_else(|| {
            parameter
                .get("valueReference")
                .and_then(|r| r.get("reference"))
                .and_then(Value::as_str)
        })
        .ok_or_else(|| {
            RepositoryError::invalid_at(
                IssueCode::Value,
                format!("parameter {name} needs a value of a type $worklist takes"),
                name,
            )
        })?;
        pairs.push((name.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}
