//! HL7 v2 → FHIR: every message of the hl7v2 crate's corpus is mapped or refused as
//! `v2_expected.txt` says (run with `UPDATE_EXPECT=1` to rewrite it after a deliberate
//! change, and read the diff), every resource written is valid R4, and hand-written messages
//! pin the rules that matter: units, ranges and flags, Chinese names and resident IDs, merges,
//! repeated registrations finding one record, and the refusals' codes and locations.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hl7v2::AckCode;
use intake::v2::{CodeMaps, Coding, Mapped, Profile, Refusal, map};
use serde_json::Value;

const NAMESPACE: &str = "county-hosp-520621";

fn profile() -> Profile {
    Profile {
        organization: format!("Organization/{NAMESPACE}"),
        namespace: NAMESPACE.into(),
        source: "urn:meridian:intake:test".into(),
        code_maps: CodeMaps::default(),
    }
}

fn mrn_system() -> String {
    format!("https://meridian.example/sid/mrn/{NAMESPACE}")
}

/// Parses hand-written text (segments separated by newlines, written as CR).
fn message(text: &str) -> hl7v2::Message {
    let text = text.trim().replace('\n', "\r");
    hl7v2::parse(text.as_bytes()).unwrap_or_else(|e| panic!("the test message reads: {e}"))
}

fn accept(text: &str) -> Mapped {
    let mapped = map(&message(text), &profile()).unwrap_or_else(|r| panic!("refused: {r:?}"));
    assert_valid(&mapped.bundle, "hand-written");
    mapped
}

fn refused(text: &str) -> Refusal {
    match map(&message(text), &profile()) {
        Ok(mapped) => panic!("mapped: {:#}", mapped.bundle),
        Err(refusal) => refusal,
    }
}

fn entries(bundle: &Value) -> &[Value] {
    bundle["entry"].as_array().map_or(&[], Vec::as_slice)
}

/// The resources of `kind` in the Bundle.
fn resources<'b>(bundle: &'b Value, kind: &str) -> Vec<&'b Value> {
    entries(bundle)
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn only<'b>(bundle: &'b Value, kind: &str) -> &'b Value {
    let found = resources(bundle, kind);
    assert_eq!(found.len(), 1, "one {kind} in {bundle:#}");
    found[0]
}

/// The Bundle is a transaction of valid R4 resources, each with a fresh `urn:uuid:`, a
/// request, and the profile's `meta.source`.
fn assert_valid(bundle: &Value, name: &str) {
    let model = fhir_model::r4();
    assert_eq!(bundle["type"], "transaction", "{name}");
    let errors: Vec<String> = fhir_model::validate(model, bundle)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| format!("{i:?}"))
        .collect();
    assert!(errors.is_empty(), "{name}: the Bundle: {errors:#?}");
    for entry in entries(bundle) {
        let resource = &entry["resource"];
        let errors: Vec<String> = fhir_model::validate(model, resource)
            .into_iter()
            .filter(|i| i.is_error())
            .map(|i| format!("{i:?}"))
            .collect();
        assert!(errors.is_empty(), "{name}: {resource:#}: {errors:#?}");
        let full_url = entry["fullUrl"].as_str().unwrap_or_default();
        assert!(
            full_url.starts_with("urn:uuid:")
                && uuid::Uuid::parse_str(&full_url[9..]).is_ok_and(|u| u.get_version_num() == 4),
            "{name}: {full_url}"
        );
        assert!(
            matches!(entry["request"]["method"].as_str(), Some("PUT" | "POST")),
            "{name}: {entry:#}"
        );
        assert_eq!(
            resource["meta"]["source"], "urn:meridian:intake:test",
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The corpus.

fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hl7v2/tests/corpus");
    let mut files = Vec::new();
    for dir in ["ms-fhir-converter", "python-hl7", "regressions"] {
        let entries = std::fs::read_dir(root.join(dir)).expect("the hl7v2 corpus is there");
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            if path.extension().is_some_and(|e| e == "hl7") {
                let name = format!(
                    "{dir}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                );
                files.push((name, std::fs::read(&path).expect("a corpus file reads")));
            }
        }
    }
    files.sort();
    files
}

/// The resource types the message's family must write.
fn family_writes(event: &str) -> &'static [&'static str] {
    match event.split('^').next().unwrap_or_default() {
        "ADT" => &["Patient"],
        "ORU" | "OUL" => &["Patient", "DiagnosticReport"],
        "ORM" | "OML" => &["Patient", "ServiceRequest"],
        "VXU" => &["Patient", "Immunization"],
        "SIU" => &["Patient", "Appointment"],
        "MDM" => &["Patient", "DocumentReference"],
        _ => &[],
    }
}

