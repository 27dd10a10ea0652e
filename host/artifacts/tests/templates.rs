//! Instantiates each Rust plugin template the way `pharos plugin new` does,
//! builds it for `wasm32-wasip2` with a nested cargo, checks its formatting,
//! runs its unit tests natively, and checks that the component targets the
//! template's world.
//!
//! The generated projects live under Cargo's per-test scratch directory and
//! share one target directory, so only the first build compiles the SDK and
//! its dependencies.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pharos_artifacts::{PluginKind, templates};

const SCRATCH: &str = env!("CARGO_TARGET_TMPDIR");

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sdk/rust")
        .canonicalize()
        .unwrap()
}

/// A `cargo` for the generated project that inherits the toolchain and
/// registry access of this run but none of its build settings (target dir,
/// flags, the test harness's variables).
fn nested_cargo(project: &Path) -> Command {
    let mut command = pharos_artifacts::clean_cargo();
    command.current_dir(project).env(
        "CARGO_TARGET_DIR",
        Path::new(SCRATCH).join("templates-target"),
    );
    command
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the template of `kind` into a fresh directory and builds it.
fn build_template(kind: PluginKind) -> Vec<u8> {
    let name = format!("template-{}", kind.world());
    let project = Path::new(SCRATCH).join("templates").join(&name);
    if project.exists() {
        std::fs::remove_dir_all(&project).unwrap();
    }
    templates::instantiate(kind, &project, &name, &sdk_dir()).unwrap();

    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("{{"),
        "placeholders left in:\n{manifest}"
    );

    let mut build = nested_cargo(&project);
    build.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--color=never",
    ]);
    run(build, &format!("building the {} template", kind.world()));

    // A new plugin starts out formatted, whatever its name.
    let mut format = nested_cargo(&project);
    format.args(["fmt", "--check"]);
    run(
        format,
        &format!("checking the format of the {} template", kind.world()),
    );

    let mut test = nested_cargo(&project);
    test.args(["test", "--color=never"]);
    run(test, &format!("testing the {} template", kind.world()));

    let wasm = Path::new(SCRATCH)
        .join("templates-target/wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&wasm).unwrap()
}

fn check(kind: PluginKind) {
    let wasm = build_template(kind);
    let name = format!("the {} template", kind.world());
    common::assert_valid_component(&name, &wasm);
    common::assert_exports_world(&name, &wasm, kind);
    common::assert_targets_only(&name, &wasm, kind);
}

#[test]
fn the_exporter_template_builds_an_exporter() {
    check(PluginKind::Exporter);
}

#[test]
fn the_relabeler_template_builds_a_relabeler() {
    check(PluginKind::Relabeler);
}

#[test]
fn the_notifier_template_builds_a_notifier() {
    check(PluginKind::Notifier);
}
