//! PID (with PD1 and NK1) → Patient, and the identifier a Patient is found by.
//!
//! Identifiers: PID-3's repetitions and PID-19 when it holds a resident ID. PID-2 and PID-4
//! (external and alternate ids, withdrawn from v2) are not mapped: they are other
//! institutions' numbers, and putting them in this sender's medical-record system would
//! make two records' numbers collide. A US social security number in PID-19 is not mapped
//! either (this platform serves a region of China).

use serde_json::{Value, json};

use super::Refusal;
use super::context::{Bundle, Ctx, MERIDIAN, Seg, Write, put, put_list};
use super::datatypes::{
    self, RESIDENT_ID_SYSTEM, is_resident_id, part, path_segment, sub, table_concept,
};

/// Which kind of patient identifier, for choosing the one a Patient is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// A medical-record number in the sender's namespace.
    Mrn,
    /// A GB 11643 resident ID.
    Resident,
    Other,
}

/// A patient identifier: the FHIR Identifier, its kind, and its system and value.
pub(crate) struct PatientId {
    pub identifier: Value,
    pub kind: IdKind,
    pub system: String,
    pub value: String,
}

/// Identifier type codes (table 0203) that are not medical-record numbers: with a local
/// assigning authority they get a system of their own in the sender's namespace
/// (`https://meridian.example/sid/<type>/<ns>`). Every other type (MR, PI, PT, none, or a
/// code the sender made up, such as `MRN`) with a local or absent authority is the sender's
/// medical-record number.
const NOT_MRN_TYPES: &[&str] = &[
    "AN", "ANON", "BA", "BC", "BR", "CC", "DL", "DN", "DR", "EI", "EN", "HC", "JHN", "MA", "MB",
    "MC", "MCN", "NH", "NPI", "PEN", "PPN", "RRI", "SN", "SR", "SS", "TAX", "UPIN", "VN", "VS",
    "WC", "WCN", "XX",
];

/// Identifier types a resident ID is sent under: `NNCHN` (table 0203's national person
/// identifier of China) and `NI` (national unique individual identifier); `ID` and `CN` are
/// what some Chinese systems write. Any of them counts only when the value passes GB 11643's
/// check; `NNCHN` with a value that does not is an error.
const RESIDENT_TYPES: &[&str] = &["NNCHN", "NI", "ID", "CN"];

/// One CX repetition as a patient identifier (see the module and `Profile::namespace`).
/// `Err` is why the value is wrong.
pub(crate) fn identifier(
    ctx: &Ctx<'_>,
    rep: &hl7v2::Repetition,
) -> Result<Option<PatientId>, String> {
    let Some(value) = part(rep, 1) else {
        return Ok(None);
    };
    let type_code = part(rep, 5)
        .map(|t| t.to_ascii_uppercase())
        .unwrap_or_default();
    let authority = datatypes::hd_system(
        sub(rep, 4, 1).as_deref(),
        sub(rep, 4, 2).as_deref(),
        sub(rep, 4, 3).as_deref(),
    );
    let resident_authority = authority.as_deref() == Some(RESIDENT_ID_SYSTEM);
    if resident_authority || RESIDENT_TYPES.contains(&type_code.as_str()) {
        if is_resident_id(&value) {
            return Ok(Some(resident(value.to_ascii_uppercase())));
        }
        if resident_authority || type_code == "NNCHN" {
            return Err(format!(
                "'{value}' is not an 18-character GB 11643 resident ID"
            ));
        }
    }
    let (system, kind) = match authority {
        Some(system) => (system, IdKind::Other),
        None if !NOT_MRN_TYPES.contains(&type_code.as_str()) => (ctx.system("mrn"), IdKind::Mrn),
        None => (
            ctx.system(&path_segment(&type_code.to_ascii_lowercase())),
            IdKind::Other,
        ),
    };
    let mut identifier = json!({ "system": system, "value": value });
    if let Some(type_code) = datatypes::code(&type_code) {
        identifier["type"] = table_concept("0203", &type_code, None);
    }
    if authority_is_local(&system, ctx)
        && let Some(organization) = ctx.organization()
    {
        identifier["assigner"] = organization;
    }
    Ok(Some(PatientId {
        identifier,
        kind,
        system,
        value,
    }))
}

