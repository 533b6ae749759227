//! What to send: a base URL and a list of targets, each usually a delay.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use hyper::Uri;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub use crate::schedule::{Pace, Rate};

/// How many requests a closed-loop run for a time may send at most: the workload lists this many,
/// and the run stops taking them when its time is up.
pub const OPEN_ENDED: usize = u32::MAX as usize;

/// The article's list of delays, in seconds: its sync client sends exactly these.
pub const ARTICLE_DELAYS: [u64; 10] = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5];

/// Most decimals a delay is written with in a URL: microseconds.
const DELAY_DECIMALS: usize = 6;

/// Where requests go: `http://host:port` or `https://host:port`, and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    ///
    /// Written piece by piece into one string: a JSON document lists a URL per outcome, and
    /// formatting the authority, then the base URL, then this would make three strings each.
    pub fn url(&self, path: &str) -> String {
        use std::fmt::Write as _;
        let mut url = String::with_capacity(self.host.len() + self.prefix.len() + path.len() + 16);
        url.push_str(self.scheme());
        url.push_str("://");
        if self.host.contains(':') {
            url.push('[');
            url.push_str(&self.host);
            url.push(']');
        } else {
            url.push_str(&self.host);
        }
        let _ = write!(url, ":{}", self.port);
        url.push_str(&self.prefix);
        url.push_str(path);
        url
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
    /// Path relative to its server's endpoint, starting with `/`, e.g. `/0.7`. Shared: a run of
    /// 100,000 requests to a few paths holds a few strings, not 100,000.
    pub path: Arc<str>,
    /// The delay this request asks the server for, when it is a slowlab delay request. The answer
    /// must then echo it in `time_elapsed`.
    pub delay: Option<Duration>,
    /// Which of the workload's servers this request goes to: an index into
    /// [`Workload::servers`], 0 being the base URL's. An index past the last server means the
    /// base URL's too.
    pub server: u32,
}

impl Target {
    /// A request for `GET /{delay}`, the delay written with at most six decimals.
    pub fn delay(delay: Duration) -> Target {
        Target {
            path: format!("/{}", format_delay(delay)).into(),
            delay: Some(delay),
            server: 0,
        }
    }

    /// A request for any `path` (with its query), not a slowlab delay: no echo is expected.
    pub fn path(path: impl Into<String>) -> Target {
        let path = path.into();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Target {
            path: path.into(),
            delay: None,
            server: 0,
        }
    }

    /// This request, sent to server `server` of its workload instead.
    pub fn on_server(self, server: u32) -> Target {
        Target { server, ..self }
    }
}

/// The requests of a workload, in the order they are issued.
///
/// A list, or one target repeated: `--count 1000000000` holds one target, not a billion, and
/// each request's target is looked up by its index when it is sent.
#[derive(Debug, Clone)]
pub struct Targets(Kind);

#[derive(Debug, Clone)]
enum Kind {
    /// Each request's own target.
    Listed(Vec<Target>),
    /// `count` requests of the same target.
    Repeated { target: Target, count: usize },
    /// `count` requests going round a list: request `i` is `list[i % list.len()]`.
    Cycled { list: Arc<[Target]>, count: usize },
}

impl Targets {
    /// `count` requests of `target`, in constant memory.
    pub fn repeated(target: Target, count: usize) -> Targets {
        Targets(Kind::Repeated { target, count })
    }

    /// `count` requests going round `targets` in turn (a run for a time, or at a rate), in the
    /// memory of one round. One target is the same as [`repeated`](Targets::repeated).
    pub fn cycled(targets: &Targets, count: usize) -> Targets {
        if let Some((target, _)) = targets.as_repeated() {
            return Targets::repeated(target.clone(), count);
        }
        let list: Arc<[Target]> = match &targets.0 {
            Kind::Cycled { list, .. } => Arc::clone(list),
            _ => targets.iter().cloned().collect(),
        };
        match list.len() {
            0 => Targets::from(Vec::new()),
            1 => Targets::repeated(list[0].clone(), count),
            _ => Targets(Kind::Cycled { list, count }),
        }
    }

    /// The first `count` of these requests (all of them when there are fewer).
    pub fn truncated(&self, count: usize) -> Targets {
        let count = count.min(self.len());
        match &self.0 {
            Kind::Listed(targets) => Targets::from(targets[..count].to_vec()),
            Kind::Repeated { target, .. } => Targets::repeated(target.clone(), count),
            Kind::Cycled { list, .. } => Targets(Kind::Cycled {
                list: Arc::clone(list),
                count,
            }),
        }
    }

