//! Taking connections off a listener, for every accept loop the project runs (serve's, and the
//! proxy's in both its modes): the connection cap, the pause after a failed accept, and one
//! warning when file descriptors run out. What a loop then does with a connection is its own.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits;

/// How long to pause after a failed accept (out of descriptors, say) before trying again, so the
/// loop does not spin while connections close and free descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A listener with the connection cap around it.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    cap: Option<Arc<Semaphore>>,
    warned_fd_exhaustion: bool,
}

/// One accepted connection, holding its place under the cap until it is dropped.
#[derive(Debug)]
pub struct Accepted {
    /// The client's connection.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection's place under `--max-connections`, if there is a cap: keep it for as long
    /// as the connection is open.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Acceptor {
    /// Accepts on `listener`, at most `max_connections` open at once if given: the next accept
    /// waits for a place rather than refusing (the kernel's backlog holds the queue).
    pub fn new(listener: TcpListener, max_connections: Option<usize>) -> Acceptor {
        Acceptor {
            listener,
            cap: max_connections.map(|n| Arc::new(Semaphore::new(n))),
            warned_fd_exhaustion: false,
        }
    }

    /// The listener, for its address.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Accepts from `listener` from now on, keeping the connection cap and the places taken under
    /// it; returns the listener accepted from until now. (The TCP proxy's `down` stops its socket
    /// listening, which leaves the runtime's registration of it closed for good, so it accepts
    /// through a fresh one when it listens again.)
    pub fn replace_listener(&mut self, listener: TcpListener) -> TcpListener {
        std::mem::replace(&mut self.listener, listener)
    }

    /// The next connection, or `None` once `shutdown` has completed. A failed accept is logged
    /// and retried after a short pause; it never ends the loop.
    pub async fn next<F: Future<Output = ()>>(
        &mut self,
        mut shutdown: Pin<&mut F>,
    ) -> Option<Accepted> {
        loop {
            let permit = match &self.cap {
                None => None,
                Some(cap) => tokio::select! {
                    permit = Arc::clone(cap).acquire_owned() => permit.ok(),
                    () = &mut shutdown => return None,
                },
            };
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => return Some(Accepted { stream, peer, permit }),
                    Err(err) => {
                        self.note_failure(&err);
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                () = &mut shutdown => return None,
            }
        }
    }

    /// Logs a failed accept: running out of descriptors once as a warning with the fix, the rest
    /// (a client gone before it was accepted) at debug level.
    fn note_failure(&mut self, err: &std::io::Error) {
        if limits::is_fd_exhaustion(err) {
            if !self.warned_fd_exhaustion {
                tracing::warn!(
                    "out of file descriptors, new connections wait: {err}; \
                     raise the limit with `ulimit -n` (hard limit: `ulimit -Hn`)"
                );
                self.warned_fd_exhaustion = true;
            }
        } else {
            tracing::debug!("accept failed: {err}");
        }
    }
}
