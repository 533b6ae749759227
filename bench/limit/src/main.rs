//! The ceiling: the least work a server and a client can do for bench/run's scenarios 2-4 on this
//! machine's kernel. One thread, one epoll (mio), no runtime and no HTTP library: a request is
//! found by its blank line and answered with one fixed response written by one `write`.
//!
//! ```text
//! slowlab-limit serve PORT [--io uring]    # GET /D answered after D seconds (D = 0 at once);
//!                                            # GET /lateness: how late the delayed answers
//!                                            # were (epoll only); --io uring: the same server
//!                                            # on io_uring
//! slowlab-limit check-uring                  # exits 0 if --io uring can run here, else says why
//! slowlab-limit fetch URL COUNT CONNECTIONS  # COUNT x GET URL over CONNECTIONS keep-alive
//!                                            # connections; prints slowlab fetch's JSON summary
//! slowlab-limit relay PORT UPSTREAM          # TCP relay to UPSTREAM (HOST:PORT) with splice(2),
//!                                            # a blocking thread per direction (scenario 9f)
//! ```
//!
//! It is an instrument, not a server: it trusts its peer (no limits, no timeouts, no parsing
//! beyond the path and `content-length`), so it must only ever face bench/run's own clients.

mod client;
mod relay;
mod server;
mod slots;
mod uring;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", port] | ["serve", port, "--io", "epoll"] => port
            .parse()
            .map_err(|_| format!("not a port: {port}"))
            .and_then(|port| server::serve(port).map_err(|e| e.to_string())),
        ["serve", port, "--io", "uring"] => port
            .parse()
            .map_err(|_| format!("not a port: {port}"))
            .and_then(|port| uring::serve(port).map_err(|e| format!("io_uring: {e}"))),
        ["check-uring"] => uring::check(),
        ["relay", port, upstream] => port
            .parse()
            .map_err(|_| format!("not a port: {port}"))
            .and_then(|port| relay::relay(port, upstream).map_err(|e| e.to_string())),
        ["fetch", url, count, connections] => {
            match (count.parse::<u64>(), connections.parse::<usize>()) {
                (Ok(count), Ok(connections)) if count > 0 && connections > 0 => {
                    client::fetch(url, count, connections)
                }
                _ => Err(format!(
                    "COUNT and CONNECTIONS must be positive integers, not {count} and {connections}"
                )),
            }
        }
        _ => Err(
            "usage: slowlab-limit serve PORT [--io epoll|uring] | slowlab-limit check-uring | \
             slowlab-limit fetch URL COUNT CONNECTIONS \
             (for example: fetch http://127.0.0.1:8080/0 200000 50) | \
             slowlab-limit relay PORT UPSTREAM (for example: relay 9000 127.0.0.1:5201)"
                .to_string(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("slowlab-limit: {message}");
            ExitCode::from(2)
        }
    }
}

/// Raises the soft limit on open files to the hard limit: scenario 2 holds 10,000 sockets.
pub(crate) fn raise_open_files() {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The index of the first byte after the head's blank line, if the head is complete.
pub(crate) fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}
