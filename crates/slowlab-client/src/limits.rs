//! The process's open-file limit: every connection is a file descriptor.

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
