//! Outbound HTTP for exporters and notifiers: the allow-list and the sender.
//!
//! wasmtime-wasi-http hands every request a guest makes to
//! [`WasiHttpHooks::send_request`]. Here that hook
//!
//! 1. refuses hosts that are not on the plugin's `allow_hosts` (`host` allows
//!    any port, `host:port` one port; names compare case-insensitively, IPv6
//!    addresses are written in brackets, `[::1]:8080`);
//! 2. resolves the name itself and drops the addresses in loopback, private,
//!    link-local, shared, unspecified, multicast or other special ranges,
//!    unless that address is itself listed in `allow_hosts`; so an allowed
//!    name that resolves (or is made to resolve) to 127.0.0.1 or 10.0.0.1
//!    cannot reach it unless the operator listed the address literally;
//! 3. connects to a vetted address, never to the name again (a second lookup
//!    could answer differently), with TLS verified against the name;
//! 4. caps the request and response bodies and bounds the connection and the
//!    wait for the response head by the plugin's timeout.
//!
//! A refused request fails with `error-code.HTTP-request-denied`.

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Largest request body a plugin may send.
pub const MAX_REQUEST_BODY: u64 = 4 << 20;
/// Largest response body a plugin may receive.
pub const MAX_RESPONSE_BODY: u64 = 16 << 20;

/// One `allow_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lower-case name, or an IP address without brackets.
    host: String,
    port: Option<u16>,
}

impl Allowed {
    fn parse(entry: &str) -> Result<Allowed, String> {
        let entry = entry.trim();
        let bad = || format!("allow_hosts entry {entry:?} is not `host` or `host:port`");
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            addr.parse::<Ipv6Addr>().map_err(|_| bad())?;
            (addr, port)
        } else if entry.parse::<Ipv6Addr>().is_ok() {
            (entry, None)
        } else {
            match entry.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (entry, None),
            }
        };
        if host.is_empty()
            || host.contains(['/', '@', ' ', '*'])
            || (host.contains(':') && host.parse::<Ipv6Addr>().is_err())
        {
            return Err(bad());
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad()))
            .transpose()?;
        Ok(Allowed {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|p| p == port)
    }
}

/// A plugin's egress policy: what it may reach and how long it may take.
#[derive(Debug)]
struct Policy {
    allowed: Vec<Allowed>,
    timeout: Duration,
}

impl Policy {
    fn host_allowed(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|a| a.matches(host, port))
    }

    /// Whether an address was listed literally, for `port` or, with `None`,
    /// for any port.
    fn address_listed(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.allowed.iter().any(|a| {
            a.host.parse::<IpAddr>().is_ok_and(|listed| listed == ip)
                && match (a.port, port) {
                    (Some(listed), Some(port)) => listed == port,
                    _ => true,
                }
        })
    }
}

/// The `WasiHttpHooks` of one store. `deny_all` for relabelers (which do not
/// link wasi:http at all) and for plugins with an empty allow-list.
#[derive(Debug, Clone)]
pub(crate) struct Egress(Arc<Policy>);

impl Egress {
    /// Parses `allow_hosts`; a malformed entry refuses the plugin.
    pub fn new(allow_hosts: &[String], timeout: Duration) -> Result<Egress, String> {
        let allowed = allow_hosts
            .iter()
            .map(|e| Allowed::parse(e))
            .collect::<Result<_, _>>()?;
        Ok(Egress(Arc::new(Policy { allowed, timeout })))
    }

    pub fn deny_all() -> Egress {
        Egress(Arc::new(Policy {
            allowed: Vec::new(),
            timeout: Duration::ZERO,
        }))
    }

    /// Whether `name` (lower-case, no brackets) is listed with any port: what
    /// a socket name lookup, which has no port yet, may resolve.
    pub(crate) fn name_listed(&self, name: &str) -> bool {
        self.0.allowed.iter().any(|a| a.host == name)
    }

    /// Whether `host` may be reached on `port`.
    pub(crate) fn host_allowed(&self, host: &str, port: u16) -> bool {
        self.0.host_allowed(host, port)
    }

    /// Whether the address `ip` is itself listed, for `port` or, with `None`,
    /// for any port.
    pub(crate) fn address_listed(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.0.address_listed(ip, port)
    }

    /// The plugin's deadline, which also bounds a name lookup.
    pub(crate) fn timeout(&self) -> Duration {
        self.0.timeout
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let policy = self.0.clone();
        Box::new(async move { send(&policy, request, options).await })
    }
}

/// Whether an address is one a plugin must not reach through a name:
/// loopback, private (RFC 1918, unique-local), link-local, shared (RFC 6598),
/// unspecified, broadcast, multicast, documentation, benchmarking and the
/// IPv4-mapped/translated forms of those.
pub(crate) fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special_v4(v4);
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site local (deprecated) fec0::/10
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0064 && seg[1] == 0xff9b) // NAT64 (embeds v4)
                || (seg[0] == 0 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0 && seg[4] == 0 && seg[5] == 0) // IPv4-compatible
        }
    }
}

fn is_special_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn dns_error(message: String) -> Error {
    Error::DnsError {
        rcode: Some(message),
        info_code: None,
    }
}

