//! Validated server settings, resolved once and passed down.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Everything `slowlab serve` can be told, with defaults fit for a test server.
///
/// `Config::default()` binds an ephemeral loopback port, which is what tests and embedders want; the
/// command line defaults to port 8000 like the article's uvicorn.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port.
    pub addr: SocketAddr,
    /// Longest delay a request may ask for; above it the request gets a 400 `too_large`.
    pub max_delay: Duration,
    /// How long shutdown waits for in-flight requests before cutting them off.
    pub drain_timeout: Duration,
    /// How long a client may take to send its request headers (defends against slowloris).
    pub header_read_timeout: Duration,
    /// Longest request target (path and query) accepted; longer gets a 414.
    pub max_uri_bytes: usize,
    /// Most bytes of header names and values accepted; more gets a 431.
    pub max_header_bytes: usize,
    /// Most header lines accepted; more gets a 431.
    pub max_headers: usize,
    /// Length of the kernel's accept queue. Bursts of thousands of connects need it deep:
    /// a shallow queue turns a burst into SYN retries of 1 s and more.
    pub backlog: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_delay: Duration::from_secs(600),
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            backlog: 4096,
        }
    }
}
