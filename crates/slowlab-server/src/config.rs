//! Validated server settings, resolved once and passed down.
//!
//! Every numeric setting is a [`Setting`]: its flag, default and accepted range are written once,
//! here, and read by `Config::default()`, [`Config::validate`] and the command line (which checks
//! each flag as it is parsed, so an out-of-range value is a usage error naming the flag).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::delay::Delay;
use crate::model::Model;
use crate::request_log::RequestLog;

/// One day: the longest delay or timeout any setting accepts. Longer waits are not a test of
/// anything, and every deadline computed from them stays far inside what timers can represent.
const ONE_DAY: Delay = Delay::from_secs(86_400);

/// A numeric setting: the flag that sets it, its default, and the range it accepts.
///
/// Values are kept in the flag's own terms (a [`Delay`] for seconds, a count or byte size
/// otherwise), so the default shown by `--help` and the range in an error message are the very
/// numbers written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<T> {
    /// The command-line flag, e.g. `--max-headers`.
    pub flag: &'static str,
    /// The value when none is given.
    pub default: T,
    /// The smallest value accepted.
    pub min: T,
    /// The largest value accepted.
    pub max: T,
    /// What the number counts, for messages: `seconds`, `bytes`, `connections`...
    pub unit: &'static str,
    /// A typical value, for the example in an error message.
    pub example: &'static str,
}

impl<T: Copy + PartialOrd + fmt::Display> Setting<T> {
    /// `value` if it is within the range, else the error that says which range and gives an
    /// example.
    pub fn check(&self, value: T) -> Result<T, ConfigError> {
        if value < self.min || value > self.max {
            return Err(self.error(value.to_string()));
        }
        Ok(value)
    }

    /// The range in words: `1 to 10000 headers`.
    pub fn range(&self) -> String {
        format!("{} to {} {}", self.min, self.max, self.unit)
    }

    fn error(&self, value: String) -> ConfigError {
        ConfigError {
            flag: self.flag,
            value,
            range: self.range(),
            example: self.example,
        }
    }
}

impl<T: Copy + PartialOrd + fmt::Display + FromStr> Setting<T> {
    /// Parses a flag's text and checks its range: what the command line calls for each numeric
    /// flag. Text that is not a number of the right kind gets the same message as one out of
    /// range, since both are answered by saying what is accepted.
    pub fn parse(&self, text: &str) -> Result<T, ConfigError> {
        match text.parse::<T>() {
            Ok(value) => self.check(value),
            Err(_) => Err(self.error(format!("{text:?}"))),
        }
    }
}

impl Setting<Delay> {
    /// Checks a duration given to [`Config`] directly (by an embedder, not the command line).
    pub fn check_duration(&self, value: Duration) -> Result<Duration, ConfigError> {
        self.check(Delay::from(value)).map(|_| value)
    }
}

/// A setting out of its range: says which flag, what is accepted, and gives an example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not valid for {flag}: it takes {range}, e.g. {flag} {example}")]
pub struct ConfigError {
    /// The flag, e.g. `--max-headers`.
    pub flag: &'static str,
    /// The value given, as text.
    pub value: String,
    /// What is accepted, e.g. `1 to 10000 headers`.
    pub range: String,
    /// A typical value.
    pub example: &'static str,
}

/// `--max-delay`: the longest delay a request may ask for.
pub const MAX_DELAY: Setting<Delay> = Setting {
    flag: "--max-delay",
    default: Delay::from_secs(600),
    min: Delay::ZERO,
    max: ONE_DAY,
    unit: "seconds",
    example: "3600",
};

/// `--drain-timeout`: how long shutdown lets requests in flight finish.
pub const DRAIN_TIMEOUT: Setting<Delay> = Setting {
    flag: "--drain-timeout",
    default: Delay::from_secs(10),
    min: Delay::ZERO,
    max: ONE_DAY,
    unit: "seconds",
    example: "30",
};

/// `--header-read-timeout`: how long a client may take to send its request headers. Zero would
/// close every connection before it could say anything, so the least is a millisecond.
pub const HEADER_READ_TIMEOUT: Setting<Delay> = Setting {
    flag: "--header-read-timeout",
    default: Delay::from_secs(10),
    min: Delay::from_millis(1),
    max: ONE_DAY,
    unit: "seconds",
    example: "2",
};

/// `--body-read-timeout`: how long a client may take to send a request body the server reads
/// (`/anything`), from the request's headers to its last byte. Zero would refuse every body.
pub const BODY_READ_TIMEOUT: Setting<Delay> = Setting {
    flag: "--body-read-timeout",
    default: Delay::from_secs(30),
    min: Delay::from_millis(1),
    max: ONE_DAY,
    unit: "seconds",
    example: "10",
};

/// `--idle-timeout`: how long a connection may stay open with nothing in flight and nothing
/// received (HTTP/1.1 keep-alive and HTTP/2 alike). Zero would close every connection at once.
pub const IDLE_TIMEOUT: Setting<Delay> = Setting {
    flag: "--idle-timeout",
    default: Delay::from_secs(60),
    min: Delay::from_millis(1),
    max: ONE_DAY,
    unit: "seconds",
    example: "5",
};

