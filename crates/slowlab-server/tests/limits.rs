//! Limits over a real socket: the connection cap and the header read timeout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{blocking, eventually, get};
use slowlab_server::{Config, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_connections_a_connection_waits_for_one_to_close() {
    let server = spawn(Config {
        max_connections: Some(1),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let start = Instant::now();
    let first = tokio::task::spawn_blocking(move || {
        let raw = get(addr, "/0.5");
        (raw.status, start.elapsed())
    });
    assert!(eventually(Duration::from_secs(5), || server.stats().in_flight == 1).await);
    // The second connection is accepted by the kernel, but not served until the first closes.
    let second = tokio::task::spawn_blocking(move || {
        let raw = get(addr, "/0");
        (raw.status, start.elapsed())
    });
    let (first_status, first_end) = first.await.unwrap();
    let (second_status, second_end) = second.await.unwrap();
    assert_eq!((first_status, second_status), (200, 200));
    // The second asked for no wait at all, yet could only be answered once the first connection,
    // which held the only slot for its 0.5 s wait, had closed.
    assert!(
        second_end >= Duration::from_millis(500),
        "second answered at {second_end:?} (first at {first_end:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let server = spawn(Config {
        header_read_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let answer = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // Half a request line, then nothing: a slowloris.
        stream.write_all(b"GET /0 HTTP/1.1\r\nHost: t").unwrap();
        let mut bytes = Vec::new();
        // The server closes the connection (hyper may first answer 408); the read ends either way.
        stream.read_to_end(&mut bytes).map(|_| bytes)
    })
    .await;
    let bytes = answer.expect("the connection is closed, not left hanging");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // Still serving others.
    assert_eq!(blocking(move || get(addr, "/0")).await.status, 200);
}
