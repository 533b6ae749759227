//! Options of `slowlab serve`.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;

use super::parse_seconds;

pub(super) const SERVE_EXAMPLES: &str = "\
Examples:
  slowlab serve                          http://127.0.0.1:8000, like the article's uvicorn
  slowlab serve --port 0                 an ephemeral port; the first stdout line names it
  slowlab serve --max-delay 3600         allow waits of up to an hour
  curl -i http://127.0.0.1:8000/2        waits 2 s: {\"time_elapsed\": 2}
  curl -i http://127.0.0.1:8000/0.25     waits 250 ms: {\"time_elapsed\": 0.25}

Bad input is answered with a JSON 4xx, e.g. /abc -> 400 {\"error\": \"not_a_number\", ...}.
Ctrl-C or SIGTERM stops accepting and lets requests in flight finish, for at most --drain-timeout.";

/// Options of `slowlab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, short, default_value_t = 8000)]
    pub port: u16,
    /// Longest delay a request may ask for, in seconds; longer requests get a 400 too_large.
    #[arg(long, default_value = "600", value_parser = parse_seconds, value_name = "SECONDS")]
    pub max_delay: Duration,
    /// On Ctrl-C or SIGTERM, how long to let requests in flight finish before cutting them off.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub drain_timeout: Duration,
    /// How long a client may take to send its request headers before the connection is closed.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub header_read_timeout: Duration,
    /// Longest request URI (path and query) accepted, in bytes; longer gets a 414.
    #[arg(long, default_value_t = 8192, value_name = "BYTES")]
    pub max_uri_bytes: usize,
    /// Most bytes of request headers accepted; more gets a 431.
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Length of the kernel's accept queue (capped by net.core.somaxconn).
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
}
