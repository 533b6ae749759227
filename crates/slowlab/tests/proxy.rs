//! `slowlab proxy` as a process, in front of real upstreams: a second `slowlab serve`, Python's
//! `http.server`, nginx serving a static file, and a byte-counting sink.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Served, assert_usage_error, closed_port, scratch, slowlab, tool_available};

/// A running `slowlab proxy` and the addresses it printed.
struct Proxy {
    child: Child,
    addr: String,
    admin: String,
}

impl Proxy {
    /// `slowlab proxy --listen 127.0.0.1:0 --admin 127.0.0.1:0 --upstream UPSTREAM EXTRA...`.
    fn start(upstream: &str, extra: &[&str]) -> Proxy {
        Proxy::start_on("127.0.0.1:0", upstream, extra)
    }

    fn start_on(listen: &str, upstream: &str, extra: &[&str]) -> Proxy {
        let args = ["proxy", "--listen", listen, "--admin", "127.0.0.1:0"];
        Proxy::spawn(args.iter().chain(&["--upstream", upstream]).chain(extra))
    }

    /// `slowlab ARGS...`, which must start a proxy with `--admin`: its listening address
    /// (HTTP, HTTPS or TCP) and admin address, from the first two stdout lines.
    fn spawn<I, S>(args: I) -> Proxy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = slowlab()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = |prefix: &str| {
            let line = lines.next().unwrap().unwrap();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("unexpected line {line:?}"))
                .to_owned()
        };
        let listening = next("listening on ");
        let addr = listening
            .strip_prefix("http://")
            .or_else(|| listening.strip_prefix("https://"))
            .or_else(|| listening.strip_prefix("tcp://"))
            .unwrap_or_else(|| panic!("unexpected address {listening:?}"))
            .to_owned();
        let admin = next("admin on http://");
        Proxy { child, addr, admin }
    }

    /// The proxy's `/metrics`, from the admin port.
    fn metrics(&self) -> String {
        get(&self.admin, "/metrics").0.body_text()
    }

    /// How many client connections the proxy closed for `reason`, e.g. `header_timeout`.
    fn connections_closed(&self, reason: &str) -> u64 {
        let series = format!(r#"slowlab_connections_closed_total{{reason="{reason}"}}"#);
        counter(&self.metrics(), &series)
    }

    /// The proxy's peak resident memory (VmHWM) in KiB.
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stops the proxy and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        self.signal("TERM");
        let _ = self.child.wait();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as it arrived: head text and body bytes.
struct Reply(String, Vec<u8>);

impl Reply {
    fn status(&self) -> u16 {
        self.0
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.0.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.1).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.1)
            .unwrap_or_else(|err| panic!("{err}: {}{}", self.0, self.body_text()))
    }
}

/// Sends raw bytes on a fresh connection and reads until the server closes. Bodies are
/// de-chunked when the answer is chunked.
fn exchange(addr: &str, request: &[u8]) -> (Reply, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let took = started.elapsed();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split..].to_vec();
    let reply = Reply(head, Vec::new());
    if reply
        .header("transfer-encoding")
        .is_some_and(|te| te.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (Reply(reply.0, body), took)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..end])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
    out
}

fn get_request(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: proxied.test\r\n{extra_headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn get(addr: &str, path: &str) -> (Reply, Duration) {
    exchange(addr, &get_request(path, ""))
}

/// The sum of a counter's samples in Prometheus text whose line starts with `prefix`.
fn counter(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A response's end-to-end fields, names lowercased, sorted: what a proxy must pass on unchanged.
/// Left out are the hop-by-hop fields (RFC 9110 §7.6.1), `Via`, which the proxy appends, and
/// `Date`, which the upstream writes anew for each of the two requests compared.
fn end_to_end_fields(reply: &Reply) -> Vec<(String, String)> {
    const SKIPPED: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "via",
        "date",
    ];
    let mut fields: Vec<(String, String)> = reply
        .0
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim().to_ascii_lowercase();
            (!SKIPPED.contains(&name.as_str())).then(|| (name, value.trim().to_owned()))
        })
        .collect();
    fields.sort();
    fields
}

/// Every request a `slowlab serve` answered on its delay and echo paths.
fn upstream_requests(upstream: &Served) -> u64 {
    let (reply, _) = get(&upstream.addr, "/metrics");
    counter(&reply.body_text(), "slowlab_requests_total{")
}

#[test]
fn bodies_and_headers_reach_a_slowlab_serve_upstream_intact_with_via_and_forwarded() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &[]);
    // Every byte value, and long enough to take several reads.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut request = format!(
        "POST /anything/orders?id=7 HTTP/1.1\r\nHost: shop.test\r\nX-Custom: kept as is\r\n\
         Connection: close, X-Hop\r\nX-Hop: must not reach the upstream\r\nKeep-Alive: timeout=5\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (reply, _) = exchange(&proxy.addr, &request);
    assert_eq!(reply.status(), 200, "{}", reply.0);
    let echo = reply.json();
    let headers = &echo["headers"];
    let header = |name: &str| {
        headers[name]
            .as_array()
            .map(|v| v[0].as_str().unwrap().to_owned())
    };
    assert_eq!(header("x-custom").as_deref(), Some("kept as is"));
    assert_eq!(header("host").as_deref(), Some("shop.test"), "Host is kept");
    assert_eq!(header("x-hop"), None, "named in Connection: {headers}");
    assert_eq!(header("keep-alive"), None);
    assert!(
        header("via").unwrap().starts_with("1.1 slowlab-"),
        "{headers}"
    );
    assert_eq!(header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        header("forwarded").as_deref(),
        Some("for=127.0.0.1;proto=http;host=\"shop.test\"")
    );
    assert_eq!(echo["path"], "/anything/orders");
    assert_eq!(echo["body_bytes"], body.len());
    let echoed = base64_decode(echo["body_base64"].as_str().unwrap());
    assert!(echoed == body, "the body changed on the way");
    assert!(reply.header("via").unwrap().contains("slowlab-"));
}

