//! Reports people keep: a saved fetch or race JSON document, read back into one model, and drawn
//! as SVG, as a self-contained HTML page, or as text.
//!
//! Every path goes through the JSON a run writes: `race --report` and `fetch --report` build their
//! document in memory, `slowlab report html FILE.json` reads it from disk, and both hand it to
//! [`Document::from_json`]. So a saved document renders exactly like the run that wrote it.

pub mod density;
mod histogram_header;
pub mod html;
pub mod load;
pub mod saved;
pub mod svg;
pub mod terminal;

use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::render;
use crate::sink::{OutcomeRecord, WorkloadRecord};

/// Past this many requests in one run, one bar per request stops being readable: reports show
/// requests in flight, completions, a latency histogram and the slowest requests instead.
pub const DENSE_ABOVE: usize = 40;

/// Where and with what a document was made, as it is saved in race documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `linux`, `macos`, ...
    pub os: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// CPUs this process could use.
    pub cpus: usize,
    /// The slowlab version that ran.
    pub slowlab_version: String,
}

impl Machine {
    /// This machine, now.
    pub fn here() -> Machine {
        Machine {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            slowlab_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}, {} CPU{}, slowlab {}",
            self.os,
            self.arch,
            self.cpus,
            if self.cpus == 1 { "" } else { "s" },
            self.slowlab_version
        )
    }
}

/// Latency or overhead percentiles, seconds, as documents save them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    /// Number of values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest value.
    pub max: f64,
}

/// The totals of one run, as documents save them (the fields reports draw).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// `sequential`, `threads` or `async`.
    pub mode: String,
    /// Number of requests.
    pub requests: usize,
    /// Requests that succeeded.
    pub ok: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Wall time, seconds.
    pub wall: f64,
    /// Best wall time for the mode, seconds; `None` when the run has none (a merged report of
    /// a closed-loop run for a time, whose shards each sent what their time allowed).
    pub ideal: Option<f64>,
    /// Most requests allowed in flight at once (`None`: no limit).
    pub slots: Option<usize>,
    /// `ideal / wall`, when every request succeeded.
    pub efficiency: Option<f64>,
    /// Requests per second.
    pub throughput: f64,
    /// Most requests in flight at once.
    pub peak_concurrency: usize,
    /// Latency percentiles.
    pub latency: Percentiles,
    /// Latency minus the requested delay.
    pub overhead: Percentiles,
    /// The HDR histograms behind the percentiles, as documents save them (base64).
    pub histograms: Option<SavedHistograms>,
}

/// A summary's histograms as documents save them: HdrHistogram V2 + deflate, base64.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SavedHistograms {
    /// Latency, microseconds.
    pub latency: String,
}

impl RunSummary {
    /// The efficiency for people, or why there is none.
    pub fn efficiency_text(&self) -> String {
        match self.efficiency {
            Some(efficiency) => render::percent(efficiency),
            None if self.failed > 0 => "n/a (failures)".to_owned(),
            None if self.ideal.is_none() => "n/a (no ideal)".to_owned(),
            None if self.ideal.is_some_and(|ideal| ideal <= 0.0) => "n/a (no delay)".to_owned(),
            None => "n/a".to_owned(),
        }
    }

    /// The ideal for people, with what it is (`1.000 s (max)`), or `none` when the run has
    /// none.
    pub fn ideal_text(&self) -> String {
        match self.ideal {
            Some(ideal) => format!("{} ({})", render::short(ideal), self.ideal_kind()),
            None => "none".to_owned(),
        }
    }

    /// What the ideal is for this run: `sum`, `max` or `K slots`.
    pub fn ideal_kind(&self) -> String {
        match (self.mode.as_str(), self.slots) {
            ("sequential", _) => "sum".to_owned(),
            (_, Some(k)) => format!("{k} slots"),
            _ => "max".to_owned(),
        }
    }
}

/// One request's timing, as documents save it: times are seconds from the run's start.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Timing {
    /// Position in the workload.
    pub index: usize,
    /// The path asked for.
    pub target: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// When its work began, after any wait for a slot.
    pub start: f64,
    /// When it ended.
    pub end: f64,
    /// How long it waited for a slot before `start`.
    pub slot_wait: f64,
    /// Time to connect, when it opened a connection.
    pub connect: Option<f64>,
    /// When the response head arrived.
    pub first_byte: Option<f64>,
}

