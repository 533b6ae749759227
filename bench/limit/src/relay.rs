//! `relay`: the least work a TCP proxy can do on this kernel, for scenario 9's TCP figure (9f).
//!
//! Every connection accepted is joined to a new connection to the upstream, and each direction
//! is one blocking thread that moves bytes with splice(2), socket to pipe to socket: no epoll, no
//! runtime, no copy into user space, no effect to check. Whatever this loses against iperf3
//! straight to its server is what any proxy on the same cores loses: the second TCP connection's
//! work. `slowlab proxy --tcp` with no effect is measured against it.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread;

/// The pipe each direction asks for: 1 MiB, so that one pair of calls can move what a socket
/// holds (the kernel keeps its default of 64 KiB if it refuses).
const PIPE_SIZE: usize = 1 << 20;

/// Relays every connection to `127.0.0.1:port` to `upstream`, until killed.
pub fn relay(port: u16, upstream: &str) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    for client in listener.incoming() {
        let client = client?;
        let service = match TcpStream::connect(upstream) {
            Ok(service) => service,
            // The upstream refused: this connection ends, the relay goes on.
            Err(_) => continue,
        };
        let (client_in, service_out) = (client.try_clone()?, service.try_clone()?);
        thread::spawn(move || pump(&client_in, &service_out));
        thread::spawn(move || pump(&service, &client));
    }
    Ok(())
}

/// Moves `from` to `to` until `from` ends or either fails, then sends `to` a FIN.
fn pump(from: &TcpStream, to: &TcpStream) {
    if let Ok((read, write)) = pipe() {
        let (read, write) = (read.as_raw_fd(), write.as_raw_fd());
        // SAFETY: fcntl on a descriptor this function owns; a refusal leaves the default size.
        let capacity = match unsafe { libc::fcntl(write, libc::F_SETPIPE_SZ, PIPE_SIZE as i32) } {
            n if n > 0 => n as usize,
            _ => 64 * 1024,
        };
        'moving: loop {
            let held = splice(from.as_raw_fd(), write, capacity);
            if held <= 0 {
                break;
            }
            let mut held = held as usize;
            while held > 0 {
                let sent = splice(read, to.as_raw_fd(), held);
                if sent <= 0 {
                    break 'moving;
                }
                held -= sent as usize;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// One blocking splice(2) of up to `len` bytes; what it returns (negative on an error).
fn splice(from: RawFd, to: RawFd, len: usize) -> isize {
    // SAFETY: both descriptors are open for the call's duration (their owners outlive it), and
    // null offsets are what splice(2) takes for sockets and pipes.
    unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE,
        )
    }
}

/// A blocking pipe, closed when its ends are dropped.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made by pipe2 and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
