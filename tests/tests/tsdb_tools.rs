//! `pharos tsdb` against promtool: the same OpenMetrics file imported by
//! `promtool tsdb create-blocks-from openmetrics` and by `pharos tsdb
//! import-openmetrics` dumps to the same samples.

use pharos_tests::{pharos_bin, require_tool};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sample lines only (promtool also prints progress), as a set: both tools order by
/// block, which may be cut differently.
fn sample_lines(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_string)
        .collect()
}

fn write_input(path: &Path) {
    // Five hours of two counters and a gauge with fractional values, a NaN and a
    // label value needing escapes.
    let mut body = String::from("# HELP http_requests Requests.\n# TYPE http_requests counter\n");
    let start = 1_700_000_000i64;
    for code in ["200", "500"] {
        for i in 0..(5 * 120) {
            let v = i * if code == "200" { 7 } else { 1 };
            body.push_str(&format!(
                "http_requests_total{{code=\"{code}\"}} {v} {}\n",
                start + i * 30
            ));
        }
    }
    body.push_str("# TYPE room_temp gauge\n");
    for i in 0..(5 * 120) {
        let v = if i == 17 {
            "NaN".to_string()
        } else {
            format!("{}", 20.0 + (i % 13) as f64 * 0.25)
        };
        body.push_str(&format!(
            "room_temp{{room=\"a \\\"quoted\\\"\"}} {v} {}.5\n",
            start + i * 30
        ));
    }
    body.push_str("# EOF\n");
    std::fs::write(path, body).unwrap();
}

#[test]
fn import_openmetrics_matches_promtool() {
    let promtool = require_tool("promtool");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.om");
    write_input(&input);

    let prom_dir = dir.path().join("prom");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&prom_dir));
    // promtool's dump opens the directory as a database, which needs a log directory.
    std::fs::create_dir_all(prom_dir.join("wal")).unwrap();
    let prom = sample_lines(&run(Command::new(&promtool)
        .args(["tsdb", "dump"])
        .arg(&prom_dir)));

    let ours_dir = dir.path().join("pharos");
    let report = run(Command::new(pharos_bin())
        .args(["tsdb", "import-openmetrics", "--data"])
        .arg(&ours_dir)
        .arg(&input));
    assert!(
        report.contains("imported 1800 samples of 3 series"),
        "{report}"
    );
    let ours = sample_lines(&run(Command::new(pharos_bin())
        .args(["tsdb", "dump"])
        .arg(&ours_dir)));

    assert_eq!(prom.len(), 1800, "promtool dumped every sample");
    let only_prom: Vec<_> = prom.difference(&ours).take(5).collect();
    let only_ours: Vec<_> = ours.difference(&prom).take(5).collect();
    assert!(
        only_prom.is_empty() && only_ours.is_empty(),
        "only in promtool: {only_prom:?}\nonly in pharos: {only_ours:?}"
    );

    let analysis = run(Command::new(pharos_bin())
        .args(["tsdb", "analyze"])
        .arg(&ours_dir));
    assert!(analysis.contains("1800 samples"), "{analysis}");
    assert!(analysis.contains("http_requests_total"), "{analysis}");
}
