//! Counters of the TCP proxy, for `/metrics` and for tests: relaxed atomics, read as a snapshot.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

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
    pub(crate) closed_by_down: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpStatsSnapshot {
    /// Connections accepted, including those reset because `down` came as they were accepted.
    pub accepted: u64,
    /// Connections open now (proxied to the service or waiting for it).
    pub open: u64,
    /// Connections accepted and reset because of `down`: those accepted just as it came, or all of
    /// them where the listening socket cannot be stopped (not Linux). Where it can, the kernel
    /// refuses the rest, and they are not counted.
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
    /// Connections that were open when `down` came, and so closed.
    pub closed_by_down: u64,
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
            closed_by_down: read(&self.closed_by_down),
        }
    }
}

impl TcpStatsSnapshot {
    /// The counters in the Prometheus text format, for the proxy's `/metrics`:
    /// `slowlab_tcp_connections_accepted_total`, `slowlab_tcp_connections_open`,
    /// `slowlab_tcp_connections_ended_total{reason}` (`refused`, `upstream_failed`, `reset`,
    /// `timeout`, `cut_off`, `down`) and `slowlab_tcp_bytes_total{direction}` (`upstream`, `downstream`).
    pub fn render_metrics(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(*self));
        let mut text = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

impl Collector for TcpStatsSnapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let accepted = encoder.encode_descriptor(
            "slowlab_tcp_connections_accepted",
            "Connections the TCP proxy accepted, including those reset by `down` as they came.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.accepted).encode(accepted)?;
        let open = encoder.encode_descriptor(
            "slowlab_tcp_connections_open",
            "Connections open now.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(self.open).unwrap_or(i64::MAX)).encode(open)?;
        let mut ended = encoder.encode_descriptor(
            "slowlab_tcp_connections_ended",
            "Connections the proxy ended itself, by reason: refused (down), upstream_failed, \
             reset (reset_after or passed on), timeout, cut_off (at the drain deadline), down \
             (open when down came).",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in [
            ("refused", self.refused),
            ("upstream_failed", self.upstream_failed),
            ("reset", self.resets),
            ("timeout", self.timeouts),
            ("cut_off", self.cut_off),
            ("down", self.closed_by_down),
        ] {
            ConstCounter::new(count).encode(ended.encode_family(&[("reason", reason)])?)?;
        }
        let mut bytes = encoder.encode_descriptor(
            "slowlab_tcp_bytes",
            "Bytes written by the proxy: upstream (to the service), downstream (to clients).",
            None,
            MetricType::Counter,
        )?;
        for (direction, count) in [
            ("upstream", self.bytes_upstream),
            ("downstream", self.bytes_downstream),
        ] {
            ConstCounter::new(count).encode(bytes.encode_family(&[("direction", direction)])?)?;
        }
        Ok(())
    }
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
