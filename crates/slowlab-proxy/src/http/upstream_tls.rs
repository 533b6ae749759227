//! TLS towards an `https://` upstream (rustls with the ring provider): which certificates are
//! trusted (Mozilla's roots, `--upstream-ca FILE`, or none checked with `--upstream-insecure`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use slowlab_client::any_certificate::AnyCertificate;

/// Which upstream certificates are accepted.
#[derive(Debug, Clone, Default)]
pub enum UpstreamTrust {
    /// Those issued by Mozilla's root CAs (webpki-roots): the public internet.
    #[default]
    PublicRoots,
    /// `--upstream-ca FILE`: those issued by the PEM certificates in the file (and only those).
    Ca(PathBuf),
    /// `--upstream-insecure`: any certificate; the handshake's signatures are still checked.
    Insecure,
}

/// Why the upstream's TLS settings cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UpstreamTlsError(String);

impl UpstreamTrust {
    /// The rustls client settings. ALPN is left to the connector, which offers `http/1.1` (the
    /// proxy speaks HTTP/1.1 upstream).
    pub fn client_config(&self) -> Result<ClientConfig, UpstreamTlsError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| UpstreamTlsError(format!("TLS set-up: {err}")))?;
        let config = match self {
            UpstreamTrust::PublicRoots => builder
                .with_root_certificates(RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                })
                .with_no_client_auth(),
            UpstreamTrust::Ca(file) => builder
                .with_root_certificates(roots_from(file)?)
                .with_no_client_auth(),
            UpstreamTrust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(AnyCertificate::new(provider))
                .with_no_client_auth(),
        };
        Ok(config)
    }
}

/// The PEM certificates in `file`, as trust anchors.
fn roots_from(file: &Path) -> Result<RootCertStore, UpstreamTlsError> {
    let name = file.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|err| {
            UpstreamTlsError(format!(
                "--upstream-ca {name}: not a PEM certificate file: {err}"
            ))
        })?;
    if certs.is_empty() {
        return Err(UpstreamTlsError(format!(
            "--upstream-ca {name}: no certificate in the file; give the PEM certificate (BEGIN CERTIFICATE) of the CA that signed the upstream's"
        )));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|err| {
            UpstreamTlsError(format!(
                "--upstream-ca {name}: a certificate cannot be trusted: {err}"
            ))
        })?;
    }
    Ok(roots)
}
