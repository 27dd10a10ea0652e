//! How Pharos authenticates to and verifies an HTTP endpoint it pulls from (a scrape
//! target, an `http_sd_configs` URL): prometheus.yml's `basic_auth`, `authorization`,
//! `bearer_token`/`bearer_token_file` and `tls_config`, with their key names.
//!
//! Files (`password_file`, `ca_file`, ...) are named here and read when the client is
//! built, as Prometheus does, so a rotated credential is picked up by a reload.

use serde_json::Value;

use super::decode::{Decode, Object, Path};
use super::error::ConfigErrors;

/// The HTTP client settings of a scrape job or an HTTP discovery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HttpClientConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Whether 3xx replies are followed (Prometheus's default: yes).
    pub follow_redirects: bool,
}

/// `basic_auth`: a username and a password given inline or in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing)]
    pub password: Secret,
}

/// `authorization`: `Authorization: <type> <credentials>`, type `Bearer` by default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing)]
    pub credentials: Secret,
}

/// A secret written inline or read from a file when the client is built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Secret {
    #[default]
    None,
    Inline(String),
    File(String),
}

impl Secret {
    /// The secret's text; a file's trailing newline is dropped, as Prometheus does.
    pub fn read(&self) -> std::io::Result<String> {
        match self {
            Secret::None => Ok(String::new()),
            Secret::Inline(s) => Ok(s.clone()),
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| std::io::Error::new(e.kind(), format!("reading {path}: {e}"))),
        }
    }
}

/// `tls_config`: the CA to trust, a client certificate, the name to verify, and the
/// escape hatch that skips verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

/// Reads the inline/file pair `key` and `key_file`; giving both is an error.
fn secret(obj: &mut Object<'_, '_, '_>, key: &str, file_key: &str) -> Option<Secret> {
    let inline = obj.optional::<String>(key);
    let file = obj.optional::<String>(file_key);
    match (inline?, file?) {
        (Some(_), Some(_)) => {
            obj.error(
                key,
                format!("at most one of {key} and {file_key} may be set"),
            );
            None
        }
        (Some(s), None) => Some(Secret::Inline(s)),
        (None, Some(f)) => Some(Secret::File(f)),
        (None, None) => Some(Secret::None),
    }
}

impl Decode for BasicAuth {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let username = obj.or_default::<String>("username");
        let password = secret(&mut obj, "password", "password_file");
        obj.finish();
        Some(BasicAuth {
            username: username?,
            password: password?,
        })
    }
}

impl Decode for Authorization {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let kind = obj.or("type", "Bearer".to_owned());
        let credentials = secret(&mut obj, "credentials", "credentials_file");
        obj.finish();
        let kind = kind?;
        if kind.eq_ignore_ascii_case("basic") {
            errs.push(
                &path.key("type"),
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            );
            return None;
        }
        Some(Authorization {
            kind,
            credentials: credentials?,
        })
    }
}

impl Decode for TlsConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let ca_file = obj.optional("ca_file");
        let cert_file = obj.optional::<String>("cert_file");
        let key_file = obj.optional::<String>("key_file");
        let server_name = obj.optional("server_name");
        let insecure_skip_verify = obj.or("insecure_skip_verify", false);
        obj.finish();
        let (cert_file, key_file) = (cert_file?, key_file?);
        if cert_file.is_some() != key_file.is_some() {
            errs.push(path, "cert_file and key_file must be set together");
            return None;
        }
        Some(TlsConfig {
            ca_file: ca_file?,
            cert_file,
            key_file,
            server_name: server_name?,
            insecure_skip_verify: insecure_skip_verify?,
        })
    }
}

impl HttpClientConfig {
    /// Takes the HTTP client keys out of the object of a scrape job or discovery, so
    /// they sit beside the owner's own keys as in prometheus.yml.
    pub fn take(obj: &mut Object<'_, '_, '_>, path: &Path<'_>) -> Option<HttpClientConfig> {
        let basic_auth = obj.optional::<BasicAuth>("basic_auth");
        let authorization = obj.optional::<Authorization>("authorization");
        let bearer = secret(obj, "bearer_token", "bearer_token_file");
        let tls_config = obj.optional("tls_config");
        let follow_redirects = obj.or("follow_redirects", true);
        let (basic_auth, mut authorization, bearer) = (basic_auth?, authorization?, bearer?);
        if bearer != Secret::None {
            if authorization.is_some() {
                obj.error(
                    "bearer_token",
                    "at most one of bearer_token, bearer_token_file and authorization may be set",
                );
                return None;
            }
            authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: bearer,
            });
        }
        if basic_auth.is_some() && authorization.is_some() {
            obj.error(
                "basic_auth",
                format!("at most one of basic_auth and authorization may be set ({path})"),
            );
            return None;
        }
        Some(HttpClientConfig {
            basic_auth,
            authorization,
            tls_config: tls_config?,
            follow_redirects: follow_redirects?,
        })
    }
}

/// Prometheus's default: follow redirects, no credentials, the system's roots.
impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            tls_config: None,
            follow_redirects: true,
        }
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<secret>")
    }
}
