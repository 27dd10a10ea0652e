//! The HTTP client a scrape job or an HTTP discovery pulls with, built from its
//! [`HttpClientConfig`]: rustls with the system's roots or the job's CA, an optional
//! client certificate, a server name to verify instead of the URL's host, and the
//! `insecure_skip_verify` escape hatch.

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use crate::config::{HttpClientConfig, Secret, TlsConfig};

/// The `User-Agent` Pharos scrapes with.
pub fn user_agent() -> String {
    format!("Pharos/{}", crate::telemetry::build::VERSION)
}

/// Builds a client. Files named by the configuration (passwords, certificates) are read
/// now, so an unreadable one fails the job's start or reload with the file's name.
pub fn build(cfg: &HttpClientConfig) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    if let Some(basic) = &cfg.basic_auth {
        let password = basic.password.read()?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", basic.username));
        headers.insert(
            reqwest::header::AUTHORIZATION,
            sensitive(&format!("Basic {token}"))?,
        );
    }
    if let Some(auth) = &cfg.authorization {
        let credentials = match &auth.credentials {
            Secret::None => String::new(),
            s => s.read()?,
        };
        headers.insert(
            reqwest::header::AUTHORIZATION,
            sensitive(&format!("{} {credentials}", auth.kind))?,
        );
    }
    let tls = tls_config(cfg.tls_config.as_ref().unwrap_or(&TlsConfig::default()))?;
    let redirects = if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .user_agent(user_agent())
        .default_headers(headers)
        .redirect(redirects)
        .gzip(true)
        .use_preconfigured_tls(tls)
        .build()
        .context("building the HTTP client")
}

fn sensitive(value: &str) -> anyhow::Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value)
        .context("credentials contain characters not allowed in an HTTP header")?;
    v.set_sensitive(true);
    Ok(v)
}

fn tls_config(cfg: &TlsConfig) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading ca_file {path}"))?
            {
                let cert = cert.with_context(|| format!("parsing ca_file {path}"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("adding a certificate from ca_file {path}"))?;
            }
        }
        None => {
            // A broken certificate in the system store must not stop scraping over
            // plain HTTP; the ones that load are used.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let roots = Arc::new(roots);
    let verifier: Arc<dyn ServerCertVerifier> = if cfg.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(provider))
    } else {
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .context("building the certificate verifier")?;
        match &cfg.server_name {
            Some(name) => Arc::new(VerifyAs {
                name: ServerName::try_from(name.clone()).with_context(|| {
                    format!("tls_config.server_name {name:?} is not a valid name")
                })?,
                inner: webpki,
            }),
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading cert_file {cert}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing cert_file {cert}"))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading key_file {key}"))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .with_context(|| format!("using {cert} and {key} as the client certificate"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies the server's certificate against a configured name (`tls_config.server_name`)
/// rather than the host in the URL, e.g. when targets are addressed by IP.
#[derive(Debug)]
struct VerifyAs {
    name: ServerName<'static>,
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify: true`: any certificate is accepted, but handshake signatures
/// are still checked so the connection is at least to the holder of that certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let cfg = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let err = format!("{:#}", tls_config(&cfg).unwrap_err());
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
