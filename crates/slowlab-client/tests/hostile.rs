//! Servers that send more than anyone asked for, written here on raw sockets and on the h2
//! crate's server side: every runner must stop at the response cap with a typed
//! `body-too-large` outcome, and the run must end.
//!
//! Memory is checked by structure rather than measured: a run that ends, with every request
//! refused after at most the cap (plus a read's worth) was kept or counted, cannot have held the
//! endless body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use slowlab_client::{Endpoint, ErrorKind, Mode, Report, RequestOptions, Target, Workload, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The cap of these tests: small, so that a runner ignoring it shows at once.
const CAP: u64 = 256 * 1024;

/// Slack over the cap for what one read may bring in before the cap is seen.
const ONE_READ: u64 = 64 * 1024;

/// Longest a run may take here: a runner that ignored the cap would read forever.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How the hostile HTTP/1.1 server frames its endless body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `Transfer-Encoding: chunked`, chunk after chunk, never the last one.
    EndlessChunks,
    /// `Content-Length: 100000000000`, then bytes for as long as anyone reads.
    HugeLength,
}

/// An HTTP/1.1 server that answers every request with an endless body; counts the bytes it
/// managed to send, across all connections.
async fn endless_http1(framing: Framing) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(flood(stream, framing, Arc::clone(&counter)));
        }
    });
    (addr, sent)
}

async fn flood(mut stream: TcpStream, framing: Framing, sent: Arc<AtomicU64>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (start, piece): (&[u8], Vec<u8>) = match framing {
        Framing::EndlessChunks => {
            let mut chunk = b"4000\r\n".to_vec();
            chunk.extend(std::iter::repeat_n(b'x', 0x4000));
            chunk.extend_from_slice(b"\r\n");
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                chunk,
            )
        }
        Framing::HugeLength => (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n",
            vec![b'x'; 0x4000],
        ),
    };
    if stream.write_all(start).await.is_err() {
        return;
    }
    while stream.write_all(&piece).await.is_ok() {
        sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
    }
}

/// An HTTP/2 server (h2c) that answers every stream with an endless body, announcing
/// `Content-Length: 100000000000` when `announce` is set.
async fn endless_h2(announce: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(stream).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    tokio::spawn(async move {
                        let mut response = http::Response::builder().status(200);
                        if announce {
                            response = response.header("content-length", "100000000000");
                        }
                        let Ok(mut body) = respond.send_response(response.body(()).unwrap(), false)
                        else {
                            return;
                        };
                        let piece = Bytes::from(vec![b'x'; 0x4000]);
                        loop {
                            body.reserve_capacity(piece.len());
                            match std::future::poll_fn(|cx| body.poll_capacity(cx)).await {
                                Some(Ok(room)) if room > 0 => {
                                    if body.send_data(piece.slice(..room), false).is_err() {
                                        return;
                                    }
                                }
                                Some(Ok(_)) => {}
                                // The client reset the stream, or the connection is gone.
                                Some(Err(_)) | None => return,
                            }
                        }
                    });
                }
            });
        }
    });
    addr
}

/// Two requests for `/any` (not delay requests: the body is only counted) to `addr`.
fn two_requests(addr: SocketAddr) -> Workload {
    let endpoint = Endpoint::parse(&format!("http://{addr}")).unwrap();
    Workload::new(endpoint, vec![Target::path("/any"), Target::path("/any")])
}

/// Every way of sending, with the test's cap.
fn every_runner() -> Vec<(&'static str, Mode, RequestOptions)> {
    let capped = RequestOptions {
        max_response_bytes: CAP,
        keep_bodies: false,
        ..RequestOptions::default()
    };
    vec![
        ("sequential", Mode::Sequential, capped),
        ("threads", Mode::Threads, capped),
        ("async", Mode::Async, capped),
        (
            "async pool",
            Mode::Async,
            RequestOptions {
                concurrency: Some(1),
                ..capped
            },
        ),
    ]
}

async fn bounded_run(mode: Mode, workload: Workload, options: RequestOptions) -> Report {
    tokio::time::timeout(RUN_LIMIT, run(mode, workload, options, |_| {}))
        .await
        .expect("the run ends: the cap stops an endless body")
}

/// Every outcome is `body-too-large`, after at most `most` bytes.
fn assert_all_too_large(report: &Report, most: u64, what: &str) {
    assert_eq!(report.outcomes.len(), 2, "{what}");
    for outcome in &report.outcomes {
        let err = outcome.result.as_ref().expect_err(what);
        assert_eq!(err.kind, ErrorKind::BodyTooLarge, "{what}: {err}");
        assert!(
            err.message.contains("--max-response-bytes"),
            "{what}: {err}"
        );
        assert!(
            outcome.bytes <= most,
            "{what}: read {} bytes, cap {CAP}",
            outcome.bytes
        );
        assert_eq!(outcome.status, Some(200), "{what}: the head had arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_body_stops_at_the_cap_in_every_runner() {
    for (what, mode, options) in every_runner() {
        let (addr, sent) = endless_http1(Framing::EndlessChunks).await;
        let report = bounded_run(mode, two_requests(addr), options).await;
        assert_all_too_large(&report, CAP + ONE_READ, what);
        for outcome in &report.outcomes {
            assert!(outcome.bytes > CAP, "{what}: refused only past the cap");
        }
        // The server could send a little more into the socket buffers, not an endless body.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = sent.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            sent.load(Ordering::Relaxed),
            before,
            "{what}: nobody reads the body any more"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_content_length_is_refused_before_reading_in_every_runner() {
    for (what, mode, options) in every_runner() {
        let (addr, _) = endless_http1(Framing::HugeLength).await;
        let report = bounded_run(mode, two_requests(addr), options).await;
        assert_all_too_large(&report, 0, what);
        let err = report.outcomes[0].result.as_ref().unwrap_err();
        assert!(err.message.contains("100000000000"), "{what}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_stops_an_endless_body_at_the_cap() {
    let options = RequestOptions {
        max_response_bytes: CAP,
        keep_bodies: false,
        http2: true,
        ..RequestOptions::default()
    };
    let addr = endless_h2(false).await;
    let report = bounded_run(Mode::Async, two_requests(addr), options).await;
    assert_all_too_large(&report, CAP + ONE_READ, "h2, endless");
    let addr = endless_h2(true).await;
    let report = bounded_run(Mode::Async, two_requests(addr), options).await;
    assert_all_too_large(&report, 0, "h2, announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_exactly_the_cap_passes_and_one_byte_more_does_not() {
    let server = slowlab_server::spawn(slowlab_server::Config::default())
        .await
        .unwrap();
    let endpoint = Endpoint::parse(&server.base_url()).unwrap();
    let workload = Workload::new(endpoint, vec![Target::path("/0?bytes=1000")]);
    let cases = [
        ("sequential", Mode::Sequential, false),
        ("threads", Mode::Threads, false),
        ("async", Mode::Async, false),
        ("h2", Mode::Async, true),
    ];
    for (what, mode, http2) in cases {
        for (cap, fits) in [(1000, true), (999, false)] {
            let options = RequestOptions {
                max_response_bytes: cap,
                http2,
                ..RequestOptions::default()
            };
            let report = bounded_run(mode, workload.clone(), options).await;
            let outcome = &report.outcomes[0];
            if fits {
                let reply = outcome.result.as_ref().expect(what);
                assert_eq!(reply.body.len(), 1000, "{what}: kept whole");
            } else {
                let err = outcome.result.as_ref().expect_err(what);
                assert_eq!(err.kind, ErrorKind::BodyTooLarge, "{what}");
            }
        }
    }
}
