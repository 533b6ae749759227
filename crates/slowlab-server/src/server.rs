//! The accept loop, connection serving, and bounded graceful shutdown.
//!
//! We own the loop (rather than `axum::serve`) so that the listen backlog, per-connection settings,
//! HTTP/2 and connection faults stay in our hands.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::routes::app;
use crate::stats::{Stats, StatsSnapshot};

/// Pause after an accept error such as "too many open files", so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How a server's shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Requests in flight when shutdown began.
    pub in_flight_at_shutdown: u64,
    /// Requests still in flight when the drain timeout ran out, and so cut off.
    pub cut_off: u64,
}

/// Binds `addr` with an explicit accept backlog (`Config::backlog`).
///
/// tokio's `TcpListener::bind` picks its own, shallower backlog; a burst of thousands of connects then
/// waits on SYN retries instead of being queued.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `listener` until `shutdown` completes, then drains in-flight requests for at most
/// `config.drain_timeout`.
///
/// `stats` is updated as requests come and go; pass a fresh `Arc<Stats>` and keep a clone to watch.
pub async fn run(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> ShutdownReport {
    let drain_timeout = config.drain_timeout;
    let service = TowerToHyperService::new(app(Arc::new(config.clone()), Arc::clone(&stats)));
    let builder = connection_builder(&config);
    let graceful = GracefulShutdown::new();
    // Cancelled when the drain deadline passes: every connection task ends at once.
    let cut_off = CancellationToken::new();
    let mut warned_fd_exhaustion = false;

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    if is_fd_exhaustion(&err) {
                        if !warned_fd_exhaustion {
                            tracing::warn!(
                                "out of file descriptors, new connections wait: {err}; \
                                 raise the limit with `ulimit -n` (hard limit: `ulimit -Hn`)"
                            );
                            warned_fd_exhaustion = true;
                        }
                    } else {
                        tracing::debug!("accept failed: {err}");
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON answers should leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        let cut_off = cut_off.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, "connection ended with an error: {err}");
                    }
                }
                () = cut_off.cancelled() => {}
            }
        });
    }
    drop(listener);

    let in_flight_at_shutdown = stats.snapshot().in_flight;
    let drained = tokio::time::timeout(drain_timeout, graceful.shutdown()).await;
    let cut = match drained {
        Ok(()) => 0,
        Err(_) => stats.snapshot().in_flight,
    };
    cut_off.cancel();
    ShutdownReport {
        in_flight_at_shutdown,
        cut_off: cut,
    }
}

fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // Our own limits answer with JSON; hyper's backstops sit well above them.
        .max_headers(config.max_headers.saturating_mul(4).max(100))
        .max_buf_size((config.max_uri_bytes + config.max_header_bytes).max(64 * 1024) * 4);
    builder
}

fn is_fd_exhaustion(err: &io::Error) -> bool {
    // EMFILE (per process) and ENFILE (system wide) on Linux and the BSDs.
    matches!(err.raw_os_error(), Some(23 | 24))
}

/// A server running in the background of the current tokio runtime: the handle tests and embedders
/// hold. Dropping it starts shutdown; [`Server::shutdown`] also waits for the drain.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let server = slowlab_server::spawn(slowlab_server::Config::default()).await?;
/// let url = server.url("/0.05"); // e.g. http://127.0.0.1:41234/0.05
/// assert!(url.starts_with("http://127.0.0.1:"));
/// let report = server.shutdown().await;
/// assert_eq!(report.cut_off, 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<ShutdownReport>>,
}

/// Binds `config.addr` and serves it on the current runtime until the returned handle is shut down
/// or dropped.
pub async fn spawn(config: Config) -> io::Result<Server> {
    let listener = bind(config.addr, config.backlog)?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, config, Arc::clone(&stats), async move {
        let _ = stopped.await;
    }));
    Ok(Server {
        addr,
        stats,
        stop: Some(stop),
        task: Some(task),
    })
}

impl Server {
    /// The address actually bound (the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR` followed by `path`, e.g. `server.url("/0.5")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// The live counters of this server.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Stops accepting, drains in-flight requests (bounded by the drain timeout), and reports.
    pub async fn shutdown(mut self) -> ShutdownReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => ShutdownReport::default(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
