//! TLS on the listening port (the `tls` feature): a certificate made at start-up
//! (`--tls-self-signed`) or read from PEM files (`--tls-cert`, `--tls-key`), with ALPN offering
//! `h2` and `http/1.1`.
//!
//! A port with TLS speaks TLS only: a plain HTTP/1.1 or h2c client fails its handshake. Each
//! connection is handshaken in its own task, bounded by the header read timeout, and then served
//! by the protocol ALPN chose, with the same faults as a plain connection.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// A certificate and key ready to serve, and what to tell people about them.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    fingerprint: String,
    names: Vec<String>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// A certificate or key that cannot be used; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl Tls {
    /// A self-signed certificate for `localhost`, 127.0.0.1, ::1 and `listen` (when it is another
    /// address), made now.
    pub fn self_signed(listen: IpAddr) -> Result<Tls, TlsError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let listen = listen.to_string();
        if !names.contains(&listen) && listen != "0.0.0.0" && listen != "::" {
            names.push(listen);
        }
        let made = rcgen::generate_simple_self_signed(names.clone())
            .map_err(|err| TlsError(format!("cannot make a self-signed certificate: {err}")))?;
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|err| TlsError(format!("cannot use the self-signed key: {err}")))?;
        Tls::new(vec![cert], key, names, "the self-signed certificate")
    }

    /// The certificate chain in `cert` and the private key in `key`, both PEM.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|err| TlsError(format!("{}: not a PEM certificate: {err}", cert.display())))?;
        if chain.is_empty() {
            return Err(TlsError(format!(
                "{}: no certificate in the file",
                cert.display()
            )));
        }
        let private = PrivateKeyDer::from_pem_file(key)
            .map_err(|err| TlsError(format!("{}: not a PEM private key: {err}", key.display())))?;
        let what = format!("{} and {}", cert.display(), key.display());
        Tls::new(chain, private, Vec::new(), &what)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        names: Vec<String>,
        what: &str,
    ) -> Result<Tls, TlsError> {
        let fingerprint = Sha256::digest(chain[0].as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError(format!("TLS set-up: {err}")))?
            .with_no_client_auth()
            // Refuses a key that does not belong to the certificate.
            .with_single_cert(chain, key)
            .map_err(|err| TlsError(format!("{what}: {err}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            fingerprint,
            names,
        })
    }

    /// The SHA-256 fingerprint of the certificate, as `AB:CD:...`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The names a self-signed certificate was made for (empty for one read from files).
    pub fn names(&self) -> &[String] {
        &self.names
    }
}
