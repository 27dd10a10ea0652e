//! The plugin host against real components: the guests of `test-guests/`
//! (built with the Rust SDK) and the first-party `redact`.
//!
//! Nothing here asserts on time: deadlines are the plugin's own limits, and
//! the waits on servers and watchers are bounded only so that a broken host
//! fails the test instead of hanging it.
// Test helpers outside `#[test]` functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/guests.rs"]
mod guests;

use pharos_model::Labels;
use pharos_model::exposition::TextWriter;
use pharos_plugin_host::{
    Alert, AlertStatus, ErrorKind, Kind, Limits, Notification, Outcome, Plugin, PluginSpec, Points,
    ReloadOutcome, Runtime, RuntimeOptions, inspect, write_exposition,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions::default()).unwrap()
}

fn spec(name: &str, kind: Kind, guest: &str, config: &str) -> PluginSpec {
    PluginSpec {
        name: name.to_owned(),
        kind,
        wasm: guests::guest(guest).unwrap(),
        origin: format!("test-guests/{guest}"),
        config: config.to_owned(),
        limits: Limits::default(),
        allow_hosts: Vec::new(),
        read_dirs: Vec::new(),
    }
}

fn metrics(rt: &Runtime) -> String {
    let mut out = String::new();
    rt.write_metrics(&mut TextWriter::new(&mut out));
    out
}

/// The value of the exposition line that starts with `prefix`.
fn value(exposition: &str, prefix: &str) -> f64 {
    let line = exposition
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix} in\n{exposition}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn gauge(families: &[pharos_plugin_host::Family], name: &str) -> f64 {
    let family = families.iter().find(|f| f.name == name).unwrap();
    match &family.points {
        Points::Gauge(points) => points[0].value,
        other => panic!("{other:?}"),
    }
}

