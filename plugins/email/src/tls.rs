//! TLS to the smarthost (STARTTLS, or TLS from the first byte on port 465):
//! rustls with the pure-Rust RustCrypto provider, verifying the server against
//! Mozilla's roots or the CA certificates the configuration gives.

use crate::smtp::Failure;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Client settings: trust `ca_pem`'s certificates if any, else Mozilla's roots.
pub fn config(ca_pem: &str) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    if ca_pem.trim().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("holds no certificate".to_owned());
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("no TLS version available: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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
        assert!(config("").is_ok());
        let e = config("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("not PEM certificates"), "{e}");
        assert_eq!(
            config("no pem here").err().unwrap_or_default(),
            "holds no certificate"
        );
        assert!(valid_server_name("mail.example.com"));
        assert!(valid_server_name("127.0.0.1"));
        assert!(!valid_server_name("not a name"));
    }
}
