//! `--output csv`: a header row, then one row per outcome as it ends.

use std::io::{self, Write};

use serde::Serialize;
use slowlab_client::{Outcome, Report, Workload};

use super::{OutcomeRecord, Sink};

/// One CSV row: the outcome record, flattened.
#[derive(Serialize)]
struct Row<'a> {
    index: u64,
    target: &'a str,
    delay: Option<f64>,
    ok: bool,
    status: Option<u16>,
    bytes: u64,
    time_elapsed: Option<f64>,
    start: f64,
    end: f64,
    latency: f64,
    slot_wait: f64,
    connect: Option<f64>,
    first_byte: Option<f64>,
    error_kind: Option<&'static str>,
    error_message: Option<&'a str>,
    /// After the earlier columns, so readers that go by column position still find them.
    url: &'a str,
    /// Open loop: when the request was due, and how late it went out; empty otherwise.
    scheduled_at: Option<f64>,
    send_lag: Option<f64>,
}

/// Writes a row per outcome.
pub struct CsvSink<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> CsvSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> CsvSink<W> {
        CsvSink {
            out: csv::Writer::from_writer(out),
        }
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn start(&mut self, _: &Workload) -> io::Result<()> {
        Ok(())
    }

    fn outcome(&mut self, workload: &Workload, outcome: &Outcome) -> io::Result<()> {
        let r = OutcomeRecord::new(workload, outcome);
        let row = Row {
            index: r.index,
            target: r.target,
            delay: r.delay,
            ok: r.ok,
            status: r.status,
            bytes: r.bytes,
            time_elapsed: r.time_elapsed,
            start: r.start,
            end: r.end,
            latency: r.latency,
            slot_wait: r.slot_wait,
            connect: r.connect,
            first_byte: r.first_byte,
            error_kind: r.error.as_ref().map(|e| e.kind.as_str()),
            error_message: r.error.as_ref().map(|e| e.message),
            url: &r.url,
            scheduled_at: r.scheduled_at,
            send_lag: r.send_lag,
        };
        self.out.serialize(row).map_err(into_io)
    }

    fn finish(&mut self, _: &Report) -> io::Result<()> {
        self.out.flush()
    }
}

/// The I/O error inside a CSV error, so a closed pipe stays recognisable as one.
fn into_io(err: csv::Error) -> io::Error {
    match err.into_kind() {
        csv::ErrorKind::Io(err) => err,
        other => io::Error::other(format!("{other:?}")),
    }
}
