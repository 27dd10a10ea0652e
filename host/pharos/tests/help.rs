//! The help text a newcomer reads first. Being an integration test of this package, it
//! also makes `cargo test --workspace` build the `pharos` binary that the black-box
//! tests in `tests/` start.

// A test fails by panicking, helpers included.
#![allow(clippy::expect_used)]

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pharos"))
        .args(args)
        .output()
        .expect("pharos runs");
    assert!(out.status.success(), "pharos {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn top_level_help_lists_every_command() {
    let text = help(&["--help"]);
    for command in ["run", "check", "tsdb", "version"] {
        assert!(
            text.contains(&format!("\n  {command} ")),
            "{command} missing:\n{text}"
        );
    }
}

#[test]
fn run_help_documents_config_and_logging() {
    let text = help(&["run", "--help"]);
    for flag in [
        "--config <FILE>",
        "--web.listen-address",
        "--log.format",
        "--log.level",
        "all-in-one",
    ] {
        assert!(text.contains(flag), "{flag} missing:\n{text}");
    }
}
