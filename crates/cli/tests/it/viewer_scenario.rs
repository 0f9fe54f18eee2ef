//! The imaging viewer end to end in a real browser: Debian's Chromium, driven by the npm
//! package `playwright-core` (`viewer_check.mjs`), against the real `meridian serve` on
//! PostgreSQL with sign-in on. A radiologist of the county hospital stores a cine, a CT and an
//! ECG with STOW-RS; the browser signs in through Meridian's own login page as the viewer's
//! first-party client and checks thumbnails, frames, window and level, zoom, a distance in
//! millimetres, the Chinese strings, the ECG, an expired token and the study list, and that a
//! page of another origin may read `/dicomweb` with a bearer token (what OHIF needs); a
//! clinician of another institution is told the study is not there for them. Screenshots of the
//! cine, CT and ECG views are left in `target/tmp/viewer-screenshots`.
//!
//! Set-up a fresh machine needs is done here: Chromium is installed with apt when
//! `/usr/bin/chromium` is missing, and `playwright-core` with npm under the target directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::support::{self, Backend, Serving};

/// The browser driver, pinned: the check runs against the version it was written for.
const PLAYWRIGHT_CORE: &str = "1.65.2";
const CHROMIUM: &str = "/usr/bin/chromium";
use support::CLINICIAN_PASSWORD as PASSWORD;

/// Runs `apt-get ARGS` non-interactively: whether it succeeded, and its error output.
fn apt(args: &[&str]) -> (bool, String) {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map(|output| {
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
        .unwrap_or_else(|e| (false, e.to_string()))
}

/// Installs Debian packages with apt (the tests run as root), reading the package lists first
/// when a fresh machine has not yet.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install: Vec<&str> = ["install", "-y"].iter().chain(packages).copied().collect();
    if apt(&install).0 {
        return Ok(());
    }
    apt(&["update"]);
    match apt(&install) {
        (true, _) => Ok(()),
        (false, error) => Err(error),
    }
}

/// Debian's Chromium, installed when it is missing, with a Chinese font for the screenshots
/// (the checks read the page's text, not its pixels, so a font that cannot be installed is
/// only reported).
fn chromium() -> &'static Path {
    let path = Path::new(CHROMIUM);
    if !path.exists() {
        let installed = apt_install(&["chromium"]);
        assert!(
            installed.is_ok() && path.exists(),
            "the viewer test needs Chromium at {CHROMIUM}, and `apt-get install -y chromium` \
             failed (install it as root):\n{}",
            installed.err().unwrap_or_default()
        );
    }
    let chinese = Command::new("fc-list")
        .args([":lang=zh", "family"])
        .output()
        .is_ok_and(|output| !output.stdout.is_empty());
    if !chinese && let Err(error) = apt_install(&["fonts-wqy-microhei"]) {
        println!("no Chinese font (the screenshots show boxes for Chinese text): {error}");
    }
    path
}

