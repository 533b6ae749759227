//! `down`: new connections are refused as a stopped service refuses them, with `ECONNREFUSED`,
//! by taking the listening socket out of the listening state while down and putting it back after.
//!
//! Linux lets a listening socket be shut down (`shutdown(SHUT_RD)`): the connections waiting to be
//! accepted are reset, and the SYNs that follow are answered with RST, so `connect` fails with
//! `ECONNREFUSED`. The descriptor stays open and bound, so `listen` takes connections on the same
//! address again later, and no other process can take the port meanwhile. (A socket that was bound
//! to port 0 gives its port back when it is shut down; it is bound to the same address again at
//! once, which holds the port: a socket that is bound but not listening refuses too.)
//!
//! Elsewhere [`stop`] fails, and the accept loop falls back to resetting each connection it
//! accepts while down.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The accept queue asked for when listening again: serve's.
#[cfg(target_os = "linux")]
const BACKLOG: i32 = 1024;

/// Stops `listener` listening, so that connections to `addr` (its address) are refused.
#[cfg(target_os = "linux")]
pub(crate) fn stop(listener: &TcpListener, addr: SocketAddr) -> io::Result<()> {
    rustix::net::shutdown(listener, rustix::net::Shutdown::Read)?;
    bind(listener, addr)
}

/// Makes `listener` listen on `addr` again after [`stop`], and returns it registered afresh with
/// the runtime, to accept from in its place.
///
/// The socket reported a hang-up when it stopped, and tokio keeps a hang-up for good: accepting
/// through the old registration would find it always ready and spin on `EAGAIN`. A duplicate of
/// the descriptor (the same socket) is registered anew instead, and the old one is to be dropped.
#[cfg(target_os = "linux")]
pub(crate) fn resume(listener: &TcpListener, addr: SocketAddr) -> io::Result<TcpListener> {
    use std::os::fd::AsFd;
    // Bound again only if the port was given back and could not be held at `stop` (another
    // socket took it); `listen` on an unbound socket would pick a port of its own.
    bind(listener, addr)?;
    rustix::net::listen(listener, BACKLOG)?;
    // The duplicate shares the original's non-blocking flag, as tokio requires.
    let fresh = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
    TcpListener::from_std(fresh)
}

/// Binds `listener` to `addr` unless it still is: `EINVAL` says it is bound already.
#[cfg(target_os = "linux")]
fn bind(listener: &TcpListener, addr: SocketAddr) -> io::Result<()> {
    match rustix::net::bind(listener, &addr) {
        Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Not on this system: the caller resets connections accepted while down instead.
#[cfg(not(target_os = "linux"))]
pub(crate) fn stop(_listener: &TcpListener, _addr: SocketAddr) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a listening socket can be shut down only on Linux",
    ))
}

/// Never called where [`stop`] fails.
#[cfg(not(target_os = "linux"))]
pub(crate) fn resume(_listener: &TcpListener, _addr: SocketAddr) -> io::Result<TcpListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a listening socket can be shut down only on Linux",
    ))
}
