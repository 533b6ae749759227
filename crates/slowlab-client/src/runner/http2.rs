//! The async runner over HTTP/2 without TLS (h2c, prior knowledge): many streams multiplexed on
//! few connections.
//!
//! The first connection tells the server's stream limit (`SETTINGS_MAX_CONCURRENT_STREAMS`); the
//! runner opens as many connections as the wanted concurrency needs at that limit (or exactly
//! `--connections N`), and deals requests to them in turn. A request that finds its connection's
//! streams all taken waits for one, and that wait is its slot wait.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::header::USER_AGENT;
use http::{HeaderValue, Request, Uri};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::outcome::{ErrorKind, FetchError, Outcome, Reply, judge_body};
use crate::runner::Shared;
use crate::runner::http1::{AGENT, Progress, bounded, connect};

/// Most connections opened at once while setting up.
const OPENING_AT_ONCE: usize = 64;

/// One open HTTP/2 connection.
struct Connection {
    sender: SendRequest<Bytes>,
    /// The stream limit the server advertised.
    max_streams: usize,
}

/// Opens the connections, then sends every request as a stream on one of them.
pub(super) async fn run(shared: Arc<Shared>) {
    let Some(addrs) = shared.resolve().await else {
        return;
    };
    let total = shared.workload.targets.len();
    let first = match open(&shared, &addrs).await {
        Ok(connection) => connection,
        Err(err) => return shared.fail_the_rest(&err),
    };
    let wanted = shared
        .options
        .concurrency
        .unwrap_or(total)
        .clamp(1, total.max(1));
    let count = shared
        .options
        .connections
        .unwrap_or_else(|| wanted.div_ceil(first.max_streams.max(1)))
        .max(1);
    let mut senders = vec![first.sender];
    senders.extend(open_more(&shared, &addrs, count - 1).await);

    let limit = shared
        .options
        .concurrency
        .map(|k| Arc::new(Semaphore::new(k)));
    let mut turn = 0;
    while let Some(index) = shared.take() {
        let permit = match &limit {
            None => None,
            Some(limit) => tokio::select! {
                permit = Arc::clone(limit).acquire_owned() => permit.ok(),
                () = shared.control.cancelled() => break,
            },
        };
        let sender = senders[turn % senders.len()].clone();
        turn += 1;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let outcome = stream(&shared, sender, index, permit.is_some()).await;
            drop(permit);
            shared.report(outcome);
        });
    }
}

/// Opens `count` more connections, a few at a time; those that fail are left out (their requests
/// go to the others).
async fn open_more(
    shared: &Arc<Shared>,
    addrs: &Arc<[SocketAddr]>,
    count: usize,
) -> Vec<SendRequest<Bytes>> {
    let mut opened = Vec::with_capacity(count);
    let mut opening: JoinSet<Result<Connection, FetchError>> = JoinSet::new();
    let mut failures = 0;
    for _ in 0..count {
        if opening.len() >= OPENING_AT_ONCE {
            if let Some(Ok(Ok(connection))) = opening.join_next().await {
                opened.push(connection.sender);
            } else {
                failures += 1;
            }
        }
        let shared = Arc::clone(shared);
        let addrs = Arc::clone(addrs);
        opening.spawn(async move { open(&shared, &addrs).await });
    }
    while let Some(result) = opening.join_next().await {
        match result {
            Ok(Ok(connection)) => opened.push(connection.sender),
            _ => failures += 1,
        }
    }
    if failures > 0 {
        tracing::warn!("{failures} of {count} extra HTTP/2 connections could not be opened");
    }
    opened
}

