//! HTTP/1.1 over hyper's connection API: connecting, one exchange, and the keep-alive pool.
//!
//! Connections are made by hand rather than through a pooled client so that connect time and time
//! to first byte are measured exactly, and so that the number of connections is exactly what the
//! options say.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::outcome::{ErrorKind, FetchError, Outcome, Reply, judge_body};
use crate::runner::Shared;
use crate::runner::tls::Stream;
use crate::workload::Target;

/// The `User-Agent` of every request.
pub(super) const AGENT: &str = concat!("slowlab/", env!("CARGO_PKG_VERSION"));

/// What is known of a request so far; kept when it fails half-way.
#[derive(Default)]
pub(super) struct Progress {
    pub connect: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub status: Option<u16>,
    pub bytes: u64,
}

impl Progress {
    /// The outcome of request `index`, begun at `start` after waiting `slot_wait` for its slot.
    pub fn outcome(
        self,
        shared: &Shared,
        index: usize,
        start: Duration,
        slot_wait: Duration,
        result: Result<Reply, FetchError>,
    ) -> Outcome {
        Outcome {
            index,
            start,
            end: shared.now(),
            slot_wait,
            connect: self.connect,
            first_byte: self.first_byte,
            status: self.status,
            bytes: self.bytes,
            result,
        }
    }
}

/// Runs one request's work within the request timeout, and stops it when the run is cancelled.
///
/// `work` comes boxed: the timeout and the select would otherwise each hold room for it, and at
/// 100,000 requests in flight every task's size counts.
pub(super) async fn bounded(
    shared: &Shared,
    work: Pin<Box<impl Future<Output = Result<Reply, FetchError>>>>,
) -> Result<Reply, FetchError> {
    let timed = async {
        match shared.options.timeout {
            // Boxed too: a timer entry is large, and most runs have no timeout.
            Some(limit) => Box::pin(tokio::time::timeout(limit, work))
                .await
                .unwrap_or_else(|_| Err(FetchError::timed_out(limit))),
            None => work.await,
        }
    };
    tokio::select! {
        biased;
        result = timed => result,
        () = shared.control.cancelled() => Err(FetchError::cancelled(true)),
    }
}

/// Tries each resolved address in turn, then makes the TLS handshake for `https://`, all within
/// the connect timeout.
pub(super) async fn connect(addrs: &[SocketAddr], shared: &Shared) -> Result<Stream, FetchError> {
    let limit = shared.options.connect_timeout;
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
    let attempt = async {
        let stream = attempt
            .await
            .map_err(|err| FetchError::from_io(&err, &shared.base_url))?;
        let _ = stream.set_nodelay(true);
        match &shared.tls {
            None => Ok(Stream::Plain(stream)),
            Some(tls) => tls
                .connector
                .connect(tls.server_name.clone(), stream)
                .await
                .map(|stream| Stream::Tls(Box::new(stream)))
                .map_err(|err| tls_error(&err, &shared.base_url)),
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::new(
            ErrorKind::ConnectTimeout,
            format!("no connection to {} within {limit:?}", shared.base_url),
        )),
    }
}

/// A failed TLS handshake: a certificate or protocol problem, or the connection failing under it.
fn tls_error(err: &std::io::Error, base_url: &str) -> FetchError {
    if err.kind() == std::io::ErrorKind::InvalidData {
        FetchError::new(
            ErrorKind::Other,
            format!(
                "TLS handshake with {base_url} failed: {err} (--insecure skips certificate checks)"
            ),
        )
    } else {
        FetchError::from_io(err, base_url)
    }
}

/// The request for `target`: the workload's method and headers, no body.
pub(super) fn request(
    shared: &Shared,
    target: &Target,
) -> Result<Request<Empty<Bytes>>, FetchError> {
    let workload = &shared.workload;
    let mut builder = Request::builder()
        .method(workload.method.clone())
        .uri(shared.endpoint.path(&target.path))
        .header(HOST, shared.host.clone())
        .header(USER_AGENT, HeaderValue::from_static(AGENT));
    for (name, value) in &workload.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Empty::new())
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("cannot build request: {err}")))
}

/// Read buffer of each connection when every request is a slowlab delay request, whose answers are
/// under a hundred bytes: hyper's default (8 KiB, adaptive) costs about 3 KiB more per connection
/// at 10,000 connections. Other workloads keep the adaptive default, fit for any body.
const SMALL_READ_BUFFER: usize = 1024;

/// The HTTP/1.1 connection settings for this run.
fn builder(shared: &Shared) -> Builder {
    let mut builder = Builder::new();
    if shared.small_answers {
        builder.read_buf_exact_size(Some(SMALL_READ_BUFFER));
    }
    builder
}

