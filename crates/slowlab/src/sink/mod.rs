//! Where outcomes go: the terminal, JSON, NDJSON and CSV writers, and the progress bar.
//!
//! Every sink reads from the one collector's callback (an outcome as it ends) and from the final
//! report; none talks to the runners. Writers are injected, so tests can write to a buffer.

use std::io;
use std::time::Duration;

use serde::Serialize;
use slowlab_client::{Endpoint, ErrorKind, Outcome, Report, Workload};

pub mod csv;
pub mod json;
pub mod progress;
pub mod text;

/// A consumer of one run's outcomes.
pub trait Sink {
    /// Called once before the first request is sent.
    fn start(&mut self, workload: &Workload) -> io::Result<()>;
    /// Called for each outcome as it arrives, in completion order.
    fn outcome(&mut self, workload: &Workload, outcome: &Outcome) -> io::Result<()>;
    /// Called once with the whole report.
    fn finish(&mut self, report: &Report) -> io::Result<()>;
}

/// One outcome as machine output shows it: durations in float seconds from the run's start.
#[derive(Debug, Serialize)]
pub struct OutcomeRecord<'a> {
    /// Position in the workload (in the whole workload, for a shard of one).
    pub index: u64,
    /// Path requested, relative to its server's base URL.
    pub target: &'a str,
    /// The full URL requested.
    pub url: String,
    /// Requested delay, if a delay request.
    pub delay: Option<f64>,
    /// Whether it succeeded.
    pub ok: bool,
    /// HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    /// The `time_elapsed` echoed by the server.
    pub time_elapsed: Option<f64>,
    /// Start (after any slot wait), seconds from the run's start.
    pub start: f64,
    /// End, seconds from the run's start.
    pub end: f64,
    /// `end - start`.
    pub latency: f64,
    /// Time spent waiting for a slot before `start`.
    pub slot_wait: f64,
    /// Time to connect, when this request opened a connection.
    pub connect: Option<f64>,
    /// When the response head arrived, seconds from the run's start.
    pub first_byte: Option<f64>,
    /// Open loop (`--rate`): when the request was due, seconds from the run's start. Left out
    /// of closed-loop records (and so of the race's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<f64>,
    /// Open loop: `start - scheduled_at`, how late it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<f64>,
    /// Why it failed.
    pub error: Option<ErrorRecord<'a>>,
}

/// A failure in machine output.
#[derive(Debug, Serialize)]
pub struct ErrorRecord<'a> {
    /// Stable kind.
    pub kind: ErrorKind,
    /// For people.
    pub message: &'a str,
}

impl<'a> OutcomeRecord<'a> {
    /// The record of `outcome` of `workload`.
    pub fn new(workload: &'a Workload, outcome: &'a Outcome) -> OutcomeRecord<'a> {
        let target = workload.targets.get(outcome.index);
        let secs = Duration::as_secs_f64;
        let (time_elapsed, error) = match &outcome.result {
            Ok(reply) => (reply.time_elapsed, None),
            Err(err) => (
                None,
                Some(ErrorRecord {
                    kind: err.kind,
                    message: &err.message,
                }),
            ),
        };
        OutcomeRecord {
            index: workload.global_index(outcome.index),
            target: target.map_or("", |t| &t.path),
            url: target.map(|t| workload.url(t)).unwrap_or_default(),
            delay: target.and_then(|t| t.delay).map(|d| d.as_secs_f64()),
            ok: outcome.is_ok(),
            status: outcome.status,
            bytes: outcome.bytes,
            time_elapsed,
            start: secs(&outcome.start),
            end: secs(&outcome.end),
            latency: secs(&outcome.latency()),
            slot_wait: secs(&outcome.slot_wait),
            connect: outcome.connect.as_ref().map(secs),
            first_byte: outcome.first_byte.as_ref().map(secs),
            scheduled_at: outcome.scheduled.as_ref().map(secs),
            send_lag: outcome.send_lag().as_ref().map(secs),
            error,
        }
    }
}

/// What the workload was, in machine output.
#[derive(Debug, Serialize)]
pub struct WorkloadRecord {
    /// Base URL the relative paths join.
    pub base_url: String,
    /// The base URL, then every other server named by a full URL (`--urls`), in order of first
    /// appearance.
    pub servers: Vec<String>,
    /// HTTP method.
    pub method: String,
    /// Number of requests (of this shard, for a shard).
    pub requests: usize,
    /// A SHA-256 of what the whole workload sends (servers, method, headers, targets): reports
    /// merge only when their digests agree.
    pub digest: String,
    /// Open loop (`--rate`): the starting rate and the ramps; `null` in closed-loop runs.
    pub rate: Option<RateRecord>,
    /// A closed-loop run for a time (`--duration` without `--rate`): its length in seconds.
    pub duration: Option<f64>,
}

/// An open-loop run's rate in machine output.
#[derive(Debug, Serialize)]
pub struct RateRecord {
    /// As typed: `200` or `100,1000@30s`.
    pub text: String,
    /// Requests a second at the start.
    pub start: f64,
    /// Each ramps linearly from the rate before it to `rate` over `over` seconds.
    pub stages: Vec<StageRecord>,
}

/// One ramp of a [`RateRecord`].
#[derive(Debug, Serialize)]
pub struct StageRecord {
    /// Requests a second at the end of the stage.
    pub rate: f64,
    /// Its length, seconds.
    pub over: f64,
}

impl WorkloadRecord {
    /// The record of `workload`.
    pub fn new(workload: &Workload) -> WorkloadRecord {
        WorkloadRecord {
            base_url: workload.endpoint().base_url(),
            servers: workload.servers().iter().map(Endpoint::base_url).collect(),
            method: workload.method.to_string(),
            requests: workload.targets.len(),
            digest: workload.whole_digest(),
            rate: workload.pace.rate.as_ref().map(|rate| RateRecord {
                text: rate.to_string(),
                start: rate.start(),
                stages: rate
                    .stages()
                    .iter()
                    .map(|stage| StageRecord {
                        rate: stage.rate,
                        over: stage.over.as_secs_f64(),
                    })
                    .collect(),
            }),
            duration: workload.pace.until.map(|until| until.as_secs_f64()),
        }
    }
}