    /// One round of the distinct list these requests go through: the list, the one repeated
    /// target, or the list a cycle goes round.
    pub fn round(&self) -> &[Target] {
        match &self.0 {
            Kind::Listed(targets) => targets,
            Kind::Repeated { target, .. } => std::slice::from_ref(target),
            Kind::Cycled { list, .. } => list,
        }
    }

    /// How many requests.
    pub fn len(&self) -> usize {
        match &self.0 {
            Kind::Listed(targets) => targets.len(),
            Kind::Repeated { count, .. } | Kind::Cycled { count, .. } => *count,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The target of request `index`.
    pub fn get(&self, index: usize) -> Option<&Target> {
        match &self.0 {
            Kind::Listed(targets) => targets.get(index),
            Kind::Repeated { target, count } => (index < *count).then_some(target),
            Kind::Cycled { list, count } => (index < *count).then(|| &list[index % list.len()]),
        }
    }

    /// Every request's target, in order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.0 {
            Kind::Listed(targets) => Iter::Listed(targets.iter()),
            Kind::Repeated { target, count } => Iter::Repeated(std::iter::repeat_n(target, *count)),
            Kind::Cycled { list, count } => Iter::Cycled(list.iter().cycle().take(*count)),
        }
    }

    /// The one target and how many times, when every request has the same.
    pub fn as_repeated(&self) -> Option<(&Target, usize)> {
        match &self.0 {
            Kind::Listed(_) | Kind::Cycled { .. } => None,
            Kind::Repeated { target, count } => Some((target, *count)),
        }
    }

    /// The list, to change it; a repeated target is written out first, a copy per request.
    pub fn to_mut(&mut self) -> &mut Vec<Target> {
        if !matches!(self.0, Kind::Listed(_)) {
            self.0 = Kind::Listed(self.iter().cloned().collect());
        }
        match &mut self.0 {
            Kind::Listed(targets) => targets,
            Kind::Repeated { .. } | Kind::Cycled { .. } => unreachable!("written out above"),
        }
    }

    /// Adds a request at the end.
    pub fn push(&mut self, target: Target) {
        self.to_mut().push(target);
    }
}

impl From<Vec<Target>> for Targets {
    fn from(targets: Vec<Target>) -> Targets {
        Targets(Kind::Listed(targets))
    }
}

impl std::ops::Index<usize> for Targets {
    type Output = Target;

    fn index(&self, index: usize) -> &Target {
        match self.get(index) {
            Some(target) => target,
            None => panic!("request {index} of {}", self.len()),
        }
    }
}

