//! Standard output, where the data goes: a reader that went away (`| head -1`) ends the output
//! quietly; any other failure to write is the run's failure (exit status 1).
//!
//! A stdout closed before the start (`>&-`) cannot be told apart: the Rust runtime points a closed
//! standard stream at `/dev/null`, opened read-write, exactly as Python's `subprocess.DEVNULL`
//! does, so treating it as an error would fail every run whose output is deliberately discarded.

use std::io::{self, Write};

/// Ignores a broken pipe (`slowlab fetch | head`): the run goes on, and its exit status counts.
pub fn tolerate_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` to stdout and flushes it; a closed pipe is not an error.
pub fn print(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    tolerate_broken_pipe(
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush()),
    )
}