/// `--write-timeout`: how long a response write may make no progress while bytes wait to be
/// sent. Zero would abandon every write that has to wait at all.
pub const WRITE_TIMEOUT: Setting<Delay> = Setting {
    flag: "--write-timeout",
    default: Delay::from_secs(30),
    min: Delay::from_millis(1),
    max: ONE_DAY,
    unit: "seconds",
    example: "10",
};

/// `--max-in-flight`: most delay requests in flight at once (no default: no cap). Zero would
/// refuse every request.
pub const MAX_IN_FLIGHT: Setting<u64> = Setting {
    flag: "--max-in-flight",
    default: u64::MAX,
    min: 1,
    max: 1_000_000_000,
    unit: "requests",
    example: "10000",
};

/// `--max-connections`: most connections served at once (no default: no cap). Zero would serve
/// nothing at all.
pub const MAX_CONNECTIONS: Setting<usize> = Setting {
    flag: "--max-connections",
    default: usize::MAX,
    min: 1,
    max: 10_000_000,
    unit: "connections",
    example: "1000",
};

/// `--h2-max-streams`: most concurrent HTTP/2 streams per connection. Zero would refuse every
/// stream.
pub const H2_MAX_STREAMS: Setting<u32> = Setting {
    flag: "--h2-max-streams",
    default: 8192,
    min: 1,
    max: 1_000_000,
    unit: "streams",
    example: "100000",
};

/// `--max-body-bytes`: the largest body `bytes=` may ask for (1 TiB at most).
pub const MAX_BODY_BYTES: Setting<u64> = Setting {
    flag: "--max-body-bytes",
    default: 16 * 1024 * 1024,
    min: 0,
    max: 1 << 40,
    unit: "bytes",
    example: "104857600",
};

/// `--max-uri-bytes`: the longest request target accepted. At least enough for `/healthz?x`; at
/// most 65,534 bytes, the longest URI the `http` crate (and so hyper) can hold: hyper answers
/// anything longer with its own bodiless 414.
pub const MAX_URI_BYTES: Setting<usize> = Setting {
    flag: "--max-uri-bytes",
    default: 8 * 1024,
    min: 16,
    max: 65_534,
    unit: "bytes",
    example: "2048",
};

/// `--max-header-bytes`: most bytes of header names and values accepted (16 MiB at most; at least
/// enough for a `Host` header).
pub const MAX_HEADER_BYTES: Setting<usize> = Setting {
    flag: "--max-header-bytes",
    default: 16 * 1024,
    min: 64,
    max: 16 * 1024 * 1024,
    unit: "bytes",
    example: "4096",
};

/// `--max-headers`: most request header lines accepted. An HTTP/1.1 request needs `Host`, so the
/// least is one; hyper reserves room for a few times this many per request, so the most is 10,000.
pub const MAX_HEADERS: Setting<usize> = Setting {
    flag: "--max-headers",
    default: 100,
    min: 1,
    max: 10_000,
    unit: "headers",
    example: "50",
};

/// `--backlog`: length of the kernel's accept queue (which also caps it at `net.core.somaxconn`).
pub const BACKLOG: Setting<u32> = Setting {
    flag: "--backlog",
    default: 4096,
    min: 1,
    max: 1 << 20,
    unit: "connections",
    example: "8192",
};

/// `--max-rules`: most `[[rule]]` tables a rules file may hold.
pub const MAX_RULES: Setting<usize> = Setting {
    flag: "--max-rules",
    default: 100_000,
    min: 1,
    max: 10_000_000,
    unit: "rules",
    example: "1000",
};