/// One line of the expectation: `AA` and the resources written by type, or the refusal's
/// code, table 0357 code and location.
fn outcome(name: &str, result: &Result<Mapped, Refusal>) -> String {
    match result {
        Ok(mapped) => {
            assert_valid(&mapped.bundle, name);
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for entry in entries(&mapped.bundle) {
                let kind = entry["resource"]["resourceType"].as_str().unwrap_or("?");
                *counts.entry(kind).or_default() += 1;
            }
            for kind in family_writes(&mapped.event) {
                assert!(counts.contains_key(kind), "{name}: no {kind}");
            }
            let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
            format!("AA {} {}", mapped.event, counts.join(" "))
        }
        Err(refusal) => {
            assert!(
                matches!(
                    refusal.code,
                    AckCode::ApplicationError | AckCode::ApplicationReject
                ),
                "{name}: {refusal:?}"
            );
            assert!(!refusal.error.text.trim().is_empty(), "{name}: no reason");
            let location = refusal
                .error
                .location
                .as_ref()
                .map(|(segment, sequence, field)| format!(" {segment}-{sequence}-{field}"))
                .unwrap_or_default();
            format!(
                "{} {}{location}: {}",
                refusal.code.code(),
                refusal.error.code,
                refusal.error.text
            )
        }
    }
}

#[test]
fn every_corpus_message_is_mapped_or_refused_as_expected() {
    let mut lines = Vec::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for (name, bytes) in corpus() {
        let batch = match hl7v2::parse_batch(&bytes) {
            Ok(batch) => batch,
            Err(error) => {
                lines.push(format!("{name} unreadable: {error}"));
                *tally.entry("unreadable".into()).or_default() += 1;
                continue;
            }
        };
        let several = batch.messages.len() > 1;
        for (index, message) in batch.messages.iter().enumerate() {
            let label = if several {
                format!("{name}#{}", index + 1)
            } else {
                name.clone()
            };
            let result = map(message, &profile());
            let line = outcome(&label, &result);
            *tally.entry(line[..2].to_owned()).or_default() += 1;
            lines.push(format!("{label} {line}"));
        }
    }
    let actual = lines.join("\n") + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/v2_expected.txt");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &actual).expect("the expectation is written");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let changed: Vec<String> = actual
            .lines()
            .filter(|l| !expected.lines().any(|e| e == *l))
            .map(|l| format!("+ {l}"))
            .chain(
                expected
                    .lines()
                    .filter(|e| !actual.lines().any(|l| l == *e))
                    .map(|e| format!("- {e}")),
            )
            .collect();
        panic!(
            "the corpus outcomes changed ({tally:?}); rerun with UPDATE_EXPECT=1 if meant:\n{}",
            changed.join("\n")
        );
    }
}

/// Hostile and broken input gives a Refusal, never a panic: every corpus message cut short
/// at every segment, and with its fields shuffled between segments.
#[test]
fn truncated_and_garbled_messages_are_refused_or_mapped_never_a_panic() {
    for (name, bytes) in corpus() {
        let Ok(batch) = hl7v2::parse_batch(&bytes) else {
            continue;
        };
        for message in batch.messages {
            for keep in 1..message.segments.len() {
                let mut cut = message.clone();
                cut.segments.truncate(keep);
                if let Ok(mapped) = map(&cut, &profile()) {
                    assert_valid(&mapped.bundle, &name);
                }
            }
            let mut garbled = message.clone();
            let fields: Vec<hl7v2::Field> = garbled
                .segments
                .iter()
                .skip(1)
                .flat_map(|s| s.fields.iter().cloned())
                .collect();
            for (i, segment) in garbled.segments.iter_mut().enumerate().skip(1) {
                for (j, field) in segment.fields.iter_mut().enumerate() {
                    if let Some(other) = fields.get((i * 7 + j * 13) % fields.len().max(1)) {
                        *field = other.clone();
                    }
                }
            }
            let _ = map(&garbled, &profile());
        }
    }
    let empty = hl7v2::Message {
        delimiters: hl7v2::Delimiters::default(),
        charset: hl7v2::Charset::Utf8,
        segments: Vec::new(),
    };
    assert_eq!(map(&empty, &profile()).unwrap_err().error.code, 100);
}

