//! The HTTP reverse proxy: forwards every request upstream, with serve's rules applied.
//!
//! A request's path: serve's accept loop and connection limits ([`slowlab_server::run_with`]) →
//! the size limits → [`headers::check`] (loops, ambiguous lengths, transfer codings) → the rule it matches
//! ([`slowlab_server::LiveRules::draw`]) → for `when = "before"`, the wait and any failure drawn,
//! without contacting the upstream → the upstream, over a pooled client → for `when = "after"`,
//! the wait and any failure drawn, now on the upstream's answer → the upstream's body streamed
//! back ([`relay`]), paced by `bps=` if asked.

pub mod admin;
mod connector;
pub mod headers;
mod held;
pub mod metrics;
pub mod relay;
pub mod upstream;
pub mod upstream_tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::uri::Authority;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use slowlab_server::{
    ArrivingBody, Config, Fault, Handler, InFlight, Plan, RequestInfo, ShutdownReport, Stats, When,
};
use tokio::net::TcpListener;

use connector::{Dial, POOL_KEY, PlainConnector};
use headers::{Forwards, ViaHops};
use held::Held;
use metrics::{ProxyMetrics, ProxyOutcome};
use relay::{Relay, Tally};
pub use upstream::{Upstream, UpstreamError};
pub use upstream_tls::{UpstreamTlsError, UpstreamTrust};

/// `--upstream-timeout` when none is given.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy needs beyond serve's [`Config`] (whose limits, timeouts, drain and rules it
/// shares).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where requests go.
    pub upstream: Upstream,
    /// `--upstream-host`: the `Host` sent upstream instead of the client's.
    pub upstream_host: Option<HeaderValue>,
    /// `--upstream-timeout`: longest wait for the upstream's response head (then 504).
    pub upstream_timeout: Duration,
    /// TLS settings for an `https://` upstream (unused for `http://`): see [`ProxyConfig::trust`].
    pub upstream_tls: rustls::ClientConfig,
    /// Whether the listening port speaks TLS (serve's `Config::tls`, set by the command), so
    /// that `Forwarded` says `proto=https`.
    pub clients_over_tls: bool,
    /// `--upstream-http2`: speak HTTP/2 to the upstream (prior knowledge for `http://`, ALPN
    /// `h2` for `https://`), as a gRPC service needs.
    pub upstream_http2: bool,
}

impl ProxyConfig {
    /// Forwards to `upstream`, with the client's `Host`, the default timeout, and, for an
    /// `https://` upstream, certificates checked against Mozilla's roots.
    pub fn new(upstream: Upstream) -> ProxyConfig {
        ProxyConfig {
            upstream,
            upstream_host: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            upstream_tls: UpstreamTrust::PublicRoots
                .client_config()
                .expect("ring supports rustls's default protocol versions"),
            clients_over_tls: false,
            upstream_http2: false,
        }
    }

    /// Accepts the upstream certificates `trust` says (`--upstream-ca`, `--upstream-insecure`).
    pub fn trust(&mut self, trust: &UpstreamTrust) -> Result<(), UpstreamTlsError> {
        self.upstream_tls = trust.client_config()?;
        Ok(())
    }
}

/// What every request of one proxy shares.
pub(crate) struct Shared {
    config: Arc<Config>,
    proxy: ProxyConfig,
    client: Client<Dial<HttpsConnector<PlainConnector>>, Body>,
    /// The authority upstream requests name: [`POOL_KEY`] over HTTP/1, the upstream's own over
    /// HTTP/2, where it is sent as `:authority`.
    pool_authority: Authority,
    /// `Host` for a request that has none, over HTTP/1 (what hyper-util would set from the URI,
    /// which names the pool key instead).
    default_host: Option<HeaderValue>,
    stats: Arc<Stats>,
    metrics: Arc<ProxyMetrics>,
    /// This proxy's name in `Via`, unique per process, so that a request coming back is known.
    pseudonym: String,
    /// The `Via` elements naming it, made once.
    via: ViaHops,
}

/// The proxy as the accept loop's [`Handler`]. Cheap to clone.
#[derive(Clone)]
pub struct Proxy(Arc<Shared>);

