//! WebAssembly plugins, black-box: exporters written in Rust, C, Python and JavaScript
//! are scraped in-process and their series read back through the query API; a plugin
//! file replaced while scrapes run switches versions without a failed scrape; a
//! relabeler plugin rewrites scraped series; a broken plugin fails only its own scrape.
//!
//! The C, Python and JavaScript components are built by `scripts/setup` (through
//! `examples/plugins/build`); a missing one fails the test with that instruction.
//! Compiled components are cached in `~/.cache/pharos-tests/plugin-cache`
//! (`--plugins.cache-dir`), so only the first run pays the Python and JavaScript
//! compile (tens of seconds each).

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, Reply, pharos_bin, serve, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A component built by `examples/plugins/build`.
fn example(lang: &str, file: &str) -> PathBuf {
    let path = repo()
        .join("examples/plugins")
        .join(lang)
        .join("build")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup, which builds the example plugins",
        path.display()
    );
    path
}

fn cache_dir() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let dir = Path::new(&home).join(".cache/pharos-tests/plugin-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

fn start(config: &Value) -> Pharos {
    let p = Pharos::start_with_config_and_args(
        &config.to_string(),
        &["--plugins.cache-dir", &cache_dir()],
    )
    .unwrap();
    // Loading compiles (or reads from the cache) every plugin before the node is ready.
    wait_for(Duration::from_secs(240), || Ok(p.get("/-/ready")?.0 == 200)).unwrap();
    p
}

fn query(p: &Pharos, q: &str) -> Vec<Value> {
    let (code, body) = p
        .get(&format!("/api/v1/query?query={}", urlencode(q)))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().unwrap().clone()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn targets(p: &Pharos) -> Vec<Value> {
    let (_, body) = p.get("/api/v1/targets").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["activeTargets"].as_array().unwrap().clone()
}

fn target<'a>(all: &'a [Value], instance: &str) -> Option<&'a Value> {
    all.iter().find(|t| t["labels"]["instance"] == instance)
}

#[test]
fn exporters_in_rust_c_python_and_javascript_are_scraped_in_process() {
    let c_config: Value =
        serde_json::from_str(include_str!("../../examples/plugins/c/config.example.json")).unwrap();
    let py_config: Value = serde_json::from_str(include_str!(
        "../../examples/plugins/python/config.example.json"
    ))
    .unwrap();
    let js_config: Value = serde_json::from_str(include_str!(
        "../../examples/plugins/javascript/config.example.json"
    ))
    .unwrap();
    let config = json!({
        "web": {"listen_address": "127.0.0.1:0"},
        "storage": {"tsdb": {"path": "data"}},
        "plugins": [
            {"name": "procfs", "kind": "exporter", "read_dirs": ["/proc"]},
            {"name": "c-example", "kind": "exporter", "file": example("c", "c-example.wasm"), "config": c_config},
            {"name": "python-example", "kind": "exporter", "file": example("python", "python-example.wasm"),
             "config": py_config, "limits": {"timeout": "10s"}},
            {"name": "js-example", "kind": "exporter", "file": example("javascript", "js-example.wasm"),
             "config": js_config, "limits": {"timeout": "10s"}}
        ],
        "scrape_configs": [{
            "job_name": "plugins", "scheme": "plugin", "scrape_interval": "1s", "scrape_timeout": "1s",
            "static_configs": [{"targets": ["procfs", "c-example", "python-example", "js-example"]}]
        }]
    });
    let p = start(&config);
    wait_for(Duration::from_secs(60), || {
        let all = targets(&p);
        Ok(["procfs", "c-example", "python-example", "js-example"]
            .iter()
            .all(|i| target(&all, i).is_some_and(|t| t["health"] == "up")))
    })
    .unwrap_or_else(|e| panic!("{e:#}: {:#}", Value::Array(targets(&p))));

    // Each language's series, read back with the target's labels.
    for (metric, instance) in [
        ("node_load1", "procfs"),
        ("node_cpu_seconds_total", "procfs"),
        ("c_example_volume_size_bytes", "c-example"),
        ("python_example_queue_depth", "python-example"),
        ("js_example_http_requests_total", "js-example"),
    ] {
        wait_for(Duration::from_secs(20), || {
            Ok(!query(
                &p,
                &format!("{metric}{{job=\"plugins\",instance=\"{instance}\"}}"),
            )
            .is_empty())
        })
        .unwrap_or_else(|e| panic!("{metric} from {instance}: {e:#}"));
    }
    // Configured values come through: the C example reports its volumes' sizes.
    let sizes = query(&p, "c_example_volume_size_bytes");
    let data = sizes
        .iter()
        .find(|s| s["metric"]["volume"] == "data")
        .unwrap_or_else(|| panic!("{sizes:?}"));
    assert_eq!(data["value"][1], "1073741824");

    // The same exporter, served for scrapers elsewhere.
    let (code, body) = p.get("/plugins/c-example/metrics").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("# TYPE c_example_volume_writes_total counter"),
        "{body}"
    );
    let (code, _) = p.get("/plugins/no-such-plugin/metrics").unwrap();
    assert_eq!(code, 404);

    // Per-plugin metrics of the runtime.
    let (_, metrics) = p.get("/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pharos_plugin_calls_total{plugin=\"js-example\"")),
        "{metrics}"
    );
}

