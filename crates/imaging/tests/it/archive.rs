//! The archive on both stores: what STOW keeps, the ImagingStudy kept in step, the Patient,
//! replacement and idempotence, QIDO through the read path and WADO's objects.

use std::sync::Arc;

use caller::{Actor, Caller};
use imaging::archive::{Archive, Outcome, PATIENT_ID_SYSTEM};
use imaging::qido::{self, Level, Query};
use imaging::study::{self, StoredObject};
use imaging::wado;
use repository::Repository;
use serde_json::Value;
use test_support::TestStore;

use crate::corpus;

const BASE: &str = "http://archive.test/dicomweb";

fn each_store(test: impl Fn(&TestStore)) {
    test(&test_support::sqlite());
    test(&test_support::postgres());
}

fn setup(store: &TestStore) -> (Arc<Repository>, Archive, tempfile::TempDir) {
    let repository = Repository::new(Arc::clone(&store.store));
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    let blobs = tempfile::tempdir().unwrap();
    let archive = Archive::new(Arc::new(blob::FileBlobStore::new(blobs.path())));
    (Arc::new(repository), archive, blobs)
}

fn radiographer() -> Caller {
    let mut caller = Caller::operator("imaging-test");
    caller.actor = Actor::User("Practitioner/rad".into());
    caller.organization = Some(Organization::COUNTY.into());
    caller.scopes = vec!["user/*.cruds".into()];
    caller
}

struct Organization;
impl Organization {
    const COUNTY: &str = "Organization/county";
}

fn store(repository: &Repository, archive: &Archive, names: &[&str]) -> Vec<Outcome> {
    let files: Vec<Vec<u8>> = names.iter().map(|n| corpus(n)).collect();
    let parts: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    archive
        .store(repository, &radiographer(), &parts, None, Some(BASE))
        .unwrap()
}

fn imaging_study(repository: &Repository, study_uid: &str) -> (i64, Value) {
    let record = repository
        .read(&radiographer(), "ImagingStudy", &study::study_id(study_uid))
        .unwrap();
    (record.version, repository::parse_stored(&record).unwrap())
}

const MR_STUDY: &str = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457";
const MR_INSTANCE: &str = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457";

#[test]
fn a_stow_request_keeps_each_instance_and_describes_its_study() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        let outcomes = store(
            &repository,
            &archive,
            &[
                "CT_small.dcm",
                "MR_small.dcm",
                "MR_truncated.dcm",
                "chrX2.dcm",
            ],
        );
        assert_eq!(outcomes.len(), 4);
        assert!(
            matches!(&outcomes[2], Outcome::Failed { refusal, .. } if refusal.code == imaging::part10::CANNOT_UNDERSTAND)
        );
        let Outcome::Stored {
            study: mr_study,
            patient,
            warning,
            ..
        } = &outcomes[1]
        else {
            panic!("{outcomes:?}")
        };
        assert_eq!(mr_study, MR_STUDY);
        assert!(warning.is_none());

        let (_, mr) = imaging_study(&repository, MR_STUDY);
        assert_eq!(mr["subject"]["reference"], patient.as_str());
        assert_eq!(mr["identifier"][0]["value"], format!("urn:oid:{MR_STUDY}"));
        assert_eq!(mr["modality"][0]["code"], "MR");
        assert_eq!(mr["numberOfInstances"], 1);
        assert_eq!(mr["started"], "2004-08-26T18:50:59-04:00");
        assert!(
            mr["endpoint"][0]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Endpoint/")
        );
        let instance = &mr["series"][0]["instance"][0];
        assert_eq!(instance["uid"], MR_INSTANCE);
        assert_eq!(
            StoredObject::of(instance).unwrap().transfer_syntax,
            "1.2.840.10008.1.2.1"
        );

        // The Patient carries the DICOM Patient ID in the storing institution's namespace.
        let patient = repository
            .read(
                &radiographer(),
                "Patient",
                patient.trim_start_matches("Patient/"),
            )
            .unwrap();
        let patient = repository::parse_stored(&patient).unwrap();
        assert_eq!(
            patient["identifier"][0]["system"],
            format!("{PATIENT_ID_SYSTEM}county")
        );
        assert_eq!(patient["identifier"][0]["value"], "4MR1");
        assert_eq!(patient["gender"], "female");
        // A Chinese name's groups become two names of the Patient.
        let chinese = repository
            .find(
                &radiographer(),
                "Patient",
                &[("identifier".into(), "X2EXAMPLE".into())],
                2,
            )
            .unwrap();
        let chinese = repository::parse_stored(&chinese[0]).unwrap();
        assert_eq!(chinese["name"][0]["family"], "Wang");
        assert_eq!(chinese["name"][1]["text"], "王小东");
    });
}

