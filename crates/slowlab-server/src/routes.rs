//! The router: the only place that knows the server's URLs.
//!
//! - `GET /{seconds}`: parse the path and query into a plan, hold the request as the model does,
//!   then answer (or drip, or fault);
//! - `GET /healthz`, `GET /metrics`, `GET /`: health, Prometheus metrics, a page for humans;
//! - `GET /race`: the race, live: a page whose browser sends the requests and draws them.
//!
//! Size limits on the URI and headers are checked one step earlier, in the connection layer
//! ([`crate::limits`]), so they hold for every route.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, Version, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{any, get};
use percent_encoding::percent_decode_str;

use crate::config::Config;
use crate::custom::Custom;
use crate::delay::{excerpt, looks_like_number};
use crate::error::{ALLOWED_METHODS, ApiError, Refusal};
use crate::metrics::{self, Outcome};
use crate::model::Waiter;
use crate::options::{Fault, Plan, plan_drawing};
use crate::request_log::RequestInfo;
use crate::respond;
use crate::sequence::Sequence;
use crate::stats::Stats;
use crate::target;

/// What every handler can see; one `Arc`, so extracting it costs one reference count.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) stats: Arc<Stats>,
    waiter: Waiter,
    up_since: Instant,
    /// `--seed`: the server's sequence of draws.
    pub(crate) sequence: Option<Sequence>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The router, plus a direct way for the commonest request: a plain `GET /{seconds}` without a
/// query skips the router's matching, boxing and extensions, which cost as much as the rest of the
/// request on `/0`.
#[derive(Clone)]
pub(crate) struct Routes {
    router: Router,
    state: AppState,
}

impl Routes {
    /// Lets waits that hold a thread end at `deadline` (see [`Waiter::stop_at`]).
    pub(crate) fn stop_waits_at(&self, deadline: std::time::Instant) {
        self.state.waiter.stop_at(deadline);
    }

    /// How many waits [`Routes::stop_waits_at`] cut short.
    pub(crate) fn waits_stopped(&self) -> u64 {
        self.state.waiter.stopped()
    }

    /// Answers `request` at once with `err` (a refusal found before routing), with no body if it
    /// was a HEAD request.
    pub(crate) fn refuse<B>(
        &self,
        request: &Request<B>,
        peer: Option<SocketAddr>,
        err: ApiError,
    ) -> RouteCall {
        let log = RequestInfo::of(self.state.config.request_log, request, peer);
        RouteCall::ready(request.method() == Method::HEAD, err.into_response()).logged(log)
    }

    /// Starts handling `request`.
    ///
    /// The request is parsed, or copied, here and its head dropped before this returns: its URI
    /// and headers point into hyper's read buffer, and a request that kept them through its wait
    /// would make hyper allocate a new buffer for every waiting connection.
    pub(crate) fn call<B>(&self, request: Request<B>, peer: Option<SocketAddr>) -> RouteCall
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let head_only = request.method() == Method::HEAD;
        if let Err(err) = target::check(&request) {
            return self.refuse(&request, peer, err);
        }
        let log = RequestInfo::of(self.state.config.request_log, &request, peer);
        if crate::echo::is_echo(request.uri().path()) {
            // Before the headers are dropped: the echo answers with them.
            // The answer's record logs the request; the call logs a refusal made before it.
            return RouteCall::direct(
                head_only,
                Box::pin(crate::echo::serve_echo(
                    self.state.clone(),
                    request,
                    log.clone(),
                )),
            )
            .logged(log);
        }
        // Rules come after the server's own paths and before everything else.
        if let Some(rules) = &self.state.config.rules
            && let Some(rule) = crate::rules::matched(rules, &request)
        {
            return crate::rules::call(&self.state, rule, request, log.clone()).logged(log);
        }
        if is_plain_delay(&request, self.state.config.any_method) {
            let version = request.version();
            let parsed = parse(&self.state, request.uri());
            drop(request);
            return match parsed {
                Ok(plan) => RouteCall::direct(
                    head_only,
                    Box::pin(serve(
                        self.state.clone(),
                        plan,
                        head_only,
                        version,
                        None,
                        log,
                    )),
                ),
                Err(err) => RouteCall::ready(head_only, err.into_response()).logged(log),
            };
        }
        if target::is_asterisk(request.uri()) {
            // `OPTIONS *` (the only method target::check lets through with it): what the server
            // as a whole allows.
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            return RouteCall::ready(false, response).logged(log);
        }
        let mut request = request.map(Body::new);
        // No handler reads a header past the size limits, which are already checked.
        *request.headers_mut() = HeaderMap::new();
        if let Ok(owned) = Uri::try_from(request.uri().to_string()) {
            *request.uri_mut() = owned;
        }
        // The delay handler's record writes the log line of a delay request; the call writes
        // the others'.
        if log.is_some() {
            request.extensions_mut().insert(log.clone());
        }
        RouteCall::new(
            head_only,
            Inner::Router {
                future: Box::pin(tower::Service::call(&mut self.router.clone(), request)),
            },
        )
        .logged(log)
    }
}

