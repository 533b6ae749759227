//! Options of `slowlab proxy`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use slowlab_server::config::MAX_DELAY;
use slowlab_server::{Delay, Setting};

use super::server_core::{ConnectionArgs, RulesArgs, TlsArgs, within};

pub(super) const PROXY_EXAMPLES: &str = "\
Examples:
  slowlab proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080
      forward everything to the service on 8080; point the client at 9000 instead
  slowlab proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080 --default '0.2?mix=503:0.05'
      every request waits 0.2 s first; 5% get a 503 without reaching the service
  slowlab proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080 --rules api.toml --watch
      serve's rules file; `when = \"after\"` in a rule waits or fails once the service answered
  slowlab proxy --listen 127.0.0.1:9000 --upstream https://127.0.0.1:8443 --upstream-ca ca.pem
      an https upstream whose certificate a CA of your own signed (--upstream-insecure: any)
  slowlab proxy --listen 127.0.0.1:9443 --upstream http://127.0.0.1:8080 --tls-self-signed
      clients speak TLS to the proxy (HTTP/1.1 and h2 by ALPN): curl -k https://127.0.0.1:9443/
  slowlab proxy ... --admin 127.0.0.1:9001
      /healthz and /metrics on their own port, so the service keeps all its paths
  slowlab proxy --tcp --listen 127.0.0.1:6380 --upstream 127.0.0.1:6379 --tcp-effect 'latency=0.1'
      Redis (or any TCP service) with 0.1 s more on every write, both ways

The rules grammar is serve's (see docs/server.md); docs/proxy.md says where each effect applies.
An unreachable upstream is a 502, a slow one a 504 (--upstream-timeout), both as JSON.
kill -HUP <pid> reloads the rules file. Ctrl-C or SIGTERM drains like serve.";

/// `--upstream-timeout`: the longest wait for the upstream's response head.
const UPSTREAM_TIMEOUT: Setting<Delay> = Setting {
    flag: "--upstream-timeout",
    default: Delay::from_secs(30),
    min: Delay::from_millis(1),
    max: Delay::from_secs(86_400),
    unit: "seconds",
    example: "5",
};

/// Options of `slowlab proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on; port 0 picks a free one (the first stdout line names it).
    /// Example: --listen 127.0.0.1:9000.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The service to forward to, with scheme (http or https) and host.
    /// Example: --upstream http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// The Host header sent upstream instead of the client's. Example: --upstream-host api.internal.
    #[arg(long, value_name = "HOST")]
    pub upstream_host: Option<String>,
    /// With an https:// upstream: trust only the CAs in this PEM file (for a certificate of your
    /// own) instead of the public roots. Example: --upstream-ca ca.pem.
    #[arg(long, value_name = "FILE", conflicts_with = "upstream_insecure")]
    pub upstream_ca: Option<PathBuf>,
    /// With an https:// upstream: accept any certificate, unchecked (like curl -k); for tests
    /// only, the proxy says so on stderr.
    #[arg(long)]
    pub upstream_insecure: bool,
    /// Speak HTTP/2 to the upstream: prior knowledge (h2c) for http://, ALPN h2 for https://.
    /// For gRPC and other services that need HTTP/2 end to end; the default is HTTP/1.1.
    /// Example: --upstream http://127.0.0.1:50051 --upstream-http2.
    #[arg(long)]
    pub upstream_http2: bool,
    /// Longest wait for the upstream's response head, in seconds (0.001 to 86400); then 504.
    /// Example: --upstream-timeout 5.
    #[arg(long, default_value_t = UPSTREAM_TIMEOUT.default, value_parser = within(&UPSTREAM_TIMEOUT), value_name = "SECONDS")]
    pub upstream_timeout: Delay,
    /// Serve /healthz and /metrics on this address. Example: --admin 127.0.0.1:9001.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// A TCP proxy for protocols that are not HTTP (Postgres, Redis, ...): bytes are copied both
    /// ways with the effects of --tcp-effect and the rules file's `[[tcp]]` tables. --upstream is
    /// then HOST:PORT. Example: --tcp --upstream 127.0.0.1:6379 --tcp-effect 'latency=0.1'.
    #[arg(long, conflicts_with_all = ["tls_self_signed", "tls_cert", "tls_key"])]
    pub tcp: bool,
    /// With --tcp: one table of effects in serve's option grammar, applied after the rules file's
    /// `[[tcp]]` tables; may be given more than once.
    /// Example: --tcp-effect 'direction=downstream&bps=100000'.
    #[arg(long, value_name = "EFFECTS", requires = "tcp")]
    pub tcp_effect: Vec<String>,
    /// Longest wait a rule may ask for, in seconds (0 to 86400). Example: --max-delay 3600.
    #[arg(long, default_value_t = MAX_DELAY.default, value_parser = within(&MAX_DELAY), value_name = "SECONDS")]
    pub max_delay: Delay,
    /// Connection limits and timeouts, the same for serve and the proxy.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The rules file and its limits.
    #[command(flatten)]
    pub ruleset: RulesArgs,
    /// TLS towards clients.
    #[command(flatten)]
    pub tls: TlsArgs,
}