#[test]
fn the_same_instance_again_changes_nothing_and_another_under_its_uid_replaces_it() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        store(&repository, &archive, &["MR_small.dcm"]);
        let (version, _) = imaging_study(&repository, MR_STUDY);
        let again = store(&repository, &archive, &["MR_small.dcm"]);
        assert!(
            matches!(&again[0], Outcome::Stored { warning: None, .. }),
            "{again:?}"
        );
        assert_eq!(imaging_study(&repository, MR_STUDY).0, version);

        // The same SOP Instance UID in another transfer syntax: replaced, with a warning.
        let replaced = store(&repository, &archive, &["MR_small_RLE.dcm"]);
        assert!(
            matches!(
                &replaced[0],
                Outcome::Stored {
                    warning: Some(_),
                    ..
                }
            ),
            "{replaced:?}"
        );
        let (newer, mr) = imaging_study(&repository, MR_STUDY);
        assert_eq!(newer, version + 1);
        assert_eq!(mr["numberOfInstances"], 1);
        let object = StoredObject::of(&mr["series"][0]["instance"][0]).unwrap();
        assert_eq!(object.transfer_syntax, "1.2.840.10008.1.2.5");
        assert_eq!(archive.file(&object).unwrap(), corpus("MR_small_RLE.dcm"));
    });
}

#[test]
fn an_instance_addressed_to_another_study_is_refused() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        let outcomes = archive
            .store(
                &repository,
                &radiographer(),
                &[corpus("CT_small.dcm").as_slice()],
                Some("1.2.3"),
                Some(BASE),
            )
            .unwrap();
        assert!(
            matches!(&outcomes[0], Outcome::Failed { refusal, sop_instance: Some(_), .. } if refusal.code == imaging::part10::DOES_NOT_MATCH_SOP_CLASS),
            "{outcomes:?}"
        );
        let found = repository
            .find(&radiographer(), "ImagingStudy", &[], 10)
            .unwrap();
        assert!(
            found.is_empty(),
            "nothing is written for a refused instance"
        );
    });
}

fn query(level: Level, pairs: &[(&str, &str)]) -> Query {
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Query::parse(level, None, None, &params).unwrap()
}

fn uids(answer: &qido::Answer, tag: &str) -> Vec<String> {
    let mut uids: Vec<String> = answer
        .results
        .iter()
        .filter_map(|r| imaging::json::text(r, tag))
        .collect();
    uids.sort();
    uids
}

#[test]
fn qido_finds_by_the_matching_rules_through_the_read_path() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        let stored = store(
            &repository,
            &archive,
            &[
                "CT_small.dcm",
                "MR_small.dcm",
                "chrX1.dcm",
                "waveform_ecg.dcm",
                "SC_rgb_jpeg_gdcm.dcm",
            ],
        );
        assert!(
            stored.iter().all(|o| matches!(o, Outcome::Stored { .. })),
            "{stored:?}"
        );
        let caller = radiographer();
        let search = |q: Query| qido::search(&repository, &archive, &caller, &q).unwrap();

        let all = search(query(Level::Study, &[]));
        assert_eq!(all.results.len(), 5);
        assert_eq!(all.patients.len(), 5);

        let mr = search(query(Level::Study, &[("PatientID", "4MR1")]));
        assert_eq!(uids(&mr, "0020000D"), vec![MR_STUDY]);
        assert_eq!(mr.results[0]["00201208"]["Value"][0], 1);
        assert_eq!(mr.results[0]["00080061"]["Value"][0], "MR");

        let by_modality = search(query(Level::Study, &[("ModalitiesInStudy", "ECG")]));
        assert_eq!(by_modality.results.len(), 1);
        let by_date = search(query(Level::Study, &[("StudyDate", "20040101-20041231")]));
        assert_eq!(by_date.results.len(), 2, "CT and MR were taken in 2004");
        // One day (the store narrows a day wider each side, across a month's turn here).
        assert_eq!(
            search(query(Level::Study, &[("StudyDate", "20040119")]))
                .results
                .len(),
            1
        );
        assert_eq!(
            search(query(Level::Study, &[("StudyDate", "20040201-")]))
                .results
                .len(),
            3
        );
        assert_eq!(
            search(query(Level::Study, &[("StudyDate", "-20040131")]))
                .results
                .len(),
            1
        );
        let chinese = search(query(Level::Study, &[("PatientName", "王*")]));
        assert_eq!(chinese.results.len(), 1);
        let fuzzy = search(query(
            Level::Study,
            &[("PatientName", "xiaodong"), ("fuzzymatching", "true")],
        ));
        assert_eq!(fuzzy.results.len(), 1);
        let wildcard = search(query(Level::Study, &[("PatientName", "compressed*")]));
        assert_eq!(wildcard.results.len(), 2);

        let paged = search(query(Level::Study, &[("limit", "2"), ("offset", "4")]));
        assert_eq!(paged.results.len(), 1);

        let instances = search(query(Level::Instance, &[("SOPInstanceUID", MR_INSTANCE)]));
        assert_eq!(uids(&instances, "00080018"), vec![MR_INSTANCE]);
        assert_eq!(
            instances.results[0]["00080060"]["Value"][0], "MR",
            "series attributes come along"
        );
        let series = search(query(Level::Series, &[("Modality", "CT")]));
        assert_eq!(series.results.len(), 1);
        assert_eq!(series.results[0]["00201209"]["Value"][0], 1);

        // includefield reaches beyond the level's attributes into the stored instance's.
        let included = search(query(
            Level::Study,
            &[("PatientID", "4MR1"), ("includefield", "00280010")],
        ));
        assert!(
            included.results[0].contains_key("00280010"),
            "{:?}",
            included.results[0].keys()
        );

        // A caller who may see nothing finds nothing.
        let mut stranger = Caller::operator("stranger");
        stranger.actor = Actor::User("Practitioner/elsewhere".into());
        stranger.organization = Some("Organization/elsewhere".into());
        stranger.scopes = vec!["user/*.cruds".into()];
        let hidden =
            qido::search(&repository, &archive, &stranger, &query(Level::Study, &[])).unwrap();
        assert!(
            hidden.results.is_empty(),
            "{} studies seen",
            hidden.results.len()
        );
        assert!(matches!(
            wado::locate(&repository, &stranger, MR_STUDY, None, None),
            Err(imaging::ImagingError::NotFound(_))
        ));
    });
}

