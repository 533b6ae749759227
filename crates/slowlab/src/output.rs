//! Standard output, where the data goes: a reader that went away (`| head -1`) ends the output
//! quietly; any other failure to write is the run's failure (exit status 1).

use std::io::{self, Write};

/// Ignores a broken pipe (`slowlab fetch | head`): the run goes on, and its exit status counts.
pub fn tolerate_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// An error when stdout was closed as the process started (`slowlab fetch >&-`).
///
/// The Rust runtime points a closed standard stream at `/dev/null`, opened read-write, so every
/// write would "succeed" and the output vanish. A shell's `> /dev/null` opens it write-only, which
/// is how the two are told apart (Linux only; elsewhere nothing is detected).
pub fn check_stdout_open() -> io::Result<()> {
    if stdout_was_closed() {
        return Err(io::Error::other(
            "standard output is closed; to discard the output, send it to /dev/null",
        ));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn stdout_was_closed() -> bool {
    /// `O_ACCMODE` and `O_RDWR` of Linux's `open(2)` flags.
    const ACCESS_MODE: u32 = 0o3;
    const READ_WRITE: u32 = 0o2;
    let is_null =
        std::fs::read_link("/proc/self/fd/1").is_ok_and(|path| path.as_os_str() == "/dev/null");
    if !is_null {
        return false;
    }
    let flags = std::fs::read_to_string("/proc/self/fdinfo/1")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("flags:"))
                .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        });
    flags.is_some_and(|flags| flags & ACCESS_MODE == READ_WRITE)
}

#[cfg(not(target_os = "linux"))]
fn stdout_was_closed() -> bool {
    false
}

/// Writes `text` to stdout and flushes it; a closed pipe is not an error.
pub fn print(text: &str) -> io::Result<()> {
    check_stdout_open()?;
    let mut stdout = io::stdout().lock();
    tolerate_broken_pipe(
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush()),
    )
}