/// Connects, speaks the HTTP/2 preface, and waits for a ping's answer: by then the server's
/// settings, which come first, have been applied.
async fn open(shared: &Shared, addrs: &[SocketAddr]) -> Result<Connection, FetchError> {
    let stream = connect(addrs, shared).await?;
    let setup = async {
        let (sender, mut connection) = h2::client::Builder::new()
            .handshake::<_, Bytes>(stream)
            .await
            .map_err(|err| from_h2(&err, shared))?;
        let mut ping = connection.ping_pong();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("HTTP/2 connection ended: {err}");
            }
        });
        if let Some(ping) = ping.as_mut() {
            ping.ping(h2::Ping::opaque())
                .await
                .map_err(|err| from_h2(&err, shared))?;
        }
        let max_streams = sender.current_max_send_streams();
        Ok(Connection {
            sender,
            max_streams,
        })
    };
    let limit = shared.options.connect_timeout;
    tokio::time::timeout(limit, setup)
        .await
        .unwrap_or_else(|_| {
            Err(FetchError::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "no HTTP/2 connection to {} within {limit:?}",
                    shared.base_url
                ),
            ))
        })
}

/// One request as one stream.
async fn stream(
    shared: &Shared,
    sender: SendRequest<Bytes>,
    index: usize,
    limited: bool,
) -> Outcome {
    let queued = shared.now();
    // Boxed, like the exchange: the task itself stays small for the whole wait.
    let ready = Box::pin(async {
        tokio::select! {
            biased;
            ready = sender.ready() => Some(ready),
            () = shared.control.cancelled() => None,
        }
    })
    .await;
    let Some(ready) = ready else {
        return Outcome::unfinished(index, shared.now(), FetchError::cancelled(false));
    };
    let _in_flight = shared.control.enter();
    let start = shared.now();
    // A limited run issued everything at its start; an unlimited one waited only for a stream.
    let slot_wait = if limited { start } else { start - queued };
    let mut progress = Progress::default();
    let result = match ready {
        Err(err) => Err(from_h2(&err, shared)),
        Ok(mut sender) => {
            let work = exchange(shared, &mut sender, index, &mut progress);
            bounded(shared, Box::pin(work)).await
        }
    };
    progress.outcome(shared, index, start, slot_wait, result)
}

async fn exchange(
    shared: &Shared,
    sender: &mut SendRequest<Bytes>,
    index: usize,
    progress: &mut Progress,
) -> Result<Reply, FetchError> {
    let workload = &shared.workload;
    let target = &workload.targets[index];
    let uri = Uri::builder()
        .scheme(workload.endpoint.scheme())
        .authority(shared.host.as_bytes())
        .path_and_query(workload.endpoint.path(&target.path))
        .build()
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("bad URL: {err}")))?;
    let mut builder = Request::builder()
        .method(workload.method.clone())
        .uri(uri)
        .header(USER_AGENT, HeaderValue::from_static(AGENT));
    for (name, value) in &workload.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(())
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("cannot build request: {err}")))?;
    let (response, _) = sender
        .send_request(request, true)
        .map_err(|err| from_h2(&err, shared))?;
    let response = response.await.map_err(|err| from_h2(&err, shared))?;
    progress.first_byte = Some(shared.now());
    let status = response.status().as_u16();
    progress.status = Some(status);
    let mut body = response.into_body();
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|err| from_h2(&err, shared))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        progress.bytes += chunk.len() as u64;
        received.extend_from_slice(&chunk);
    }
    judge_body(
        target,
        status,
        received.freeze(),
        shared.options.keep_bodies,
    )
}

/// Maps an h2 error to a kind: I/O errors as such, a stream reset as `reset`, a connection that
/// went away as `closed-early`.
fn from_h2(err: &h2::Error, shared: &Shared) -> FetchError {
    if let Some(io) = err.get_io() {
        return FetchError::from_io(io, &shared.base_url);
    }
    if err.is_go_away() {
        return FetchError::new(
            ErrorKind::ClosedEarly,
            format!("the server closed the HTTP/2 connection: {err}"),
        );
    }
    if err.is_reset() {
        return FetchError::new(
            ErrorKind::Reset,
            format!("the server reset the stream: {err}"),
        );
    }
    if err.is_io() || err.is_remote() {
        return FetchError::new(ErrorKind::ClosedEarly, err.to_string());
    }
    FetchError::new(ErrorKind::Other, err.to_string())
}
