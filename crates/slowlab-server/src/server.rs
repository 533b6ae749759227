//! The accept loop, connection serving, connection faults, and bounded graceful shutdown.
//!
//! We own the loop (rather than `axum::serve`) so that the listen backlog, the connection cap,
//! per-connection settings, HTTP/2 and connection faults stay in our hands. Each connection is
//! served by hyper's HTTP/1.1 or HTTP/2 connection, chosen by peeking at its first bytes, so
//! HTTP/1.1 and HTTP/2 with prior knowledge (h2c) share the port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::task::JoinHandle;

use crate::accept::{Accepted, Acceptor};
use crate::config::Config;
use crate::drain::{Drain, DrainWatch};
use crate::metrics::CloseReason;
use crate::options::Fault;
use crate::respond::Abort;
use crate::service::{App, AppFuture};
use crate::stats::{Stats, StatsSnapshot};
use crate::watch::{
    Activity, Busy, Guarded, H2Frames, Timeouts, Watched, needs_watching, watchdog,
};

/// What `fault=malformed` sends instead of a response: not a status line, not HTTP at all.
const MALFORMED: &[u8] = b"SLOWLAB \x00 this is not HTTP\r\n\r\n";

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

/// Sets `TCP_NODELAY` on the listener, for the connections it accepts: true when they inherit it,
/// so that the accept loop need not make one `setsockopt` per connection.
///
/// Linux copies the option from the listening socket to each accepted one; elsewhere, or if the
/// call fails, each connection is set on its own as before.
fn nodelay_on_listener(listener: &TcpListener) -> bool {
    cfg!(target_os = "linux")
        && socket2::SockRef::from(listener)
            .set_tcp_nodelay(true)
            .is_ok()
}

/// Serves `listener` until `shutdown` completes, then drains in-flight requests for at most
/// `config.drain_timeout`. Fails at once, before serving, only if the threads of
/// `--model threads:N` cannot be started.
///
/// `stats` is updated as requests come and go; pass a fresh `Arc<Stats>` and keep a clone to watch.
/// With `config.max_connections`, connections over the cap are not accepted until one closes: they
/// wait in the kernel's accept queue (their connect succeeds; their request is read later).
pub async fn run(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ShutdownReport> {
    let app = App::new(Arc::new(config.clone()), Arc::clone(&stats))?;
    run_with(listener, config, stats, app, shutdown).await
}

/// What the accept loop hands each request to: serve's [`App`], or another service that wants
/// the same connections, limits, timeouts, faults and drain (the proxy).
pub trait Handler: Clone + Send + Sync + 'static {
    /// A request on its way. A response carrying a fault (see [`crate::respond::abort`]) ends the
    /// connection (HTTP/1.1) or the stream (HTTP/2) instead of being sent.
    type Future: Future<Output = Response<Body>> + Send + 'static;

    /// Starts handling `request` from the client at `peer`.
    fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Self::Future;

    /// Lets waits that would not end when their request is dropped end at `deadline` instead.
    fn stop_waits_at(&self, _deadline: std::time::Instant) {}

    /// How many waits [`Handler::stop_waits_at`] cut short.
    fn waits_stopped(&self) -> u64 {
        0
    }
}

impl Handler for App {
    type Future = AppFuture;

    fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> AppFuture {
        self.handle_from(request, Some(peer))
    }

    fn stop_waits_at(&self, deadline: std::time::Instant) {
        App::stop_waits_at(self, deadline);
    }

    fn waits_stopped(&self) -> u64 {
        App::waits_stopped(self)
    }
}

