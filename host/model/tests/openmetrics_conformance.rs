//! The OpenMetrics parser conformance suite: every case in
//! `shared/conformance/openmetrics/*/` (beside the repository) through
//! [`OpenMetricsParser`]. A case is a directory with the input (`metrics`) and a
//! `test.json` of the form `{"type": "text", "file": "metrics", "shouldParse": bool}`.
//! Every case must behave as it says; the test prints counts per category (the case
//! name without its trailing `_<n>`) and names every failing case with the reason.
//! With `PHAROS_CONFORMANCE_VERBOSE=1` it also prints why each rejected case was
//! rejected, to check that it is for the reason the case is about.
//! `PHAROS_OPENMETRICS_SUITE` points at another copy of the suite.

use pharos_model::exposition::parse::{Entry, Format, OpenMetricsParser, ParseError, Parser};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/openmetrics"
);

/// What a case's `test.json` asks. The file is flat JSON with string and bool values,
/// read here without a JSON dependency.
#[derive(Debug)]
struct Case {
    name: String,
    input: PathBuf,
    should_parse: bool,
}

fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.split('"').next();
    }
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn load(dir: &Path) -> Result<Case, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let json = std::fs::read_to_string(dir.join("test.json"))
        .map_err(|e| format!("{name}: reading test.json: {e}"))?;
    let kind = field(&json, "type").ok_or(format!("{name}: test.json has no \"type\""))?;
    if kind != "text" {
        return Err(format!("{name}: unsupported case type {kind:?}"));
    }
    let file = field(&json, "file").ok_or(format!("{name}: test.json has no \"file\""))?;
    let should_parse = match field(&json, "shouldParse") {
        Some("true") => true,
        Some("false") => false,
        other => return Err(format!("{name}: bad shouldParse {other:?}")),
    };
    Ok(Case {
        input: dir.join(file),
        name,
        should_parse,
    })
}

fn run(body: &[u8]) -> Result<usize, ParseError> {
    let mut p = OpenMetricsParser::new(body);
    let mut samples = 0;
    while let Some(e) = p.next_entry()? {
        if let Entry::Sample(_) = e {
            samples += 1;
        }
    }
    Ok(samples)
}

fn category(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((head, tail)) if tail.bytes().all(|c| c.is_ascii_digit()) => head,
        _ => name,
    }
}

/// The case directories, or `None` (after saying so) when the suite is absent.
fn case_dirs() -> Option<Vec<PathBuf>> {
    let root = std::env::var_os("PHAROS_OPENMETRICS_SUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SUITE));
    if !root.is_dir() {
        // Written past the test harness's capture, so a skip is never silent.
        let _ = writeln!(
            std::io::stderr(),
            "skipping: OpenMetrics conformance suite not found at {} (expected shared/conformance/openmetrics beside the repository)",
            root.display()
        );
        return None;
    }
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) => panic!("reading {}: {e}", root.display()),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("test.json").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases in {}", root.display());
    Some(dirs)
}

#[test]
fn openmetrics_conformance_suite() {
    let Some(dirs) = case_dirs() else {
        return;
    };

    // category -> (passed, total)
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = vec![];
    let mut passed = 0;
    let verbose = std::env::var_os("PHAROS_CONFORMANCE_VERBOSE").is_some();
    for dir in &dirs {
        let case = match load(dir) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let body = std::fs::read(&case.input).expect("read a case input");
        let outcome = run(&body);
        let ok = outcome.is_ok() == case.should_parse;
        if verbose && let Err(e) = &outcome {
            println!("  {:<45} {e}", case.name);
        }
        let entry = counts.entry(category(&case.name).to_owned()).or_default();
        entry.1 += 1;
        if ok {
            entry.0 += 1;
            passed += 1;
        } else {
            failures.push(match outcome {
                Ok(n) => format!(
                    "{}: accepted ({n} samples) but should be rejected",
                    case.name
                ),
                Err(e) => format!("{}: rejected but should parse: {e}", case.name),
            });
        }
    }
    println!("OpenMetrics conformance, by category (passed/total):");
    for (cat, (ok, total)) in &counts {
        println!("  {cat:<45} {ok}/{total}");
    }
    println!("total: {passed}/{} cases", dirs.len());
    let _ = writeln!(
        std::io::stderr(),
        "OpenMetrics conformance: {passed}/{} cases as expected",
        dirs.len()
    );
    for f in &failures {
        println!("FAILED {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed",
        failures.len(),
        dirs.len()
    );
}

/// The suite's inputs, mutated, through all three parsers: whatever they make of them,
/// they must not panic.
#[test]
fn mutated_cases_never_panic() {
    let Some(dirs) = case_dirs() else {
        return;
    };
    let mut state: u64 = 0x0123_4567_89ab_cdef;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let bodies: Vec<Vec<u8>> = dirs
        .iter()
        .filter_map(|d| std::fs::read(d.join("metrics")).ok())
        .collect();
    for body in &bodies {
        for _ in 0..30 {
            let mut b = body.clone();
            for _ in 0..=(next() % 3) {
                let at = (next() as usize) % (b.len() + 1);
                match next() % 3 {
                    0 => b.insert(at, next() as u8),
                    1 if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {
                        let other = &bodies[(next() as usize) % bodies.len()];
                        let from = (next() as usize) % (other.len() + 1);
                        let end = (from + (next() as usize) % 24).min(other.len());
                        b.splice(at..at, other[from..end].iter().copied());
                    }
                }
            }
            for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
                let mut p = Parser::new(format, &b);
                while let Ok(Some(_)) = p.next_entry() {}
            }
        }
    }
}