// ---------------------------------------------------------------------------------------
// Results.

const LAB_RESULT: &str = r"
MSH|^~\&|LIS|COUNTY LAB|MERIDIAN|REGION|20240312101500+0800||ORU^R01^ORU_R01|LAB-0001|P|2.5.1|||||CHN||UNICODE UTF-8
PID|1||MRN0042^^^COUNTYHOSP^MR||Wang^Fang||19800214|F
PV1|1|O|LAB^01^^COUNTY||||1234^Li^Ming||||||||||||V-778|||||||||||||||||||||||||202403120800
ORC|RE|PL-55|FL-99
OBR|1|PL-55|FL-99|24331-1^Lipid panel^LN|||202403120830|||||||||1234^Li^Ming||||||202403121010||CH|F
OBX|1|NM|2093-3^Cholesterol^LN||6.2|mmol/l|3.5-5.5|H|||F|||202403120900
OBX|2|NM|8480-6^Systolic blood pressure^LN||182|mmHg|<140|HH|||F
OBX|3|SN|2571-8^Triglyceride^LN||<^0.3|mmol/L|>0.1|L|||F
OBX|4|SN|5130-0^Titre^LN||^1^:^128|||A|||C
OBX|5|ST|8251-1^Comment^LN||fasting~12 hours||||||P
NTE|1||Sample slightly haemolysed
OBX|6|CWE|600-7^Culture^LN||3092008^Staphylococcus aureus^SCT||||||F
";

