//! `slowlab report`: saved fetch and race documents, shown again as text or rendered as HTML.

use std::io::{self, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{ReportArgs, ReportCommand};
use crate::report::{self, Document};

/// Reads the document and prints or writes what was asked.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let written = match args.command {
        ReportCommand::Show { file } => crate::output::print(&report::show(&read(&file)?)),
        ReportCommand::Merge { paths } => crate::output::print(&crate::merge::merged_text(&paths)?),
        ReportCommand::Html { file, output } => {
            let page = report::html::page(&read(&file)?);
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

fn read(path: &Path) -> anyhow::Result<Document> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("reading the document from standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    // A file that is not a slowlab document is bad input, like a bad argument: exit status 2.
    Document::from_text(&text).map_err(|err| crate::usage!("{}: {err:#}", path.display()).into())
}
