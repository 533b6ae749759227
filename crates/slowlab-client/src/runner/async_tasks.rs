//! The async runner: every request at once, each a tokio task with its own HTTP/1.1 connection
//! (hyper), like `asyncio.gather` over aiohttp.
//!
//! Connections are made by hand rather than through a pooled client so that connect time and time
//! to first byte are measured exactly, and so that every request really is in flight at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;

use crate::outcome::{ErrorKind, FetchError, Outcome, judge};
use crate::runner::RequestOptions;
use crate::workload::{Target, Workload};

/// Spawns one task per request and returns once all are spawned.
pub(super) async fn run(
    workload: Arc<Workload>,
    options: RequestOptions,
    origin: Instant,
    outcomes: UnboundedSender<Outcome>,
) {
    let addrs: Arc<[SocketAddr]> = match workload.endpoint.resolve().await {
        Ok(addrs) => addrs.into(),
        Err(err) => {
            let error = FetchError::new(
                ErrorKind::Other,
                format!("cannot resolve {}: {err}", workload.endpoint.authority()),
            );
            for index in 0..workload.targets.len() {
                let now = origin.elapsed();
                let outcome = Outcome {
                    index,
                    start: now,
                    end: now,
                    connect: None,
                    first_byte: None,
                    result: Err(error.clone()),
                };
                let _ = outcomes.send(outcome);
            }
            return;
        }
    };
    for index in 0..workload.targets.len() {
        let workload = Arc::clone(&workload);
        let addrs = Arc::clone(&addrs);
        let outcomes = outcomes.clone();
        tokio::spawn(async move {
            let outcome = fetch(index, &workload, &addrs, options, origin).await;
            let _ = outcomes.send(outcome);
        });
    }
}

/// What is known of a request so far; kept when it fails half-way.
#[derive(Default)]
struct Progress {
    connect: Option<std::time::Duration>,
    first_byte: Option<std::time::Duration>,
}

async fn fetch(
    index: usize,
    workload: &Workload,
    addrs: &[SocketAddr],
    options: RequestOptions,
    origin: Instant,
) -> Outcome {
    let target = &workload.targets[index];
    let start = origin.elapsed();
    let mut progress = Progress::default();
    let exchange = exchange(workload, target, addrs, options, origin, &mut progress);
    let result = match options.timeout {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or_else(|_| Err(FetchError::timed_out(limit))),
        None => exchange.await,
    };
    Outcome {
        index,
        start,
        end: origin.elapsed(),
        connect: progress.connect,
        first_byte: progress.first_byte,
        result,
    }
}

/// Connects, sends one GET, and reads the whole answer.
async fn exchange(
    workload: &Workload,
    target: &Target,
    addrs: &[SocketAddr],
    options: RequestOptions,
    origin: Instant,
    progress: &mut Progress,
) -> Result<crate::outcome::Reply, FetchError> {
    let base_url = workload.endpoint.base_url();
    let connecting = Instant::now();
    let stream = connect(addrs, options, &base_url).await?;
    progress.connect = Some(connecting.elapsed());

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| from_hyper(&err, &base_url))?;
    // The connection future moves the bytes; it ends when the request is done and `sender` drops.
    tokio::spawn(connection);

    let request = Request::get(workload.endpoint.path(&target.path))
        .header(HOST, workload.endpoint.authority())
        .header(USER_AGENT, concat!("slowlab/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("cannot build request: {err}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| from_hyper(&err, &base_url))?;
    progress.first_byte = Some(origin.elapsed());
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| from_hyper(&err, &base_url))?
        .to_bytes();
    judge(target, status, body)
}

/// Tries each resolved address in turn, within the connect timeout.
async fn connect(
    addrs: &[SocketAddr],
    options: RequestOptions,
    base_url: &str,
) -> Result<TcpStream, FetchError> {
    let attempt = async {
        let mut last_error = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
    };
    match tokio::time::timeout(options.connect_timeout, attempt).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(err)) => Err(FetchError::from_io(&err, base_url)),
        Err(_) => Err(FetchError::new(
            ErrorKind::ConnectTimeout,
            format!(
                "no connection to {base_url} within {:?}",
                options.connect_timeout
            ),
        )),
    }
}

/// Maps a hyper error to a kind, looking through to the I/O error underneath when there is one.
fn from_hyper(err: &hyper::Error, base_url: &str) -> FetchError {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return FetchError::from_io(io, base_url);
        }
        source = cause.source();
    }
    if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        FetchError::new(
            ErrorKind::ClosedEarly,
            format!("connection closed before a complete response: {err}"),
        )
    } else if err.is_parse() {
        FetchError::new(
            ErrorKind::ClosedEarly,
            format!("the server sent something that is not a valid HTTP response: {err}"),
        )
    } else if err.is_timeout() {
        FetchError::new(ErrorKind::Timeout, err.to_string())
    } else {
        FetchError::new(ErrorKind::Other, err.to_string())
    }
}
