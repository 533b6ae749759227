//! The runners: the same workload, sent one after another, on threads, or as tokio tasks.
//!
//! Every runner reports each request's [`Outcome`] over one channel, as it happens; it never prints or
//! aggregates. The collector on the other end does that.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::outcome::{ErrorKind, FetchError, Outcome};
use crate::workload::{Endpoint, Workload};

mod async_tasks;
mod blocking;
mod connect;
mod http1;
mod http2;
mod request;
mod tls;

/// Threads used by the `threads` runner when none are asked for: one per request, up to this.
pub const DEFAULT_MAX_THREADS: usize = 512;

/// The default cap on one response body: 16 MiB, far above any slowlab answer, low enough that
/// an endless body stops long before memory does.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// How a workload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One blocking client on one thread, one request after another (`requests` in a loop).
    Sequential,
    /// Blocking clients on a pool of OS threads ([`RequestOptions::threads`]), each taking the next
    /// request when it is free (a `ThreadPoolExecutor`).
    Threads,
    /// Tokio tasks on one runtime: every request at once (`asyncio.gather`), or at most
    /// [`RequestOptions::concurrency`] at a time.
    Async,
}

impl Mode {
    /// Lower-case name, as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Threads => "threads",
            Mode::Async => "async",
        }
    }
}

/// Per-run settings shared by all runners. `Default` is the article's client: no limits at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOptions {
    /// Total time allowed per request; `None` waits as long as the server takes.
    pub timeout: Option<Duration>,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Async: at most this many requests in flight. Over HTTP/1.1 that is as many long-lived
    /// keep-alive connections, each sending its requests back to back. `None`: all at once.
    pub concurrency: Option<usize>,
    /// Threads: the size of the pool. `None`: one thread per request, up to
    /// [`DEFAULT_MAX_THREADS`].
    pub threads: Option<usize>,
    /// Async: speak HTTP/2, many streams per connection: h2c with prior knowledge for `http://`,
    /// h2 negotiated by ALPN for `https://`.
    pub http2: bool,
    /// Async: how many connections to open. Over HTTP/1.1 this is a pool of keep-alive connections
    /// (so also a concurrency limit); over HTTP/2, `None` opens as many as the server's stream
    /// limit requires.
    pub connections: Option<usize>,
    /// `https://`: accept any server certificate (like `curl -k`), for self-signed test servers.
    pub insecure: bool,
    /// Keep each successful response body in its [`Reply`](crate::Reply). Off for large runs that
    /// do not print bodies, so memory stays small.
    pub keep_bodies: bool,
    /// Keep every outcome in the [`Report`](crate::Report). Off, outcomes still reach the
    /// callback one by one and the summary still counts each, but none is kept: a run of any
    /// length needs memory for the requests in flight only (and a bit per request).
    pub keep_outcomes: bool,
    /// The most bytes of one response body read, by every runner; a longer body fails the
    /// request as [`ErrorKind::BodyTooLarge`], at once when its `Content-Length` says so.
    pub max_response_bytes: u64,
}

