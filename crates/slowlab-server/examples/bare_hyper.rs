//! A bare tokio + hyper server: the ceiling for server overhead in the benchmarks.
//!
//! Every request, whatever its method or path, gets `200`, `Content-Type: application/json` and the
//! body `{"time_elapsed": 0}`: no routing, no delay parsing, no timers, no metrics. `bench/run`
//! measures `slowlab serve` against it, and measures clients against it as a fast server.
//!
//! So that the comparison measures what `slowlab serve` does per request and nothing else, the
//! baseline is built like it: the same allocator (jemalloc) and the same protocols on one port
//! (HTTP/1.1, and HTTP/2 without TLS, told apart by the connection's first bytes). What it does
//! not do that `slowlab serve` does: routing and parsing the delay and its options, the wait
//! itself, the header-read timeout, limits on URI, headers and connections, statistics and
//! `/metrics`, graceful shutdown, and the `Server-Timing` header.
//!
//! ```sh
//! cargo run --release --example bare_hyper -p slowlab-server -- 8080   # 0 = an ephemeral port
//! cargo run --release --example bare_hyper -p slowlab-server -- 8080 10100   # HTTP/2 stream limit
//! ```
//!
//! The optional second argument is the HTTP/2 concurrent-stream limit (hyper's default, 200,
//! without it), so that HTTP/2 streams can be measured in `slowlab serve --h2-max-streams`'s shape.
//! The first line on stdout is `listening on http://ADDR`.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpSocket;

/// The allocator `slowlab` itself uses (see its `main.rs`): with the system allocator the
/// baseline's memory and speed would differ from `slowlab serve`'s for a reason that is not
/// the server code.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BODY: &[u8] = br#"{"time_elapsed": 0}"#;

/// Same accept queue as `slowlab serve` (capped by net.core.somaxconn), so bursts compare fairly.
const BACKLOG: u32 = 4096;

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        None => 0,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("bare_hyper: {text:?} is not a port number (0-65535; 0 = ephemeral)");
            std::process::exit(2);
        }),
    };
    let h2_max_streams: Option<u32> = std::env::args().nth(2).map(|text| {
        text.parse().unwrap_or_else(|_| {
            eprintln!("bare_hyper: {text:?} is not an HTTP/2 stream limit");
            std::process::exit(2);
        })
    });
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    let listener = socket.listen(BACKLOG)?;
    println!("listening on http://{}", listener.local_addr()?);

    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            // Out of descriptors or a connection reset before accept: keep serving the others.
            Err(err) => {
                eprintln!("bare_hyper: accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if let Some(max) = h2_max_streams {
                builder.http2().max_concurrent_streams(max);
            }
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
