//! Options of `slowlab serve`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use slowlab_server::{Model, OverMax};

use super::parse_seconds;

pub(super) const SERVE_EXAMPLES: &str = "\
Examples:
  slowlab serve                          http://127.0.0.1:8000, like the article's uvicorn
  slowlab serve --port 0                 an ephemeral port; the first stdout line names it
  slowlab serve --max-delay 3600         allow waits of up to an hour
  slowlab serve --model threads:40       like the article's FastAPI def endpoint on 40 threads
  curl -i http://127.0.0.1:8000/2        waits 2 s: {\"time_elapsed\": 2}
  curl -i http://127.0.0.1:8000/0.25     waits 250 ms: {\"time_elapsed\": 0.25}
  curl --http2-prior-knowledge http://127.0.0.1:8000/1     HTTP/2 (h2c) on the same port

Query options on /{seconds} (the path stays the base delay and the echo):
  /1?jitter=0.5                          wait uniform in [0.5, 1.5] s, never below 0
  /1?dist=uniform&min=0.5&max=2          wait uniform in [0.5, 2] s
  /1?dist=lognormal&median=1&sigma=0.8   heavy-tailed wait around a 1 s median
  /1?jitter=0.5&seed=7                   the same URL draws the same delay every time
  /1?status=503                          answer 503 after the wait
  /3?drip=3                              headers at once, the body in 3 chunks over 3 s
  /1?bytes=1000000                       pad the body to 1 MB (capped by --max-body-bytes)
  /1?fault=reset                         after the wait: reset, hangup, malformed, hang or truncate
  /1?mix=503:0.2,reset:0.05              503 for 20%, a reset for 5%, the plain answer for the rest
A drawn delay is in the X-Slowlab-Drawn-Delay header, the wait measured in Server-Timing.

Rules for the paths your client already calls (see docs/server.md for every field):
  slowlab serve --rules api.toml          [[rule]] path = \"/api/orders/{id}\"  delay = 0.3  mix = \"503:0.2\"
  slowlab serve --default '0.2?mix=503:0.05'   every other path: 0.2 s, 503 for 5%
  kill -HUP <pid>                         reload the rules file (or: slowlab serve --rules api.toml --watch)
  slowlab serve --tls-self-signed         TLS only on the port: curl -k https://127.0.0.1:8000/1

Other endpoints: /healthz (JSON), /metrics (Prometheus text), / (a page with clickable examples),
/anything (echoes the request as JSON, after the wait its query options ask for).
Bad input is answered with a JSON 4xx, e.g. /abc -> 400 {\"error\": \"not_a_number\", ...},
/1?jiter=1 -> 400 {\"error\": \"unknown_option\", ...}.
Ctrl-C or SIGTERM stops accepting and lets requests in flight finish, for at most --drain-timeout.
Set SLOWLAB_LOG=slowlab_server=debug for one log line per request.";

/// Longest `--idle-timeout` or `--write-timeout`: one day.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Parses a timeout: seconds, more than 0 and at most a day.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_seconds(text)?;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!(
            "{text:?} is out of range: use more than 0 and at most 86400 seconds (one day), e.g. 30"
        ));
    }
    Ok(timeout)
}