/// `bytes` with a custom section appended: the same behaviour, but a different file and
/// so a different plugin version.
fn with_custom_section(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"pharos-test";
    let mut payload = vec![u8::try_from(name.len()).unwrap()];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(u8::try_from(payload.len()).unwrap());
    out.extend_from_slice(&payload);
    out
}

fn version_of(p: &Pharos, plugin: &str) -> Option<String> {
    let (_, metrics) = p.get("/metrics").unwrap();
    let prefix = format!("pharos_plugin_last_reload_success{{plugin=\"{plugin}\",version=\"");
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('"').next())
        .next_back()
        .map(str::to_owned)
}

#[test]
fn replacing_a_plugin_file_while_scraping_switches_versions_with_no_failed_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.wasm");
    let v1 = std::fs::read(example("c", "c-example.wasm")).unwrap();
    std::fs::write(&file, &v1).unwrap();
    let config = json!({
        "web": {"listen_address": "127.0.0.1:0"},
        "storage": {"tsdb": {"path": "data"}},
        "plugins": [{"name": "c", "kind": "exporter", "file": file, "config": {"site": "s", "volumes": [{"name": "v", "size_bytes": 1}]}}],
        "scrape_configs": [{"job_name": "c", "scheme": "plugin", "scrape_interval": "100ms", "scrape_timeout": "100ms",
                            "static_configs": [{"targets": ["c"]}]}]
    });
    let p = start(&config);
    wait_for(Duration::from_secs(20), || {
        Ok(p.metric("pharos_target_scrapes_total{job=\"c\",result=\"ok\"}")? >= 3.0)
    })
    .unwrap();
    let first = version_of(&p, "c").expect("a version label");

    // Deploy as the contract says: write elsewhere, rename into place. Twice, so a
    // scrape runs across each swap.
    for round in ["two", "three"] {
        let before = version_of(&p, "c");
        let staged = dir.path().join(".c.wasm.new");
        std::fs::write(&staged, with_custom_section(&v1, round)).unwrap();
        std::fs::rename(&staged, &file).unwrap();
        wait_for(
            Duration::from_secs(20),
            || Ok(version_of(&p, "c") != before),
        )
        .unwrap();
    }
    let ok_at_swap = p
        .metric("pharos_target_scrapes_total{job=\"c\",result=\"ok\"}")
        .unwrap();
    wait_for(Duration::from_secs(20), || {
        Ok(p.metric("pharos_target_scrapes_total{job=\"c\",result=\"ok\"}")? >= ok_at_swap + 5.0)
    })
    .unwrap();
    assert_ne!(version_of(&p, "c").as_deref(), Some(first.as_str()));
    let failed = p
        .metric("pharos_target_scrapes_total{job=\"c\",result=\"failed\"}")
        .unwrap_or(0.0);
    assert_eq!(failed, 0.0, "a scrape failed across the swaps");
    let reloads = p
        .metric("pharos_plugin_reloads_total{plugin=\"c\",result=\"success\"}")
        .unwrap();
    assert!(reloads >= 2.0, "{reloads}");

    // A broken file is refused; the running version keeps serving.
    let staged = dir.path().join(".c.wasm.new");
    std::fs::write(&staged, b"not a component").unwrap();
    std::fs::rename(&staged, &file).unwrap();
    wait_for(Duration::from_secs(20), || {
        Ok(
            p.metric("pharos_plugin_reloads_total{plugin=\"c\",result=\"failure\"}")
                .unwrap_or(0.0)
                >= 1.0,
        )
    })
    .unwrap();
    let ok = p
        .metric("pharos_target_scrapes_total{job=\"c\",result=\"ok\"}")
        .unwrap();
    wait_for(Duration::from_secs(10), || {
        Ok(p.metric("pharos_target_scrapes_total{job=\"c\",result=\"ok\"}")? >= ok + 3.0)
    })
    .unwrap();
}

