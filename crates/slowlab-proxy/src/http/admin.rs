//! The admin port (`--admin ADDR`): readiness and metrics on a port of their own, so that the
//! proxied service keeps every one of its paths, `/healthz` and `/metrics` included.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use slowlab_server::{LiveRules, Stats};
use tokio::net::TcpListener;

use super::metrics::ProxyMetrics;

/// What the admin port reports on.
#[derive(Clone)]
pub struct Admin {
    /// The proxy's request counters (serve's, shared).
    pub stats: Arc<Stats>,
    /// The proxy's own metrics.
    pub metrics: Arc<ProxyMetrics>,
    /// The rules in force, for their hit counts.
    pub rules: Option<LiveRules>,
    /// The upstream, named by `/healthz`.
    pub upstream: String,
    /// In `--tcp` mode, the TCP proxy's counters.
    pub tcp: Option<Arc<crate::tcp::TcpStats>>,
}

impl Admin {
    /// The admin routes: `GET /healthz` and `GET /metrics`, marked `Cache-Control: no-store`
    /// (a stored `/healthz` would report a proxy that may be gone).
    pub fn router(self) -> Router {
        let health = self.clone();
        Router::new()
            .route(
                "/healthz",
                get(move || async move {
                    axum::Json(serde_json::json!({
                        "status": "ok",
                        "upstream": health.upstream,
                        "in_flight": health.stats.snapshot().in_flight,
                    }))
                }),
            )
            .route(
                "/metrics",
                get(move || async move { self.render().into_response() }),
            )
            .layer(axum::middleware::map_response(no_store))
    }

    /// serve's metrics, the rules' hit counts, then the proxy's own.
    fn render(&self) -> Response {
        let mut text = self
            .stats
            .metrics()
            .render(self.stats.snapshot().in_flight, "proxy");
        if let Some(rules) = &self.rules {
            text.push_str(&rules.current().render_metrics());
        }
        text.push_str(&self.metrics.render());
        if let Some(tcp) = &self.tcp {
            text.push_str(&tcp.snapshot().render_metrics());
        }
        let mut response = text.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(slowlab_server::metrics::CONTENT_TYPE),
        );
        response
    }

    /// Serves the admin routes on `listener` until the task is dropped or aborted.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}

/// Marks an admin answer as not to be stored by any cache.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