impl Proxy {
    /// A proxy with serve's `config` (limits, rules) and `proxy`'s upstream, counting into
    /// `stats` and `metrics`.
    pub fn new(
        config: Arc<Config>,
        proxy: ProxyConfig,
        stats: Arc<Stats>,
        metrics: Arc<ProxyMetrics>,
    ) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(proxy.upstream_timeout));
        // The TLS layer takes `https://` URLs; the TCP connector under it must let them through.
        connector.enforce_http(false);
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(proxy.upstream_tls.clone())
            .https_or_http();
        let connector = if proxy.upstream_http2 {
            builder
                .enable_http2()
                .wrap_connector(PlainConnector(connector))
        } else {
            builder
                .enable_http1()
                .wrap_connector(PlainConnector(connector))
        };
        let connector = Dial {
            inner: connector,
            upstream: proxy.upstream.origin(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .http2_only(proxy.upstream_http2)
            // `upstream_request` sets `Host` itself: the URI may name the pool key.
            .set_host(false)
            .build(connector);
        let (pool_authority, default_host) = if proxy.upstream_http2 {
            (proxy.upstream.authority_parsed().clone(), None)
        } else {
            (
                Authority::from_static(POOL_KEY),
                proxy.upstream.host_header(),
            )
        };
        let pseudonym = pseudonym();
        Proxy(Arc::new(Shared {
            config,
            proxy,
            client,
            pool_authority,
            default_host,
            stats,
            metrics,
            via: ViaHops::new(&pseudonym),
            pseudonym,
        }))
    }

    /// This proxy's name in `Via`.
    pub fn pseudonym(&self) -> &str {
        &self.0.pseudonym
    }
}

/// `slowlab-` and 8 hex digits, different in every process.
fn pseudonym() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("slowlab-{:08x}", hasher.finish() as u32)
}

impl Handler for Proxy {
    type Future = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

    fn handle(&self, mut request: Request<Incoming>, peer: SocketAddr) -> Self::Future {
        // An upload is relayed after the answer too, if the upstream answered early: its bytes
        // must not be timed as the next request's head meanwhile.
        let mut request = match request.extensions_mut().remove::<ArrivingBody>() {
            Some(arriving) => request.map(|body| Body::new(arriving.hold(body))),
            None => request.map(Body::new),
        };
        // The checks and the draw run here, at once, so that a request with no `before` wait
        // is one boxed future, the upstream call's, instead of that one inside another.
        match checked(Arc::clone(&self.0), &mut request, peer) {
            Err(answer) => Box::pin(std::future::ready(*answer)),
            Ok((ruled, in_flight)) if !ruled.waits(When::Before) => {
                Box::pin(ruled.upstream(request, peer, in_flight, false))
            }
            Ok((ruled, in_flight)) => Box::pin(waiting(ruled, request, peer, in_flight)),
        }
    }
}

