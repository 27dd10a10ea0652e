//! What the benches that drive a server over HTTP share: knobs from the environment,
//! free loopback ports, readiness, a child server killed on drop and a keep-alive
//! client. Benches panic on a broken setup; nothing here handles user input.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The number in environment variable `name`, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

/// A free port on 127.0.0.1 (free when asked; the server binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `host` answers `GET /-/ready` with 200, as Pharos and the Prometheus
/// tools all do.
pub fn wait_ready(host: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(host) {
            let _ = s.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{host} did not become ready");
}

/// A server under test, killed when dropped.
pub struct Server {
    pub name: &'static str,
    pub child: Child,
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `cmd` with its output discarded and waits until it is ready on
    /// `127.0.0.1:port`; `dir` (its data) lives as long as the server. `hint` says
    /// how to get the program when it cannot be started.
    pub fn start(
        name: &'static str,
        cmd: &mut Command,
        dir: tempfile::TempDir,
        port: u16,
        within: Duration,
        hint: &str,
    ) -> Server {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e} {hint}"));
        let host = format!("127.0.0.1:{port}");
        wait_ready(&host, within);
        Server {
            name,
            child,
            host,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection sending one request at a time.
pub struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    pub fn open(host: &str) -> Conn {
        let s = TcpStream::connect(host).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            stream: BufReader::new(s),
            host: host.to_owned(),
        }
    }

    /// Sends `body` and reads the whole answer; returns its status.
    pub fn send(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> u16 {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut rest = vec![0; length];
        self.stream.read_exact(&mut rest).unwrap();
        status
    }
}