/// The pooled client names the upstream by a placeholder, its pool key (`http/connector.rs`),
/// and dials the upstream whatever that key says: the upstream still gets the client's `Host`,
/// and a request with none gets the upstream's own `host:port`, never the placeholder.
#[test]
fn the_upstream_gets_the_clients_host_or_its_own_never_the_pool_key() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &[]);
    let (reply, _) = exchange(&proxy.addr, b"GET /anything/no-host?q=1 HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    let echo = reply.json();
    assert_eq!(echo["headers"]["host"], serde_json::json!([upstream.addr]));
    assert_eq!(echo["path"], "/anything/no-host");
    let (reply, _) = get(&proxy.addr, "/anything/with-host");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    let echo = reply.json();
    assert_eq!(echo["headers"]["host"], serde_json::json!(["proxied.test"]));
    assert_eq!(echo["path"], "/anything/with-host");
}

/// A request a `before` rule holds keeps its fields in a list of their own while it waits
/// (`http/held.rs`): what reaches the upstream after the wait is still the whole request, its
/// repeated fields in order and its body, which the proxy reads only once the wait is over.
#[test]
fn a_request_held_by_a_before_rule_reaches_the_upstream_whole() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--default", "0.2"]);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 11 % 253) as u8).collect();
    let mut request = format!(
        "POST /anything/held?x=1 HTTP/1.1\r\nHost: shop.test\r\nX-Repeat: first\r\n\
         X-Custom: kept\r\nX-Repeat: second\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (reply, took) = exchange(&proxy.addr, &request);
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(took >= Duration::from_millis(200), "not held: {took:?}");
    let echo = reply.json();
    let headers = &echo["headers"];
    assert_eq!(headers["x-repeat"], serde_json::json!(["first", "second"]));
    assert_eq!(headers["x-custom"], serde_json::json!(["kept"]));
    assert_eq!(headers["host"], serde_json::json!(["shop.test"]));
    assert!(
        headers["via"][0]
            .as_str()
            .unwrap()
            .starts_with("1.1 slowlab-")
    );
    assert_eq!(echo["path"], "/anything/held");
    assert_eq!(echo["body_bytes"], body.len());
    let echoed = base64_decode(echo["body_base64"].as_str().unwrap());
    assert!(echoed == body, "the body changed on the way");
}

/// Standard base64, enough for the echo's answer.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn a_rule_delay_shows_in_the_client_latency_and_not_in_the_upstream_server_timing() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(
        &upstream.base_url,
        &["--default", "0.4", "--log-format", "text"],
    );
    let (reply, took) = get(&proxy.addr, "/0");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let timing = reply.header("server-timing").unwrap();
    let waited: f64 = timing.rsplit('=').next().unwrap().parse().unwrap();
    assert!(waited < 100.0, "the upstream waited {waited} ms: {timing}");
    let metrics = proxy.metrics();
    assert_eq!(
        counter(
            &metrics,
            "slowlab_proxy_requests_total{rule=\"default\",outcome=\"forwarded\"}"
        ),
        1,
        "{metrics}"
    );
    assert_eq!(counter(&metrics, "slowlab_proxy_added_seconds_count"), 1);
    assert_eq!(counter(&metrics, "slowlab_proxy_upstream_seconds_count"), 1);
    let log = proxy.stop();
    assert!(log.contains("GET /0 from 127.0.0.1:"), "{log}");
    assert!(log.contains(": 200 ok, total "), "{log}");
}

#[test]
fn before_faults_never_reach_the_upstream_and_after_faults_do() {
    let upstream = Served::start(&[]);
    let dir = scratch("proxy-before-after");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"early\"\nprefix = \"/early\"\nstatus = 503\n\n\
         [[rule]]\nname = \"late\"\nprefix = \"/late\"\nstatus = 503\nwhen = \"after\"\n\n\
         [[rule]]\nname = \"gone\"\nprefix = \"/gone\"\nfault = \"reset\"\n\n\
         [[rule]]\nname = \"cut\"\nmatch_headers = { x-cut = \"1\" }\nfault = \"reset\"\nwhen = \"after\"\n",
    )
    .unwrap();
    let proxy = Proxy::start(&upstream.base_url, &["--rules", rules.to_str().unwrap()]);
    for _ in 0..5 {
        let (reply, _) = get(&proxy.addr, "/early/anything");
        assert_eq!(reply.status(), 503, "{}", reply.0);
        assert_eq!(reply.json()["error"], "injected");
    }
    // A reset before: no answer at all, and nothing upstream either.
    let (reply, _) = get(&proxy.addr, "/gone");
    assert_eq!(reply.status(), 0, "{}", reply.0);
    assert_eq!(
        upstream_requests(&upstream),
        0,
        "a before fault reached the upstream"
    );

    let (reply, _) = get(&proxy.addr, "/late");
    assert_eq!(reply.status(), 503);
    assert_eq!(
        upstream_requests(&upstream),
        1,
        "an after fault is drawn once the upstream answered"
    );

    // The upstream answers 200 with 100,000 bytes; the client gets the head, then a break.
    let (reply, _) = exchange(&proxy.addr, &get_request("/0?bytes=100000", "X-Cut: 1\r\n"));
    let promised: usize = reply.header("content-length").unwrap().parse().unwrap();
    assert!(
        reply.1.len() < promised,
        "a reset mid-body completed the body"
    );
    let metrics = proxy.metrics();
    assert_eq!(
        counter(
            &metrics,
            "slowlab_proxy_requests_total{rule=\"early\",outcome=\"injected_status\"}"
        ),
        5
    );
    assert_eq!(
        counter(
            &metrics,
            "slowlab_proxy_requests_total{rule=\"late\",outcome=\"injected_status\"}"
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            "slowlab_proxy_requests_total{rule=\"cut\",outcome=\"injected_fault\"}"
        ),
        1,
        "{metrics}"
    );
}

