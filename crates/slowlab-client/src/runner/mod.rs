//! The runners: the same workload, sent one after another or all at once.
//!
//! Every runner reports each request's [`Outcome`] over one channel, as it happens; it never prints or
//! aggregates. The collector on the other end does that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::outcome::Outcome;
use crate::workload::Workload;

mod async_tasks;
mod sequential;

/// How a workload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One blocking client on one thread, one request after another (`requests` in a loop).
    Sequential,
    /// Every request at once as tokio tasks on one runtime (`asyncio.gather`).
    Async,
}

impl Mode {
    /// Lower-case name, as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Async => "async",
        }
    }
}

/// Per-request settings shared by all runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOptions {
    /// Total time allowed per request; `None` waits as long as the server takes.
    pub timeout: Option<Duration>,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
}

impl Default for RequestOptions {
    fn default() -> RequestOptions {
        RequestOptions {
            timeout: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts sending `workload` in `mode`; outcomes arrive on `outcomes`, timed from `origin`.
///
/// Returns at once. The channel closes when every request has its outcome (or its worker is gone,
/// which the collector turns into an outcome of its own).
pub(crate) fn start(
    mode: Mode,
    workload: Arc<Workload>,
    options: RequestOptions,
    origin: Instant,
    outcomes: UnboundedSender<Outcome>,
) {
    match mode {
        Mode::Sequential => {
            tokio::task::spawn_blocking(move || {
                sequential::run(&workload, options, origin, &outcomes)
            });
        }
        Mode::Async => {
            tokio::spawn(async_tasks::run(workload, options, origin, outcomes));
        }
    }
}
