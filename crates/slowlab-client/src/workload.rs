//! What to send: a base URL and a list of targets, each usually a delay.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use hyper::Uri;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The article's list of delays, in seconds: its sync client sends exactly these.
pub const ARTICLE_DELAYS: [u64; 10] = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5];

/// Most decimals a delay is written with in a URL: microseconds.
const DELAY_DECIMALS: usize = 6;

/// Where requests go: `http://host:port` or `https://host:port`, and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    prefix: String,
    tls: bool,
}

/// A base URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL at all.
    #[error("{0:?} is not a URL; expected e.g. http://127.0.0.1:8000")]
    Invalid(String),
    /// A scheme other than `http` or `https`.
    #[error("{0:?}: only http:// and https:// base URLs are supported")]
    UnsupportedScheme(String),
}

impl Endpoint {
    /// Parses a base URL such as `http://127.0.0.1:8000`, `http://localhost:8000/api` or
    /// `https://example.com`.
    pub fn parse(base_url: &str) -> Result<Endpoint, EndpointError> {
        let uri: Uri = base_url
            .parse()
            .map_err(|_| EndpointError::Invalid(base_url.to_owned()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(EndpointError::UnsupportedScheme(base_url.to_owned())),
            None => return Err(EndpointError::Invalid(base_url.to_owned())),
        };
        let host = uri
            .host()
            .ok_or_else(|| EndpointError::Invalid(base_url.to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Endpoint {
            host,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            tls,
        })
    }

    /// Whether requests go over TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host name or address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// `host:port` as sent in the `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The base URL, normalised, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.authority(), self.prefix)
    }

    /// The path to request for `path` (which starts with `/`), prefix included.
    pub fn path(&self, path: &str) -> String {
        format!("{}{}", self.prefix, path)
    }

    /// The full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// Resolves the host once per run; connections try the addresses in order.
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} resolved to no address", self.host),
            ));
        }
        Ok(addrs)
    }
}

/// One request of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Path relative to the endpoint, starting with `/`, e.g. `/0.7`.
    pub path: String,
    /// The delay this request asks the server for, when it is a slowlab delay request. The answer
    /// must then echo it in `time_elapsed`.
    pub delay: Option<Duration>,
}

impl Target {
    /// A request for `GET /{delay}`, the delay written with at most six decimals.
    pub fn delay(delay: Duration) -> Target {
        Target {
            path: format!("/{}", format_delay(delay)),
            delay: Some(delay),
        }
    }
}

impl Target {
    /// A request for any `path` (with its query), not a slowlab delay: no echo is expected.
    pub fn path(path: impl Into<String>) -> Target {
        let path = path.into();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Target { path, delay: None }
    }
}

/// The list of requests one run sends, the same for every mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Where the requests go.
    pub endpoint: Endpoint,
    /// The requests, in the order they are issued.
    pub targets: Vec<Target>,
    /// The method of every request (`GET` unless told otherwise).
    pub method: Method,
    /// Extra headers sent with every request, after `Host` and `User-Agent`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Workload {
    /// `targets` sent with `GET` and no extra headers.
    pub fn new(endpoint: Endpoint, targets: Vec<Target>) -> Workload {
        Workload {
            endpoint,
            targets,
            method: Method::GET,
            headers: Vec::new(),
        }
    }

    /// One `GET /{delay}` per delay, in order.
    pub fn from_delays(endpoint: Endpoint, delays: &[Duration]) -> Workload {
        Workload::new(
            endpoint,
            delays.iter().copied().map(Target::delay).collect(),
        )
    }

    /// `count` requests of the same `delay`.
    pub fn repeat(endpoint: Endpoint, count: usize, delay: Duration) -> Workload {
        Workload::new(endpoint, vec![Target::delay(delay); count])
    }

    /// The best wall time for sending this workload, in order, with at most `slots` requests in
    /// flight at once: greedy list scheduling, where each request takes the slot that frees first.
    ///
    /// One slot gives the sum of the delays; as many slots as requests give the longest delay.
    /// Targets without a delay count as taking no time.
    pub fn ideal(&self, slots: Option<usize>) -> Duration {
        let slots = match slots {
            Some(slots) if slots < self.targets.len() => slots.max(1),
            _ => return self.max_delay(),
        };
        if slots == 1 {
            return self.sum_of_delays();
        }
        let mut free_at: BinaryHeap<Reverse<Duration>> =
            std::iter::repeat_n(Reverse(Duration::ZERO), slots).collect();
        let mut makespan = Duration::ZERO;
        for target in &self.targets {
            let Reverse(free) = free_at.pop().unwrap_or_default();
            let done = free + target.delay.unwrap_or_default();
            makespan = makespan.max(done);
            free_at.push(Reverse(done));
        }
        makespan
    }

    /// The requested delays (targets without one are skipped).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        self.targets.iter().filter_map(|t| t.delay)
    }

    /// Sum of the requested delays: the ideal wall time of a sequential run.
    pub fn sum_of_delays(&self) -> Duration {
        self.delays().sum()
    }

    /// Longest requested delay: the ideal wall time of an unbounded concurrent run.
    pub fn max_delay(&self) -> Duration {
        self.delays().max().unwrap_or_default()
    }
}

