//! Answers other than the article's `{"time_elapsed": ...}`: the echo's JSON, a rule's body and
//! headers. They wait, drip, pad, pace and fail like every other answer; only the bytes and the
//! headers differ.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;

/// A body, its content type and extra headers, shared by every request that answers with them.
#[derive(Debug, Clone)]
pub(crate) struct Custom {
    /// The body before any padding (`bytes=` pads it with spaces).
    pub(crate) body: Bytes,
    /// Its `Content-Type`.
    pub(crate) content_type: HeaderValue,
    /// Headers added to the answer (a rule's `headers`).
    pub(crate) headers: HeaderMap,
}

impl Custom {
    /// A JSON body with no extra headers.
    pub(crate) fn json(body: Bytes) -> Custom {
        Custom {
            body,
            content_type: HeaderValue::from_static("application/json"),
            headers: HeaderMap::new(),
        }
    }

    /// Sets the content type and the extra headers on an answer.
    pub(crate) fn decorate(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.content_type.clone());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}