/// [`run`] with another [`Handler`] than serve's own: the same accept loop, connection cap,
/// timeouts, faults and bounded drain. `stats` should count the handler's requests in flight
/// (see [`Stats::track`]) for the drain to wait for them.
pub async fn run_with<H: Handler>(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
    app: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ShutdownReport> {
    let nodelay_inherited = nodelay_on_listener(&listener);
    let drain_timeout = config.drain_timeout;
    let config = Arc::new(config);
    let builders = Arc::new(Builders::new(&config));
    // Each connection hears of the drain, and of the cut at its end, through one watch channel;
    // the loop keeps no record of them (see `crate::drain`).
    let drain = Drain::new();
    let mut acceptor = Acceptor::new(listener, config.max_connections);

    tokio::pin!(shutdown);
    while let Some(Accepted {
        stream,
        peer,
        permit,
    }) = acceptor.next(shutdown.as_mut()).await
    {
        // Small JSON answers should leave at once, not wait for Nagle.
        if !nodelay_inherited {
            let _ = stream.set_nodelay(true);
        }
        let conn = Arc::new(ConnState::new(Arc::clone(&stats)));
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            let acceptor = tls.acceptor.clone();
            let service = ConnService {
                app: app.clone(),
                conn: Arc::clone(&conn),
                peer,
            };
            let mut watch = drain.watch();
            let builders = Arc::clone(&builders);
            tokio::spawn(async move {
                let _permit = permit;
                let handshake =
                    tokio::time::timeout(builders.first_byte_timeout, acceptor.accept(stream));
                let stream = match watch.unless_draining(handshake).await {
                    Some(Ok(Ok(stream))) => stream,
                    // Not TLS (a plain client on a TLS port), or too slow: nothing to serve.
                    Some(Ok(Err(err))) => {
                        tracing::debug!(%peer, "TLS handshake failed: {err}");
                        return;
                    }
                    // Too slow, or the server is stopping: nothing to serve.
                    Some(Err(_)) | None => return,
                };
                let protocol = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    Protocol::Http2
                } else {
                    Protocol::Http1
                };
                let io = FaultIo::new(stream, conn);
                if let Err(err) = builders.serve_as(watch, io, service, protocol).await {
                    tracing::debug!(%peer, "connection ended with an error: {err}");
                }
            });
            continue;
        }
        let io = FaultIo::new(stream, Arc::clone(&conn));
        let service = ConnService {
            app: app.clone(),
            conn,
            peer,
        };
        let watch = drain.watch();
        let builders = Arc::clone(&builders);
        tokio::spawn(plain_connection(builders, permit, watch, io, service, peer));
    }
    drop(acceptor);

    let in_flight_at_shutdown = stats.snapshot().in_flight;
    // Waits that hold a thread end at the deadline too, even if every worker is held.
    if let Some(deadline) = std::time::Instant::now().checked_add(drain_timeout) {
        app.stop_waits_at(deadline);
    }
    let all_closed = drain.run(drain_timeout).await;
    let cut = if all_closed {
        app.waits_stopped()
    } else {
        // Still in flight, plus the blocking sleeps that ended at the deadline on their own. A
        // sleep stopped at the deadline whose handler has not yet returned is in both counts, so
        // the sum is bounded by what was in flight when the drain began: only those requests can
        // have been cut off.
        stats
            .snapshot()
            .in_flight
            .saturating_add(app.waits_stopped())
            .min(in_flight_at_shutdown)
    };
    // Counted first: the connections cut off now end their requests.
    drain.cut_off();
    Ok(ShutdownReport {
        in_flight_at_shutdown,
        cut_off: cut,
    })
}

/// The first bytes of an HTTP/2 connection with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper's connection builders for both protocols, configured once.
///
/// We choose the protocol ourselves, by peeking at the first bytes without consuming them, rather
/// than with hyper-util's auto builder: the auto builder reads those bytes first, so hyper's HTTP/1.1
/// reader then sees a request in two pieces and doubles its 8 KiB read buffer for every connection.
/// Peeking also lets an HTTP/1.1 connection's task hold only HTTP/1.1 state.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    /// How long a connection may stay silent before its first byte.
    first_byte_timeout: Duration,
    timeouts: Timeouts,
}

