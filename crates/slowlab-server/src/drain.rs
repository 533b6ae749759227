//! The drain on shutdown: every open connection is told to finish what it has in flight and
//! close, and those still open when the drain's time is up are cut off.
//!
//! One watch channel carries the drain's deadline to every connection. A connection being served
//! hears it through its watchdog (see [`crate::watch`]), which asks hyper for a graceful shutdown
//! and adds the deadline to the ones it keeps; a connection still being set up (its first bytes,
//! its TLS handshake) has nothing in flight and ends at once. So the accept loop keeps no record
//! of its connections: no set to insert each into and take each out of, and no task to abort.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use tokio::sync::watch;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The sending side, kept by the accept loop.
#[derive(Debug)]
pub(crate) struct Drain {
    deadline: watch::Sender<Option<Instant>>,
}

/// What each connection holds: the drain's deadline once it has begun.
#[derive(Debug, Clone)]
pub(crate) struct DrainWatch {
    deadline: watch::Receiver<Option<Instant>>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain {
            deadline: watch::Sender::new(None),
        }
    }

    /// A watch for one more connection.
    pub(crate) fn watch(&self) -> DrainWatch {
        DrainWatch {
            deadline: self.deadline.subscribe(),
        }
    }

    /// Begins the drain and waits until every connection has closed or `timeout` has passed;
    /// says whether all closed in time. Connections still open then close on their own at the
    /// deadline.
    pub(crate) async fn run(self, timeout: Duration) -> bool {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(far_future);
        // Kept even with no connection to hear it, for one still being set up.
        self.deadline.send_replace(Some(deadline));
        tokio::time::timeout_at(deadline, self.deadline.closed())
            .await
            .is_ok()
    }
}

impl DrainWatch {
    /// The drain's deadline, as soon as it has begun; never resolves before.
    pub(crate) async fn begun(&mut self) -> Instant {
        loop {
            if let Some(deadline) = *self.deadline.borrow_and_update() {
                return deadline;
            }
            if self.deadline.changed().await.is_err() {
                // The server went away without draining: nothing will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Runs `work` unless the drain begins first, when it is dropped: for a connection still
    /// being set up, which has nothing in flight to finish.
    pub(crate) async fn unless_draining<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            output = work => Some(output),
            _ = self.begun() => None,
        }
    }
}

/// A connection that can be asked to finish what it has in flight and then close: hyper's, over
/// either protocol.
pub(crate) trait Drainable {
    fn drain(self: Pin<&mut Self>);
}

impl<I, S, B> Drainable for http1::Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> Drainable for http2::Connection<I, S, E>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    E: Http2ServerConnExec<S::Future, B>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// A boxed connection (HTTP/2's, so that HTTP/1.1 tasks stay small).
impl<C: Drainable + ?Sized> Drainable for Pin<Box<C>> {
    fn drain(self: Pin<&mut Self>) {
        self.get_mut().as_mut().drain();
    }
}

/// A deadline no drain reaches: about thirty years from now.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_hears_the_deadline_and_the_drain_waits_for_its_connections() {
        let drain = Drain::new();
        let mut watch = drain.watch();
        let connection = tokio::spawn(async move {
            let deadline = watch.begun().await;
            drop(watch);
            deadline
        });
        let started = Instant::now();
        assert!(
            drain.run(Duration::from_secs(30)).await,
            "the only connection closed"
        );
        let deadline = connection.await.expect("the connection's task");
        assert!(deadline >= started + Duration::from_secs(30));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no wait past the last close"
        );
    }

    #[tokio::test]
    async fn the_drain_gives_up_at_its_deadline_which_a_late_look_still_sees() {
        let drain = Drain::new();
        let mut never_looked = drain.watch();
        let started = Instant::now();
        assert!(!drain.run(Duration::from_millis(50)).await);
        assert!(started.elapsed() >= Duration::from_millis(50));
        let deadline = tokio::time::timeout(Duration::from_secs(5), never_looked.begun())
            .await
            .expect("the deadline was kept");
        assert!(deadline >= started + Duration::from_millis(50));
    }

    #[tokio::test]
    async fn set_up_is_dropped_once_the_drain_begins() {
        let drain = Drain::new();
        let mut watch = drain.watch();
        assert_eq!(watch.unless_draining(async { 7 }).await, Some(7));
        let setting_up =
            tokio::spawn(async move { watch.unless_draining(std::future::pending::<()>()).await });
        tokio::task::yield_now().await;
        drain.run(Duration::from_secs(5)).await;
        let outcome = tokio::time::timeout(Duration::from_secs(5), setting_up)
            .await
            .expect("set-up ends when the drain begins")
            .expect("the task");
        assert_eq!(outcome, None);
    }
}
