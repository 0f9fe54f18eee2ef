//! A Citus cluster for the tests that need one: the cluster script beside the Citus source
//! (`../shared/citus/cluster.sh`, or the directory `MERIDIAN_CITUS_DIR` names) builds and
//! installs Citus once per machine and starts a coordinator and two workers; this starts them
//! once for all test processes (under a file lock) and answers the coordinator's URL. A
//! machine without the Citus source fails these tests with instructions: they are never
//! skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The coordinator's port (the workers take the next two), as the script's default.
const PORT: u16 = 9700;

/// The coordinator's URL, the cluster started if it is not running.
pub fn citus_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(start).clone()
}

fn citus_dir() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("MERIDIAN_CITUS_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            // Beside the checkout, as on the development machines, and where these machines
            // keep it for a checkout elsewhere (CI's clean clone).
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/citus"),
            PathBuf::from("/work/shared/citus"),
        ])
        .collect();
    candidates
        .iter()
        .find(|dir| dir.join("cluster.sh").is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the Citus tests need the Citus source and its cluster script, looked for in {candidates:?}.\n\
                 Point MERIDIAN_CITUS_DIR at the directory holding cluster.sh and build.sh."
            )
        })
}

fn is_up(port: u16) -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

fn start() -> String {
    let url = format!("postgres://postgres@127.0.0.1:{PORT}/postgres");
    let data = std::env::temp_dir().join(format!("meridian-citus-{PORT}"));
    // One starter at a time across test processes; the others find the cluster up.
    let lock =
        std::fs::File::create(std::env::temp_dir().join(format!("meridian-citus-{PORT}.lock")))
            .expect("creating the Citus cluster's lock file");
    lock.lock().expect("locking the Citus cluster's lock file");
    if (0..3).all(|i| is_up(PORT + i)) {
        return url;
    }
    let script = citus_dir().join("cluster.sh");
    // Building Citus the first time on a machine takes several minutes.
    let output = Command::new("bash")
        .arg(&script)
        .args(["start", &data.to_string_lossy()])
        .env("CITUS_PORT", PORT.to_string())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} start {} failed:\n{}{}",
        script.display(),
        data.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    url
}
