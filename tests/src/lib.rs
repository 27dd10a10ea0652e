//! Harness for black-box tests: runs the real `pharos` binary on a loopback port and
//! talks to it over HTTP, as an operator's tools would.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `pharos` binary built alongside these tests (`PHAROS_BIN` overrides).
pub fn pharos_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PHAROS_BIN") {
        return PathBuf::from(p);
    }
    // Test executables live in <target>/<profile>/deps; the binary one level up.
    let exe = std::env::current_exe().unwrap_or_default();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("pharos"))
        .unwrap_or_default();
    assert!(
        bin.is_file(),
        "the pharos binary is not at {}: run the tests with `cargo test --workspace` \
         (the pharos package's own integration tests make cargo build it), or set PHAROS_BIN",
        bin.display()
    );
    bin
}

/// A tool from the system the compatibility tests depend on; missing tools fail the
/// test loudly, naming the script that installs them.
pub fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!("`{name}` is not installed: run scripts/setup, which installs it"),
    }
}

/// A running `pharos run` process, killed when dropped.
pub struct Pharos {
    child: Child,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Pharos {
    /// Starts Pharos with `config` (a JSON document) written to a file in a fresh
    /// directory. The document should listen on `127.0.0.1:0`; the port actually bound
    /// is read from the start-up log.
    pub fn start(config: &str) -> anyhow::Result<Pharos> {
        Self::start_with_config_and_args(config, &[])
    }

    /// [`Pharos::start`] with more arguments after the configuration (flags such as
    /// `--web.enable-admin-api`).
    pub fn start_with_config_and_args(config: &str, extra: &[&str]) -> anyhow::Result<Pharos> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("pharos.json");
        std::fs::write(&config_path, config)?;
        let mut args = vec![
            "run".to_string(),
            "--config".to_string(),
            config_path.display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn(dir, config_path, &args)
    }

    /// Starts Pharos with the given arguments after `run` (for the embedded default).
    pub fn start_with_args(args: &[&str]) -> anyhow::Result<Pharos> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("unused.json");
        let mut all = vec!["run".to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        Self::spawn(dir, config_path, &all)
    }

    fn spawn(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        args: &[String],
    ) -> anyhow::Result<Pharos> {
        let mut child = Command::new(pharos_bin())
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pharos")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().context("no stderr")?;
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[pharos] {line}");
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut p = Pharos {
            child,
            dir,
            config_path,
            base: String::new(),
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(addr) = p.log_lines().iter().find_map(|l| listening_address(l)) {
                p.base = format!("http://{addr}");
                break;
            }
            if let Some(status) = p.child.try_wait()? {
                bail!(
                    "pharos exited during start-up ({status}):\n{}",
                    p.log_lines().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "pharos did not report its address:\n{}",
                    p.log_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(p)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `/-/ready` answers 200.
    pub fn wait_ready(&self) -> anyhow::Result<()> {
        wait_for(Duration::from_secs(30), || {
            Ok(self.get("/-/ready")?.0 == 200)
        })
    }

    /// GET `path`: the status code and the body.
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        request("GET", &format!("{}{path}", self.base))
    }

    /// POST an empty body to `path`.
    pub fn post(&self, path: &str) -> anyhow::Result<(u16, String)> {
        request("POST", &format!("{}{path}", self.base))
    }

    /// The value of an unlabelled series in `/metrics`.
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let (_, body) = self.get("/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .with_context(|| format!("{name} missing from /metrics"))?
            .trim()
            .parse()
            .with_context(|| format!("{name} is not a number"))
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{sig} failed");
        }
        Ok(())
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("pharos did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pharos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns true or the time is up.
pub fn wait_for(
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    while Instant::now() < deadline {
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => last_err = None,
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match last_err {
        Some(e) => Err(e.context(format!("condition not met within {timeout:?}"))),
        None => bail!("condition not met within {timeout:?}"),
    }
}

/// One HTTP request; non-2xx answers are returned, not turned into errors.
pub fn request(method: &str, url: &str) -> anyhow::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let response = match method {
        "GET" => agent.get(url).call()?,
        "POST" => agent.post(url).send_empty()?,
        "PUT" => agent.put(url).send_empty()?,
        other => bail!("unsupported method {other}"),
    };
    let status = response.status().as_u16();
    let body = response.into_body().read_to_string()?;
    Ok((status, body))
}

/// One request with a JSON body; non-2xx answers are returned, not turned into errors.
pub fn send_json(method: &str, url: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let response = match method {
        "POST" => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)?,
        "DELETE" => agent.delete(url).call()?,
        other => bail!("unsupported method {other}"),
    };
    let status = response.status().as_u16();
    let body = response.into_body().read_to_string()?;
    Ok((status, body))
}

/// Finds the bound address in the daemon's "listening" log line.
fn listening_address(line: &str) -> Option<String> {
    if !line.contains("listening") {
        return None;
    }
    // logfmt: `address=127.0.0.1:9090`; JSON: `"address":"127.0.0.1:9090"`.
    let rest = line
        .split_once("address=")
        .or_else(|| line.split_once("\"address\":"))?
        .1;
    let addr: String = rest
        .trim_start_matches('"')
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
        .collect();
    (!addr.is_empty()).then_some(addr)
}

/// A free TCP port on 127.0.0.1 (for tools that must be told their port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// What a fixture HTTP server was asked.
#[derive(Debug)]
pub struct FixtureRequest {
    /// `GET`, `POST`, …
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, when the request had a `Content-Length`.
    pub body: Vec<u8>,
}

impl FixtureRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fixture's answer.
#[derive(Debug)]
pub struct Reply {
    /// `200 OK`, `401 Unauthorized`, …
    pub status: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A 200 with a text-format body.
    pub fn metrics(body: impl Into<Vec<u8>>) -> Reply {
        Reply::with("200 OK", "text/plain; version=0.0.4", body)
    }

    pub fn with(status: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: status.into(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

/// Serves HTTP/1.1 on a loopback port, one thread per connection, answering each request
/// with `handler` (`None` closes the connection without a reply). Returns `host:port`.
/// Scrape targets and discovery endpoints in the tests are these.
pub fn serve(handler: impl Fn(&FixtureRequest) -> Option<Reply> + Send + Sync + 'static) -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a fixture server: {e}"));
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(read_half);
                let mut first = String::new();
                if reader.read_line(&mut first).unwrap_or(0) == 0 {
                    return;
                }
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let method = first.split_whitespace().next().unwrap_or("").to_owned();
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let chunked = headers
                    .iter()
                    .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
                let mut body = vec![0; length];
                if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                    return;
                }
                if chunked {
                    // Chunks: a hexadecimal size line, the data, CRLF; size 0 ends.
                    loop {
                        let mut size = String::new();
                        if reader.read_line(&mut size).unwrap_or(0) == 0 {
                            return;
                        }
                        let hex = size.trim().split(';').next().unwrap_or("");
                        let Ok(n) = usize::from_str_radix(hex, 16) else {
                            return;
                        };
                        let mut chunk = vec![0; n + 2];
                        if std::io::Read::read_exact(&mut reader, &mut chunk).is_err() {
                            return;
                        }
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                }
                let Some(reply) = handler(&FixtureRequest {
                    method,
                    path,
                    headers,
                    body,
                }) else {
                    return;
                };
                let mut out = stream;
                let mut head = format!("HTTP/1.1 {}\r\n", reply.status);
                for (n, v) in &reply.headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.body.len()
                ));
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&reply.body);
                let _ = out.flush();
            });
        }
    });
    addr
}

/// A Debian `prometheus` on a free loopback port with `config` (JSON, which is YAML),
/// killed when dropped.
pub struct Prometheus {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(config: &str) -> Prometheus {
        Prometheus::start_with_args(config, &[])
    }

    /// [`Prometheus::start`] with more flags (`--rules.alert.resend-delay=1s`, ...).
    pub fn start_with_args(config: &str, extra: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, config).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .unwrap_or_else(|e| panic!("prometheus.log: {e}"));
        let child = Command::new(require_tool("prometheus"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus: {e}"));
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
