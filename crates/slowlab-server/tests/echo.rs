//! `/anything`: what the client sent comes back as JSON, after the wait its options ask for.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Raw, blocking, parse};
use slowlab_server::{Config, spawn};

/// Sends `head` and `body` (with its Content-Length) and reads the whole answer.
fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    parse(&bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_path_query_headers_and_body_come_back_intact() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let started = Instant::now();
    let raw = blocking(move || {
        send(
            addr,
            "PATCH /anything/orders/42?x=1&x=2&name=a+b%21&delay=0.2&status=202 HTTP/1.1\r\n\
             Host: test\r\nX-Tenant: acme\r\nX-Multi: one\r\nX-Multi: two\r\n\
             Content-Type: application/json",
            br#"{"qty": 3, "note": "caf\u00e9"}"#,
        )
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "delay=0.2 waited"
    );
    assert_eq!(raw.status, 202, "status= applies: {}", raw.body);
    assert!(
        raw.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let json = raw.json();
    assert_eq!(json["method"], "PATCH");
    assert_eq!(json["path"], "/anything/orders/42");
    assert_eq!(json["query"]["x"], serde_json::json!(["1", "2"]));
    assert_eq!(json["query"]["name"], serde_json::json!(["a b!"]));
    assert_eq!(json["query"]["status"], serde_json::json!(["202"]));
    assert_eq!(
        json["raw_query"],
        "x=1&x=2&name=a+b%21&delay=0.2&status=202"
    );
    assert_eq!(json["headers"]["x-tenant"], serde_json::json!(["acme"]));
    assert_eq!(
        json["headers"]["x-multi"],
        serde_json::json!(["one", "two"])
    );
    assert_eq!(json["body"], r#"{"qty": 3, "note": "caf\u00e9"}"#);
    assert_eq!(json["json"]["qty"], 3);
    assert_eq!(json["json"]["note"], "café");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_body_comes_back_in_base64() {
    let server = spawn(Config::default()).await.unwrap();
    let addr = server.addr();
    let raw = blocking(move || {
        send(
            addr,
            "POST /anything HTTP/1.1\r\nHost: t",
            &[0, 159, 146, 150],
        )
    })
    .await;
    assert_eq!(raw.status, 200);
    let json = raw.json();
    assert_eq!(json["body"], serde_json::Value::Null);
    assert_eq!(json["body_base64"], "AJ+Slg==");
    assert_eq!(json["body_bytes"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_and_bad_options_are_json_4xx() {
    let server = spawn(Config {
        max_body_bytes: 16,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let raw = blocking(move || send(addr, "POST /anything HTTP/1.1\r\nHost: t", &[b'x'; 17])).await;
    assert_eq!(raw.status, 413);
    assert_eq!(raw.json()["error"], "body_too_large");
    assert!(
        raw.json()["detail"]
            .as_str()
            .unwrap()
            .contains("--max-body-bytes")
    );
    let raw = blocking(move || send(addr, "POST /anything HTTP/1.1\r\nHost: t", &[b'x'; 16])).await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    for query in ["status=42", "mix=503:2", "delay=abc", "delay=1&delay=2"] {
        let raw = blocking(move || {
            send(
                addr,
                &format!("GET /anything?{query} HTTP/1.1\r\nHost: t"),
                b"",
            )
        })
        .await;
        assert_eq!(raw.status, 400, "{query}: {}", raw.body);
        assert!(raw.json()["error"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_on_the_echo_is_served() {
    let server = spawn(Config::default()).await.unwrap();
    let err = common::hyper_get(server.addr(), "/anything?fault=hangup")
        .await
        .unwrap_err();
    assert!(err.is_incomplete_message(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_answers_over_http2_too() {
    let server = spawn(Config::default()).await.unwrap();
    let mut sender = common::h2_client(server.addr()).await;
    let (status, body) = common::h2_get(&mut sender, server.addr(), "/anything/x?a=1&status=203")
        .await
        .unwrap();
    assert_eq!(status, 203);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/anything/x");
    assert_eq!(json["query"]["a"], serde_json::json!(["1"]));
}

/// Slowloris on the body: a chunked upload of one byte every 0.3 s is answered with a JSON 408 at
/// `--body-read-timeout`, long before the upload would have ended, and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_answered_408_at_the_body_read_timeout() {
    let server = spawn(Config {
        body_read_timeout: Duration::from_secs(1),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let (raw, answered_after) = blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "POST /anything HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let started = Instant::now();
        // 20 bytes at one every 0.3 s: the whole upload would take 6 s.
        let mut writer = stream.try_clone().unwrap();
        let dripper = std::thread::spawn(move || {
            for _ in 0..20 {
                if writer.write_all(b"1\r\nx\r\n").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let _ = writer.write_all(b"0\r\n\r\n");
        });
        let mut bytes = Vec::new();
        // The server closes after its answer, with the upload unfinished.
        let _ = stream.read_to_end(&mut bytes);
        let answered_after = started.elapsed();
        dripper.join().unwrap();
        (parse(&bytes), answered_after)
    })
    .await;
    assert_eq!(raw.status, 408, "{}", raw.body);
    let json = raw.json();
    assert_eq!(json["error"], "body_timeout");
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("--body-read-timeout"),
        "{json}"
    );
    assert!(
        answered_after >= Duration::from_secs(1) && answered_after < Duration::from_secs(5),
        "answered after {answered_after:?}"
    );
}

/// The same over HTTP/2: a stream whose body trickles in gets the JSON 408 on its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_h2_body_is_answered_408_at_the_body_read_timeout() {
    let server = spawn(Config {
        body_read_timeout: Duration::from_secs(1),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{addr}/anything"))
        .body(())
        .unwrap();
    let started = Instant::now();
    let (response, mut body) = client.send_request(request, false).unwrap();
    // 20 bytes at one every 0.3 s: the whole upload would take 6 s.
    let dripper = tokio::spawn(async move {
        for _ in 0..20 {
            if body
                .send_data(bytes::Bytes::from_static(b"x"), false)
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let _ = body.send_data(bytes::Bytes::new(), true);
    });
    let response = response.await.unwrap();
    let answered_after = started.elapsed();
    assert_eq!(response.status(), 408);
    let mut received = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = received.data().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(json["error"], "body_timeout");
    assert!(
        answered_after >= Duration::from_secs(1) && answered_after < Duration::from_secs(5),
        "answered after {answered_after:?}"
    );
    dripper.abort();
}