/// A path of one segment of digits and dots, no query, a method the delay endpoint takes.
fn is_plain_delay<B>(request: &Request<B>, any_method: bool) -> bool {
    let uri = request.uri();
    let method = request.method();
    uri.query().is_none()
        && (any_method || method == Method::GET || method == Method::HEAD)
        && uri.path().strip_prefix('/').is_some_and(|segment| {
            !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        })
}

pin_project_lite::pin_project! {
    /// A request on its way through [`Routes`]; its answer leaves fitted to the method and status
    /// ([`respond::fit_body`]) and, unless its route says otherwise, not to be stored by caches
    /// ([`respond::no_store_by_default`]).
    pub(crate) struct RouteCall {
        #[pin]
        inner: Inner,
        head_only: bool,
        log: Option<Box<RequestInfo>>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProjection]
    enum Inner {
        /// A plain delay request, handled directly.
        Direct { future: Pin<Box<dyn Future<Output = Response> + Send>> },
        /// Everything else, through the router; boxed, so that every waiting request's task does
        /// not carry the size of the router's future.
        Router { future: Pin<Box<RouteFuture<Infallible>>> },
        /// Answered without waiting (a refusal found while parsing).
        Ready { response: Option<Box<Response>> },
    }
}

impl RouteCall {
    fn new(head_only: bool, inner: Inner) -> RouteCall {
        RouteCall {
            inner,
            head_only,
            log: None,
        }
    }

    /// Writes a log line for the answer unless a delay request's record does.
    pub(crate) fn logged(mut self, log: Option<Box<RequestInfo>>) -> RouteCall {
        self.log = log;
        self
    }

    /// A request handled by `future` without the router.
    pub(crate) fn direct(
        head_only: bool,
        future: Pin<Box<dyn Future<Output = Response> + Send>>,
    ) -> RouteCall {
        RouteCall::new(head_only, Inner::Direct { future })
    }

    /// A request answered at once with `response`.
    pub(crate) fn ready(head_only: bool, response: Response) -> RouteCall {
        RouteCall::new(
            head_only,
            Inner::Ready {
                response: Some(Box::new(response)),
            },
        )
    }
}

impl Future for RouteCall {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let response = match this.inner.project() {
            InnerProjection::Direct { future } => ready!(future.as_mut().poll(cx)),
            InnerProjection::Router { future } => match ready!(future.as_mut().poll(cx)) {
                Ok(response) => response,
                Err(never) => match never {},
            },
            InnerProjection::Ready { response } => match response.take() {
                Some(response) => *response,
                // Polled again after completing.
                None => return Poll::Pending,
            },
        };
        if let Some(log) = this.log.take()
            && !respond::is_recorded(&response)
        {
            let outcome = match response.extensions().get::<Refusal>() {
                // The only refusal answered 503 is --max-in-flight's.
                Some(_) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    Outcome::OverCapacity
                }
                Some(_) => Outcome::Rejected,
                None => Outcome::Ok,
            };
            log.write(Some(response.status().as_u16()), outcome, None);
        }
        let mut response = respond::fit_body(response, *this.head_only);
        respond::no_store_by_default(&mut response);
        Poll::Ready(response)
    }
}