/// `node_modules` with `playwright-core` from npm, made once under the target directory: in a
/// directory of its own, renamed into place when complete, and made again when it is not the
/// pinned version.
fn playwright() -> PathBuf {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let installed = root.join(format!("viewer-node-{PLAYWRIGHT_CORE}"));
    let ready = |dir: &Path| {
        std::fs::read_to_string(dir.join("node_modules/playwright-core/package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|package| package["version"] == PLAYWRIGHT_CORE)
    };
    if ready(&installed) {
        return installed;
    }
    let _ = std::fs::remove_dir_all(&installed);
    let staging = root.join(format!("viewer-node-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).unwrap();
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--prefix",
        ])
        .arg(&staging)
        .arg(format!("playwright-core@{PLAYWRIGHT_CORE}"))
        .output()
        .unwrap_or_else(|e| panic!("npm: {e} (Node.js and npm are needed)"));
    assert!(
        output.status.success(),
        "npm install playwright-core@{PLAYWRIGHT_CORE} failed (is the npm registry reachable?):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Another test run may have finished first: then its directory is used.
    if std::fs::rename(&staging, &installed).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        ready(&installed),
        "{} has no playwright-core {PLAYWRIGHT_CORE}",
        installed.display()
    );
    installed
}

/// Stores one file with STOW-RS as `token`; answers its Study Instance UID.
fn stow(serving: &Serving, token: &str, file: &Path) -> String {
    let instance = std::fs::read(file).unwrap();
    let boundary = "viewer-scenario-boundary";
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(&instance);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut stream = TcpStream::connect(serving.address).unwrap();
    stream.set_read_timeout(Some(support::NEVER)).unwrap();
    let head = format!(
        "POST /dicomweb/studies HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nAccept: application/dicom+json\r\n\
         Content-Type: multipart/related; type=\"application/dicom\"; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n",
        serving.address,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{}: {head}\n{body}",
        file.display()
    );
    let answer = support::json_of(body);
    let url = answer["00081199"]["Value"][0]["00081190"]["Value"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no RetrieveURL for {}: {answer}", file.display()));
    let (_, after) = url.split_once("/studies/").unwrap();
    after.split('/').next().unwrap().to_owned()
}

/// PixelSpacing (0028,0030) of an explicit VR little endian file, read from its bytes here so
/// that the check does not take it from the code it checks.
fn pixel_spacing(file: &Path) -> String {
    let bytes = std::fs::read(file).unwrap();
    let header = [0x28, 0x00, 0x30, 0x00, b'D', b'S'];
    let at = bytes
        .windows(header.len())
        .position(|window| window == header)
        .unwrap_or_else(|| panic!("{} has no PixelSpacing", file.display()));
    let length = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
    String::from_utf8(bytes[at + 8..at + 8 + length].to_vec())
        .unwrap()
        .trim()
        .to_owned()
}

/// The first instance of a study, by QIDO as `token`: (series, instance).
fn first_instance(serving: &Serving, token: &str, study: &str) -> (String, String) {
    let (status, _, body) = support::send_as(
        serving.address,
        Some(token),
        "GET",
        &format!("/dicomweb/studies/{study}/instances"),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let instance = &support::json_of(&body)[0];
    let uid = |tag: &str| instance[tag]["Value"][0].as_str().unwrap().to_owned();
    (uid("0020000E"), uid("00080018"))
}

#[test]
fn the_viewer_signs_in_and_shows_images_measurements_and_ecgs_in_a_browser() {
    let started = Instant::now();
    let chromium = chromium();
    let node_modules = playwright();
    let serving = support::serve_on(Backend::Postgres, &[]);
    let radiologist = support::clinician(&serving, "radiologist", "county-hospital");
    support::clinician(&serving, "stranger", "elsewhere");

    // The page and its assets carry no patient data: no token needed. The viewer's client is
    // registered by `serve` for the address it listens on.
    for asset in ["/viewer/", "/viewer/viewer.js", "/viewer/viewer.css"] {
        let (status, _, body) = support::send_as(serving.address, None, "GET", asset, &[], "");
        assert!(status == 200 && !body.is_empty(), "{asset}: {status}");
    }
    let (status, _, body) =
        support::send_as(serving.address, None, "GET", "/viewer/config.json", &[], "");
    assert_eq!(status, 200);
    let config = support::json_of(&body);
    let origin = format!("http://{}", serving.address);
    assert_eq!(config["client_id"], "meridian-viewer");
    assert_eq!(config["redirect_uri"], format!("{origin}/viewer/"));
    let (_, clients, _) = serving.meridian_status(&["client", "list"]);
    assert!(
        clients.contains(&format!("\"{origin}/viewer/\"")),
        "the viewer's client is registered for {origin}: {clients}"
    );

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../imaging/tests/dicom");
    let cine_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/viewer_scenario/examples_ybr_color.dcm");
    let cine = stow(&serving, &radiologist, &cine_file);
    let ct = stow(&serving, &radiologist, &corpus.join("CT_small.dcm"));
    let ecg = stow(&serving, &radiologist, &corpus.join("waveform_ecg.dcm"));

    // Whether the archive renders the ECG as SVG yet (the lead is adding it): the browser then
    // checks the tracing; until then, that the viewer says it cannot be shown.
    let (series, instance) = first_instance(&serving, &radiologist, &ecg);
    let (status, headers, _) = support::send_as(
        serving.address,
        Some(&radiologist),
        "GET",
        &format!("/dicomweb/studies/{ecg}/series/{series}/instances/{instance}/rendered"),
        &[("Accept", "image/svg+xml")],
        "",
    );
    let ecg_svg = status == 200
        && support::header(&headers, "content-type").is_some_and(|t| t.contains("svg"));

    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let output = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/viewer_check.mjs"))
        .args(["--base", &origin])
        .arg("--node-modules")
        .arg(&node_modules)
        .arg("--chromium")
        .arg(chromium)
        .args(["--user", "radiologist", "--password", PASSWORD])
        .args(["--stranger", "stranger", "--stranger-password", PASSWORD])
        .args(["--cine", &cine, "--cine-frames", "30"])
        .args(["--ct", &ct, "--ct-patient", "1CT1"])
        .args([
            "--pixel-spacing",
            &pixel_spacing(&corpus.join("CT_small.dcm")),
        ])
        .args([
            "--ecg",
            &ecg,
            "--ecg-svg",
            if ecg_svg { "yes" } else { "no" },
        ])
        .arg("--screenshots")
        .arg(&screenshots)
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .expect("node runs");
    let errors = serving.errors_logged();
    assert!(
        output.status.success(),
        "viewer_check.mjs failed:\n{}\n{}\nserver errors: {errors:#?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(errors.is_empty(), "{errors:#?}");
    for screenshot in ["cine-view.png", "study-view.png", "ecg-view.png"] {
        assert!(screenshots.join(screenshot).exists(), "{screenshot}");
    }
    println!(
        "{}screenshots in {}; {:.0?} with set-up",
        String::from_utf8_lossy(&output.stdout),
        screenshots.display(),
        started.elapsed()
    );
}
