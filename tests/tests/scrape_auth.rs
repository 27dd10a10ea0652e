//! Scraping through TLS and credentials: `tls_config` (CA, client certificate, server
//! name, insecure_skip_verify) against a real `openssl s_server` that demands a client
//! certificate, and `basic_auth` / `authorization` against a server that checks them.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, Reply, free_port, require_tool, serve, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(require_tool("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `pharos.test` and a client certificate, all signed
/// by the CA.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Pharos Test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    // Extensions make them X.509 v3, which rustls requires.
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:pharos.test\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in [
        ("server", Some("server.ext")),
        ("client", Some("client.ext")),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if let Some(ext) = ext {
            args.extend(["-extfile".into(), ext.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(dir, &args);
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn targets(p: &Pharos) -> Value {
    let (_, body) = p.get("/api/v1/targets").unwrap();
    serde_json::from_str::<Value>(&body).unwrap()["data"]["activeTargets"].clone()
}

/// A job's target, or `null` while discovery has not reported it yet (just after
/// start-up), which the waits below treat as "not there yet".
fn target<'a>(all: &'a Value, job: &str) -> &'a Value {
    static MISSING: Value = Value::Null;
    all.as_array()
        .and_then(|a| a.iter().find(|t| t["scrapePool"] == job))
        .unwrap_or(&MISSING)
}

#[test]
fn tls_config_verifies_the_server_and_presents_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certificates(d);
    std::fs::write(d.join("metrics"), "tls_metric 1\n").unwrap();
    let port = free_port();
    // -WWW serves files from the working directory; -Verify demands a client
    // certificate signed by the CA.
    let server = Server(
        Command::new(require_tool("openssl"))
            .args([
                "s_server",
                "-quiet",
                "-WWW",
                "-accept",
                &port.to_string(),
                "-cert",
                "server.pem",
                "-key",
                "server.key",
                "-CAfile",
                "ca.pem",
                "-Verify",
                "1",
            ])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(Duration::from_secs(10), || {
        Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    })
    .unwrap();

    let p = |name: &str| d.join(name).display().to_string();
    let job = |name: &str, tls: String| {
        format!(
            r#"{{"job_name": "{name}", "scheme": "https", "scrape_interval": "1s", "tls_config": {tls},
                "static_configs": [{{"targets": ["127.0.0.1:{port}"]}}]}}"#
        )
    };
    let client = format!(
        r#""cert_file": "{}", "key_file": "{}""#,
        p("client.pem"),
        p("client.key")
    );
    let jobs = [
        job(
            "verified",
            format!(
                r#"{{"ca_file": "{}", "server_name": "pharos.test", {client}}}"#,
                p("ca.pem")
            ),
        ),
        job(
            "insecure",
            format!(r#"{{"insecure_skip_verify": true, {client}}}"#),
        ),
        job(
            "untrusted",
            format!(r#"{{"server_name": "pharos.test", {client}}}"#),
        ),
        job(
            "wrong_name",
            format!(r#"{{"ca_file": "{}", {client}}}"#, p("ca.pem")),
        ),
        job(
            "no_client_cert",
            format!(
                r#"{{"ca_file": "{}", "server_name": "pharos.test"}}"#,
                p("ca.pem")
            ),
        ),
    ];
    let config = format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}}, "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{}]}}"#,
        jobs.join(",")
    );
    let pharos = Pharos::start(&config).unwrap();
    pharos.wait_ready().unwrap();
    let expect = [
        ("verified", "up"),
        ("insecure", "up"),
        ("untrusted", "down"),
        ("wrong_name", "down"),
        ("no_client_cert", "down"),
    ];
    let result = wait_for(Duration::from_secs(30), || {
        let all = targets(&pharos);
        Ok(expect
            .iter()
            .all(|(job, health)| target(&all, job)["health"] == *health))
    });
    let all = targets(&pharos);
    result.unwrap_or_else(|e| panic!("{e:#}: {all:#}"));
    let err = |job: &str| target(&all, job)["lastError"].as_str().unwrap().to_owned();
    assert!(
        err("untrusted").contains("certificate"),
        "{}",
        err("untrusted")
    );
    assert!(
        err("wrong_name").contains("certificate"),
        "{}",
        err("wrong_name")
    );
    assert!(!err("no_client_cert").is_empty());
    drop(server);
}

#[test]
fn basic_auth_and_bearer_credentials_are_sent() {
    let addr = serve(|req| {
        // "user:secret" in base64, and the bearer token.
        let auth = req.header("authorization").unwrap_or_default();
        Some(
            if auth == "Basic dXNlcjpzZWNyZXQ=" || auth == "Bearer t0ken" {
                Reply::metrics("authed 1\n")
            } else {
                Reply::with("401 Unauthorized", "text/plain", "")
            },
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "secret\n").unwrap();
    let job = |name: &str, auth: &str| {
        format!(
            r#"{{"job_name": "{name}", "scrape_interval": "1s", {auth} "static_configs": [{{"targets": ["{addr}"]}}]}}"#
        )
    };
    let jobs = [
        job(
            "basic",
            &format!(
                r#""basic_auth": {{"username": "user", "password_file": "{}"}},"#,
                password_file.display()
            ),
        ),
        job("bearer", r#""authorization": {"credentials": "t0ken"},"#),
        job("wrong", r#""authorization": {"credentials": "nope"},"#),
    ];
    let config = format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}}, "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{}]}}"#,
        jobs.join(",")
    );
    let pharos = Pharos::start(&config).unwrap();
    pharos.wait_ready().unwrap();
    wait_for(Duration::from_secs(20), || {
        let all = targets(&pharos);
        Ok(target(&all, "basic")["health"] == "up"
            && target(&all, "bearer")["health"] == "up"
            && target(&all, "wrong")["health"] == "down")
    })
    .unwrap();
    let all = targets(&pharos);
    assert!(
        target(&all, "wrong")["lastError"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{all:#}"
    );
}
