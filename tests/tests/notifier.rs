//! Alerts raised by Pharos's rules reach the Debian `prometheus-alertmanager` over its v2
//! API, and `amtool` sees them with their labels and annotations.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, free_port, request, require_tool, wait_for};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Debian Alertmanager on a free loopback port, clustering off, killed when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        // JSON is YAML.
        std::fs::write(
            &config,
            r#"{"route": {"receiver": "null", "group_wait": "1s"}, "receivers": [{"name": "null"}]}"#,
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(require_tool("prometheus-alertmanager"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_for(Duration::from_secs(20), || {
            Ok(request("GET", &format!("{url}/-/ready"))?.0 == 200)
        })
        .unwrap();
        Alertmanager {
            child,
            url,
            _dir: dir,
        }
    }

    /// `amtool alert query` as JSON.
    fn amtool_alerts(&self) -> anyhow::Result<serde_json::Value> {
        let out = Command::new(require_tool("amtool"))
            .args([
                "alert",
                "query",
                "-o",
                "json",
                &format!("--alertmanager.url={}", self.url),
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "amtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alerts_reach_alertmanager_and_amtool_sees_them() {
    let am = Alertmanager::start();
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"groups": [{"name": "always", "interval": "1s", "rules": [
            {"alert": "AlwaysFiring", "expr": "vector(42)",
             "labels": {"severity": "page"},
             "annotations": {"summary": "value is {{ $value }}"}}]}]}"#,
    )
    .unwrap();
    let am_addr = am.url.trim_start_matches("http://");
    let p = Pharos::start(&format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "global": {{"evaluation_interval": "1s", "external_labels": {{"replica": "a"}}}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "rule_files": ["{}"],
            "alerting": {{"alertmanagers": [{{"static_configs": [{{"targets": ["{am_addr}"]}}]}}]}}}}"#,
        rules.display()
    ))
    .unwrap();
    p.wait_ready().unwrap();

    let mut seen = serde_json::Value::Null;
    wait_for(Duration::from_secs(30), || {
        seen = am.amtool_alerts()?;
        Ok(seen.as_array().is_some_and(|a| !a.is_empty()))
    })
    .unwrap_or_else(|e| panic!("no alert reached the Alertmanager: {e}\n{seen}"));
    let alerts = seen.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{seen}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "AlwaysFiring", "{a}");
    assert_eq!(a["labels"]["severity"], "page", "{a}");
    assert_eq!(
        a["labels"]["replica"], "a",
        "external labels are added: {a}"
    );
    assert_eq!(a["annotations"]["summary"], "value is 42", "{a}");
    assert_eq!(a["status"]["state"], "active", "{a}");
    assert!(
        a["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=")),
        "{a}"
    );
    let sent = format!(
        "pharos_notifications_sent_total{{alertmanager=\"{}/api/v2/alerts\"}}",
        am.url
    );
    assert!(p.metric(&sent).unwrap_or(0.0) >= 1.0, "{sent}");
}
