//! What a run amounts to: wall time against the ideal for its mode.

use std::time::Duration;

use serde::Serialize;

use crate::outcome::Outcome;
use crate::runner::Mode;
use crate::workload::Workload;

/// The totals of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// How the workload was sent.
    pub mode: Mode,
    /// Number of requests (always equal to the number of outcomes).
    pub requests: usize,
    /// Requests that succeeded.
    pub ok: usize,
    /// Requests that failed.
    pub failed: usize,
    /// From the first request's start to the last outcome.
    #[serde(serialize_with = "as_secs")]
    pub wall: Duration,
    /// Sum of the requested delays.
    #[serde(serialize_with = "as_secs")]
    pub sum_of_delays: Duration,
    /// Longest requested delay.
    #[serde(serialize_with = "as_secs")]
    pub max_delay: Duration,
    /// The best wall time this mode could reach: the sum for sequential, the max for async.
    #[serde(serialize_with = "as_secs")]
    pub ideal: Duration,
    /// `ideal / wall`: 1.0 is perfect, lower means time lost to overhead.
    pub efficiency: f64,
}

impl Summary {
    /// Summarises the outcomes of one run of `workload` in `mode`.
    pub fn new(mode: Mode, workload: &Workload, outcomes: &[Outcome], wall: Duration) -> Summary {
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        let ideal = match mode {
            Mode::Sequential => workload.sum_of_delays(),
            Mode::Async => workload.max_delay(),
        };
        Summary {
            mode,
            requests: outcomes.len(),
            ok,
            failed: outcomes.len() - ok,
            wall,
            sum_of_delays: workload.sum_of_delays(),
            max_delay: workload.max_delay(),
            ideal,
            efficiency: ratio(ideal, wall),
        }
    }
}

/// `a / b` in seconds; 0 when `b` is zero.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