impl Builders {
    fn new(config: &Config) -> Builders {
        // An embedder's config may never have been validated: bring every value into its range,
        // so that no timeout overflows a deadline and no size wraps. (The command line checks
        // each flag as it is parsed.)
        let config = &config.clone().within_ranges();
        // Our own limits answer with JSON; hyper's backstops sit well above them.
        let head_bytes = config.max_uri_bytes.saturating_add(config.max_header_bytes);
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            // The watchdog times request heads (see `crate::watch`): hyper's timer would also
            // close idle keep-alive connections, and costs a boxed sleep per request.
            .header_read_timeout(None::<Duration>)
            .max_headers(config.max_headers.saturating_mul(4).max(100))
            .max_buf_size(head_bytes.max(64 * 1024).saturating_mul(4));
        let header_list = head_bytes.saturating_mul(4);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            // Streams here mostly wait: thousands per connection, each cheap.
            .max_concurrent_streams(config.h2_max_streams)
            // Request bodies are not read, so small receive windows cost nothing and bound memory.
            .initial_stream_window_size(64 * 1024)
            .initial_connection_window_size(1024 * 1024)
            .max_send_buf_size(64 * 1024)
            .max_header_list_size(u32::try_from(header_list).unwrap_or(u32::MAX))
            // Floods end in GOAWAY ENHANCE_YOUR_CALM (counted as `h2_flood`). These are h2's and
            // hyper's own defaults, pinned so that an upgrade cannot loosen them unnoticed:
            // streams reset before they were served (rapid reset), and streams the server had to
            // reset itself.
            .max_pending_accept_reset_streams(20)
            .max_local_error_reset_streams(1024);
        Builders {
            http1,
            http2,
            first_byte_timeout: config.header_read_timeout,
            timeouts: Timeouts::new(config),
        }
    }

    /// Serves one connection with the protocol its first bytes announce, until it ends, the server
    /// shuts down gracefully, or one of its timeouts passes (see [`crate::watch`]).
    #[allow(clippy::manual_async_fn)]
    fn serve<H: Handler>(
        &self,
        mut watch: DrainWatch,
        mut io: FaultIo,
        service: ConnService<H>,
    ) -> impl Future<Output = Result<(), hyper::Error>> + Send + '_ {
        async move {
            let first_bytes = tokio::time::timeout(self.first_byte_timeout, sniff(&mut io));
            let protocol = match watch.unless_draining(first_bytes).await {
                Some(Ok(Ok(protocol))) => protocol,
                // Closed or failed before its first bytes, or the server is stopping: nothing to
                // serve.
                Some(Ok(Err(_))) | None => return Ok(()),
                Some(Err(_)) => {
                    let metrics = io.conn.stats.metrics();
                    metrics.connection_closed_by_server(CloseReason::HeaderTimeout);
                    return Ok(());
                }
            };
            self.serve_as(watch, io, service, protocol).await
        }
    }

    /// Serves one connection whose protocol is known (by its first bytes, or by TLS's ALPN).
    #[allow(clippy::manual_async_fn)]
    fn serve_as<S: Socket, H: Handler>(
        &self,
        watch: DrainWatch,
        mut io: FaultIo<S>,
        service: ConnService<H>,
        protocol: Protocol,
    ) -> impl Future<Output = Result<(), hyper::Error>> + Send + '_ {
        async move {
            let conn = Arc::clone(&io.conn);
            let metrics = conn.stats.metrics();
            let activity = &conn.activity;
            let served = match protocol {
                Protocol::Http1 => {
                    activity.head_expected();
                    let connection = self.http1.serve_connection(TokioIo::new(io), service);
                    Guarded::new(
                        connection,
                        watchdog(activity, self.timeouts, false, watch),
                        activity,
                    )
                    .await
                }
                Protocol::Http2 => {
                    io.h2 = Some(H2Frames::new(H2_PREFACE.len()));
                    let connection = self.http2.serve_connection(TokioIo::new(io), service);
                    // Boxed, so that the far more numerous HTTP/1.1 tasks stay small.
                    let connection = Box::pin(connection);
                    let watchdog = watchdog(activity, self.timeouts, true, watch);
                    Guarded::new(connection, watchdog, activity).await
                }
            };
            match served {
                Ok(result) => {
                    if let Err(err) = &result
                        && let Some(reason) = crate::h2_close::close_reason(err)
                    {
                        metrics.connection_closed_by_server(reason);
                    }
                    result
                }
                Err(reason) => {
                    tracing::debug!("connection closed: {reason:?}");
                    metrics.connection_closed_by_server(reason);
                    Ok(())
                }
            }
        }
    }
}

/// The task of one plain-TCP connection: it holds the connection's place under
/// `--max-connections` (`permit`) until the connection ends. A named function rather than an
/// async block, so that its size, which every open connection costs, can be measured.
///
/// Not an `async fn`, nor are [`Builders::serve`] and [`Builders::serve_as`]: an `async fn`
/// copies its arguments into locals of its own state and keeps the room they were passed in as
/// well, so the socket and the service would be held twice at each level.
#[allow(clippy::manual_async_fn)]
fn plain_connection<H: Handler>(
    builders: Arc<Builders>,
    permit: Option<OwnedSemaphorePermit>,
    watch: DrainWatch,
    io: FaultIo,
    service: ConnService<H>,
    peer: SocketAddr,
) -> impl Future<Output = ()> + Send {
    async move {
        let _permit = permit;
        if let Err(err) = builders.serve(watch, io, service).await {
            tracing::debug!(%peer, "connection ended with an error: {err}");
        }
    }
}

