//! `/anything`: answers with what the client sent (method, path, query, headers and body) as
//! JSON, after the wait its options ask for, like go-httpbin's endpoint of the same name. People
//! point their client here to see what it really sends.
//!
//! The whole query is echoed. Keys that are slowlab options (`jitter`, `status`, `mix`, `fault`,
//! ...) also shape the wait and the answer, with `delay=SECONDS` as the base delay (0 when not
//! given); any other key is only echoed, since the client under test chose it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::{BodyExt, Limited};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use crate::custom::Custom;
use crate::error::ApiError;
use crate::options::{KEY_NAMES, plan_drawing};
use crate::request_log::RequestInfo;
use crate::routes::{AppState, serve};

/// The echo's path; every path below it echoes too.
pub(crate) const PATH: &str = "/anything";

/// Whether `path` is `/anything` or below it.
pub(crate) fn is_echo(path: &str) -> bool {
    path.strip_prefix(PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What the echo answers.
#[derive(Debug, Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    /// Each key's values in order, decoded as a form would be.
    query: BTreeMap<String, Vec<String>>,
    /// The query as sent.
    raw_query: &'a str,
    /// Each header's values in order; names in lower case.
    headers: BTreeMap<&'a str, Vec<String>>,
    /// The body as text, when it is UTF-8.
    body: Option<String>,
    /// The body in base64, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    /// The body parsed, when it is JSON.
    json: Option<serde_json::Value>,
    /// The body's length in bytes.
    body_bytes: usize,
}

/// Reads the request (its body up to `--max-body-bytes`), waits as its options say, and answers
/// with what it was.
///
/// `log`, when the request log is on, goes to the answer's record, which writes the line.
pub(crate) async fn serve_echo<B>(
    state: AppState,
    request: Request<B>,
    log: Option<Box<RequestInfo>>,
) -> Response
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let (parts, body) = request.into_parts();
    let raw_query = parts.uri.query().unwrap_or_default();
    let (delay, options) = match split_options(raw_query) {
        Ok(split) => split,
        Err(err) => return err.into_response(),
    };
    let plan = match plan_drawing(
        &delay,
        Some(&options),
        &state.config,
        state.sequence.as_ref(),
    ) {
        Ok(plan) => plan,
        Err(err) => return err.into_response(),
    };
    let max = state.config.max_body_bytes;
    // The whole body within the timeout, not each piece: a body sent a byte at a time would
    // otherwise hold the request for ever (slowloris on the body). Nothing is answered yet, so
    // the 408 can still be sent.
    let limit = state.config.body_read_timeout;
    let read = Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX)).collect();
    let bytes = match tokio::time::timeout(limit, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
            return ApiError::RequestBodyTooLarge { max }.into_response();
        }
        // The client went away or broke the body's framing.
        Ok(Err(_)) => return ApiError::BodyUnreadable.into_response(),
        Err(_) => return ApiError::BodyTimeout { limit }.into_response(),
    };

    let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let text = std::str::from_utf8(&bytes).ok();
    let echo = Echo {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: decode_query(raw_query),
        raw_query,
        headers,
        body: text.map(str::to_owned),
        body_base64: match text {
            Some(_) => None,
            None => Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        },
        json: serde_json::from_slice(&bytes).ok(),
        body_bytes: bytes.len(),
    };
    // One line: clients that print bodies line by line (slowlab fetch) keep it whole.
    let json = match serde_json::to_vec(&echo) {
        Ok(json) => json,
        Err(_) => b"{}".to_vec(),
    };
    let custom = Arc::new(Custom::json(json.into()));
    let head_only = parts.method == Method::HEAD;
    serve(state, plan, head_only, parts.version, Some(custom), log).await
}

/// Splits the query into the base delay (`delay=`, or 0) and the keys that are slowlab options,
/// as a query the options parser reads.
fn split_options(query: &str) -> Result<(String, String), ApiError> {
    let mut delay = None;
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        if key == "delay" {
            if delay.is_some() {
                return Err(ApiError::BadOption {
                    key: "delay",
                    value: crate::delay::excerpt(pair),
                    expected: "seconds, whole or decimal, e.g. 0.25, at most once",
                });
            }
            delay = Some(pair.split_once('=').map_or("", |(_, v)| v).to_owned());
        } else if KEY_NAMES.contains(&key) {
            options.push(pair);
        }
    }
    Ok((delay.unwrap_or_else(|| "0".to_owned()), options.join("&")))
}

/// `a=1&b=x+y&a=2` as `{a: [1, 2], b: ["x y"]}`, decoded as an HTML form is.
fn decode_query(query: &str) -> BTreeMap<String, Vec<String>> {
    let decode = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    };
    let mut decoded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        decoded.entry(decode(key)).or_default().push(decode(value));
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_paths() {
        assert!(is_echo("/anything"));
        assert!(is_echo("/anything/a/b"));
        assert!(!is_echo("/anythingelse"));
        assert!(!is_echo("/"));
    }

    #[test]
    fn options_are_picked_out_of_the_query() {
        let (delay, options) = split_options("user=1&delay=0.5&status=503&q=a+b").unwrap();
        assert_eq!(delay, "0.5");
        assert_eq!(options, "status=503");
        assert_eq!(split_options("").unwrap().0, "0");
        assert!(split_options("delay=1&delay=2").is_err());
        let query = decode_query("a=1&b=x+y%21&a=2");
        assert_eq!(query["a"], ["1", "2"]);
        assert_eq!(query["b"], ["x y!"]);
    }
}
