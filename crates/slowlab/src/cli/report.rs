//! Options of `slowlab report`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub(super) const REPORT_EXAMPLES: &str = "\
Examples:
  slowlab race --json race.json && slowlab report html race.json -o race.html
  slowlab fetch --count 10000 --delay 1 --output json --quiet > run.json
  slowlab report html run.json -o run.html    in flight, completions and a latency histogram
  slowlab report show run.json                the text summary
  slowlab fetch --count 1000 --delay 1 --shard 0/2 -o json > a.json   (and --shard 1/2 > b.json)
  slowlab report merge a.json b.json > run.json   one report, as if one run had sent both
  slowlab report show --max-report-bytes 2147483648 huge.json   read a report over 512 MiB";

/// Options of `slowlab report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What to do with the saved document.
    #[command(subcommand)]
    pub command: ReportCommand,
    /// Largest report file read, in bytes (default 512 MiB); a larger one is refused before it
    /// is read. Example: --max-report-bytes 2147483648.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = crate::report::load::DEFAULT_MAX_REPORT_BYTES)]
    pub max_report_bytes: u64,
}

/// The `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Print the text summary of a saved fetch or race JSON document.
    Show {
        /// A document from `slowlab fetch --output json` or `slowlab race --json FILE`
        /// (`-`: standard input).
        file: PathBuf,
    },
    /// Render a saved fetch or race JSON document as a self-contained HTML page.
    Html {
        /// A document from `slowlab fetch --output json` or `slowlab race --json FILE`
        /// (`-`: standard input).
        file: PathBuf,
        /// Write the page here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Merge the JSON reports of a sharded run (`fetch --shard I/N --output json`) into one, as if
    /// one run had sent every shard's requests: counts and error kinds add up, percentiles come
    /// from the shards' summed histograms. Refuses reports of different workloads and overlapping
    /// shards, with the reason.
    Merge {
        /// Reports, or directories whose `*.json` files are reports.
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
}
