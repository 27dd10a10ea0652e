//! The `email` notifier, black-box: a Pharos router whose receiver sends email
//! through the first-party plugin to an SMTP server (aiosmtpd, started by each
//! test on a free loopback port, see `testdata/smtp_sink.py`).

use pharos_tests::{Pharos, free_port, require_tool, send_json, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running SMTP sink, killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sink {
    /// Starts the sink; it answers 451 to the first `fail_first` messages.
    fn start(fail_first: u32) -> Sink {
        Sink::start_with(fail_first, &[])
    }

    /// Starts the sink, with STARTTLS required when `tls` names a certificate and
    /// key file, and a client certificate asked for when a third file names the CA
    /// that verifies it.
    fn start_with(fail_first: u32, tls: &[&Path]) -> Sink {
        let python = require_tool("python3");
        let probe = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .unwrap_or_else(|e| panic!("python3: {e}"));
        assert!(
            probe.status.success(),
            "the Python package aiosmtpd is not installed: run scripts/setup, which installs it ({})",
            String::from_utf8_lossy(&probe.stderr)
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let out = dir.path().join("messages.jsonl");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&out)
            .arg(fail_first.to_string())
            .args(tls)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut first);
        }
        let sink = Sink {
            child,
            port,
            out,
            _dir: dir,
        };
        assert_eq!(first.trim(), "ready", "the SMTP sink did not start");
        sink
    }

    /// Every delivery attempt so far, in order.
    fn attempts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A router sending every alert, grouped by `alertname`, to one email receiver;
/// `allow` is the plugin's allow-list and `entry` the receiver entry's config.
fn router(allow: &str, entry: &str) -> String {
    router_entries(allow, &[entry])
}

/// [`router`] with an email entry for each of `entries` in the receiver.
fn router_entries(allow: &str, entries: &[&str]) -> String {
    let notifiers: Vec<String> = entries
        .iter()
        .map(|e| format!(r#"{{"plugin": "email", "config": {e}}}"#))
        .collect();
    let notifiers = notifiers.join(", ");
    format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "plugins": [{{"name": "email", "kind": "notifier", "allow_hosts": [{allow}],
                          "limits": {{"timeout": "5s"}},
                          "config": {{"from": "Pharos <pharos@example.com>", "require_tls": false}}}}],
            "route": {{"receiver": "mail", "group_by": ["alertname"],
                       "group_wait": "200ms", "group_interval": "10s"}},
            "receivers": [{{"name": "mail", "notifiers": [{notifiers}]}}]}}"#
    )
}

fn start(config: &str) -> Pharos {
    let p = Pharos::start(config).unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    p
}

fn post(p: &Pharos, alerts: &str) {
    let got = send_json("POST", &format!("{}/api/v2/alerts", p.base), alerts);
    assert!(matches!(got, Ok((200, _))), "{got:?}");
}

/// The message's header block as (name, value) pairs, and its body.
fn split_message(data: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = data.split_once("\r\n\r\n").unwrap_or((data, ""));
    let headers = head
        .split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    (headers, body.to_owned())
}

/// Quoted-printable text decoded (soft line breaks joined, `=XX` bytes restored).
fn unquote(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| joined.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or_else(|| panic!("no {name} header in {headers:?}"), |(_, v)| v)
}

/// An alert becomes one email: the envelope (from the plugin's config merged
/// with the entry's), AUTH, upstream's headers, and a body that survived
/// dot-stuffing.
#[test]
fn an_alert_is_delivered_as_an_email() {
    let sink = Sink::start(0);
    let host = format!("127.0.0.1:{}", sink.port);
    let entry = format!(
        r#"{{"to": "Ops <ops@example.com>, dev@example.com", "smarthost": "{host}",
             "hello": "pharos.test", "auth_username": "pharos", "auth_password": "secret",
             "headers": {{"x-team": "{{{{ .GroupLabels.alertname }}}}-storage"}},
             "text": "{{{{ template \"email.default.text\" . }}}}"}}"#
    );
    let p = start(&router(&format!(r#""{host}""#), &entry));
    post(
        &p,
        r#"[{"labels": {"alertname": "DiskFull", "instance": "db1:9100"},
             "annotations": {"summary": "disk full\n.hidden line starts with a dot"}}]"#,
    );
    wait_for(Duration::from_secs(15), || Ok(!sink.attempts().is_empty()))
        .unwrap_or_else(|e| panic!("no email arrived: {e}; log: {:?}", p.log_lines()));
    let attempts = sink.attempts();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let m = &attempts[0];
    assert_eq!(m["mail_from"], "pharos@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.com", "dev@example.com"])
    );
    assert_eq!(m["login"], "pharos");
    // The sink lists CRAM-MD5 first; without auth_secret the plugin passes it over.
    assert_eq!(m["cram_md5"], false);
    let data = m["data"].as_str().unwrap_or("");
    let (headers, body) = split_message(data);
    assert_eq!(
        header(&headers, "Subject"),
        "[FIRING:1] DiskFull (db1:9100)"
    );
    assert_eq!(
        header(&headers, "To"),
        "Ops <ops@example.com>, dev@example.com"
    );
    assert_eq!(header(&headers, "From"), "Pharos <pharos@example.com>");
    assert_eq!(header(&headers, "X-Team"), "DiskFull-storage");
    assert_eq!(header(&headers, "MIME-Version"), "1.0");
    let id = header(&headers, "Message-Id");
    assert!(id.starts_with('<') && id.ends_with("@pharos.test>"), "{id}");
    let date = header(&headers, "Date");
    assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");
    let content_type = header(&headers, "Content-Type");
    let boundary = content_type
        .strip_prefix("multipart/alternative;  boundary=")
        .unwrap_or_else(|| panic!("{content_type}"));
    assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
    assert!(body.ends_with(&format!("--{boundary}--\r\n")), "{body}");
    // The text part (asked for), then the html part (the default), preferred last.
    let text_at = body.find("Content-Type: text/plain; charset=UTF-8");
    let html_at = body.find("Content-Type: text/html; charset=UTF-8");
    assert!(
        matches!((text_at, html_at), (Some(t), Some(h)) if t < h),
        "{body}"
    );
    let decoded = unquote(&body);
    assert!(decoded.contains("    instance = db1:9100\r\n"), "{decoded}");
    assert!(decoded.contains(">db1:9100</td>"), "{decoded}");
    // The summary's second line starts with a dot: sent as `..hidden`, the
    // server took one dot away again.
    assert!(
        decoded.contains("* disk full\r\n.hidden line starts with a dot\r\n"),
        "{decoded}"
    );
}