#[test]
fn an_unreachable_upstream_is_a_502_and_a_slow_one_a_504_naming_it() {
    let port = closed_port();
    let proxy = Proxy::start(&format!("http://127.0.0.1:{port}"), &[]);
    let (reply, _) = get(&proxy.addr, "/orders");
    assert_eq!(reply.status(), 502);
    let body = reply.json();
    assert_eq!(body["error"], "upstream_unreachable");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("127.0.0.1:{port}")), "{detail}");
    assert!(detail.to_lowercase().contains("refused"), "{detail}");

    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--upstream-timeout", "0.2"]);
    let (reply, took) = get(&proxy.addr, "/5");
    assert_eq!(reply.status(), 504);
    assert_eq!(reply.json()["error"], "upstream_timeout");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let metrics = proxy.metrics();
    assert_eq!(
        counter(
            &metrics,
            "slowlab_proxy_requests_total{rule=\"none\",outcome=\"upstream_timeout\"}"
        ),
        1
    );
}

#[test]
fn an_upstream_body_that_breaks_off_breaks_the_clients_too() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &[]);
    // The upstream promises 100,000 bytes and sends half.
    let (reply, _) = get(&proxy.addr, "/0?bytes=100000&fault=truncate");
    assert_eq!(reply.status(), 200);
    let promised: usize = reply.header("content-length").unwrap().parse().unwrap();
    assert!(reply.1.len() < promised, "a short body was completed");
    thread::sleep(Duration::from_millis(100));
    let metrics = proxy.metrics();
    assert_eq!(
        counter(
            &metrics,
            "slowlab_proxy_requests_total{rule=\"none\",outcome=\"upstream_reset\"}"
        ),
        1,
        "{metrics}"
    );
}

/// `when = "after"`: the upstream answers at once (its `Server-Timing` says it did not wait), and
/// then the rule's wait, and its `bps=` pacing of the upstream's body, reach the client.
#[test]
fn an_after_wait_and_bps_pacing_reach_the_client_once_the_upstream_answered() {
    let upstream = Served::start(&[]);
    let dir = scratch("proxy-after-effects");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"late\"\nmatch_headers = { x-late = \"1\" }\ndelay = 0.4\n\
         when = \"after\"\n\n\
         [[rule]]\nname = \"paced\"\nmatch_headers = { x-paced = \"1\" }\nbps = 20000\n\
         when = \"after\"\n",
    )
    .unwrap();
    let proxy = Proxy::start(&upstream.base_url, &["--rules", rules.to_str().unwrap()]);
    let upstream_waited_ms = |reply: &Reply| -> f64 {
        let timing = reply.header("server-timing").unwrap();
        timing.rsplit('=').next().unwrap().parse().unwrap()
    };

    let (reply, took) = exchange(&proxy.addr, &get_request("/0", "X-Late: 1\r\n"));
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(upstream_waited_ms(&reply) < 100.0, "{}", reply.0);
    assert_eq!(
        upstream_requests(&upstream),
        1,
        "the upstream answered first"
    );

    // 40,000 bytes at 20,000 a second: about 2 s, all of them on the way back.
    let (reply, took) = exchange(
        &proxy.addr,
        &get_request("/0?bytes=40000", "X-Paced: 1\r\n"),
    );
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert_eq!(reply.1.len(), 40_000);
    assert!(took >= Duration::from_millis(1_600), "{took:?}");
    assert!(upstream_waited_ms(&reply) < 100.0, "{}", reply.0);
    let metrics = proxy.metrics();
    for rule in ["late", "paced"] {
        let series =
            format!("slowlab_proxy_requests_total{{rule=\"{rule}\",outcome=\"forwarded\"}}");
        assert_eq!(counter(&metrics, &series), 1, "{rule}: {metrics}");
    }
}

/// `--upstream-host` replaces the client's `Host` on the way to the upstream, and nothing else.
#[test]
fn upstream_host_replaces_the_clients_host() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--upstream-host", "api.internal"]);
    let (reply, _) = get(&proxy.addr, "/anything/where?q=1");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    let echo = reply.json();
    assert_eq!(echo["headers"]["host"], serde_json::json!(["api.internal"]));
    assert_eq!(echo["path"], "/anything/where");
    assert_eq!(
        echo["headers"]["forwarded"],
        serde_json::json!(["for=127.0.0.1;proto=http;host=\"proxied.test\""]),
        "Forwarded still names the host the client asked for"
    );
}

