//! `slowlab report`: saved fetch and race documents, shown again as text or rendered as HTML.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{ReportArgs, ReportCommand};
use crate::report::{self, Document};

/// Reads the document and prints or writes what was asked.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let limit = args.max_report_bytes;
    let written = match args.command {
        ReportCommand::Show { file } => crate::output::print(&report::show(&read(&file, limit)?)),
        ReportCommand::Merge { paths } => {
            crate::output::print(&crate::merge::merged_text(&paths, limit)?)
        }
        ReportCommand::Html { file, output } => {
            let page = report::html::page(&read(&file, limit)?);
            match output {
                Some(path) => {
                    report::check_writable(&path)?;
                    report::write_file(&path, &page)?;
                    Ok(())
                }
                None => crate::output::print(&page),
            }
        }
    };
    if let Err(err) = written {
        say!("slowlab report: cannot write the output: {err}");
        return Ok(ExitCode::from(crate::EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The document at `path` (`-`: standard input), bounded and checked, for drawing.
fn read(path: &Path, limit: u64) -> anyhow::Result<Document> {
    let loaded = report::load::load(path, limit)?;
    // A file that passed the check but still cannot be drawn is bad input too: exit status 2.
    Document::from_checked(&loaded.bytes, loaded.checked.kind)
        .map_err(|err| crate::usage!("{}: {err:#}", loaded.name).into())
}
