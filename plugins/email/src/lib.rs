//! `email`: a notifier that sends each notification as an email through an SMTP
//! smarthost, as Alertmanager's `email_configs` do.
//!
//! ```json
//! {"to": "oncall@example.com", "from": "pharos@example.com",
//!  "smarthost": "mail.example.com:25", "require_tls": false,
//!  "auth_username": "pharos", "auth_password": "...",
//!  "headers": {"Reply-To": "noc@example.com"}}
//! ```
//!
//! The keys are upstream's: `to`, `from`, `smarthost` (`host:port`, required to
//! send), `hello` (default `localhost`), `auth_username`, `auth_password`
//! (`auth_password_file` is read by the host, as every top-level `<key>_file`),
//! `auth_identity`, `auth_secret` (CRAM-MD5), `headers`, `html` (default
//! `{{ template "email.default.html" . }}`), `text` (default empty),
//! `require_tls` (default `true`), `tls_config` (`ca_file`: certificates to
//! trust instead of Mozilla's roots; `cert_file` and `key_file`: a client
//! certificate; `server_name`; `insecure_skip_verify`). The host reads every
//! `<key>_file` of the configuration into `<key>`, so the plugin receives `ca`,
//! `cert` and `key` as PEM text, which may also be given inline. `to`, `from`, header
//! values, `html` and `text` are templates (the SDK's Alertmanager templates;
//! the defaults are in `default.tmpl`); the `Subject` header defaults to
//! `{{ template "email.default.subject" . }}`. The smarthost's host must be in
//! the plugin's `allow_hosts`: the plugin connects over the host's TCP sockets.
//!
//! TLS as upstream: `require_tls` makes the plugin upgrade with STARTTLS after
//! EHLO (and fail if the server does not offer it), port 465 speaks TLS from
//! the first byte, and otherwise the dialogue is in clear text;
//! `tls_config.min_version` and `max_version` bound the versions (TLS 1.2 and
//! 1.3: rustls speaks no older one). AUTH uses the first
//! mechanism the server lists that the configuration can serve, as upstream:
//! CRAM-MD5 with `auth_secret`, PLAIN or LOGIN with `auth_password`.
//! `html` is rendered
//! with what its actions print HTML-escaped, as upstream's html/template escapes
//! it in text and quoted attributes (pipelines ending in `html` or `safeHtml`
//! are left as they are); Go's other contexts (scripts, URL filtering) are not
//! modelled.
//!
//! A 4xx reply and connection failures are transient (the router retries), a 5xx
//! reply is permanent, as is a connection the host refused (the smarthost is not
//! allowed) and a template that fails.

mod mime;
mod smtp;
mod tls;

use pharos_sdk::template::{Data, Templates};
use pharos_sdk::{Notification, Notifier, PluginError, config};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    smarthost: String,
    #[serde(default = "default_hello")]
    hello: String,
    #[serde(default)]
    auth_username: String,
    #[serde(default)]
    auth_password: String,
    #[serde(default)]
    auth_identity: String,
    #[serde(default)]
    auth_secret: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_html")]
    html: String,
    #[serde(default)]
    text: String,
    #[serde(default = "default_require_tls")]
    require_tls: bool,
    #[serde(default)]
    tls_config: TlsConfig,
}

/// Upstream's `tls_config`, with the files read by the host (see the module
/// documentation).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsConfig {
    /// PEM CA certificates to trust instead of Mozilla's roots (`ca_file`).
    #[serde(default)]
    ca: String,
    /// PEM client certificate chain (`cert_file`).
    #[serde(default)]
    cert: String,
    /// PEM private key of `cert` (`key_file`).
    #[serde(default)]
    key: String,
    /// The name the certificate must hold; the smarthost's host by default.
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    insecure_skip_verify: bool,
    #[serde(default)]
    min_version: String,
    #[serde(default)]
    max_version: String,
}

fn default_hello() -> String {
    "localhost".to_owned()
}

fn default_require_tls() -> bool {
    true
}

fn default_html() -> String {
    r#"{{ template "email.default.html" . }}"#.to_owned()
}

