//! Request metrics: lock-free counters on the hot path, the Prometheus text format on scrape.
//!
//! Every request touches a few relaxed atomics and nothing else; `/metrics` reads them into
//! `prometheus-client`'s encoder (a [`Collector`] that builds its values at scrape time), so the
//! format's escaping and naming rules come from the maintained crate, not from us.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How a request ended, the `outcome` label of `slowlab_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (whatever the status asked for with `status=`).
    Ok,
    /// The client went away before the answer was complete.
    Cancelled,
    /// A fault was served instead of an answer.
    Fault,
    /// Refused with a JSON 4xx.
    Rejected,
    /// Refused with a 503 because `--max-in-flight` requests were already in flight.
    OverCapacity,
}

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Ok, "ok"),
    (Outcome::Cancelled, "cancelled"),
    (Outcome::Fault, "fault"),
    (Outcome::Rejected, "rejected"),
    (Outcome::OverCapacity, "over_capacity"),
];

/// Why the server closed a connection on its own, the `reason` label of
/// `slowlab_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The request headers (or, over HTTP/2, the preface and first SETTINGS) did not arrive within
    /// `--header-read-timeout`.
    HeaderTimeout,
    /// Nothing in flight and nothing received for `--idle-timeout`.
    Idle,
    /// A response write made no progress for `--write-timeout`.
    WriteTimeout,
    /// HTTP/2: the client sent more than the server takes (streams reset before they were
    /// served, a header block past its limit, more stream errors than allowed), and was told
    /// GOAWAY `ENHANCE_YOUR_CALM`.
    H2Flood,
    /// HTTP/2: a frame broke the protocol (a flow-control window past 2^31-1, a setting out of
    /// range, a malformed frame), and the client was told GOAWAY with that error.
    H2ProtocolError,
    /// Still open when the drain on shutdown ran out of time (`--drain-timeout`).
    DrainTimeout,
}

const CLOSE_REASONS: [(CloseReason, &str); 6] = [
    (CloseReason::HeaderTimeout, "header_timeout"),
    (CloseReason::Idle, "idle"),
    (CloseReason::WriteTimeout, "write_timeout"),
    (CloseReason::H2Flood, "h2_flood"),
    (CloseReason::H2ProtocolError, "h2_protocol_error"),
    (CloseReason::DrainTimeout, "drain_timeout"),
];

impl Outcome {
    /// The word for it in the `outcome` label (and in the request log).
    pub fn as_str(self) -> &'static str {
        OUTCOMES
            .iter()
            .find(|(outcome, _)| *outcome == self)
            .map_or("unknown", |(_, word)| word)
    }
}

/// Statuses 100 to 599, one counter per status and outcome.
const STATUSES: usize = 500;

/// Upper bounds of the requested-delay histogram, in seconds.
const DELAY_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Upper bounds of the lateness histogram, in seconds: 50 µs to 1 s. Steps of 100 µs up to 1 ms,
/// so that a p99 read from the buckets tells 0.9 ms from 1 ms (the 1 ms target); steps of 0.25 ms
/// to 2 ms, where a timer with 1 ms ticks under load lands; then steps of at most a third up to
/// 50 ms, so that a tail read from the buckets is known within a third, not a factor of 2.5; 1-2-5
/// steps above. Bounds are only ever added, so that a scraper's stored series stay comparable.
const LATENESS_BUCKETS: [f64; 38] = [
    0.00005, 0.0001, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0007, 0.00075, 0.0008,
    0.0009, 0.001, 0.00125, 0.0015, 0.00175, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.0075,
    0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0,
];

/// A histogram of atomics: one counter per bucket (not cumulative) plus the overflow, and the sum
/// in nanoseconds.
#[derive(Debug)]
struct AtomicHistogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn encode(&self, name: &str, help: &str, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .chain(std::iter::once(&f64::INFINITY))
            .zip(self.counts.iter())
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        // The encoder adds the +Inf bucket from the total count.
        buckets.pop();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        metric.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// The server's metrics. Held in [`crate::Stats`], so they outlive a scrape and live as long as
/// the server.
#[derive(Debug)]
pub struct Metrics {
    requests: Box<[AtomicU64]>,
    requested_delay: AtomicHistogram,
    lateness: AtomicHistogram,
    connections_open: AtomicI64,
    connections_closed: [AtomicU64; CLOSE_REASONS.len()],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: (0..STATUSES * OUTCOMES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            requested_delay: AtomicHistogram::new(&DELAY_BUCKETS),
            lateness: AtomicHistogram::new(&LATENESS_BUCKETS),
            connections_open: AtomicI64::new(0),
            connections_closed: Default::default(),
        }
    }
}

