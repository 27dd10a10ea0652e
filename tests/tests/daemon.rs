//! The daemon's lifecycle seen from outside: health, readiness, metrics, reload by HTTP
//! and SIGHUP, and graceful shutdown.

use pharos_tests::{Pharos, require_tool, wait_for};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const CONFIG: &str = r#"{
  "global": {"scrape_interval": "15s", "external_labels": {"replica": "a"}},
  "web": {"listen_address": "127.0.0.1:0"}
}"#;

const CHANGED: &str = r#"{
  "global": {"scrape_interval": "30s", "external_labels": {"replica": "b"}},
  "web": {"listen_address": "127.0.0.1:0"}
}"#;

const BROKEN: &str = r#"{
  "global": {"scrape_interval": "5x"},
  "web": {"listen_address": "127.0.0.1:0"}
}"#;

#[test]
fn health_readiness_and_metrics() -> anyhow::Result<()> {
    let p = Pharos::start(CONFIG)?;
    p.wait_ready()?;
    assert_eq!(p.get("/-/healthy")?, (200, "Pharos is Healthy.\n".into()));
    assert_eq!(p.get("/-/ready")?, (200, "Pharos is Ready.\n".into()));
    assert_eq!(p.metric("pharos_config_last_reload_successful")?, 1.0);
    assert!(p.metric("pharos_config_last_reload_success_timestamp_seconds")? > 1.7e9);

    let (status, body) = p.get("/metrics")?;
    assert_eq!(status, 200);
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "pharos_build_info{",
        "pharos_http_requests_total{handler=\"/-/ready\",code=\"200\"}",
        "pharos_http_request_duration_seconds_bucket{handler=\"/-/healthy\",le=\"0.1\"}",
    ] {
        assert!(
            body.contains(family),
            "{family} missing from /metrics:\n{body}"
        );
    }
    assert!(p.metric("process_resident_memory_bytes")? > 1e6);
    Ok(())
}

/// Upstream's own linter must accept the exposition.
#[test]
fn promtool_accepts_metrics() -> anyhow::Result<()> {
    let promtool = require_tool("promtool");
    // The embedded default runs every component built so far, so all their metrics show.
    let p = Pharos::start_with_args(&["--web.listen-address", "127.0.0.1:0"])?;
    p.wait_ready()?;
    let (_, body) = p.get("/metrics")?;
    assert!(body.contains("pharos_tsdb_head_series"), "{body}");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .map(|mut s| s.write_all(body.as_bytes()))
        .transpose()?;
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn unknown_paths_are_404_and_counted_as_other() -> anyhow::Result<()> {
    let p = Pharos::start(CONFIG)?;
    p.wait_ready()?;
    assert_eq!(p.get("/no/such/page")?.0, 404);
    let (_, body) = p.get("/metrics")?;
    assert!(body.contains("pharos_http_requests_total{handler=\"other\",code=\"404\"} 1"));
    Ok(())
}

#[test]
fn reload_over_http_applies_good_and_refuses_broken_files() -> anyhow::Result<()> {
    let p = Pharos::start(CONFIG)?;
    p.wait_ready()?;

    std::fs::write(&p.config_path, CHANGED)?;
    assert_eq!(p.post("/-/reload")?, (200, String::new()));
    assert_eq!(p.metric("pharos_config_last_reload_successful")?, 1.0);
    assert!(
        p.log_lines()
            .iter()
            .any(|l| l.contains("configuration reloaded"))
    );

    std::fs::write(&p.config_path, BROKEN)?;
    let (status, body) = p.post("/-/reload")?;
    assert_eq!(status, 500);
    assert!(
        body.contains("global.scrape_interval: invalid duration \"5x\""),
        "the refusal names the path and reason: {body}"
    );
    assert_eq!(p.metric("pharos_config_last_reload_successful")?, 0.0);
    assert!(p.log_lines().iter().any(|l| l.contains("reload refused")));
    // The old configuration keeps running.
    assert_eq!(p.get("/-/ready")?.0, 200);

    std::fs::write(&p.config_path, CONFIG)?;
    assert_eq!(p.post("/-/reload")?.0, 200);
    assert_eq!(p.metric("pharos_config_last_reload_successful")?, 1.0);
    Ok(())
}

#[test]
fn sighup_reloads() -> anyhow::Result<()> {
    let p = Pharos::start(CONFIG)?;
    p.wait_ready()?;
    let first = p.metric("pharos_config_last_reload_success_timestamp_seconds")?;

    std::fs::write(&p.config_path, BROKEN)?;
    p.signal("HUP")?;
    wait_for(Duration::from_secs(10), || {
        Ok(p.metric("pharos_config_last_reload_successful")? == 0.0)
    })?;
    assert_eq!(p.get("/-/healthy")?.0, 200);

    // Reload timestamps have one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&p.config_path, CHANGED)?;
    p.signal("HUP")?;
    wait_for(Duration::from_secs(10), || {
        Ok(p.metric("pharos_config_last_reload_successful")? == 1.0)
    })?;
    assert!(p.metric("pharos_config_last_reload_success_timestamp_seconds")? > first);
    Ok(())
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() -> anyhow::Result<()> {
    for sig in ["TERM", "INT"] {
        let mut p = Pharos::start(CONFIG)?;
        p.wait_ready()?;
        p.signal(sig)?;
        let status = p.wait_exit(Duration::from_secs(15))?;
        assert!(status.success(), "exit after SIG{sig}: {status}");
        wait_for(Duration::from_secs(2), || {
            Ok(p.log_lines()
                .iter()
                .any(|l| l.contains("see you next time")))
        })?;
    }
    Ok(())
}

#[test]
fn quit_endpoint_shuts_down() -> anyhow::Result<()> {
    let mut p = Pharos::start(CONFIG)?;
    p.wait_ready()?;
    assert_eq!(p.post("/-/quit")?.0, 200);
    assert!(p.wait_exit(Duration::from_secs(15))?.success());
    Ok(())
}

#[test]
fn embedded_default_runs_with_an_overridden_address() -> anyhow::Result<()> {
    // The embedded default listens on 0.0.0.0:9090; tests stay on loopback.
    let p = Pharos::start_with_args(&["--web.listen-address", "127.0.0.1:0"])?;
    p.wait_ready()?;
    assert_eq!(p.get("/-/healthy")?.0, 200);
    assert!(p.log_lines().iter().any(|l| l.contains("embedded default")));
    // The first-party procfs exporter ships inside the binary: the default's `node`
    // job scrapes this host through it (first scrape within one 15 s interval).
    pharos_tests::wait_for(Duration::from_secs(40), || {
        let (_, body) = p.get("/api/v1/query?query=node_load1%7Bjob%3D%22node%22%7D")?;
        Ok(body.contains("\"instance\":\"procfs\""))
    })?;
    Ok(())
}

#[test]
fn json_logs_by_flag() -> anyhow::Result<()> {
    let p = Pharos::start_with_args(&[
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "json",
    ])?;
    p.wait_ready()?;
    let lines = p.log_lines();
    let listening = lines
        .iter()
        .find(|l| l.contains("listening"))
        .expect("a listening line");
    let parsed: serde_json::Value = serde_json::from_str(listening)?;
    assert_eq!(parsed["level"], "INFO");
    Ok(())
}