impl PartialEq for Targets {
    fn eq(&self, other: &Targets) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Targets {}

impl<'a> IntoIterator for &'a Targets {
    type Item = &'a Target;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The targets of a workload in order; see [`Targets::iter`].
#[derive(Debug, Clone)]
pub enum Iter<'a> {
    /// Over a list.
    Listed(std::slice::Iter<'a, Target>),
    /// Over one target repeated.
    Repeated(std::iter::RepeatN<&'a Target>),
    /// Round a list.
    Cycled(std::iter::Take<std::iter::Cycle<std::slice::Iter<'a, Target>>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Target;

    fn next(&mut self) -> Option<&'a Target> {
        match self {
            Iter::Listed(inner) => inner.next(),
            Iter::Repeated(inner) => inner.next(),
            Iter::Cycled(inner) => inner.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Listed(inner) => inner.size_hint(),
            Iter::Repeated(inner) => inner.size_hint(),
            Iter::Cycled(inner) => inner.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The list of requests one run sends, the same for every mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Where the requests go: never empty; the first is the base URL, where relative paths go.
    servers: Vec<Endpoint>,
    /// The requests, in the order they are issued.
    pub targets: Targets,
    /// The method of every request (`GET` unless told otherwise).
    pub method: Method,
    /// Extra headers sent with every request, after `Host` and `User-Agent`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body of every request; empty for none. Shared by every request, never copied.
    pub body: Bytes,
    /// When the requests go out: as soon as the mode allows (the default), or at a rate.
    pub pace: Pace,
    /// The shard of a larger workload this one is (`fetch --shard I/N`), if any.
    pub shard: Option<crate::shard::Shard>,
}

impl Workload {
    /// `targets` sent to `endpoint` with `GET` and no extra headers.
    pub fn new(endpoint: Endpoint, targets: Vec<Target>) -> Workload {
        Workload::with_targets(endpoint, targets.into())
    }

    /// `targets`, listed or repeated, sent to `endpoint` with `GET` and no extra headers.
    pub fn with_targets(endpoint: Endpoint, targets: Targets) -> Workload {
        Workload {
            servers: vec![endpoint],
            targets,
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
            pace: Pace::default(),
            shard: None,
        }
    }

    /// These targets sent open-loop at `rate`: request `k` is due at its place in the rate's
    /// schedule, whatever the earlier ones are doing. For `duration` (or, without one, the
    /// length of the rate's stages) the targets go round in turn, as many as the schedule has
    /// due; with neither, each target is sent once.
    pub fn at_rate(mut self, rate: Rate, duration: Option<Duration>) -> Workload {
        if let Some(length) = duration.or(rate.length()) {
            let count = rate.count_before(length);
            self.targets = Targets::cycled(&self.targets, count);
        }
        self.pace = Pace {
            rate: Some(rate),
            until: None,
        };
        self
    }

    /// These targets sent closed-loop for `duration`, going round in turn: a new request starts
    /// whenever one ends, until the time is up. The workload then lists [`OPEN_ENDED`] requests;
    /// the report holds those that were sent.
    pub fn for_duration(mut self, duration: Duration) -> Workload {
        self.targets = Targets::cycled(&self.targets, OPEN_ENDED);
        self.pace = Pace {
            rate: None,
            until: Some(duration),
        };
        self
    }

    /// The first `count` requests of this workload, with its servers and everything else: what a
    /// run for a time sent, once it is over.
    pub fn truncated(&self, count: usize) -> Workload {
        Workload {
            servers: self.servers.clone(),
            targets: self.targets.truncated(count),
            method: self.method.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            pace: self.pace.clone(),
            shard: self.shard.clone(),
        }
    }

    /// When request `index` is due, for an open-loop workload: its place in the whole
    /// workload's schedule, so that the shards of a run together keep the rate.
    pub fn scheduled_at(&self, index: usize) -> Option<Duration> {
        let global = usize::try_from(self.global_index(index)).unwrap_or(usize::MAX);
        self.pace.rate.as_ref()?.start_of(global)
    }

    /// One `GET /{delay}` per delay, in order. Equal delays share their path.
    pub fn from_delays(endpoint: Endpoint, delays: &[Duration]) -> Workload {
        let mut made: HashMap<Duration, Target> = HashMap::new();
        let targets = delays
            .iter()
            .map(|&delay| {
                made.entry(delay)
                    .or_insert_with(|| Target::delay(delay))
                    .clone()
            })
            .collect();
        Workload::new(endpoint, targets)
    }

    /// `count` requests of the same `delay`, in constant memory whatever the count.
    pub fn repeat(endpoint: Endpoint, count: usize, delay: Duration) -> Workload {
        Workload::with_targets(endpoint, Targets::repeated(Target::delay(delay), count))
    }

    /// Adds a server that targets can name by the returned index (see [`Target::on_server`]).
    pub fn add_server(&mut self, endpoint: Endpoint) -> u32 {
        self.servers.push(endpoint);
        u32::try_from(self.servers.len() - 1).unwrap_or(u32::MAX)
    }

    /// Every server of the workload: the base URL, then those [`add_server`](Workload::add_server)
    /// added.
    pub fn servers(&self) -> &[Endpoint] {
        &self.servers
    }

    /// The base URL's endpoint: where relative paths go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.servers[0]
    }

    /// The server `target` goes to (the base URL's, should its index be out of range).
    pub fn server_of(&self, target: &Target) -> &Endpoint {
        &self.servers[self.server_index(target)]
    }

    /// The index of the server `target` goes to: its own, or 0 when that is out of range.
    fn server_index(&self, target: &Target) -> usize {
        let index = target.server as usize;
        if index < self.servers.len() { index } else { 0 }
    }

    /// The full URL of `target`.
    pub fn url(&self, target: &Target) -> String {
        self.server_of(target).url(&target.path)
    }

    /// The best wall time for sending this workload, in order, with at most `slots` requests in
    /// flight at once: greedy list scheduling, where each request takes the slot that frees first.
    ///
    /// One slot gives the sum of the delays; as many slots as requests give the longest delay.
    /// Targets without a delay count as taking no time.
    pub fn ideal(&self, slots: Option<usize>) -> Duration {
        if let Some((target, count)) = self.targets.as_repeated() {
            // Equal requests on K slots: ceil(count / K) rounds of one delay each.
            let delay = target.delay.unwrap_or_default();
            let rounds = match slots {
                Some(slots) if count > 0 => count.div_ceil(slots.max(1)),
                _ => usize::from(count > 0),
            };
            return times(delay, rounds);
        }
        makespan(self.targets.iter(), slots)
    }

    /// The best wall time when each server has `slots` of its own (as the async runner does with
    /// several servers): the longest of the servers' [`ideal`](Workload::ideal) times.
    pub fn ideal_per_server(&self, slots: Option<usize>) -> Duration {
        if self.servers.len() == 1 {
            return self.ideal(slots);
        }
        self.by_server()
            .iter()
            .map(|indices| makespan(indices.iter().map(|&i| &self.targets[i as usize]), slots))
            .max()
            .unwrap_or_default()
    }

    /// The most requests in flight at once when each server has `slots` of its own: `None` when
    /// that does not limit the workload at all.
    pub fn slots_per_server(&self, slots: Option<usize>) -> Option<usize> {
        let slots = slots?;
        if self.servers.len() == 1 {
            return (slots < self.targets.len()).then_some(slots);
        }
        let total: usize = self
            .by_server()
            .iter()
            .map(|indices| indices.len().min(slots))
            .sum();
        (total < self.targets.len()).then_some(total)
    }

    /// The indices of the targets of each server, in order, for the servers that have any.
    pub fn by_server(&self) -> Vec<Vec<u32>> {
        let mut groups = vec![Vec::new(); self.servers.len()];
        for (index, target) in self.targets.iter().enumerate() {
            groups[self.server_index(target)].push(u32::try_from(index).unwrap_or(u32::MAX));
        }
        groups.retain(|group| !group.is_empty());
        groups
    }

    /// Whether every target is a slowlab delay request, so that the run has an ideal wall time.
    pub fn all_delays(&self) -> bool {
        // One round says it for every request, however many rounds there are.
        self.targets.round().iter().all(|t| t.delay.is_some())
    }

    /// The requested delays (targets without one are skipped).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        self.targets.iter().filter_map(|t| t.delay)
    }

    /// Sum of the requested delays: the ideal wall time of a sequential run. Saturates at
    /// `Duration::MAX` rather than overflow.
    pub fn sum_of_delays(&self) -> Duration {
        match self.targets.as_repeated() {
            Some((target, count)) => times(target.delay.unwrap_or_default(), count),
            None => saturating_sum(self.delays()),
        }
    }

    /// Longest requested delay: the ideal wall time of an unbounded concurrent run.
    pub fn max_delay(&self) -> Duration {
        if self.targets.is_empty() {
            return Duration::ZERO;
        }
        let round = self.targets.round();
        // Fewer requests than one round of a cycle: only those count.
        let round = &round[..round.len().min(self.targets.len())];
        round
            .iter()
            .filter_map(|t| t.delay)
            .max()
            .unwrap_or_default()
    }
}

/// Greedy list scheduling of `targets`, in order, on `slots` slots (`None`: one each).
fn makespan<'a>(
    targets: impl Iterator<Item = &'a Target> + Clone,
    slots: Option<usize>,
) -> Duration {
    let delays = || targets.clone().filter_map(|t| t.delay);
    let slots = match slots {
        Some(slots) if slots < targets.clone().count() => slots.max(1),
        _ => return delays().max().unwrap_or_default(),
    };
    if slots == 1 {
        return saturating_sum(delays());
    }
    let mut free_at: BinaryHeap<Reverse<Duration>> =
        std::iter::repeat_n(Reverse(Duration::ZERO), slots).collect();
    let mut longest = Duration::ZERO;
    for target in targets {
        let Reverse(free) = free_at.pop().unwrap_or_default();
        let done = free.saturating_add(target.delay.unwrap_or_default());
        longest = longest.max(done);
        free_at.push(Reverse(done));
    }
    longest
}

/// The sum of `delays`, or `Duration::MAX` when it would overflow: delays come from users, and
/// a sum past 584 billion years is as good as forever.
fn saturating_sum(delays: impl Iterator<Item = Duration>) -> Duration {
    delays.fold(Duration::ZERO, Duration::saturating_add)
}

/// `delay` taken `n` times, saturating at `Duration::MAX`.
fn times(delay: Duration, n: usize) -> Duration {
    let nanos = delay.as_nanos().saturating_mul(n as u128);
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    if secs == u64::MAX {
        return Duration::MAX;
    }
    // The remainder is below a second, so it fits.
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
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
    fn several_servers_have_slots_and_ideals_of_their_own() {
        let mut w = Workload::from_delays(
            Endpoint::parse("http://127.0.0.1:1").unwrap(),
            &[3, 1, 2, 2].map(Duration::from_secs),
        );
        let other = w.add_server(Endpoint::parse("http://127.0.0.1:2").unwrap());
        let list = w.targets.to_mut();
        list[1] = list[1].clone().on_server(other);
        list[3] = list[3].clone().on_server(other);
        assert_eq!(w.url(&w.targets[1]), "http://127.0.0.1:2/1");
        assert_eq!(w.by_server(), [vec![0, 2], vec![1, 3]]);
        // One slot each: server 1 takes 3 + 2, server 2 takes 1 + 2.
        assert_eq!(w.ideal_per_server(Some(1)), Duration::from_secs(5));
        assert_eq!(w.slots_per_server(Some(1)), Some(2));
        // Two slots each cover every request: no limit.
        assert_eq!(w.slots_per_server(Some(2)), None);
        assert_eq!(w.ideal_per_server(None), Duration::from_secs(3));
        // One server's ideal is the plain one.
        let one = Workload::from_delays(
            Endpoint::parse("http://127.0.0.1:1").unwrap(),
            &[3, 1, 2, 2].map(Duration::from_secs),
        );
        assert_eq!(one.ideal_per_server(Some(2)), one.ideal(Some(2)));
        assert!(Arc::ptr_eq(&one.targets[2].path, &one.targets[3].path));
        // An index past the last server means the base URL, for sending and grouping alike.
        let list = w.targets.to_mut();
        list[3] = list[3].clone().on_server(7);
        assert_eq!(w.url(&w.targets[3]), "http://127.0.0.1:1/2");
        assert_eq!(w.by_server(), [vec![0, 2, 3], vec![1]]);
    }

    #[test]
    fn a_repeated_target_takes_constant_memory_and_agrees_with_a_list() {
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let delay = Duration::from_millis(300);
        // No list of this length could be allocated: the targets are made on demand.
        let huge = Workload::repeat(endpoint.clone(), usize::MAX, delay);
        assert_eq!(huge.targets.len(), usize::MAX);
        assert_eq!(huge.targets[usize::MAX - 1].delay, Some(delay));
        assert_eq!(huge.targets.get(usize::MAX), None);
        // 0.3 s x 18446744073709551615, exactly.
        let sum = Duration::new(5_534_023_222_112_865_484, 500_000_000);
        assert_eq!(huge.sum_of_delays(), sum);
        let beyond = Workload::repeat(endpoint.clone(), usize::MAX, Duration::from_secs(2));
        assert_eq!(beyond.sum_of_delays(), Duration::MAX, "saturates");
        assert_eq!(beyond.ideal(Some(1)), Duration::MAX);
        assert_eq!(huge.slots_per_server(Some(50)), Some(50));
        assert!(std::mem::size_of_val(&huge) < 256);
        // Against the same requests written out, every figure agrees.
        for count in [0, 1, 7, 10] {
            let repeated = Workload::repeat(endpoint.clone(), count, delay);
            let listed = Workload::from_delays(endpoint.clone(), &vec![delay; count]);
            assert_eq!(repeated, listed);
            assert_eq!(repeated.sum_of_delays(), listed.sum_of_delays());
            assert_eq!(repeated.max_delay(), listed.max_delay());
            for slots in [None, Some(1), Some(3), Some(10), Some(0)] {
                assert_eq!(
                    repeated.ideal(slots),
                    listed.ideal(slots),
                    "{count} {slots:?}"
                );
                assert_eq!(
                    repeated.slots_per_server(slots),
                    listed.slots_per_server(slots)
                );
            }
        }
    }

    #[test]
    fn seeded_draws_repeat_and_stay_in_range() {
        let a = random_delays(100, Some(42));
        assert_eq!(a, random_delays(100, Some(42)));
        assert_ne!(a, random_delays(100, Some(43)));
        assert!(a.iter().all(|&d| d < 10));
    }
}