/// SIGTERM: the proxy stops taking connections, lets the request it holds finish, and exits 0.
#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--default", "1"]);
    let addr = proxy.addr.clone();
    let held = thread::spawn(move || get(&addr, "/0"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(&proxy.admin, "/healthz")
        .0
        .body_text()
        .contains(r#""in_flight":1"#)
    {
        assert!(Instant::now() < deadline, "the request never was in flight");
        thread::sleep(Duration::from_millis(20));
    }
    let mut proxy = proxy;
    proxy.signal("TERM");
    let status = proxy.child.wait().unwrap();
    let mut log = String::new();
    let mut stderr = proxy.child.stderr.take().unwrap();
    stderr.read_to_string(&mut log).unwrap();
    let (reply, took) = held.join().unwrap();
    assert_eq!(reply.status(), 200, "{}\n{log}", reply.0);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("stopping"), "{log}");
}

/// Runs `slowlab ARGS`, which must exit within seconds as a usage error (exit 2) saying `says`,
/// rather than start; returns its stdout.
fn refused_at_start(args: &[&str], says: &str) -> String {
    let mut child = slowlab()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slowlab runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} started instead of being refused");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
    assert!(message.contains(says), "{args:?}: {message}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn bad_upstreams_loops_and_tcp_are_usage_errors() {
    assert_usage_error(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:8080",
        ],
        "e.g. http://",
    );
    assert_usage_error(
        &["proxy", "--listen", "127.0.0.1:0", "--upstream", "http://"],
        "e.g. http://",
    );
    let port = closed_port().to_string();
    assert_usage_error(
        &[
            "proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &format!("http://127.0.0.1:{port}"),
        ],
        "own --listen",
    );
    // Connecting to 0.0.0.0 reaches loopback, so this is the same loop, in either mode.
    refused_at_start(
        &[
            "proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &format!("http://0.0.0.0:{port}"),
        ],
        "own --listen",
    );
    for upstream in ["127.0.0.1", "0.0.0.0"] {
        let stdout = refused_at_start(
            &[
                "proxy",
                "--tcp",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--admin",
                "127.0.0.1:0",
                "--upstream",
                &format!("{upstream}:{port}"),
            ],
            "loop back",
        );
        // Scripts read the port from the first stdout line: a refused start prints none.
        assert_eq!(stdout, "", "--tcp --upstream {upstream}:{port}");
    }
    // --tcp forwards bytes: an HTTP URL is the wrong kind of upstream.
    assert_usage_error(
        &[
            "proxy",
            "--tcp",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:1",
        ],
        "HOST:PORT",
    );
    assert_usage_error(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:1",
            "--upstream-timeout",
            "0",
        ],
        "--upstream-timeout",
    );
}

#[test]
fn a_request_that_comes_back_through_the_proxy_is_refused_as_a_loop() {
    // A forwards to B, and B back to A.
    let a_port = closed_port();
    let b = Proxy::start(&format!("http://127.0.0.1:{a_port}"), &[]);
    let a = Proxy::start_on(
        &format!("127.0.0.1:{a_port}"),
        &format!("http://{}", b.addr),
        &[],
    );
    let (reply, _) = get(&a.addr, "/x");
    assert_eq!(reply.status(), 508, "{}{}", reply.0, reply.body_text());
    assert_eq!(reply.json()["error"], "proxy_loop");
}

#[test]
fn smuggling_shapes_and_header_floods_are_refused_before_forwarding() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &[]);
    let smuggle = b"POST /anything HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\
        Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /anything/smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    // hyper reads such a request by Transfer-Encoding alone and drops the Content-Length (RFC
    // 9112 6.1); it goes upstream chunked with no Content-Length, so the upstream reads the same
    // empty body, and the bytes after it are never a request of their own: the connection is
    // closed after the answer (6.1 requires it), with no `Connection: close` asking for it.
    let (reply, took) = exchange(&proxy.addr, smuggle);
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(took < Duration::from_secs(10), "the connection stayed open");
    let echo = reply.json();
    assert_eq!(echo["body_bytes"], 0, "{echo}");
    assert!(echo["headers"].get("content-length").is_none(), "{echo}");
    assert!(!reply.body_text().contains("HTTP/1.1"), "a second answer");
    assert_eq!(upstream_requests(&upstream), 1);

    let mut flood = String::from("GET /anything HTTP/1.1\r\nHost: t\r\n");
    for i in 0..10_000 {
        flood.push_str(&format!("X-H{i}: v\r\n"));
    }
    flood.push_str("Connection: close\r\n\r\n");
    let (reply, _) = exchange(&proxy.addr, flood.as_bytes());
    assert!((400..500).contains(&reply.status()), "{}", reply.0);

    let (reply, _) = exchange(
        &proxy.addr,
        b"TRACE / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status(), 405);
    let (reply, _) = exchange(
        &proxy.addr,
        b"OPTIONS /anything HTTP/1.1\r\nHost: t\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status(), 200);
    assert_eq!(
        upstream_requests(&upstream),
        1,
        "a refused request reached the upstream"
    );
}

#[test]
fn a_transfer_coding_other_than_chunked_is_a_501_and_never_forwarded() {
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &[]);
    // hyper decodes the final `chunked` and leaves the rest to the proxy; forwarded, these bodies
    // would reach the upstream as a plain `abcd`, not as what the client sent.
    let codings = [
        "gzip, chunked",
        "gzip\r\nTransfer-Encoding: chunked",
        "chunked, chunked",
    ];
    for coding in codings {
        let request = format!(
            "POST /anything HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\
             Connection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
        );
        let (reply, _) = exchange(&proxy.addr, request.as_bytes());
        assert_eq!(reply.status(), 501, "{coding:?}: {}", reply.0);
        let error = reply.json();
        assert_eq!(error["error"], "unsupported_transfer_coding", "{error}");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.contains("chunked or a Content-Length"), "{detail}");
    }
    assert_eq!(
        upstream_requests(&upstream),
        0,
        "a refused request was forwarded"
    );
    let rejected = r#"slowlab_proxy_requests_total{rule="none",outcome="rejected"}"#;
    assert_eq!(counter(&proxy.metrics(), rejected), codings.len() as u64);

    let (reply, _) = exchange(
        &proxy.addr,
        b"POST /anything HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    );
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert_eq!(reply.json()["body_bytes"], 4);
}

