//! The proxy's own metrics, next to serve's in `/metrics` on the admin port: requests by rule and
//! outcome, and the upstream's latency and the latency the proxy added as separate histograms.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a proxied request ended, the `outcome` label of `slowlab_proxy_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ProxyOutcome {
    /// The upstream's answer reached the client whole.
    Forwarded,
    /// A rule answered a status of its own; `before`: the upstream was not contacted.
    InjectedStatus,
    /// A rule served a fault (reset, hang-up, ...).
    InjectedFault,
    /// The upstream could not be reached or refused the connection: 502.
    UpstreamUnreachable,
    /// The upstream did not answer within `--upstream-timeout`: 504.
    UpstreamTimeout,
    /// The upstream's body broke off; the client's stream was cut too.
    UpstreamReset,
    /// The client went away before the answer was complete.
    Cancelled,
    /// Refused by the proxy (a loop, an ambiguous length, a transfer coding it cannot forward, a
    /// bad header): 4xx, 501 or 508.
    Rejected,
}

impl ProxyOutcome {
    /// How many outcomes there are.
    const COUNT: usize = ProxyOutcome::Rejected as usize + 1;

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyOutcome::Forwarded => "forwarded",
            ProxyOutcome::InjectedStatus => "injected_status",
            ProxyOutcome::InjectedFault => "injected_fault",
            ProxyOutcome::UpstreamUnreachable => "upstream_unreachable",
            ProxyOutcome::UpstreamTimeout => "upstream_timeout",
            ProxyOutcome::UpstreamReset => "upstream_reset",
            ProxyOutcome::Cancelled => "cancelled",
            ProxyOutcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Labels {
    rule: String,
    outcome: String,
}

/// The labels of the requests by `rule` (`none` when no rule matched) ending with `outcome`.
fn labels(rule: Option<&str>, outcome: ProxyOutcome) -> Labels {
    Labels {
        rule: rule.unwrap_or("none").to_owned(),
        outcome: outcome.as_str().to_owned(),
    }
}

/// Counters and histograms of the proxy. Cheap to update from every request.
#[derive(Debug)]
pub struct ProxyMetrics {
    requests: Family<Labels, Counter>,
    /// The counters of requests no rule matched, by outcome, taken from `requests` on first use:
    /// a request then counts without building its labels (two strings) or looking them up.
    unruled: [OnceLock<Counter>; ProxyOutcome::COUNT],
    upstream: Histogram,
    added: Histogram,
    /// Serialises scrapes; updates do not take it.
    scrape: Mutex<()>,
}

impl Default for ProxyMetrics {
    fn default() -> ProxyMetrics {
        // 50 µs to about 100 s, doubling.
        let buckets = || Histogram::new(exponential_buckets(0.000_05, 2.0, 22));
        ProxyMetrics {
            requests: Family::default(),
            unruled: Default::default(),
            upstream: buckets(),
            added: buckets(),
            scrape: Mutex::new(()),
        }
    }
}

impl ProxyMetrics {
    /// Counts one request by rule (`none` when no rule matched) and outcome.
    pub fn count(&self, rule: Option<&str>, outcome: ProxyOutcome) {
        match rule {
            // The series is created by the first such request, as for a rule's.
            None => self.unruled[outcome as usize]
                .get_or_init(|| self.requests.get_or_create(&labels(None, outcome)).clone())
                .inc(),
            Some(_) => self.requests.get_or_create(&labels(rule, outcome)).inc(),
        };
    }

    /// How many requests ended so, for tests and reports.
    pub fn requests(&self, rule: Option<&str>, outcome: ProxyOutcome) -> u64 {
        self.requests.get_or_create(&labels(rule, outcome)).get()
    }

    /// Records the upstream's time to its response head, and the time the proxy added to it.
    pub fn observe(&self, upstream: Duration, added: Duration) {
        self.upstream.observe(upstream.as_secs_f64());
        self.added.observe(added.as_secs_f64());
    }

    /// The proxy's metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let mut registry = Registry::default();
        registry.register(
            "slowlab_proxy_requests",
            "Proxied requests by rule (none: no rule matched) and outcome",
            self.requests.clone(),
        );
        registry.register(
            "slowlab_proxy_upstream_seconds",
            "Time from sending a request upstream to the upstream's response head, in seconds",
            self.upstream.clone(),
        );
        registry.register(
            "slowlab_proxy_added_seconds",
            "Time the proxy added before the response head (rule waits and its own work), in seconds",
            self.added.clone(),
        );
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &registry);
        text
    }
}
