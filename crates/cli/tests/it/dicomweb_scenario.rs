//! The DICOMweb archive end to end, with the standard Python clients (`dicomweb-client` and
//! `pydicom`) against the real `meridian serve` on each store, as a county radiographer with
//! a token of their own: `dicomweb_check.py` stores the vendored instances, finds each by
//! QIDO as pydicom's own reading of the file says it should, retrieves each with identical
//! attributes, reads the metadata, checks the ImagingStudy and Patient of each study in the
//! FHIR record and the audit trail, sends malformed requests, and checks that a clinician of
//! another institution finds nothing.

use std::process::Command;

use crate::support::{self, Backend};

fn dicomweb_python() -> std::path::PathBuf {
    support::python_with(
        "dicomweb",
        &[
            "dicomweb-client==0.61.2",
            "pydicom==3.0.2",
            "pillow==11.3.0",
        ],
        "import dicomweb_client, pydicom, PIL",
    )
}

#[test]
fn standard_dicomweb_clients_store_find_and_retrieve_through_the_record() {
    let python = dicomweb_python();
    let corpus = format!("{}/../imaging/tests/dicom", env!("CARGO_MANIFEST_DIR"));
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let serving = support::serve_on(backend, &[]);
        let radiographer = support::clinician(&serving, "radiographer", "county-hospital");
        let stranger = support::clinician(&serving, "stranger", "elsewhere");
        let output = Command::new(&python)
            .arg(format!(
                "{}/tests/it/dicomweb_check.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args(["--base", &format!("http://{}", serving.address)])
            .args([
                "--token",
                &radiographer,
                "--stranger",
                &stranger,
                "--admin",
                &serving.token,
            ])
            .args(["--corpus", &corpus])
            .args(["--unrenderable", &format!("{corpus}/unrenderable.txt")])
            .env("NO_PROXY", "*")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .output()
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let warnings = serving.errors_logged();
        assert!(
            output.status.success(),
            "{backend:?}: dicomweb_check.py failed:\n{stdout}\n{}\nserver errors: {warnings:#?}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(warnings.is_empty(), "{backend:?}: {warnings:#?}");
        // The vendored 12-lead ECG was drawn and measured, not passed over, and the pixel data
        // of each of the 15 stored images was reached by its BulkDataURI; frames came
        // transcoded to explicit VR little endian (the 12 images of 8 bits or more) and as JPEG.
        assert!(
            stdout.contains(
                "ecgs_measured=1 kiosk_ecgs=1 bulk_followed=15 frames_explicit=12 frames_jpeg=15 "
            ),
            "{backend:?}: {stdout}"
        );
        println!("{backend:?}: {stdout}");
    }
}
