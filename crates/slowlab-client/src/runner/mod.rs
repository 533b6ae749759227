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
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

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
    /// Wait for open-loop due times on tokio's timer alone (whole milliseconds: 0 to 2 ms late)
    /// instead of [`slowlab_timer`], which sends within microseconds of the due time. For tests
    /// on tokio's paused clock, which that timer does not follow.
    pub coarse_timer: bool,
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
            coarse_timer: false,
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
    /// One past the highest request index taken by a worker so far.
    taken: AtomicUsize,
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

    /// One past the highest request index any worker took: in a run for a time, the requests
    /// that may have an outcome are those below it.
    pub(crate) fn taken(&self) -> usize {
        self.gauge.taken.load(Ordering::Relaxed)
    }

    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// A future that ends when the run is cancelled, for a worker to keep across all its
    /// requests: it registers with the token once, on its first poll, where a
    /// [`cancelled`](Control::cancelled) per request would lock the token's waiter list twice
    /// for every request (to register, then to unregister). It may be polled again once ended.
    pub(crate) fn watch(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Counts a request as in flight until the guard drops.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let gauge = &*self.gauge;
        gauge.started.fetch_add(1, Ordering::Relaxed);
        let now = gauge.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        gauge.peak.fetch_max(now, Ordering::Relaxed);
        InFlight(&gauge.in_flight)
    }

    /// Counts out a request that [`enter`](Control::enter) counted in and whose guard was
    /// forgotten, for a request that keeps no guard of its own (an HTTP/2 stream).
    pub(crate) fn leave(&self) {
        self.gauge.in_flight.fetch_sub(1, Ordering::Relaxed);
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
    /// Takes the next request to send, or `None` when all are taken, the run was cancelled or
    /// its time is up. Takes no notice of a rate: see [`take_when_due`](Shared::take_when_due).
    pub fn take(&self) -> Option<usize> {
        if self.control.is_cancelled() || self.time_is_up() {
            return None;
        }
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        let index = self.at(position)?;
        self.control
            .gauge
            .taken
            .fetch_max(index + 1, Ordering::Relaxed);
        Some(index)
    }

    /// The request at `position` of the queue.
    fn at(&self, position: usize) -> Option<usize> {
        match &self.queue {
            None => (position < self.workload.targets.len()).then_some(position),
            Some(queue) => queue.get(position).map(|&index| index as usize),
        }
    }

    /// Whether a closed-loop run for a time has reached its end: no new request starts.
    fn time_is_up(&self) -> bool {
        self.workload
            .pace
            .until
            .is_some_and(|until| self.scheduler_now() >= until)
    }

    /// Time since the run's start on tokio's clock, which the schedule's sleeps use (and which
    /// a test may pause); the same as [`now`](Shared::now) otherwise.
    fn scheduler_now(&self) -> Duration {
        tokio::time::Instant::now()
            .into_std()
            .saturating_duration_since(self.origin)
    }

    /// Takes the next request and, in an open-loop run, waits until it is due. `None` as for
    /// [`take`](Shared::take), or when the run is cancelled while waiting.
    ///
    /// Each worker waits for the request it took; requests are taken in the order they are due,
    /// so a request is late (has send lag) only when every worker was busy at its time.
    pub async fn take_when_due(&self) -> Option<usize> {
        let index = self.take()?;
        let Some(due) = self.workload.scheduled_at(index) else {
            return Some(index);
        };
        tokio::select! {
            biased;
            () = self.control.cancelled() => None,
            () = self.sleep_until(self.origin + due) => Some(index),
        }
    }

    /// Waits until `when`, a request's due time, on the timer the options ask for.
    pub async fn sleep_until(&self, when: Instant) {
        if self.options.coarse_timer {
            tokio::time::sleep_until(when.into()).await;
        } else {
            slowlab_timer::sleep_until(when).await;
        }
    }

    /// Takes the next request if it is due now; otherwise says when it will be. For workers that
    /// have other things to do while they wait (an HTTP/2 connection's streams).
    pub fn take_if_due(&self) -> Due {
        if self.workload.pace.rate.is_none() {
            return self.take().map_or(Due::Done, Due::Now);
        }
        loop {
            if self.control.is_cancelled() {
                return Due::Done;
            }
            let position = self.next.load(Ordering::Relaxed);
            let Some(index) = self.at(position) else {
                return Due::Done;
            };
            let Some(due) = self.workload.scheduled_at(index) else {
                return Due::Done;
            };
            if due > self.scheduler_now() {
                return Due::At(self.origin + due);
            }
            if self
                .next
                .compare_exchange(position, position + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.control
                    .gauge
                    .taken
                    .fetch_max(index + 1, Ordering::Relaxed);
                return Due::Now(index);
            }
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

/// What [`Shared::take_if_due`] found.
pub(crate) enum Due {
    /// This request, due now or earlier: send it.
    Now(usize),
    /// The next request is due at this instant.
    At(Instant),
    /// Nothing more to send.
    Done,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Rate;

    /// Workers sharing one open-loop run, on a paused clock: what each took and when.
    fn paced(rate: &str, count: usize) -> (Arc<Shared>, tokio::time::Instant) {
        let endpoint = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let workload = Workload::repeat(endpoint, count, Duration::ZERO)
            .at_rate(Rate::parse(rate).unwrap(), None);
        let origin = tokio::time::Instant::now();
        let (sender, _) = tokio::sync::mpsc::unbounded_channel();
        let run = Run {
            workload: Arc::new(workload),
            options: RequestOptions {
                coarse_timer: true,
                ..RequestOptions::default()
            },
            origin: origin.into_std(),
            control: Control::new(),
            outcomes: sender,
        };
        let shared = run
            .share(Mode::Async, run.workload.endpoint(), None)
            .unwrap();
        (shared, origin)
    }

    #[tokio::test(start_paused = true)]
    async fn the_ith_request_is_taken_at_i_over_r() {
        let (shared, origin) = paced("40", 100);
        let mut starts = Vec::new();
        while let Some(index) = shared.take_when_due().await {
            starts.push((index, origin.elapsed()));
        }
        assert_eq!(starts.len(), 100);
        for (i, (index, at)) in starts.into_iter().enumerate() {
            assert_eq!(index, i);
            let expected = Duration::from_secs_f64(i as f64 / 40.0);
            let off = at.abs_diff(expected);
            assert!(
                off <= Duration::from_millis(1),
                "#{i} at {at:?}, due {expected:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn busy_workers_take_late_requests_at_once_and_never_early() {
        // Two workers, each busy 100 ms per request, at 40/s: 20/s is all they can send, so
        // requests fall further and further behind but none goes before it is due.
        let (shared, origin) = paced("40", 40);
        let workers = (0..2).map(|_| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut taken = Vec::new();
                while let Some(index) = shared.take_when_due().await {
                    taken.push((index, origin.elapsed()));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                taken
            })
        });
        let mut taken = Vec::new();
        for worker in workers {
            taken.extend(worker.await.unwrap());
        }
        taken.sort();
        assert_eq!(taken.len(), 40);
        for &(index, at) in &taken {
            let due = Duration::from_secs_f64(index as f64 / 40.0);
            assert!(
                at >= due,
                "#{index} sent at {at:?}, before it was due at {due:?}"
            );
        }
        let (_, last) = taken[39];
        assert!(
            last >= Duration::from_millis(1900),
            "two workers send 20/s: {last:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn take_if_due_says_when_the_next_is_due() {
        let (shared, origin) = paced("10", 3);
        assert!(matches!(shared.take_if_due(), Due::Now(0)));
        let Due::At(when) = shared.take_if_due() else {
            panic!("#1 is not due yet");
        };
        assert_eq!(
            when.duration_since(origin.into_std()),
            Duration::from_millis(100)
        );
        tokio::time::sleep_until(when.into()).await;
        assert!(matches!(shared.take_if_due(), Due::Now(1)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(matches!(shared.take_if_due(), Due::Now(2)));
        assert!(matches!(shared.take_if_due(), Due::Done));
    }
}