/// `--max-rules-file-bytes`: the largest rules file read (its size is checked before reading).
pub const MAX_RULES_FILE_BYTES: Setting<u64> = Setting {
    flag: "--max-rules-file-bytes",
    default: 64 * 1024 * 1024,
    min: 1,
    max: 1 << 32,
    unit: "bytes",
    example: "1048576",
};

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
    /// How long a client may take to send a request's headers, from their first byte (defends
    /// against slowloris).
    pub header_read_timeout: Duration,
    /// How long a request body the server reads (`/anything`'s) may take to arrive in full, from
    /// the request's headers to its last byte; past it the request gets a 408 `body_timeout`
    /// (defends against slowloris on the body).
    pub body_read_timeout: Duration,
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
    /// One line per request on stderr, in this format; `None` logs nothing.
    pub request_log: Option<RequestLog>,
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
            max_delay: MAX_DELAY.default.as_duration(),
            over_max: OverMax::Reject,
            model: Model::Async,
            any_method: false,
            max_connections: None,
            h2_max_streams: H2_MAX_STREAMS.default,
            max_body_bytes: MAX_BODY_BYTES.default,
            drain_timeout: DRAIN_TIMEOUT.default.as_duration(),
            header_read_timeout: HEADER_READ_TIMEOUT.default.as_duration(),
            body_read_timeout: BODY_READ_TIMEOUT.default.as_duration(),
            max_uri_bytes: MAX_URI_BYTES.default,
            max_header_bytes: MAX_HEADER_BYTES.default,
            max_headers: MAX_HEADERS.default,
            backlog: BACKLOG.default,
            idle_timeout: IDLE_TIMEOUT.default.as_duration(),
            write_timeout: WRITE_TIMEOUT.default.as_duration(),
            max_in_flight: None,
            request_log: None,
            seed: None,
            rules: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Config {
    /// Checks every numeric setting against its range ([`Setting`]); the first one out of range is
    /// the error. Embedders should call this before [`crate::spawn`]; the command line checks each
    /// flag as it is parsed. A config that skipped both is served with every value brought into
    /// its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        MAX_DELAY.check_duration(self.max_delay)?;
        DRAIN_TIMEOUT.check_duration(self.drain_timeout)?;
        HEADER_READ_TIMEOUT.check_duration(self.header_read_timeout)?;
        BODY_READ_TIMEOUT.check_duration(self.body_read_timeout)?;
        IDLE_TIMEOUT.check_duration(self.idle_timeout)?;
        WRITE_TIMEOUT.check_duration(self.write_timeout)?;
        if let Some(n) = self.max_connections {
            MAX_CONNECTIONS.check(n)?;
        }
        if let Some(n) = self.max_in_flight {
            MAX_IN_FLIGHT.check(n)?;
        }
        H2_MAX_STREAMS.check(self.h2_max_streams)?;
        MAX_BODY_BYTES.check(self.max_body_bytes)?;
        MAX_URI_BYTES.check(self.max_uri_bytes)?;
        MAX_HEADER_BYTES.check(self.max_header_bytes)?;
        MAX_HEADERS.check(self.max_headers)?;
        BACKLOG.check(self.backlog)?;
        Ok(())
    }

    /// This config with every numeric setting brought into its range: what the connection layer
    /// uses when handed a config that was never validated, so that no value can overflow a
    /// deadline or a buffer size.
    pub(crate) fn within_ranges(mut self) -> Config {
        fn clamp<T: Copy + PartialOrd>(setting: &Setting<T>, value: T) -> T {
            if value < setting.min {
                setting.min
            } else if value > setting.max {
                setting.max
            } else {
                value
            }
        }
        fn seconds(setting: &Setting<Delay>, value: Duration) -> Duration {
            clamp(setting, Delay::from(value)).as_duration()
        }
        self.max_delay = seconds(&MAX_DELAY, self.max_delay);
        self.drain_timeout = seconds(&DRAIN_TIMEOUT, self.drain_timeout);
        self.header_read_timeout = seconds(&HEADER_READ_TIMEOUT, self.header_read_timeout);
        self.body_read_timeout = seconds(&BODY_READ_TIMEOUT, self.body_read_timeout);
        self.idle_timeout = seconds(&IDLE_TIMEOUT, self.idle_timeout);
        self.write_timeout = seconds(&WRITE_TIMEOUT, self.write_timeout);
        self.max_connections = self.max_connections.map(|n| clamp(&MAX_CONNECTIONS, n));
        self.max_in_flight = self.max_in_flight.map(|n| clamp(&MAX_IN_FLIGHT, n));
        self.h2_max_streams = clamp(&H2_MAX_STREAMS, self.h2_max_streams);
        self.max_body_bytes = clamp(&MAX_BODY_BYTES, self.max_body_bytes);
        self.max_uri_bytes = clamp(&MAX_URI_BYTES, self.max_uri_bytes);
        self.max_header_bytes = clamp(&MAX_HEADER_BYTES, self.max_header_bytes);
        self.max_headers = clamp(&MAX_HEADERS, self.max_headers);
        self.backlog = clamp(&BACKLOG, self.backlog);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_their_ranges() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_names_the_flag_the_range_and_an_example() {
        let err = MAX_HEADERS.parse("1000000000000").unwrap_err();
        assert_eq!(
            err.to_string(),
            "1000000000000 is not valid for --max-headers: it takes 1 to 10000 headers, e.g. --max-headers 50"
        );
        let err = HEADER_READ_TIMEOUT.parse("1e19").unwrap_err();
        assert_eq!(err.flag, "--header-read-timeout");
        assert_eq!(err.range, "0.001 to 86400 seconds");
        assert_eq!(
            MAX_CONNECTIONS.parse("0").unwrap_err().range,
            "1 to 10000000 connections"
        );
        assert_eq!(H2_MAX_STREAMS.parse("1").unwrap(), 1);
        assert_eq!(
            DRAIN_TIMEOUT.parse("0.25").unwrap(),
            Delay::from_millis(250)
        );
    }

    #[test]
    fn an_unvalidated_config_is_served_within_the_ranges() {
        let wild = Config {
            max_uri_bytes: usize::MAX,
            max_headers: 0,
            header_read_timeout: Duration::MAX,
            ..Config::default()
        };
        assert!(wild.validate().is_err());
        let tamed = wild.within_ranges();
        tamed.validate().unwrap();
        assert_eq!(tamed.max_uri_bytes, MAX_URI_BYTES.max);
        assert_eq!(tamed.max_headers, 1);
    }
}
