//! Failure mixes (`mix=`) and the server's seeded sequence of draws (`Config::seed`): shares that
//! follow the probabilities, sequences that repeat, and refusals that quote the grammar.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use common::{blocking, get, hyper_get};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use slowlab_server::{App, Config, Stats, spawn};
use tower::ServiceExt;

/// Three standard deviations around `n * p` for a binomial count.
fn three_sigma(n: f64, p: f64) -> std::ops::RangeInclusive<u64> {
    let mean = n * p;
    let spread = 3.0 * (n * p * (1.0 - p)).sqrt();
    (mean - spread).floor() as u64..=(mean + spread).ceil() as u64
}

#[tokio::test]
async fn ten_thousand_requests_fail_at_the_share_asked_for() {
    // In process, through the whole router: a real socket adds nothing to a draw but time.
    // Seeded, so that CI does not fail the 0.3% of runs that land outside three deviations; any
    // seed is a fair sample.
    let config = Config {
        seed: Some(2026),
        ..Config::default()
    };
    // The composed service every connection runs: limits, routes and refusal counts.
    let router = App::new(Arc::new(config), Arc::new(Stats::default())).unwrap();
    let mut failures = 0u64;
    let mut plain = 0u64;
    for _ in 0..10_000 {
        // HTTP/1.1 requests need a Host header.
        let request = Request::get("/0?mix=503:0.2")
            .header("host", "test")
            .body(Body::empty())
            .unwrap();
        match router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
        {
            503 => failures += 1,
            200 => plain += 1,
            other => panic!("status {other} is in neither the mix nor the plain answer"),
        }
    }
    assert_eq!(failures + plain, 10_000);
    let expected = three_sigma(10_000.0, 0.2);
    assert!(
        expected.contains(&failures),
        "{failures} failures, expected {expected:?}"
    );
}

/// Sends `count` GETs of `path` one after another on one keep-alive HTTP/1.1 connection; the
/// statuses and the drawn-delay headers, in order.
async fn sequential(
    addr: std::net::SocketAddr,
    path: &str,
    count: usize,
) -> Vec<(u16, Option<String>)> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut seen = Vec::new();
    for _ in 0..count {
        sender.ready().await.unwrap();
        let request = Request::get(path)
            .header("host", "test")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let drawn = response
            .headers()
            .get("x-slowlab-drawn-delay")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        seen.push((status, drawn));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_over_a_real_socket_follows_its_share_and_metrics_agree() {
    let server = spawn(Config {
        seed: Some(2026),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let seen = sequential(addr, "/0?mix=500:0.5", 300).await;
    let failures = seen.iter().filter(|(s, _)| *s == 500).count() as u64;
    let plain = seen.iter().filter(|(s, _)| *s == 200).count() as u64;
    assert_eq!(failures + plain, 300);
    let expected = three_sigma(300.0, 0.5);
    assert!(expected.contains(&failures), "{failures} of 300");
    let metrics = blocking(move || get(addr, "/metrics")).await.body;
    let line = format!("slowlab_requests_total{{status=\"500\",outcome=\"ok\"}} {failures}");
    assert!(metrics.contains(&line), "no {line:?} in\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_server_repeats_its_sequence_for_a_sequential_client() {
    async fn run(seed: u64) -> Vec<(u16, Option<String>)> {
        let server = spawn(Config {
            seed: Some(seed),
            ..Config::default()
        })
        .await
        .unwrap();
        let mut seen = sequential(server.addr(), "/0?mix=503:0.3,500:0.2", 40).await;
        seen.extend(sequential(server.addr(), "/0.002?jitter=0.002", 10).await);
        server.shutdown().await;
        seen
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await, "same seed, same arrivals");
    assert_ne!(first, run(43).await, "another seed draws otherwise");
    // The sequence really draws: all three answers appear, and the delays differ.
    for status in [200, 500, 503] {
        assert!(first.iter().any(|(s, _)| *s == status), "{first:?}");
    }
    let delays: std::collections::HashSet<_> = first[40..].iter().map(|(_, d)| d).collect();
    assert!(delays.len() > 1, "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_urls_seed_keeps_its_meaning_on_a_seeded_server() {
    let server = spawn(Config {
        seed: Some(1),
        ..Config::default()
    })
    .await
    .unwrap();
    for seed in 0..8 {
        let path = format!("/0?mix=503:0.5&seed={seed}");
        let seen = sequential(server.addr(), &path, 5).await;
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "{path} drew differently: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_drawn_from_a_mix_is_served() {
    let server = spawn(Config::default()).await.unwrap();
    let err = hyper_get(server.addr(), "/0?mix=reset:1")
        .await
        .unwrap_err();
    let io = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    assert_eq!(io, Some(std::io::ErrorKind::ConnectionReset), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mix_is_a_json_400_with_the_grammar_and_an_example() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    for (query, reason) in [
        ("mix=503:0.7,500:0.5", "sum to more than 1"),
        ("mix=503:2", "not a probability"),
        ("mix=explode:0.1", "neither a status"),
        ("mix=503", "no ':'"),
        ("mix=503:0.1,503:0.2", "twice"),
    ] {
        let raw = blocking(move || get(addr, &format!("/1?{query}"))).await;
        assert_eq!(raw.status, 400, "{query}");
        let json = raw.json();
        assert_eq!(json["error"], "bad_option", "{query}");
        let detail = json["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{query}: {detail}");
        assert!(
            detail.contains("e.g. mix=200:0.7,503:0.2,reset:0.1"),
            "{query}: {detail}"
        );
    }
    for query in ["mix=reset:0.1&fault=hang", "mix=reset:0.1&drip=2"] {
        let raw = blocking(move || get(addr, &format!("/1?{query}"))).await;
        assert_eq!(raw.status, 400, "{query}");
        assert_eq!(raw.json()["error"], "conflicting_options", "{query}");
    }
}
