//! One record per request: when it ran, and how it ended.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::workload::Target;

/// How one request ended: exactly one per request of a workload, whatever happens.
///
/// Kept compact (about 150 bytes, plus an error message on failure): a run of 100,000 requests
/// holds all of them.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Position of the request in the workload.
    pub index: usize,
    /// When the request's work began (after any wait for a slot, before connecting), from the start
    /// of the run.
    pub start: Duration,
    /// When the request finished (body read, or failed), from the start of the run.
    pub end: Duration,
    /// In an open-loop run (a rate), when the request was due, from the start of the run:
    /// `start - scheduled` is its send lag, and `end - scheduled` its latency as its user would
    /// see it. `None` in closed-loop runs.
    pub scheduled: Option<Duration>,
    /// How long the request waited for a free slot (a connection of the HTTP/1.1 pool, a stream
    /// slot of an HTTP/2 connection, or a thread) before `start`, counting from the run's start.
    /// Zero when it never waited, as in unbounded async runs and in sequential runs, where
    /// nothing is issued before the previous request ends.
    pub slot_wait: Duration,
    /// Time to establish a new connection, when this request made one and it could be measured.
    pub connect: Option<Duration>,
    /// When the response head arrived, from the start of the run.
    pub first_byte: Option<Duration>,
    /// The HTTP status, when a response head arrived (also for `http-status` failures).
    pub status: Option<u16>,
    /// Bytes of response body received.
    pub bytes: u64,
    /// The response, or why there is none.
    pub result: Result<Reply, FetchError>,
}

impl Outcome {
    /// How long the request took, start to end: in an open-loop run, its service time.
    pub fn latency(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// In an open-loop run, how long after it was due the request was sent.
    pub fn send_lag(&self) -> Option<Duration> {
        self.scheduled.map(|due| self.start.saturating_sub(due))
    }

    /// In an open-loop run, the latency from when the request was due to its end: what a caller
    /// arriving on schedule waited, free of coordinated omission.
    pub fn from_schedule(&self) -> Option<Duration> {
        self.scheduled.map(|due| self.end.saturating_sub(due))
    }

    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The error kind, when the request failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.result.as_ref().err().map(|err| err.kind)
    }

    /// An outcome for a request that never ran or never reported, ending at `at`.
    pub fn unfinished(index: usize, at: Duration, error: FetchError) -> Outcome {
        Outcome {
            index,
            start: at,
            end: at,
            scheduled: None,
            slot_wait: Duration::ZERO,
            connect: None,
            first_byte: None,
            status: None,
            bytes: 0,
            result: Err(error),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status (2xx).
    pub status: u16,
    /// The body as received; empty unless [`RequestOptions::keep_bodies`] is set, so that large
    /// runs do not hold every body (the size is in [`Outcome::bytes`]).
    ///
    /// [`RequestOptions::keep_bodies`]: crate::RequestOptions::keep_bodies
    pub body: Bytes,
    /// The `time_elapsed` the server echoed, for delay requests.
    pub time_elapsed: Option<f64>,
}

/// Why a request failed: a stable kind to branch on, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// What kind of failure, from a stable list.
    pub kind: ErrorKind,
    /// What happened and, where it helps, what to do about it.
    pub message: String,
}

/// The stable list of failure kinds. Their kebab-case names appear in machine output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Nothing listens at the address.
    Refused,
    /// The connection was not established within the connect timeout.
    ConnectTimeout,
    /// The request did not finish within its timeout.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// The connection closed before a complete response arrived.
    ClosedEarly,
    /// The server answered with a status other than 2xx.
    HttpStatus,
    /// The body was not what the request expected (e.g. no `time_elapsed` echo).
    BadBody,
    /// The response body was longer than the cap
    /// ([`RequestOptions::max_response_bytes`](crate::RequestOptions::max_response_bytes)).
    BodyTooLarge,
    /// This process ran out of file descriptors.
    FdExhausted,
    /// No local port was free to connect from.
    PortExhausted,
    /// The run was interrupted (Ctrl-C) before this request finished.
    Cancelled,
    /// Anything else; the message says what.
    Other,
}

impl ErrorKind {
    /// The kebab-case name used in output, e.g. `closed-early`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectTimeout => "connect-timeout",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::ClosedEarly => "closed-early",
            ErrorKind::HttpStatus => "http-status",
            ErrorKind::BadBody => "bad-body",
            ErrorKind::BodyTooLarge => "body-too-large",
            ErrorKind::FdExhausted => "fd-exhausted",
            ErrorKind::PortExhausted => "port-exhausted",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Other => "other",
        }
    }

    /// Every kind, in the order of the list above.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Refused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::ClosedEarly,
        ErrorKind::HttpStatus,
        ErrorKind::BadBody,
        ErrorKind::BodyTooLarge,
        ErrorKind::FdExhausted,
        ErrorKind::PortExhausted,
        ErrorKind::Cancelled,
        ErrorKind::Other,
    ];
}