#[test]
fn results_carry_units_ranges_flags_and_statuses() {
    let mapped = accept(LAB_RESULT);
    assert_eq!(mapped.event, "ORU^R01");
    let bundle = &mapped.bundle;
    let report = only(bundle, "DiagnosticReport");
    assert_eq!(report["status"], "final");
    assert_eq!(report["effectiveDateTime"], "2024-03-12T08:30:00+08:00");
    assert_eq!(report["issued"], "2024-03-12T10:10:00+08:00");
    assert_eq!(
        report["performer"][0]["reference"],
        "Organization/county-hosp-520621"
    );
    assert_eq!(report["result"].as_array().map(Vec::len), Some(6));
    let observations = resources(bundle, "Observation");
    let cholesterol = observations[0];
    assert_eq!(
        cholesterol["valueQuantity"],
        serde_json::json!({
            "value": 6.2, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"
        })
    );
    assert_eq!(cholesterol["referenceRange"][0]["low"]["value"], 3.5);
    assert_eq!(cholesterol["referenceRange"][0]["high"]["value"], 5.5);
    assert_eq!(cholesterol["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(
        cholesterol["interpretation"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    );
    assert_eq!(
        cholesterol["effectiveDateTime"],
        "2024-03-12T09:00:00+08:00"
    );
    assert_eq!(
        cholesterol["identifier"][0]["system"],
        format!("https://meridian.example/sid/filler-order/{NAMESPACE}")
    );
    assert_eq!(cholesterol["identifier"][0]["value"], "FL-99-2093-3-1");
    let pressure = observations[1];
    assert_eq!(pressure["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(pressure["referenceRange"][0]["high"]["value"], 140);
    assert_eq!(pressure["interpretation"][0]["coding"][0]["code"], "HH");
    // Without OBX-14, the order's observation time.
    assert_eq!(pressure["effectiveDateTime"], "2024-03-12T08:30:00+08:00");
    let triglyceride = observations[2];
    assert_eq!(triglyceride["valueQuantity"]["comparator"], "<");
    assert_eq!(triglyceride["valueQuantity"]["value"], 0.3);
    assert_eq!(triglyceride["referenceRange"][0]["low"]["value"], 0.1);
    let titre = observations[3];
    assert_eq!(titre["valueRatio"]["denominator"]["value"], 128);
    assert_eq!(titre["status"], "corrected");
    let comment = observations[4];
    assert_eq!(comment["valueString"], "fasting\n12 hours");
    assert_eq!(comment["status"], "preliminary");
    assert_eq!(comment["note"][0]["text"], "Sample slightly haemolysed");
    let culture = observations[5];
    assert_eq!(
        culture["valueCodeableConcept"]["coding"][0]["system"],
        "http://snomed.info/sct"
    );
    // A result never overwrites the registration: the Patient and Encounter are created
    // only if absent; the results themselves replace earlier versions.
    for entry in entries(bundle) {
        let kind = entry["resource"]["resourceType"]
            .as_str()
            .unwrap_or_default();
        let method = entry["request"]["method"].as_str().unwrap_or_default();
        match kind {
            "Patient" | "Encounter" => {
                assert_eq!(method, "POST", "{kind}");
                assert!(entry["request"]["ifNoneExist"].is_string());
            }
            _ => assert_eq!(method, "PUT", "{kind}"),
        }
    }
    let patient = only(bundle, "Patient");
    assert_eq!(
        entries(bundle)[0]["request"]["ifNoneExist"],
        format!("identifier={}|MRN0042", mrn_system())
    );
    assert_eq!(patient["identifier"][0]["value"], "MRN0042");
    let encounter = only(bundle, "Encounter");
    assert_eq!(encounter["identifier"][0]["value"], "V-778");
    assert_eq!(encounter["class"]["code"], "AMB");
}

#[test]
fn a_non_numeric_numeric_result_is_a_data_type_error_at_its_field() {
    let text = LAB_RESULT.replace("||6.2|mmol/l|", "||six point two|mmol/l|");
    let refusal = refused(&text);
    assert_eq!(refusal.code, AckCode::ApplicationError);
    assert_eq!(refusal.error.code, 102);
    assert_eq!(refusal.error.location, Some(("OBX".into(), 1, 5)));
    assert!(refusal.error.text.contains("six point two"), "{refusal:?}");
    // The second OBX is sequence 2.
    let text = LAB_RESULT.replace("||182|mmHg|", "||1.8.2|mmHg|");
    assert_eq!(refused(&text).error.location, Some(("OBX".into(), 2, 5)));
}

#[test]
fn unknown_table_values_are_refused_with_103() {
    let text = LAB_RESULT.replace("|3.5-5.5|H|||F|", "|3.5-5.5|ZZ|||F|");
    let refusal = refused(&text);
    assert_eq!(refusal.error.code, 103);
    assert_eq!(refusal.error.location, Some(("OBX".into(), 1, 8)));
    let text = LAB_RESULT.replace("||CH|F\n", "||CH|Q\n");
    assert_eq!(refused(&text).error.location, Some(("OBR".into(), 1, 25)));
}

#[test]
fn local_codes_are_translated_by_the_sender_code_map_and_kept() {
    let text = LAB_RESULT.replace("2093-3^Cholesterol^LN", "CHOL^Cholesterol^99LAB");
    let mut profile = profile();
    profile.code_maps.codes.insert(
        ("99LAB".into(), "CHOL".into()),
        Coding {
            system: "http://loinc.org".into(),
            code: "2093-3".into(),
            display: Some("Cholesterol [Moles/volume] in Serum or Plasma".into()),
        },
    );
    let mapped = map(&message(&text), &profile).expect("mapped");
    let coding = &resources(&mapped.bundle, "Observation")[0]["code"]["coding"];
    assert_eq!(coding[0]["system"], "http://loinc.org");
    assert_eq!(coding[0]["code"], "2093-3");
    assert_eq!(
        coding[1]["system"],
        format!("https://meridian.example/CodeSystem/local/{NAMESPACE}")
    );
    assert_eq!(coding[1]["code"], "CHOL");
}

// ---------------------------------------------------------------------------------------
// Patients.

#[test]
fn chinese_names_and_resident_ids_are_kept() {
    let mapped = accept(
        "MSH|^~\\&|HIS|县医院|MERIDIAN|REGION|20240301120000+0800||ADT^A04^ADT_A01|CN-1|P|2.5|||||CHN||UNICODE UTF-8
EVN|A04|20240301120000
PID|1||0000123^^^县医院^MR~11010519491231002X^^^^NNCHN||张^三丰^^^^^L||19491231|1|||贵州省遵义市红花岗区^^遵义市^贵州省^563000^CHN^H^^520302||^PRN^CP^^86^^13800138000
NK1|1|张^无忌|SON^儿子^HL70063|||||
PV1|1|O|门诊^01||||||||||||||||V20240301-7|||||||||||||||||||||||||202403011200",
    );
    let bundle = &mapped.bundle;
    let patient = only(bundle, "Patient");
    assert_eq!(patient["name"][0]["text"], "张三丰");
    assert_eq!(patient["name"][0]["family"], "张");
    assert_eq!(patient["name"][0]["given"][0], "三丰");
    assert_eq!(patient["name"][0]["use"], "official");
    // GB/T 2261.1's 1 is male.
    assert_eq!(patient["gender"], "male");
    assert_eq!(patient["birthDate"], "1949-12-31");
    let resident = &patient["identifier"][1];
    assert_eq!(resident["system"], "urn:oid:2.16.156.10011.1.3");
    assert_eq!(resident["value"], "11010519491231002X");
    assert_eq!(resident["type"]["coding"][0]["code"], "NI");
    assert_eq!(patient["address"][0]["district"], "520302");
    assert_eq!(patient["telecom"][0]["use"], "mobile");
    assert_eq!(patient["contact"][0]["name"]["text"], "张无忌");
    // The medical-record number is the key, in the sender's namespace.
    assert_eq!(
        entries(bundle)[0]["request"]["url"],
        format!("Patient?identifier={}|0000123", mrn_system())
    );
    let encounter = only(bundle, "Encounter");
    assert_eq!(encounter["status"], "arrived");
    assert_eq!(encounter["period"]["start"], "2024-03-01T12:00:00+08:00");
}

#[test]
fn a_resident_id_alone_identifies_the_patient_and_a_bad_one_is_refused() {
    let text = "MSH|^~\\&|HIS|H|R|R|20240301120000||ADT^A28|CN-2|P|2.5
EVN|A28|20240301120000
PID|1||||李^四||19491231|2|||||||||||11010519491231002X";
    let mapped = accept(text);
    assert_eq!(
        entries(&mapped.bundle)[0]["request"]["url"],
        "Patient?identifier=urn:oid:2.16.156.10011.1.3|11010519491231002X"
    );
    // No offset anywhere: MSH-7 has none, so the region's.
    let bad = refused(
        "MSH|^~\\&|HIS|H|R|R|20240301120000||ADT^A28|CN-3|P|2.5
PID|1||110105194912310021^^^^NNCHN||李^四",
    );
    assert_eq!(bad.error.code, 102);
    assert_eq!(bad.error.location, Some(("PID".into(), 1, 3)));
    let none = refused(
        "MSH|^~\\&|HIS|H|R|R|20240301120000||ADT^A28|CN-4|P|2.5
PID|1||||李^四",
    );
    assert_eq!(none.error.code, 101);
    assert_eq!(none.error.location, Some(("PID".into(), 1, 3)));
}

#[test]
fn gb18030_messages_read_and_map() {
    let text = "MSH|^~\\&|HIS|H|R|R|20240301120000+0800||ADT^A31|GB-1|P|2.5|||||CHN||GB 18030-2000\rPID|1||77^^^^MR||欧阳^娜娜||1990|F\r";
    let bytes = gb18030(text);
    let message = hl7v2::parse(&bytes).expect("GB 18030 reads");
    let mapped = map(&message, &profile()).expect("mapped");
    assert_valid(&mapped.bundle, "gb18030");
    let patient = only(&mapped.bundle, "Patient");
    assert_eq!(patient["name"][0]["text"], "欧阳娜娜");
    assert_eq!(patient["birthDate"], "1990");
}

/// The text as GB 18030 bytes, written by hand for the few characters the test uses.
fn gb18030(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for c in text.chars() {
        match c {
            '欧' => bytes.extend_from_slice(&[0xC5, 0xB7]),
            '阳' => bytes.extend_from_slice(&[0xD1, 0xF4]),
            '娜' => bytes.extend_from_slice(&[0xC4, 0xC8]),
            c if c.is_ascii() => bytes.push(c as u8),
            other => panic!("no GB 18030 bytes written for {other}"),
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// Registration events.

const ADMIT: &str = "MSH|^~\\&|HIS|H|R|R|20240301080000+0800||ADT^A01^ADT_A01|ADM-1|P|2.5
EVN|A01|20240301080000
PID|1||555^^^^MR||Zhao^Lei||19700101|M
PV1|1|I|W3^301^2^COUNTY||||9001^Sun^Hua|||MED||||7|||9002^Zhou^Qi||VN-31|||||||||||||||||||||||||202403010745";

#[test]
fn an_update_after_an_admission_finds_the_same_patient_and_visit() {
    let admit = accept(ADMIT);
    let update = accept(
        &ADMIT
            .replace("ADT^A01^ADT_A01|ADM-1", "ADT^A08^ADT_A01|ADM-2")
            .replace("EVN|A01", "EVN|A08")
            .replace("Zhao^Lei", "Zhao^Lei^Jun"),
    );
    let urls = |m: &Mapped| -> Vec<String> {
        entries(&m.bundle)
            .iter()
            .map(|e| {
                assert_eq!(e["request"]["method"], "PUT");
                e["request"]["url"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    assert_eq!(urls(&admit), urls(&update));
    assert_eq!(
        urls(&admit),
        vec![
            format!("Patient?identifier={}|555", mrn_system()),
            format!("Encounter?identifier=https://meridian.example/sid/visit/{NAMESPACE}|VN-31"),
        ]
    );
    let encounter = only(&admit.bundle, "Encounter");
    assert_eq!(encounter["status"], "in-progress");
    assert_eq!(encounter["class"]["code"], "IMP");
    assert_eq!(
        encounter["location"][0]["location"]["display"],
        "COUNTY W3 301 2"
    );
    assert_eq!(
        encounter["participant"][0]["type"][0]["coding"][0]["code"],
        "ATND"
    );
    assert_eq!(
        encounter["participant"][0]["individual"]["identifier"]["value"],
        "9001"
    );
    assert_eq!(
        encounter["participant"][1]["type"][0]["coding"][0]["code"],
        "ADM"
    );
    assert_eq!(
        encounter["serviceProvider"]["reference"],
        "Organization/county-hosp-520621"
    );
    assert_eq!(
        only(&update.bundle, "Patient")["name"][0]["given"][1],
        "Jun"
    );
}

#[test]
fn discharge_cancel_and_visits_without_a_number() {
    let discharge = accept(
        &ADMIT
            .replace("ADT^A01^ADT_A01", "ADT^A03^ADT_A03")
            .replace("EVN|A01|20240301080000", "EVN|A03|20240305100000"),
    );
    let encounter = only(&discharge.bundle, "Encounter");
    assert_eq!(encounter["status"], "finished");
    assert_eq!(encounter["period"]["end"], "2024-03-05T10:00:00+08:00");
    let cancel = accept(&ADMIT.replace("ADT^A01^ADT_A01", "ADT^A11^ADT_A09"));
    assert_eq!(only(&cancel.bundle, "Encounter")["status"], "cancelled");
    // No visit number: patient and admit time name the visit.
    let derived = accept(&ADMIT.replace("VN-31", ""));
    assert_eq!(
        entries(&derived.bundle)[1]["request"]["url"],
        format!(
            "Encounter?identifier=https://meridian.example/sid/visit-derived/{NAMESPACE}|555%40202403010745"
        )
    );
    // Neither: an admission without a visit is an error at PV1-19.
    let refusal = refused(&ADMIT.replace("VN-31", "").replace("|202403010745", "|"));
    assert_eq!(refusal.error.code, 101);
    assert_eq!(refusal.error.location, Some(("PV1".into(), 1, 19)));
}

#[test]
fn a_merge_retires_the_prior_record_and_links_both() {
    let mapped = accept(
        "MSH|^~\\&|HIS|H|R|R|20240301080000+0800||ADT^A40^ADT_A39|MRG-1|P|2.5
EVN|A40|20240301080000
PID|1||555^^^^MR||Zhao^Lei||19700101|M
MRG|444^^^^MR|||||||Zhao^Lei",
    );
    let bundle = &mapped.bundle;
    let patients = resources(bundle, "Patient");
    assert_eq!(patients.len(), 2);
    let (survivor_url, prior_url) = (
        entries(bundle)[0]["fullUrl"].clone(),
        entries(bundle)[1]["fullUrl"].clone(),
    );
    assert_eq!(
        entries(bundle)[1]["request"]["url"],
        format!("Patient?identifier={}|444", mrn_system())
    );
    let (survivor, prior) = (patients[0], patients[1]);
    assert_eq!(survivor["link"][0]["type"], "replaces");
    assert_eq!(survivor["link"][0]["other"]["reference"], prior_url);
    assert_eq!(prior["link"][0]["type"], "replaced-by");
    assert_eq!(prior["link"][0]["other"]["reference"], survivor_url);
    assert_eq!(prior["active"], false);
    assert_eq!(prior["identifier"][0]["value"], "444");
    let refusal = refused(
        "MSH|^~\\&|HIS|H|R|R|20240301080000||ADT^A40|MRG-2|P|2.5
PID|1||555^^^^MR||Zhao^Lei
MRG|",
    );
    assert_eq!(refusal.error.location, Some(("MRG".into(), 1, 1)));
}

#[test]
fn unsupported_types_and_events_are_rejected() {
    let bar = refused("MSH|^~\\&|HIS|H|R|R|20240301080000||BAR^P01|B-1|P|2.5\rPID|1||555^^^^MR");
    assert_eq!(bar.code, AckCode::ApplicationReject);
    assert_eq!(bar.error.code, 200);
    assert!(bar.error.text.contains("BAR"), "{bar:?}");
    assert!(bar.error.text.contains("ORU^R01"), "{bar:?}");
    let a29 = refused("MSH|^~\\&|HIS|H|R|R|20240301080000||ADT^A29|D-1|P|2.5\rPID|1||555^^^^MR");
    assert_eq!(a29.code, AckCode::ApplicationReject);
    assert_eq!(a29.error.code, 201);
}

// ---------------------------------------------------------------------------------------
// Orders, immunizations, appointments, documents.

#[test]
fn orders_are_service_requests_on_their_placer_number() {
    let text = "MSH|^~\\&|HIS|H|R|R|20240301080000+0800||ORM^O01|O-1|P|2.5
PID|1||555^^^^MR||Zhao^Lei
ORC|NW|PL-1^HIS|||||^^^^^S||20240301075900|||9001^Sun^Hua
OBR|1|PL-1||71020^Chest X-ray^C4";
    let mapped = accept(text);
    let request = only(&mapped.bundle, "ServiceRequest");
    assert_eq!(request["status"], "active");
    assert_eq!(request["intent"], "order");
    assert_eq!(request["priority"], "stat");
    assert_eq!(request["authoredOn"], "2024-03-01T07:59:00+08:00");
    assert_eq!(request["requester"]["display"], "Hua Sun");
    assert_eq!(
        entries(&mapped.bundle)[1]["request"]["url"],
        format!(
            "ServiceRequest?identifier=https://meridian.example/sid/placer-order/{NAMESPACE}|PL-1"
        )
    );
    let cancel = accept(&text.replace("ORC|NW", "ORC|CA"));
    assert_eq!(only(&cancel.bundle, "ServiceRequest")["status"], "revoked");
}

#[test]
fn immunizations_map_status_dose_and_lot() {
    let text = "MSH|^~\\&|EPI|H|R|R|20240301080000+0800||VXU^V04^VXU_V04|V-1|P|2.5.1
PID|1||555^^^^MR||Zhao^Lei||20230101|M
ORC|RE||IZ-77
RXA|0|1|20240301093000||08^Hep B, adolescent or pediatric^CVX|0.5|mL^mL^UCUM||00^New record^NIP001||||||LOT-9|20250101|MSD^Merck^MVX|||PA
RXR|IM^Intramuscular^HL70162|LA^Left arm^HL70163";
    let mapped = accept(text);
    let immunization = only(&mapped.bundle, "Immunization");
    assert_eq!(immunization["status"], "completed");
    assert_eq!(immunization["isSubpotent"], true);
    assert_eq!(
        immunization["vaccineCode"]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/cvx"
    );
    assert_eq!(immunization["doseQuantity"]["code"], "mL");
    assert_eq!(immunization["lotNumber"], "LOT-9");
    assert_eq!(immunization["expirationDate"], "2025-01-01");
    assert_eq!(immunization["manufacturer"]["display"], "Merck");
    assert_eq!(immunization["primarySource"], true);
    assert_eq!(immunization["route"]["coding"][0]["code"], "IM");
    let text_re = text.replace("|||PA", "|||RE");
    let not_done = accept(&text_re);
    let immunization = only(&not_done.bundle, "Immunization");
    assert_eq!(immunization["status"], "not-done");
    assert!(immunization["statusReason"].is_object());
}

#[test]
fn appointments_satisfy_the_start_and_end_invariants() {
    let text = "MSH|^~\\&|SCH|H|R|R|20240301080000+0800||SIU^S12^SIU_S12|S-1|P|2.5
SCH|P-1|F-1|||||ROUTINE^Routine^HL70276|||||||||||||||||Booked
PID|1||555^^^^MR||Zhao^Lei
RGS|1
AIS|1||CONSULT^Consultation^L|202403051000|||30|min
AIP|1||9001^Sun^Hua|ATND||||||||Booked
AIL|1||CLINIC^12|||||||||Booked";
    let mapped = accept(text);
    let appointment = only(&mapped.bundle, "Appointment");
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["start"], "2024-03-05T10:00:00+08:00");
    assert_eq!(appointment["end"], "2024-03-05T10:30:00+08:00");
    assert_eq!(appointment["participant"].as_array().map(Vec::len), Some(3));
    assert_eq!(appointment["participant"][1]["status"], "accepted");
    let cancelled = accept(
        &text
            .replace("SIU^S12", "SIU^S15")
            .replace("|202403051000|||30|min", "||||"),
    );
    let appointment = only(&cancelled.bundle, "Appointment");
    assert_eq!(appointment["status"], "cancelled");
    assert!(appointment.get("start").is_none() && appointment.get("end").is_none());
    let refusal = refused(&text.replace("|202403051000|||30|min", "||||"));
    assert_eq!(refusal.error.code, 101);
    assert_eq!(refusal.error.location, Some(("SCH".into(), 1, 11)));
}

#[test]
fn documents_carry_their_text_and_cancellations_withdraw_them() {
    let text = "MSH|^~\\&|EMR|H|R|R|20240301080000+0800||MDM^T02^MDM_T02|M-1|P|2.5
EVN|T02|20240301080000
PID|1||555^^^^MR||Zhao^Lei
PV1|1|I|W3^301^2||||||||||||||||VN-31
TXA|1|DS|TX|202403010755|||||9001^Sun^Hua|||DOC-5|||||AU
OBX|1|TX|DS^Discharge summary^L||出院小结：病情稳定||||||F
OBX|2|TX|DS^Discharge summary^L||Follow up in 2 weeks||||||F";
    let mapped = accept(text);
    let document = only(&mapped.bundle, "DocumentReference");
    assert_eq!(document["status"], "current");
    assert_eq!(document["docStatus"], "final");
    assert_eq!(document["type"]["coding"][0]["code"], "DS");
    assert_eq!(document["date"], "2024-03-01T07:55:00+08:00");
    let attachment = &document["content"][0]["attachment"];
    assert_eq!(attachment["contentType"], "text/plain; charset=utf-8");
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str().unwrap_or_default())
        .expect("base64");
    assert_eq!(
        String::from_utf8(data).expect("utf-8"),
        "出院小结：病情稳定\nFollow up in 2 weeks"
    );
    let cancelled = accept(&text.replace("MDM^T02^MDM_T02", "MDM^T11^MDM_T01"));
    assert_eq!(
        only(&cancelled.bundle, "DocumentReference")["status"],
        "entered-in-error"
    );
    let notice = accept(
        &text
            .replace("MDM^T02^MDM_T02", "MDM^T01^MDM_T01")
            .lines()
            .filter(|l| !l.starts_with("OBX"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let attachment = &only(&notice.bundle, "DocumentReference")["content"][0]["attachment"];
    assert!(attachment.get("data").is_none());
    assert_eq!(attachment["title"], "Discharge summary");
}

/// Fuzz finding F6 (`fuzz/RUNS.md`): a code whose control character sat between two spaces
/// became a code with repeated whitespace, which no FHIR `code` may have.
#[test]
fn fuzz_finding_f6_maps_to_valid_codes() {
    let bytes = include_bytes!("v2_fuzz_F6.hl7");
    let batch = hl7v2::parse_batch(bytes).expect("the finding reads");
    for message in &batch.messages {
        if let Ok(mapped) = map(message, &profile()) {
            assert_valid(&mapped.bundle, "v2_fuzz_F6.hl7");
        }
    }
}
