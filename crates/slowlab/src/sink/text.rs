//! Text for people, like the article: the list, each body as it arrives, the elapsed time, then a
//! summary.

use std::io::{self, Write};

use slowlab_client::{Outcome, Report, Workload};

use super::Sink;
use crate::render;

/// Most requests for which bodies are printed one per line by default.
pub const BODY_LINES_UP_TO: usize = 20;

/// Most error lines printed while bodies are not printed; the summary counts the rest.
const ERROR_LINES_UP_TO: usize = 10;

/// The terminal printer.
pub struct TextSink<W: Write> {
    out: W,
    /// Print each body (or error) as it arrives.
    bodies: bool,
    errors_printed: usize,
    /// Draw the latency histogram under the summary of a run of [`HISTOGRAM_FROM`] requests
    /// or more.
    histogram: bool,
}

/// Fewest requests for which the summary draws a latency histogram: with fewer, bars of one or
/// two requests say nothing a list would not.
pub const HISTOGRAM_FROM: usize = 100;

impl<W: Write> TextSink<W> {
    /// A printer to `out`; `print_bodies` forces a line per outcome however many there are.
    pub fn new(out: W, requests: usize, print_bodies: bool) -> TextSink<W> {
        TextSink {
            out,
            bodies: print_bodies || requests <= BODY_LINES_UP_TO,
            errors_printed: 0,
            histogram: true,
        }
    }

    /// Leaves the latency histogram out of the summary (`--no-histogram`).
    pub fn without_histogram(mut self) -> TextSink<W> {
        self.histogram = false;
        self
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn start(&mut self, workload: &Workload) -> io::Result<()> {
        writeln!(self.out, "{}", render::workload_line(workload))?;
        self.out.flush()
    }

    fn outcome(&mut self, workload: &Workload, outcome: &Outcome) -> io::Result<()> {
        let print = if self.bodies {
            true
        } else if !outcome.is_ok() && self.errors_printed < ERROR_LINES_UP_TO {
            self.errors_printed += 1;
            true
        } else {
            false
        };
        if print {
            writeln!(self.out, "{}", render::outcome_line(outcome, workload))?;
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, report: &Report) -> io::Result<()> {
        let summary = &report.summary;
        let workload = &report.workload;
        if !workload.all_delays() {
            // Not every request is a slowlab delay: no ideal to compare against.
            writeln!(
                self.out,
                "elapsed {} ({})",
                render::seconds(summary.wall),
                summary.mode.as_str(),
            )?;
        } else {
            writeln!(
                self.out,
                "elapsed {} ({}, ideal {}, efficiency {})",
                render::seconds(summary.wall),
                summary.mode.as_str(),
                render::seconds(summary.ideal),
                render::efficiency(summary),
            )?;
        }
        write!(self.out, "{}", render::summary(summary, !self.bodies))?;
        if self.histogram && summary.requests >= HISTOGRAM_FROM {
            let what = if summary.open_loop.is_some() {
                "service time"
            } else {
                "latency"
            };
            write!(
                self.out,
                "{}",
                render::histogram(&summary.latency_buckets, what)
            )?;
        }
        self.out.flush()
    }
}
