//! Faults and dripping bodies as a real client sees them: hyper's own error kinds, and bytes as
//! they arrive on a socket.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{blocking, h2_client, h2_get, hyper_get};
use slowlab_server::{Config, spawn};

fn io_kind(err: &hyper::Error) -> Option<ErrorKind> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_is_a_connection_reset() {
    let server = spawn(Config::default()).await.unwrap();
    let err = hyper_get(server.addr(), "/0.05?fault=reset")
        .await
        .unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::ConnectionReset), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_is_an_incomplete_message() {
    let server = spawn(Config::default()).await.unwrap();
    let err = hyper_get(server.addr(), "/0.05?fault=hangup")
        .await
        .unwrap_err();
    assert!(err.is_incomplete_message(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_is_a_parse_error() {
    let server = spawn(Config::default()).await.unwrap();
    let err = hyper_get(server.addr(), "/0.05?fault=malformed")
        .await
        .unwrap_err();
    assert!(err.is_parse(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_promises_more_than_it_sends() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    // hyper sees the headers, then a body that ends early.
    let err = hyper_get(addr, "/0.05?fault=truncate&bytes=1000")
        .await
        .unwrap_err();
    // hyper: a body error, an unexpected end of file.
    assert_eq!(io_kind(&err), Some(ErrorKind::UnexpectedEof), "{err:?}");
    // On the wire: Content-Length 1000, 500 bytes, then the end.
    let bytes = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET /0?fault=truncate&bytes=1000 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    })
    .await;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase().contains("content-length: 1000"),
        "{head}"
    );
    assert_eq!(body.len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_never_answers_until_the_max_delay() {
    let server = spawn(Config {
        max_delay: Duration::from_millis(500),
        ..Config::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let err = hyper_get(server.addr(), "/0?fault=hang").await.unwrap_err();
    assert!(err.is_incomplete_message(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_fault_resets_only_its_stream() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let mut sender = h2_client(addr).await;
    for fault in ["reset", "hangup", "malformed"] {
        let err = h2_get(&mut sender, addr, &format!("/0.01?fault={fault}"))
            .await
            .unwrap_err();
        assert!(!err.is_incomplete_message(), "{fault}: {err:?}");
    }
    // The connection still serves.
    let (status, _) = h2_get(&mut sender, addr, "/0").await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_counted() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let _ = hyper_get(addr, "/0?fault=hangup").await;
    let metrics = blocking(move || common::get(addr, "/metrics")).await;
    assert!(
        metrics
            .body
            .contains(r#"slowlab_requests_total{status="200",outcome="fault"} 1"#),
        "{}",
        metrics.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drip_sends_headers_at_once_and_the_body_over_the_wait() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let (head_at, first_body_at, end_at, body) = blocking(move || {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /1.2?drip=4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut seen = Vec::new();
        let (mut head_at, mut first_body_at) = (None, None);
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                head_at.get_or_insert(start.elapsed());
                if seen.len() > end + 4 + 3 {
                    // A chunk-size line and data beyond the head.
                    first_body_at.get_or_insert(start.elapsed());
                }
            }
        }
        (
            head_at.unwrap(),
            first_body_at.unwrap(),
            start.elapsed(),
            seen,
        )
    })
    .await;
    let text = String::from_utf8_lossy(&body);
    let (head, chunked) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let (json, chunks) = dechunk(chunked);
    assert_eq!(json, r#"{"time_elapsed": 1.2}"#);
    assert_eq!(chunks, 4);
    assert!(end_at >= Duration::from_millis(1200), "ended at {end_at:?}");
    // Headers leave before the wait, the first chunk well before its end.
    assert!(head_at < first_body_at || head_at + Duration::from_millis(500) < end_at);
    assert!(
        first_body_at + Duration::from_millis(500) < end_at,
        "first body bytes at {first_body_at:?}, end at {end_at:?}"
    );
}

/// Decodes a chunked body; returns the data and the number of chunks.
fn dechunk(mut text: &str) -> (String, usize) {
    let (mut data, mut chunks) = (String::new(), 0);
    loop {
        let (size, rest) = text.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            return (data, chunks);
        }
        data.push_str(&rest[..size]);
        chunks += 1;
        text = &rest[size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drip_over_an_enormous_wait_does_not_break_the_server() {
    let server = spawn(Config {
        max_delay: Duration::MAX,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let head = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /18446744073709551615?drip=2 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the head");
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(blocking(move || common::get(addr, "/0")).await.status, 200);
}
