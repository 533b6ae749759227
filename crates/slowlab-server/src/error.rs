//! Every way a request can be refused, and how each one is answered.
//!
//! One enum, one place that maps it to a status code and a JSON body
//! `{"error": "<code>", "detail": "<what was wrong and what would be right>"}`. Details repeat at most a
//! short excerpt of the request, never the whole of it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

use crate::delay::{Delay, DelayError};

/// The methods the delay endpoint answers, as sent in `Allow`.
pub const ALLOWED_METHODS: &str = "GET, HEAD";

/// A request the server refuses, with everything needed to explain why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The path segment is not a delay.
    #[error(transparent)]
    Delay(#[from] DelayError),
    /// A valid delay above the server's cap.
    #[error("delay {requested} s is over the cap of {max:?}")]
    OverMaxDelay {
        /// What the client asked for.
        requested: Delay,
        /// The server's `--max-delay`.
        max: Duration,
    },
    /// No route has this path.
    #[error("no route for {path:?}")]
    NotFound {
        /// A short excerpt of the path.
        path: String,
    },
    /// A method other than GET or HEAD.
    #[error("method {method} not allowed")]
    MethodNotAllowed {
        /// The method as sent (short excerpt).
        method: String,
    },
    /// The request target is longer than the server accepts.
    #[error("URI of {len} bytes is over {max}")]
    UriTooLong {
        /// Length of the request target.
        len: usize,
        /// The server's limit.
        max: usize,
    },
    /// A query option the server does not know, such as the typo `jiter=`.
    #[error("unknown option {key:?}")]
    UnknownOption {
        /// A short excerpt of the key.
        key: String,
        /// The keys that are known, listed in the answer.
        known: &'static [&'static str],
    },
    /// A known option with a value it cannot take.
    #[error("bad value {value:?} for {key}")]
    BadOption {
        /// The option.
        key: &'static str,
        /// A short excerpt of the value.
        value: String,
        /// What the option takes.
        expected: &'static str,
    },
    /// A `mix=` that is not a mix.
    #[error("bad mix {value:?}: {reason}")]
    BadMix {
        /// A short excerpt of the value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Options that contradict each other, such as `jitter` with `dist`.
    #[error("conflicting options: {detail}")]
    ConflictingOptions {
        /// Which ones, and why.
        detail: &'static str,
    },
    /// `bytes=` above the server's cap.
    #[error("body of {requested} bytes is over the cap of {max}")]
    BodyTooLarge {
        /// What the client asked for.
        requested: u64,
        /// The server's `--max-body-bytes`.
        max: u64,
    },
    /// An HTTP/1.1 request without exactly one valid `Host` header.
    #[error("bad Host header: {problem}")]
    BadHost {
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The asterisk-form target `*` with a method other than OPTIONS.
    #[error("the target * with method {method}")]
    AsteriskTarget {
        /// The method as sent (short excerpt).
        method: String,
    },
    /// A request body (to `/anything`) over `--max-body-bytes`.
    #[error("request body over {max} bytes")]
    RequestBodyTooLarge {
        /// The server's `--max-body-bytes`.
        max: u64,
    },
    /// A request body (to `/anything`) that ended before its framing said it would.
    #[error("request body unreadable")]
    BodyUnreadable,
    /// A request body (to `/anything`) that did not arrive in full within `--body-read-timeout`.
    #[error("request body too slow")]
    BodyTimeout {
        /// The server's `--body-read-timeout`.
        limit: Duration,
    },
    /// The request headers are larger than the server accepts.
    #[error("headers too large")]
    HeadersTooLarge {
        /// Total bytes of header names and values.
        bytes: usize,
        /// Number of header lines.
        count: usize,
        /// The server's byte limit.
        max_bytes: usize,
        /// The server's count limit.
        max_count: usize,
    },
    /// `--max-in-flight` requests are already in flight.
    #[error("over capacity: {max} requests in flight")]
    OverCapacity {
        /// The server's `--max-in-flight`.
        max: u64,
    },
}

/// Marks a response as a refusal, so the connection layer counts it as `outcome="rejected"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal;

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    detail: String,
}

