//! Limits that protect the server: request size, open files.
//!
//! The header read timeout and the connection cap live in the accept loop ([`crate::run`]);
//! here are the checks that answer with JSON, and the open-file limit.

use std::io;

use axum::http::Request;

use crate::config::Config;
use crate::error::ApiError;

/// Refuses an over-long URI (414) or over-large headers (431) with a JSON body.
///
/// hyper has its own, larger limits that answer without a body; these come first so that every
/// refusal a client is likely to meet explains itself.
pub fn check<B>(request: &Request<B>, config: &Config) -> Result<(), ApiError> {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > config.max_uri_bytes {
        return Err(ApiError::UriTooLong {
            len: uri_len,
            max: config.max_uri_bytes,
        });
    }
    let headers = request.headers();
    if headers.len() > config.max_headers {
        return Err(too_large(request, config));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > config.max_header_bytes {
        return Err(too_large(request, config));
    }
    Ok(())
}

fn too_large<B>(request: &Request<B>, config: &Config) -> ApiError {
    let headers = request.headers();
    ApiError::HeadersTooLarge {
        bytes: headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum(),
        count: headers.len(),
        max_bytes: config.max_header_bytes,
        max_count: config.max_headers,
    }
}

/// Raises this process's soft limit on open files to its hard limit, and returns the new soft
/// limit. Each connection is a file descriptor: the common soft limit of 1,024 would cap a server
/// meant to hold tens of thousands of waits.
///
/// On systems without the notion this does nothing and returns `Ok(u64::MAX)`.
pub fn raise_open_file_limit() -> io::Result<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX)
    }
    #[cfg(not(unix))]
    {
        Ok(u64::MAX)
    }
}

/// Whether an accept error means the process (EMFILE) or the system (ENFILE) is out of file
/// descriptors.
pub fn is_fd_exhaustion(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(23 | 24))
}