/// A JSON answer `{"error": ..., "detail": ...}` with `status`, not to be stored by caches.
fn json_error(status: u16, error: &str, detail: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": error, "detail": detail });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A cache that kept an injected failure or a 502 would go on answering it without the proxy.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Handles one request from `peer`: see the module's documentation for the order of steps.
/// Generic over the body so that tests and fuzz targets can drive it without a socket.
pub async fn forward_request(
    proxy: &Proxy,
    request: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    forward(Arc::clone(&proxy.0), request, peer).await
}

/// The checks, then [`waiting`]: a request the way [`forward_request`] takes it.
#[allow(clippy::manual_async_fn)]
fn forward(
    shared: Arc<Shared>,
    mut request: Request<Body>,
    peer: SocketAddr,
) -> impl Future<Output = Response<Body>> + Send {
    async move {
        let (ruled, in_flight) = match checked(shared, &mut request, peer) {
            Ok(checked) => checked,
            Err(answer) => return *answer,
        };
        waiting(ruled, request, peer, in_flight).await
    }
}

/// A request past the checks whose rule waits `before`: the wait and any failure drawn, then
/// the upstream. What a waiting request holds, boxed by [`Proxy::handle`].
// Not an `async fn`: one copies its arguments into locals of its own state, and keeps the
// room they were passed in as well, so that a waiting request would hold its `Request` twice
// (240 bytes more). The block below uses the captured arguments in place.
#[allow(clippy::manual_async_fn)]
fn waiting(
    ruled: Ruled,
    request: Request<Body>,
    peer: SocketAddr,
    in_flight: InFlight,
) -> impl Future<Output = Response<Body>> + Send {
    // Taken apart here, before the block, so that the block holds only the compact form.
    let held = Held::new(request);
    async move {
        // `before`: the wait, then a failure drawn is served without contacting the upstream.
        let (in_flight, cut_before) = match ruled.apply_rule(When::Before, in_flight).await {
            Ok(carry_on) => carry_on,
            Err(instead) => return instead,
        };
        let request = held.into_request();
        // Boxed, and only now: a request waiting behind a `before` rule holds this future's
        // state for the whole wait, and the upstream call's state (the timeout's sleep, the
        // response, the `after` wait) would otherwise be the larger part of it. Allocated here,
        // it costs only the requests that go upstream, and only after their wait (issue 22).
        Box::pin(ruled.upstream(request, peer, in_flight, cut_before)).await
    }
}

/// The size limits, [`headers::check`] and the rule's draw: the request with its rule, or the
/// answer it gets at once.
fn checked(
    shared: Arc<Shared>,
    request: &mut Request<Body>,
    peer: SocketAddr,
) -> Result<(Ruled, InFlight), Box<Response<Body>>> {
    let started = Instant::now();
    let in_flight = shared.stats.track();
    let log = RequestInfo::of(shared.config.request_log, request, Some(peer));
    let finish_now = |rule: Option<String>, status: u16, outcome, response, in_flight| {
        relayed(
            &shared,
            rule,
            status,
            outcome,
            (in_flight, log.clone()),
            response,
        )
    };
    if let Err(err) = slowlab_server::limits::check(request, &shared.config) {
        let status = err.status().as_u16();
        return Err(Box::new(finish_now(
            None,
            status,
            ProxyOutcome::Rejected,
            err.into_response(),
            in_flight,
        )));
    }
    let method = request.method().clone();
    match headers::check(&method, request.headers_mut(), &shared.pseudonym) {
        Ok(Forwards::Yes) => {}
        Ok(Forwards::AnswerHere) => {
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return Err(Box::new(finish_now(
                None,
                200,
                ProxyOutcome::Forwarded,
                response,
                in_flight,
            )));
        }
        Err(refused) => {
            let response = json_error(
                refused.status(),
                refused.code(),
                &refused.detail(&shared.pseudonym),
            );
            return Err(Box::new(finish_now(
                None,
                refused.status(),
                ProxyOutcome::Rejected,
                response,
                in_flight,
            )));
        }
    }

    let drawn = shared
        .config
        .rules
        .as_ref()
        .and_then(|rules| rules.draw(request, &shared.config));
    let (rule, when, plan) = match drawn {
        None => (None, When::Before, None),
        Some(drawn) => match drawn.plan {
            Ok(plan) => (Some(drawn.rule), drawn.when, Some(Effect::of(&plan))),
            Err(err) => {
                let status = err.status().as_u16();
                return Err(Box::new(finish_now(
                    Some(drawn.rule),
                    status,
                    ProxyOutcome::Rejected,
                    err.into_response(),
                    in_flight,
                )));
            }
        },
    };
    let ruled = Ruled {
        shared,
        rule,
        when,
        plan,
        log,
        started,
    };
    Ok((ruled, in_flight))
}

/// A request past the checks, with the rule it drew: what its `before` wait holds, and what
/// the rest of its way ([`Ruled::upstream`]) takes over.
struct Ruled {
    shared: Arc<Shared>,
    rule: Option<String>,
    when: When,
    plan: Option<Effect>,
    log: Option<Box<RequestInfo>>,
    started: Instant,
}

/// What the proxy uses of a rule's [`Plan`]: a waiting request holds it, and the plan (176
/// bytes) also carries what only serve echoes.
#[derive(Clone, Copy)]
struct Effect {
    wait: Duration,
    status: u16,
    fault: Option<Fault>,
    /// Never 0 (serve's options refuse it, and pacing takes at least 1): held as a `NonZeroU64`,
    /// whose `None` takes no room of its own, this brings a waiting request's future from 456
    /// to 448 bytes, jemalloc's 448 class rather than 512.
    bps: Option<NonZeroU64>,
}

impl Effect {
    fn of(plan: &Plan) -> Effect {
        Effect {
            wait: plan.wait,
            status: plan.status(),
            fault: plan.options.fault,
            bps: plan
                .options
                .bps
                .map(|bps| NonZeroU64::new(bps).unwrap_or(NonZeroU64::MIN)),
        }
    }
}

impl Ruled {
    /// The counts of a request answered with `status`, settled when its body ends.
    fn tally(&self, status: u16, outcome: ProxyOutcome, in_flight: InFlight) -> Tally {
        Tally {
            shared: Arc::clone(&self.shared),
            rule: self.rule.clone(),
            status,
            outcome,
            log: self.log.clone(),
            _in_flight: in_flight,
        }
    }

    /// `response`, made by the proxy itself, counted as `outcome` when its body ends.
    fn answer(
        &self,
        status: u16,
        outcome: ProxyOutcome,
        in_flight: InFlight,
        response: Response<Body>,
    ) -> Response<Body> {
        relayed(
            &self.shared,
            self.rule.clone(),
            status,
            outcome,
            (in_flight, self.log.clone()),
            response,
        )
    }

    /// Whether the rule waits, or may fail, at `at`: else [`Ruled::apply_rule`] does nothing.
    fn waits(&self, at: When) -> bool {
        self.plan.is_some() && self.when == at
    }

    /// The rule's wait where it applies (`at`), then the failure it drew, if any: `Err` is the
    /// answer the client gets instead of the upstream's, `Ok` carries on with whether to cut
    /// the body.
    // Not an `async fn`, for the reason `waiting` gives: a waiting request holds this future.
    #[allow(clippy::manual_async_fn)]
    fn apply_rule(
        &self,
        at: When,
        in_flight: InFlight,
    ) -> impl Future<Output = Result<(InFlight, bool), Response<Body>>> + Send + '_ {
        async move {
            let Some(plan) = self.plan.as_ref().filter(|_| self.when == at) else {
                return Ok((in_flight, false));
            };
            tokio::time::sleep(plan.wait).await;
            if matches!(plan.fault, Some(Fault::Hang)) {
                // `hang`: `--max-delay` more, then the hang-up `injected` draws. Awaited here,
                // where it takes the room of the rule's sleep (over by now): inside an async
                // `injected` it made every waiting request's future 40 bytes larger.
                tokio::time::sleep(self.shared.config.max_delay).await;
            }
            match injected(plan, self.rule.as_deref(), at) {
                Some(Injected::Answer(status, response)) => {
                    Err(self.answer(status, ProxyOutcome::InjectedStatus, in_flight, response))
                }
                Some(Injected::Fault(response)) => {
                    self.tally(0, ProxyOutcome::InjectedFault, in_flight)
                        .settle(ProxyOutcome::InjectedFault);
                    Err(response)
                }
                Some(Injected::CutBody) => Ok((in_flight, true)),
                None => Ok((in_flight, false)),
            }
        }
    }

    /// The rest of the request's way, after any `before` wait: the upstream, then for
    /// `when = "after"` the wait and any failure drawn, then the upstream's body relayed.
    async fn upstream(
        self,
        request: Request<Body>,
        peer: SocketAddr,
        in_flight: InFlight,
        cut_before: bool,
    ) -> Response<Body> {
        let shared = &self.shared;
        let upstream_request = match upstream_request(shared, request, peer) {
            Ok(upstream_request) => upstream_request,
            Err(detail) => {
                let response = json_error(400, "bad_target", &detail);
                return self.answer(400, ProxyOutcome::Rejected, in_flight, response);
            }
        };
        let asked = Instant::now();
        let answered = tokio::time::timeout(
            shared.proxy.upstream_timeout,
            shared.client.request(upstream_request),
        )
        .await;
        let upstream_took = asked.elapsed();
        let response = match answered {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                let cause = cause_of(&err);
                let (error, detail) = if let Some(tls) = tls_error_of(&err) {
                    let hint = match tls {
                        rustls::Error::InvalidCertificate(_) => {
                            "; if a CA of your own signed it, give that CA with --upstream-ca FILE (PEM), or accept any certificate with --upstream-insecure"
                        }
                        _ => "",
                    };
                    (
                        "upstream_tls",
                        format!(
                            "the TLS handshake with the upstream {} failed: {tls}{hint}",
                            shared.proxy.upstream
                        ),
                    )
                } else {
                    (
                        "upstream_unreachable",
                        format!(
                            "the upstream {} could not be reached: {cause}; check that it is running and that --upstream names it",
                            shared.proxy.upstream
                        ),
                    )
                };
                let response = json_error(502, error, &detail);
                return self.answer(502, ProxyOutcome::UpstreamUnreachable, in_flight, response);
            }
            Err(_) => {
                let detail = format!(
                    "the upstream {} did not answer within {} s (--upstream-timeout)",
                    shared.proxy.upstream,
                    shared.proxy.upstream_timeout.as_secs_f64()
                );
                let response = json_error(504, "upstream_timeout", &detail);
                return self.answer(504, ProxyOutcome::UpstreamTimeout, in_flight, response);
            }
        };

        // `after`: the upstream has answered; now the wait, then a failure drawn replaces its
        // answer.
        let (in_flight, cut_after) = match self.apply_rule(When::After, in_flight).await {
            Ok(carry_on) => carry_on,
            Err(instead) => return instead,
        };
        let cut_at_half = cut_before || cut_after;

        let total = self.started.elapsed();
        shared
            .metrics
            .observe(upstream_took, total.saturating_sub(upstream_took));
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        shared.via.add(&mut parts.headers, parts.version);
        parts.version = Version::HTTP_11;
        let cut_at = cut_at_half.then(|| {
            let length = http_body::Body::size_hint(&body).exact().unwrap_or(2);
            (length / 2).max(1)
        });
        let status = parts.status.as_u16();
        let relayed = Relay::new(
            body,
            cut_at,
            self.tally(status, ProxyOutcome::Forwarded, in_flight),
        );
        let body = match self.plan.and_then(|p| p.bps) {
            Some(bps) => Body::new(slowlab_server::paced(relayed, bps.get())),
            None => Body::new(relayed),
        };
        Response::from_parts(parts, body)
    }
}

