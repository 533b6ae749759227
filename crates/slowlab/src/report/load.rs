//! Reading a saved report from a file or standard input: bounded in size, checked once
//! ([`super::saved::check`]), its unknown fields named on stderr.

use std::io::Read;
use std::path::Path;

use super::saved::{self, Checked};
use crate::{UsageError, usage};

/// The largest report file read unless `--max-report-bytes` says otherwise: 512 MiB, room for
/// the report of a million requests with their outcomes (an outcome is a few hundred bytes).
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 512 * 1024 * 1024;

/// A report's bytes, read whole once they are known to fit, and checked.
pub struct Loaded {
    /// The file's name for people (`-` is standard input).
    pub name: String,
    /// The document's bytes.
    pub bytes: Vec<u8>,
    /// What the check found.
    pub checked: Checked,
}

/// Reads the report at `path` (`-`: standard input), refusing it when it is larger than `limit`
/// bytes (before reading it, for a file whose size is known) or fails a check (a [`UsageError`]);
/// warns on stderr of fields it does not know. A file that cannot be read is a plain error.
pub fn load(path: &Path, limit: u64) -> anyhow::Result<Loaded> {
    let name = path.display().to_string();
    let bytes = read_bounded(path, &name, limit)?;
    let checked = saved::check(&bytes).map_err(|fault| {
        usage!("{name}: {fault}; see docs/reports.md for what a report must hold")
    })?;
    if let Some(version) = checked.newer_version {
        say!(
            "slowlab report: {name}: schema_version {version} is newer than this slowlab's \
             ({}); the fields it does not know are ignored",
            saved::SCHEMA_VERSION
        );
    }
    if !checked.unknown.is_empty() {
        say!(
            "slowlab report: {name}: ignoring fields this slowlab does not know (from a newer \
             version?): {}",
            crate::render::printable(&checked.unknown.join(", "))
        );
    }
    Ok(Loaded {
        name,
        bytes,
        checked,
    })
}

fn too_large(name: &str, size: &str, limit: u64) -> UsageError {
    usage!(
        "{name}: {size} bytes, over the limit of {limit} bytes for one report; if you trust the \
         file, raise the limit with --max-report-bytes BYTES"
    )
}

fn read_bounded(path: &Path, name: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    let cannot = |err: std::io::Error| anyhow::anyhow!("cannot read {name}: {err}");
    let (source, known): (Box<dyn Read>, u64) = if path.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = std::fs::File::open(path).map_err(cannot)?;
        let metadata = file.metadata().map_err(cannot)?;
        // A device such as /dev/zero never ends and reports no size: refused at once. A pipe
        // (`<(command)`) is read like standard input.
        if !metadata.is_file() && !is_pipe(&metadata) {
            return Err(usage!(
                "{name} is not a regular file (a directory or a device); name a saved report, \
                 or pipe one to `-`"
            )
            .into());
        }
        if metadata.len() > limit {
            return Err(too_large(name, &metadata.len().to_string(), limit).into());
        }
        (Box::new(file), metadata.len())
    };
    // One buffer of the known size; a stream (or a file that grows, or never ends, such as
    // /dev/zero) stops one byte past the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(known).unwrap_or(0));
    source
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(name, &format!("more than {limit}"), limit).into());
    }
    Ok(bytes)
}

#[cfg(unix)]
fn is_pipe(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_pipe(_: &std::fs::Metadata) -> bool {
    false
}
