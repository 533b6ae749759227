//! Answers after (or during) the wait: the JSON body, its padding and pacing, the status, and the
//! faults that replace an answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::delay::SmallBuf;
use crate::metrics::Outcome;
use crate::options::{Fault, Plan, Seconds};
use crate::pace::Paced;
use crate::stats::Record;

/// `X-Slowlab-Drawn-Delay`: the delay drawn by `jitter` or `dist`, in seconds.
pub const DRAWN_DELAY: HeaderName = HeaderName::from_static("x-slowlab-drawn-delay");
/// `X-Slowlab-Clamped`: the delay, in seconds, that was over `--max-delay` and clamped to it.
pub const CLAMPED: HeaderName = HeaderName::from_static("x-slowlab-clamped");
/// `Server-Timing`: `wait;dur=<milliseconds actually waited>`.
pub const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Padding comes out of this buffer, so a 16 MiB body allocates nothing.
static SPACES: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// Asks the connection layer to end the connection (HTTP/1.1) or the stream (HTTP/2) instead of
/// answering. Carried as a response extension out of the router.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Abort(pub Fault);

/// The bodies of the commonest delays, whole seconds from 0 to 9, ready made: no allocation.
const WHOLE_SECOND_BODIES: [&[u8]; 10] = [
    br#"{"time_elapsed": 0}"#,
    br#"{"time_elapsed": 1}"#,
    br#"{"time_elapsed": 2}"#,
    br#"{"time_elapsed": 3}"#,
    br#"{"time_elapsed": 4}"#,
    br#"{"time_elapsed": 5}"#,
    br#"{"time_elapsed": 6}"#,
    br#"{"time_elapsed": 7}"#,
    br#"{"time_elapsed": 8}"#,
    br#"{"time_elapsed": 9}"#,
];

/// The article's body: `{"time_elapsed": 0.25}`.
pub(crate) fn json(plan: &Plan) -> Bytes {
    if let Some(body) = plan
        .requested
        .whole_seconds()
        .and_then(|secs| WHOLE_SECOND_BODIES.get(usize::try_from(secs).ok()?))
    {
        return Bytes::from_static(body);
    }
    let mut text = SmallBuf::new();
    text.push(b"{\"time_elapsed\": ");
    plan.requested.write_to(&mut text);
    text.push(b"}");
    Bytes::copy_from_slice(text.as_bytes())
}

/// Headers hyper adds to an HTTP/2 answer's own map (`Date` and `Content-Length`; over HTTP/1.1 it
/// writes them straight into its buffer instead).
const HYPER_H2_HEADERS: usize = 2;

fn base(plan: &Plan, body: Body, http2: bool) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(plan.status()).unwrap_or(StatusCode::OK);
    // Room for exactly the headers set here. hyper keeps a connection's last response header
    // map for reuse, so its default first allocation (six entries) would stay with every
    // keep-alive connection. Over HTTP/2 the map is not kept, and hyper adds its own two
    // headers to it: room for those spares every stream a regrowth (a reallocation and a rehash).
    let extra = usize::from(plan.drawn.is_some())
        + usize::from(plan.clamped_from.is_some())
        + if http2 { HYPER_H2_HEADERS } else { 0 };
    // Content-Type, Server-Timing, Cache-Control.
    *response.headers_mut() = HeaderMap::with_capacity(3 + extra);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(drawn) = plan.drawn
        && let Ok(value) = HeaderValue::from_str(&Seconds(drawn).to_string())
    {
        headers.insert(DRAWN_DELAY, value);
    }
    if let Some(clamped) = plan.clamped_from
        && let Ok(value) = HeaderValue::from_str(&Seconds(clamped).to_string())
    {
        headers.insert(CLAMPED, value);
    }
    response
}

