//! Counters of the TCP proxy, for `/metrics` and for tests: relaxed atomics, read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the TCP proxy has done since it started. Share it as `Arc<TcpStats>`.
#[derive(Debug, Default)]
pub struct TcpStats {
    pub(crate) accepted: AtomicU64,
    pub(crate) open: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) upstream_failed: AtomicU64,
    pub(crate) bytes_upstream: AtomicU64,
    pub(crate) bytes_downstream: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) cut_off: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpStatsSnapshot {
    /// Connections accepted, including those refused by `down`.
    pub accepted: u64,
    /// Connections open now (proxied to the service or waiting for it).
    pub open: u64,
    /// Connections refused because of `down`.
    pub refused: u64,
    /// Connections closed because the service could not be reached.
    pub upstream_failed: u64,
    /// Bytes written to the service.
    pub bytes_upstream: u64,
    /// Bytes written to clients.
    pub bytes_downstream: u64,
    /// Connections reset: by `reset_after=`, or passing on a reset from one side to the other.
    pub resets: u64,
    /// Connections closed by `timeout=`.
    pub timeouts: u64,
    /// Connections still open when the drain on shutdown ran out, and so cut off.
    pub cut_off: u64,
}

impl TcpStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> TcpStatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TcpStatsSnapshot {
            accepted: read(&self.accepted),
            open: read(&self.open),
            refused: read(&self.refused),
            upstream_failed: read(&self.upstream_failed),
            bytes_upstream: read(&self.bytes_upstream),
            bytes_downstream: read(&self.bytes_downstream),
            resets: read(&self.resets),
            timeouts: read(&self.timeouts),
            cut_off: read(&self.cut_off),
        }
    }
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