impl Default for RequestOptions {
    fn default() -> RequestOptions {
        RequestOptions {
            timeout: None,
            connect_timeout: Duration::from_secs(10),
            concurrency: None,
            threads: None,
            http2: false,
            connections: None,
            insecure: false,
            keep_bodies: true,
            keep_outcomes: true,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl RequestOptions {
    /// The most requests `mode` can have in flight for a workload of `requests`, when the options
    /// limit it below that: what the ideal wall time is computed for.
    pub fn slots(&self, mode: Mode, requests: usize) -> Option<usize> {
        let limit = match mode {
            Mode::Sequential => Some(1),
            Mode::Threads => Some(self.threads.unwrap_or(DEFAULT_MAX_THREADS)),
            Mode::Async if self.http2 => self.concurrency,
            Mode::Async => match (self.concurrency, self.connections) {
                (Some(k), Some(n)) => Some(k.min(n)),
                (k, n) => k.or(n),
            },
        };
        limit.map(|l| l.max(1)).filter(|&l| l < requests)
    }
}

/// Watches and steers a run from outside: how many requests are in flight, and a way to stop it.
///
/// Clones share the same run. Cancelling stops sending; requests in flight end as
/// [`ErrorKind::Cancelled`], and so does every request not yet sent.
#[derive(Debug, Clone, Default)]
pub struct Control {
    cancel: CancellationToken,
    gauge: Arc<Gauge>,
}

/// The counts behind [`Control`]'s view of a run.
#[derive(Debug, Default)]
struct Gauge {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    started: AtomicUsize,
}

impl Control {
    /// A control for a new run.
    pub fn new() -> Control {
        Control::default()
    }

    /// Stops the run: nothing more is sent, and what is in flight is abandoned.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether [`cancel`](Control::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Requests sent and not yet finished, right now.
    pub fn in_flight(&self) -> usize {
        self.gauge.in_flight.load(Ordering::Relaxed)
    }

    /// Most requests in flight at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.gauge.peak.load(Ordering::Relaxed)
    }

    /// Requests whose sending began so far, finished or not. Never decreases: with the count of
    /// outcomes received it gives a count in flight that cannot lag behind them.
    pub fn started(&self) -> usize {
        self.gauge.started.load(Ordering::Relaxed)
    }

    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Counts a request as in flight until the guard drops.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let gauge = &*self.gauge;
        gauge.started.fetch_add(1, Ordering::Relaxed);
        let now = gauge.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        gauge.peak.fetch_max(now, Ordering::Relaxed);
        InFlight(&gauge.in_flight)
    }
}

/// One request in flight; see [`Control::enter`].
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the workers sending to one server share. A run has one; an async run to several servers
/// has one per server, each with its own connections.
pub(crate) struct Shared {
    pub workload: Arc<Workload>,
    pub options: RequestOptions,
    pub origin: Instant,
    pub control: Control,
    pub outcomes: UnboundedSender<Outcome>,
    /// The server these workers send to (the async runners; the blocking ones follow each
    /// target's server).
    pub endpoint: Endpoint,
    /// Its base URL, for error messages.
    pub base_url: String,
    /// The `Host` header, made once.
    pub host: http::HeaderValue,
    /// Every request is a slowlab delay request, so every answer is a few dozen bytes.
    pub small_answers: bool,
    /// TLS settings, for an `https://` server of the async runners.
    pub tls: Option<tls::Tls>,
    /// The requests these workers send, in order: `None` for all of the workload's.
    queue: Option<Box<[u32]>>,
    /// The position in the queue of the next request not yet taken by a worker.
    next: AtomicUsize,
}

impl Shared {
    /// Takes the next request to send, or `None` when all are taken or the run was cancelled.
    pub fn take(&self) -> Option<usize> {
        if self.control.is_cancelled() {
            return None;
        }
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        match &self.queue {
            None => (position < self.workload.targets.len()).then_some(position),
            Some(queue) => queue.get(position).map(|&index| index as usize),
        }
    }

    /// How many requests these workers send.
    pub fn len(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(self.workload.targets.len(), |queue| queue.len())
    }

    /// Time since the run's start.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Reports an outcome; `false` when nobody listens any more.
    pub fn report(&self, outcome: Outcome) -> bool {
        self.outcomes.send(outcome).is_ok()
    }

    /// Reports `error` for every request not yet taken.
    pub fn fail_the_rest(&self, error: &FetchError) {
        while let Some(index) = self.take() {
            let outcome = Outcome::unfinished(index, self.now(), error.clone());
            if !self.report(outcome) {
                return;
            }
        }
    }