impl Timing {
    /// `end - start`.
    pub fn latency(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// The spread of a mode's wall times over `--repeat` runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Repeat {
    /// How many runs.
    pub runs: usize,
    /// Every run's wall time, seconds, in the order they ran.
    pub walls: Vec<f64>,
    /// The median wall time (the run shown is the one that took it).
    pub median: f64,
    /// The shortest.
    pub min: f64,
    /// The longest.
    pub max: f64,
}

impl Repeat {
    /// The spread of `walls` (at least one).
    pub fn of(walls: Vec<f64>) -> Repeat {
        let mut sorted = walls.clone();
        sorted.sort_by(f64::total_cmp);
        Repeat {
            runs: walls.len(),
            median: sorted[(sorted.len() - 1) / 2],
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            walls,
        }
    }
}

/// One run to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// What to call it: the mode, and the server model when races compare them.
    pub label: String,
    /// Its totals.
    pub summary: RunSummary,
    /// One per request, by index, when the document kept them.
    pub timings: Option<Vec<Timing>>,
    /// The spread over `--repeat` runs.
    pub repeat: Option<Repeat>,
}

impl Run {
    /// The latency histogram the run saved, in `bins` bins, when it has no outcomes to draw but
    /// kept its histogram (`None` when there is none, or it cannot be read).
    pub fn saved_latency_histogram(&self, bins: usize) -> Option<density::Histogram> {
        let saved = self.summary.histograms.as_ref()?;
        let histogram = slowlab_client::histogram::decode(&saved.latency).ok()?;
        if histogram.is_empty() {
            return None;
        }
        let values: Vec<(f64, usize)> = histogram
            .iter_recorded()
            .map(|v| {
                (
                    v.value_iterated_to() as f64 / 1e6,
                    v.count_at_value() as usize,
                )
            })
            .collect();
        Some(density::Histogram::of_counts(&values, bins))
    }
}

/// A document to draw: one fetch run, or the runs of a race.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `slowlab race` or `slowlab fetch`.
    pub title: String,
    /// The runs, in order.
    pub runs: Vec<Run>,
    /// What was run, for the parameters table: name and value.
    pub parameters: Vec<(String, String)>,
    /// Where it ran, when the document says.
    pub machine: Option<Machine>,
}

/// The race's fields a report reads; the rest of the document is ignored.
#[derive(Deserialize)]
struct RaceFile {
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    embedded_server: bool,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    delays: Vec<f64>,
    #[serde(default)]
    sum_of_delays: f64,
    #[serde(default)]
    max_delay: f64,
    runs: Vec<RaceRunFile>,
    #[serde(default)]
    machine: Option<Machine>,
}

#[derive(Deserialize)]
struct RaceRunFile {
    #[serde(flatten)]
    summary: RunSummary,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    outcomes: Option<Vec<Timing>>,
    #[serde(default)]
    repeat: Option<Repeat>,
}

/// The fetch document's fields a report reads.
#[derive(Deserialize)]
struct FetchFile {
    #[serde(default)]
    workload: Option<FetchWorkload>,
    summary: RunSummary,
    #[serde(default)]
    outcomes: Option<Vec<Timing>>,
    #[serde(default)]
    machine: Option<Machine>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    shard: Option<serde_json::Value>,
    #[serde(default)]
    merged: Option<serde_json::Value>,
}

impl FetchFile {
    /// Which shard of how many (`--shard I/N`), or which shards a merged report holds.
    fn shard_line(&self) -> Option<String> {
        let shard = self.shard.as_ref()?;
        let count = shard.get("count")?.as_u64()?;
        if let Some(index) = shard.get("index").and_then(serde_json::Value::as_u64) {
            return Some(format!("{index}/{count}"));
        }
        let held = shard.get("indices")?.as_array()?.len();
        Some(format!("{held} of {count} merged"))
    }

    /// How a merged report came about: how many reports, how far apart they started.
    fn merged_line(&self) -> Option<String> {
        let merged = self.merged.as_ref()?;
        let reports = merged.get("reports")?.as_u64()?;
        let spread = merged.get("start_spread")?.as_f64()?;
        let complete = merged.get("complete")?.as_bool()?;
        Some(format!(
            "{reports} reports, started {:.1} ms apart{}",
            spread * 1e3,
            if complete {
                ""
            } else {
                "; some shards missing"
            }
        ))
    }
}