fn server_timing(response: &mut Response, waited: Duration, planned: bool, http2: bool) {
    // Integer arithmetic into a stack buffer: `format!` cost more than the rest of the answer.
    let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
    let mut text = SmallBuf::new();
    text.push(b"wait;dur=");
    text.push_decimal(micros / 1000);
    text.push(b".");
    text.push_padded(micros % 1000, 3);
    if planned {
        // Headers leave before the wait when the body drips: say it is the plan.
        text.push(b";desc=\"planned\"");
    }
    if let Ok(mut value) = HeaderValue::from_bytes(text.as_bytes()) {
        // Over HTTP/2, HPACK would add every answer's value, seldom the same twice, to the
        // connection's table: a search of the values already there, an insertion and evictions
        // for each stream, for an entry no later answer uses. Marked sensitive, it is sent as a
        // literal never indexed, and the table keeps the headers that do repeat.
        value.set_sensitive(http2);
        response.headers_mut().insert(SERVER_TIMING, value);
    }
}

/// The answer after a completed wait of `waited`, with `json` as the body before any padding (the
/// article's [`json`], a rule's body or the echo). The record goes with a body that takes time: a
/// padded one stays in flight until its last byte is handed to the connection, a paced one
/// (`bps=`) until its last byte is out.
pub(crate) fn answer_with(
    plan: &Plan,
    json: Bytes,
    waited: Duration,
    record: Record,
    head_only: bool,
    http2: bool,
) -> Response {
    let paced = plan.options.bps.filter(|_| !head_only);
    let mut record = Some(record);
    let mut body = match plan.options.bytes {
        Some(bytes) if bytes > json.len() as u64 => {
            let mut body = SlowBody::new(json, bytes, None);
            if paced.is_none() {
                body.record = record.take();
            }
            Body::new(body)
        }
        _ => Body::from(json),
    };
    if let Some(bps) = paced {
        body = Body::new(Paced::new(body, bps, record.take()));
    }
    if let Some(record) = record {
        record.finish(Outcome::Ok);
    }
    let mut response = base(plan, body, http2);
    server_timing(&mut response, waited, false, http2);
    response
}

/// Headers at once, then the body in `chunks` pieces spread evenly over the wait. The record goes
/// with the body: the request is done when the last chunk is out, cancelled if the body is dropped
/// before.
pub(crate) fn drip_with(
    plan: &Plan,
    json: Bytes,
    chunks: u32,
    record: Record,
    head_only: bool,
    http2: bool,
) -> Response {
    let total = plan.options.bytes.unwrap_or(0).max(json.len() as u64);
    let mut response = if head_only {
        record.finish(Outcome::Ok);
        // Not `Body::empty()`: its exact length of 0 would become `Content-Length: 0` on the way
        // out, where GET's dripped answer has no length at all.
        base(plan, Body::new(Unannounced), http2)
    } else {
        let start = Instant::now();
        let chunks = u64::from(chunks).min(total).max(1);
        let schedule = Drip {
            chunks,
            done: 0,
            start,
            wait: plan.wait,
            sleep: Box::pin(tokio::time::sleep_until(after(
                start,
                plan.wait / chunks as u32,
            ))),
            record: Some(record),
        };
        base(
            plan,
            Body::new(SlowBody::new(json, total, Some(schedule))),
            http2,
        )
    };
    server_timing(&mut response, plan.wait, true, http2);
    response
}

/// `fault=truncate`: a Content-Length for the whole body, half of it, then the connection ends.
pub(crate) fn truncated_with(plan: &Plan, json: Bytes, waited: Duration, http2: bool) -> Response {
    let total = plan.options.bytes.unwrap_or(0).max(json.len() as u64);
    let mut body = SlowBody::new(json, total, None);
    body.truncate_at = Some(total / 2);
    let body = match plan.options.bps {
        Some(bps) => Body::new(Paced::new(body, bps, None)),
        None => Body::new(body),
    };
    let mut response = base(plan, body, http2);
    server_timing(&mut response, waited, false, http2);
    response
}

/// A fault that ends the connection or stream: an empty response marked for the connection layer.
pub fn abort(fault: Fault) -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(Abort(fault));
    response
}

/// Whether `response` is a delay request's answer, whose record counts and logs the request
/// when it ends: every such answer carries `Server-Timing` (or is a fault), and no other does.
/// (A marker extension would cost an allocation on every answer.)
pub(crate) fn is_recorded(response: &Response) -> bool {
    response.headers().contains_key(SERVER_TIMING) || response.extensions().get::<Abort>().is_some()
}