fn authority_is_local(system: &str, ctx: &Ctx<'_>) -> bool {
    system.starts_with(MERIDIAN) && system.ends_with(&ctx.profile.namespace)
}

fn resident(value: String) -> PatientId {
    PatientId {
        identifier: json!({
            "system": RESIDENT_ID_SYSTEM,
            "value": value,
            "type": table_concept("0203", "NI", Some("National unique individual identifier")),
        }),
        kind: IdKind::Resident,
        system: RESIDENT_ID_SYSTEM.to_owned(),
        value,
    }
}

/// Every identifier of the patient in `pid`, de-duplicated, and the one it is found by: the
/// first medical-record number in the sender's namespace, else the resident ID, else the
/// first identifier in a global system the sender named (an assigning authority's OID or
/// URI: the authority, not the sender, makes it unique). No usable identifier is AE 101 at
/// PID-3; a malformed resident ID AE 102.
pub(crate) fn identifiers(
    ctx: &Ctx<'_>,
    pid: &Seg<'_>,
) -> Result<(Vec<PatientId>, (String, String)), Refusal> {
    let mut ids: Vec<PatientId> = Vec::new();
    for rep in pid.reps(3) {
        if let Some(id) = identifier(ctx, rep).map_err(|why| pid.wrong(3, &why))? {
            ids.push(id);
        }
    }
    if let Some(value) = pid.text(19, 1)
        && is_resident_id(&value)
    {
        ids.push(resident(value.to_ascii_uppercase()));
    }
    let mut unique: Vec<PatientId> = Vec::new();
    for id in ids {
        if !unique
            .iter()
            .any(|u| u.system == id.system && u.value == id.value)
        {
            unique.push(id);
        }
    }
    let key = unique
        .iter()
        .find(|id| id.kind == IdKind::Mrn)
        .or_else(|| unique.iter().find(|id| id.kind == IdKind::Resident))
        .or_else(|| unique.iter().find(|id| !id.system.starts_with(MERIDIAN)))
        .map(|id| (id.system.clone(), id.value.clone()))
        .ok_or_else(|| {
            pid.missing(
                3,
                "a patient identifier: a medical-record number or a resident ID",
            )
        })?;
    Ok((unique, key))
}

/// The Patient of `pid`, with its key.
pub(crate) fn patient(ctx: &Ctx<'_>, pid: &Seg<'_>) -> Result<(Value, (String, String)), Refusal> {
    let profile = ctx.profile;
    let (ids, key) = identifiers(ctx, pid)?;
    let mut patient = json!({ "resourceType": "Patient" });
    put_list(
        &mut patient,
        "identifier",
        ids.into_iter().map(|id| id.identifier).collect(),
    );
    put_list(
        &mut patient,
        "name",
        pid.reps(5).filter_map(datatypes::human_name).collect(),
    );
    let mut telecom: Vec<Value> = pid
        .reps(13)
        .filter_map(|r| datatypes::contact_point(r, Some("home")))
        .collect();
    telecom.extend(
        pid.reps(14)
            .filter_map(|r| datatypes::contact_point(r, Some("work"))),
    );
    put_list(&mut patient, "telecom", telecom);
    if let Some(sex) = pid.code(8) {
        patient["gender"] =
            json!(gender(&sex).ok_or_else(|| pid.unknown(8, &sex, "table 0001"))?);
    }
    if let Some(birth) = pid.ts(7)? {
        patient["birthDate"] = json!(birth.date());
    }
    match (pid.ts(29)?, pid.code(30)) {
        (Some(death), _) => patient["deceasedDateTime"] = json!(ctx.date_time(&death)),
        (None, Some(flag)) if flag == "Y" || flag == "N" => {
            patient["deceasedBoolean"] = json!(flag == "Y");
        }
        _ => {}
    }
    put_list(
        &mut patient,
        "address",
        pid.reps(11).filter_map(datatypes::address).collect(),
    );
    put(
        &mut patient,
        "maritalStatus",
        pid.rep(16)
            .and_then(|r| datatypes::codeable(profile, r, Some("HL70002"))),
    );
    match (pid.code(24), pid.text(25, 1)) {
        (Some(flag), Some(order)) if flag == "Y" => {
            let order: i64 = order
                .parse()
                .map_err(|_| pid.wrong(25, "the birth order is not a whole number"))?;
            patient["multipleBirthInteger"] = json!(order);
        }
        (Some(flag), _) if flag == "Y" || flag == "N" => {
            patient["multipleBirthBoolean"] = json!(flag == "Y");
        }
        _ => {}
    }
    if let Some(language) = pid
        .rep(15)
        .and_then(|r| datatypes::codeable(profile, r, None))
    {
        patient["communication"] = json!([{ "language": language }]);
    }
    if let Some(maiden) = pid.text(6, 1) {
        patient["extension"] = json!([{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
            "valueString": maiden,
        }]);
    }
    let mut contacts = Vec::new();
    for nk1 in ctx
        .following(
            pid.index,
            &["PID", "PV1", "ORC", "OBR", "RXA", "MRG", "TXA"],
        )
        .into_iter()
        .filter(|s| s.name() == "NK1")
    {
        if let Some(contact) = contact(ctx, &nk1) {
            contacts.push(contact);
        }
    }
    put_list(&mut patient, "contact", contacts);
    if let Some(pd1) = ctx
        .following(pid.index, &["PID", "MRG"])
        .into_iter()
        .find(|s| s.name() == "PD1")
    {
        put_list(
            &mut patient,
            "generalPractitioner",
            pd1.reps(4)
                .filter_map(|r| datatypes::practitioner(profile, r))
                .collect(),
        );
    }
    put(&mut patient, "managingOrganization", ctx.organization());
    Ok((patient, key))
}

