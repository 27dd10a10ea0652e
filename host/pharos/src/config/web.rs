//! The `web` section: the HTTP listener that serves the API, federation and the UI. The
//! key carries Prometheus's `--web.listen-address` flag over into the document.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde_json::Value;

use super::decode::{Decode, Object, Path, quote};
use super::error::ConfigErrors;

/// The `web` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebConfig {
    /// Where the HTTP server listens.
    pub listen_address: ListenAddress,
}

impl Decode for WebConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let listen_address = obj.or_default("listen_address");
        obj.finish();
        Some(WebConfig {
            listen_address: listen_address?,
        })
    }
}

/// A `host:port` to listen on, validated when the configuration is loaded.
///
/// The host is an IPv4 address, a bracketed IPv6 address, empty (all IPv4 interfaces,
/// as in `:9090`) or `localhost` (127.0.0.1). Other host names are refused rather than
/// looked up: resolving them would make loading a configuration depend on DNS, and the
/// address a node binds should not change between a reload's check and its bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    /// As the operator wrote it, for messages and dumps.
    text: String,
    addr: SocketAddr,
}

impl ListenAddress {
    /// The socket address to bind; `:9090` gives `0.0.0.0:9090`.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// `0.0.0.0:9090`, Prometheus's default.
impl Default for ListenAddress {
    fn default() -> Self {
        Self {
            text: "0.0.0.0:9090".to_owned(),
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9090),
        }
    }
}

/// Shows the address as written (`:9090` stays `:9090`).
impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for ListenAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Why a listen address was rejected; the message quotes the input and says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid listen address {}: {reason}", quote(.input))]
pub struct ParseListenAddressError {
    input: String,
    reason: &'static str,
}

impl FromStr for ListenAddress {
    type Err = ParseListenAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseListenAddressError {
            input: s.to_owned(),
            reason,
        };
        let missing_port = "missing port (write host:port, e.g. \"0.0.0.0:9090\" or \":9090\")";
        // "[::1]" has colons but no port; without this check its last colon would be
        // taken as the port separator and the message would be about a bad port.
        if s.ends_with(']') {
            return Err(fail(missing_port));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| fail(missing_port))?;
        // Digits only: `u16::from_str` would also take "+80", and Go's service names
        // ("http") are not supported.
        let port = Some(port)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| fail("port must be a number from 0 to 65535"))?;
        let ip = if host.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let v6: Ipv6Addr = inner
                .parse()
                .map_err(|_| fail("not a valid IPv6 address between the brackets"))?;
            IpAddr::V6(v6)
        } else if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
            IpAddr::V4(v4)
        } else if host.contains(':') {
            return Err(fail(
                "an IPv6 address must be in brackets, e.g. \"[::1]:9090\"",
            ));
        } else {
            return Err(fail(
                "host must be an IP address, \"localhost\" or empty; host names are not resolved",
            ));
        };
        Ok(ListenAddress {
            text: s.to_owned(),
            addr: SocketAddr::new(ip, port),
        })
    }
}

impl Decode for ListenAddress {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::String(s) = v else {
            errs.wrong_type(path, "a host:port string", v);
            return None;
        };
        s.parse()
            .map_err(|e: ParseListenAddressError| errs.push(path, e.to_string()))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn addr(s: &str) -> Result<String, String> {
        s.parse::<ListenAddress>()
            .map(|a| a.socket_addr().to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepted_addresses() {
        for (text, want) in [
            ("0.0.0.0:9090", "0.0.0.0:9090"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:9090", "[::1]:9090"),
            ("[::]:9090", "[::]:9090"),
            (":9090", "0.0.0.0:9090"),
            ("localhost:9093", "127.0.0.1:9093"),
            ("LocalHost:80", "127.0.0.1:80"),
            ("10.1.2.3:65535", "10.1.2.3:65535"),
        ] {
            assert_eq!(addr(text), Ok(want.to_owned()), "{text}");
        }
    }

    #[test]
    fn rejected_addresses() {
        let missing = "missing port (write host:port, e.g. \"0.0.0.0:9090\" or \":9090\")";
        let port = "port must be a number from 0 to 65535";
        let name =
            "host must be an IP address, \"localhost\" or empty; host names are not resolved";
        for (text, reason) in [
            ("", missing),
            ("0.0.0.0", missing),
            ("[::1]", missing),
            ("9090", missing),
            (":", port),
            ("0.0.0.0:", port),
            (":65536", port),
            (":+80", port),
            (":http", port),
            (":-1", port),
            (":99999999999999999999999", port),
            (
                "::1:9090",
                "an IPv6 address must be in brackets, e.g. \"[::1]:9090\"",
            ),
            (
                "[::g]:9090",
                "not a valid IPv6 address between the brackets",
            ),
            (
                "[1.2.3.4]:9090",
                "not a valid IPv6 address between the brackets",
            ),
            ("example.com:9090", name),
            ("1.2.3.256:9090", name),
            (" :9090", name),
        ] {
            assert_eq!(
                addr(text),
                Err(format!("invalid listen address {}: {reason}", quote(text))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn displays_and_serializes_as_written() {
        let a: Result<ListenAddress, _> = ":9090".parse();
        assert_eq!(a.as_ref().map(ToString::to_string), Ok(":9090".to_owned()));
        assert_eq!(
            a.ok().and_then(|a| serde_json::to_string(&a).ok()),
            Some("\":9090\"".to_owned())
        );
    }

    #[test]
    fn default_is_prometheus_default() {
        let parsed: Result<ListenAddress, _> = "0.0.0.0:9090".parse();
        assert_eq!(parsed, Ok(ListenAddress::default()));
    }

    #[test]
    fn section_decodes_with_paths() {
        let root = Path::Root;
        let at = root.key("web");
        let mut errs = ConfigErrors::new();
        assert_eq!(
            WebConfig::decode(&json!({}), &at, &mut errs),
            Some(WebConfig::default())
        );
        assert_eq!(
            WebConfig::decode(&json!({"listen_address": "127.0.0.1:0"}), &at, &mut errs)
                .map(|w| w.listen_address.socket_addr().to_string()),
            Some("127.0.0.1:0".to_owned())
        );
        assert!(errs.is_empty());
        assert_eq!(
            WebConfig::decode(&json!({"listen_address": 9090, "tls": {}}), &at, &mut errs),
            None
        );
        assert_eq!(
            WebConfig::decode(&json!({"listen_address": "nowhere"}), &at, &mut errs),
            None
        );
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "web.listen_address: expected a host:port string, found number",
                "web.tls: unknown key",
                "web.listen_address: invalid listen address \"nowhere\": missing port (write host:port, e.g. \"0.0.0.0:9090\" or \":9090\")",
            ]
        );
    }
}
