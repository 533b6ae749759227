//! The HTTP contract of the slow server, over a real socket on an ephemeral loopback port.
//!
//! Requests are written by hand so that malformed and oversized ones can be sent exactly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use slowlab_server::{Config, Server, spawn};

mod common;

use common::{blocking, eventually, exchange, get};

async fn server() -> Server {
    spawn(Config::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_seconds_echo_as_integers() {
    let server = server().await;
    let addr = server.addr();
    let (raw, waited) = blocking(move || {
        let started = Instant::now();
        (get(addr, "/1"), started.elapsed())
    })
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(raw.body, r#"{"time_elapsed": 1}"#);
    assert!(
        waited >= Duration::from_secs(1),
        "answered after {waited:?}"
    );
    assert!(
        raw.header("server-timing")
            .unwrap()
            .starts_with("wait;dur=")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimal_seconds_and_leading_zeros() {
    let server = server().await;
    let addr = server.addr();
    let cases = [
        ("/0.25", "0.25"),
        ("/0", "0"),
        ("/000", "0"),
        ("/0.250", "0.25"),
        ("/00.1", "0.1"),
        ("/0.000000001", "0.000000001"),
        ("/001", "1"),
    ];
    for (path, echo) in cases {
        let started = Instant::now();
        let raw = blocking(move || get(addr, path)).await;
        assert_eq!(raw.status, 200, "{path}");
        assert_eq!(raw.body, format!("{{\"time_elapsed\": {echo}}}"), "{path}");
        let echoed = &raw.json()["time_elapsed"];
        // Whole numbers are JSON integers, like the article's `int` endpoint answers.
        assert_eq!(echoed.is_u64(), !echo.contains('.'), "{path}");
        if path == "/0.25" {
            assert!(started.elapsed() >= Duration::from_millis(250));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_get_without_a_body() {
    let server = server().await;
    let addr = server.addr();
    let raw = blocking(move || exchange(addr, "HEAD /0.1 HTTP/1.1\r\nHost: test")).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(raw.body, "");
}

/// Every bad input answers a JSON 4xx with both keys and the expected code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_json_error() {
    let server = server().await;
    let addr = server.addr();
    let long_number = format!("/{}", "9".repeat(60));
    let cases: Vec<(String, u16, &str)> = vec![
        ("/1e3".into(), 400, "not_a_number"),
        ("/0x10".into(), 400, "not_a_number"),
        ("/+1".into(), 400, "not_a_number"),
        ("/.5".into(), 400, "not_a_number"),
        ("/1.".into(), 400, "not_a_number"),
        // A fullwidth digit one (U+FF11) looks like a number, but is not ASCII.
        ("/%EF%BC%91".into(), 400, "not_a_number"),
        ("/%2D1".into(), 400, "negative"),
        ("/-1".into(), 400, "negative"),
        ("/601".into(), 400, "too_large"),
        (long_number, 400, "too_large"),
        // Words are not a route; the 404's detail points at /{seconds}.
        ("/abc".into(), 404, "not_found"),
        ("/aaaa".into(), 404, "not_found"),
        ("/nan".into(), 404, "not_found"),
        ("/inf".into(), 404, "not_found"),
        ("/%201".into(), 404, "not_found"),
        ("/%FF".into(), 404, "not_found"),
        ("/1/2".into(), 404, "not_found"),
        ("/1/".into(), 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let raw = blocking({
            let path = path.clone();
            move || get(addr, &path)
        })
        .await;
        assert_eq!(raw.status, status, "{path}: {}", raw.body);
        assert_eq!(
            raw.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        let json = raw.json();
        assert_eq!(json["error"], code, "{path}");
        let detail = json["detail"].as_str().expect("a detail string");
        assert!(!detail.is_empty(), "{path}");
        assert!(detail.len() < 300, "{path}: detail too long: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_names_the_cap_and_the_flag() {
    let server = server().await;
    let addr = server.addr();
    let raw = blocking(move || get(addr, "/600.5")).await;
    assert_eq!(raw.status, 400);
    let detail = raw.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("600"), "{detail}");
    assert!(detail.contains("--max-delay"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_get_405_with_allow() {
    let server = server().await;
    let addr = server.addr();
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let raw = blocking(move || {
            exchange(
                addr,
                &format!("{method} /1 HTTP/1.1\r\nHost: test\r\nContent-Length: 0"),
            )
        })
        .await;
        assert_eq!(raw.status, 405, "{method}");
        assert_eq!(raw.header("allow"), Some("GET, HEAD"), "{method}");
        assert_eq!(raw.json()["error"], "method_not_allowed", "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_uri_and_headers() {
    let server = server().await;
    let addr = server.addr();
    let long_path = format!("/{}", "1".repeat(20_000));
    let raw = blocking(move || get(addr, &long_path)).await;
    assert_eq!(raw.status, 414);
    assert_eq!(raw.json()["error"], "uri_too_long");
    // The detail quotes no more than an excerpt.
    assert!(raw.body.len() < 400, "{}", raw.body);
    // Past the longest URI the `http` crate can hold, hyper answers before any of our code sees
    // the request, with its own bodiless 414 (as docs/server.md says): it has no hook for a body.
    let past_hyper = format!("/{}", "1".repeat(70_000));
    let raw = blocking(move || get(addr, &past_hyper)).await;
    assert_eq!(raw.status, 414);
    assert_eq!(raw.body, "");

    let big_header = format!(
        "GET /0 HTTP/1.1\r\nHost: test\r\nX-Big: {}",
        "a".repeat(40_000)
    );
    let raw = blocking(move || exchange(addr, &big_header)).await;
    assert_eq!(raw.status, 431);
    assert_eq!(raw.json()["error"], "headers_too_large");

    let many: String = (0..150).map(|i| format!("\r\nX-H{i}: v")).collect();
    let many_headers = format!("GET /0 HTTP/1.1\r\nHost: test{many}");
    let raw = blocking(move || exchange(addr, &many_headers)).await;
    assert_eq!(raw.status, 431);
    assert_eq!(raw.json()["error"], "headers_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_hangs_or_kills_the_server() {
    let server = server().await;
    let addr = server.addr();
    blocking(move || {
        for junk in [
            &b"\x00\x01\x02\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET /1 HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n",
        ] {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .unwrap();
            stream.write_all(junk).unwrap();
            let mut answer = Vec::new();
            // The server answers (hyper's 400) or closes, even with a reset; either way the read
            // ends before the timeout.
            if let Err(err) = stream.read_to_end(&mut answer) {
                assert!(
                    !matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "{junk:?}: no answer and no close within 15 s"
                );
            }
        }
    })
    .await;
    // Still serving.
    let raw = blocking(move || get(addr, "/0")).await;
    assert_eq!(raw.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_hold_no_thread() {
    // 200 concurrent one-second waits on a runtime of two workers: if a wait held a thread they
    // would queue up; here they all overlap, which the server's own peak in-flight count shows.
    let server = server().await;
    let addr = server.addr();
    let handles: Vec<_> = (0..200)
        .map(|_| tokio::task::spawn_blocking(move || get(addr, "/1").status))
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap(), 200);
    }
    assert!(
        server.stats().peak_in_flight >= 150,
        "peak in flight {}",
        server.stats().peak_in_flight
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_short_requests_finish_and_cuts_off_long_ones() {
    let server = spawn(Config {
        drain_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let short = tokio::task::spawn_blocking(move || get(addr, "/0.3"));
    let long = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET /30 HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes.len()
    });
    assert!(
        eventually(Duration::from_secs(20), || server.stats().in_flight >= 2).await,
        "the two requests never were in flight together: {:?}",
        server.stats()
    );
    let report = server.shutdown().await;
    assert_eq!(report.in_flight_at_shutdown, 2);
    assert_eq!(report.cut_off, 1);
    assert_eq!(short.await.unwrap().status, 200);
    assert_eq!(long.await.unwrap(), 0, "the cut-off request gets no answer");
}

/// A connection that has sent nothing has nothing to finish: the drain does not wait for it
/// (it used to, until the connection's header-read timeout), and neither does one that sent half
/// a TLS-less HTTP/2 preface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_sent_nothing_do_not_hold_up_the_drain() {
    let server = spawn(Config {
        header_read_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(60),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let silent = TcpStream::connect(addr).unwrap();
    let mut half_preface = TcpStream::connect(addr).unwrap();
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    assert!(
        eventually(Duration::from_secs(20), || server
            .metrics()
            .connections_open()
            >= 2)
        .await,
        "the server never accepted both connections"
    );
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("the drain ended before its deadline");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the drain took {:?}",
        started.elapsed()
    );
    assert_eq!(report.cut_off, 0);
    drop((silent, half_preface));
}

/// A one-segment path is a delay only if it looks like a number (percent-decoded, it starts with a
/// digit, a sign or a dot); the same path gets the same answer with and without rules, and with any
/// method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_are_not_found_numbers_are_checked_with_or_without_rules() {
    let rules = slowlab_server::rules::Rules::parse(
        "[[rule]]\npath = \"/api\"\ndelay = 0\n",
        "t.toml",
        std::path::Path::new("."),
    )
    .unwrap();
    let with_rules = spawn(Config {
        rules: Some(slowlab_server::rules::LiveRules::fixed(rules)),
        ..Config::default()
    })
    .await
    .unwrap();
    let plain = server().await;
    for addr in [plain.addr(), with_rules.addr()] {
        for (request, status, code) in [
            ("GET /aaaa", 404, "not_found"),
            ("POST /aaaa", 404, "not_found"),
            ("GET /%EF%BC%91", 400, "not_a_number"),
            ("GET /+1", 400, "not_a_number"),
            ("GET /-1", 400, "negative"),
            ("GET /.5", 400, "not_a_number"),
        ] {
            let raw =
                blocking(move || exchange(addr, &format!("{request} HTTP/1.1\r\nHost: t"))).await;
            assert_eq!(raw.status, status, "{request}: {}", raw.body);
            let json = raw.json();
            assert_eq!(json["error"], code, "{request}");
            if status == 404 {
                let detail = json["detail"].as_str().unwrap();
                assert!(detail.contains("/{seconds}"), "{request}: {detail}");
            }
        }
    }
}