/// Table 0001 (administrative sex) → gender; the codes of GB/T 2261.1 (1 male, 2 female,
/// 0 unknown, 9 unstated) as Chinese systems send them are read too.
fn gender(code: &str) -> Option<&'static str> {
    Some(match code {
        "M" | "1" => "male",
        "F" | "2" => "female",
        "O" | "A" | "N" => "other",
        "U" | "0" | "9" => "unknown",
        _ => return None,
    })
}

/// NK1 → Patient.contact: name, relationship (NK1-3, table 0063; NK1-7 contact role, table
/// 0131), address, home and work telecoms.
fn contact(ctx: &Ctx<'_>, nk1: &Seg<'_>) -> Option<Value> {
    let profile = ctx.profile;
    let mut contact = json!({});
    let mut relationship = Vec::new();
    if let Some(r) = nk1
        .rep(3)
        .and_then(|r| datatypes::codeable(profile, r, Some("HL70063")))
    {
        relationship.push(r);
    }
    if let Some(r) = nk1
        .rep(7)
        .and_then(|r| datatypes::codeable(profile, r, Some("HL70131")))
    {
        relationship.push(r);
    }
    put_list(&mut contact, "relationship", relationship);
    put(
        &mut contact,
        "name",
        nk1.rep(2).and_then(datatypes::human_name),
    );
    let mut telecom: Vec<Value> = nk1
        .reps(5)
        .filter_map(|r| datatypes::contact_point(r, Some("home")))
        .collect();
    telecom.extend(
        nk1.reps(6)
            .filter_map(|r| datatypes::contact_point(r, Some("work"))),
    );
    put_list(&mut contact, "telecom", telecom);
    put(
        &mut contact,
        "address",
        nk1.rep(4).and_then(datatypes::address),
    );
    let filled = contact.as_object().is_some_and(|o| {
        o.contains_key("name") || o.contains_key("telecom") || o.contains_key("address")
    });
    filled.then_some(contact)
}

/// Writes the Patient of `pid` (ADT: replacing it; other messages: only if absent) and
/// returns its full URL and key.
pub(crate) fn write(
    ctx: &Ctx<'_>,
    bundle: &mut Bundle,
    pid: &Seg<'_>,
    write: Write,
) -> Result<(String, (String, String)), Refusal> {
    let (patient, key) = patient(ctx, pid)?;
    let url = bundle.add(patient, (&key.0, &key.1), write)?;
    Ok((url, key))
}

/// The first PID, or AE 101 (the message's patient is required).
pub(crate) fn required_pid<'m>(ctx: &Ctx<'m>) -> Result<Seg<'m>, Refusal> {
    ctx.first("PID").ok_or_else(|| {
        Refusal::error(
            100,
            "the message has no PID segment: there is no patient to file it under",
        )
    })
}
