//! Requests a strict or hostile client sends, against a real server on a loopback port: the
//! longest inputs the limits allow, bodies where HTTP forbids one, `Host` and `*` rules. Each test
//! ends by checking that `/healthz` still answers.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use bytes::Bytes;
use common::{blocking, exchange, get};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use slowlab_server::{Config, Server, spawn};

async fn server(config: Config) -> Server {
    spawn(config).await.unwrap()
}

/// `/healthz` answers 200 on a fresh connection.
async fn assert_healthy(addr: SocketAddr) {
    let raw = blocking(move || get(addr, "/healthz")).await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.json()["status"], "ok");
}

// Item 1: no parser recurses on input; each is fed the longest input the limits allow.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_inputs_the_limits_allow_are_refused_cleanly() {
    let server = server(Config {
        max_uri_bytes: slowlab_server::config::MAX_URI_BYTES.max,
        max_header_bytes: slowlab_server::config::MAX_HEADER_BYTES.max,
        max_headers: slowlab_server::config::MAX_HEADERS.max,
        ..Config::default()
    })
    .await;
    let addr = server.addr();
    let room = slowlab_server::config::MAX_URI_BYTES.max;
    // The path, all minus signs (once a stack overflow), then all digits, dots and escapes.
    let cases = [
        (format!("/{}", "-".repeat(room - 1)), "not_a_number"),
        (format!("/-{}", "9".repeat(room - 2)), "negative"),
        (format!("/{}", "9".repeat(room - 1)), "too_large"),
        (format!("/{}", ".".repeat(room - 1)), "not_a_number"),
        (format!("/{}", "%2D".repeat((room - 1) / 3)), "not_a_number"),
        // The query parser: one long value, many empty pairs, many repeated keys.
        (format!("/0?jitter={}", "-".repeat(room - 10)), "bad_option"),
        (format!("/0?{}", "&".repeat(room - 3)), ""),
        (
            format!("/0?{}", "seed=1&".repeat((room - 3) / 7)),
            "bad_option",
        ),
        (format!("/0?{}=1", "k".repeat(room - 5)), "unknown_option"),
    ];
    for (path, code) in cases {
        assert!(path.len() <= room, "{}", path.len());
        let raw = blocking(move || get(addr, &path)).await;
        if code.is_empty() {
            assert_eq!(raw.status, 200, "{:.300}", raw.body);
        } else {
            assert_eq!(raw.status, 400, "{code}: {:.300}", raw.body);
            assert_eq!(raw.json()["error"], code);
        }
    }
    // Sixteen mebibytes of header values, the most allowed, are read and accepted.
    let big = "a".repeat(slowlab_server::config::MAX_HEADER_BYTES.max - 64);
    let raw =
        blocking(move || exchange(addr, &format!("GET /0 HTTP/1.1\r\nHost: t\r\nX-Big: {big}")))
            .await;
    assert_eq!(raw.status, 200, "{:.300}", raw.body);
    assert_healthy(addr).await;
}

// Item 9: bodies where HTTP forbids one.

/// What a strict client saw: status, headers (lower-case names) and the whole body.
#[derive(Debug)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The headers a HEAD answer must repeat: all but those that differ between any two answers,
    /// and `Transfer-Encoding`, which a HEAD answer may leave out (RFC 9112 §6.1; hyper does).
    fn comparable_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<_> = self
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "server-timing" | "transfer-encoding"))
            .cloned()
            .collect();
        headers.sort();
        headers
    }
}

/// One kept-alive connection of hyper's client, HTTP/1.1 or HTTP/2: a body sent where none may
/// be makes the next request on it fail (HTTP/1.1) or the stream fail (HTTP/2).
enum Strict {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

impl Strict {
    async fn connect(addr: SocketAddr, h2: bool) -> Strict {
        let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        if h2 {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(connection);
            Strict::Http2(sender)
        } else {
            let (sender, connection) = http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            Strict::Http1(sender)
        }
    }