/// A smarthost the plugin's allow_hosts does not list is refused by the host:
/// nothing reaches the server, and the log names the plugin and the reason.
#[test]
fn a_smarthost_not_allowed_is_refused() {
    let sink = Sink::start(0);
    let entry = format!(
        r#"{{"to": "ops@example.com", "smarthost": "127.0.0.1:{}"}}"#,
        sink.port
    );
    // The same address, another port.
    let p = start(&router(r#""127.0.0.1:1""#, &entry));
    post(&p, r#"[{"labels": {"alertname": "DiskFull"}}]"#);
    let refused = |line: &String| {
        line.contains("notify failed") && line.contains("email") && line.contains("allow_hosts")
    };
    wait_for(Duration::from_secs(15), || {
        Ok(p.log_lines().iter().any(refused))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", p.log_lines()));
    let failed = p
        .metric("pharos_router_notifications_failed_total{receiver=\"mail\",plugin=\"email\"}")
        .unwrap_or(-1.0);
    assert_eq!(failed, 1.0);
    assert!(sink.attempts().is_empty(), "{:?}", sink.attempts());
}

/// A 451 at the end of DATA is transient: the router retries and the second
/// attempt is delivered.
#[test]
fn a_4xx_reply_is_retried() {
    let sink = Sink::start(1);
    let host = format!("127.0.0.1:{}", sink.port);
    let entry = format!(r#"{{"to": "ops@example.com", "smarthost": "{host}"}}"#);
    let p = start(&router(&format!(r#""{host}""#), &entry));
    post(&p, r#"[{"labels": {"alertname": "DiskFull"}}]"#);
    wait_for(Duration::from_secs(15), || Ok(sink.attempts().len() >= 2))
        .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", sink.attempts(), p.log_lines()));
    let attempts = sink.attempts();
    let rejected: Vec<bool> = attempts
        .iter()
        .map(|a| a["rejected"].as_bool().unwrap_or(true))
        .collect();
    assert_eq!(rejected, [true, false], "{attempts:?}");
    // The same notification both times (each attempt builds its message anew,
    // with its own Message-Id and Date).
    let subject = |a: &Value| {
        let (headers, _) = split_message(a["data"].as_str().unwrap_or(""));
        header(&headers, "Subject").to_owned()
    };
    assert_eq!(subject(&attempts[0]), "[FIRING:1] DiskFull");
    assert_eq!(subject(&attempts[1]), subject(&attempts[0]));
    let sent = p
        .metric("pharos_router_notifications_total{receiver=\"mail\",plugin=\"email\"}")
        .unwrap_or(-1.0);
    assert!(sent >= 1.0, "{sent}");
}

/// A self-signed P-256 certificate for 127.0.0.1 and localhost with the common name
/// `name`, written to `<name>.pem` and `<name>-key.pem` in `dir`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    let made = Command::new(require_tool("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// With `require_tls` (upstream's default) the plugin upgrades the session with
/// STARTTLS, verifying the server against the CA the configuration gives;
/// without that CA the certificate is refused and nothing is sent.
#[test]
fn require_tls_upgrades_with_starttls() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (cert, key) = self_signed(dir.path(), "server");
    let pem = std::fs::read_to_string(&cert).unwrap_or_default();
    let sink = Sink::start_with(0, &[&cert, &key]);
    let host = format!("127.0.0.1:{}", sink.port);
    let entry = |ca: &str| {
        format!(
            r#"{{"to": "ops@example.com", "smarthost": "{host}", "require_tls": true,
                 "auth_username": "pharos", "auth_password": "secret",
                 "tls_config": {{"ca": {}}}}}"#,
            serde_json::Value::String(ca.to_owned())
        )
    };

    // Mozilla's roots do not hold the test CA: the handshake fails for good.
    let p = start(&router(&format!(r#""{host}""#), &entry("")));
    post(&p, r#"[{"labels": {"alertname": "DiskFull"}}]"#);
    wait_for(Duration::from_secs(15), || {
        Ok(p.log_lines()
            .iter()
            .any(|l| l.contains("notify failed") && l.contains("TLS handshake")))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", p.log_lines()));
    assert!(sink.attempts().is_empty(), "{:?}", sink.attempts());
    drop(p);

    let p = start(&router(&format!(r#""{host}""#), &entry(&pem)));
    post(&p, r#"[{"labels": {"alertname": "DiskFull"}}]"#);
    wait_for(Duration::from_secs(15), || Ok(!sink.attempts().is_empty()))
        .unwrap_or_else(|e| panic!("no email arrived: {e}; log: {:?}", p.log_lines()));
    let attempts = sink.attempts();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["tls"], true);
    assert_eq!(attempts[0]["login"], "pharos");
    assert_eq!(
        attempts[0]["rcpt_tos"],
        serde_json::json!(["ops@example.com"])
    );
}

/// `tls_config` as alertmanager.yml writes it: `ca_file`, `cert_file` and `key_file`
/// (read by the host, since a plugin cannot read files) verify the server and present
/// a client certificate the server verifies; `insecure_skip_verify` sends over TLS to
/// a server no configured CA vouches for; `max_version` and `min_version` bound the
/// version each entry speaks.
#[test]
fn tls_config_files_client_certificates_and_skip_verify() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (cert, key) = self_signed(dir.path(), "server");
    let (client_cert, client_key) = self_signed(dir.path(), "pharos-client");
    let sink = Sink::start_with(0, &[&cert, &key, &client_cert]);
    let host = format!("127.0.0.1:{}", sink.port);
    let path = |p: &Path| Value::String(p.display().to_string());
    let files = format!(
        r#"{{"to": "files@example.com", "smarthost": "{host}", "require_tls": true,
             "tls_config": {{"ca_file": {}, "cert_file": {}, "key_file": {},
                             "max_version": "TLS12"}}}}"#,
        path(&cert),
        path(&client_cert),
        path(&client_key)
    );
    let skip = format!(
        r#"{{"to": "skip@example.com", "smarthost": "{host}", "require_tls": true,
             "tls_config": {{"insecure_skip_verify": true, "min_version": "TLS13"}}}}"#
    );
    let p = start(&router_entries(&format!(r#""{host}""#), &[&files, &skip]));
    post(&p, r#"[{"labels": {"alertname": "DiskFull"}}]"#);
    wait_for(Duration::from_secs(15), || Ok(sink.attempts().len() >= 2))
        .unwrap_or_else(|e| panic!("not two emails: {e}; log: {:?}", p.log_lines()));
    let attempts = sink.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    let to = |rcpt: &str| {
        attempts
            .iter()
            .find(|a| a["rcpt_tos"][0] == rcpt)
            .unwrap_or_else(|| panic!("nothing to {rcpt}: {attempts:?}"))
    };
    assert_eq!(to("files@example.com")["tls"], true);
    assert_eq!(to("files@example.com")["client"], "pharos-client");
    assert_eq!(to("files@example.com")["tls_version"], "TLSv1.2");
    assert_eq!(to("skip@example.com")["tls_version"], "TLSv1.3");
    assert_eq!(to("skip@example.com")["tls"], true);
    assert_eq!(to("skip@example.com")["client"], Value::Null);
}

/// `auth_secret` (here from `auth_secret_file`, read by the host) logs in with
/// CRAM-MD5 when the server lists it first, as upstream; a wrong secret is refused
/// by the server and nothing is sent for that entry.
#[test]
fn cram_md5_with_auth_secret() {
    let sink = Sink::start(0);
    let host = format!("127.0.0.1:{}", sink.port);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "shared\n").unwrap_or_else(|e| panic!("{e}"));
    let right = format!(
        r#"{{"to": "right@example.com", "smarthost": "{host}", "auth_username": "pharos",
             "auth_secret_file": {}}}"#,
        Value::String(secret.display().to_string())
    );
    let wrong = format!(
        r#"{{"to": "wrong@example.com", "smarthost": "{host}", "auth_username": "pharos",
             "auth_secret": "guess"}}"#
    );
    let p = start(&router_entries(&format!(r#""{host}""#), &[&right, &wrong]));
    post(&p, r#"[{"labels": {"alertname": "DiskFull"}}]"#);
    wait_for(Duration::from_secs(15), || {
        Ok(!sink.attempts().is_empty()
            && p.log_lines()
                .iter()
                .any(|l| l.contains("notify failed") && l.contains("AUTH CRAM-MD5")))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}; log: {:?}", sink.attempts(), p.log_lines()));
    let attempts = sink.attempts();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        attempts[0]["rcpt_tos"],
        serde_json::json!(["right@example.com"])
    );
    assert_eq!(attempts[0]["login"], "pharos");
    assert_eq!(attempts[0]["cram_md5"], true);
}
