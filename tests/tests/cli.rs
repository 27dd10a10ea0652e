//! The command line outside the daemon: `check config` and `version`.

use pharos_tests::pharos_bin;
use std::process::Command;

fn pharos(args: &[&str]) -> (i32, String) {
    let out = Command::new(pharos_bin())
        .args(args)
        .output()
        .expect("run pharos");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_config_lists_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{
          "global": {"scrape_interval": "5x", "scrape_timeout": 10, "colour": "blue"},
          "web": {"listen_address": "127.0.0.1:9090"}
        }"#,
    )
    .unwrap();
    let (code, out) = pharos(&["check", "config", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("- "))
        .collect();
    assert_eq!(errors.len(), 3, "{out}");
    assert!(
        out.contains("global.scrape_interval: invalid duration \"5x\""),
        "{out}"
    );
    assert!(out.contains("global.scrape_timeout: "), "{out}");
    assert!(out.contains("global.colour: unknown key"), "{out}");
}

#[test]
fn check_config_accepts_a_good_file_and_the_examples() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut files = vec![];
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path.display().to_string());
        }
    }
    assert!(!files.is_empty(), "examples/ holds configuration files");
    let mut args = vec!["check", "config"];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = pharos(&args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
}

#[test]
fn check_config_refuses_sections_not_built_yet() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("future.json");
    std::fs::write(&file, r#"{"remote_write": [], "remote_read": []}"#).unwrap();
    let (code, out) = pharos(&["check", "config", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("remote_write: not supported yet"), "{out}");
    assert!(out.contains("remote_read: not supported yet"), "{out}");
}

#[test]
fn check_config_names_a_missing_file() {
    let (code, out) = pharos(&["check", "config", "/nonexistent/pharos.json"]);
    assert_eq!(code, 1);
    assert!(out.contains("/nonexistent/pharos.json"), "{out}");
}

#[test]
fn version_prints_build_facts() {
    let (code, out) = pharos(&["version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pharos, version "), "{out}");
    assert!(out.contains("build rust: 1.95"), "{out}");
}