/// The router and the direct path for one server; fails if the model's threads cannot start.
pub(crate) fn build(config: Arc<Config>, stats: Arc<Stats>) -> std::io::Result<Routes> {
    let waiter = Waiter::new(config.model)?;
    let sequence = config.seed.map(Sequence::new);
    let delay_route = if config.any_method {
        any(wait)
    } else {
        get(wait).fallback(delay_method_not_allowed)
    };
    let state = AppState(Arc::new(Shared {
        config,
        stats,
        waiter,
        up_since: Instant::now(),
        sequence,
    }));
    let router = Router::new()
        .route("/", get(index).fallback(method_not_allowed))
        .route("/race", get(race_page).fallback(method_not_allowed))
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route("/metrics", get(metrics).fallback(method_not_allowed))
        .route("/favicon.ico", get(favicon).fallback(method_not_allowed))
        .route("/{sleep}", delay_route)
        .fallback(not_found)
        .with_state(state.clone());
    Ok(Routes { router, state })
}

/// `GET /{sleep}`: wait `sleep` seconds as the model does, then answer `{"time_elapsed": sleep}`.
///
/// HEAD is served by the same handler; [`RouteCall`] drops the body on the way out and keeps the
/// headers GET would have.
async fn wait(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let log = parts
        .extensions
        .remove::<Option<Box<RequestInfo>>>()
        .flatten();
    match parse(&state, &parts.uri) {
        Ok(plan) => {
            serve(
                state,
                plan,
                parts.method == Method::HEAD,
                parts.version,
                None,
                log,
            )
            .await
        }
        Err(err) => err.into_response(),
    }
}

/// Parses the delay endpoint's path segment (percent-decoded) and query into a plan. A segment
/// that does not look like a number is not this endpoint's: a 404.
fn parse(state: &AppState, uri: &Uri) -> Result<Plan, ApiError> {
    let raw = uri.path().strip_prefix('/').unwrap_or_default();
    let not_found = || ApiError::NotFound {
        path: excerpt(uri.path()),
    };
    let segment = if raw.contains('%') {
        // Percent-escapes that do not decode to UTF-8 are not a number.
        percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| not_found())?
    } else {
        Cow::Borrowed(raw)
    };
    if !looks_like_number(&segment) {
        return Err(not_found());
    }
    plan_drawing(
        &segment,
        uri.query(),
        &state.config,
        state.sequence.as_ref(),
    )
}

/// The delay endpoint itself, once parsed: hold the request as the model does, then answer.
///
/// A function returning an `async move` block rather than an `async fn`: an `async fn` keeps a
/// second copy of its arguments in its state, and this future lives as long as the wait.
///
/// `custom` answers with its body and headers instead of the article's JSON.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(
    state: AppState,
    plan: Plan,
    head_only: bool,
    version: Version,
    custom: Option<Arc<Custom>>,
    log: Option<Box<RequestInfo>>,
) -> impl Future<Output = Response> + Send {
    async move {
        let http2 = version == Version::HTTP_2;
        let Some(record) =
            state
                .stats
                .try_record(plan.status(), plan.requested, state.config.max_in_flight)
        else {
            let max = state.config.max_in_flight.unwrap_or_default();
            let response = ApiError::OverCapacity { max }.into_response();
            if let Some(log) = log {
                log.write(
                    Some(response.status().as_u16()),
                    Outcome::OverCapacity,
                    None,
                );
            }
            return response;
        };
        let record = record.logged(log);
        if let Some(chunks) = plan.options.drip {
            return decorated(
                &custom,
                respond::drip_with(
                    &plan,
                    body(&custom, &plan),
                    chunks,
                    record,
                    head_only,
                    http2,
                ),
            );
        }

        if !state.waiter.wait(plan.wait).await {
            // Stopped by the drain deadline: the request is cut off, not answered early.
            return respond::abort(Fault::Hangup);
        }
        // The record's own start, rather than a copy kept across the wait.
        let waited = record.started().elapsed();
        record.waited(plan.wait, waited);

        match plan.options.fault {
            None => decorated(
                &custom,
                respond::answer_with(
                    &plan,
                    body(&custom, &plan),
                    waited,
                    record,
                    head_only,
                    http2,
                ),
            ),
            Some(Fault::Hang) => {
                // Never answer; the wait ends when the client goes away (this future is dropped)
                // or after --max-delay, whichever comes first. The request stays in flight
                // meanwhile. Boxed: a second timer inline would enlarge every waiting request.
                Box::pin(tokio::time::sleep(state.config.max_delay)).await;
                record.finish(Outcome::Fault);
                respond::abort(Fault::Hangup)
            }
            Some(fault) => {
                record.finish(Outcome::Fault);
                match fault {
                    Fault::Truncate => decorated(
                        &custom,
                        respond::truncated_with(&plan, body(&custom, &plan), waited, http2),
                    ),
                    // Over HTTP/2 a connection carries other streams: every fault ends only this one.
                    Fault::Reset | Fault::Malformed if http2 => respond::abort(Fault::Hangup),
                    fault => respond::abort(fault),
                }
            }
        }
    }
}

