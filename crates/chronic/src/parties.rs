//! Who looks after a resident: the family doctor (`Patient.generalPractitioner`) and the
//! institution they work for, found through their PractitionerRole, and the institution that
//! keeps the resident's health record (`Patient.managingOrganization`). The registry and the
//! alerts address the same people, so they are found in one place.

use repository::{InTransaction, RepositoryError};
use serde_json::Value;

/// The reference text of a Reference element (`Organization/x`), when it has one.
pub fn reference_of(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(|r| r.get("reference"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
}

/// The reference when it points at `resource_type` (`Practitioner/7` for `Practitioner`).
pub fn typed<'v>(reference: &'v str, resource_type: &str) -> Option<&'v str> {
    reference
        .strip_prefix(resource_type)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(|_| reference)
}

/// The people and institutions responsible for one resident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CareParties {
    /// The family doctor, `Practitioner/<id>`.
    pub family_doctor: Option<String>,
    /// The family doctor's institution, `Organization/<id>`.
    pub doctor_organization: Option<String>,
    /// The institution keeping the health record, `Organization/<id>`.
    pub managing_organization: Option<String>,
}

impl CareParties {
    /// The institution answerable for the resident's programme records and alerts: the family
    /// doctor's when there is one, otherwise the record keeper's.
    pub fn responsible_organization(&self) -> Option<&str> {
        self.doctor_organization
            .as_deref()
            .or(self.managing_organization.as_deref())
    }
}

/// The parties of `patient`, looked up inside the consumer's transaction.
pub fn care_parties(
    tx: &mut InTransaction<'_, '_>,
    patient: &Value,
) -> Result<CareParties, RepositoryError> {
    let mut parties = CareParties {
        managing_organization: reference_of(patient.get("managingOrganization"))
            .and_then(|r| typed(r, "Organization"))
            .map(str::to_owned),
        ..CareParties::default()
    };
    let doctors: Vec<String> = patient
        .get("generalPractitioner")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| reference_of(Some(r)).map(str::to_owned))
        .collect();
    // The first Practitioner (or PractitionerRole naming one) is the family doctor; an
    // Organization listed there is the contracted institution.
    for reference in &doctors {
        if parties.family_doctor.is_some() {
            break;
        }
        if let Some(practitioner) = typed(reference, "Practitioner") {
            parties.family_doctor = Some(practitioner.to_owned());
            parties.doctor_organization = organization_of_practitioner(tx, practitioner)?;
        } else if let Some(role) = typed(reference, "PractitionerRole") {
            let id = &role["PractitionerRole/".len()..];
            if let Some((_, role)) = tx.read("PractitionerRole", id)? {
                parties.family_doctor = reference_of(role.get("practitioner"))
                    .and_then(|r| typed(r, "Practitioner"))
                    .map(str::to_owned);
                parties.doctor_organization = reference_of(role.get("organization"))
                    .and_then(|r| typed(r, "Organization"))
                    .map(str::to_owned);
            }
        }
    }
    if parties.doctor_organization.is_none()
        && let Some(organization) = doctors.iter().find_map(|r| typed(r, "Organization"))
    {
        parties.doctor_organization = Some(organization.to_owned());
    }
    Ok(parties)
}

/// The institution a practitioner works for: the organisation of their active
/// PractitionerRoles, the one with the smallest id when there are several (so the answer does
/// not depend on the store's order).
pub fn organization_of_practitioner(
    tx: &mut InTransaction<'_, '_>,
    practitioner: &str,
) -> Result<Option<String>, RepositoryError> {
    let records = tx.search(
        "PractitionerRole",
        &[("practitioner".into(), practitioner.into())],
        50,
    )?;
    let mut roles = Vec::new();
    for record in &records {
        let role = repository::parse_stored(record)?;
        if role.get("active").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if let Some(organization) =
            reference_of(role.get("organization")).and_then(|r| typed(r, "Organization"))
        {
            roles.push((record.id.clone(), organization.to_owned()));
        }
    }
    roles.sort();
    Ok(roles
        .into_iter()
        .next()
        .map(|(_, organization)| organization))
}

/// `meta` for a resource the service derives from `source`: the institution that holds it
/// (`meta.source`, which the access rules take as its custodian) and the source's security
/// labels, so a restricted diagnosis or test data stays labelled in what is made from it.
pub fn derived_meta(source: &Value, holder: Option<&str>) -> Value {
    let mut meta = serde_json::Map::new();
    if let Some(holder) = holder {
        meta.insert("source".into(), Value::String(holder.to_owned()));
    }
    if let Some(security) = source
        .get("meta")
        .and_then(|m| m.get("security"))
        .and_then(Value::as_array)
        .filter(|labels| !labels.is_empty())
    {
        meta.insert("security".into(), Value::Array(security.clone()));
    }
    Value::Object(meta)
}
