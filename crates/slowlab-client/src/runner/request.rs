//! What every runner does the same way for one request: its head, its time bounds, what is known
//! of it so far, and reading its body within the run's cap.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HOST, USER_AGENT};
use http::{HeaderValue, Request, Uri};
use tokio_util::sync::WaitForCancellationFuture;

use crate::outcome::{ErrorKind, FetchError, Outcome, Reply};
use crate::runner::Shared;
use crate::workload::Target;

/// The `User-Agent` of every request.
pub(super) const AGENT: &str = concat!("slowlab/", env!("CARGO_PKG_VERSION"));

/// The head of a request to `uri` with the workload's method and extra headers, and no body.
///
/// `host`: the `Host` header, for HTTP/1.1 on a connection of our own; HTTP/2 carries the
/// authority in the URI, and ureq writes `Host` itself.
pub(super) fn head(
    shared: &Shared,
    uri: Uri,
    host: Option<&HeaderValue>,
) -> Result<Request<()>, FetchError> {
    let workload = &shared.workload;
    let mut builder = Request::builder()
        .method(workload.method.clone())
        .uri(uri)
        .header(USER_AGENT, HeaderValue::from_static(AGENT));
    if let Some(host) = host {
        builder = builder.header(HOST, host.clone());
    }
    for (name, value) in &workload.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(())
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("cannot build request: {err}")))
}

/// Parses a URI we made ourselves; a target whose path is no URI fails as `other`.
pub(super) fn uri(text: &str) -> Result<Uri, FetchError> {
    Uri::try_from(text)
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("bad URL {text:?}: {err}")))
}

/// The longest time handed to a client library that adds it to `Instant::now()`: a hundred
/// years. Longer limits mean "never" and would overflow that sum.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `limit`, or [`FOREVER`] when it is longer: safe to add to an `Instant`.
pub(super) fn within_forever(limit: Duration) -> Duration {
    limit.min(FOREVER)
}

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
            scheduled: None,
            slot_wait,
            connect: self.connect,
            first_byte: self.first_byte,
            status: self.status,
            bytes: self.bytes,
            result,
        }
    }
}

/// Runs one request's work within the request timeout, and stops it when `cancelled` (the run's
/// [`Control::watch`](crate::runner::Control::watch), which a worker keeps across its requests)
/// ends.
///
/// `work` comes boxed: the timeout and the select would otherwise each hold room for it, and at
/// 100,000 requests in flight every task's size counts.
pub(super) async fn bounded(
    shared: &Shared,
    work: Pin<Box<impl Future<Output = Result<Reply, FetchError>>>>,
    cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
) -> Result<Reply, FetchError> {
    let timed = async {
        match shared.options.timeout {
            // Boxed too: a timer entry is large, and most runs have no timeout. tokio saturates
            // a deadline past the end of time, so any limit is safe here.
            Some(limit) => Box::pin(tokio::time::timeout(limit, work))
                .await
                .unwrap_or_else(|_| Err(FetchError::timed_out(limit))),
            None => work.await,
        }
    };
    tokio::select! {
        biased;
        result = timed => result,
        () = cancelled => Err(FetchError::cancelled(true)),
    }
}

/// The body length a response announces, if it does.
pub(super) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Bytes of a body kept for an error message's excerpt when the body itself is not wanted: the
/// excerpt's 200 characters, at up to four bytes each.
const EXCERPT_BYTES: usize = 800;

/// A response body as it arrives, counted against the run's cap
/// ([`RequestOptions::max_response_bytes`](crate::RequestOptions::max_response_bytes)).
///
/// Only what is needed is kept: the whole body when it is printed or its echo checked, otherwise
/// its first bytes, for the excerpt an `http-status` failure quotes. The rest is counted and
/// dropped, so a server sending an endless body costs at most the cap.
pub(super) struct CappedBody {
    /// The first chunk, kept as it came (most answers are one chunk: no copy).
    first: Option<Bytes>,
    /// Everything kept, once a second chunk arrived.
    joined: BytesMut,
    /// Bytes to keep at most.
    keep: usize,
    /// Bytes received so far.
    received: u64,
    /// Bytes allowed.
    limit: u64,
}

impl CappedBody {
    /// An empty body of the answer to `target`.
    pub fn new(shared: &Shared, target: &Target) -> CappedBody {
        let limit = shared.options.max_response_bytes;
        let whole = shared.options.keep_bodies || target.delay.is_some();
        let keep = if whole {
            usize::try_from(limit).unwrap_or(usize::MAX)
        } else {
            EXCERPT_BYTES
        };
        CappedBody {
            first: None,
            joined: BytesMut::new(),
            keep,
            received: 0,
            limit,
        }
    }

    /// Refuses at once a body whose announced length (`Content-Length`) is over the cap.
    pub fn announce(&self, length: Option<u64>) -> Result<(), FetchError> {
        match length {
            Some(length) if length > self.limit => Err(FetchError::new(
                ErrorKind::BodyTooLarge,
                format!(
                    "the server announced a body of {length} bytes, over the cap of {} bytes \
                     (--max-response-bytes raises it)",
                    self.limit
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Adds a chunk; past the cap, the body is refused (what arrived so far is counted).
    pub fn push(&mut self, chunk: Bytes) -> Result<(), FetchError> {
        self.received = self.received.saturating_add(chunk.len() as u64);
        if self.received > self.limit {
            return Err(FetchError::new(
                ErrorKind::BodyTooLarge,
                format!(
                    "the response body went past the cap of {} bytes (--max-response-bytes \
                     raises it)",
                    self.limit
                ),
            ));
        }
        let kept = self.first.as_ref().map_or(0, Bytes::len) + self.joined.len();
        let room = self.keep.saturating_sub(kept);
        if room == 0 || chunk.is_empty() {
            return Ok(());
        }
        let chunk = if chunk.len() > room {
            chunk.slice(..room)
        } else {
            chunk
        };
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(chunk),
            first => {
                if let Some(first) = first {
                    self.joined.extend_from_slice(&first);
                }
                self.joined.extend_from_slice(&chunk);
            }
        }
        Ok(())
    }

    /// Bytes received so far, kept or not.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// What was kept.
    pub fn into_bytes(self) -> Bytes {
        match self.first {
            Some(first) => first,
            None => self.joined.freeze(),
        }
    }
}