/// The answer's body before padding: the custom one, or the article's JSON.
///
/// This and [`decorated`] are functions rather than closures in [`serve`]: a closure borrowing
/// `custom` would be kept across the wait in every waiting request's future.
fn body(custom: &Option<Arc<Custom>>, plan: &Plan) -> bytes::Bytes {
    match custom {
        Some(custom) => custom.body.clone(),
        None => respond::json(plan),
    }
}

/// The answer with the custom content type and headers, if any.
fn decorated(custom: &Option<Arc<Custom>>, mut response: Response) -> Response {
    if let Some(custom) = custom {
        custom.decorate(&mut response);
    }
    response
}

/// `GET /healthz`: version, model, requests in flight, uptime.
async fn healthz(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "model": state.config.model.to_string(),
        "in_flight": state.stats.snapshot().in_flight,
        "uptime_seconds": state.up_since.elapsed().as_secs_f64(),
        "rules": state.config.rules.as_ref().map(|live| {
            let rules = live.current();
            serde_json::json!({
                "digest": rules.digest(),
                "rules": rules.len(),
                "default": rules.has_default(),
            })
        }),
    });
    axum::Json(body).into_response()
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.stats.metrics().render(
        state.stats.snapshot().in_flight,
        &state.config.model.to_string(),
    );
    if let Some(rules) = &state.config.rules {
        text.push_str(&rules.current().render_metrics());
    }
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
    // Static for the life of the server: a browser may keep it for a minute.
    (
        StatusCode::OK,
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        )],
        Html(page),
    )
        .into_response()
}

/// `GET /favicon.ico`, which every browser opening `/` asks for: there is no icon. A plain 404 that
/// browsers may remember for a day, not a refused delay: it is not counted in the metrics.
async fn favicon() -> Response {
    let body = serde_json::json!({
        "error": "not_found",
        "detail": "slowlab has no icon; the delay endpoint is GET /{seconds}, e.g. /7 or /0.25",
    });
    (
        StatusCode::NOT_FOUND,
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=86400"),
        )],
        axum::Json(body),
    )
        .into_response()
}

const INDEX_HTML: &str = include_str!("index.html");

/// `GET /race`: the article's race, run by the browser against this server (no external assets).
async fn race_page() -> Html<&'static str> {
    Html(RACE_HTML)
}

const RACE_HTML: &str = include_str!("race.html");

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        path: excerpt(uri.path()),
    }
}

/// Another method on a one-segment path: a word is no route whatever the method, a number is the
/// delay endpoint, which takes GET and HEAD.
async fn delay_method_not_allowed(method: Method, uri: Uri) -> ApiError {
    let segment = uri.path().strip_prefix('/').unwrap_or_default();
    if looks_like_number(&percent_decode_str(segment).decode_utf8_lossy()) {
        method_not_allowed(method).await
    } else {
        not_found(uri).await
    }
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: excerpt(method.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every waiting request keeps this future, boxed: jemalloc (the `slowlab` binary's allocator)
    /// rounds it up to a size class, and at 448 bytes or less it takes the 448-byte class instead
    /// of 640 bytes, 192 bytes less per waiting request. Growing it past 448 costs every waiting
    /// request another size class.
    #[tokio::test]
    async fn a_waiting_delay_request_fits_the_448_byte_class() {
        let config = Arc::new(Config::default());
        let routes = build(Arc::clone(&config), Arc::new(Stats::default())).unwrap();
        let plan = parse(&routes.state, &Uri::from_static("/1")).unwrap();
        let future = serve(
            routes.state.clone(),
            plan,
            false,
            Version::HTTP_11,
            None,
            None,
        );
        assert!(
            std::mem::size_of_val(&future) <= 448,
            "{} bytes",
            std::mem::size_of_val(&future)
        );
    }
}
