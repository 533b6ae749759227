//! Request bodies arrive intact, in every runner, at a small server written here that records
//! what it receives (HTTP/1.1 and h2c on one port).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use slowlab_client::{Endpoint, Mode, RequestOptions, Target, Workload, run};

/// What the server received: method, content type and body of each request.
type Received = Arc<Mutex<Vec<(Method, Option<String>, Bytes)>>>;

async fn recording_server() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let log = Arc::clone(&log);
                    async move {
                        let method = request.method().clone();
                        let kind = request
                            .headers()
                            .get(http::header::CONTENT_TYPE)
                            .map(|v| v.to_str().unwrap().to_owned());
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push((method, kind, body));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (base_url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runner_sends_the_body_byte_for_byte() {
    // Bytes that survive no accidental text handling: every value, a NUL, a CRLF, invalid UTF-8.
    let body: Bytes = (0..=255u8)
        .chain(*b"\r\n\0\xff end")
        .collect::<Vec<u8>>()
        .into();
    let cases: [(&str, Mode, RequestOptions); 5] = [
        ("sequential", Mode::Sequential, RequestOptions::default()),
        (
            "threads",
            Mode::Threads,
            RequestOptions {
                threads: Some(2),
                ..RequestOptions::default()
            },
        ),
        ("async", Mode::Async, RequestOptions::default()),
        (
            "async pool",
            Mode::Async,
            RequestOptions {
                concurrency: Some(2),
                ..RequestOptions::default()
            },
        ),
        (
            "http2",
            Mode::Async,
            RequestOptions {
                http2: true,
                ..RequestOptions::default()
            },
        ),
    ];
    for (name, mode, options) in cases {
        let (base_url, received) = recording_server().await;
        let endpoint = Endpoint::parse(&base_url).unwrap();
        let mut workload = Workload::new(endpoint, vec![Target::path("/submit"); 3]);
        workload.method = Method::POST;
        workload.body = body.clone();
        workload.headers.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        ));
        let report = run(mode, workload, options, |_| {}).await;
        for outcome in &report.outcomes {
            assert!(outcome.is_ok(), "{name}: {:?}", outcome.result);
        }
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 3, "{name}");
        for (method, kind, got) in received.iter() {
            assert_eq!(method, Method::POST, "{name}");
            assert_eq!(kind.as_deref(), Some("application/octet-stream"), "{name}");
            assert_eq!(got, &body, "{name}: the body arrived changed");
        }
    }
}