#[test]
fn a_relabeler_plugin_rewrites_scraped_series_in_one_batch_per_scrape() {
    let fixture = serve(|_| {
        Some(Reply::metrics(
            "# TYPE logins_total counter\nlogins_total{user_id=\"ann\"} 1\nlogins_total{user_id=\"bob\"} 2\ninternal_debug 1\n",
        ))
    });
    let config = json!({
        "web": {"listen_address": "127.0.0.1:0"},
        "storage": {"tsdb": {"path": "data"}},
        "plugins": [{"name": "redact", "kind": "relabeler", "config": {"rules": [
            {"labels": ["user_id"], "action": "hash", "length": 8}
        ]}}],
        "scrape_configs": [{"job_name": "app", "scrape_interval": "200ms", "scrape_timeout": "200ms",
            "static_configs": [{"targets": [fixture.trim_start_matches("http://")]}],
            "metric_relabel_configs": [
                {"source_labels": ["__name__"], "regex": "internal_.*", "action": "drop"},
                {"action": "plugin", "plugin": "redact"}
            ]}]
    });
    let p = start(&config);
    wait_for(Duration::from_secs(20), || {
        Ok(query(&p, "logins_total").len() == 2)
    })
    .unwrap();
    let series = query(&p, "logins_total");
    for s in &series {
        let user = s["metric"]["user_id"].as_str().unwrap();
        assert!(user != "ann" && user != "bob", "not redacted: {series:?}");
        assert_eq!(user.len(), 8, "{series:?}");
    }
    assert!(
        query(&p, "internal_debug").is_empty(),
        "the native drop ran first"
    );
    // Steady scrapes reuse the cached verdicts: the plugin is called for new series only.
    let scrapes = |p: &Pharos| {
        p.metric("pharos_target_scrapes_total{job=\"app\",result=\"ok\"}")
            .unwrap()
    };
    let at = scrapes(&p);
    wait_for(Duration::from_secs(20), || Ok(scrapes(&p) >= at + 5.0)).unwrap();
    let (_, metrics) = p.get("/metrics").unwrap();
    let calls: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("pharos_plugin_calls_total{plugin=\"redact\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        (1.0..=2.0).contains(&calls),
        "{calls} calls for {} scrapes",
        scrapes(&p)
    );
}

#[test]
fn a_failing_exporter_fails_only_its_own_scrape() {
    // The C example refuses a configuration without `site` at load; at start-up that
    // refuses the node, naming the plugin.
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "web": {"listen_address": "127.0.0.1:0"},
        "plugins": [{"name": "bad", "kind": "exporter", "file": example("c", "c-example.wasm"), "config": {"volumes": 3}}]
    });
    let path = dir.path().join("bad.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let out = Command::new(pharos_bin())
        .args(["run", "--config"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin bad") && stderr.contains("\"site\" is required"),
        "{stderr}"
    );

    // A procfs exporter not granted /proc fails each scrape with the reason, and the
    // node and its other targets carry on.
    let config = json!({
        "web": {"listen_address": "127.0.0.1:0"},
        "storage": {"tsdb": {"path": "data"}},
        "plugins": [
            {"name": "procfs", "kind": "exporter"},
            {"name": "c", "kind": "exporter", "file": example("c", "c-example.wasm"), "config": {"site": "s", "volumes": [{"name": "v", "size_bytes": 1}]}}
        ],
        "scrape_configs": [{"job_name": "p", "scheme": "plugin", "scrape_interval": "200ms", "scrape_timeout": "200ms",
                            "static_configs": [{"targets": ["procfs", "c"]}]}]
    });
    let p = start(&config);
    wait_for(Duration::from_secs(20), || {
        let all = targets(&p);
        Ok(
            target(&all, "procfs").is_some_and(|t| t["health"] == "down")
                && target(&all, "c").is_some_and(|t| t["health"] == "up"),
        )
    })
    .unwrap();
    let all = targets(&p);
    let error = target(&all, "procfs").unwrap()["lastError"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("procfs"), "{error}");
    assert_eq!(p.get("/-/healthy").unwrap().0, 200);
}

#[test]
fn plugin_cli_inspects_components_and_writes_skeletons() {
    let out = Command::new(pharos_bin())
        .args(["plugin", "inspect"])
        .arg(example("python", "python-example.wasm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("world: exporter\nwit: pharos:plugin@0.1.0"),
        "{text}"
    );
    assert!(text.contains("pharos:plugin/log@0.1.0"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let skeleton = dir.path().join("my-relabeler");
    let out = Command::new(pharos_bin())
        .args(["plugin", "new", "--kind", "relabeler", "--lang", "rust"])
        .arg(&skeleton)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(skeleton.join("Cargo.toml").is_file());
    let out = Command::new(pharos_bin())
        .args(["plugin", "inspect"])
        .arg(dir.path().join("nothing.wasm"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}