/// Sends `request` on `sender` and reads the whole answer.
async fn exchange(
    sender: &mut SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
    shared: &Shared,
    target: &Target,
    progress: &mut Progress,
) -> Result<Reply, FetchError> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| from_hyper(&err, &shared.base_url))?;
    progress.first_byte = Some(shared.now());
    let status = response.status().as_u16();
    progress.status = Some(status);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| from_hyper(&err, &shared.base_url))?
        .to_bytes();
    progress.bytes = body.len() as u64;
    judge_body(target, status, body, shared.options.keep_bodies)
}

/// One request on a connection of its own, which closes when the request is done.
///
/// The connection is driven on this task, next to the request, rather than spawned: at 10,000
/// requests in flight a spawn per request is measurable.
pub(super) async fn one_shot(shared: &Shared, addrs: &[SocketAddr], index: usize) -> Outcome {
    let target = &shared.workload.targets[index];
    let _in_flight = shared.control.enter();
    let start = shared.now();
    let mut progress = Progress::default();
    let work = async {
        // Boxed: connecting is short, and its state would otherwise stay in every task's
        // memory for the whole wait.
        let (mut sender, connection) = Box::pin(open(addrs, shared, &mut progress)).await?;
        let request = request(shared, target)?;
        let exchange = exchange(&mut sender, request, shared, target, &mut progress);
        tokio::pin!(exchange);
        tokio::pin!(connection);
        tokio::select! {
            biased;
            result = &mut exchange => result,
            // The connection ended first (closed, reset): the exchange now learns why.
            _ = &mut connection => exchange.await,
        }
    };
    let result = bounded(shared, Box::pin(work)).await;
    progress.outcome(shared, index, start, Duration::ZERO, result)
}

/// Connects and makes the HTTP/1.1 handshake, recording the connect time.
async fn open(
    addrs: &[SocketAddr],
    shared: &Shared,
    progress: &mut Progress,
) -> Result<
    (
        SendRequest<Empty<Bytes>>,
        Connection<TokioIo<Stream>, Empty<Bytes>>,
    ),
    FetchError,
> {
    let connecting = Instant::now();
    let stream = connect(addrs, shared).await?;
    progress.connect = Some(connecting.elapsed());
    builder(shared)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|err| from_hyper(&err, &shared.base_url))
}

/// `workers` long-lived keep-alive connections, each sending requests back to back; a worker
/// whose connection fails opens a new one for its next request.
pub(super) async fn run_pool(shared: Arc<Shared>, workers: usize) {
    let Some(addrs) = shared.resolve().await else {
        return;
    };
    for _ in 0..workers {
        tokio::spawn(worker(Arc::clone(&shared), Arc::clone(&addrs)));
    }
}

async fn worker(shared: Arc<Shared>, addrs: Arc<[SocketAddr]>) {
    let mut connection: Option<SendRequest<Empty<Bytes>>> = None;
    while let Some(index) = shared.take() {
        let outcome = reuse(&shared, &addrs, &mut connection, index).await;
        if !shared.report(outcome) {
            return;
        }
    }
}

/// One request on the worker's connection, opening one first if there is none usable.
async fn reuse(
    shared: &Shared,
    addrs: &[SocketAddr],
    connection: &mut Option<SendRequest<Empty<Bytes>>>,
    index: usize,
) -> Outcome {
    let target = &shared.workload.targets[index];
    let _in_flight = shared.control.enter();
    // Every request was issued at the run's start; it waited until now for this worker.
    let start = shared.now();
    let mut progress = Progress::default();
    let work = async {
        let reusable = match connection.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *connection = None;
            let (sender, conn) = Box::pin(open(addrs, shared, &mut progress)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            *connection = Some(sender);
        }
        let Some(sender) = connection.as_mut() else {
            unreachable!("a connection was just made")
        };
        let request = request(shared, target)?;
        exchange(sender, request, shared, target, &mut progress).await
    };
    let result = bounded(shared, Box::pin(work)).await;
    if result
        .as_ref()
        .is_err_and(|err| err.kind != ErrorKind::HttpStatus && err.kind != ErrorKind::BadBody)
    {
        // Timed out or broken half-way: the connection's state is unknown; start afresh.
        *connection = None;
    }
    progress.outcome(shared, index, start, start, result)
}

/// Maps a hyper error to a kind, looking through to the I/O error underneath when there is one.
pub(super) fn from_hyper(err: &hyper::Error, base_url: &str) -> FetchError {
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