/// A connection's protocol.
enum Protocol {
    Http1,
    Http2,
}

/// Tells HTTP/2 with prior knowledge from HTTP/1.1 by peeking at the first bytes, which stay in the
/// socket for hyper to read.
///
/// When the first bytes are only part of the preface (`PRI`), peeking again would find the same
/// bytes at once, and the socket stays readable, so there is nothing to wait on. Those bytes are
/// read instead and kept for hyper (see [`FaultIo::replay`]), and the wait for the rest is on the
/// socket's readiness: a connection that sends `PRI` and stops costs nothing until it times out.
async fn sniff(io: &mut FaultIo) -> io::Result<Protocol> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let n = io.inner.peek(&mut buf).await?;
    if let Some(protocol) = recognise(&buf[..n])? {
        return Ok(protocol);
    }
    let mut have = 0;
    loop {
        io.inner.readable().await?;
        match io.inner.try_read(&mut buf[have..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => {
                have += read;
                io.replay.extend_from_slice(&buf[have - read..have]);
                if let Some(protocol) = recognise(&buf[..have])? {
                    return Ok(protocol);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// The protocol the first bytes announce, or `None` while they are a strict prefix of the preface.
fn recognise(first: &[u8]) -> io::Result<Option<Protocol>> {
    if first.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if first != &H2_PREFACE[..first.len()] {
        return Ok(Some(Protocol::Http1));
    }
    Ok((first.len() == H2_PREFACE.len()).then_some(Protocol::Http2))
}

/// No fault pending on a connection.
const NO_FAULT: u8 = 0;
const FAULT_RESET: u8 = 1;
const FAULT_MALFORMED: u8 = 2;

/// What a connection's service shares with its socket: the fault to apply when hyper lets go of
/// it, what happened when (for the timeouts), and the open-connections gauge.
#[derive(Debug)]
struct ConnState {
    fault: AtomicU8,
    stats: Arc<Stats>,
    activity: Arc<Activity>,
}

impl ConnState {
    fn new(stats: Arc<Stats>) -> ConnState {
        stats.metrics().connection_opened();
        ConnState {
            fault: AtomicU8::new(NO_FAULT),
            stats,
            activity: Arc::new(Activity::new()),
        }
    }
}

impl Drop for ConnState {
    fn drop(&mut self) {
        self.stats.metrics().connection_closed();
    }
}

/// A connection's byte stream: the TCP socket itself, or TLS over it. Faults act on the TCP
/// socket underneath.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether closing the socket does all that shutting it down would: true for plain TCP,
    /// whose close sends the FIN a shutdown would; false for TLS, whose shutdown also sends
    /// `close_notify`.
    const CLOSE_SENDS_ALL: bool;

    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    const CLOSE_SENDS_ALL: bool = true;

    fn tcp(&self) -> &TcpStream {
        self
    }
}

#[cfg(feature = "tls")]
impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    const CLOSE_SENDS_ALL: bool = false;

    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// The socket as hyper sees it, able to end with a fault: a TCP RST (SO_LINGER 0), or bytes that
/// are not HTTP, when hyper shuts it down or drops it after a faulting request. It also notes every
/// read and write for the connection's timeouts.
struct FaultIo<S: Socket = TcpStream> {
    inner: S,
    conn: Arc<ConnState>,
    /// Bytes read while telling the protocol, handed to hyper before the socket's own.
    replay: Vec<u8>,
    /// Over HTTP/2, the frame boundaries seen so far.
    h2: Option<H2Frames>,
    /// The client has closed its side (a read found the end of the stream).
    peer_closed: bool,
}

impl<S: Socket> FaultIo<S> {
    fn new(inner: S, conn: Arc<ConnState>) -> FaultIo<S> {
        FaultIo {
            inner,
            conn,
            replay: Vec::new(),
            h2: None,
            peer_closed: false,
        }
    }

    /// Applies a pending fault, once. Returns true for a reset, which must not send a FIN first.
    fn apply_fault(&mut self) -> bool {
        match self.conn.fault.swap(NO_FAULT, Ordering::Relaxed) {
            FAULT_RESET => {
                // Closing a socket with a zero linger sends RST instead of FIN.
                let _ = self.inner.tcp().set_zero_linger();
                true
            }
            FAULT_MALFORMED => {
                // A few bytes into an idle socket's empty send buffer: this write does not block.
                let _ = self.inner.tcp().try_write(MALFORMED);
                false
            }
            _ => false,
        }
    }
}

impl<S: Socket> AsyncRead for FaultIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if this.replay.is_empty() {
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        } else {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.drain(..n);
        }
        let read = &buf.filled()[before..];
        if read.is_empty() {
            this.peer_closed |= buf.remaining() > 0;
        } else {
            let activity = &this.conn.activity;
            activity.read(this.h2.is_none());
            if let Some(frames) = &mut this.h2 {
                frames.follow(read, activity);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: Socket> AsyncWrite for FaultIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.conn
            .activity
            .wrote(written.is_ready(), self.h2.is_none());
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.conn
            .activity
            .wrote(written.is_ready(), self.h2.is_none());
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.apply_fault() {
            return Poll::Ready(Ok(()));
        }
        // The client has closed, so the connection is about to be dropped, and closing the socket
        // sends the FIN: a `shutdown` first would cost a system call, and would wake the epoll
        // waiters of a socket that is going away (scenario 2 and 6: every connection ends so).
        if S::CLOSE_SENDS_ALL && self.peer_closed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Socket> Drop for FaultIo<S> {
    fn drop(&mut self) {
        self.apply_fault();
    }
}

/// The error a service returns to make hyper end a connection (HTTP/1.1) or reset a stream
/// (HTTP/2) without answering.
#[derive(Debug, thiserror::Error)]
#[error("fault={} served on purpose", .0.name())]
struct FaultServed(Fault);

/// The per-connection service: the server's [`App`], then faults and the connection's
/// in-flight count.
#[derive(Clone)]
struct ConnService<H> {
    app: H,
    conn: Arc<ConnState>,
    /// The client's address, for the request log.
    peer: SocketAddr,
}

impl<H: Handler> hyper::service::Service<Request<Incoming>> for ConnService<H> {
    type Response = Response<Body>;
    type Error = FaultServed;
    type Future = ConnFuture<H::Future>;

    fn call(&self, mut request: Request<Incoming>) -> ConnFuture<H::Future> {
        let http1 = request.version() < Version::HTTP_2;
        if http1 {
            let activity = &self.conn.activity;
            activity.head_read();
            if !http_body::Body::is_end_stream(request.body()) {
                let arriving = activity.body_arriving();
                request.extensions_mut().insert(arriving);
            }
        }
        ConnFuture {
            busy: Some(self.conn.activity.busy()),
            handled: self.app.handle(request, self.peer),
            conn: Arc::clone(&self.conn),
            http1,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request on its way through [`ConnService`].
    struct ConnFuture<F> {
        #[pin]
        handled: F,
        conn: Arc<ConnState>,
        busy: Option<Busy>,
        http1: bool,
    }
}

impl<F: Future<Output = Response<Body>>> Future for ConnFuture<F> {
    type Output = Result<Response<Body>, FaultServed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.handled.poll(cx));
        if let Some(Abort(fault)) = response.extensions().get::<Abort>().copied() {
            if *this.http1 {
                let code = match fault {
                    Fault::Reset => FAULT_RESET,
                    Fault::Malformed => FAULT_MALFORMED,
                    _ => NO_FAULT,
                };
                this.conn.fault.store(code, Ordering::Relaxed);
            }
            return Poll::Ready(Err(FaultServed(fault)));
        }
        // A body that takes more than one write keeps the request in flight on the connection
        // until it is sent, and is watched for a stalled write.
        let response = match this.busy.take() {
            Some(busy) if needs_watching(response.body()) => {
                response.map(|body| Body::new(Watched::new(body, busy)))
            }
            _ => response,
        };
        Poll::Ready(Ok(response))
    }
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
    /// `http`, or `https` when the server speaks TLS.
    scheme: &'static str,
    stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<ShutdownReport>>>,
}

/// Binds `config.addr` and serves it on the current runtime until the returned handle is shut down
/// or dropped. Fails if the address cannot be bound or the model's threads cannot be started.
pub async fn spawn(config: Config) -> io::Result<Server> {
    // Started here too, so that a model that cannot start is an error now, not a dead server.
    drop(crate::model::Waiter::new(config.model)?);
    let listener = bind(config.addr, config.backlog)?;
    let addr = listener.local_addr()?;
    #[cfg(feature = "tls")]
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    #[cfg(not(feature = "tls"))]
    let scheme = "http";
    let stats = Arc::new(Stats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, config, Arc::clone(&stats), async move {
        let _ = stopped.await;
    }));
    Ok(Server {
        addr,
        scheme,
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

    /// `http://ADDR` (`https://` with TLS), without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// `http://ADDR` followed by `path`, e.g. `server.url("/0.5")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// The live counters of this server.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The metrics served at `/metrics`, read directly.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.stats.metrics()
    }

    /// Stops accepting, drains in-flight requests (bounded by the drain timeout), and reports.
    pub async fn shutdown(mut self) -> ShutdownReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.ok().and_then(Result::ok).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The accept loop skips its per-connection `setsockopt` only where connections inherit
    /// `TCP_NODELAY`; this checks that the kernel really hands it on.
    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 16).expect("bind");
        let inherited = nodelay_on_listener(&listener);
        assert_eq!(inherited, cfg!(target_os = "linux"));
        let addr = listener.local_addr().expect("local address");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        if inherited {
            assert!(accepted.nodelay().expect("getsockopt"));
        }
        drop(client);
    }

    /// A connection's end sends the client a FIN either way: at once from `shutdown` while the
    /// client is still open, and from the close when the client has closed first (then the
    /// socket is not shut down on its own, saving a system call per connection).
    #[tokio::test]
    async fn shutdown_is_left_to_the_close_once_the_client_has_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 16).expect("bind");
        let addr = listener.local_addr().expect("local address");
        let stats = Arc::new(Stats::default());
        let mut byte = [0u8; 1];

        // The client is still open: the shutdown sends the FIN.
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        let mut io = FaultIo::new(accepted, Arc::new(ConnState::new(Arc::clone(&stats))));
        io.shutdown().await.expect("shutdown");
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte)).await;
        assert_eq!(read.expect("a FIN").expect("read"), 0);
        drop(io);

        // The client has closed: nothing is sent until the socket is closed.
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        let mut io = FaultIo::new(accepted, Arc::new(ConnState::new(Arc::clone(&stats))));
        client.shutdown().await.expect("the client's half-close");
        assert_eq!(io.read(&mut byte).await.expect("read"), 0);
        io.shutdown().await.expect("shutdown");
        let early = tokio::time::timeout(Duration::from_millis(200), client.read(&mut byte)).await;
        assert!(
            early.is_err(),
            "the socket was shut down before it was closed"
        );
        drop(io);
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte)).await;
        assert_eq!(read.expect("a FIN").expect("read"), 0);
    }

    /// Every open HTTP/1.1 connection's task is allocated whole by tokio (with its header and
    /// trailer), so its size is memory per waiting request (issue 23). 2,032 bytes in release and
    /// 2,064 unoptimised with rustc 1.95; the bound, 2,112, catches `async fn`s' copies of their
    /// arguments coming back (2,320 and 2,368). A guard on structure, not on timing.
    #[tokio::test]
    async fn connection_task_size() {
        let config = Config::default();
        let stats = Arc::new(Stats::default());
        let app = App::new(Arc::new(config.clone()), Arc::clone(&stats)).expect("app");
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 16).expect("bind");
        let addr = listener.local_addr().expect("local address");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, peer) = listener.accept().await.expect("accept");
        let conn = Arc::new(ConnState::new(Arc::clone(&stats)));
        let io = FaultIo::new(accepted, Arc::clone(&conn));
        let service = ConnService { app, conn, peer };
        let drain = Drain::new();
        let builders = Arc::new(Builders::new(&config));
        let task = plain_connection(builders, None, drain.watch(), io, service, peer);
        let size = std::mem::size_of_val(&task);
        eprintln!("plain_connection: {size} bytes");
        assert!(size <= 2112, "a connection's task is {size} bytes");
    }
}