/// Marks an answer as not to be stored by any cache, unless its route said otherwise.
///
/// A cache between a client and slowlab that answered `/1` from its store would answer in no time,
/// silently breaking the very measurement slowlab is for, and a stored `/healthz` would report a
/// server that may be gone. Only static answers (the index page) set their own Cache-Control.
pub(crate) fn no_store_by_default(response: &mut Response) {
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Fits an answer's body to what HTTP allows for its method and status, whichever route made it.
///
/// - 204 and 304 carry no body and no `Content-Length` (RFC 9110 §8.6, §15.3.5, §15.4.5);
/// - 205 carries no body (§15.3.6): `Content-Length: 0` says so;
/// - a HEAD answer carries the headers GET would, `Content-Length` included, and no body (§9.3.2).
///
/// hyper's HTTP/1.1 writer drops such bodies itself, but its HTTP/2 writer sends them as DATA,
/// which strict clients reject; and the router's own `Content-Length` for 204 would reach the
/// wire.
pub(crate) fn fit_body(mut response: Response, head_only: bool) -> Response {
    let status = response.status();
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response.headers_mut().remove(header::TRANSFER_ENCODING);
        *response.body_mut() = Body::empty();
    } else if status == StatusCode::RESET_CONTENT {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        *response.body_mut() = Body::empty();
    } else if head_only {
        // The length GET's body would have. An empty one says nothing: the router empties a HEAD
        // answer's body itself (after setting its Content-Length), and a dripped GET has no length.
        if !response.headers().contains_key(header::CONTENT_LENGTH)
            && let Some(len) = http_body::Body::size_hint(response.body()).exact()
            && len > 0
        {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        *response.body_mut() = Body::empty();
    }
    response
}

/// `start + wait`, or a far future when that does not fit in an `Instant` (`--max-delay` may be
/// huge).
fn after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365 * 30))
}

/// An empty body that does not announce its length, for a HEAD answer whose GET is dripped.
struct Unannounced;

