//! Validated server settings, resolved once and passed down.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::model::Model;

/// What to do with a requested delay above [`Config::max_delay`].
///
/// A drawn delay (jitter, distributions) above the cap is always clamped: the client did not ask
/// for that exact value, so refusing it would make a random test fail at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverMax {
    /// Answer 400 `too_large` (the default).
    #[default]
    Reject,
    /// Wait `max_delay` instead, and say so in an `X-Slowlab-Clamped` header.
    Clamp,
}

impl FromStr for OverMax {
    type Err = String;

    fn from_str(text: &str) -> Result<OverMax, String> {
        match text {
            "reject" => Ok(OverMax::Reject),
            "clamp" => Ok(OverMax::Clamp),
            _ => Err(format!("{text:?} is not reject or clamp")),
        }
    }
}

impl fmt::Display for OverMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OverMax::Reject => "reject",
            OverMax::Clamp => "clamp",
        })
    }
}

/// Everything `slowlab serve` can be told, with defaults fit for a test server.
///
/// `Config::default()` binds an ephemeral loopback port, which is what tests and embedders want; the
/// command line defaults to port 8000 like the article's uvicorn.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port.
    pub addr: SocketAddr,
    /// Longest delay a request may ask for; above it the request gets a 400 `too_large`, or waits
    /// this long when [`Config::over_max`] is [`OverMax::Clamp`].
    pub max_delay: Duration,
    /// What to do with a requested delay above `max_delay`.
    pub over_max: OverMax,
    /// How a waiting request is held: a timer, a thread of a pool, or the event loop itself.
    pub model: Model,
    /// Let every method (POST, PUT, DELETE, ...) wait on `/{seconds}`, not only GET and HEAD.
    pub any_method: bool,
    /// Most connections served at once; further connections wait in the kernel's accept queue
    /// until one closes. `None` is no limit beyond the open-file limit.
    pub max_connections: Option<usize>,
    /// Most concurrent HTTP/2 streams per connection (hyper's default of 200 is far too low for a
    /// server whose streams mostly wait).
    pub h2_max_streams: u32,
    /// Largest body `bytes=` may ask for.
    pub max_body_bytes: u64,
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
    /// How long a connection may stay open with nothing in flight and nothing received before it
    /// is closed (HTTP/1.1 keep-alive and HTTP/2 alike).
    pub idle_timeout: Duration,
    /// How long a response write may make no progress while bytes wait to be sent (the client
    /// neither reads nor opens its flow-control window) before the connection is closed. Pauses
    /// of `drip=` never count: nothing waits to be sent then.
    pub write_timeout: Duration,
    /// Most delay requests in flight at once; past it a request gets 503 `over_capacity` with
    /// `Retry-After`. `None` is no limit beyond the connection and stream caps.
    pub max_in_flight: Option<u64>,
    /// Length of the kernel's accept queue. Bursts of thousands of connects need it deep:
    /// a shallow queue turns a burst into SYN retries of 1 s and more.
    pub backlog: u32,
    /// Seeds one sequence of random draws (delay shapes, mixes) for the whole server, so the same
    /// order of arrivals sees the same draws. A URL's own `seed=` still wins for its request.
    pub seed: Option<u64>,
    /// Rules for any path (`--rules`, `--default`), in force until reloaded.
    pub rules: Option<crate::rules::LiveRules>,
    /// TLS on the listening port, which then speaks TLS only (the `tls` feature).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::Tls>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_delay: Duration::from_secs(600),
            over_max: OverMax::Reject,
            model: Model::Async,
            any_method: false,
            max_connections: None,
            h2_max_streams: 8192,
            max_body_bytes: 16 * 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            backlog: 4096,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_in_flight: None,
            seed: None,
            rules: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
