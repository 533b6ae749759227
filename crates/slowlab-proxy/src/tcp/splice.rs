//! Linux only: a direction with no effect moves its bytes with splice(2), socket to pipe to socket,
//! so they never enter the proxy's memory.
//!
//! A user-space copy costs each byte two copies in the proxy (out of the client's socket, into the
//! service's) on top of the two the kernel makes between sender and receiver anyway; on loopback
//! those copies are most of the proxy's CPU time. splice(2) hands the socket's pages to a pipe and
//! the pipe's pages to the other socket, copying nothing. The sockets stay non-blocking and in
//! tokio's reactor: each splice is tried when tokio says the socket is ready, and a `WouldBlock`
//! clears that readiness, as a read would.
//!
//! The calls are rustix's safe wrappers (the workspace forbids unsafe code). A pipe that cannot be
//! made (out of descriptors) leaves the direction to the portable copy.
//!
//! splice(2) into a socket has no `MSG_NOSIGNAL` (the copy's writes do have it): writing to a
//! service or client that has gone raises SIGPIPE. Rust programs ignore SIGPIPE (std sets it to `SIG_IGN` before
//! `main`), so here it is an `EPIPE` error that ends the direction, as with the copy; a program
//! embedding the library from another language must ignore SIGPIPE too.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

use super::pipe::{End, close, end_of};

/// The pipe's size, asked for but not insisted on: 256 KiB moves four times the default pipe's
/// 64 KiB per pair of calls, and 2 pipes per connection stay well under the kernel's soft limit of
/// 64 MiB of pipes per user for a pool of a hundred connections (past it, the kernel refuses
/// larger pipes and the default is kept).
const PIPE_SIZE: usize = 256 * 1024;

/// A pipe between the two sockets of one direction, with what it holds.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, `PIPE_SIZE` if the kernel allows.
    pub(crate) fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // A refusal (the per-user limit) keeps the default size, which works, only with more calls.
        let capacity = fcntl_setpipe_size(&write, PIPE_SIZE).unwrap_or(64 * 1024);
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }
}

/// Moves `src` to `dst` through `pipe` until `src` closes (then `dst` is sent a FIN) or either side
/// fails, adding every byte written to `counter`.
///
/// The pipe is emptied before it is filled again, so a splice into it that would block can only
/// mean the socket has nothing to read, and one that fills it waits for nothing but `dst`.
pub(crate) async fn copy(
    src: ReadHalf<'_>,
    mut dst: WriteHalf<'_>,
    pipe: Pipe,
    counter: &AtomicU64,
) -> End {
    let from: &TcpStream = src.as_ref();
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    loop {
        let filled = ready(from, Interest::READABLE, || {
            splice(from, None, &pipe.write, None, pipe.capacity, flags)
        })
        .await;
        let mut held = match filled {
            Ok(0) => return close(&mut dst).await,
            Ok(n) => n,
            Err(err) => return end_of(&err),
        };
        let to: &TcpStream = dst.as_ref();
        while held > 0 {
            let sent = ready(to, Interest::WRITABLE, || {
                splice(&pipe.read, None, to, None, held, flags)
            })
            .await;
            match sent {
                Ok(n) => {
                    held -= n;
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(err) => return end_of(&err),
            }
        }
    }
}

/// Runs `call` on `socket` once tokio says it is ready for `interest`, again after each
/// `WouldBlock`.
async fn ready(
    socket: &TcpStream,
    interest: Interest,
    mut call: impl FnMut() -> rustix::io::Result<usize>,
) -> io::Result<usize> {
    loop {
        match socket.try_io(interest, || call().map_err(io::Error::from)) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                socket.ready(interest).await?;
            }
            done => return done,
        }
    }
}
