//! The router: the only place that knows the server's URLs.
//!
//! A request passes the limits layer (URI and header size, in-flight counting), then reaches the delay
//! handler, which parses the path, waits on a timer, and answers the article's JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::Config;
use crate::delay::{Delay, excerpt};
use crate::error::ApiError;
use crate::stats::Stats;

/// What every handler can see.
#[derive(Clone)]
struct AppState {
    config: Arc<Config>,
    stats: Arc<Stats>,
}

/// Builds the service for one server. Usable without a socket (`tower::ServiceExt::oneshot`).
pub fn app(config: Arc<Config>, stats: Arc<Stats>) -> Router {
    let state = AppState { config, stats };
    Router::new()
        .route("/", get(index).fallback(method_not_allowed))
        .route("/{sleep}", get(wait).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .with_state(state)
}

/// `GET /{sleep}`: wait `sleep` seconds on a timer, then answer `{"time_elapsed": sleep}`.
///
/// HEAD is served by the same handler; the body is dropped on the way out.
async fn wait(
    State(state): State<AppState>,
    segment: Result<Path<String>, PathRejection>,
    request_path: axum::http::Uri,
) -> Result<Response, ApiError> {
    let Path(segment) = segment.map_err(|_| {
        // Percent-escapes that do not decode to UTF-8 are not a number either.
        ApiError::Delay(crate::delay::DelayError::NotANumber {
            excerpt: excerpt(request_path.path().trim_start_matches('/')),
        })
    })?;
    let delay = Delay::parse(&segment)?;
    if delay.as_duration() > state.config.max_delay {
        return Err(ApiError::OverMaxDelay {
            requested: delay,
            max: state.config.max_delay,
        });
    }

    let started = Instant::now();
    tokio::time::sleep(delay.as_duration()).await;
    let waited = started.elapsed();

    let body = format!("{{\"time_elapsed\": {delay}}}");
    let server_timing = format!("wait;dur={:.3}", waited.as_secs_f64() * 1000.0);
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&server_timing) {
        response.headers_mut().insert("server-timing", value);
    }
    Ok(response)
}

/// `GET /`: a short description of the API, for a human with curl.
async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        concat!(
            r#"{"name": "slowlab", "version": ""#,
            env!("CARGO_PKG_VERSION"),
            r#"", "usage": "GET /{seconds} waits that long, then answers {\"time_elapsed\": seconds}; seconds may be decimal, e.g. /0.25"}"#
        ),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound {
        path: excerpt(uri.path()),
    }
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: excerpt(method.as_str()),
    }
}

/// Refuses over-long URIs and over-large headers with JSON, and counts the request in flight.
///
/// hyper has its own, larger limits that answer without a body; these come first so that every
/// refusal a client is likely to meet explains itself.
async fn limits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let _in_flight = state.stats.enter();
    let config = &state.config;

    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > config.max_uri_bytes {
        return ApiError::UriTooLong {
            len: uri_len,
            max: config.max_uri_bytes,
        }
        .into_response();
    }

    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > config.max_header_bytes || headers.len() > config.max_headers {
        return ApiError::HeadersTooLarge {
            bytes: header_bytes,
            count: headers.len(),
            max_bytes: config.max_header_bytes,
            max_count: config.max_headers,
        }
        .into_response();
    }

    next.run(request).await
}
