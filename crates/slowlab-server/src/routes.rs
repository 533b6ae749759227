//! The router: the only place that knows the server's URLs.
//!
//! - `GET /{seconds}`: parse the path and query into a plan, hold the request as the model does,
//!   then answer (or drip, or fault);
//! - `GET /healthz`, `GET /metrics`, `GET /`: health, Prometheus metrics, a page for humans.
//!
//! Size limits on the URI and headers are checked one step earlier, in the connection layer
//! ([`crate::limits`]), so they hold for every route.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use percent_encoding::percent_decode_str;

use crate::config::Config;
use crate::delay::{DelayError, excerpt};
use crate::error::ApiError;
use crate::metrics::{self, Outcome};
use crate::model::Waiter;
use crate::options::{Fault, plan};
use crate::respond;
use crate::stats::Stats;

/// What every handler can see; one `Arc`, so extracting it costs one reference count.
#[derive(Clone)]
struct AppState(Arc<Shared>);

struct Shared {
    config: Arc<Config>,
    stats: Arc<Stats>,
    waiter: Waiter,
    up_since: Instant,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Builds the service for one server. Usable without a socket (`tower::ServiceExt::oneshot`).
pub fn app(config: Arc<Config>, stats: Arc<Stats>) -> Router {
    let waiter = Waiter::new(config.model);
    let delay_route = if config.any_method {
        any(wait)
    } else {
        get(wait).fallback(method_not_allowed)
    };
    let state = AppState(Arc::new(Shared {
        config,
        stats,
        waiter,
        up_since: Instant::now(),
    }));
    Router::new()
        .route("/", get(index).fallback(method_not_allowed))
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route("/metrics", get(metrics).fallback(method_not_allowed))
        .route("/{sleep}", delay_route)
        .fallback(not_found)
        .with_state(state)
}

/// `GET /{sleep}`: wait `sleep` seconds as the model does, then answer `{"time_elapsed": sleep}`.
///
/// HEAD is served by the same handler; hyper drops the body on the way out.
async fn wait(State(state): State<AppState>, request: Request) -> Response {
    let head_only = request.method() == Method::HEAD;
    let http2 = request.version() == axum::http::Version::HTTP_2;
    let uri = request.uri();
    let raw = uri.path().strip_prefix('/').unwrap_or_default();
    let segment = if raw.contains('%') {
        match percent_decode_str(raw).decode_utf8() {
            Ok(text) => text,
            // Percent-escapes that do not decode to UTF-8 are not a number either.
            Err(_) => {
                return ApiError::Delay(DelayError::NotANumber {
                    excerpt: excerpt(raw),
                })
                .into_response();
            }
        }
    } else {
        Cow::Borrowed(raw)
    };
    let plan = match plan(&segment, uri.query(), &state.config) {
        Ok(plan) => plan,
        Err(err) => return err.into_response(),
    };
    drop(request);

    let record = state.stats.record(plan.status(), plan.requested);
    if let Some(chunks) = plan.options.drip {
        return respond::drip(&plan, chunks, record, head_only);
    }

    let started = tokio::time::Instant::now();
    state.waiter.wait(plan.wait).await;
    let waited = started.elapsed();
    record.waited(plan.wait, waited);

    match plan.options.fault {
        None => respond::answer(&plan, waited, record),
        Some(fault) => {
            record.finish(Outcome::Fault);
            match fault {
                Fault::Truncate => respond::truncated(&plan, waited),
                Fault::Hang => {
                    // Never answer; the wait ends when the client goes away (this future is
                    // dropped) or after --max-delay, whichever comes first.
                    tokio::time::sleep(state.config.max_delay).await;
                    respond::abort(Fault::Hangup)
                }
                // Over HTTP/2 a connection carries other streams: every fault ends only this one.
                Fault::Reset | Fault::Malformed if http2 => respond::abort(Fault::Hangup),
                fault => respond::abort(fault),
            }
        }
    }
}

/// `GET /healthz`: version, model, requests in flight, uptime.
async fn healthz(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "model": state.config.model.to_string(),
        "in_flight": state.stats.snapshot().in_flight,
        "uptime_seconds": state.up_since.elapsed().as_secs_f64(),
    });
    axum::Json(body).into_response()
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.stats.metrics().render(
        state.stats.snapshot().in_flight,
        &state.config.model.to_string(),
    );
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// `GET /`: a page listing the endpoints and options with clickable examples.
async fn index(State(state): State<AppState>) -> Response {
    let page = INDEX_HTML
        .replace("{version}", env!("CARGO_PKG_VERSION"))
        .replace("{model}", &state.config.model.to_string())
        .replace(
            "{max_delay}",
            &state.config.max_delay.as_secs_f64().to_string(),
        );
    (StatusCode::OK, Html(page)).into_response()
}

const INDEX_HTML: &str = include_str!("index.html");

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        path: excerpt(uri.path()),
    }
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: excerpt(method.as_str()),
    }
}