/// Writes a delay as a URL path segment: seconds rounded to the microsecond, no trailing zeros,
/// no dot for whole numbers (`0.7`, `9`, `0.000001`).
pub fn format_delay(delay: Duration) -> String {
    let micros = (delay.as_nanos() + 500) / 1_000;
    let whole = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:0width$}", width = DELAY_DECIMALS);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Draws `count` whole seconds in [0, 10), like the article's `randrange(0, 10)`. The same `seed`
/// gives the same list; no seed draws from the OS.
pub fn random_delays(count: usize, seed: Option<u64>) -> Vec<u64> {
    let mut rng = match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => rand::make_rng(),
    };
    (0..count).map(|_| rng.random_range(0..10)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_written_with_at_most_six_decimals() {
        assert_eq!(format_delay(Duration::from_secs(7)), "7");
        assert_eq!(format_delay(Duration::from_millis(700)), "0.7");
        assert_eq!(format_delay(Duration::from_secs_f64(0.7 * 0.1)), "0.07");
        assert_eq!(
            format_delay(Duration::from_nanos(1_234_567_891)),
            "1.234568"
        );
        assert_eq!(format_delay(Duration::from_nanos(999_999_999)), "1");
        assert_eq!(format_delay(Duration::ZERO), "0");
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://localhost:8000/").unwrap();
        assert_eq!(e.authority(), "localhost:8000");
        assert_eq!(e.url("/7"), "http://localhost:8000/7");
        let e = Endpoint::parse("http://[::1]:9/api").unwrap();
        assert_eq!(e.url("/7"), "http://[::1]:9/api/7");
        assert_eq!(e.path("/7"), "/api/7");
        let e = Endpoint::parse("https://example.com").unwrap();
        assert!(e.is_tls());
        assert_eq!(e.url("/7"), "https://example.com:443/7");
        assert!(matches!(
            Endpoint::parse("ftp://example.com"),
            Err(EndpointError::UnsupportedScheme(_))
        ));
        assert!(Endpoint::parse("not a url").is_err());
    }

    #[test]
    fn ideal_is_greedy_list_scheduling() {
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let secs = |s: &[u64]| {
            s.iter()
                .map(|&s| Duration::from_secs(s))
                .collect::<Vec<_>>()
        };
        let w = Workload::from_delays(endpoint, &secs(&[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]));
        assert_eq!(w.ideal(Some(1)), Duration::from_secs(44));
        assert_eq!(w.ideal(None), Duration::from_secs(9));
        assert_eq!(w.ideal(Some(10)), Duration::from_secs(9));
        assert_eq!(w.ideal(Some(100)), Duration::from_secs(9));
        // Two slots: 7 | 2 6(8) | 4(12)... worked by hand:
        // a=7, b=2 -> b=8 (6) -> a=11 (4) -> b=8 (0) -> b=17 (9) -> a=15 (4) -> a=17 (2)
        // -> a=22 or b=22 (5) -> the other gets 5 -> 22.
        assert_eq!(w.ideal(Some(2)), Duration::from_secs(22));
        assert_eq!(
            w.ideal(Some(0)),
            Duration::from_secs(44),
            "0 slots is read as 1"
        );
    }

    #[test]
    fn seeded_draws_repeat_and_stay_in_range() {
        let a = random_delays(100, Some(42));
        assert_eq!(a, random_delays(100, Some(42)));
        assert_ne!(a, random_delays(100, Some(43)));
        assert!(a.iter().all(|&d| d < 10));
    }
}
