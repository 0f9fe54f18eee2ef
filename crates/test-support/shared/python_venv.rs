//! A Python virtual environment for a test's outside check, made once under the target
//! directory. Included by path into the test binaries that run Python (`#[path]`): it reads
//! the including test's `CARGO_TARGET_TMPDIR`, which only a test crate has, and needs nothing
//! of the test-support crate (the analytics crate's tests do not depend on the stores).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python of a virtual environment named `name` with `packages` from PyPI (the real client
/// libraries the end-to-end checks use), made once under the target directory: in a directory
/// of its own, renamed into place when complete, and made again when `imports` fails in it.
/// A machine without python3, venv or PyPI fails the test with the reason; it is never
/// skipped.
pub fn python_with(name: &str, packages: &[&str], imports: &str) -> PathBuf {
    // Tests of one process (`cargo test` runs them on threads) make an environment one at a
    // time: their staging directory is named after the process.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(format!("{name}-venv"));
    let python = venv.join("bin").join("python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", imports])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if ready(&python) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let staging = root.join(format!("{name}-venv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let run = |command: &mut Command, what: &str| {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e} (python3 with venv is needed)"));
        assert!(
            output.status.success(),
            "{what} failed (is PyPI reachable?):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&staging),
        "python3 -m venv",
    );
    run(
        Command::new(staging.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .args(packages),
        &format!("pip install {}", packages.join(" ")),
    );
    // Another test run may have finished first: then its environment is used.
    if std::fs::rename(&staging, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(ready(&python), "{} cannot {imports}", venv.display());
    python
}