#[test]
fn a_static_file_from_python_http_server_comes_through_byte_for_byte() {
    if !tool_available("python3") {
        return;
    }
    let dir = scratch("proxy-python");
    let file: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(dir.join("blob.bin"), &file).unwrap();
    let port = closed_port();
    let mut python = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let proxy = Proxy::start(&format!("http://127.0.0.1:{port}"), &["--default", "0.3"]);
    let (reply, took) = get(&proxy.addr, "/blob.bin");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(reply.1 == file, "the file changed on the way");
    assert!(took >= Duration::from_millis(300));
    let (direct, _) = get(&format!("127.0.0.1:{port}"), "/blob.bin");
    assert_eq!(end_to_end_fields(&reply), end_to_end_fields(&direct));
    let _ = python.kill();
    let mut log = String::new();
    python
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = python.wait();
    assert_eq!(
        log.matches("GET /blob.bin").count(),
        2,
        "one request through the proxy, one direct: {log}"
    );
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nginx_static_file_through_the_proxy_and_before_faults_absent_from_its_access_log() {
    if !tool_available("nginx") {
        return;
    }
    let dir = scratch("proxy-nginx");
    let file: Vec<u8> = (0..500_000u32).map(|i| (i * 31 % 256) as u8).collect();
    std::fs::write(dir.join("blob.bin"), &file).unwrap();
    let port = closed_port();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log {d}/access.log; client_body_temp_path {d}; proxy_temp_path {d};\n\
             fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen 127.0.0.1:{port}; root {d}; }} }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .args(["-c", conf.to_str().unwrap(), "-p"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, "[[rule]]\nprefix = \"/down\"\nmix = \"503:1\"\n").unwrap();
    let proxy = Proxy::start(
        &format!("http://127.0.0.1:{port}"),
        &["--rules", rules.to_str().unwrap()],
    );
    let (reply, _) = get(&proxy.addr, "/blob.bin");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(reply.1 == file, "the file changed on the way");
    let (direct, _) = get(&format!("127.0.0.1:{port}"), "/blob.bin");
    assert_eq!(end_to_end_fields(&reply), end_to_end_fields(&direct));
    for _ in 0..3 {
        assert_eq!(get(&proxy.addr, "/down/blob.bin").0.status(), 503);
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    assert_eq!(
        log.matches("GET /blob.bin").count(),
        2,
        "one request through the proxy, one direct: {log}"
    );
    assert!(
        !log.contains("/down"),
        "a before fault reached nginx: {log}"
    );
}

/// A one-connection-at-a-time HTTP/1.1 server that reads a Content-Length body to its end,
/// keeping nothing, and counts it. It answers with the byte count once it has read the body, or,
/// `early`, with `early` as soon as it has the head (an upstream that answers an upload early).
fn counting_sink(early: bool) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let counted = Arc::new(AtomicU64::new(0));
    let total = Arc::clone(&counted);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::with_capacity(1 << 16, stream.try_clone().unwrap());
            let mut length = 0u64;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
                line.clear();
            }
            if early {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
            }
            let read = std::io::copy(&mut reader.take(length), &mut std::io::sink()).unwrap_or(0);
            total.store(read, Ordering::SeqCst);
            if !early {
                let body = read.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    (format!("http://{addr}"), counted)
}

/// The issue's 1 GB upload, against its bound of 64 MB of peak memory; about a second on a
/// debug build.
#[test]
fn a_large_upload_streams_through_with_bounded_memory() {
    const SIZE: u64 = 1024 * 1024 * 1024;
    const BOUND_KIB: u64 = 64_000_000 / 1024;
    let (sink, counted) = counting_sink(false);
    let proxy = Proxy::start(&sink, &[]);
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    write!(
        stream,
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'u'; 1 << 20];
    for _ in 0..SIZE / chunk.len() as u64 {
        stream.write_all(&chunk).unwrap();
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&SIZE.to_string()), "{answer}");
    assert_eq!(counted.load(Ordering::SeqCst), SIZE);
    let peak = proxy.peak_kib();
    assert!(
        peak < BOUND_KIB,
        "the proxy's VmHWM reached {peak} KiB, over 64 MB"
    );
}

