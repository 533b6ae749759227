//! `bps=N`: the body leaves at N bytes per second, as a client measures it.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{blocking, get};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use slowlab_server::{Config, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_megabytes_at_a_megabyte_per_second_take_two_seconds() {
    let server = spawn(Config::default()).await.unwrap();
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/0?bytes=2000000&bps=1000000")
        .header("host", "test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    // From the headers to the last byte: the body's own time.
    let headers_at = Instant::now();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0usize;
    let mut half_at = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            received += data.len();
            if received >= 1_000_000 && half_at.is_none() {
                half_at = Some(headers_at.elapsed());
            }
        }
    }
    let took = headers_at.elapsed();
    assert_eq!(received, 2_000_000);
    let (low, high) = (Duration::from_millis(1900), Duration::from_millis(2100));
    assert!(took >= low && took <= high, "2 MB at 1 MB/s took {took:?}");
    // Paced all the way, not held back and then sent in a burst.
    let half = half_at.unwrap();
    assert!(
        half >= Duration::from_millis(900) && half <= Duration::from_millis(1200),
        "the first megabyte took {half:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_request_is_done_when_its_last_byte_is_out() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let waiting = tokio::spawn(common::hyper_get(addr, "/0?bytes=3000&bps=10000"));
    // In flight while the body is paced (0.3 s), finished as ok after.
    assert!(common::eventually(Duration::from_secs(5), || server.stats().in_flight == 1).await);
    let (status, body) = waiting.await.unwrap().unwrap();
    assert_eq!((status, body.len()), (200, 3000));
    assert!(common::eventually(Duration::from_secs(5), || server.stats().in_flight == 0).await);
    let metrics = blocking(move || get(addr, "/metrics")).await.body;
    assert!(
        metrics.contains(r#"slowlab_requests_total{status="200",outcome="ok"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bps_is_a_json_400() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    for (query, code) in [
        ("bps=0", "bad_option"),
        ("bps=fast", "bad_option"),
        ("bps=-5", "bad_option"),
        ("bps=100&drip=2", "conflicting_options"),
    ] {
        let raw = blocking(move || get(addr, &format!("/0?{query}"))).await;
        assert_eq!(raw.status, 400, "{query}");
        let json = raw.json();
        assert_eq!(json["error"], code, "{query}");
        if code == "bad_option" {
            assert!(
                json["detail"]
                    .as_str()
                    .unwrap()
                    .contains("e.g. bps=1000000")
            );
        }
    }
}
