//! TLS to the smarthost (STARTTLS, or TLS from the first byte on port 465):
//! rustls with the pure-Rust RustCrypto provider, verifying the server against
//! Mozilla's roots or the CA certificates the configuration gives, and offering
//! a client certificate when the configuration holds one.

use crate::smtp::Failure;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned, SupportedProtocolVersion,
};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Upstream's `tls_config` as the plugin receives it: the host has read
/// `ca_file`, `cert_file` and `key_file` into `ca`, `cert` and `key`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Settings<'a> {
    /// PEM CA certificates to trust instead of Mozilla's roots.
    pub ca: &'a str,
    /// PEM client certificate chain, offered when the server asks for one.
    pub cert: &'a str,
    /// PEM private key of `cert`.
    pub key: &'a str,
    /// Accept any server certificate (the handshake's signatures are still checked).
    pub insecure_skip_verify: bool,
    /// Upstream's `min_version` and `max_version` (`TLS12`, `TLS13`); empty for
    /// no bound.
    pub min_version: &'a str,
    pub max_version: &'a str,
}

/// The client configuration for `settings`. Errors name the setting at fault.
pub fn config(settings: Settings<'_>) -> Result<Arc<ClientConfig>, (&'static str, String)> {
    let provider = Arc::new(rustls_rustcrypto::provider());
    let versions = versions(settings.min_version, settings.max_version)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| ("tls_config", format!("no TLS version available: {e}")))?;
    // A CA that cannot be read is refused even when nothing will be verified, as
    // upstream reads `ca_file` before it looks at `insecure_skip_verify`.
    let roots = roots(settings.ca).map_err(|e| ("tls_config.ca", e))?;
    let builder = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
    } else {
        builder.with_root_certificates(roots)
    };
    let config = match (settings.cert.trim(), settings.key.trim()) {
        ("", "") => builder.with_no_client_auth(),
        ("", _) | (_, "") => {
            return Err((
                "tls_config",
                "cert_file and key_file go together: give both or neither".to_owned(),
            ));
        }
        (cert, key) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ("tls_config.cert", format!("not PEM certificates: {e}")))?;
            if chain.is_empty() {
                return Err(("tls_config.cert", "holds no certificate".to_owned()));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| ("tls_config.key", format!("not a PEM private key: {e}")))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                (
                    "tls_config.key",
                    format!("not usable with the certificate: {e}"),
                )
            })?
        }
    };
    Ok(Arc::new(config))
}

/// The versions from `min` to `max` (upstream's names). rustls speaks TLS 1.2 and
/// 1.3 only, so `TLS10` and `TLS11` are refused rather than quietly raised.
fn versions(
    min: &str,
    max: &str,
) -> Result<Vec<&'static SupportedProtocolVersion>, (&'static str, String)> {
    const KNOWN: [(&str, &SupportedProtocolVersion); 2] = [
        ("TLS12", &rustls::version::TLS12),
        ("TLS13", &rustls::version::TLS13),
    ];
    let position = |key: &'static str, name: &str, default: usize| match name {
        "" => Ok(default),
        "TLS10" | "TLS11" => Err((key, format!("{name} is not supported: TLS12 is the oldest"))),
        _ => KNOWN
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| (key, format!("unknown TLS version {name:?}: TLS12 or TLS13"))),
    };
    let from = position("tls_config.min_version", min, 0)?;
    let to = position("tls_config.max_version", max, KNOWN.len() - 1)?;
    if from > to {
        return Err((
            "tls_config.max_version",
            format!("{max} is below min_version {min}"),
        ));
    }
    Ok(KNOWN[from..=to].iter().map(|(_, v)| *v).collect())
}

/// `ca_pem`'s certificates if any, else Mozilla's roots.
fn roots(ca_pem: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if ca_pem.trim().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    }
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("holds no certificate".to_owned());
    }
    Ok(roots)
}

/// `insecure_skip_verify`: any certificate is taken for any name, as Go's
/// `InsecureSkipVerify` does. The server must still sign the handshake with the
/// key of the certificate it sent, so the session is encrypted to whoever holds
/// it; only who that is goes unchecked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Whether `name` can be checked against a certificate (a DNS name or an IP address).
pub fn valid_server_name(name: &str) -> bool {
    ServerName::try_from(name).is_ok()
}

/// Runs the handshake over `stream`, verifying the server as `server_name`.
/// A certificate the server cannot prove is permanent; the rest (the peer
/// closing, timing out) is transient.
pub fn connect<S: Read + Write>(
    stream: S,
    config: &Arc<ClientConfig>,
    server_name: &str,
) -> Result<StreamOwned<ClientConnection, S>, Failure> {
    let step = "TLS handshake".to_owned();
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| Failure::Protocol {
        step: step.clone(),
        detail: format!("{server_name:?} is not a server name: {e}"),
    })?;
    let conn = ClientConnection::new(config.clone(), name).map_err(|e| Failure::Protocol {
        step: step.clone(),
        detail: e.to_string(),
    })?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if let Err(error) = tls.conn.complete_io(&mut tls.sock) {
            return Err(if error.kind() == io::ErrorKind::InvalidData {
                Failure::Protocol {
                    step,
                    detail: error.to_string(),
                }
            } else {
                Failure::Io { step, error }
            });
        }
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_come_from_the_configuration_or_mozilla() {
        let ca = |ca| {
            config(Settings {
                ca,
                ..Settings::default()
            })
            .err()
            .unwrap_or_default()
        };
        assert!(config(Settings::default()).is_ok());
        let e = ca("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
        assert_eq!(e.0, "tls_config.ca");
        assert!(e.1.starts_with("not PEM certificates"), "{e:?}");
        assert_eq!(ca("no pem here").1, "holds no certificate");
        assert!(valid_server_name("mail.example.com"));
        assert!(valid_server_name("127.0.0.1"));
        assert!(!valid_server_name("not a name"));
    }

    #[test]
    fn version_bounds() {
        let names = |min, max| {
            versions(min, max).map(|v| {
                v.iter()
                    .map(|v| format!("{:?}", v.version))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(names("", "").unwrap(), ["TLSv1_2", "TLSv1_3"]);
        assert_eq!(names("TLS13", "").unwrap(), ["TLSv1_3"]);
        assert_eq!(names("", "TLS12").unwrap(), ["TLSv1_2"]);
        assert!(names("TLS10", "").unwrap_err().1.contains("not supported"));
        assert_eq!(names("", "TLS14").unwrap_err().0, "tls_config.max_version");
        assert!(names("TLS13", "TLS12").unwrap_err().1.contains("below"));
    }

    #[test]
    fn skip_verify_and_client_certificates() {
        let skip = Settings {
            insecure_skip_verify: true,
            ..Settings::default()
        };
        assert!(config(skip).is_ok());
        let unreadable_ca = Settings {
            ca: "no pem here",
            ..skip
        };
        assert_eq!(
            config(unreadable_ca).err().unwrap_or_default().0,
            "tls_config.ca"
        );
        let client = |cert, key| {
            config(Settings {
                cert,
                key,
                ..Settings::default()
            })
            .err()
            .unwrap_or_default()
        };
        assert!(client("x", "").1.contains("go together"));
        assert!(client("", "x").1.contains("go together"));
        assert_eq!(client("no pem", "no pem").0, "tls_config.cert");
        let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        let e = client(cert, "no pem");
        assert_eq!(e.0, "tls_config.key", "{e:?}");
    }
}
