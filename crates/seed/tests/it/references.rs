//! References resolve inside the generated set, to resources that came earlier in the stream,
//! and a resident's records point at that resident.

use std::collections::HashSet;

use crate::support;

#[test]
fn every_reference_points_to_a_resource_generated_before_it() {
    let mut seen: HashSet<String> = HashSet::new();
    let mut checked = 0;
    for (resource_type, resource) in support::region(1_600, 31).resources() {
        let key = format!("{resource_type}/{}", resource["id"].as_str().unwrap());
        let mut references = Vec::new();
        support::references(&resource, &mut references);
        for reference in references {
            assert!(
                seen.contains(&reference),
                "{key} references {reference}, which was not generated before it"
            );
            checked += 1;
        }
        assert!(seen.insert(key.clone()), "{key} generated twice");
    }
    assert!(checked > 50_000, "only {checked} references");
}

#[test]
fn a_residents_records_follow_their_patient_and_refer_only_to_them() {
    let mut current: Option<String> = None;
    let mut records = 0;
    for (resource_type, resource) in support::region(500, 32).resources() {
        let id = resource["id"].as_str().unwrap().to_owned();
        if resource_type == "Patient" {
            current = Some(id);
            continue;
        }
        let Some(patient) = &current else { continue };
        assert!(
            id.starts_with(&format!("{patient}-")),
            "{resource_type}/{id} after Patient/{patient}"
        );
        let mut references = Vec::new();
        support::references(&resource, &mut references);
        for reference in references.iter().filter(|r| r.starts_with("Patient/")) {
            assert_eq!(
                reference,
                &format!("Patient/{patient}"),
                "in {resource_type}/{id}"
            );
        }
        records += 1;
    }
    assert!(records > 5_000);
}

#[test]
fn family_doctors_work_at_the_residents_own_village_clinic() {
    let resources = support::all(3_000, 33);
    let mut contracted = 0;
    for patient in support::of_type(&resources, "Patient") {
        let Some(doctor) = patient["generalPractitioner"][0]["reference"].as_str() else {
            continue;
        };
        contracted += 1;
        let keeper = patient["managingOrganization"]["reference"]
            .as_str()
            .unwrap();
        // thc-520602-1 keeps the records of villages vc-520602-1-*.
        let township = keeper.strip_prefix("Organization/thc-").unwrap();
        assert!(
            doctor.starts_with(&format!("Practitioner/vc-{township}-")),
            "{doctor} is not in township {township}"
        );
    }
    assert!(contracted > 1_000, "{contracted}");
}
