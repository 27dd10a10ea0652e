//! Helpers shared by the router's acceptance and side-by-side tests: a mock webhook
//! that records what it is sent and when, alerts with times relative to a test's start
//! (as upstream's acceptance tests write them), and a Debian Alertmanager process.

#![allow(dead_code)] // Each test crate that includes this module uses part of it.

use pharos_tests::{Reply, free_port, require_tool, serve, wait_for};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One request a mock webhook received.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    pub path: String,
    /// The status the webhook answered with (`200 OK`, `500 ...`).
    pub status: &'static str,
    /// Whether the answer was held back past the sender's timeout (see [`Answer`]).
    pub slow: bool,
    pub body: Value,
}

/// How a mock webhook answers one request.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: &'static str,
    /// Held back this long before answering.
    pub delay: Duration,
    /// The delay is longer than the sender waits: the call counts as not delivered.
    pub slow: bool,
}

impl Answer {
    pub const OK: Answer = Answer {
        status: "200 OK",
        delay: Duration::ZERO,
        slow: false,
    };

    pub fn status(status: &'static str) -> Answer {
        Answer {
            status,
            ..Answer::OK
        }
    }

    /// A 200 sent only after `delay`, longer than the sender's timeout.
    pub fn too_late(delay: Duration) -> Answer {
        Answer {
            status: "200 OK",
            delay,
            slow: true,
        }
    }
}

/// A mock webhook on a loopback port.
#[derive(Clone)]
pub struct Hook {
    pub addr: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Hook {
    /// Answers every request with a 200.
    pub fn new() -> Hook {
        Hook::answering(|_| Answer::OK)
    }

    /// Answers the n-th request (from 0) as `answer` decides.
    pub fn answering(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Hook {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let sink = calls.clone();
        let count = Arc::new(Mutex::new(0usize));
        let addr = serve(move |req| {
            let at = Instant::now();
            let n = {
                let mut c = count.lock().unwrap_or_else(|e| e.into_inner());
                *c += 1;
                *c - 1
            };
            let a = answer(n);
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(Call {
                at,
                path: req.path.clone(),
                status: a.status,
                slow: a.slow,
                body,
            });
            std::thread::sleep(a.delay);
            Some(Reply::with(a.status, "text/plain", ""))
        });
        Hook { addr, calls }
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The notifications delivered (answered 2xx in time): seconds after `t0`, payload.
    pub fn delivered(&self, t0: Instant) -> Vec<(f64, Value)> {
        self.calls()
            .into_iter()
            .filter(|c| c.status.starts_with('2') && !c.slow)
            .map(|c| (c.at.saturating_duration_since(t0).as_secs_f64(), c.body))
            .collect()
    }
}

/// The start of a scenario: times in it are seconds after this.
#[derive(Clone, Copy)]
pub struct Start {
    pub instant: Instant,
    pub wall: SystemTime,
}

impl Start {
    pub fn now() -> Start {
        Start {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Sleeps until `secs` after the start.
    pub fn sleep_until(&self, secs: f64) {
        let at = self.instant + Duration::from_secs_f64(secs);
        if let Some(d) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.instant.elapsed().as_secs_f64()
    }

    /// The RFC 3339 time `secs` after the start, in milliseconds.
    pub fn rfc3339(&self, secs: f64) -> String {
        let t = self.wall + Duration::from_secs_f64(secs);
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let ms = i64::try_from(ms).unwrap_or_default();
        rfc3339_ms(ms)
    }

    /// Seconds after the start of an RFC 3339 time as Go prints it (`None` for Go's
    /// zero time or text that is not a time).
    pub fn secs_of(&self, text: &str) -> Option<f64> {
        let ms = parse_rfc3339_ms(text)?;
        let base = self.wall.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        Some(ms as f64 / 1000.0 - base)
    }
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's civil algorithm.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn rfc3339_ms(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff...]Z`; Go's zero time
/// (year 1) is `None`.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if y < 1970 {
        return None;
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (h, mi, s) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    let frac_ms = format!("{frac:0<3}");
    let ms = num(frac_ms.get(..3)?)?;
    Some(((days_from_civil(y, mo, da) * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

/// An alert as a scenario posts it: labels, and optionally annotations and times in
/// seconds after the scenario's start (`Active(start[, end])` upstream).
#[derive(Clone, Debug)]
pub struct AlertSpec {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub starts: Option<f64>,
    pub ends: Option<f64>,
}

/// An alert with these label pairs.
pub fn alert(labels: &[(&str, &str)]) -> AlertSpec {
    AlertSpec {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        annotations: Vec::new(),
        starts: None,
        ends: None,
    }
}

impl AlertSpec {
    pub fn active(mut self, starts: f64) -> Self {
        self.starts = Some(starts);
        self
    }

    pub fn resolved(mut self, starts: f64, ends: f64) -> Self {
        self.starts = Some(starts);
        self.ends = Some(ends);
        self
    }

    pub fn annotate(mut self, name: &str, value: &str) -> Self {
        self.annotations.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(&self, start: &Start) -> Value {
        let map = |pairs: &[(String, String)]| -> Value {
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let mut v = json!({"labels": map(&self.labels), "annotations": map(&self.annotations)});
        if let Some(s) = self.starts {
            v["startsAt"] = start.rfc3339(s).into();
        }
        if let Some(e) = self.ends {
            v["endsAt"] = start.rfc3339(e).into();
        }
        v
    }
}

/// POSTs `alerts` to `/api/v2/alerts` of the Alertmanager API at `base`.
pub fn push(base: &str, start: &Start, alerts: &[AlertSpec]) {
    let body = Value::Array(alerts.iter().map(|a| a.json(start)).collect()).to_string();
    let got = pharos_tests::send_json("POST", &format!("{base}/api/v2/alerts"), &body);
    assert!(matches!(got, Ok((200, _))), "{base}: {got:?}");
}

/// What a notification says of one alert: its labels joined (`k=v,...`), status, and
/// start and end in seconds after the scenario's start (end `None` while firing).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub labels: String,
    pub status: String,
    pub starts: Option<f64>,
    pub ends: Option<f64>,
    pub annotations: String,
}

fn joined(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The alerts of a webhook payload, sorted by their labels.
pub fn seen(payload: &Value, start: &Start) -> Vec<Seen> {
    let mut out: Vec<Seen> = payload["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| Seen {
                    labels: joined(&x["labels"]),
                    status: x["status"].as_str().unwrap_or("").to_owned(),
                    starts: start.secs_of(x["startsAt"].as_str().unwrap_or("")),
                    ends: start.secs_of(x["endsAt"].as_str().unwrap_or("")),
                    annotations: joined(&x["annotations"]),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// A Debian `prometheus-alertmanager` on free loopback ports with `config` (YAML),
/// gossip disabled, killed when dropped.
pub struct Alertmanager {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start(config: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, config).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log"))
            .unwrap_or_else(|e| panic!("alertmanager.log: {e}"));
        let child = Command::new(require_tool("prometheus-alertmanager"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus-alertmanager: {e}"));
        let am = Alertmanager {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let ready = format!("{}/-/ready", am.base);
        wait_for(Duration::from_secs(30), || {
            Ok(pharos_tests::request("GET", &ready)?.0 == 200)
        })
        .unwrap_or_else(|e| panic!("alertmanager not ready: {e:#}"));
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
