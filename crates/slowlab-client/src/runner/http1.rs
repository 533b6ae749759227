//! HTTP/1.1 over hyper's connection API: connecting, one exchange, and the keep-alive pool.
//!
//! Connections are made by hand rather than through a pooled client so that connect time and time
//! to first byte are measured exactly, and so that the number of connections is exactly what the
//! options say.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio_util::sync::WaitForCancellationFuture;

use crate::outcome::{ErrorKind, FetchError, Outcome, Reply, judge_body};
use crate::runner::Shared;
use crate::runner::connect::connect;
use crate::runner::request::{CappedBody, Progress, bounded, content_length, head, uri};
use crate::runner::tls::Stream;
use crate::workload::Target;

/// The head of the request for `target` on a connection of our own: the path, with `Host`.
fn build(shared: &Shared, target: &Target) -> Result<Request<()>, FetchError> {
    let path = uri(&shared.endpoint.path(&target.path))?;
    head(shared, path, Some(&shared.host))
}

/// `head` with the workload's body, shared: a clone of `Bytes` copies no byte.
fn with_body(shared: &Shared, head: Request<()>) -> Request<Full<Bytes>> {
    head.map(|()| Full::new(shared.workload.body.clone()))
}

/// The request for request `index`, from `template`, the last head this worker built (by the
/// index of its target): a request to the same path is a clone of it, which shares its URI's
/// bytes and copies its header map whole, instead of formatting and parsing the path and
/// inserting each header again for every request of a keep-alive connection.
fn from_template(
    shared: &Shared,
    template: &mut Option<(usize, Request<()>)>,
    index: usize,
) -> Result<Request<Full<Bytes>>, FetchError> {
    let targets = &shared.workload.targets;
    let head = match template {
        Some((built, head)) if targets[*built].path == targets[index].path => head.clone(),
        _ => {
            let head = build(shared, &targets[index])?;
            let copy = head.clone();
            *template = Some((index, head));
            copy
        }
    };
    Ok(with_body(shared, head))
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
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
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
    let mut received = CappedBody::new(shared, target);
    received.announce(content_length(response.headers()))?;
    let mut body = response.into_body();
    let result = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| from_hyper(&err, &shared.base_url))?;
            if let Ok(data) = frame.into_data() {
                received.push(data)?;
            }
        }
        Ok(())
    }
    .await;
    progress.bytes = received.received();
    result?;
    judge_body(
        target,
        &shared.workload.method,
        status,
        received.into_bytes(),
        shared.options.keep_bodies,
    )
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
        let request = with_body(shared, build(shared, target)?);
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
    let cancelled = std::pin::pin!(shared.control.watch());
    let result = bounded(shared, Box::pin(work), cancelled).await;
    progress.outcome(shared, index, start, Duration::ZERO, result)
}

/// Connects and makes the HTTP/1.1 handshake, recording the connect time.
async fn open(
    addrs: &[SocketAddr],
    shared: &Shared,
    progress: &mut Progress,
) -> Result<
    (
        SendRequest<Full<Bytes>>,
        Connection<TokioIo<Stream>, Full<Bytes>>,
    ),
    FetchError,
> {
    let connecting = Instant::now();
    let stream = connect(addrs, shared).await?;
    progress.connect = Some(connecting.elapsed());
    builder(shared)
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
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
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mut template = None;
    let mut cancelled = std::pin::pin!(shared.control.watch());
    while let Some(index) = shared.take_when_due().await {
        let outcome = reuse(
            &shared,
            &addrs,
            &mut connection,
            &mut template,
            cancelled.as_mut(),
            index,
        )
        .await;
        if !shared.report(outcome) {
            return;
        }
    }
}

/// One request on the worker's connection, opening one first if there is none usable.
async fn reuse(
    shared: &Shared,
    addrs: &[SocketAddr],
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    template: &mut Option<(usize, Request<()>)>,
    cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
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
        let request = from_template(shared, template, index)?;
        exchange(sender, request, shared, target, &mut progress).await
    };
    let result = bounded(shared, Box::pin(work), cancelled).await;
    if result
        .as_ref()
        .is_err_and(|err| err.kind != ErrorKind::HttpStatus && err.kind != ErrorKind::BadBody)
    {
        // Timed out, broken half-way or a body cut at the cap: the connection's state is
        // unknown; start afresh.
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
