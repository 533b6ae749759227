//! What sits between a client and slowlab: a browser that asks for `/favicon.ico`, and caches that
//! must not store an answer whose whole point is how long it took.

mod common;

use common::{blocking, exchange, get, h2_client, h2_get};
use slowlab_server::{Config, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_but_the_static_ones_may_be_stored() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    for path in [
        "/0",
        "/0.05",
        "/0?bytes=5000",
        "/0.05?drip=2",
        "/0?status=503",
        "/0?status=204",
        "/0?jitter=0.01",
        "/healthz",
        "/metrics",
        "/abc",
        "/1?jiter=1",
        "/nope/nope",
    ] {
        let raw = blocking(move || get(addr, path)).await;
        assert_eq!(
            raw.header("cache-control"),
            Some("no-store"),
            "{path}: {raw:?}"
        );
    }
    // Refusals made before routing: a URI over the limit, a missing Host, a HEAD, a bad method.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t", "1".repeat(10_000));
    for head in [
        long.as_str(),
        "GET /0 HTTP/1.1",
        "HEAD /0 HTTP/1.1\r\nHost: t",
        "DELETE /0 HTTP/1.1\r\nHost: t",
    ] {
        let head = head.to_owned();
        let raw = blocking(move || exchange(addr, &head)).await;
        assert_eq!(raw.header("cache-control"), Some("no-store"), "{raw:?}");
    }
    // The index page is static: briefly cacheable.
    let raw = blocking(move || get(addr, "/")).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("cache-control"), Some("max-age=60"));

    // The same over HTTP/2.
    let mut sender = h2_client(addr).await;
    let request = hyper::Request::get(format!("http://{addr}/0"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(h2_get(&mut sender, addr, "/healthz").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browsers_favicon_request_is_a_plain_404_and_no_refused_delay() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let raw = blocking(move || get(addr, "/favicon.ico")).await;
    assert_eq!(raw.status, 404, "{raw:?}");
    assert_eq!(raw.json()["error"], "not_found");
    assert_eq!(raw.header("cache-control"), Some("max-age=86400"));

    let metrics = blocking(move || get(addr, "/metrics")).await.body;
    let rejected: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("slowlab_requests_total") && l.contains("rejected"))
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert!(rejected.is_empty(), "counted as refused: {rejected:?}");

    let health = blocking(move || get(addr, "/healthz")).await;
    assert_eq!(health.status, 200);
}
