//! `--output json` (one document at the end) and `--output ndjson` (a line per outcome as it ends,
//! then a summary line).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde::Serialize;
use slowlab_client::{Outcome, Report, Summary, Workload};

use super::{OutcomeRecord, Sink, WorkloadRecord};

/// How often streamed lines are flushed at most: often enough to watch, rarely enough to be cheap
/// at 100,000 outcomes a second.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The document of `--output json`; its schema is `docs/fetch.schema.json`.
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u64,
    /// When the run started, on this host's clock: RFC 3339, UTC, microseconds.
    started_at: String,
    /// The host that ran it.
    host: String,
    /// `{"index": I, "count": N, "whole_requests": ..}` for `--shard I/N`, else null.
    shard: Option<ShardRecord>,
    workload: WorkloadRecord,
    summary: &'a Summary,
    /// Absent when the run kept no outcomes (`--no-outcomes`); `outcomes_omitted` then says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcomes: Option<Records<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcomes_omitted: Option<&'static str>,
}

/// What a document without outcomes says instead.
const OUTCOMES_OMITTED: &str =
    "--no-outcomes: per-request outcomes were not kept; the summary counts every request";

/// The outcomes by index, each turned into its record only as it is written: a document of
/// 100,000 outcomes never holds 100,000 records at once.
struct Records<'a> {
    workload: &'a Workload,
    by_index: Vec<&'a Outcome>,
}

/// Which shard of a larger workload a run sent.
#[derive(Serialize)]
struct ShardRecord {
    index: u32,
    count: u32,
    /// `null` for a closed-loop run for a time, which sends as many as its time allows.
    whole_requests: Option<usize>,
    /// A closed-loop run for a time: `{"whole": K, "share": k}`, the run's `--concurrency` and
    /// this shard's part of it; `null` otherwise (each shard applies its own limit).
    concurrency: Option<ConcurrencyRecord>,
}

/// How a closed-loop run for a time shared its concurrency.
#[derive(Serialize)]
struct ConcurrencyRecord {
    whole: u32,
    share: u32,
}

/// The host's name, for reports that travel between hosts.
fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl Serialize for Records<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.by_index
                .iter()
                .map(|outcome| OutcomeRecord::new(self.workload, outcome)),
        )
    }
}

/// Writes one JSON document when the run ends.
pub struct JsonSink<W: Write> {
    out: W,
}

impl<W: Write> JsonSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> JsonSink<W> {
        JsonSink { out }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn start(&mut self, _: &Workload) -> io::Result<()> {
        Ok(())
    }

    fn outcome(&mut self, _: &Workload, _: &Outcome) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, report: &Report) -> io::Result<()> {
        let mut by_index: Vec<&Outcome> = report.outcomes.iter().collect();
        by_index.sort_unstable_by_key(|o| o.index);
        let document = Document {
            schema_version: crate::merge::SCHEMA_VERSION,
            started_at: humantime::format_rfc3339_micros(report.started_at).to_string(),
            host: host_name(),
            shard: report.workload.shard.as_ref().map(|shard| ShardRecord {
                index: shard.index,
                count: shard.count,
                whole_requests: report
                    .workload
                    .pace
                    .until
                    .is_none()
                    .then_some(shard.whole_requests),
                concurrency: shard.concurrency().map(|c| ConcurrencyRecord {
                    whole: c.whole,
                    share: c.share,
                }),
            }),
            workload: WorkloadRecord::new(&report.workload),
            summary: &report.summary,
            outcomes: report.outcomes_kept.then_some(Records {
                workload: &report.workload,
                by_index,
            }),
            outcomes_omitted: (!report.outcomes_kept).then_some(OUTCOMES_OMITTED),
        };
        serde_json::to_writer(&mut self.out, &document)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

/// Writes each outcome as a JSON line as it ends, then `{"summary": ...}`.
pub struct NdjsonSink<W: Write> {
    out: W,
    flushed: Instant,
}

impl<W: Write> NdjsonSink<W> {
    /// A sink writing to `out` (buffer it; lines are flushed every 100 ms).
    pub fn new(out: W) -> NdjsonSink<W> {
        NdjsonSink {
            out,
            flushed: Instant::now(),
        }
    }
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    summary: &'a Summary,
}

impl<W: Write> Sink for NdjsonSink<W> {
    fn start(&mut self, _: &Workload) -> io::Result<()> {
        Ok(())
    }

    fn outcome(&mut self, workload: &Workload, outcome: &Outcome) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &OutcomeRecord::new(workload, outcome))?;
        writeln!(self.out)?;
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.out.flush()?;
            self.flushed = Instant::now();
        }
        Ok(())
    }

    fn finish(&mut self, report: &Report) -> io::Result<()> {
        serde_json::to_writer(
            &mut self.out,
            &SummaryLine {
                summary: &report.summary,
            },
        )?;
        writeln!(self.out)?;
        self.out.flush()
    }
}
