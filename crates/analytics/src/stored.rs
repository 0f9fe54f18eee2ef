//! ViewDefinitions kept in the store. R4 has no ViewDefinition resource, so a stored view is a
//! `Library` (type `logic-library`) whose content attachment holds the ViewDefinition as JSON
//! (`contentType` `application/json`, the view base64 in `data`): a Library any R4 server
//! keeps, reads, versions and exports, and the one a `Measure.library` names, so an
//! indicator's Measure leads to its view.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::{View, ViewError};

/// The content type of the attachment that holds a view.
pub const VIEW_CONTENT_TYPE: &str = "application/json";

/// The view `library` holds: its first attachment of JSON whose data is a ViewDefinition.
/// Refused (as an invalid view, naming the element) when it is not a Library, when that
/// attachment's data is not base64 JSON, and when it holds none.
pub fn view_of_library(library: &Value) -> Result<View, ViewError> {
    for attachment in attachments(
        library,
        &[VIEW_CONTENT_TYPE, "application/fhir+json"],
        "a stored view is a Library holding a ViewDefinition",
    )? {
        let (place, bytes) = attachment?;
        let held: Value = serde_json::from_slice(&bytes)
            .map_err(|error| ViewError::invalid(&place, format!("is not JSON: {error}")))?;
        if held.get("resourceType").and_then(Value::as_str) == Some("ViewDefinition") {
            return View::parse(&held);
        }
    }
    Err(ViewError::invalid(
        "Library.content",
        format!("holds no ViewDefinition (an attachment of {VIEW_CONTENT_TYPE} whose data is one)"),
    ))
}

/// The data of every attachment of `library` whose content type (its parameters, such as a
/// SQL `dialect`, aside) is one of `types`, decoded from base64, with its place
/// (`Library.content[0].data`) to name in errors. Refused, saying `what_for`, when `library`
/// is not a Library; an attachment whose data is not base64 is an error in its turn.
pub(crate) fn attachments<'l>(
    library: &'l Value,
    types: &'l [&'l str],
    what_for: &str,
) -> Result<impl Iterator<Item = Result<(String, Vec<u8>), ViewError>> + 'l, ViewError> {
    if library.get("resourceType").and_then(Value::as_str) != Some("Library") {
        return Err(ViewError::invalid("Library", what_for));
    }
    let contents = library.get("content").and_then(Value::as_array);
    Ok(contents
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(move |(at, content)| {
            let wanted = content
                .get("contentType")
                .and_then(Value::as_str)
                .and_then(|t| t.split(';').next())
                .is_some_and(|t| types.contains(&t.trim()));
            let data = content.get("data").and_then(Value::as_str)?;
            wanted.then(|| {
                let place = format!("Library.content[{at}].data");
                STANDARD
                    .decode(data)
                    .map(|bytes| (place.clone(), bytes))
                    .map_err(|_| ViewError::invalid(&place, "is not base64"))
            })
        }))
}

/// A Library with id `id` holding `view` (a ViewDefinition's JSON), as [`view_of_library`]
/// reads it back.
pub fn library_of_view(id: &str, view: &Value) -> Value {
    let name = view.get("name").and_then(Value::as_str).unwrap_or(id);
    json!({
        "resourceType": "Library",
        "id": id,
        "name": name,
        "status": view.get("status").and_then(Value::as_str).unwrap_or("active"),
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}]},
        "content": [{"contentType": VIEW_CONTENT_TYPE, "data": STANDARD.encode(view.to_string())}],
    })
}
