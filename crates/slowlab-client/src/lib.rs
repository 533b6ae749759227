//! Clients for slow APIs: one workload, sent sequentially or all at once, with exactly one
//! [`Outcome`] per request.
//!
//! A run's path: [`Workload`] → runner ([`Mode`]) → one outcome channel → collector → your callback
//! and the [`Summary`].
//!
//! ```no_run
//! # #[tokio::main] async fn main() {
//! use std::time::Duration;
//! use slowlab_client::{Endpoint, Mode, RequestOptions, Workload, run};
//!
//! let endpoint = Endpoint::parse("http://127.0.0.1:8000").unwrap();
//! let delays = [Duration::from_secs(2), Duration::from_secs(1)];
//! let workload = Workload::from_delays(endpoint, &delays);
//! let report = run(Mode::Async, workload, RequestOptions::default(), |outcome| {
//!     println!("#{} done at {:?}", outcome.index, outcome.end);
//! })
//! .await;
//! println!("{:.2} s, efficiency {:.3}", report.summary.wall.as_secs_f64(), report.summary.efficiency.unwrap_or(0.0));
//! # }
//! ```

pub mod any_certificate;
mod collector;
pub mod histogram;
pub mod limits;
pub mod outcome;
mod runner;
pub mod schedule;
pub mod shard;
pub mod summary;
pub mod workload;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use outcome::{ErrorKind, FetchError, Outcome, Reply};
pub use runner::{Control, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_THREADS, Mode, RequestOptions};
pub use schedule::{Pace, Rate, RateError};
pub use summary::{ErrorCount, Percentiles, Summary, Tally};
pub use workload::{ARTICLE_DELAYS, Endpoint, EndpointError, Target, Targets, Workload};

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// The workload that was sent.
    pub workload: Arc<Workload>,
    /// When the run started on this host's clock (its outcomes' times are offsets from it).
    pub started_at: SystemTime,
    /// One per request, in the order they finished; empty when the run did not keep them
    /// ([`RequestOptions::keep_outcomes`]).
    pub outcomes: Vec<Outcome>,
    /// Whether `outcomes` holds every outcome: the run kept them.
    pub outcomes_kept: bool,
    /// Totals and the comparison with the ideal.
    pub summary: Summary,
}

/// Sends `workload` in `mode`, calling `on_outcome` as each request ends, and returns the report.
///
/// `workload` may come in an `Arc`, so a caller keeps it without a copy of every target.
///
/// Must be called inside a tokio runtime; the blocking runners use OS threads of their own.
pub async fn run(
    mode: Mode,
    workload: impl Into<Arc<Workload>>,
    options: RequestOptions,
    on_outcome: impl FnMut(&Outcome),
) -> Report {
    run_with(mode, workload, options, &Control::new(), on_outcome).await
}

/// [`run`], watched and steered through `control`: its in-flight count, and cancelling it (e.g. on
/// Ctrl-C) stops sending and ends every unfinished request as `cancelled`.
pub async fn run_with(
    mode: Mode,
    workload: impl Into<Arc<Workload>>,
    options: RequestOptions,
    control: &Control,
    on_outcome: impl FnMut(&Outcome),
) -> Report {
    let workload = workload.into();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let origin = Instant::now();
    let started_at = SystemTime::now();
    runner::start(
        mode,
        Arc::clone(&workload),
        options,
        origin,
        control.clone(),
        sender,
    );
    let keep = options.keep_outcomes;
    let collected =
        collector::collect(receiver, &workload, keep, control, origin, on_outcome).await;
    let wall = origin.elapsed();
    // A run for a time lists more requests than it sent: the report holds those it sent.
    let workload = if workload.pace.until.is_some() {
        Arc::new(workload.truncated(collected.tally.requests().max(control.taken())))
    } else {
        workload
    };
    let slots = options.slots(mode, workload.targets.len());
    let peak = if keep {
        summary::peak_concurrency(&collected.outcomes)
    } else {
        control.peak_in_flight()
    };
    let summary = collected.tally.summary(mode, slots, &workload, wall, peak);
    Report {
        workload,
        started_at,
        outcomes: collected.outcomes,
        outcomes_kept: keep,
        summary,
    }
}
