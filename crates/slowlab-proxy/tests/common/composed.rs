//! The proxy composed as its fuzz target runs it, for the target and for the test that replays
//! the target's kept inputs: in front of `upstream`, with a default rule that answers 503 for a
//! share of requests before the upstream is contacted, so that both paths are taken.

use std::net::SocketAddr;
use std::sync::Arc;

use slowlab_proxy::http::metrics::ProxyMetrics;
use slowlab_proxy::http::{ProxyConfig, Upstream};
use slowlab_server::{Config, LiveRules, Rules, Stats};

/// Starts the proxy on a loopback port, on the current runtime, in front of the server at
/// `upstream` (`http://IP:PORT`), with `config`'s limits; returns its address.
pub async fn composed_proxy(upstream: &str, config: Config) -> SocketAddr {
    let rules = Rules::empty()
        .with_default("0?mix=503:0.3")
        .expect("a valid default rule");
    let config = Config {
        rules: Some(LiveRules::fixed(rules)),
        ..config
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a proxy port on loopback");
    let addr = listener.local_addr().expect("its address");
    let upstream = Upstream::parse(upstream).expect("the upstream's URL");
    tokio::spawn(slowlab_proxy::http::run(
        listener,
        config,
        ProxyConfig::new(upstream),
        Arc::new(Stats::default()),
        Arc::new(ProxyMetrics::default()),
        std::future::pending::<()>(),
    ));
    addr
}