#[test]
fn wado_locates_the_stored_files_and_their_attributes() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        store(
            &repository,
            &archive,
            &["CT_small.dcm", "ExplVR_BigEndNoMeta.dcm"],
        );
        let ct = imaging::part10::read(&corpus("CT_small.dcm")).unwrap();
        let (located, patient) =
            wado::locate(&repository, &radiographer(), &ct.study, None, None).unwrap();
        assert!(patient.is_some());
        assert_eq!(located.len(), 1);
        assert_eq!(
            archive.file(&located[0].object).unwrap(),
            corpus("CT_small.dcm")
        );
        let attributes = archive.attributes(&located[0].object).unwrap();
        assert_eq!(attributes, ct.dataset);
        // Kept without waiting for the disk, the attributes are made again from the file when
        // a crash lost or damaged them, and kept again.
        let sha = &located[0].object.sha256;
        let kept = blob::BlobKey::new(format!("dicom/{}/{sha}.json", &sha[..2])).unwrap();
        for damage in [Some(&b"{\"0008"[..]), None] {
            match damage {
                Some(bytes) => archive.blobs().put(&kept, bytes).map(|_| ()).unwrap(),
                None => archive.blobs().delete(&kept).unwrap(),
            }
            assert_eq!(archive.attributes(&located[0].object).unwrap(), ct.dataset);
            let again: serde_json::Map<String, Value> =
                serde_json::from_slice(&archive.blobs().get(&kept).unwrap().unwrap()).unwrap();
            assert_eq!(again, ct.dataset);
        }
        let absolute = wado::with_bulk_base(attributes, "http://x/instances/1/");
        assert_eq!(
            absolute["7FE00010"]["BulkDataURI"],
            "http://x/instances/1/bulkdata/7FE00010"
        );

        // A bare data set comes back as a PS3.10 file of the same data set.
        let bare = imaging::part10::read(&corpus("ExplVR_BigEndNoMeta.dcm")).unwrap();
        let (located, _) = wado::locate(
            &repository,
            &radiographer(),
            &bare.study,
            None,
            Some(&bare.sop_instance),
        )
        .unwrap();
        let file = archive.file(&located[0].object).unwrap();
        assert_eq!(&file[128..132], b"DICM");
        assert_eq!(imaging::part10::read(&file).unwrap().dataset, bare.dataset);

        assert!(matches!(
            wado::locate(&repository, &radiographer(), &ct.study, Some("9.9.9"), None),
            Err(imaging::ImagingError::NotFound(_))
        ));
    });
}