impl ApiError {
    /// The short, stable code in the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Delay(DelayError::NotANumber { .. }) => "not_a_number",
            ApiError::Delay(DelayError::Negative { .. }) => "negative",
            ApiError::Delay(DelayError::Overflow { .. })
            | ApiError::OverMaxDelay { .. }
            | ApiError::BodyTooLarge { .. } => "too_large",
            ApiError::UnknownOption { .. } => "unknown_option",
            ApiError::BadOption { .. } | ApiError::BadMix { .. } => "bad_option",
            ApiError::ConflictingOptions { .. } => "conflicting_options",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UriTooLong { .. } => "uri_too_long",
            ApiError::RequestBodyTooLarge { .. } => "body_too_large",
            ApiError::BodyUnreadable => "body_unreadable",
            ApiError::BodyTimeout { .. } => "body_timeout",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::BadHost { .. } => "bad_host",
            ApiError::AsteriskTarget { .. } => "bad_request_target",
            ApiError::OverCapacity { .. } => "over_capacity",
        }
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Delay(_)
            | ApiError::OverMaxDelay { .. }
            | ApiError::UnknownOption { .. }
            | ApiError::BadOption { .. }
            | ApiError::BadMix { .. }
            | ApiError::ConflictingOptions { .. }
            | ApiError::BodyTooLarge { .. }
            | ApiError::BadHost { .. }
            | ApiError::AsteriskTarget { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::RequestBodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyUnreadable => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::OverCapacity { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What was wrong and what would be right, in one sentence or two.
    pub fn detail(&self) -> String {
        const FORMAT: &str = "use whole or decimal seconds, e.g. /7 or /0.25 (digits, optionally a dot and 1 to 9 more digits)";
        match self {
            ApiError::Delay(DelayError::NotANumber { excerpt }) => {
                format!("{excerpt:?} is not a number of seconds: {FORMAT}")
            }
            ApiError::Delay(DelayError::Negative { excerpt }) => {
                format!("{excerpt:?} is negative: a delay cannot be below 0; {FORMAT}")
            }
            ApiError::Delay(DelayError::Overflow { excerpt }) => format!(
                "{excerpt:?} is too large to represent as seconds; ask for at most the server's max delay"
            ),
            ApiError::OverMaxDelay { requested, max } => format!(
                "delay {requested} s is over this server's max delay of {} s; ask for less, or start the server with a larger --max-delay",
                Delay::from(*max)
            ),
            ApiError::UnknownOption { key, known } => format!(
                "unknown option {key:?}; the known options are: {}",
                known.join(", ")
            ),
            ApiError::BadOption {
                key,
                value,
                expected,
            } => format!("{key}={value} is not valid: {key} takes {expected}"),
            ApiError::BadMix { value, reason } => format!(
                "mix={value} is not valid: {reason}; mix takes {}",
                crate::mix::GRAMMAR
            ),
            ApiError::ConflictingOptions { detail } => format!("conflicting options: {detail}"),
            ApiError::BodyTooLarge { requested, max } => format!(
                "bytes={requested} is over this server's cap of {max} bytes; ask for less, or start the server with a larger --max-body-bytes"
            ),
            ApiError::NotFound { path } => format!(
                "no route for {path:?}: the delay endpoint is GET /{{seconds}}, a number of seconds as the one path segment, e.g. /7 or /0.25; see / for the others"
            ),
            ApiError::MethodNotAllowed { method } => format!(
                "method {method} is not allowed here: use GET or HEAD (a server started with --any-method lets every method wait on /{{seconds}})"
            ),
            ApiError::RequestBodyTooLarge { max } => format!(
                "the request body is over this server's cap of {max} bytes; send less, or start the server with a larger --max-body-bytes"
            ),
            ApiError::BodyUnreadable => "the request body ended before its Content-Length or chunked framing said it would; send the whole body".to_owned(),
            ApiError::BodyTimeout { limit } => format!(
                "the request body did not arrive in full within {} s; send it faster, or start the server with a longer --body-read-timeout",
                Delay::from(*limit)
            ),
            ApiError::UriTooLong { len, max } => {
                format!("the request URI is {len} bytes; this server accepts at most {max}")
            }
            ApiError::BadHost { problem } => format!(
                "{problem}: an HTTP/1.1 request needs exactly one Host header naming the server, e.g. Host: 127.0.0.1:8000 (RFC 9112, section 3.2)"
            ),
            ApiError::AsteriskTarget { method } => format!(
                "the request target * is for OPTIONS alone, not {method}: ask for a path such as /7 or /0.25"
            ),
            ApiError::HeadersTooLarge {
                bytes,
                count,
                max_bytes,
                max_count,
            } => format!(
                "the request has {count} headers of {bytes} bytes in all; this server accepts at most {max_count} headers and {max_bytes} bytes"
            ),
            ApiError::OverCapacity { max } => format!(
                "this server already has {max} requests in flight, its --max-in-flight; retry after the Retry-After seconds, or start the server with a larger --max-in-flight"
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code(),
            detail: self.detail(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        response.extensions_mut().insert(Refusal);
        if let ApiError::MethodNotAllowed { .. } = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        if let ApiError::OverCapacity { .. } = self {
            // Waits end all the time on a slow server; a second is a fair guess.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
