//! Query options of `/{seconds}` over a real socket: delay shapes, status, body size, methods,
//! clamping, and the refusals that explain themselves.

mod common;

use std::time::{Duration, Instant};

use common::{blocking, exchange, get};
use slowlab_server::{Config, OverMax, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_option_lists_the_known_ones() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let raw = blocking(move || get(addr, "/0.1?jiter=0.5")).await;
    assert_eq!(raw.status, 400);
    let json = raw.json();
    assert_eq!(json["error"], "unknown_option");
    let detail = json["detail"].as_str().unwrap();
    assert!(detail.contains("\"jiter\""), "{detail}");
    assert!(detail.contains("jitter, dist"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_and_conflicts_are_json_400s() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    for (path, code) in [
        ("/1?jitter=-1", "bad_option"),
        ("/1?status=abc", "bad_option"),
        ("/1?status=99", "bad_option"),
        ("/1?status=600", "bad_option"),
        ("/1?drip=0", "bad_option"),
        ("/1?fault=boom", "bad_option"),
        ("/1?seed=1&seed=2", "bad_option"),
        ("/1?min=1", "conflicting_options"),
        ("/1?dist=uniform&jitter=1", "conflicting_options"),
        ("/1?bytes=999999999999", "too_large"),
    ] {
        let raw = blocking(move || get(addr, path)).await;
        assert_eq!(raw.status, 400, "{path}: {}", raw.body);
        assert_eq!(raw.json()["error"], code, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drawn_delays_are_reported_and_repeat_with_a_seed() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let path = "/0.1?jitter=0.1&seed=42";
    let first = blocking(move || get(addr, path)).await;
    let second = blocking(move || get(addr, path)).await;
    assert_eq!(first.status, 200);
    // The echo stays the requested delay (the article's contract).
    assert_eq!(first.body, r#"{"time_elapsed": 0.1}"#);
    let drawn: f64 = first
        .header("x-slowlab-drawn-delay")
        .expect("a drawn-delay header")
        .parse()
        .unwrap();
    assert!((0.0..=0.2).contains(&drawn), "{drawn}");
    assert_eq!(
        first.header("x-slowlab-drawn-delay"),
        second.header("x-slowlab-drawn-delay")
    );
    let waited: f64 = first
        .header("server-timing")
        .unwrap()
        .strip_prefix("wait;dur=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        waited >= drawn * 1000.0 - 1.0,
        "waited {waited} ms, drawn {drawn} s"
    );
    // A plain request draws nothing.
    let plain = blocking(move || get(addr, "/0")).await;
    assert_eq!(plain.header("x-slowlab-drawn-delay"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_bytes_shape_the_answer() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let raw = blocking(move || get(addr, "/0.05?status=503")).await;
    assert_eq!(raw.status, 503);
    assert_eq!(raw.body, r#"{"time_elapsed": 0.05}"#);

    let raw = blocking(move || get(addr, "/0?bytes=200000")).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-length"), Some("200000"));
    assert_eq!(raw.body.len(), 200_000);
    // Still one JSON document: the padding is whitespace.
    assert_eq!(raw.json()["time_elapsed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_clamps_when_asked_and_says_so() {
    let server = spawn(Config {
        max_delay: Duration::from_millis(200),
        over_max: OverMax::Clamp,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let started = Instant::now();
    let raw = blocking(move || get(addr, "/30")).await;
    // It waited the cap, not nothing; that it did not wait the 30 s asked for is the header's and
    // the echo's to say (a generous bound only keeps a broken clamp from hanging the test).
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("x-slowlab-clamped"), Some("30"));
    assert_eq!(raw.body, r#"{"time_elapsed": 30}"#);
    // A drawn delay over the cap is clamped too.
    let raw = blocking(move || get(addr, "/0.1?dist=uniform&min=40&max=50")).await;
    assert_eq!(raw.status, 200);
    assert!(raw.header("x-slowlab-clamped").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_method_lets_every_method_wait() {
    let strict = spawn(Config::default()).await.unwrap();
    let open = spawn(Config {
        any_method: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let (strict, open) = (strict.addr(), open.addr());
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let head = format!("{method} /0.05 HTTP/1.1\r\nHost: test\r\nContent-Length: 0");
        let refused = blocking({
            let head = head.clone();
            move || exchange(strict, &head)
        })
        .await;
        assert_eq!(refused.status, 405, "{method}");
        let served = blocking(move || exchange(open, &head)).await;
        assert_eq!(served.status, 200, "{method}");
        assert_eq!(served.body, r#"{"time_elapsed": 0.05}"#, "{method}");
    }
}
