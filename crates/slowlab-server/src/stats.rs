//! Live request counters, shared between the handlers and whoever embeds the server.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::delay::Delay;
use crate::metrics::{Metrics, Outcome};
use crate::request_log::RequestInfo;

/// Counters updated by every request. Cheap: a few relaxed atomics per request.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    started: AtomicU64,
    finished: AtomicU64,
    metrics: Metrics,
}

/// A consistent-enough copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Requests being handled right now (waiting or answering).
    pub in_flight: u64,
    /// The most requests ever handled at the same time.
    pub peak_in_flight: u64,
    /// Requests that reached a handler.
    pub started: u64,
    /// Requests whose handler finished (answered, faulted, or abandoned by the client; refusals
    /// never start).
    pub finished: u64,
}

impl Stats {
    /// Reads the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
            finished: self.finished.load(Ordering::Relaxed),
        }
    }

    /// The request metrics served at `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts a delay request in; the returned record counts it out when dropped, however the
    /// request ends: with the outcome given to [`Record::finish`], or as cancelled when the client
    /// went away first (the handler or body future was dropped).
    ///
    /// With `max_in_flight`, a request that would go over it is not counted in: `None`.
    pub(crate) fn try_record(
        self: &Arc<Self>,
        status: u16,
        requested: Delay,
        max_in_flight: Option<u64>,
    ) -> Option<Record> {
        let max = max_in_flight.unwrap_or(u64::MAX);
        let before = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.started.fetch_add(1, Ordering::Relaxed);
        self.peak_in_flight.fetch_max(before + 1, Ordering::Relaxed);
        Some(Record {
            stats: Arc::clone(self),
            status,
            outcome: None,
            requested,
            started: Instant::now(),
            log: None,
            waited: Cell::new(None),
        })
    }
}

/// A request handled outside serve's router (by another [`crate::Handler`]) counted in flight;
/// counted out when dropped. See [`Stats::track`].
#[derive(Debug)]
pub struct InFlight {
    stats: Arc<Stats>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.stats.finished.fetch_add(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Counts a request in flight until the returned guard is dropped, so that the drain on
    /// shutdown waits for it and `/metrics` shows it. Its outcome is counted separately, with
    /// [`Metrics::count`].
    pub fn track(self: &Arc<Self>) -> InFlight {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        self.peak_in_flight.fetch_max(before + 1, Ordering::Relaxed);
        InFlight {
            stats: Arc::clone(self),
        }
    }
}

/// One delay request in flight; see [`Stats::record`].
#[derive(Debug)]
pub(crate) struct Record {
    stats: Arc<Stats>,
    status: u16,
    outcome: Option<Outcome>,
    requested: Delay,
    started: Instant,
    /// The request log's notes on the request, when the log is on.
    log: Option<Box<RequestInfo>>,
    /// How long the request actually waited, for the log.
    waited: Cell<Option<Duration>>,
}

impl Record {
    /// Writes the request's log line when it ends (see [`crate::request_log`]).
    pub(crate) fn logged(mut self, log: Option<Box<RequestInfo>>) -> Record {
        self.log = log;
        self
    }

    /// When the request was counted in.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Records the wait that was planned and how late it ended.
    pub(crate) fn waited(&self, planned: Duration, waited: Duration) {
        let metrics = &self.stats.metrics;
        metrics.observe_requested(self.requested.as_duration());
        metrics.observe_lateness(waited.saturating_sub(planned));
        self.waited.set(Some(waited));
    }

    /// Ends the request with `outcome`.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let stats = &self.stats;
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        stats.finished.fetch_add(1, Ordering::Relaxed);
        let outcome = self.outcome.unwrap_or(Outcome::Cancelled);
        stats.metrics.count(self.status, outcome);
        if let Some(log) = &self.log {
            // No status reached the client when it left first or a fault replaced the answer.
            let sent = matches!(outcome, Outcome::Ok | Outcome::Rejected).then_some(self.status);
            log.write(sent, outcome, self.waited.get());
        }
    }
}