#[derive(Deserialize)]
struct FetchWorkload {
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    requests: usize,
}

impl Document {
    /// Reads a document written by `slowlab fetch --output json` or `slowlab race --json`.
    pub fn from_json(value: Value) -> anyhow::Result<Document> {
        if value.get("runs").is_some() {
            let race: RaceFile = serde_json::from_value(value)
                .context("not a slowlab race document (see docs/race.schema.json)")?;
            return Ok(Document::from_race(race));
        }
        if value.get("summary").is_some() {
            let fetch: FetchFile = serde_json::from_value(value)
                .context("not a slowlab fetch document (see docs/fetch.schema.json)")?;
            return Ok(Document::from_fetch(fetch));
        }
        bail!(
            "neither a race document (no \"runs\") nor a fetch document (no \"summary\"): \
             write one with `slowlab race --json FILE` or `slowlab fetch --output json > FILE`"
        )
    }

    /// The document of a fetch run just made: what `fetch --output json` writes, and this machine.
    pub fn of_fetch(report: &slowlab_client::Report) -> anyhow::Result<Document> {
        let mut by_index: Vec<&slowlab_client::Outcome> = report.outcomes.iter().collect();
        by_index.sort_unstable_by_key(|o| o.index);
        let outcomes: Vec<OutcomeRecord<'_>> = by_index
            .into_iter()
            .map(|o| OutcomeRecord::new(&report.workload, o))
            .collect();
        // A run that kept no outcomes (--no-outcomes) is drawn from its histograms.
        let outcomes = report.outcomes_kept.then_some(outcomes);
        let value = serde_json::json!({
            "workload": WorkloadRecord::new(&report.workload),
            "summary": &report.summary,
            "outcomes": outcomes,
            "machine": Machine::here(),
        });
        Document::from_json(value)
    }

    /// Reads a document from JSON text.
    pub fn from_text(text: &str) -> anyhow::Result<Document> {
        let value: Value = serde_json::from_str(text).context("the file is not JSON")?;
        Document::from_json(value)
    }

    /// Reads a document that [`saved::check`] found to be of `kind`, straight from its bytes
    /// into the fields a report draws (no intermediate JSON value: a large report is held once).
    pub fn from_checked(bytes: &[u8], kind: saved::Kind) -> anyhow::Result<Document> {
        Ok(match kind {
            saved::Kind::Race => Document::from_race(serde_json::from_slice(bytes)?),
            saved::Kind::Fetch => Document::from_fetch(serde_json::from_slice(bytes)?),
        })
    }

    fn from_race(race: RaceFile) -> Document {
        let delays: Vec<String> = race.delays.iter().map(|d| trim_float(*d)).collect();
        let mut parameters = vec![(
            "delays".to_owned(),
            if delays.len() <= 20 {
                format!("[{}] s", delays.join(", "))
            } else {
                format!("{} requests", delays.len())
            },
        )];
        parameters.push((
            "sum / max".to_owned(),
            format!(
                "{} / {}",
                render::short(race.sum_of_delays),
                render::short(race.max_delay)
            ),
        ));
        if let Some(scale) = race.scale {
            parameters.push(("scale".to_owned(), trim_float(scale)));
        }
        parameters.push((
            "server".to_owned(),
            if race.embedded_server {
                format!("embedded, {}", race.base_url)
            } else {
                race.base_url.clone()
            },
        ));
        if let Some(repeat) = race.runs.iter().find_map(|r| r.repeat.as_ref()) {
            parameters.push((
                "repeat".to_owned(),
                format!(
                    "{} runs of each; timelines show the median run",
                    repeat.runs
                ),
            ));
        }
        let runs = race
            .runs
            .into_iter()
            .map(|run| Run {
                label: run.label.unwrap_or_else(|| run.summary.mode.clone()),
                summary: run.summary,
                timings: run.outcomes.map(by_index),
                repeat: run.repeat,
            })
            .collect();
        Document {
            title: "slowlab race".to_owned(),
            runs,
            parameters,
            machine: race.machine,
        }
    }

