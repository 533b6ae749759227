//! Live request counters, shared between the handlers and whoever embeds the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by every request. Cheap: a few relaxed atomics per request.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    started: AtomicU64,
    finished: AtomicU64,
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
    /// Requests whose handler finished (answered, refused, or abandoned by the client).
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

    /// Counts a request in; the returned guard counts it out when dropped, however the handler ends.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// One request in flight; see [`Stats::enter`].
pub(crate) struct InFlight(Arc<Stats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}