/// Sends one vetted request.
async fn send(
    policy: &Policy,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let uri = request.uri();
    let use_tls = uri.scheme() == Some(&Scheme::HTTPS);
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let port = authority
        .port_u16()
        .unwrap_or(if use_tls { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if !policy.host_allowed(&host, port) {
        tracing::debug!(
            host,
            port,
            "plugin request refused: host not in allow_hosts"
        );
        return Err(Error::HttpRequestDenied);
    }

    let within = |asked: Option<Duration>| {
        asked
            .unwrap_or(policy.timeout)
            .min(policy.timeout)
            .max(Duration::from_millis(1))
    };
    let connect_timeout = within(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = within(options.and_then(|o| o.first_byte_timeout));

    let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            connect_timeout,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| dns_error(e.to_string()))?
        .collect(),
    };
    let vetted: Vec<SocketAddr> = candidates
        .iter()
        .copied()
        .filter(|a| !is_special(a.ip()) || policy.address_listed(a.ip(), Some(port)))
        .collect();
    if vetted.is_empty() {
        tracing::debug!(
            host,
            port,
            ?candidates,
            "plugin request refused: only special addresses"
        );
        return Err(if candidates.is_empty() {
            Error::DestinationNotFound
        } else {
            Error::HttpRequestDenied
        });
    }

    let mut last_error = None;
    let mut stream = None;
    for addr in &vetted {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_error = Some(Error::Connect(e)),
            Err(_) => last_error = Some(Error::ConnectionTimeout),
        }
    }
    let Some(stream) = stream else {
        return Err(last_error.unwrap_or(Error::ConnectionRefused));
    };

    // Origin-form request target: scheme and authority only go to proxies.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let request = request.map(|body| {
        Limited::new(body, MAX_REQUEST_BODY, Error::HttpRequestBodySize).boxed_unsync()
    });

    let (response, io) = if use_tls {
        let config = tls_config().ok_or(Error::TlsCertificateError)?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|_| Error::TlsCertificateError)?;
        let tls = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, stream),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Tls)?;
        exchange(
            TokioIo::new(tls),
            request,
            connect_timeout,
            first_byte_timeout,
        )
        .await?
    } else {
        exchange(
            TokioIo::new(stream),
            request,
            connect_timeout,
            first_byte_timeout,
        )
        .await?
    };
    let response = response.map(|incoming| {
        Limited::new(
            incoming.map_err(Error::from),
            MAX_RESPONSE_BODY,
            Error::HttpResponseBodySize,
        )
        .boxed_unsync()
    });
    Ok((response, io))
}

/// HTTP/1.1 over an established connection: handshake, send, wait for the
/// response head while driving the connection; the rest of the connection's
/// work is returned for wasmtime-wasi-http to drive.
async fn exchange<S>(
    io: TokioIo<S>,
    request: http::Request<WasiBody>,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
) -> Result<(http::Response<hyper::body::Incoming>, IoFuture), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake::<_, WasiBody>(io),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    let mut conn = Box::pin(conn);
    let send = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
    tokio::pin!(send);
    let mut conn_done = false;
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = send.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if !conn_done && let Poll::Ready(result) = conn.as_mut().poll(cx) {
            conn_done = true;
            if let Err(e) = result {
                return Poll::Ready(Ok(Err(e)));
            }
        }
        Poll::Pending
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;
    let io: IoFuture = if conn_done {
        Box::new(async { Ok(()) })
    } else {
        Box::new(async move { conn.await.map_err(Error::from) })
    };
    Ok((response, io))
}

/// TLS client settings: the system's trusted roots, loaded once.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for e in &loaded.errors {
                tracing::warn!(error = %e, "plugin TLS: cannot load a system certificate");
            }
            let (added, _) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                tracing::warn!("plugin TLS: no trusted root certificates found");
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(config))
        })
        .clone()
}

/// A body that fails once more than `limit` bytes went through it.
struct Limited<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    error: fn(Option<u64>) -> Error,
}

impl<B> Limited<B> {
    fn new(inner: B, limit: u64, error: fn(Option<u64>) -> Error) -> Self {
        Limited {
            inner,
            remaining: limit,
            limit,
            error,
        }
    }
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.remaining {
                self.remaining = 0;
                return Poll::Ready(Some(Err((self.error)(Some(self.limit)))));
            }
            self.remaining -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> Policy {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let egress = Egress::new(&hosts, Duration::from_secs(1)).unwrap();
        Arc::try_unwrap(egress.0).unwrap()
    }

    #[test]
    fn entries_parse_as_host_or_host_and_port() {
        let p = policy(&[
            "Example.COM",
            "api.example.net:8443",
            "127.0.0.1",
            "[::1]:9000",
            "::2",
        ]);
        assert!(p.host_allowed("example.com", 443));
        assert!(p.host_allowed("example.com", 80));
        assert!(p.host_allowed("api.example.net", 8443));
        assert!(!p.host_allowed("api.example.net", 443));
        assert!(!p.host_allowed("sub.example.com", 443));
        assert!(p.host_allowed("::1", 9000));
        assert!(p.host_allowed("::2", 1));
        assert!(p.address_listed("127.0.0.1".parse().unwrap(), Some(1234)));
        assert!(!p.address_listed("127.0.0.2".parse().unwrap(), Some(1234)));
        assert!(p.address_listed("::1".parse().unwrap(), None));
        assert!(!p.address_listed("::1".parse().unwrap(), Some(9001)));
        for bad in [
            "",
            "a b",
            "http://x",
            "x:port",
            "*.example.com",
            "[::1",
            "a:b:c",
        ] {
            assert!(
                Egress::new(&[bad.to_owned()], Duration::ZERO).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn special_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_special(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(!is_special(ip.parse().unwrap()), "{ip}");
        }
    }
}
