//! Each runner's shape against a real slow server on an ephemeral loopback port, and the error
//! kinds produced for real by tiny raw TCP servers that misbehave on purpose.
//!
//! Structure (what overlapped, how many connections, what was counted), never speed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use slowlab_client::{
    Control, Endpoint, ErrorKind, Mode, Outcome, Report, RequestOptions, Workload, run, run_with,
};
use slowlab_server::{Config, spawn};

fn workload(base_url: &str, delays: &[Duration]) -> Workload {
    Workload::from_delays(Endpoint::parse(base_url).unwrap(), delays)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Most outcomes whose `[start, end)` overlap, computed here independently of the summary.
fn overlap(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .map(|a| {
            outcomes
                .iter()
                .filter(|b| b.start <= a.start && a.start < b.end)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn assert_all_ok(report: &Report) {
    let failures: Vec<_> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(report.outcomes.len(), report.workload.targets.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_three_never_exceeds_three_and_reaches_three() {
    let server = spawn(Config::default()).await.unwrap();
    let delays = vec![ms(100); 12];
    let options = RequestOptions {
        concurrency: Some(3),
        ..RequestOptions::default()
    };
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &delays),
        options,
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(overlap(&report.outcomes), 3);
    assert_eq!(report.summary.peak_concurrency, 3);
    assert_eq!(server.stats().peak_in_flight, 3);
    assert_eq!(report.summary.slots, Some(3));
    // Ideal on 3 slots: 12 requests of 100 ms is 4 rounds.
    assert_eq!(report.summary.ideal, ms(400));
    // Keep-alive: three connections, each made once, then reused back to back.
    let connected = report
        .outcomes
        .iter()
        .filter(|o| o.connect.is_some())
        .count();
    assert_eq!(connected, 3, "one connection per slot");
    // The later requests waited for a slot.
    assert!(report.outcomes.iter().any(|o| o.slot_wait >= ms(90)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_runner_uses_its_pool_size() {
    let server = spawn(Config::default()).await.unwrap();
    let delays = vec![ms(100); 8];
    let options = RequestOptions {
        threads: Some(4),
        ..RequestOptions::default()
    };
    let report = run(
        Mode::Threads,
        workload(&server.base_url(), &delays),
        options,
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(report.summary.mode, Mode::Threads);
    assert_eq!(overlap(&report.outcomes), 4);
    assert_eq!(server.stats().peak_in_flight, 4);
    assert_eq!(report.summary.ideal, ms(200));
    // Default: one thread per request, so all overlap.
    let report = run(
        Mode::Threads,
        workload(&server.base_url(), &delays),
        RequestOptions::default(),
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(report.summary.peak_concurrency, 8);
    assert_eq!(report.summary.ideal, ms(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_async_overlaps_everything_with_full_outcomes() {
    let server = spawn(Config::default()).await.unwrap();
    let delays = vec![ms(300); 40];
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &delays),
        RequestOptions {
            keep_bodies: false,
            ..RequestOptions::default()
        },
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(report.summary.peak_concurrency, 40);
    for o in &report.outcomes {
        assert!(o.connect.is_some(), "a connection per request");
        assert_eq!(o.slot_wait, Duration::ZERO);
        let first_byte = o.first_byte.unwrap();
        assert!(o.start <= first_byte && first_byte <= o.end, "{o:?}");
        assert_eq!(o.status, Some(200));
        assert!(o.bytes > 0);
        let reply = o.result.as_ref().unwrap();
        assert!(reply.body.is_empty(), "bodies are dropped unless kept");
        assert_eq!(reply.time_elapsed, Some(0.3));
    }
    let s = &report.summary;
    assert_eq!(s.latency.count, 40);
    assert!(
        s.latency.p50 >= 0.3 && s.latency.p50 <= s.latency.p99 && s.latency.p99 <= s.latency.max
    );
    assert!(s.overhead.max < s.latency.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_multiplexes_and_honours_concurrency() {
    let server = spawn(Config::default()).await.unwrap();
    let delays = vec![ms(200); 60];
    let options = RequestOptions {
        http2: true,
        ..RequestOptions::default()
    };
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &delays),
        options,
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(report.summary.peak_concurrency, 60);
    assert_eq!(server.stats().peak_in_flight, 60);
    // Few connections, each reporting its set-up once, on its first request.
    let connected = report
        .outcomes
        .iter()
        .filter(|o| o.connect.is_some())
        .count();
    assert!((1..=60).contains(&connected), "{connected}");
    assert!(
        connected < 60,
        "multiplexed: {connected} connections for 60 requests"
    );

    let limited = RequestOptions {
        http2: true,
        concurrency: Some(5),
        ..RequestOptions::default()
    };
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &delays[..20]),
        limited,
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(overlap(&report.outcomes), 5);
    assert_eq!(report.summary.ideal, ms(800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_requests_all_succeed() {
    let server = spawn(Config::default()).await.unwrap();
    slowlab_client::limits::raise_fd_limit();
    let delays = vec![Duration::from_secs(1); 2000];
    for http2 in [false, true] {
        let report = run(
            Mode::Async,
            workload(&server.base_url(), &delays),
            RequestOptions {
                http2,
                keep_bodies: false,
                ..RequestOptions::default()
            },
            |_| {},
        )
        .await;
        assert_all_ok(&report);
        // Generous: they overlapped (a sequential run would take 2,000 s).
        assert!(
            report.summary.wall < Duration::from_secs(30),
            "http2 {http2}"
        );
        assert!(report.summary.peak_concurrency > 1000, "http2 {http2}");
    }
}

/// A raw TCP server that answers every connection with `behave`.
fn raw_server(behave: fn(std::net::TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || behave(stream));
        }
    });
    addr
}

fn read_head(stream: &mut std::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn kinds_from(addr: SocketAddr, options: RequestOptions) -> Vec<(Mode, ErrorKind)> {
    let base_url = format!("http://{addr}");
    let mut kinds = Vec::new();
    for mode in [Mode::Sequential, Mode::Threads, Mode::Async] {
        let report = run(mode, workload(&base_url, &[ms(10)]), options, |_| {}).await;
        assert_eq!(report.outcomes.len(), 1);
        let err = report.outcomes[0].result.as_ref().unwrap_err();
        kinds.push((mode, err.kind));
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_kinds_for_real() {
    // reset: the connection closes with the request unread, so the kernel sends RST.
    let reset = raw_server(|stream| {
        thread::sleep(ms(200));
        drop(stream);
    });
    // closed-early: half a response, then a clean close.
    let closed = raw_server(|mut stream| {
        read_head(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"time");
    });
    // bad-body: 200 without the echo.
    let bad = raw_server(|mut stream| {
        read_head(&mut stream);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    });
    // timeout: accepts and never answers.
    let hang = raw_server(|mut stream| {
        read_head(&mut stream);
        thread::sleep(Duration::from_secs(5));
    });
    let timeout = RequestOptions {
        timeout: Some(ms(300)),
        ..RequestOptions::default()
    };
    for (mode, kind) in kinds_from(reset, RequestOptions::default()).await {
        // A reset read as the end of the stream is still a connection that ended too soon.
        assert!(
            matches!(kind, ErrorKind::Reset | ErrorKind::ClosedEarly),
            "{mode:?}: {kind:?}"
        );
    }
    for (mode, kind) in kinds_from(closed, RequestOptions::default()).await {
        assert_eq!(kind, ErrorKind::ClosedEarly, "{mode:?}");
    }
    for (mode, kind) in kinds_from(bad, RequestOptions::default()).await {
        assert_eq!(kind, ErrorKind::BadBody, "{mode:?}");
    }
    for (mode, kind) in kinds_from(hang, timeout).await {
        assert_eq!(kind, ErrorKind::Timeout, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_against_a_full_accept_queue() {
    // A listener that never accepts, with the shortest queue: once it is full, the kernel drops
    // further SYNs and connects hang.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(ms(200), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(stream);
        }
    }
    let options = RequestOptions {
        connect_timeout: ms(300),
        ..RequestOptions::default()
    };
    let report = run(
        Mode::Async,
        workload(&format!("http://{addr}"), &[ms(0)]),
        options,
        |_| {},
    )
    .await;
    let err = report.outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConnectTimeout, "{err}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_reports_finished_and_cancelled() {
    let server = spawn(Config::default()).await.unwrap();
    let mut delays = vec![ms(10); 3];
    delays.extend(vec![Duration::from_secs(30); 3]);
    for (mode, options) in [
        (Mode::Async, RequestOptions::default()),
        (
            Mode::Async,
            RequestOptions {
                concurrency: Some(2),
                ..RequestOptions::default()
            },
        ),
        (
            Mode::Async,
            RequestOptions {
                http2: true,
                ..RequestOptions::default()
            },
        ),
        (Mode::Threads, RequestOptions::default()),
    ] {
        let control = Control::new();
        let canceller = {
            let control = control.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ms(700)).await;
                control.cancel();
            })
        };
        let report = run_with(
            mode,
            workload(&server.base_url(), &delays),
            options,
            &control,
            |_| {},
        )
        .await;
        canceller.await.unwrap();
        assert_eq!(report.outcomes.len(), 6, "{mode:?} {options:?}");
        assert!(report.summary.wall < Duration::from_secs(20), "{mode:?}");
        let s = &report.summary;
        assert_eq!(
            s.ok + s.cancelled,
            6,
            "{mode:?} {options:?}: {:?}",
            s.errors
        );
        assert!(s.cancelled >= 3, "{mode:?} {options:?}");
    }
}

/// The TLS settings of a test server with the self-signed certificate in `tests/data`.
fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/localhost.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/localhost.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// An HTTPS server answering every request with the echo of `/0`, over HTTP/1.1 with
/// `Connection: close`, written by hand.
async fn tls_server() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let acceptor = tls_acceptor();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "{\"time_elapsed\": 0}";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_every_runner() {
    let addr = tls_server().await;
    let base_url = format!("https://localhost:{}", addr.port());
    let insecure = RequestOptions {
        insecure: true,
        ..RequestOptions::default()
    };
    for mode in [Mode::Sequential, Mode::Threads, Mode::Async] {
        let report = run(mode, workload(&base_url, &[ms(0); 3]), insecure, |_| {}).await;
        assert_all_ok(&report);
        // Checked certificates: the self-signed one is refused, with a typed outcome that says
        // how to accept it.
        let report = run(
            mode,
            workload(&base_url, &[ms(0)]),
            RequestOptions::default(),
            |_| {},
        )
        .await;
        let err = report.outcomes[0].result.as_ref().unwrap_err();
        assert!(
            err.message.to_lowercase().contains("certificate")
                || err.message.to_lowercase().contains("issuer"),
            "{mode:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_pool_of_two_connections_is_a_limit_of_two() {
    let server = spawn(Config::default()).await.unwrap();
    let options = RequestOptions {
        connections: Some(2),
        ..RequestOptions::default()
    };
    let report = run(
        Mode::Async,
        workload(&server.base_url(), &[ms(50); 8]),
        options,
        |_| {},
    )
    .await;
    assert_all_ok(&report);
    assert_eq!(overlap(&report.outcomes), 2);
    assert_eq!(report.summary.slots, Some(2));
    let connected = report
        .outcomes
        .iter()
        .filter(|o| o.connect.is_some())
        .count();
    assert_eq!(connected, 2);
}

/// The real slowlab routes behind TLS, HTTP/1.1 or HTTP/2 (told apart by the preface).
async fn tls_slowlab() -> SocketAddr {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tls_acceptor();
    let app = slowlab_server::App::new(
        std::sync::Arc::new(Config::default()),
        std::sync::Arc::new(slowlab_server::Stats::default()),
    )
    .unwrap();
    let service = TowerToHyperService::new(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = service.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_http2_over_tls_against_the_real_routes() {
    let addr = tls_slowlab().await;
    let base_url = format!("https://localhost:{}", addr.port());
    for http2 in [false, true] {
        let options = RequestOptions {
            insecure: true,
            http2,
            ..RequestOptions::default()
        };
        let report = run(
            Mode::Async,
            workload(&base_url, &[ms(200); 20]),
            options,
            |_| {},
        )
        .await;
        assert_all_ok(&report);
        assert_eq!(report.summary.peak_concurrency, 20, "http2 {http2}");
        let connected = report
            .outcomes
            .iter()
            .filter(|o| o.connect.is_some())
            .count();
        if http2 {
            assert!(
                connected < 20,
                "multiplexed over TLS: {connected} connections"
            );
        } else {
            assert_eq!(connected, 20);
        }
    }
}