fn series(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_collect_round_trip() {
    let rt = runtime();
    let plugin = rt
        .load(spec(
            "node",
            Kind::Exporter,
            "misbehave",
            "mode=ok series=3 build=7",
        ))
        .await
        .unwrap();
    let version = plugin.version();
    let (hash, wit) = version.split_once('@').unwrap();
    assert_eq!(hash.len(), 12, "{version}");
    assert_eq!(wit, "0.1.0");
    assert_eq!(plugin.kind(), Kind::Exporter);

    let families = plugin.collect().await.unwrap();
    assert_eq!(gauge(&families, "misbehave_build"), 7.0);
    let mut text = String::new();
    write_exposition(&families, &mut TextWriter::new(&mut text));
    assert!(
        text.contains("# TYPE misbehave_value gauge\n")
            && text.contains(
                "misbehave_value{instance=\"localhost:9100\",job=\"node\",series=\"2\"} 2\n"
            ),
        "{text}"
    );

    // A second call reuses the configured instance.
    plugin.collect().await.unwrap();
    let m = metrics(&rt);
    assert_eq!(
        value(
            &m,
            &format!("pharos_plugin_calls_total{{plugin=\"node\",version=\"{version}\"}}")
        ),
        2.0
    );
    assert!(
        m.contains("pharos_plugin_call_duration_seconds_count"),
        "{m}"
    );
}

#[test]
fn inspect_reports_world_version_and_imports() {
    let found = inspect(&guests::guest("notify").unwrap()).unwrap();
    assert_eq!(found.world(), Some("notifier"));
    assert_eq!(found.wit_version.as_deref(), Some("0.1.0"));
    let imports: Vec<&str> = found.imports.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        imports.contains(&"pharos:plugin/types@0.1.0"),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"wasi:http/outgoing-handler@0.2.12"),
        "{imports:?}"
    );
    assert!(
        found
            .exports
            .iter()
            .any(|(n, k)| n == "pharos:plugin/notifier-api@0.1.0" && *k == "instance"),
        "{:?}",
        found.exports
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabel_batch_gets_one_outcome_per_series() {
    let rt = runtime();
    let plugin = rt
        .load(spec("tagger", Kind::Relabeler, "relabel", "tag=blue"))
        .await
        .unwrap();
    let batch = [
        series(&[("__name__", "up"), ("job", "api")]),
        series(&[("__name__", "drop_me")]),
        series(&[("__name__", "keep_me")]),
    ];
    let outcomes = plugin.relabel(&batch).await.unwrap();
    assert_eq!(
        outcomes,
        [
            Outcome::Rewrite(series(&[
                ("__name__", "up"),
                ("job", "api"),
                ("tag", "blue")
            ])),
            Outcome::Drop,
            Outcome::Keep,
        ]
    );
    assert_eq!(plugin.relabel(&[]).await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_relabel_output_is_refused_and_the_instance_kept() {
    let rt = runtime();
    let plugin = rt
        .load(spec("tagger", Kind::Relabeler, "relabel", "tag=x"))
        .await
        .unwrap();
    let e = plugin
        .relabel(&[series(&[("__name__", "bad_output")])])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadOutput, "{e}");
    assert!(e.to_string().contains("plugin tagger"), "{e}");
    assert!(e.message.contains("bad-name"), "{e}");
    assert!(
        plugin
            .relabel(&[series(&[("__name__", "up")])])
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_after_trap_gets_a_fresh_instance() {
    let rt = runtime();
    let plugin = rt
        .load(spec("tagger", Kind::Relabeler, "relabel", "tag=x"))
        .await
        .unwrap();
    let e = plugin
        .relabel(&[series(&[("__name__", "panic")])])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Trap, "{e}");
    let outcomes = plugin
        .relabel(&[series(&[("__name__", "up")])])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [Outcome::Rewrite(series(&[
            ("__name__", "up"),
            ("tag", "x")
        ]))]
    );
    let m = metrics(&rt);
    let labels = format!("{{plugin=\"tagger\",version=\"{}\"}}", plugin.version());
    assert_eq!(
        value(&m, &format!("pharos_plugin_traps_total{labels}")),
        1.0
    );
    assert_eq!(
        value(
            &m,
            &format!(
                "pharos_plugin_errors_total{{plugin=\"tagger\",version=\"{}\",kind=\"trap\"}}",
                plugin.version()
            )
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let rt = runtime();
    let mut s = spec("spinner", Kind::Exporter, "misbehave", "mode=loop");
    s.limits.timeout = Duration::from_millis(200);
    let plugin = rt.load(s).await.unwrap();
    let e = plugin.collect().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_eq!(e.plugin, "spinner");
    assert!(e.to_string().starts_with("plugin spinner version "), "{e}");
    // The host is fine, and so is the next call's fresh instance (which loops again).
    assert_eq!(plugin.collect().await.unwrap_err().kind, ErrorKind::Timeout);
    let m = metrics(&rt);
    assert_eq!(
        value(
            &m,
            &format!(
                "pharos_plugin_timeouts_total{{plugin=\"spinner\",version=\"{}\"}}",
                plugin.version()
            )
        ),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_refused_growth_at_the_cap() {
    let rt = runtime();
    let mut s = spec("bomb", Kind::Exporter, "misbehave", "mode=bomb");
    s.limits.memory = 16 << 20;
    let plugin = rt.load(s).await.unwrap();
    let e = plugin.collect().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Memory, "{e}");
    let m = metrics(&rt);
    let high = value(
        &m,
        &format!(
            "pharos_plugin_memory_high_water_bytes{{plugin=\"bomb\",version=\"{}\"}}",
            plugin.version()
        ),
    );
    assert!(high > 1.0 && high <= (16 << 20) as f64, "{high}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_traps() {
    let rt = runtime();
    let plugin = rt
        .load(spec("deep", Kind::Exporter, "misbehave", "mode=recurse"))
        .await
        .unwrap();
    let e = plugin.collect().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Trap, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_cut_at_the_budget_and_counted() {
    let rt = runtime();
    let plugin = rt
        .load(spec(
            "chatty",
            Kind::Exporter,
            "misbehave",
            "mode=log-flood",
        ))
        .await
        .unwrap();
    plugin.collect().await.unwrap();
    let m = metrics(&rt);
    let dropped = value(
        &m,
        &format!(
            "pharos_plugin_log_lines_dropped_total{{plugin=\"chatty\",version=\"{}\"}}",
            plugin.version()
        ),
    );
    // 10 000 log lines and 10 000 stdout lines; 100 kept per call.
    assert!((19_900.0..=19_910.0).contains(&dropped), "{dropped}");
    // Each call has its own budget; the host keeps serving.
    plugin.collect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_return_value_is_refused() {
    let rt = runtime();
    let mut s = spec(
        "huge",
        Kind::Exporter,
        "misbehave",
        "mode=huge size=80000000",
    );
    s.limits.memory = 256 << 20;
    s.limits.timeout = Duration::from_secs(10);
    let plugin = rt.load(s).await.unwrap();
    let Err(e) = plugin.collect().await else {
        panic!("an 80 MB answer was accepted");
    };
    assert_eq!(e.kind, ErrorKind::BadOutput, "{e}");
    assert!(e.message.contains("bytes the host accepts"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_the_host_cannot_serve_are_refused_at_load() {
    let rt = runtime();
    let e = rt
        .load(spec("alien", Kind::Relabeler, "alien", ""))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("plugin alien"), "{e}");
    assert!(e.message.contains("`test:alien/nope@1.0.0`"), "{e}");

    // A relabeler gets no network: one importing wasi:http is refused too.
    let e = rt
        .load(spec("netlabel", Kind::Relabeler, "misbehave", ""))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(e.message.contains("targets the exporter world"), "{e}");

    let mut garbage = spec("garbage", Kind::Exporter, "misbehave", "");
    garbage.wasm = Arc::from(&b"\0asm but not really"[..]);
    assert_eq!(rt.load(garbage).await.unwrap_err().kind, ErrorKind::Refused);

    let e = rt
        .load(spec("cfg", Kind::Exporter, "misbehave", "mode=fail-config"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidConfig, "{e}");
}

/// A one-request-at-a-time HTTP/1.1 server on 127.0.0.1 that answers 200 and
/// records each request as `METHOD PATH BODY`.
struct TestServer {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut first = head.lines().next()?.split(' ');
    let (method, path) = (first.next()?.to_uppercase(), first.next()?.to_owned());
    let mut body = buf[head_end..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        while !body.windows(5).any(|w| w == b"0\r\n\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || body.len() > 1 << 20 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 4 + size..];
        }
        body = decoded;
    } else if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while body.len() < len {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(format!(
        "{method} {path} {}",
        String::from_utf8_lossy(&body)
    ))
}

async fn test_server() -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            if let Some(request) = read_request(&mut stream).await {
                log.lock().unwrap().push(request);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    TestServer { port, seen, task }
}

fn http_exporter(url: &str, allow: &[&str]) -> PluginSpec {
    let mut s = spec(
        "fetcher",
        Kind::Exporter,
        "misbehave",
        &format!("mode=http url={url}"),
    );
    s.allow_hosts = allow.iter().map(|h| (*h).to_owned()).collect();
    s.limits.timeout = Duration::from_secs(5);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_a_host_not_allowed_is_denied() {
    let rt = runtime();
    let plugin = rt
        .load(http_exporter(
            "http://example.com/metrics",
            &["other.example"],
        ))
        .await
        .unwrap();
    let e = plugin.collect().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("HttpRequestDenied"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_behind_an_allowed_name_is_denied_unless_listed() {
    let server = test_server().await;
    let url = format!("http://localhost:{}/x", server.port);
    let rt = runtime();
    let plugin = rt.load(http_exporter(&url, &["localhost"])).await.unwrap();
    let e = plugin.collect().await.unwrap_err();
    assert!(e.message.contains("HttpRequestDenied"), "{e}");
    assert!(server.seen.lock().unwrap().is_empty());

    // Listing the address itself lets the name reach it.
    let plugin = rt
        .load(http_exporter(&url, &["localhost", "127.0.0.1"]))
        .await
        .unwrap();
    let families = plugin.collect().await.unwrap();
    assert_eq!(gauge(&families, "misbehave_http_status"), 200.0);
    assert_eq!(*server.seen.lock().unwrap(), ["GET /x "]);
}

fn notification() -> Notification {
    Notification {
        receiver: "team".to_owned(),
        status: AlertStatus::Firing,
        alerts: vec![Alert {
            status: AlertStatus::Firing,
            labels: series(&[("alertname", "Down")]),
            annotations: series(&[("summary", "it is down")]),
            starts_at_ms: 1_700_000_000_000,
            ends_at_ms: None,
            generator_url: "http://pharos/graph".to_owned(),
            fingerprint: "abc".to_owned(),
        }],
        group_labels: series(&[("alertname", "Down")]),
        common_labels: series(&[("alertname", "Down")]),
        common_annotations: Labels::default(),
        external_url: "http://pharos".to_owned(),
        group_key: "{}:{alertname=\"Down\"}".to_owned(),
        truncated_alerts: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_reaches_a_loopback_server_that_is_listed() {
    let server = test_server().await;
    let rt = runtime();
    let url = format!("http://127.0.0.1:{}/hook", server.port);
    let mut s = spec("hook", Kind::Notifier, "notify", &format!("url={url}"));
    s.allow_hosts = vec![format!("127.0.0.1:{}", server.port)];
    s.limits.timeout = Duration::from_secs(5);
    let plugin = rt.load(s).await.unwrap();
    plugin.notify(&notification()).await.unwrap();
    assert_eq!(
        *server.seen.lock().unwrap(),
        ["POST /hook team {}:{alertname=\"Down\"} 1"]
    );

    // Not listed: the same call is denied, and the guest reports it as transient.
    let mut s = spec("hook2", Kind::Notifier, "notify", &format!("url={url}"));
    s.allow_hosts = vec!["127.0.0.1:1".to_owned()];
    let plugin = rt.load(s).await.unwrap();
    let e = plugin.notify(&notification()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

/// An SMTP server on 127.0.0.1 that accepts everything: the connections it
/// took and, for each, what the client said (the message included).
struct SmtpServer {
    port: u16,
    sessions: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn smtp_session(stream: tokio::net::TcpStream) -> String {
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read);
    let mut said = String::new();
    let _ = write.write_all(b"220 test ESMTP\r\n").await;
    let mut in_data = false;
    loop {
        let mut line = String::new();
        match tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await {
            Ok(0) | Err(_) => return said,
            Ok(_) => said.push_str(&line),
        }
        let reply: &[u8] = if in_data {
            if line != ".\r\n" {
                continue;
            }
            in_data = false;
            b"250 queued\r\n"
        } else if line.starts_with("EHLO") {
            b"250 test\r\n"
        } else if line.starts_with("DATA") {
            in_data = true;
            b"354 go on\r\n"
        } else if line.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return said;
        } else {
            b"250 ok\r\n"
        };
        let _ = write.write_all(reply).await;
    }
}

async fn smtp_server() -> SmtpServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let log = sessions.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let index = {
                let mut log = log.lock().unwrap();
                log.push(String::new());
                log.len() - 1
            };
            let said = smtp_session(stream).await;
            log.lock().unwrap()[index] = said;
        }
    });
    SmtpServer {
        port,
        sessions,
        task,
    }
}

fn first_party(name: &str, kind: Kind, config: &str, allow: &[String]) -> PluginSpec {
    let Some(first) = pharos_artifacts::first_party()
        .iter()
        .find(|p| p.name == name)
    else {
        panic!("{name} is not embedded");
    };
    PluginSpec {
        name: name.to_owned(),
        kind,
        wasm: Arc::from(first.wasm),
        origin: "embedded".to_owned(),
        config: config.to_owned(),
        limits: Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        allow_hosts: allow.to_vec(),
        read_dirs: Vec::new(),
    }
}

fn email(smarthost: &str, allow: &[String]) -> PluginSpec {
    let config = format!(
        r#"{{"smarthost": "{smarthost}", "require_tls": false, "from": "pharos@example.com", "to": "ops@example.com"}}"#
    );
    first_party("email", Kind::Notifier, &config, allow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_may_connect_over_tcp_to_a_listed_address() {
    let server = smtp_server().await;
    let rt = runtime();
    let smarthost = format!("127.0.0.1:{}", server.port);
    let plugin = rt
        .load(email(&smarthost, std::slice::from_ref(&smarthost)))
        .await
        .unwrap();
    plugin.notify(&notification()).await.unwrap();
    let sessions = server.sessions.lock().unwrap().clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let said = &sessions[0];
    assert!(said.starts_with("EHLO localhost\r\nMAIL FROM:<pharos@example.com>\r\nRCPT TO:<ops@example.com>\r\nDATA\r\n"), "{said}");
    assert!(said.contains("Subject: [FIRING:1] Down\r\n"), "{said}");
    assert!(said.ends_with("\r\n.\r\nQUIT\r\n"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_to_an_address_not_listed_is_refused() {
    let server = smtp_server().await;
    let rt = runtime();
    let smarthost = format!("127.0.0.1:{}", server.port);
    // The same address on another port, and a public name: neither lets it through.
    let allow = ["127.0.0.1:1".to_owned(), "example.com".to_owned()];
    let plugin = rt.load(email(&smarthost, &allow)).await.unwrap();
    let e = plugin.notify(&notification()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("allow_hosts"), "{e}");
    assert!(server.sessions.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_to_loopback_behind_an_allowed_name_is_refused_unless_listed() {
    let server = smtp_server().await;
    let rt = runtime();
    let smarthost = format!("localhost:{}", server.port);
    let plugin = rt
        .load(email(&smarthost, &["localhost".to_owned()]))
        .await
        .unwrap();
    let e = plugin.notify(&notification()).await.unwrap_err();
    assert!(e.message.contains("resolving localhost"), "{e}");
    assert!(server.sessions.lock().unwrap().is_empty());

    // Listing the address itself lets the name reach it.
    let plugin = rt
        .load(email(
            &smarthost,
            &["localhost".to_owned(), "127.0.0.1".to_owned()],
        ))
        .await
        .unwrap();
    plugin.notify(&notification()).await.unwrap();
    assert_eq!(server.sessions.lock().unwrap().len(), 1);
}

/// The notifier world gained socket imports; a notifier that imports none of
/// them (as every one built before they were added) still loads and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_party_webhook_still_loads() {
    let server = test_server().await;
    let rt = runtime();
    let config = format!(r#"{{"url": "http://127.0.0.1:{}/hook"}}"#, server.port);
    let allow = [format!("127.0.0.1:{}", server.port)];
    let plugin = rt
        .load(first_party("webhook", Kind::Notifier, &config, &allow))
        .await
        .unwrap();
    plugin.notify(&notification()).await.unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_dirs_are_granted_read_only_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stat");
    std::fs::write(&file, "12345").unwrap();
    let config = format!("mode=read path={}", file.display());
    let rt = runtime();

    let mut granted = spec("reader", Kind::Exporter, "misbehave", &config);
    granted.read_dirs = vec![dir.path().to_owned()];
    let families = rt.load(granted).await.unwrap().collect().await.unwrap();
    assert_eq!(gauge(&families, "misbehave_file_bytes"), 5.0);

    let denied = rt
        .load(spec("reader2", Kind::Exporter, "misbehave", &config))
        .await
        .unwrap();
    let e = denied.collect().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");

    let mut relabeler = spec("r", Kind::Relabeler, "relabel", "tag=x");
    relabeler.read_dirs = vec![PathBuf::from("/proc")];
    assert_eq!(
        rt.load(relabeler).await.unwrap_err().kind,
        ErrorKind::Refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compile_cache_serves_later_loads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
    };
    let rt = Runtime::new(options.clone()).unwrap();
    rt.load(spec("a", Kind::Relabeler, "relabel", "tag=1"))
        .await
        .unwrap();
    let first = rt.compile_stats();
    assert_eq!(
        (first.compiled, first.cache_hits, first.cache_writes),
        (1, 0, 1)
    );

    rt.load(spec("b", Kind::Relabeler, "relabel", "tag=2"))
        .await
        .unwrap();
    let second = rt.compile_stats();
    assert_eq!((second.compiled, second.cache_hits), (1, 1));

    // A new runtime (a restarted daemon) finds the artifact too.
    let again = Runtime::new(options.clone()).unwrap();
    let plugin = again
        .load(spec("c", Kind::Relabeler, "relabel", "tag=3"))
        .await
        .unwrap();
    assert_eq!(again.compile_stats().cache_hits, 1);
    assert_eq!(again.compile_stats().compiled, 0);
    assert!(
        plugin
            .relabel(&[series(&[("__name__", "up")])])
            .await
            .is_ok()
    );

    // An artifact others could have written is not loaded: it is recompiled.
    use std::os::unix::fs::PermissionsExt;
    let artifact = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    let wary = Runtime::new(options).unwrap();
    wary.load(spec("d", Kind::Relabeler, "relabel", "tag=4"))
        .await
        .unwrap();
    let stats = wary.compile_stats();
    assert_eq!(
        (stats.compiled, stats.cache_hits, stats.cache_refused),
        (1, 0, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_of_the_same_bytes_share_one_compiled_component() {
    let rt = runtime();
    let a = rt
        .load(spec("a", Kind::Relabeler, "relabel", "tag=1"))
        .await
        .unwrap();
    let b = rt
        .load(spec("b", Kind::Relabeler, "relabel", "tag=2"))
        .await
        .unwrap();
    let stats = rt.compile_stats();
    assert_eq!((stats.compiled, stats.shared), (1, 1));
    // Each keeps its own configuration.
    let tagged = |out: Vec<Outcome>| format!("{out:?}");
    let one = tagged(a.relabel(&[series(&[("__name__", "up")])]).await.unwrap());
    let two = tagged(b.relabel(&[series(&[("__name__", "up")])]).await.unwrap());
    assert_ne!(one, two);

    // Different bytes are compiled on their own.
    let _other = rt
        .load(spec("c", Kind::Exporter, "misbehave", "mode=ok"))
        .await
        .unwrap();
    assert_eq!(rt.compile_stats().compiled, 2);

    // Once no version runs the code, it leaves memory, and a later load compiles it.
    drop((a, b));
    let _d = rt
        .load(spec("d", Kind::Relabeler, "relabel", "tag=4"))
        .await
        .unwrap();
    let stats = rt.compile_stats();
    assert_eq!((stats.compiled, stats.shared), (3, 1));
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> impl Future<Output = Poll<F::Output>> + '_ {
    std::future::poll_fn(move |cx| Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_and_keeps_the_old_version_on_failure() {
    let rt = runtime();
    let base = spec("node", Kind::Exporter, "misbehave", "mode=ok build=1");
    let plugin: Plugin = rt.load(base.clone()).await.unwrap();
    let v1 = plugin.version();

    assert_eq!(
        plugin.reload(base.clone()).await.unwrap(),
        ReloadOutcome::Unchanged
    );

    let mut next = base.clone();
    next.wasm = guests::variant(&base.wasm, "2");
    next.config = "mode=ok build=2".to_owned();
    assert_eq!(
        plugin.reload(next.clone()).await.unwrap(),
        ReloadOutcome::Swapped
    );
    let v2 = plugin.version();
    assert_ne!(v1, v2);
    assert_eq!(
        gauge(&plugin.collect().await.unwrap(), "misbehave_build"),
        2.0
    );

    let mut broken = next.clone();
    broken.wasm = Arc::from(&b"not a component"[..]);
    assert_eq!(
        plugin.reload(broken).await.unwrap_err().kind,
        ErrorKind::Refused
    );
    assert_eq!(plugin.version(), v2);

    let mut refused = next.clone();
    refused.wasm = guests::variant(&base.wasm, "3");
    refused.config = "mode=fail-config".to_owned();
    let e = plugin.reload(refused).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidConfig, "{e}");
    assert_eq!(plugin.version(), v2);
    assert_eq!(
        gauge(&plugin.collect().await.unwrap(), "misbehave_build"),
        2.0
    );

    let m = metrics(&rt);
    let reloads = |result: &str| {
        value(
            &m,
            &format!("pharos_plugin_reloads_total{{plugin=\"node\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(
        (reloads("success"), reloads("failure"), reloads("unchanged")),
        (1.0, 2.0, 1.0)
    );
    assert_eq!(
        value(
            &m,
            &format!("pharos_plugin_last_reload_success{{plugin=\"node\",version=\"{v2}\"}}")
        ),
        0.0
    );

    // A changed configuration alone is a new instance set of the same version.
    let mut reconfigured = next;
    reconfigured.config = "mode=ok build=5".to_owned();
    assert_eq!(
        plugin.reload(reconfigured).await.unwrap(),
        ReloadOutcome::Swapped
    );
    assert_eq!(plugin.version(), v2);
    assert_eq!(
        gauge(&plugin.collect().await.unwrap(), "misbehave_build"),
        5.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_call_finishes_on_the_old_version() {
    let rt = runtime();
    let mut old = spec(
        "slow",
        Kind::Exporter,
        "misbehave",
        "mode=sleep ms=300 build=1",
    );
    old.limits.timeout = Duration::from_secs(10);
    let plugin = rt.load(old.clone()).await.unwrap();
    let v1 = plugin.version();

    let mut call = Box::pin(plugin.collect());
    // The first poll takes the version in service and enters the guest, which
    // sleeps and so is still running.
    assert!(poll_once(&mut call).await.is_pending());

    let mut new = old.clone();
    new.wasm = guests::variant(&old.wasm, "new");
    new.config = "mode=ok build=2".to_owned();
    assert_eq!(plugin.reload(new).await.unwrap(), ReloadOutcome::Swapped);
    assert_ne!(plugin.version(), v1);

    let families = call.await.unwrap();
    assert_eq!(gauge(&families, "misbehave_build"), 1.0);
    assert_eq!(
        gauge(&plugin.collect().await.unwrap(), "misbehave_build"),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_party_redact_plugin_runs() {
    let Some(first) = pharos_artifacts::first_party()
        .iter()
        .find(|p| p.name == "redact")
    else {
        panic!("redact is not embedded");
    };
    let rt = runtime();
    let plugin = rt
        .load(PluginSpec {
            name: "redact".to_owned(),
            kind: Kind::Relabeler,
            wasm: Arc::from(first.wasm),
            origin: "embedded".to_owned(),
            config: r#"{"labels": ["user_id"]}"#.to_owned(),
            limits: Limits::default(),
            allow_hosts: Vec::new(),
            read_dirs: Vec::new(),
        })
        .await
        .unwrap();
    let outcomes = plugin
        .relabel(&[series(&[("__name__", "up"), ("user_id", "alice")])])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [Outcome::Rewrite(series(&[
            ("__name__", "up"),
            ("user_id", "2bd806c9")
        ]))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reports_a_renamed_plugin_file_and_ignores_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("plugin.wasm");
    let (_watcher, mut changes) =
        pharos_plugin_host::watch::watch(std::slice::from_ref(&target), Duration::from_millis(100))
            .unwrap();
    let temporary = dir.path().join(".plugin.wasm.tmp");
    std::fs::write(&temporary, b"new version").unwrap();
    std::fs::write(dir.path().join("notes.txt~"), b"editor backup").unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(30), changes.recv())
        .await
        .expect("the watcher reported nothing")
        .unwrap();
    assert_eq!(batch, [target]);
}
