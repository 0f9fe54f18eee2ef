//! Views kept in the store as the `Library` that holds them (`analytics::stored`).

use analytics::ViewError;
use analytics::stored::{library_of_view, view_of_library};
use serde_json::{Value, json};

fn view() -> Value {
    json!({"resourceType": "ViewDefinition", "name": "patient_sex", "resource": "Patient", "status": "active",
        "select": [{"column": [{"name": "id", "path": "getResourceKey()"}, {"name": "sex", "path": "gender"}]}]})
}

fn invalid_at(error: ViewError) -> (String, String) {
    match error {
        ViewError::Invalid { at, message } => (at, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_library_holding_a_view_gives_the_view_back() {
    let library = library_of_view("patient-sex", &view());
    assert_eq!(library["resourceType"], "Library");
    assert_eq!(library["name"], "patient_sex");
    let held = view_of_library(&library).unwrap();
    assert_eq!(held.resource(), "Patient");
    assert_eq!(held.name(), Some("patient_sex"));
    let names: Vec<&str> = held.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "sex"]);
    let rows = held
        .rows(&json!({"resourceType": "Patient", "id": "p1", "gender": "female"}))
        .unwrap();
    assert_eq!(rows, [vec![json!("p1"), json!("female")]]);

    // Found among other attachments, with a charset on its type.
    let mut library = library;
    let attachment = library["content"][0].clone();
    library["content"] = json!([{"contentType": "text/plain", "data": "aGVsbG8="}, attachment]);
    library["content"][1]["contentType"] = json!("application/json; charset=utf-8");
    assert_eq!(view_of_library(&library).unwrap().columns().len(), 2);
}

#[test]
fn what_holds_no_view_is_refused_naming_the_element() {
    let (at, _) = invalid_at(view_of_library(&json!({"resourceType": "Patient"})).unwrap_err());
    assert_eq!(at, "Library");
    let (at, message) = invalid_at(
        view_of_library(&json!({"resourceType": "Library", "status": "active"})).unwrap_err(),
    );
    assert_eq!(at, "Library.content");
    assert!(message.contains("holds no ViewDefinition"), "{message}");
    let other_json = library_of_view("x", &json!({"resourceType": "Patient"}));
    assert_eq!(
        invalid_at(view_of_library(&other_json).unwrap_err()).0,
        "Library.content"
    );
    let mut broken = library_of_view("x", &view());
    broken["content"][0]["data"] = json!("not base64 at all!");
    assert_eq!(
        invalid_at(view_of_library(&broken).unwrap_err()),
        (
            "Library.content[0].data".to_owned(),
            "is not base64".to_owned()
        )
    );
    broken["content"][0]["data"] = json!("bm90IGpzb24=");
    let (at, message) = invalid_at(view_of_library(&broken).unwrap_err());
    assert_eq!(at, "Library.content[0].data");
    assert!(message.starts_with("is not JSON"), "{message}");
    // The view it holds is checked as an inline one is.
    let mut wrong = view();
    wrong["select"][0]["column"][1]["path"] = json!("nosuchelement");
    let (at, _) = invalid_at(view_of_library(&library_of_view("x", &wrong)).unwrap_err());
    assert!(at.starts_with("ViewDefinition.select[0]"), "{at}");
}