    fn from_fetch(fetch: FetchFile) -> Document {
        let mut parameters = Vec::new();
        if let Some(workload) = &fetch.workload {
            parameters.push((
                "requests".to_owned(),
                format!("{} × {}", workload.requests, workload.method),
            ));
            parameters.push(("server".to_owned(), workload.base_url.clone()));
        }
        parameters.push(("mode".to_owned(), fetch.summary.mode.clone()));
        if let Some(slots) = fetch.summary.slots {
            parameters.push(("slots".to_owned(), slots.to_string()));
        }
        let recorded = [
            ("shard", fetch.shard_line()),
            ("merged", fetch.merged_line()),
            ("host", fetch.host.clone()),
            ("started", fetch.started_at.clone()),
        ];
        for (name, value) in recorded {
            if let Some(value) = value {
                parameters.push((name.to_owned(), value));
            }
        }
        Document {
            title: "slowlab fetch".to_owned(),
            runs: vec![Run {
                label: fetch.summary.mode.clone(),
                summary: fetch.summary,
                timings: fetch.outcomes.map(by_index),
                repeat: None,
            }],
            parameters,
            machine: fetch.machine,
        }
    }

    /// The longest wall or ideal time of any run: the common time axis ends here.
    pub fn axis_end(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.summary.wall.max(r.summary.ideal.unwrap_or(0.0)))
            .fold(1e-6, f64::max)
    }

    /// Where it ran, for people: the document's record, else "not recorded".
    pub fn machine_line(&self) -> String {
        self.machine
            .as_ref()
            .map_or_else(|| "not recorded".to_owned(), Machine::describe)
    }
}

fn by_index(mut timings: Vec<Timing>) -> Vec<Timing> {
    timings.sort_by_key(|t| t.index);
    timings
}

/// `0.7`, `2`, `0.25`: a float without trailing zeros.
fn trim_float(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Fails, before a run starts, when `path` could not be written because its directory is missing:
/// a usage error found at once rather than after a long run.
pub fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => return Ok(()),
    };
    if !dir.is_dir() {
        return Err(crate::usage!(
            "cannot write {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )
        .into());
    }
    Ok(())
}

/// Writes the HTML report of `doc` to `path`, saying where on stderr.
pub fn write_html(path: &std::path::Path, doc: &Document) -> anyhow::Result<()> {
    write_file(path, &html::page(doc))
}

/// Writes a report file, saying where on stderr.
pub fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("slowlab: wrote {}", path.display());
    Ok(())
}

/// The text summary of a document (`slowlab report show`).
pub fn show(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} run(s)", doc.title, doc.runs.len());
    for (name, value) in &doc.parameters {
        let _ = writeln!(
            out,
            "{}: {}",
            render::printable(name),
            render::printable(value)
        );
    }
    let _ = writeln!(out, "machine: {}", doc.machine_line());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<24} {:>10}  {:>18}  {:>14}  {:>9}  {:>10}  {:>10}",
        "run", "wall", "ideal", "efficiency", "ok", "p50", "p99"
    );
    for run in &doc.runs {
        let s = &run.summary;
        let _ = writeln!(
            out,
            "{:<24} {:>10}  {:>18}  {:>14}  {:>9}  {:>10}  {:>10}",
            render::printable(&run.label),
            render::short(s.wall),
            s.ideal_text(),
            s.efficiency_text(),
            format!("{}/{}", s.ok, s.requests),
            render::short(s.latency.p50),
            render::short(s.latency.p99),
        );
        if let Some(repeat) = &run.repeat {
            let _ = writeln!(
                out,
                "{:<24} {} runs: median {}, min {}, max {}",
                "",
                repeat.runs,
                render::short(repeat.median),
                render::short(repeat.min),
                render::short(repeat.max)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_takes_the_median_run() {
        let r = Repeat::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((r.median, r.min, r.max, r.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Repeat::of(vec![4.0, 1.0]).median, 1.0, "the lower of two");
    }

    #[test]
    fn unknown_documents_say_what_is_expected() {
        let err = Document::from_json(serde_json::json!({"hello": 1})).unwrap_err();
        assert!(err.to_string().contains("slowlab race --json"), "{err}");
    }

    #[test]
    fn floats_lose_trailing_zeros() {
        assert_eq!(trim_float(0.7), "0.7");
        assert_eq!(trim_float(2.0), "2");
    }
}