impl http_body::Body for Unannounced {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(None)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

/// The schedule of a dripping body.
struct Drip {
    chunks: u64,
    done: u64,
    start: Instant,
    wait: Duration,
    sleep: Pin<Box<Sleep>>,
    record: Option<Record>,
}

/// A body of `total` bytes: the JSON, then spaces (JSON allows trailing whitespace), released all at
/// once or chunk by chunk on a schedule, and optionally cut short with an error.
struct SlowBody {
    json: Bytes,
    total: u64,
    sent: u64,
    released: u64,
    drip: Option<Drip>,
    truncate_at: Option<u64>,
    /// Whether a truncated body has paused once, so that hyper flushes what was sent before the
    /// error ends the connection.
    paused: bool,
    /// The request of a padded body, finished when the last byte is out (a dripping body's is in
    /// its schedule).
    record: Option<Record>,
}

/// The error that cuts a truncated body short; hyper then closes the connection (or resets the
/// stream).
#[derive(Debug, thiserror::Error)]
#[error("body truncated on purpose (fault=truncate)")]
struct Truncated;

impl SlowBody {
    fn new(json: Bytes, total: u64, drip: Option<Drip>) -> SlowBody {
        let released = if drip.is_some() { 0 } else { total };
        SlowBody {
            json,
            total,
            sent: 0,
            released,
            drip,
            truncate_at: None,
            paused: false,
            record: None,
        }
    }
}

impl http_body::Body for SlowBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(cut) = this.truncate_at
                && this.sent >= cut
            {
                if !this.paused {
                    this.paused = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                return Poll::Ready(Some(Err(Box::new(Truncated))));
            }
            let limit = this.released.min(this.truncate_at.unwrap_or(u64::MAX));
            if this.sent < limit {
                let json_len = this.json.len() as u64;
                let mut end = limit.min(this.sent + SPACES.len() as u64);
                let data = if this.sent < json_len {
                    end = end.min(json_len);
                    this.json.slice(this.sent as usize..end as usize)
                } else {
                    Bytes::from_static(&SPACES[..(end - this.sent) as usize])
                };
                this.sent = end;
                if this.sent >= this.total
                    && let Some(record) = this.record.take()
                {
                    record.finish(Outcome::Ok);
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if this.sent >= this.total {
                return Poll::Ready(None);
            }
            let Some(drip) = this.drip.as_mut() else {
                // Everything is released when there is no schedule; nothing left to wait for.
                return Poll::Ready(None);
            };
            ready!(drip.sleep.as_mut().poll(cx));
            drip.done += 1;
            this.released = if drip.done >= drip.chunks {
                this.total
            } else {
                (u128::from(this.total) * u128::from(drip.done) / u128::from(drip.chunks)) as u64
            };
            if drip.done >= drip.chunks {
                if let Some(record) = drip.record.take() {
                    record.waited(drip.wait, drip.start.elapsed());
                    record.finish(Outcome::Ok);
                }
            } else {
                let at = after(
                    drip.start,
                    drip.wait
                        .mul_f64((drip.done + 1) as f64 / drip.chunks as f64),
                );
                drip.sleep.as_mut().reset(at);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.total && self.truncate_at.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let left = self.total - self.sent;
        if self.drip.is_some() {
            // Not exact, so HTTP/1.1 uses chunked transfer and each chunk leaves when released.
            let mut hint = SizeHint::new();
            hint.set_lower(left);
            hint
        } else {
            SizeHint::with_exact(left)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The ready-made bodies are the ones the general path writes, and only whole seconds up to
    /// 9 use them.
    #[test]
    fn ready_made_bodies_match_the_written_ones() {
        for segment in [
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "11",
            "007",
            "3.000",
            "0.5",
            "1.25",
            "9.000000001",
        ] {
            let plan = crate::options::plan(segment, None, &Config::default()).unwrap();
            let expected = format!(r#"{{"time_elapsed": {}}}"#, plan.requested);
            assert_eq!(json(&plan), expected.as_bytes(), "{segment}");
        }
    }

    /// An answer's header map has room for every header it will carry: over HTTP/2 that includes
    /// the `Date` and `Content-Length` hyper adds, so that the map does not grow for every stream;
    /// over HTTP/1.1, where hyper keeps the map for the connection's next answer, no more.
    #[test]
    fn the_header_map_has_room_for_what_hyper_adds_over_http2() {
        for query in [None, Some("jitter=0.5")] {
            let plan = crate::options::plan("1", query, &Config::default()).unwrap();
            for http2 in [false, true] {
                let mut response = base(&plan, Body::empty(), http2);
                server_timing(&mut response, Duration::from_millis(1), false, http2);
                no_store_by_default(&mut response);
                let headers = response.headers_mut();
                let capacity = headers.capacity();
                if !http2 && query.is_none() {
                    assert_eq!(
                        capacity,
                        headers.len(),
                        "no room past the answer's own headers"
                    );
                }
                if http2 {
                    headers.insert(header::DATE, HeaderValue::from_static("now"));
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(19u64));
                    assert_eq!(headers.capacity(), capacity, "{query:?}: regrown");
                }
            }
        }
    }

    /// Over HTTP/2 the `Server-Timing` value is marked sensitive, so that HPACK sends it as a
    /// literal never indexed rather than adding a value no later answer repeats to the
    /// connection's table; over HTTP/1.1 the mark would mean nothing, and is not set.
    #[test]
    fn server_timing_is_never_indexed_over_http2_only() {
        let plan = crate::options::plan("1", None, &Config::default()).unwrap();
        for http2 in [false, true] {
            let mut response = base(&plan, Body::empty(), http2);
            server_timing(
                &mut response,
                Duration::from_micros(1_000_250),
                false,
                http2,
            );
            let value = &response.headers()[SERVER_TIMING];
            assert_eq!(value.as_bytes(), b"wait;dur=1000.250");
            assert_eq!(value.is_sensitive(), http2);
        }
    }
}