/// An upload the upstream answered early goes on arriving after the answer: its bytes are the
/// body's, not a slow head of the next request, so the header read timeout must not cut it.
#[test]
fn an_upload_answered_early_goes_on_past_the_header_read_timeout() {
    const PIECES: u64 = 25;
    const PIECE: u64 = 1000;
    let (sink, counted) = counting_sink(true);
    let proxy = Proxy::start(&sink, &["--header-read-timeout", "0.5"]);
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        PIECES * PIECE
    )
    .unwrap();
    let mut answer = [0u8; 1024];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The body, over 2.5 s: five times the header read timeout, after the answer.
    let piece = vec![b'u'; PIECE as usize];
    for _ in 0..PIECES {
        thread::sleep(Duration::from_millis(100));
        if let Err(err) = stream.write_all(&piece) {
            panic!("the upload was cut after the answer: {err}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while counted.load(Ordering::SeqCst) < PIECES * PIECE && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(counted.load(Ordering::SeqCst), PIECES * PIECE);
    assert_eq!(proxy.connections_closed("header_timeout"), 0);
}

/// An HTTP/1.1 upstream that answers every request on a connection with a 10-byte body of
/// known length, one byte every 300 ms.
fn slow_small_body_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line != "\r\n" {
                        continue;
                    }
                    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
                    if stream.write_all(head).is_err() {
                        return;
                    }
                    for byte in b"abcdefghij" {
                        thread::sleep(Duration::from_millis(300));
                        if stream.write_all(&[*byte]).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A client may send its next request while the answer before it is still arriving. hyper reads
/// that head only once the answer is out, so its clock cannot run out meanwhile: here two slow
/// answers of 3 s each come whole through a proxy whose header read timeout is 1 s.
#[test]
fn a_request_pipelined_behind_a_slow_answer_is_not_a_slow_head() {
    let proxy = Proxy::start(&slow_small_body_upstream(), &["--header-read-timeout", "1"]);
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // Keep-alive requests (`get_request` asks for a close).
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    stream
        .write_all(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while received.windows(10).filter(|w| w == b"abcdefghij").count() < 2 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("abcdefghij").count(), 2, "{text}");
    assert_eq!(proxy.connections_closed("header_timeout"), 0);
}

#[test]
fn a_sighup_reload_under_load_drops_nothing() {
    let upstream = Served::start(&[]);
    let dir = scratch("proxy-reload");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"first\"\nprefix = \"/\"\ndelay = 0.02\n",
    )
    .unwrap();
    let proxy = Proxy::start(&upstream.base_url, &["--rules", rules.to_str().unwrap()]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = proxy.addr.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    statuses.push(get(&addr, "/0").0.status());
                }
                statuses
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"second\"\nprefix = \"/\"\ndelay = 0.01\n",
    )
    .unwrap();
    proxy.signal("HUP");
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(statuses.len() > 16, "{}", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let metrics = proxy.metrics();
    let first = counter(&metrics, "slowlab_proxy_requests_total{rule=\"first\"");
    let second = counter(&metrics, "slowlab_proxy_requests_total{rule=\"second\"");
    assert!(first > 0 && second > 0, "{metrics}");
    assert_eq!(first + second, statuses.len() as u64);
    let err = proxy.stop();
    assert!(err.contains("SIGHUP"), "{err}");
}

/// The README's section "Make a real service slow": its blocks.
fn readme_example() -> (String, String) {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("## Make a real service slow")
        .nth(1)
        .expect("the README has a section \"Make a real service slow\"");
    let block = |fence: &str| {
        let start = section.find(fence).expect(fence) + fence.len();
        let end = start + section[start..].find("```").unwrap();
        section[start..end].to_owned()
    };
    (block("```toml\n"), block("```sh\n"))
}

#[test]
fn the_readme_example_runs_as_written_on_free_ports() {
    if !tool_available("python3") {
        return;
    }
    let (rules_text, commands) = readme_example();
    let dir = scratch("proxy-readme");
    std::fs::write(dir.join("slow.toml"), &rules_text).unwrap();
    let upstream_port = closed_port().to_string();
    let python_line = commands
        .lines()
        .find(|l| l.starts_with("python3 "))
        .unwrap();
    let python_args: Vec<String> = python_line
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter(|a| *a != "&")
        .map(|a| a.replace("8080", &upstream_port))
        .collect();
    let mut python = Command::new("python3")
        .args(&python_args)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(upstream_port.parse().unwrap());
    let proxy_line = commands
        .lines()
        .find(|l| l.starts_with("slowlab proxy "))
        .unwrap();
    let mut args: Vec<String> = proxy_line
        .split_whitespace()
        .skip(1)
        .map(|a| {
            a.replace("127.0.0.1:9000", "127.0.0.1:0")
                .replace("127.0.0.1:9001", "127.0.0.1:0")
                .replace("8080", &upstream_port)
        })
        .collect();
    let rules_at = args.iter().position(|a| a == "slow.toml").unwrap();
    args[rules_at] = dir.join("slow.toml").to_str().unwrap().to_owned();
    let proxy = Proxy::spawn(&args);

    let (reply, took) = get(&proxy.addr, "/");
    assert_eq!(reply.status(), 200, "{}", reply.0);
    assert!(
        reply.body_text().contains("slow.toml"),
        "the service's listing"
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let statuses: Vec<u16> = (0..20)
        .map(|_| get(&proxy.addr, "/files/none").0.status())
        .collect();
    assert!(
        statuses.contains(&503) && statuses.contains(&404),
        "{statuses:?}"
    );
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("slowlab_proxy_requests_total{rule=\"listing\",outcome=\"forwarded\"} 1"),
        "{metrics}"
    );
    let _ = python.kill();
    let _ = python.wait();
}

#[test]
fn h2c_clients_are_forwarded_too() {
    if !tool_available("curl") {
        return;
    }
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--default", "0?mix=503:1"]);
    let output = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg(format!("http://{}/anything", proxy.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "2 503");
    let proxy = Proxy::start(&upstream.base_url, &[]);
    let output = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-i"])
        .arg(format!("http://{}/anything?delay=0", proxy.addr))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("via: 1.1 slowlab-"), "{text}");
    // The upstream heard HTTP/1.1 with the client's authority as Host, and Via saying h2.
    assert!(text.contains("\"2 slowlab-"), "{text}");

    // An upstream body that breaks off resets the h2 stream: curl fails, it does not see a 200
    // that completed short.
    let output = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-o", "/dev/null"])
        .arg(format!(
            "http://{}/0?bytes=100000&fault=truncate",
            proxy.addr
        ))
        .output()
        .unwrap();
    assert!(!output.status.success(), "curl saw a complete answer");
}

/// An echo server on a free port, for the TCP mode: what it reads, it writes back. Its address.
fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    upstream
}

#[test]
fn tcp_mode_copies_bytes_both_ways_with_its_effects() {
    let upstream = echo_server();
    let proxy = Proxy::start(
        &upstream,
        &["--tcp", "--tcp-effect", "direction=downstream&latency=0.3"],
    );
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).unwrap();
    let took = started.elapsed();
    assert_eq!(&echoed, b"ping");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    drop(stream);
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("slowlab_tcp_connections_accepted_total 1"),
        "{metrics}"
    );
}

