//! Hostile clients: connections that stall, hold slots, or pile up work. Each test asserts the
//! exact status or timeout, and that the server still answers `/healthz` afterwards.
//!
//! Timing bounds are structural and generous: "another client is served within the timeout + 2 s",
//! never a tight wall-clock limit.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{blocking, eventually, get, h2_client, h2_get, parse};
use slowlab_server::metrics::{CloseReason, Outcome};
use slowlab_server::{Config, Model, Server, spawn};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
/// HEADERS on stream 1 with END_STREAM but without END_HEADERS: the header block stays open.
const H2_OPEN_HEADERS: &[u8] = &[0, 0, 1, 1, 1, 0, 0, 0, 1, 0x82];

/// The server's timeouts in these tests: short, so a lock-out would show within seconds.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The generous bound on top of a timeout.
const SLACK: Duration = Duration::from_secs(2);
/// How long another client may wait for its turn: ten times the timeouts that free a slot, and a
/// sixth of the idle timeout that a lock-out would last.
const TURN: Duration = Duration::from_secs(10);

/// Ten connection slots, one-second timeouts.
fn ten_slots() -> Config {
    Config {
        max_connections: Some(10),
        header_read_timeout: TIMEOUT,
        write_timeout: TIMEOUT,
        idle_timeout: Duration::from_secs(60),
        ..Config::default()
    }
}

/// `GET path` on a fresh connection, answered within `limit` or the test fails.
fn get_within(addr: SocketAddr, path: &str, limit: Duration) -> common::Raw {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    if let Err(err) = stream.read_to_end(&mut bytes) {
        panic!("{path} not answered within {limit:?}: {err}");
    }
    parse(&bytes)
}

/// Opens ten connections with `hostile`, waits until the server holds all ten, then checks that
/// another client is served, and that it got in because a hostile connection was closed for
/// `reason`. Locked out, it would wait for the idle timeout (60 s), past [`TURN`].
async fn not_locked_out<T: Send + 'static>(
    server: &Server,
    hostile: impl Fn(SocketAddr) -> T + Send + Sync + Copy + 'static,
    reason: CloseReason,
) -> Vec<T> {
    let addr = server.addr();
    let held = blocking(move || (0..10).map(|_| hostile(addr)).collect::<Vec<_>>()).await;
    assert!(
        eventually(Duration::from_secs(5), || server
            .metrics()
            .connections_open()
            == 10)
        .await,
        "the server never held the ten hostile connections"
    );
    assert_eq!(server.metrics().connections_closed(reason), 0);
    let answer = blocking(move || get_within(addr, "/healthz", TURN)).await;
    assert_eq!(answer.status, 200);
    assert!(server.metrics().connections_closed(reason) >= 1);
    held
}

fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_preface_only_is_closed_at_the_header_read_timeout() {
    let server = spawn(ten_slots()).await.unwrap();
    let _held = not_locked_out(
        &server,
        |addr| raw(addr, H2_PREFACE),
        CloseReason::HeaderTimeout,
    )
    .await;
    // The other nine close at about the same time as the one that let the client in.
    let closed = || {
        server
            .metrics()
            .connections_closed(CloseReason::HeaderTimeout)
    };
    assert!(
        eventually(SLACK, || closed() >= 10).await,
        "{} closed",
        closed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_headers_without_end_headers_are_closed_at_the_header_read_timeout() {
    let server = spawn(ten_slots()).await.unwrap();
    let open_block = |addr| {
        let mut stream = raw(addr, H2_PREFACE);
        stream.write_all(H2_SETTINGS).unwrap();
        stream.write_all(H2_OPEN_HEADERS).unwrap();
        stream
    };
    let _held = not_locked_out(&server, open_block, CloseReason::HeaderTimeout).await;
    // The other nine close at about the same time as the one that let the client in.
    let closed = || {
        server
            .metrics()
            .connections_closed(CloseReason::HeaderTimeout)
    };
    assert!(
        eventually(SLACK, || closed() >= 10).await,
        "{} closed",
        closed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_large_bodies_never_read_are_closed_at_the_write_timeout() {
    let server = spawn(ten_slots()).await.unwrap();
    let never_read = |addr| {
        raw(
            addr,
            b"GET /0?bytes=16777216 HTTP/1.1\r\nHost: test\r\n\r\n",
        )
    };
    let _held = not_locked_out(&server, never_read, CloseReason::WriteTimeout).await;
    let closed = || {
        server
            .metrics()
            .connections_closed(CloseReason::WriteTimeout)
    };
    assert!(
        eventually(TIMEOUT + SLACK, || closed() >= 10).await,
        "{} closed",
        closed()
    );
    // Abandoned mid-body: cancelled, not answered.
    assert!(server.metrics().requests(200, Outcome::Cancelled) >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_large_bodies_never_read_are_closed_at_the_write_timeout() {
    let server = spawn(ten_slots()).await.unwrap();
    let addr = server.addr();
    // An HTTP/2 client that reads the socket but never reads the body: the stream's flow-control
    // window stays shut, so the server's socket is never full. Only the body's stall shows.
    let mut responses = Vec::new();
    for _ in 0..10 {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, connection) = h2::client::handshake(stream).await.unwrap();
        tokio::spawn(connection);
        let request = http::Request::get(format!("http://{addr}/0?bytes=16777216"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        responses.push((client, response));
    }
    let stalled = || {
        server
            .metrics()
            .connections_closed(CloseReason::WriteTimeout)
    };
    assert_eq!(stalled(), 0);
    let answer = blocking(move || get_within(addr, "/healthz", TURN)).await;
    assert_eq!(answer.status, 200);
    assert!(
        stalled() >= 1,
        "let in before a stalled connection was closed"
    );
    assert!(
        eventually(TIMEOUT + SLACK, || stalled() >= 10).await,
        "{} closed",
        stalled()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_at_the_idle_timeout() {
    let server = spawn(Config {
        idle_timeout: TIMEOUT,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();

    // HTTP/1.1 keep-alive: the header read timeout is 10 s here, the idle timeout 1 s.
    let closed = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT + SLACK)).unwrap();
        stream
            .write_all(b"GET /0 HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(bytes),
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(err) => return Err(err.kind()),
            }
        }
    })
    .await;
    let bytes = closed.expect("the idle keep-alive connection was not closed");
    assert_eq!(parse(&bytes).status, 200);

    // HTTP/2: one request, then silence.
    let mut client = h2_client(addr).await;
    let (status, _) = h2_get(&mut client, addr, "/0").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        eventually(TIMEOUT + SLACK, || server
            .metrics()
            .connections_closed(CloseReason::Idle)
            >= 2)
        .await
    );
    assert!(
        eventually(SLACK, || client.is_closed()).await,
        "the HTTP/2 client never saw its connection close"
    );
    let metrics = blocking(move || get(addr, "/metrics")).await;
    assert!(
        metrics
            .body
            .contains(r#"slowlab_connections_closed_total{reason="idle"} 2"#),
        "{}",
        metrics.body
    );
    assert_eq!(blocking(move || get(addr, "/healthz")).await.status, 200);
}

/// Reads one answer off a keep-alive connection: its head, then as many body bytes as its
/// `Content-Length` says.
fn read_answer(stream: &mut TcpStream) -> common::Raw {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let answer = parse(&bytes);
            let length: usize = answer.header("content-length").unwrap().parse().unwrap();
            if bytes.len() >= end + 4 + length {
                return answer;
            }
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed part-way through an answer");
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// A keep-alive connection that waits between requests is idle, not slow: it is closed at
/// `--idle-timeout`, however short `--header-read-timeout` is. (hyper's own header timer, used
/// before, ran between requests too and closed it at the header read timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_keep_alive_waits_between_requests_until_the_idle_timeout() {
    let idle = TIMEOUT * 4;
    let server = spawn(Config {
        header_read_timeout: TIMEOUT,
        idle_timeout: idle,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let (statuses, closed_after) = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(idle + SLACK)).unwrap();
        let mut statuses = Vec::new();
        let mut answered = Instant::now();
        for pause in [TIMEOUT * 2, Duration::ZERO] {
            stream
                .write_all(b"GET /0 HTTP/1.1\r\nHost: test\r\n\r\n")
                .unwrap();
            statuses.push(read_answer(&mut stream).status);
            answered = Instant::now();
            // Twice the header read timeout between the two requests.
            std::thread::sleep(pause);
        }
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest);
        assert!(
            matches!(closed, Ok(0)),
            "not closed within the idle timeout + 2 s: {closed:?} {rest:?}"
        );
        (statuses, answered.elapsed())
    })
    .await;
    assert_eq!(
        statuses,
        [200, 200],
        "closed while waiting between requests"
    );
    // At the idle timeout (4 s), well past the header read timeout (1 s).
    assert!(
        closed_after > TIMEOUT * 3,
        "closed {closed_after:?} after the last answer"
    );
    let metrics = server.metrics();
    assert!(eventually(SLACK, || metrics.connections_closed(CloseReason::Idle) == 1).await);
    assert_eq!(metrics.connections_closed(CloseReason::HeaderTimeout), 0);
}

/// The header read timeout counts from a head's first byte, on the first request of a connection
/// and on every later one, and bytes trickling in do not extend it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_http1_head_after_a_served_request_is_cut_at_the_header_read_timeout() {
    let server = spawn(ten_slots()).await.unwrap();
    let addr = server.addr();
    let (first, outcome, took) = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT + SLACK)).unwrap();
        stream
            .write_all(b"GET /0 HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let first = read_answer(&mut stream).status;
        let started = Instant::now();
        stream.write_all(b"GET /0 HTTP/1.1\r\nX-Slow: ").unwrap();
        // One more header byte every 100 ms, for longer than the read below waits.
        let mut writer = stream.try_clone().unwrap();
        let trickle = std::thread::spawn(move || {
            while started.elapsed() < TIMEOUT * 2 + SLACK && writer.write_all(b"a").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut rest = Vec::new();
        let outcome = stream.read_to_end(&mut rest).map_err(|err| err.kind());
        let took = started.elapsed();
        trickle.join().unwrap();
        (first, outcome, took)
    })
    .await;
    assert_eq!(first, 200);
    // Closed with bytes unread, the socket may end in a reset rather than a FIN.
    assert!(
        matches!(outcome, Ok(0) | Err(ErrorKind::ConnectionReset)),
        "the trickling head was not cut off within the timeout + 2 s: {outcome:?} after {took:?}"
    );
    assert!(
        eventually(SLACK, || server
            .metrics()
            .connections_closed(CloseReason::HeaderTimeout)
            == 1)
        .await
    );
    assert_eq!(blocking(move || get(addr, "/healthz")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drip_pauses_never_count_as_a_stalled_write() {
    let server = spawn(Config {
        write_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    // Pauses of 1 s between chunks, over a write timeout and an idle timeout of 0.3 s.
    let answer = blocking(move || get(addr, "/2?drip=2")).await;
    assert_eq!(answer.status, 200);
    // Chunked: the JSON in two chunks, then the last, empty chunk.
    assert!(answer.body.contains("apsed\": 2}"), "{answer:?}");
    assert!(answer.body.ends_with("\r\n0\r\n\r\n"), "{answer:?}");
    assert_eq!(
        server
            .metrics()
            .connections_closed(CloseReason::WriteTimeout),
        0
    );
    assert_eq!(server.metrics().connections_closed(CloseReason::Idle), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_request_is_in_flight_and_never_idle() {
    let server = spawn(Config {
        idle_timeout: Duration::from_millis(300),
        max_delay: Duration::from_secs(3),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let hung = blocking(move || {
        let stream = raw(addr, b"GET /0?fault=hang HTTP/1.1\r\nHost: test\r\n\r\n");
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        stream
    })
    .await;
    assert!(eventually(SLACK, || server.stats().in_flight == 1).await);
    let health = blocking(move || get(addr, "/healthz")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["in_flight"], 1);
    // Past the idle timeout, still open: it hangs as asked, until --max-delay.
    let still_open = blocking(move || {
        let mut buf = [0u8; 16];
        // Closed (0 bytes) or answered: either way not hanging. A timed-out peek: still open.
        matches!(hung.peek(&mut buf), Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
    })
    .await;
    assert!(still_open, "the hanging request's connection was closed");
    assert_eq!(server.metrics().connections_closed(CloseReason::Idle), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_being_sent_is_in_flight() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let _never_read = blocking(move || {
        raw(
            addr,
            b"GET /0?bytes=16777216 HTTP/1.1\r\nHost: test\r\n\r\n",
        )
    })
    .await;
    assert!(eventually(SLACK, || server.stats().in_flight == 1).await);
    let health = blocking(move || get(addr, "/healthz")).await;
    assert_eq!(health.json()["in_flight"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_a_request_gets_503_over_capacity() {
    let server = spawn(Config {
        max_in_flight: Some(2),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let waiting: Vec<_> = (0..2)
        .map(|_| tokio::task::spawn_blocking(move || get(addr, "/1").status))
        .collect();
    assert!(eventually(SLACK, || server.stats().in_flight == 2).await);

    let refused = blocking(move || get(addr, "/0")).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let json = refused.json();
    assert_eq!(json["error"], "over_capacity");
    assert!(json["detail"].as_str().unwrap().contains("--max-in-flight"));
    assert_eq!(server.metrics().requests(503, Outcome::OverCapacity), 1);
    let metrics = blocking(move || get(addr, "/metrics")).await;
    assert!(
        metrics
            .body
            .contains(r#"slowlab_requests_total{status="503",outcome="over_capacity"} 1"#),
        "{}",
        metrics.body
    );
    assert_eq!(blocking(move || get(addr, "/healthz")).await.status, 200);
    for handle in waiting {
        assert_eq!(handle.await.unwrap(), 200);
    }
    // Capacity is back once they are done.
    assert_eq!(blocking(move || get(addr, "/0")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_n_runs_n_threads_beyond_tokios_512() {
    const THREADS: usize = 520;
    let server = spawn(Config {
        model: Model::Threads(NonZeroUsize::new(THREADS).unwrap()),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let client = h2_client(addr).await;
    let requests: Vec<_> = (0..THREADS)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let answer = h2_get(&mut client, addr, "/1").await;
                (answer, Instant::now())
            })
        })
        .collect();
    let mut ends = Vec::with_capacity(THREADS);
    for request in requests {
        let (answer, ended) = request.await.unwrap();
        let (status, body) = answer.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, Bytes::from_static(br#"{"time_elapsed": 1}"#));
        ends.push(ended);
    }
    // With 512 threads the last 8 would wait for a thread and end a whole wait (1 s) after the
    // first answers; side by side, the answers end together. Measured between the answers, not
    // from the start, so a slow start on a busy machine does not count.
    let spread = ends
        .iter()
        .max()
        .unwrap()
        .duration_since(*ends.iter().min().unwrap());
    assert!(
        spread < Duration::from_millis(900),
        "{THREADS} waits of 1 s ended {spread:?} apart: some waited for a thread"
    );
    assert_eq!(server.stats().peak_in_flight, THREADS as u64);
    assert_eq!(blocking(move || get(addr, "/healthz")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http1_headers_are_counted_as_a_header_timeout() {
    let server = spawn(ten_slots()).await.unwrap();
    let addr = server.addr();
    let closed = blocking(move || {
        // Half a request head: HTTP/1.1, whose head the watchdog times.
        let mut stream = raw(addr, b"GET /0 HTTP/1.1\r\nHost: te");
        stream.set_read_timeout(Some(TIMEOUT + SLACK)).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).map(|_| rest.len())
    })
    .await;
    assert!(
        closed.is_ok(),
        "not closed within the timeout + 2 s: {closed:?}"
    );
    let counted = || {
        server
            .metrics()
            .connections_closed(CloseReason::HeaderTimeout)
    };
    assert!(
        eventually(SLACK, || counted() == 1).await,
        "{} counted",
        counted()
    );
    assert_eq!(blocking(move || get(addr, "/healthz")).await.status, 200);
}