#[test]
fn deleting_a_series_or_a_study_removes_it_and_its_objects() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        store(&repository, &archive, &["MR_small.dcm"]);
        let (located, _) =
            wado::locate(&repository, &radiographer(), MR_STUDY, None, None).unwrap();
        let object = located[0].object.clone();
        archive
            .delete(
                &repository,
                &radiographer(),
                MR_STUDY,
                Some(&located[0].series),
            )
            .unwrap();
        assert!(matches!(
            wado::locate(&repository, &radiographer(), MR_STUDY, None, None),
            Err(imaging::ImagingError::NotFound(_))
        ));
        assert!(archive.file(&object).is_err(), "the object is removed");
        assert!(
            repository
                .find(&radiographer(), "ImagingStudy", &[], 10)
                .unwrap()
                .is_empty()
        );
        // Stored again, it is back.
        store(&repository, &archive, &["MR_small.dcm"]);
        assert_eq!(
            wado::locate(&repository, &radiographer(), MR_STUDY, None, None)
                .unwrap()
                .0
                .len(),
            1
        );
    });
}

#[test]
fn a_stored_ecg_is_measured_into_an_observation_of_its_patient() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        let outcomes = store(&repository, &archive, &["waveform_ecg.dcm"]);
        let Outcome::Stored {
            sop_instance,
            study: study_uid,
            patient,
            ..
        } = &outcomes[0]
        else {
            panic!("{outcomes:?}")
        };
        let id = imaging::ecg::record::measurement_id(sop_instance);
        let read = |id: &str| {
            let record = repository.read(&radiographer(), "Observation", id).unwrap();
            (record.version, repository::parse_stored(&record).unwrap())
        };
        let (version, observation) = read(&id);
        assert_eq!(observation["subject"]["reference"], patient.as_str());
        assert_eq!(
            observation["derivedFrom"][0]["reference"],
            format!("ImagingStudy/{}", study::study_id(study_uid))
        );
        assert_eq!(
            observation["identifier"][0]["value"],
            format!("urn:oid:{sop_instance}")
        );
        let component = |code: &str| {
            observation["component"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["code"]["coding"][0]["code"] == code)
                .and_then(|c| c["valueQuantity"]["value"].as_f64())
                .unwrap_or_else(|| panic!("no component {code}"))
        };
        // The measurements the domain takes of the same file, rounded to 0.1.
        let m = imaging::ecg::from_dicom(&corpus("waveform_ecg.dcm"))
            .unwrap()
            .measure()
            .unwrap();
        assert_eq!(component("8633-0"), (m.qrs_ms * 10.0).round() / 10.0);
        assert_eq!(component("8634-8"), (m.qt_ms * 10.0).round() / 10.0);
        assert_eq!(
            component("76635-2"),
            (m.qtc_bazett_ms * 10.0).round() / 10.0
        );
        assert_eq!(
            component("76634-5"),
            (m.qtc_fridericia_ms * 10.0).round() / 10.0
        );
        assert_eq!(
            component("8867-4"),
            (m.heart_rate_bpm * 10.0).round() / 10.0
        );
        assert!(component("8625-6") > 100.0);
        // Storing the same file again changes nothing.
        store(&repository, &archive, &["waveform_ecg.dcm"]);
        assert_eq!(read(&id).0, version);
    });
}

/// `name` re-written under another Study Instance UID (the same SOP Instance UID).
fn moved_to(name: &str, study_uid: &str) -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let mut object = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(&corpus(name)[128..]))
        .unwrap();
    object.put(DataElement::new(
        dicom_dictionary_std::tags::STUDY_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(study_uid),
    ));
    let mut out = Vec::new();
    object.write_all(&mut out).unwrap();
    out
}

#[test]
fn an_instance_stored_again_in_another_study_leaves_the_one_that_held_it() {
    each_store(|test_store| {
        let (repository, archive, _blobs) = setup(test_store);
        store(&repository, &archive, &["MR_small.dcm", "CT_small.dcm"]);
        let ct_study = {
            let instance = imaging::part10::read(&corpus("CT_small.dcm")).unwrap();
            instance.study
        };
        // Both instances move, in one request, to a new study.
        let new_study = "1.2.826.0.1.3680043.8.498.1";
        let files = [
            moved_to("MR_small.dcm", new_study),
            moved_to("CT_small.dcm", new_study),
        ];
        let parts: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let outcomes = archive
            .store(&repository, &radiographer(), &parts, None, Some(BASE))
            .unwrap();
        for outcome in &outcomes {
            assert!(
                matches!(
                    outcome,
                    Outcome::Stored {
                        warning: Some(_),
                        ..
                    }
                ),
                "{outcome:?}"
            );
        }
        let (_, moved) = imaging_study(&repository, new_study);
        assert_eq!(moved["numberOfInstances"], 2);
        // The studies they left held nothing else: they are no longer in the archive.
        for old in [MR_STUDY, ct_study.as_str()] {
            let read = repository.read(&radiographer(), "ImagingStudy", &study::study_id(old));
            assert!(
                matches!(read, Err(repository::RepositoryError::Gone { .. })),
                "{old}: {read:?}"
            );
        }
    });
}