/// `response`, made by the proxy itself, counted as `outcome` when its body ends.
fn relayed(
    shared: &Arc<Shared>,
    rule: Option<String>,
    status: u16,
    outcome: ProxyOutcome,
    (in_flight, log): (InFlight, Option<Box<RequestInfo>>),
    response: Response<Body>,
) -> Response<Body> {
    let tally = Tally {
        shared: Arc::clone(shared),
        rule,
        status,
        outcome,
        log,
        _in_flight: in_flight,
    };
    response.map(|body| Body::new(Relay::new(body, None, tally)))
}

/// What a rule's plan asks for instead of the upstream's answer.
enum Injected {
    /// A status of its own, answered as JSON.
    Answer(u16, Response<Body>),
    /// A fault that ends the connection or stream.
    Fault(Response<Body>),
    /// The upstream's answer, cut off halfway (`reset` or `truncate`).
    CutBody,
}

/// The failure `plan` drew, if any. `hang` hangs up once [`Ruled::apply_rule`] has waited
/// `--max-delay`; `reset` before the upstream is contacted resets the connection (or stream),
/// after it cuts the body.
fn injected(plan: &Effect, rule: Option<&str>, when: When) -> Option<Injected> {
    let rule = rule.unwrap_or("default");
    match (plan.fault, when) {
        (Some(Fault::Reset), When::After) | (Some(Fault::Truncate), _) => {
            return Some(Injected::CutBody);
        }
        (Some(Fault::Hang), _) => {
            return Some(Injected::Fault(slowlab_server::respond::abort(
                Fault::Hangup,
            )));
        }
        (Some(fault), _) => return Some(Injected::Fault(slowlab_server::respond::abort(fault))),
        (None, _) => {}
    }
    let status = plan.status;
    if status == 200 {
        return None;
    }
    let detail = match when {
        When::Before => {
            format!("rule {rule:?} answered {status} before the upstream was contacted")
        }
        When::After => format!("rule {rule:?} answered {status} after the upstream answered"),
    };
    Some(Injected::Answer(
        status,
        json_error(status, "injected", &detail),
    ))
}