impl FetchError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            message: message.into(),
        }
    }

    /// Maps an I/O error met while talking to `base_url` to a kind and a helpful message.
    pub fn from_io(err: &io::Error, base_url: &str) -> FetchError {
        use io::ErrorKind as Io;
        let kind = match (err.kind(), err.raw_os_error()) {
            (_, Some(23 | 24)) => ErrorKind::FdExhausted,
            (_, Some(99)) | (Io::AddrNotAvailable, _) => ErrorKind::PortExhausted,
            (Io::ConnectionRefused, _) => ErrorKind::Refused,
            (Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe, _) => ErrorKind::Reset,
            (Io::UnexpectedEof, _) => ErrorKind::ClosedEarly,
            (Io::TimedOut, _) => ErrorKind::Timeout,
            _ => ErrorKind::Other,
        };
        let message = match kind {
            ErrorKind::Refused => {
                format!("connection refused: is `slowlab serve` running on {base_url}?")
            }
            ErrorKind::FdExhausted => {
                format!("out of file descriptors ({err}): raise the limit with `ulimit -n`")
            }
            ErrorKind::PortExhausted => format!(
                "no free local port ({err}): too many connections to one address; use fewer at once"
            ),
            _ => err.to_string(),
        };
        FetchError::new(kind, message)
    }

    /// The run was interrupted before this request finished; `in_flight` says whether it had been
    /// sent.
    pub fn cancelled(in_flight: bool) -> FetchError {
        let message = if in_flight {
            "cancelled in flight: the run was interrupted"
        } else {
            "cancelled before it was sent: the run was interrupted"
        };
        FetchError::new(ErrorKind::Cancelled, message)
    }

    /// The request did not finish within `limit`.
    pub fn timed_out(limit: Duration) -> FetchError {
        FetchError::new(
            ErrorKind::Timeout,
            format!("no complete response within the timeout of {limit:?}"),
        )
    }
}

/// Longest part of a body quoted in an error message.
const BODY_EXCERPT: usize = 200;

/// Judges a complete response: 2xx with the expected echo is a success, anything else a typed error.
/// The answer to a `HEAD` has no body, so it is judged by its status alone.
///
/// The body stays in the [`Reply`] only when `keep_body` is set.
pub fn judge_body(
    target: &Target,
    method: &http::Method,
    status: u16,
    body: Bytes,
    keep_body: bool,
) -> Result<Reply, FetchError> {
    let mut reply = if method == http::Method::HEAD {
        let without_echo = Target {
            delay: None,
            ..target.clone()
        };
        judge(&without_echo, status, body)?
    } else {
        judge(target, status, body)?
    };
    if !keep_body {
        reply.body = Bytes::new();
    }
    Ok(reply)
}

/// Judges a complete response: 2xx with the expected echo is a success, anything else a typed error.
pub fn judge(target: &Target, status: u16, body: Bytes) -> Result<Reply, FetchError> {
    if !(200..300).contains(&status) {
        return Err(FetchError::new(
            ErrorKind::HttpStatus,
            format!("HTTP {status}: {}", excerpt(&body)),
        ));
    }
    let time_elapsed = match target.delay {
        None => None,
        Some(delay) => Some(echoed_delay(&body, delay)?),
    };
    Ok(Reply {
        status,
        body,
        time_elapsed,
    })
}

/// Reads `time_elapsed` from a delay response and checks it against what was asked.
fn echoed_delay(body: &[u8], asked: Duration) -> Result<f64, FetchError> {
    let bad = |why: &str| {
        FetchError::new(
            ErrorKind::BadBody,
            format!("{why}; body was {}", excerpt(body)),
        )
    };
    /// The expected answer, read without building a tree: this runs once per request.
    #[derive(serde::Deserialize)]
    struct Echo {
        time_elapsed: f64,
    }
    let echoed = match serde_json::from_slice::<Echo>(body) {
        Ok(echo) => echo.time_elapsed,
        // Not the expected shape: find out what is wrong, for the message.
        Err(_) => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|_| bad("response is not JSON"))?;
            value
                .get("time_elapsed")
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| bad("no number \"time_elapsed\" in the response"))?
        }
    };
    // The path carries microseconds; allow for that rounding and for float noise.
    if (echoed - asked.as_secs_f64()).abs() > 1e-6 {
        return Err(bad(&format!(
            "echoed time_elapsed {echoed} but {} was asked",
            asked.as_secs_f64()
        )));
    }
    Ok(echoed)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > BODY_EXCERPT {
        let cut: String = text.chars().take(BODY_EXCERPT).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ms: u64) -> Target {
        Target::delay(Duration::from_millis(ms))
    }

    #[test]
    fn success_needs_the_echo() {
        let ok = judge(
            &target(250),
            200,
            Bytes::from_static(b"{\"time_elapsed\": 0.25}"),
        )
        .unwrap();
        assert_eq!(ok.time_elapsed, Some(0.25));
        let wrong = judge(
            &target(250),
            200,
            Bytes::from_static(b"{\"time_elapsed\": 1}"),
        );
        assert_eq!(wrong.unwrap_err().kind, ErrorKind::BadBody);
        let not_json = judge(&target(250), 200, Bytes::from_static(b"hello"));
        assert_eq!(not_json.unwrap_err().kind, ErrorKind::BadBody);
    }

    #[test]
    fn non_2xx_is_http_status_with_the_body() {
        let err = judge(
            &target(0),
            400,
            Bytes::from_static(b"{\"error\": \"negative\"}"),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::HttpStatus);
        assert!(err.message.contains("400") && err.message.contains("negative"));
    }

    #[test]
    fn io_errors_get_kinds() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = FetchError::from_io(&refused, "http://127.0.0.1:1");
        assert_eq!(err.kind, ErrorKind::Refused);
        assert!(
            err.message
                .contains("is `slowlab serve` running on http://127.0.0.1:1")
        );
        assert_eq!(
            FetchError::from_io(&io::Error::from_raw_os_error(24), "x").kind,
            ErrorKind::FdExhausted
        );
        assert_eq!(
            FetchError::from_io(&io::Error::from_raw_os_error(99), "x").kind,
            ErrorKind::PortExhausted
        );
        assert_eq!(
            FetchError::from_io(&io::Error::from(io::ErrorKind::ConnectionReset), "x").kind,
            ErrorKind::Reset
        );
    }
}
