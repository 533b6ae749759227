//! TLS settings (the `tls` feature): certificates and keys that cannot be used are refused with
//! the file named, and a TLS server says so in its URL.
#![cfg(feature = "tls")]

mod common;

use std::path::PathBuf;

use common::scratch;
use slowlab_server::{Config, Tls, spawn};

/// A self-signed certificate and its key, as PEM files in `dir`, named `stem`.
fn pem_pair(dir: &std::path::Path, stem: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn a_matching_pair_loads_and_has_a_fingerprint() {
    let folder = scratch("tls-good");
    let dir = folder.path();
    let (cert, key) = pem_pair(dir, "a");
    let tls = Tls::from_files(&cert, &key).unwrap();
    // 32 bytes as hex pairs joined by colons.
    assert_eq!(tls.fingerprint().len(), 32 * 3 - 1, "{}", tls.fingerprint());
    let made = Tls::self_signed("127.0.0.1".parse().unwrap()).unwrap();
    assert!(made.names().iter().any(|n| n == "localhost"));
    assert_ne!(made.fingerprint(), tls.fingerprint());
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let folder = scratch("tls-mismatch");
    let dir = folder.path();
    let (cert, _) = pem_pair(dir, "a");
    let (_, other_key) = pem_pair(dir, "b");
    let err = Tls::from_files(&cert, &other_key).unwrap_err().to_string();
    assert!(err.contains("a.crt") && err.contains("b.key"), "{err}");
}

#[test]
fn unreadable_or_wrong_files_are_refused_naming_the_file() {
    let folder = scratch("tls-bad");
    let dir = folder.path();
    let (cert, key) = pem_pair(dir, "a");
    let missing = dir.join("missing.pem");
    let err = Tls::from_files(&missing, &key).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    let err = Tls::from_files(&cert, &missing).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    // A certificate where the key should be.
    let err = Tls::from_files(&cert, &cert).unwrap_err().to_string();
    assert!(
        err.contains("a.crt") && err.contains("private key"),
        "{err}"
    );
}

#[tokio::test]
async fn a_tls_server_has_an_https_url() {
    let server = spawn(Config {
        tls: Some(Tls::self_signed("127.0.0.1".parse().unwrap()).unwrap()),
        ..Config::default()
    })
    .await
    .unwrap();
    assert!(server.url("/1").starts_with("https://127.0.0.1:"));
}