    async fn send(&mut self, addr: SocketAddr, method: &Method, path: &str) -> Seen {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .unwrap();
        let result = match self {
            Strict::Http1(sender) => {
                sender.ready().await.unwrap();
                sender.send_request(request).await
            }
            Strict::Http2(sender) => {
                // HTTP/2 carries the authority in :authority, not in a Host header.
                let (mut parts, body) = request.into_parts();
                parts.headers.remove("host");
                sender.send_request(Request::from_parts(parts, body)).await
            }
        };
        let response = result.unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: body: {e:?}"))
            .to_bytes();
        Seen {
            status,
            headers,
            body,
        }
    }
}

/// The query shapes of the matrix: a plain answer, a dripped one, a padded one.
const SHAPES: [&str; 3] = ["", "&drip=2", "&bytes=100"];

/// Statuses that may not carry a body at all.
fn bodiless(status: u16) -> bool {
    matches!(status, 204 | 205 | 304)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_and_method_answers_with_a_body_only_where_http_allows_one() {
    let server = server(Config::default()).await;
    let addr = server.addr();
    for h2 in [false, true] {
        let protocol = if h2 { "h2" } else { "HTTP/1.1" };
        let mut client = Strict::connect(addr, h2).await;
        for shape in SHAPES {
            for status in 200..=599u16 {
                let path = format!("/0?status={status}{shape}");
                let get = client.send(addr, &Method::GET, &path).await;
                let head = client.send(addr, &Method::HEAD, &path).await;
                let at = format!("{protocol} {path}");
                if bodiless(status) && !shape.is_empty() {
                    // A body shape with a bodiless status is refused as a contradiction.
                    assert_eq!(get.status, 400, "{at}");
                    assert_eq!(head.status, 400, "{at}");
                    assert!(head.body.is_empty(), "{at}: HEAD with a body");
                    continue;
                }
                assert_eq!(get.status, status, "{at}");
                assert_eq!(head.status, status, "{at}");
                assert!(head.body.is_empty(), "{at}: HEAD with a body");
                assert_eq!(
                    head.comparable_headers(),
                    get.comparable_headers(),
                    "{at}: HEAD headers differ from GET's"
                );
                match status {
                    204 | 304 => {
                        assert!(get.body.is_empty(), "{at}: body {:?}", get.body);
                        assert_eq!(get.header("content-length"), None, "{at}");
                        assert_eq!(get.header("transfer-encoding"), None, "{at}");
                    }
                    205 => {
                        assert!(get.body.is_empty(), "{at}: body {:?}", get.body);
                        assert!(
                            matches!(get.header("content-length"), None | Some("0")),
                            "{at}"
                        );
                    }
                    _ => {
                        let body: serde_json::Value = serde_json::from_slice(&get.body)
                            .unwrap_or_else(|e| panic!("{at}: {e}: {:?}", get.body));
                        assert_eq!(body["time_elapsed"], 0, "{at}");
                        let expected = if shape == "&bytes=100" { 100 } else { 19 };
                        assert_eq!(get.body.len(), expected, "{at}");
                        if shape == "&drip=2" && !h2 {
                            assert_eq!(get.header("transfer-encoding"), Some("chunked"), "{at}");
                        } else if !h2 || shape != "&drip=2" {
                            assert_eq!(
                                get.header("content-length"),
                                Some(expected.to_string().as_str()),
                                "{at}"
                            );
                        }
                    }
                }
            }
        }
        // The same connection still serves: nothing stray was left on it.
        let last = client.send(addr, &Method::GET, "/0").await;
        assert_eq!(last.status, 200, "{protocol}");
    }
    assert_healthy(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_carry_gets_headers_on_every_route() {
    let server = server(Config::default()).await;
    let addr = server.addr();
    for h2 in [false, true] {
        let mut client = Strict::connect(addr, h2).await;
        for path in [
            "/0",
            "/0.2?drip=3",
            "/0?bytes=5000",
            "/healthz",
            "/",
            "/nope/nope",
            "/abc",
        ] {
            let get = client.send(addr, &Method::GET, path).await;
            let head = client.send(addr, &Method::HEAD, path).await;
            assert_eq!(head.status, get.status, "{path}");
            assert!(head.body.is_empty(), "{path}: HEAD with a body");
            assert!(!get.body.is_empty(), "{path}");
            let names = |seen: &Seen| {
                let mut names: Vec<String> = seen
                    .comparable_headers()
                    .into_iter()
                    .filter(|(k, _)| k != "content-length" || !path.starts_with("/healthz"))
                    .map(|(k, v)| {
                        if k == "content-length" {
                            format!("{k}: {v}")
                        } else {
                            k
                        }
                    })
                    .collect();
                names.dedup();
                names
            };
            // /healthz's uptime changes its length from one answer to the next.
            assert_eq!(names(&head), names(&get), "{path} over h2={h2}");
        }
    }
    // HEAD of a dripped answer over HTTP/1.1: no Content-Length: 0 where GET is chunked.
    let raw = blocking(move || exchange(addr, "HEAD /0.2?drip=3 HTTP/1.1\r\nHost: t")).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-length"), None, "{raw:?}");
    assert_healthy(addr).await;
}

/// curl, where installed, over the same matrix: over HTTP/1.1 every status on one kept-alive
/// connection per method and shape; over h2 a sample of statuses, one connection each (curl 7.88
/// cannot reuse a prior-knowledge connection). curl fails on a body it was told is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_accepts_every_answer() {
    if !tool_present("curl") {
        return;
    }
    let server = server(Config::default()).await;
    let addr = server.addr();
    blocking(move || {
        let curl = |h2: bool, head: bool, shape: &str, statuses: &[u16]| {
            let mut command = Command::new("curl");
            command.args(["--silent", "--show-error", "--write-out", "%{http_code}\n"]);
            command.arg(if h2 {
                "--http2-prior-knowledge"
            } else {
                "--http1.1"
            });
            if head {
                command.arg("--head");
            }
            for status in statuses {
                command.args(["--output", "/dev/null"]);
                command.arg(format!("http://{addr}/0?status={status}{shape}"));
            }
            let output = command.output().unwrap();
            let at = format!("curl h2={h2} head={head} {shape} {statuses:?}");
            assert!(
                output.status.success(),
                "{at}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let codes = String::from_utf8_lossy(&output.stdout);
            let seen: Vec<&str> = codes.lines().collect();
            let wanted: Vec<String> = statuses.iter().map(u16::to_string).collect();
            assert_eq!(seen, wanted, "{at}");
        };
        for head in [false, true] {
            for shape in SHAPES {
                let allowed = |s: &u16| shape.is_empty() || !bodiless(*s);
                let every: Vec<u16> = (200..=599).filter(allowed).collect();
                curl(false, head, shape, &every);
                for status in [200, 201, 204, 205, 206, 301, 304, 404, 418, 500, 503, 599] {
                    if allowed(&status) {
                        curl(true, head, shape, &[status]);
                    }
                }
            }
        }
    })
    .await;
    assert_healthy(addr).await;
}

/// Whether `tool` runs; if not, the test is skipped with a printed reason, or fails when
/// SLOWLAB_REQUIRE_TOOLS=1 (CI installs every tool).
fn tool_present(tool: &str) -> bool {
    let present = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("SLOWLAB_REQUIRE_TOOLS").is_none_or(|v| v != "1"),
            "{tool} is missing and SLOWLAB_REQUIRE_TOOLS=1"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    present
}

// Item 10: Host header rules for HTTP/1.1, `*` for OPTIONS alone.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_requests_need_exactly_one_valid_host() {
    let server = server(Config::default()).await;
    let addr = server.addr();
    for head in [
        "GET /0 HTTP/1.1",
        "GET /0 HTTP/1.1\r\nHost: a\r\nHost: b",
        "GET /0 HTTP/1.1\r\nHost: a b/c",
        "GET /0 HTTP/1.1\r\nHost: ",
        "GET /0?jitter=0 HTTP/1.1",
        "GET /healthz HTTP/1.1\r\nHost: x@y",
    ] {
        let raw = blocking(move || exchange(addr, head)).await;
        assert_eq!(raw.status, 400, "{head:?}: {raw:?}");
        assert_eq!(raw.json()["error"], "bad_host", "{head:?}");
    }
    for head in [
        "GET /0 HTTP/1.1\r\nHost: 127.0.0.1:8000",
        "GET /0 HTTP/1.1\r\nHost: [::1]",
        // HTTP/1.0 may leave Host out.
        "GET /0 HTTP/1.0",
    ] {
        let raw = blocking(move || exchange(addr, head)).await;
        assert_eq!(raw.status, 200, "{head:?}: {raw:?}");
    }
    assert_healthy(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asterisk_target_is_for_options_alone() {
    let server = server(Config::default()).await;
    let addr = server.addr();
    let raw = blocking(move || exchange(addr, "GET * HTTP/1.1\r\nHost: t")).await;
    assert_eq!(raw.status, 400, "{raw:?}");
    assert_eq!(raw.json()["error"], "bad_request_target");
    let raw = blocking(move || exchange(addr, "OPTIONS * HTTP/1.1\r\nHost: t")).await;
    assert_eq!(raw.status, 204, "{raw:?}");
    assert_eq!(raw.header("allow"), Some("GET, HEAD"));

    // Over HTTP/2 the target is `:path *`, sent here with the h2 crate.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    for (method, status) in [(Method::GET, 400), (Method::OPTIONS, 204)] {
        let uri = hyper::Uri::builder()
            .scheme("http")
            .authority(addr.to_string())
            .path_and_query("*")
            .build()
            .unwrap();
        let request = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), status, "{method} * over h2");
        client = client.ready().await.unwrap();
    }
    assert_healthy(addr).await;
}

// Items 2 to 4, for embedders: a Config that was never validated cannot crash the server.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unvalidated_config_with_extreme_values_still_serves() {
    let wild = Config {
        max_uri_bytes: usize::MAX,
        max_header_bytes: usize::MAX,
        max_headers: usize::MAX,
        header_read_timeout: std::time::Duration::MAX,
        h2_max_streams: u32::MAX,
        ..Config::default()
    };
    assert!(wild.validate().is_err());
    let server = server(wild).await;
    let addr = server.addr();
    let raw = blocking(move || get(addr, "/0")).await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let mut h2 = Strict::connect(addr, true).await;
    assert_eq!(h2.send(addr, &Method::GET, "/0").await.status, 200);
    assert_healthy(addr).await;
}