/// The request as the upstream gets it: its URL, hop-by-hop headers out, `Via` and the
/// forwarding headers in, `Host` kept (or `--upstream-host`).
fn upstream_request(
    shared: &Shared,
    request: Request<Body>,
    peer: SocketAddr,
) -> Result<Request<Body>, String> {
    let (mut parts, body) = request.into_parts();
    // CONNECT's authority-form target is made from the URI's authority: the upstream's.
    let authority = if parts.method == Method::CONNECT {
        shared.proxy.upstream.authority_parsed()
    } else {
        &shared.pool_authority
    };
    let uri = shared
        .proxy
        .upstream
        .uri_at(authority, parts.uri.path_and_query())
        .map_err(|err| format!("the request target cannot be forwarded: {err}"))?;
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // `TE` is hop-by-hop, but `trailers` in it says the client takes trailers; the proxy relays
    // them, so it asks the upstream for them in turn (gRPC servers refuse a request without it).
    let wants_trailers = headers::accepts_trailers(&parts.headers);
    headers::strip_hop_by_hop(&mut parts.headers);
    if wants_trailers {
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
    shared.via.add(&mut parts.headers, parts.version);
    let proto = if shared.proxy.clients_over_tls {
        "https"
    } else {
        "http"
    };
    headers::add_forwarded(
        &mut parts.headers,
        peer,
        proto,
        host.as_ref().and_then(|h| h.to_str().ok()),
    );
    match shared.proxy.upstream_host.clone().or(host) {
        Some(host) => {
            parts.headers.insert(header::HOST, host);
        }
        None => match &shared.default_host {
            Some(host) => {
                parts.headers.insert(header::HOST, host.clone());
            }
            None => {
                parts.headers.remove(header::HOST);
            }
        },
    }
    parts.uri = uri;
    parts.version = if shared.proxy.upstream_http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    Ok(Request::from_parts(parts, body))
}

/// The innermost cause of a client error, e.g. `Connection refused (os error 111)`.
fn cause_of(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The rustls error behind a client error, if the TLS handshake is what failed. rustls reports
/// it inside an `io::Error`, which the connector may wrap in another; `io::Error::source` skips
/// over what it wraps, so each one is opened with `get_ref`.
fn tls_error_of<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cause = match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Serves the proxy on `listener` until `shutdown` completes, then drains like serve.
pub async fn run(
    listener: TcpListener,
    config: Config,
    proxy: ProxyConfig,
    stats: Arc<Stats>,
    metrics: Arc<ProxyMetrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ShutdownReport> {
    let handler = Proxy::new(Arc::new(config.clone()), proxy, Arc::clone(&stats), metrics);
    slowlab_server::run_with(listener, config, stats, handler, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        let upstream = Upstream::parse("http://127.0.0.1:9").unwrap();
        Proxy::new(
            Arc::new(Config::default()),
            ProxyConfig::new(upstream),
            Arc::new(Stats::default()),
            Arc::new(ProxyMetrics::default()),
        )
    }

    /// A request waiting behind a `before` rule holds the whole of `waiting`'s future (boxed by
    /// `Handler::handle`), so its size is memory per waiting request (issue 22). The waiting
    /// state needs the request ([`Held`], 160 bytes on x86-64), the rule and what the proxy
    /// uses of its plan (`Ruled`, 96), the client's address (32), the rule's sleep (112) and
    /// small change: 448 bytes with rustc 1.95, jemalloc's 448-byte class. The bound is that
    /// class, since a byte more costs 64 per waiting request; it catches each of the shapes this
    /// replaced: `hang`'s sleep inside an async `injected` (+40), `apply_rule` an `async fn`
    /// (+16), `bps` an `Option<u64>` (+8), the whole `Request<Body>` held (592 bytes), the
    /// upstream call's state inline (1,696), the whole `Plan` held (+136). A guard on
    /// structure, not on timing.
    #[tokio::test]
    async fn a_waiting_request_holds_a_small_future() {
        let proxy = proxy();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut request = Request::new(Body::empty());
        let (ruled, in_flight) = checked(Arc::clone(&proxy.0), &mut request, peer)
            .unwrap_or_else(|_| panic!("a plain GET passes the checks"));
        let future = waiting(ruled, request, peer, in_flight);
        let size = std::mem::size_of_val(&future);
        let upstream = std::mem::size_of_val(&upstream_part(&proxy, peer));
        eprintln!("waiting: {size} bytes; the upstream part (boxed): {upstream} bytes");
        assert!(size <= 448, "waiting's future is {size} bytes");
    }

    /// The future [`Ruled::upstream`] returns, for its size.
    fn upstream_part(
        proxy: &Proxy,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + use<> {
        let mut request = Request::new(Body::empty());
        let (ruled, in_flight) = checked(Arc::clone(&proxy.0), &mut request, peer)
            .unwrap_or_else(|_| panic!("a plain GET passes the checks"));
        ruled.upstream(request, peer, in_flight, false)
    }
}