/// The subject when the configuration sets no `Subject` header.
const DEFAULT_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;

/// The plugin's default templates.
const DEFAULTS: &str = include_str!("default.tmpl");

/// A header name as Go's `textproto` canonicalises it (`reply-to` → `Reply-To`),
/// which is how upstream compares configured headers.
fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `host:port`, the port required, IPv6 in brackets.
fn split_host_port(smarthost: &str) -> Option<(&str, u16)> {
    let (host, port) = smarthost.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => {
            let v6 = bracketed.strip_suffix(']')?;
            v6.parse::<std::net::Ipv6Addr>().ok()?;
            v6
        }
        None if host.is_empty() || host.contains([':', '[', ']']) => return None,
        None => host,
    };
    Some((host, port.parse().ok()?))
}

/// The address part of each entry of an address list (`Name <a@x>, b@y`).
fn addresses(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| match (a.rfind('<'), a.rfind('>')) {
            (Some(open), Some(close)) if open < close => a[open + 1..close].trim().to_owned(),
            _ => a.to_owned(),
        })
        .collect()
}

/// Whether an address can go into `MAIL FROM:<...>` / `RCPT TO:<...>` as is.
fn plausible_address(a: &str) -> bool {
    !a.is_empty()
        && a.contains('@')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

struct Email {
    config: Config,
    /// TLS client settings, built at configure.
    tls: Arc<rustls::ClientConfig>,
    templates: Templates,
    /// Every header to send, canonical names, values as templates: the
    /// configured ones plus `Subject`, `To` and `From` where not configured.
    headers: BTreeMap<String, String>,
}

/// What one notification renders to.
struct Rendered {
    headers: Vec<(String, String)>,
    from: String,
    to: Vec<String>,
    text: String,
    html: String,
}

/// An address list that is plain text (not a template) must hold addresses.
fn check_addresses(key: &str, list: &str) -> Result<(), PluginError> {
    if list.contains("{{") {
        return Ok(());
    }
    if let Some(bad) = addresses(list).into_iter().find(|a| !plausible_address(a)) {
        return Err(config::invalid(
            key,
            format!("{bad:?} is not an email address"),
        ));
    }
    if key == "from" && addresses(list).len() > 1 {
        return Err(config::invalid("from", "must be exactly one address"));
    }
    Ok(())
}

impl Email {
    fn from_config(config: Config, templates: Templates) -> Result<Email, PluginError> {
        let mut headers = BTreeMap::new();
        for (name, value) in &config.headers {
            let canonical = canonical_header(name);
            if canonical.is_empty() || !canonical.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            {
                return Err(config::invalid(
                    "headers",
                    format!("{name:?} is not a header name"),
                ));
            }
            templates.check(&format!("headers.{name}"), value)?;
            if headers.insert(canonical.clone(), value.clone()).is_some() {
                return Err(config::invalid(
                    "headers",
                    format!("duplicate header {canonical:?}"),
                ));
            }
        }
        headers
            .entry("Subject".to_owned())
            .or_insert_with(|| DEFAULT_SUBJECT.to_owned());
        headers
            .entry("To".to_owned())
            .or_insert_with(|| config.to.clone());
        headers
            .entry("From".to_owned())
            .or_insert_with(|| config.from.clone());
        if config.hello.is_empty()
            || config
                .hello
                .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(config::invalid(
                "hello",
                format!("{:?} is not a host name", config.hello),
            ));
        }
        if !config.smarthost.is_empty() {
            split_host_port(&config.smarthost).ok_or_else(|| {
                config::invalid(
                    "smarthost",
                    format!("{:?} is not host:port", config.smarthost),
                )
            })?;
        }
        let t = &config.tls_config;
        if !t.server_name.is_empty() && !tls::valid_server_name(&t.server_name) {
            return Err(config::invalid(
                "tls_config.server_name",
                format!("{:?} is not a host name or address", t.server_name),
            ));
        }
        let tls = tls::config(tls::Settings {
            ca: &t.ca,
            cert: &t.cert,
            key: &t.key,
            insecure_skip_verify: t.insecure_skip_verify,
            min_version: &t.min_version,
            max_version: &t.max_version,
        })
        .map_err(|(key, e)| config::invalid(key, e))?;
        for (key, text) in [
            ("from", &config.from),
            ("to", &config.to),
            ("html", &config.html),
            ("text", &config.text),
        ] {
            templates.check(key, text)?;
        }
        check_addresses("from", &config.from)?;
        check_addresses("to", &config.to)?;
        Ok(Email {
            config,
            tls,
            templates,
            headers,
        })
    }

    /// Renders every template of the configuration for `n`.
    fn render(&self, n: &Notification) -> Result<Rendered, PluginError> {
        let data: Data = Templates::data(n);
        let render = |text: &str| self.templates.render(text, &data);
        let from = addresses(&render(&self.config.from)?);
        let [from] = from.as_slice() else {
            return Err(PluginError::permanent(format!(
                "from must be exactly one address, and is {from:?}"
            )));
        };
        let to = addresses(&render(&self.config.to)?);
        if to.is_empty() {
            return Err(PluginError::permanent("no to address"));
        }
        if let Some(bad) = std::iter::once(from)
            .chain(&to)
            .find(|a| !plausible_address(a))
        {
            return Err(PluginError::permanent(format!(
                "{bad:?} is not an email address"
            )));
        }
        // Subject, To and From first, the rest in name order.
        let mut headers = Vec::with_capacity(self.headers.len());
        for name in ["Subject", "To", "From"] {
            if let Some(value) = self.headers.get(name) {
                headers.push((name.to_owned(), render(value)?));
            }
        }
        for (name, value) in &self.headers {
            if !matches!(name.as_str(), "Subject" | "To" | "From") {
                headers.push((name.clone(), render(value)?));
            }
        }
        Ok(Rendered {
            headers,
            from: from.clone(),
            to,
            text: render(&self.config.text)?,
            html: self.templates.render_html(&self.config.html, &data)?,
        })
    }

    /// The message, lines ending in CRLF: the rendered headers, a Message-Id
    /// unless one is configured, and the text and html parts that are not
    /// empty.
    fn message(&self, r: &Rendered, now_ms: i64, random: [u64; 2]) -> String {
        let mut headers = r.headers.clone();
        if !self.headers.contains_key("Message-Id") {
            let id = format!(
                "<{}.{}@{}>",
                now_ms.saturating_mul(1_000_000),
                random[0],
                self.config.hello
            );
            headers.push(("Message-Id".to_owned(), id));
        }
        let mut parts = Vec::new();
        if !r.text.is_empty() {
            parts.push(mime::Part {
                media_type: "text/plain",
                body: &r.text,
            });
        }
        if !r.html.is_empty() {
            parts.push(mime::Part {
                media_type: "text/html",
                body: &r.html,
            });
        }
        let boundary = format!(
            "{:016x}{:016x}",
            random[0] ^ random[1].rotate_left(17),
            random[1]
        );
        mime::message(&headers, &mime::rfc5322_date(now_ms), &boundary, &parts)
    }

    /// Delivers `message` from `from` to `to` through the smarthost.
    fn send(&self, from: &str, to: &[String], message: &str) -> Result<(), PluginError> {
        let c = &self.config;
        let (host, port) = split_host_port(&c.smarthost).ok_or_else(|| {
            PluginError::permanent("no smarthost: set one in the receiver's notifier entry config")
        })?;
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| {
                PluginError::transient(format!(
                    "resolving {host}: {e} (the host resolves only names in the plugin's allow_hosts, \
                     and keeps loopback and private addresses only when they are listed themselves)"
                ))
            })?
            .collect();
        let stream = TcpStream::connect(&addrs[..]).map_err(|e| connect_error(&c.smarthost, &e))?;
        let server_name = if c.tls_config.server_name.is_empty() {
            host
        } else {
            &c.tls_config.server_name
        };
        let handshake = |s| tls::connect(s, &self.tls, server_name);
        // Port 465 speaks TLS from the first byte, as upstream's does.
        if port == 465 {
            let mut client = smtp::Client::open(handshake(stream)?)?;
            client.hello(&c.hello)?;
            return self.deliver(client, from, to, message);
        }
        let mut client = smtp::Client::open(stream)?;
        client.hello(&c.hello)?;
        if !c.require_tls {
            return self.deliver(client, from, to, message);
        }
        if client.extension("STARTTLS").is_none() {
            return Err(PluginError::transient(format!(
                "require_tls is true (the default), but {} does not offer STARTTLS",
                c.smarthost
            )));
        }
        let mut client = client.starttls(handshake)?;
        client.hello(&c.hello)?;
        self.deliver(client, from, to, message)
    }

    /// Authenticates if configured and the server offers it, then sends.
    fn deliver<S: Read + Write>(
        &self,
        mut client: smtp::Client<S>,
        from: &str,
        to: &[String],
        message: &str,
    ) -> Result<(), PluginError> {
        let c = &self.config;
        if !c.auth_username.is_empty() && client.extension("AUTH").is_some() {
            let authenticated = client.authenticate(&smtp::Credentials {
                identity: &c.auth_identity,
                username: &c.auth_username,
                password: &c.auth_password,
                secret: &c.auth_secret,
            })?;
            if !authenticated {
                return Err(PluginError::permanent(format!(
                    "{}: none of the server's AUTH mechanisms ({}) can be used: CRAM-MD5 \
                     needs auth_secret, PLAIN and LOGIN need auth_password",
                    c.smarthost,
                    client.extension("AUTH").unwrap_or("")
                )));
            }
        }
        client.send(from, to, message)?;
        client.quit();
        Ok(())
    }
}