    /// Resolves the server once; on failure reports every request as failed.
    pub async fn resolve(&self) -> Option<Arc<[SocketAddr]>> {
        match self.endpoint.resolve().await {
            Ok(addrs) => Some(addrs.into()),
            Err(err) => {
                self.fail_the_rest(&FetchError::new(
                    ErrorKind::Other,
                    format!("cannot resolve {}: {err}", self.endpoint.authority()),
                ));
                None
            }
        }
    }
}

/// The parts of a run that [`Shared`] is made from.
struct Run {
    workload: Arc<Workload>,
    options: RequestOptions,
    origin: Instant,
    control: Control,
    outcomes: UnboundedSender<Outcome>,
}

impl Run {
    /// What the workers sending `queue` (`None`: every request) to `endpoint` share. An `https://`
    /// endpoint of the async runners gets its TLS settings; without them every request of the
    /// queue fails, and there is nothing to share.
    fn share(
        &self,
        mode: Mode,
        endpoint: &Endpoint,
        queue: Option<Box<[u32]>>,
    ) -> Option<Arc<Shared>> {
        let host = http::HeaderValue::try_from(endpoint.authority())
            .unwrap_or_else(|_| http::HeaderValue::from_static("localhost"));
        let tls = (mode == Mode::Async && endpoint.is_tls())
            .then(|| tls::Tls::new(endpoint.host(), self.options.http2, self.options.insecure));
        let shared = move |tls| Shared {
            workload: Arc::clone(&self.workload),
            options: self.options,
            origin: self.origin,
            control: self.control.clone(),
            outcomes: self.outcomes.clone(),
            endpoint: endpoint.clone(),
            base_url: endpoint.base_url(),
            host,
            small_answers: self.workload.all_delays(),
            tls,
            queue,
            next: AtomicUsize::new(0),
        };
        match tls {
            None => Some(Arc::new(shared(None))),
            Some(Ok(tls)) => Some(Arc::new(shared(Some(tls)))),
            Some(Err(message)) => {
                shared(None).fail_the_rest(&FetchError::new(ErrorKind::Other, message));
                None
            }
        }
    }
}

/// Starts sending `workload` in `mode`; outcomes arrive on `outcomes`, timed from `origin`.
///
/// Returns at once. The channel closes when every request has its outcome (or its worker is gone,
/// which the collector turns into an outcome of its own).
///
/// The blocking runners send every request in order, to whichever server it names. The async
/// runners send each server's requests on connections of their own, with the concurrency and
/// connection options applying to each server, as a browser limits connections per host.
pub(crate) fn start(
    mode: Mode,
    workload: Arc<Workload>,
    options: RequestOptions,
    origin: Instant,
    control: Control,
    outcomes: UnboundedSender<Outcome>,
) {
    let run = Run {
        workload,
        options,
        origin,
        control,
        outcomes,
    };
    let total = run.workload.targets.len();
    let threads = match mode {
        Mode::Sequential => 1,
        Mode::Threads => options
            .threads
            .unwrap_or(total.min(DEFAULT_MAX_THREADS))
            .clamp(1, total.max(1)),
        Mode::Async if run.workload.servers().len() == 1 => {
            if let Some(shared) = run.share(mode, run.workload.endpoint(), None) {
                start_async(shared);
            }
            return;
        }
        Mode::Async => {
            for queue in run.workload.by_server() {
                let target = &run.workload.targets[queue[0] as usize];
                let endpoint = run.workload.server_of(target).clone();
                if let Some(shared) = run.share(mode, &endpoint, Some(queue.into())) {
                    start_async(shared);
                }
            }
            return;
        }
    };
    if let Some(shared) = run.share(mode, run.workload.endpoint(), None) {
        blocking::start(shared, threads, mode == Mode::Threads);
    }
}

/// Starts the async runner the options ask for, for the requests of `shared`.
fn start_async(shared: Arc<Shared>) {
    let options = shared.options;
    if options.http2 {
        tokio::spawn(http2::run(shared));
        return;
    }
    match options.slots(Mode::Async, usize::MAX) {
        None => {
            tokio::spawn(async_tasks::run(shared));
        }
        Some(connections) => {
            let connections = connections.min(shared.len().max(1));
            tokio::spawn(http1::run_pool(shared, connections));
        }
    }
}
