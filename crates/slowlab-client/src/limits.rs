//! The process's limits: open files (every connection is a file descriptor), and the memory a
//! run needs for its number of requests.

use crate::outcome::Outcome;
use crate::workload::Target;

/// Raises the soft open-file limit to the hard limit, so that thousands of connections fit.
///
/// Returns the soft limit in force afterwards, or `None` where the platform has no such limit or
/// it cannot be read. Never fails the run: a limit that cannot be raised shows up later as
/// `fd-exhausted` outcomes, with a hint.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => Some(limit),
            Err(err) => {
                tracing::debug!("cannot raise the open-file limit: {err}");
                rlimit::getrlimit(rlimit::Resource::NOFILE)
                    .ok()
                    .map(|(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The open-file limits as `soft S, hard H`, for messages.
pub fn describe_nofile() -> String {
    #[cfg(unix)]
    {
        match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok((soft, hard)) => format!("soft {soft}, hard {hard}"),
            Err(_) => "unknown".to_owned(),
        }
    }
    #[cfg(not(unix))]
    {
        "unknown".to_owned()
    }
}

/// Bytes a run needs for each of its requests, beyond what the requests in flight hold:
/// `listed_targets` when every request has a target of its own (a list of delays, `--random`),
/// `keep_outcomes` when the run keeps every outcome (for a JSON document of them).
///
/// A repeated target (`--count`) that keeps no outcomes needs a bit a request: the collector's
/// record of which requests reported.
pub fn bytes_per_request(listed_targets: bool, keep_outcomes: bool) -> f64 {
    let mut bytes = 1.0 / 8.0;
    if listed_targets {
        // The target, and the drawn delay it was made from.
        bytes += (std::mem::size_of::<Target>() + std::mem::size_of::<u64>()) as f64;
    }
    if keep_outcomes {
        // The outcome; at the end, two events of the peak-concurrency sweep and a reference to
        // sort the document by index.
        bytes += (std::mem::size_of::<Outcome>() + 2 * 24 + 8) as f64;
    }
    bytes
}

/// Refuses a run of `requests` that cannot fit in memory, before anything is allocated for it:
/// the message gives the estimate and what to change. See [`bytes_per_request`].
pub fn check_memory(
    requests: usize,
    listed_targets: bool,
    keep_outcomes: bool,
) -> Result<(), String> {
    let per_request = bytes_per_request(listed_targets, keep_outcomes);
    let needed = requests as f64 * per_request;
    let available = available_memory().map_or(isize::MAX as f64, |bytes| bytes as f64);
    if needed <= available {
        return Ok(());
    }
    let advice = if keep_outcomes {
        "use --no-outcomes (the summary still counts every request) or send fewer requests"
    } else if listed_targets {
        "use --count N --delay S, whose requests share one target, or send fewer requests"
    } else {
        "send fewer requests"
    };
    Err(format!(
        "{requests} requests would need about {} of memory ({per_request:.0} bytes each), more \
         than the {} available: {advice}",
        human_bytes(needed),
        human_bytes(available)
    ))
}

/// Memory the system can give without swapping (Linux `MemAvailable`), or `None` where unknown.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `bytes` as `1.5 GB`, for messages.
fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_target_without_outcomes_costs_a_bit_a_request() {
        assert_eq!(bytes_per_request(false, false), 0.125);
        assert!(bytes_per_request(false, true) > 100.0);
        assert!(bytes_per_request(true, true) > bytes_per_request(false, true));
    }

    #[test]
    fn a_run_that_cannot_fit_is_refused_with_the_estimate() {
        let err = check_memory(usize::MAX, false, true).unwrap_err();
        assert!(err.contains("18446744073709551615 requests"), "{err}");
        assert!(err.contains("EB of memory"), "{err}");
        assert!(err.contains("--no-outcomes"), "{err}");
        let err = check_memory(usize::MAX, false, false).unwrap_err();
        assert!(err.contains("send fewer"), "{err}");
        assert!(check_memory(1000, true, true).is_ok());
    }
}