/// Why the connection to the smarthost failed: a refusal by the host's
/// allow-list is permanent (nothing changes until the operator does), the
/// rest may pass.
fn connect_error(smarthost: &str, e: &io::Error) -> PluginError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        PluginError::permanent(format!(
            "connecting to {smarthost}: refused by the host, the smarthost is not in the plugin's allow_hosts ({e})"
        ))
    } else {
        PluginError::transient(format!("connecting to {smarthost}: {e}"))
    }
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
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

/// Two random words from the platform's randomness (std seeds `RandomState`
/// from `wasi:random`), for the Message-Id and the MIME boundary.
fn random() -> [u64; 2] {
    [
        RandomState::new().hash_one(1u8),
        RandomState::new().hash_one(2u8),
    ]
}

impl Notifier for Email {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let templates = Templates::load(DEFAULTS, config)?;
        Email::from_config(config::parse(config)?, templates)
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        if self.config.smarthost.is_empty() {
            return Err(PluginError::permanent(
                "no smarthost: set one in the receiver's notifier entry config",
            ));
        }
        let rendered = self.render(&n)?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let message = self.message(&rendered, now_ms, random());
        self.send(&rendered.from, &rendered.to, &message)
    }
}

pharos_sdk::export_notifier!(Email);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{Alert, AlertStatus, Label};

    fn parse(json: &str) -> Result<Email, PluginError> {
        Email::configure(json)
    }

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: n.into(),
            value: v.into(),
        }
    }

    fn notification() -> Notification {
        Notification {
            receiver: "ops".into(),
            status: AlertStatus::Firing,
            alerts: vec![Alert {
                status: AlertStatus::Firing,
                labels: vec![label("alertname", "Disk"), label("instance", "a:9100")],
                annotations: vec![label("summary", "disk <full>")],
                starts_at: 1_700_000_000_000,
                ends_at: None,
                generator_url: "http://prom/graph".into(),
                fingerprint: "0123456789abcdef".into(),
            }],
            group_labels: vec![label("alertname", "Disk")],
            common_labels: vec![label("alertname", "Disk"), label("instance", "a:9100")],
            common_annotations: vec![label("summary", "disk <full>")],
            external_url: String::new(),
            group_key: "{}:{alertname=\"Disk\"}".into(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn defaults_and_refusals() {
        // The plugin's own instance is configured with nothing.
        let e = parse("").unwrap();
        assert!(e.config.require_tls);
        assert_eq!(e.config.hello, "localhost");
        assert_eq!(e.config.html, r#"{{ template "email.default.html" . }}"#);
        assert!(e.config.text.is_empty());
        let refused = |json: &str, part: &str| {
            let e = parse(json)
                .err()
                .unwrap_or_else(|| panic!("{json} accepted"));
            assert!(matches!(e, PluginError::InvalidConfig(_)), "{e:?}");
            assert!(e.reason().contains(part), "{json}: {}", e.reason());
        };
        refused(r#"{"smarthost": "mx", "require_tls": false}"#, "host:port");
        parse(r#"{"tls_config": {"insecure_skip_verify": true}}"#).unwrap();
        refused(r#"{"tls_config": {"cert": "x"}}"#, "go together");
        refused(r#"{"tls_config": {"server_name": "a b"}}"#, "server_name");
        refused(
            r#"{"tls_config": {"ca": "nothing"}}"#,
            "holds no certificate",
        );
        // The host reads files; one that reached the plugin was not meant for it.
        refused(r#"{"tls_config": {"cert_file": "/c"}}"#, "unknown field");
        parse(r#"{"tls_config": {"min_version": "TLS12", "max_version": "TLS13"}}"#).unwrap();
        refused(r#"{"tls_config": {"min_version": "TLS11"}}"#, "min_version");
        parse(r#"{"smarthost": "mx:465", "tls_config": {"server_name": "mx.example"}}"#).unwrap();
        refused(
            r#"{"headers": {"subject": "a", "Subject": "b"}}"#,
            "duplicate header \"Subject\"",
        );
        refused(r#"{"headers": {"X-A": "{{ .Nope "}}"#, "headers.X-A");
        refused(r#"{"html": "{{ nosuchfunction }}"}"#, "html");
        refused(r#"{"to": "a@x, not an address"}"#, "not an email address");
        refused(r#"{"from": "a@x, b@y"}"#, "exactly one");
        refused(r#"{"hello": "a b"}"#, "hello");
        refused(r#"{"smtp": "x"}"#, "unknown field");
        parse(r#"{"smarthost": "[::1]:2525", "require_tls": false, "to": "Ops <ops@x>, b@y"}"#)
            .unwrap();
        // Templated addresses are checked when they are rendered.
        parse(r#"{"to": "{{ .CommonLabels.team }}@example.com"}"#).unwrap();
    }

    #[test]
    fn addresses_and_header_names() {
        assert_eq!(addresses("Ops <ops@x>, b@y ,"), ["ops@x", "b@y"]);
        assert_eq!(canonical_header("reply-to"), "Reply-To");
        assert_eq!(canonical_header("MESSAGE-ID"), "Message-Id");
        assert_eq!(split_host_port("[::1]:25"), Some(("::1", 25)));
        assert_eq!(
            split_host_port("mx.example:2525"),
            Some(("mx.example", 2525))
        );
        assert_eq!(split_host_port("::1:25"), None);
    }

    #[test]
    fn message_headers_as_upstream() {
        let e = parse(
            r#"{"to": "ops@example.com", "from": "Pharos <pharos@example.com>", "hello": "pharos.example",
                "headers": {"reply-to": "noc+{{ .GroupLabels.alertname }}@example.com"}}"#,
        )
        .unwrap();
        let r = e.render(&notification()).unwrap();
        assert_eq!(r.from, "pharos@example.com");
        assert_eq!(r.to, ["ops@example.com"]);
        let m = e.message(&r, 1_700_000_000_000, [7, 9]);
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        let head: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(head[0], "Subject: [FIRING:1] Disk (a:9100)");
        assert_eq!(head[1], "To: ops@example.com");
        assert_eq!(head[2], "From: Pharos <pharos@example.com>");
        assert_eq!(head[3], "Reply-To: noc+Disk@example.com");
        assert_eq!(
            head[4],
            "Message-Id: <1700000000000000000.7@pharos.example>"
        );
        assert_eq!(head[5], "Date: Tue, 14 Nov 2023 22:13:20 +0000");
        assert!(
            head[6].starts_with("Content-Type: multipart/alternative;  boundary="),
            "{}",
            head[6]
        );
        assert_eq!(head[7], "MIME-Version: 1.0");
        // Only the html part by default, as upstream, with what it prints escaped.
        assert!(
            body.contains("Content-Type: text/html; charset=UTF-8"),
            "{body}"
        );
        assert!(!body.contains("text/plain"), "{body}");
        assert!(r.html.contains("disk &lt;full&gt;"), "{}", r.html);
        assert!(r.html.contains(">a:9100</td>"), "{}", r.html);
    }

    #[test]
    fn an_operators_html_is_escaped_and_the_text_part_is_not() {
        let e = parse(
            r#"{"to": "a@x", "from": "b@y",
                "html": "<p>{{ .CommonAnnotations.summary }}</p>{{ safeHtml \"<hr>\" }}",
                "text": "{{ .CommonAnnotations.summary }}"}"#,
        )
        .unwrap();
        let r = e.render(&notification()).unwrap();
        assert_eq!(r.html, "<p>disk &lt;full&gt;</p><hr>");
        assert_eq!(r.text, "disk <full>");
    }

    #[test]
    fn the_default_text_template() {
        let e = parse(
            r#"{"to": "a@x", "from": "b@y", "text": "{{ template \"email.default.text\" . }}"}"#,
        )
        .unwrap();
        let mut n = notification();
        n.external_url = "http://pharos:9093".into();
        let r = e.render(&n).unwrap();
        assert_eq!(
            r.text,
            "[FIRING:1] Disk (a:9100)\n\nFiring (1):\n* disk <full>\n    alertname = Disk\n    \
             instance = a:9100\n    from http://prom/graph\n\nSent by Pharos: \
             http://pharos:9093/api/v2/alerts/groups?receiver=ops\n"
        );
    }

    #[test]
    fn configured_bodies_and_headers_win() {
        let e = parse(
            r#"{"to": "a@x", "from": "b@y", "headers": {"Subject": "custom {{ .Status }}", "Message-Id": "<m@x>"},
                "html": "<b>hi</b>", "text": "hi"}"#,
        )
        .unwrap();
        let r = e.render(&notification()).unwrap();
        let m = e.message(&r, 0, [1, 2]);
        assert!(m.starts_with("Subject: custom firing\r\n"), "{m}");
        assert_eq!(m.matches("Message-Id:").count(), 1, "{m}");
        assert!(m.contains("Message-Id: <m@x>\r\n"), "{m}");
        let text = m.find("text/plain").unwrap();
        let html = m.find("text/html").unwrap();
        assert!(text < html, "the preferred html part comes last: {m}");
    }

    #[test]
    fn rendered_addresses_are_checked() {
        let e = parse(r#"{"to": "{{ .CommonLabels.team }}", "from": "b@y"}"#).unwrap();
        let err = e.render(&notification()).err().unwrap();
        assert_eq!(err, PluginError::permanent("no to address"));
        let e = parse(r#"{"to": "a@x", "from": "{{ .Receiver }}"}"#).unwrap();
        let err = e.render(&notification()).err().unwrap();
        assert!(matches!(err, PluginError::Permanent(_)), "{err:?}");
    }

    #[test]
    fn a_refused_connection_is_permanent_and_names_allow_hosts() {
        let e = connect_error("mx:25", &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(
            matches!(&e, PluginError::Permanent(m) if m.contains("allow_hosts")),
            "{e:?}"
        );
        let e = connect_error("mx:25", &io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(e, PluginError::Transient(_)), "{e:?}");
    }

    #[test]
    fn notifying_without_a_smarthost_fails_for_good() {
        let mut e = parse(r#"{"to": "a@x", "from": "b@y"}"#).unwrap();
        assert!(matches!(
            e.notify(notification()),
            Err(PluginError::Permanent(_))
        ));
    }
}