impl Metrics {
    /// Counts one request by status and outcome.
    pub fn count(&self, status: u16, outcome: Outcome) {
        let Some(row) = usize::from(status)
            .checked_sub(100)
            .filter(|r| *r < STATUSES)
        else {
            return;
        };
        let column = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.requests[row * OUTCOMES.len() + column].fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests ended with this status and outcome so far.
    pub fn requests(&self, status: u16, outcome: Outcome) -> u64 {
        let Some(row) = usize::from(status)
            .checked_sub(100)
            .filter(|r| *r < STATUSES)
        else {
            return 0;
        };
        let column = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.requests[row * OUTCOMES.len() + column].load(Ordering::Relaxed)
    }

    /// How many requests ended so far, whatever their status and outcome: the sum of
    /// `slowlab_requests_total`.
    pub fn requests_total(&self) -> u64 {
        self.requests
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn observe_requested(&self, delay: Duration) {
        self.requested_delay.observe(delay);
    }

    pub(crate) fn observe_lateness(&self, lateness: Duration) {
        self.lateness.observe(lateness);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed_by_server(&self, reason: CloseReason) {
        self.connections_closed[close_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many connections the server closed for `reason` so far.
    pub fn connections_closed(&self, reason: CloseReason) -> u64 {
        self.connections_closed[close_index(reason)].load(Ordering::Relaxed)
    }

    /// Connections open right now.
    pub fn connections_open(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Renders every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self, in_flight: u64, model: &str) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape {
            // A scrape is rare; copying the counters keeps the collector 'static.
            requests: self
                .requests
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            histograms: [
                (
                    "slowlab_requested_delay_seconds",
                    "Delay asked for in the request path, in seconds.",
                    snapshot(&self.requested_delay),
                ),
                (
                    "slowlab_lateness_seconds",
                    "Time actually waited minus the delay planned, in seconds.",
                    snapshot(&self.lateness),
                ),
            ],
            in_flight,
            connections_open: self.connections_open(),
            connections_closed: CLOSE_REASONS.map(|(reason, _)| self.connections_closed(reason)),
            model: model.to_owned(),
        }));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

fn close_index(reason: CloseReason) -> usize {
    CLOSE_REASONS
        .iter()
        .position(|(r, _)| *r == reason)
        .unwrap_or(0)
}

fn snapshot(histogram: &AtomicHistogram) -> AtomicHistogram {
    AtomicHistogram {
        bounds: histogram.bounds,
        counts: histogram
            .counts
            .iter()
            .map(|c| AtomicU64::new(c.load(Ordering::Relaxed)))
            .collect(),
        sum_nanos: AtomicU64::new(histogram.sum_nanos.load(Ordering::Relaxed)),
    }
}

/// The values of one scrape.
#[derive(Debug)]
struct Scrape {
    requests: Vec<u64>,
    histograms: [(&'static str, &'static str, AtomicHistogram); 2],
    in_flight: u64,
    connections_open: i64,
    connections_closed: [u64; CLOSE_REASONS.len()],
    model: String,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let info = ConstGauge::new(1i64);
        let mut metric = encoder.encode_descriptor(
            "slowlab_info",
            "The handler model and version of this server.",
            None,
            MetricType::Gauge,
        )?;
        info.encode(metric.encode_family(&[
            ("model", self.model.as_str()),
            ("version", env!("CARGO_PKG_VERSION")),
        ])?)?;

        let mut metric = encoder.encode_descriptor(
            "slowlab_requests",
            "Requests to the delay endpoint and refusals, by status and outcome (ok, cancelled, fault, rejected, over_capacity).",
            None,
            MetricType::Counter,
        )?;
        for (index, value) in self.requests.iter().enumerate() {
            if *value == 0 {
                continue;
            }
            let status = (index / OUTCOMES.len() + 100).to_string();
            let outcome = OUTCOMES[index % OUTCOMES.len()].1;
            ConstCounter::new(*value).encode(
                metric.encode_family(&[("status", status.as_str()), ("outcome", outcome)])?,
            )?;
        }

        let gauge = ConstGauge::new(i64::try_from(self.in_flight).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor(
            "slowlab_in_flight",
            "Requests being handled right now (waiting or answering).",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.connections_open).encode(encoder.encode_descriptor(
            "slowlab_connections_open",
            "Client connections open right now.",
            None,
            MetricType::Gauge,
        )?)?;
        let mut metric = encoder.encode_descriptor(
            "slowlab_connections_closed",
            "Connections the server closed on its own, by reason (header_timeout, idle, write_timeout, h2_flood, h2_protocol_error, drain_timeout).",
            None,
            MetricType::Counter,
        )?;
        for ((_, reason), value) in CLOSE_REASONS.iter().zip(self.connections_closed) {
            ConstCounter::new(value).encode(metric.encode_family(&[("reason", *reason)])?)?;
        }

        for (name, help, histogram) in &self.histograms {
            histogram.encode(name, help, &mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_buckets_rise_and_tell_a_tail_within_a_third() {
        assert!(LATENESS_BUCKETS.windows(2).all(|pair| pair[0] < pair[1]));
        // From 2 ms (where the fine steps end) to 50 ms, each bound is at most a third above
        // the one before it, so a p99 read as a bucket's bound is that close to the truth.
        let tail = LATENESS_BUCKETS
            .iter()
            .copied()
            .filter(|bound| (0.002..=0.05).contains(bound))
            .collect::<Vec<_>>();
        assert_eq!(tail.first(), Some(&0.002));
        assert_eq!(tail.last(), Some(&0.05));
        for pair in tail.windows(2) {
            assert!(
                pair[1] / pair[0] <= 4.0 / 3.0 + 1e-9,
                "{} to {} is a step of more than a third",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn a_lateness_lands_in_the_first_bucket_that_holds_it() {
        let histogram = AtomicHistogram::new(&LATENESS_BUCKETS);
        histogram.observe(Duration::from_micros(13_000));
        let at = LATENESS_BUCKETS.iter().position(|b| *b == 0.015).unwrap();
        let counts: Vec<u64> = histogram
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(
            counts[at], 1,
            "13 ms belongs in the 15 ms bucket: {counts:?}"
        );
        assert_eq!(counts.iter().sum::<u64>(), 1);
    }
}