#[test]
fn the_proxys_own_answers_are_never_stored_by_a_cache() {
    // A cache between client and proxy must not keep an injected failure, a 502 or the
    // admin port's health and metrics: each would then be answered without the proxy.
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--default", "0?mix=404:1"]);
    let unreachable = Proxy::start(&format!("http://127.0.0.1:{}", closed_port()), &[]);
    for (addr, path, status) in [
        (&proxy.addr, "/orders", 404),
        (&unreachable.addr, "/orders", 502),
        (&proxy.admin, "/healthz", 200),
        (&proxy.admin, "/metrics", 200),
    ] {
        let (reply, _) = get(addr, path);
        assert_eq!(reply.status(), status, "{path}: {}", reply.0);
        assert_eq!(
            reply.header("cache-control").as_deref(),
            Some("no-store"),
            "{path}: {}",
            reply.0
        );
    }
}

/// A `slowlab serve` speaking TLS with a certificate for 127.0.0.1 made now, and the folder
/// that holds that certificate's PEM file, `cert.pem` (self-signed: it is its own CA).
fn serve_tls_with_fresh_certificate() -> (Served, common::Scratch) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = scratch("proxy-upstream-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let mut child = slowlab()
        .args(["serve", "--port", "0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base_url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(base_url.starts_with("https://"), "{base_url}");
    let addr = base_url.trim_start_matches("https://").to_owned();
    (
        Served {
            child,
            addr,
            base_url,
        },
        dir,
    )
}

#[test]
fn an_https_upstream_is_trusted_with_its_ca_refused_without_and_accepted_insecure() {
    let (upstream, dir) = serve_tls_with_fresh_certificate();
    let ca = dir.join("cert.pem");
    let ca = ca.to_str().unwrap();

    let trusted = Proxy::start(&upstream.base_url, &["--upstream-ca", ca]);
    let (reply, _) = get(&trusted.addr, "/0?bytes=3000");
    assert_eq!(reply.status(), 200, "{}{}", reply.0, reply.body_text());
    assert_eq!(reply.1.len(), 3000);
    assert!(reply.header("via").is_some(), "{}", reply.0);

    // Mozilla's roots do not include a certificate made a moment ago.
    let untrusted = Proxy::start(&upstream.base_url, &[]);
    let (reply, _) = get(&untrusted.addr, "/0");
    assert_eq!(reply.status(), 502, "{}", reply.0);
    let body = reply.json();
    assert_eq!(body["error"], "upstream_tls", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("certificate"), "{detail}");
    assert!(detail.contains("--upstream-ca"), "{detail}");
    assert!(detail.contains(&upstream.addr), "{detail}");
    assert_eq!(
        counter(
            &untrusted.metrics(),
            "slowlab_proxy_requests_total{rule=\"none\",outcome=\"upstream_unreachable\"}"
        ),
        1
    );

    let mut insecure = Proxy::start(&upstream.base_url, &["--upstream-insecure"]);
    let (reply, _) = get(&insecure.addr, "/0?status=201");
    assert_eq!(reply.status(), 201, "{}{}", reply.0, reply.body_text());
    let stderr = insecure.child.stderr.take().unwrap();
    let warning = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .take(5)
        .find(|line| line.contains("WARNING"));
    assert!(
        warning.is_some_and(|w| w.contains("--upstream-insecure") && w.contains("NOT checked")),
        "no warning on stderr"
    );
}

#[test]
fn tls_flags_without_https_or_with_bad_files_are_usage_errors() {
    let dir = scratch("proxy-upstream-ca");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let missing = dir.join("missing.pem");
    let missing = missing.to_str().unwrap();
    for (upstream, flags, says) in [
        (
            "http://127.0.0.1:8080",
            &["--upstream-insecure"][..],
            "https://",
        ),
        (
            "http://127.0.0.1:8080",
            &["--upstream-ca", not_pem],
            "https://",
        ),
        (
            "https://127.0.0.1:8443",
            &["--upstream-ca", not_pem],
            not_pem,
        ),
        (
            "https://127.0.0.1:8443",
            &["--upstream-ca", missing],
            missing,
        ),
        (
            "http://127.0.0.1:8080",
            &["--tls-cert", missing, "--tls-key", not_pem],
            missing,
        ),
    ] {
        let mut args = vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", upstream];
        args.extend_from_slice(flags);
        assert_usage_error(&args, says);
    }
}

#[test]
fn clients_speak_tls_to_the_proxy_over_http1_and_h2_by_alpn() {
    if !tool_available("curl") {
        return;
    }
    let upstream = Served::start(&[]);
    let proxy = Proxy::start(&upstream.base_url, &["--tls-self-signed"]);
    for (flag, version, via) in [("--http1.1", "1.1", "1.1 "), ("--http2", "2", "2 ")] {
        let output = Command::new("curl")
            .args(["-sS", "-k", flag, "-w", "\n%{http_version}"])
            .arg(format!("https://{}/anything/tls", proxy.addr))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (body, spoken) = text.rsplit_once('\n').unwrap();
        assert_eq!(spoken, version, "{flag}");
        let echo: serde_json::Value = serde_json::from_str(body).unwrap();
        let header = |name: &str| echo["headers"][name][0].as_str().unwrap_or("").to_owned();
        assert!(header("via").starts_with(via), "{flag}: {echo}");
        assert!(
            header("forwarded").contains("proto=https"),
            "{flag}: {echo}"
        );
    }
    // The port speaks TLS only: a plain HTTP request gets no answer.
    let (reply, _) = get(&proxy.addr, "/0");
    assert_eq!(reply.status(), 0, "{}", reply.0);
}

/// An upstream of the test's own (hyper, HTTP/1.1 and h2c on one port) whose every answer is
/// `payload` then the trailers `x-checksum: 42` and `x-upstream-version` (the version it was
/// asked in), declared in `Trailer`. Its body has no length, so HTTP/1.1 sends it chunked, with
/// the trailers when the request's `TE` asks for them.
fn trailer_upstream() -> String {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("x-checksum", "42".parse().unwrap());
                        let version = format!("{:?}", request.version());
                        trailers.insert("x-upstream-version", version.parse().unwrap());
                        let frames = vec![
                            Ok::<_, std::convert::Infallible>(Frame::data(
                                bytes::Bytes::from_static(b"payload"),
                            )),
                            Ok(Frame::trailers(trailers)),
                        ];
                        let body = StreamBody::new(futures_util::stream::iter(frames));
                        // hyper sends over HTTP/1.1 only the trailers declared in `Trailer`.
                        let response = hyper::Response::builder()
                            .header("trailer", "x-checksum, x-upstream-version")
                            .body(body)
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailers_pass_through_to_an_h2_client_over_either_upstream_version() {
    use http_body_util::{BodyExt, Empty};
    let upstream = format!("http://{}", trailer_upstream());
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<bytes::Bytes>>();
    for (flags, upstream_version) in [
        (&[][..], "HTTP/1.1"),
        (&["--upstream-http2"][..], "HTTP/2.0"),
    ] {
        let proxy = Proxy::start(&upstream, flags);
        let request = hyper::Request::get(format!("http://{}/report", proxy.addr))
            .header("te", "trailers")
            .body(Empty::new())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap();
        let trailers = body.trailers().cloned().unwrap_or_default();
        assert_eq!(body.to_bytes().as_ref(), b"payload", "{flags:?}");
        assert_eq!(
            trailers.get("x-checksum").map(|v| v.to_str().unwrap()),
            Some("42"),
            "{flags:?}: trailers {trailers:?}"
        );
        assert_eq!(
            trailers
                .get("x-upstream-version")
                .map(|v| v.to_str().unwrap()),
            Some(upstream_version),
            "{flags:?}"
        );
    }
}

#[test]
fn tcp_effects_reload_from_the_rules_file_on_sighup() {
    let upstream = echo_server();
    let dir = scratch("proxy-tcp-reload");
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, "[[tcp]]\ndown = true\n").unwrap();
    let proxy = Proxy::start(&upstream, &["--tcp", "--rules", rules.to_str().unwrap()]);
    let echoes = |addr: &str| -> bool {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return false;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut echoed = [0u8; 4];
        stream.write_all(b"ping").is_ok()
            && stream.read_exact(&mut echoed).is_ok()
            && &echoed == b"ping"
    };
    assert!(!echoes(&proxy.addr), "a proxy that is down passed bytes");
    // Down means refused, as Toxiproxy's: the connect itself fails (on Linux, where the proxy
    // shuts its listening socket down; elsewhere it accepts and resets).
    #[cfg(target_os = "linux")]
    assert_eq!(
        TcpStream::connect(&proxy.addr)
            .map(|_| ())
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::ConnectionRefused,
        "a proxy that is down accepted a connection"
    );

    std::fs::write(
        &rules,
        "[[tcp]]\ndirection = \"downstream\"\nlatency = 0.01\n",
    )
    .unwrap();
    proxy.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !echoes(&proxy.addr) {
        assert!(Instant::now() < deadline, "the reload never lifted `down`");
        thread::sleep(Duration::from_millis(100));
    }
    let err = proxy.stop();
    assert!(err.contains("SIGHUP: TCP effects reloaded from"), "{err}");
}
