//! The whole of a server's request handling as one service: the size limits, the router (with its
//! direct path for plain delays), and the refusal counts. Every connection runs this, and tests
//! and fuzz targets can drive the same thing without a socket.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};

use crate::config::Config;
use crate::error::Refusal;
use crate::limits;
use crate::metrics::Outcome;
use crate::routes::{RouteCall, Routes, build};
use crate::stats::Stats;

/// A server's composed service: `limits::check`, then the routes, then the refusal count.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use std::sync::Arc;
/// use slowlab_server::{App, Config, Stats};
/// use tower::ServiceExt;
///
/// let app = App::new(Arc::new(Config::default()), Arc::new(Stats::default())).unwrap();
/// let request = axum::http::Request::get("/1e3")
///     .header("host", "127.0.0.1")
///     .body(axum::body::Body::empty())
///     .unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 400);
/// # }
/// ```
#[derive(Clone)]
pub struct App {
    routes: Routes,
    config: Arc<Config>,
    stats: Arc<Stats>,
}

impl App {
    /// The service of a server with `config`, counting into `stats`. Fails only when the
    /// threads of `--model threads:N` cannot be started, and says why.
    pub fn new(config: Arc<Config>, stats: Arc<Stats>) -> std::io::Result<App> {
        let routes = build(Arc::clone(&config), Arc::clone(&stats))?;
        Ok(App {
            routes,
            config,
            stats,
        })
    }

    /// Lets waits in progress end at `deadline` (the drain deadline), in models whose wait would
    /// not end when its request is dropped.
    pub(crate) fn stop_waits_at(&self, deadline: std::time::Instant) {
        self.routes.stop_waits_at(deadline);
    }

    /// How many waits were cut short by [`App::stop_waits_at`].
    pub(crate) fn waits_stopped(&self) -> u64 {
        self.routes.waits_stopped()
    }

    /// Starts handling `request`.
    pub fn handle<B>(&self, request: Request<B>) -> AppFuture
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        self.handle_from(request, None)
    }

    /// Starts handling `request` from the client at `peer` (named in the request log).
    pub fn handle_from<B>(&self, request: Request<B>, peer: Option<SocketAddr>) -> AppFuture
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let routed = match limits::check(&request, &self.config) {
            Ok(()) => self.routes.call(request, peer),
            Err(err) => self.routes.refuse(&request, peer, err),
        };
        AppFuture {
            routed,
            stats: Arc::clone(&self.stats),
        }
    }
}

impl<B> tower::Service<Request<B>> for App
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = InfallibleFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> InfallibleFuture {
        InfallibleFuture {
            inner: self.handle(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request on its way through [`App`]. A fault asked for comes out as an empty response
    /// marked for the connection layer, which ends the connection or stream instead.
    pub struct AppFuture {
        #[pin]
        routed: RouteCall,
        stats: Arc<Stats>,
    }
}

impl Future for AppFuture {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let this = self.project();
        let response = ready!(this.routed.poll(cx));
        if response.extensions().get::<Refusal>().is_some() {
            let status = response.status();
            // The only refusal answered 503 is --max-in-flight's.
            let outcome = if status == StatusCode::SERVICE_UNAVAILABLE {
                Outcome::OverCapacity
            } else {
                Outcome::Rejected
            };
            this.stats.metrics().count(status.as_u16(), outcome);
        }
        Poll::Ready(response)
    }
}

pin_project_lite::pin_project! {
    /// [`AppFuture`] as `tower::Service` wants it.
    pub struct InfallibleFuture {
        #[pin]
        inner: AppFuture,
    }
}

impl Future for InfallibleFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(Ok)
    }
}
