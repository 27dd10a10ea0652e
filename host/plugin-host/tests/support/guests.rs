//! Builds the guests of `test-guests/` for wasm32-wasip2, once per process,
//! into the test target directory, and hands out their bytes. Shared by the
//! integration tests and the benchmark (`#[path]`-included, not a test itself).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

fn build() -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-guests/Cargo.toml");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-guests");
    let mut command = pharos_artifacts::clean_cargo();
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    if let Some(dir) = manifest.parent() {
        command.current_dir(dir);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo for the test guests: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the test guests failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target.join("wasm32-wasip2").join("release"))
}

/// The component of test guest `name` (misbehave, relabel, notify, alien).
pub fn guest(name: &str) -> Result<Arc<[u8]>, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(build).as_ref().map_err(Clone::clone)?;
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path)
        .map(Arc::from)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The same component with a custom section appended: a different file (and
/// hash, and plugin version) with the same behaviour.
pub fn variant(wasm: &[u8], tag: &str) -> Arc<[u8]> {
    let name = b"pharos-test-variant";
    let mut section = Vec::new();
    section.push(name.len() as u8);
    section.extend_from_slice(name);
    section.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&section);
    Arc::from(out)
}