/// Options of `slowlab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Example: --host 0.0.0.0 (every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one. Example: --port 8080.
    #[arg(long, short, default_value_t = 8000)]
    pub port: u16,
    /// Longest delay a request may ask for, in seconds; see --over-max for longer ones.
    /// Example: --max-delay 3600.
    #[arg(long, default_value = "600", value_parser = parse_seconds, value_name = "SECONDS")]
    pub max_delay: Duration,
    /// A requested delay over --max-delay: `reject` answers 400 too_large, `clamp` waits
    /// --max-delay and says so in an X-Slowlab-Clamped header. Drawn delays are always clamped.
    /// Example: --over-max clamp.
    #[arg(long, default_value = "reject", value_name = "reject|clamp")]
    pub over_max: OverMax,
    /// How a waiting request is held: `async` (a timer, no thread), `threads:N` (a blocking sleep
    /// on N pool threads, like FastAPI's def endpoints on 40) or `blocking` (a blocking sleep on
    /// the event loop, one request after another: the classic mistake). Example: --model threads:40.
    #[arg(long, default_value = "async", value_name = "async|threads:N|blocking")]
    pub model: Model,
    /// Let every method (POST, PUT, DELETE, ...) wait on /{seconds}, not only GET and HEAD.
    /// Example: --any-method, then curl -X POST http://127.0.0.1:8000/1.
    #[arg(long)]
    pub any_method: bool,
    /// Most connections served at once; more wait in the kernel's accept queue (their connect
    /// succeeds, their request is read when a connection closes). Default: no cap.
    /// Example: --max-connections 1000.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most concurrent HTTP/2 streams per connection (hyper's default is 200).
    /// Example: --h2-max-streams 100000.
    #[arg(long, default_value_t = 8192, value_name = "N")]
    pub h2_max_streams: u32,
    /// Largest body that bytes=N may ask for. Example: --max-body-bytes 104857600.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: u64,
    /// On Ctrl-C or SIGTERM, how long to let requests in flight finish before cutting them off.
    /// Example: --drain-timeout 30.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub drain_timeout: Duration,
    /// How long a client may take to send its request headers before the connection is closed
    /// (slowloris defence). Example: --header-read-timeout 2.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub header_read_timeout: Duration,
    /// Longest request URI (path and query) accepted, in bytes; longer gets a JSON 414.
    /// Example: --max-uri-bytes 2048.
    #[arg(long, default_value_t = 8192, value_name = "BYTES")]
    pub max_uri_bytes: usize,
    /// Most bytes of request header names and values accepted; more gets a JSON 431.
    /// Example: --max-header-bytes 4096.
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Most request header lines accepted; more gets a JSON 431. Example: --max-headers 50.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_headers: usize,
    /// Close a connection with nothing in flight and nothing received for this long (HTTP/1.1
    /// keep-alive and HTTP/2 alike); more than 0, at most 86400. Example: --idle-timeout 5.
    #[arg(long, default_value = "60", value_parser = parse_timeout, value_name = "SECONDS")]
    pub idle_timeout: Duration,
    /// Abandon a response write that made no progress for this long while bytes wait to be sent
    /// (the client does not read); drip pauses never count. More than 0, at most 86400.
    /// Example: --write-timeout 10.
    #[arg(long, default_value = "30", value_parser = parse_timeout, value_name = "SECONDS")]
    pub write_timeout: Duration,
    /// Most delay requests in flight at once; past it a request gets 503 over_capacity with
    /// Retry-After. At least 1. Default: no cap. Example: --max-in-flight 10000.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight: Option<u64>,
    /// Length of the kernel's accept queue (capped by net.core.somaxconn). Example: --backlog 8192.
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
    /// Seed the server's random draws (delay shapes, mixes): the same order of arrivals, e.g. a
    /// sequential client, then sees the same delays and answers every run. A URL's own seed=
    /// still makes that URL's draw a pure function of the URL. Example: --seed 42.
    #[arg(long, value_name = "K")]
    pub seed: Option<u64>,
    /// Rules for any path, from a TOML file: each `[[rule]]` matches a method and path and says how
    /// to wait, fail and answer (see docs/server.md). Checked at start-up (exit 2 naming the rule
    /// and field); SIGHUP reloads it, and a bad reload keeps the old rules.
    /// Example: --rules api.toml.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The default rule, for every path no other route takes: a delay and options in the URL's
    /// words. Replaces the file's `[default]`. Example: --default '0.2?jitter=0.1&mix=503:0.05'.
    #[arg(long, value_name = "SECONDS?OPTIONS")]
    pub default: Option<String>,
    /// Reload --rules when the file changes (checked every second), as well as on SIGHUP.
    /// Example: --rules api.toml --watch.
    #[arg(long, requires = "rules")]
    pub watch: bool,
    /// Speak TLS on the port, with a certificate made at start-up for localhost and the listen
    /// address (its SHA-256 fingerprint is printed). The port then speaks TLS only (HTTP/1.1 and
    /// h2 by ALPN). Example: --tls-self-signed, then curl -k https://127.0.0.1:8000/1.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
    /// Speak TLS on the port with this PEM certificate chain (with --tls-key). The port then
    /// speaks TLS only. Example: --tls-cert cert.pem --tls-key key.pem.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert. Example: --tls-key key.pem.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}
