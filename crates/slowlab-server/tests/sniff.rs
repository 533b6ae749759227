//! Telling HTTP/2 from HTTP/1.1 when the first bytes are only part of the h2 preface: the wait for
//! the rest is on the socket, not a timer, and the bytes read meanwhile still reach hyper.
//!
//! Its own test binary: the CPU-time test measures the whole process.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{blocking, get, parse};
use slowlab_server::{Config, spawn};

/// This process's user and system CPU time, in clock ticks (Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

const CONNECTIONS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_prefaces_cost_no_cpu_while_they_wait() {
    if cpu_ticks().is_none() {
        eprintln!("skipped: /proc/self/stat is not available to measure CPU time");
        return;
    }
    // Two sockets per connection in this process.
    let _ = slowlab_server::raise_open_file_limit();
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let held = blocking(move || {
        (0..CONNECTIONS)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(b"PRI").unwrap();
                stream
            })
            .collect::<Vec<_>>()
    })
    .await;
    // Let every connection reach its wait, then measure a quiet second and a half.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_ticks().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let used = cpu_ticks().unwrap() - before;
    // Re-peeking every millisecond, 2,000 connections took about 35 ticks (0.35 s of CPU) in this
    // second and a half. Waiting on readiness they take none; 12 ticks is a generous bound.
    assert!(
        used < 12,
        "{used} ticks of CPU while {CONNECTIONS} partial prefaces waited"
    );
    assert_eq!(blocking(move || get(addr, "/healthz")).await.status, 200);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_read_while_sniffing_still_reach_the_request() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let answer = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // "P" could start the h2 preface; "OST" shows it does not.
        stream.write_all(b"P").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream
            .write_all(b"OST /0 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        parse(&bytes)
    })
    .await;
    // The whole method arrived: POST is not allowed on the delay endpoint.
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json()["error"], "method_not_allowed");

    let settings = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(b"\r\nSM\r\n\r\n").unwrap();
        stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).unwrap();
        header
    })
    .await;
    // The server's first frame: its SETTINGS (type 4) on stream 0.
    assert_eq!(settings[3], 4, "{settings:?}");
    assert_eq!(&settings[5..9], &[0, 0, 0, 0]);
}
