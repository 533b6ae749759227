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
//! println!("{:.2} s, efficiency {:.3}", report.summary.wall.as_secs_f64(), report.summary.efficiency);
//! # }
//! ```

mod collector;
pub mod outcome;
mod runner;
pub mod summary;
pub mod workload;

use std::sync::Arc;
use std::time::Instant;

pub use outcome::{ErrorKind, FetchError, Outcome, Reply};
pub use runner::{Mode, RequestOptions};
pub use summary::Summary;
pub use workload::{ARTICLE_DELAYS, Endpoint, EndpointError, Target, Workload};

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// The workload that was sent.
    pub workload: Arc<Workload>,
    /// One per request, in the order they finished.
    pub outcomes: Vec<Outcome>,
    /// Totals and the comparison with the ideal.
    pub summary: Summary,
}

/// Sends `workload` in `mode`, calling `on_outcome` as each request ends, and returns the report.
///
/// Must be called inside a tokio runtime; the sequential runner uses a blocking thread of its own.
pub async fn run(
    mode: Mode,
    workload: Workload,
    options: RequestOptions,
    on_outcome: impl FnMut(&Outcome),
) -> Report {
    let workload = Arc::new(workload);
    let total = workload.targets.len();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let origin = Instant::now();
    runner::start(mode, Arc::clone(&workload), options, origin, sender);
    let outcomes = collector::collect(receiver, total, on_outcome).await;
    let wall = origin.elapsed();
    let summary = Summary::new(mode, &workload, &outcomes, wall);
    Report {
        workload,
        outcomes,
        summary,
    }
}
