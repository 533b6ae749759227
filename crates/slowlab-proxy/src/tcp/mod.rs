//! The TCP proxy (`slowlab proxy --tcp`): copies bytes both ways between each client and one
//! upstream address, with Toxiproxy's effects on each direction, for protocols that are not HTTP
//! (Postgres, Redis, gRPC without parsing it).
//!
//! - [`TcpEffects`]: what happens to bytes, per [`Direction`]: `latency=` (+ `jitter=`), `bps=`,
//!   `slice=` (+ `slice_variation=`, `slice_delay=`), `timeout=`, `reset_after=`, and `down`;
//!   written in serve's option grammar, as a flag or as a `[[tcp]]` table of the rules file.
//! - [`LiveTcpEffects`]: the effects in force, reloaded on SIGHUP or `--watch`; each connection keeps
//!   the effects it was accepted with, but `down` closes every connection and refuses new ones.
//! - [`run`]: the accept loop, with serve's connection cap and a bounded drain on shutdown.
//! - [`TcpStats`]: counters for `/metrics`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use slowlab_proxy::tcp::{self, LiveTcpEffects, TcpConfig, TcpEffects, TcpStats};
//! use std::sync::Arc;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let effects = TcpEffects::parse("direction=downstream&latency=0.1", "--tcp-effect")
//!     .expect("valid effects");
//! let config = TcpConfig::new("127.0.0.1:6379");
//! let stats = Arc::new(TcpStats::default());
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! tcp::run(listener, config, LiveTcpEffects::fixed(effects), stats, shutdown).await?;
//! # Ok(()) }
//! ```

mod effects;
mod listening;
mod live;
mod pipe;
#[cfg(target_os = "linux")]
mod splice;
mod stats;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use slowlab_server::accept::{Accepted, Acceptor};

use crate::own_address::leads_back;

pub use effects::{Direction, DirectionEffects, EffectsError, KEYS, Slice, TcpEffects};
pub use live::{LiveTcpEffects, effects_from};
pub use stats::{TcpStats, TcpStatsSnapshot};

use pipe::{End, pipe};
use stats::bump;

/// How the TCP proxy runs, apart from its effects.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Where every connection goes: `host:port` (or `tcp://host:port`), resolved for each
    /// connection.
    pub upstream: String,
    /// At most this many connections at once; others wait in the kernel's accept queue.
    pub max_connections: Option<usize>,
    /// How long to wait for the upstream to accept a connection before closing the client's.
    pub connect_timeout: Duration,
    /// How long open connections may go on after shutdown begins before they are cut off.
    pub drain_timeout: Duration,
}

impl TcpConfig {
    /// Defaults for `upstream`: no connection cap, 10 s to connect, 5 s to drain.
    pub fn new(upstream: impl Into<String>) -> TcpConfig {
        TcpConfig {
            upstream: upstream.into(),
            max_connections: None,
            connect_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// The upstream's `host:port` from `--upstream`, written `HOST:PORT` or `tcp://HOST:PORT`; an
/// error says what would be right.
pub fn parse_upstream(upstream: &str) -> Result<String, String> {
    let hint = "write the service's address as HOST:PORT (or tcp://HOST:PORT), e.g. 127.0.0.1:6379";
    let address = upstream.strip_prefix("tcp://").unwrap_or(upstream);
    if address.contains("://") {
        return Err(format!(
            "{upstream:?} has a scheme other than tcp://, but TCP mode forwards bytes, not URLs; \
             {hint}"
        ));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("{upstream:?} has no port; {hint}"));
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{upstream:?} has no host; {hint}"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(address.to_owned()),
        _ => Err(format!("{port:?} is not a port (1 to 65535); {hint}")),
    }
}

/// Proxies connections accepted on `listener` to `config.upstream` until `shutdown` completes, then
/// lets open connections finish for at most `config.drain_timeout` and cuts off the rest.
///
/// Each connection takes `effects.current()` when it is accepted and keeps it, but for `down`: while
/// it is on, the listener stops listening (new connections are refused) and the connections open
/// are closed; when it is lifted, the listener listens on its address again. Fails before serving,
/// with [`io::ErrorKind::InvalidInput`], if the upstream is not `host:port` (see
/// [`parse_upstream`]) or leads back to the listener (a loop: see [`refuse_loop`]).
pub async fn run(
    listener: TcpListener,
    config: TcpConfig,
    effects: LiveTcpEffects,
    stats: Arc<TcpStats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<TcpStatsSnapshot> {
    let mut config = config;
    config.upstream = parse_upstream(&config.upstream)
        .map_err(|detail| io::Error::new(io::ErrorKind::InvalidInput, detail))?;
    refuse_loop(listener.local_addr()?, &config.upstream).await?;
    let config = Arc::new(config);
    let mut acceptor = Acceptor::new(listener, config.max_connections);
    let own = acceptor.listener().local_addr()?;
    let mut changes = effects.watch();
    // Whether `down` can stop the listening socket here; if not, connections accepted while down
    // are reset instead.
    let mut can_stop_listening = true;
    let mut connections = JoinSet::new();

    tokio::pin!(shutdown);
    loop {
        if changes.borrow_and_update().down && can_stop_listening {
            match listening::stop(acceptor.listener(), own) {
                Ok(()) => {
                    tracing::info!("down: refusing connections to {own}");
                    if !wait_until_up(&mut acceptor, own, &mut changes, shutdown.as_mut()).await {
                        break;
                    }
                    tracing::info!("up: accepting connections to {own} again");
                    continue;
                }
                Err(err) => {
                    tracing::warn!(
                        "down: cannot stop listening ({err}); connections are accepted and \
                         reset instead"
                    );
                    can_stop_listening = false;
                }
            }
        }
        let mut stopping = false;
        let accepted = {
            let watch_down = can_stop_listening;
            let stop = async {
                tokio::select! {
                    () = &mut shutdown => stopping = true,
                    () = went_down(&mut changes), if watch_down => {}
                }
            };
            tokio::pin!(stop);
            acceptor.next(stop).await
        };
        let Some(Accepted {
            stream: client,
            peer,
            permit,
        }) = accepted
        else {
            if stopping {
                break;
            }
            // `down` came: the top of the loop stops listening.
            continue;
        };
        bump(&stats.accepted);
        let effects = effects.current();
        if effects.down {
            // Accepted just before `down` stopped the listener, or where it cannot be stopped.
            bump(&stats.refused);
            reset(&client);
            continue;
        }
        let config = Arc::clone(&config);
        let stats = Arc::clone(&stats);
        let mut changes = changes.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _open = OpenGuard::new(&stats);
            // `down` belongs to the proxy, not to a connection's effects: it closes the
            // connections open, as Toxiproxy does, as well as refusing new ones.
            tokio::select! {
                () = proxy(client, peer, &config, &effects, &stats) => {}
                () = went_down(&mut changes) => bump(&stats.closed_by_down),
            }
        });
        // Forget the connections that have ended, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(acceptor);

    let drained = tokio::time::timeout(config.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        stats
            .cut_off
            .fetch_add(connections.len() as u64, Ordering::Relaxed);
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(stats.snapshot())
}

/// While `down`, with the listener stopped: waits until `down` is lifted and listens again (true),
/// or until shutdown begins (false). Listening again is retried each second if the address was
/// taken meanwhile.
async fn wait_until_up<F: Future<Output = ()>>(
    acceptor: &mut Acceptor,
    own: SocketAddr,
    changes: &mut watch::Receiver<Arc<TcpEffects>>,
    mut shutdown: Pin<&mut F>,
) -> bool {
    tokio::select! {
        () = went_up(changes) => {}
        () = &mut shutdown => return false,
    }
    let mut warned = false;
    loop {
        match listening::resume(acceptor.listener(), own) {
            Ok(fresh) => {
                drop(acceptor.replace_listener(fresh));
                return true;
            }
            Err(err) => {
                if !warned {
                    tracing::warn!("up: cannot listen on {own} again ({err}); retrying");
                    warned = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = &mut shutdown => return false,
                }
            }
        }
    }
}

/// Completes when the effects in force are `down` (at once if they are now).
async fn went_down(changes: &mut watch::Receiver<Arc<TcpEffects>>) {
    if changes.wait_for(|effects| effects.down).await.is_err() {
        // Nothing can change the effects any more: they stay as they are.
        std::future::pending::<()>().await;
    }
}

/// Completes when the effects in force are no longer `down`.
async fn went_up(changes: &mut watch::Receiver<Arc<TcpEffects>>) {
    if changes.wait_for(|effects| !effects.down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Refuses an upstream that leads back to `own`, the proxy's listening address: every
/// connection would connect to the proxy again until the file descriptors ran out. An unspecified
/// upstream (`0.0.0.0`, `::`) counts as loopback, where connecting to it goes. Callers that print
/// the address they listen on call this first, so that a loop is an error before anything else.
pub async fn refuse_loop(own: SocketAddr, upstream: &str) -> io::Result<()> {
    let upstream = parse_upstream(upstream)
        .map_err(|detail| io::Error::new(io::ErrorKind::InvalidInput, detail))?;
    // Only addresses that resolve now can be compared; one that does not is left to connect time.
    let Ok(mut addrs) = tokio::net::lookup_host(upstream.as_str()).await else {
        return Ok(());
    };
    if addrs.any(|addr| leads_back(own, addr)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the upstream {upstream} leads back to the proxy's own address {own}: every \
                 connection would loop back to the proxy; point --upstream at the service"
            ),
        ));
    }
    Ok(())
}

/// One client connection: connect to the upstream, then copy both ways with `effects`.
async fn proxy(
    mut client: TcpStream,
    peer: SocketAddr,
    config: &TcpConfig,
    effects: &TcpEffects,
    stats: &TcpStats,
) {
    let connect = TcpStream::connect(config.upstream.as_str());
    let mut upstream = match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(err)) => {
            tracing::debug!(%peer, upstream = %config.upstream, "cannot connect upstream: {err}");
            bump(&stats.upstream_failed);
            // Refused upstream, refused here: the client sees a reset, as it would without us.
            reset(&client);
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, upstream = %config.upstream, "upstream connect timed out");
            bump(&stats.upstream_failed);
            reset(&client);
            return;
        }
    };
    // Small writes (a Redis command, a sliced piece) should leave at once, not wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let end = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let up = pipe(
            client_read,
            upstream_write,
            &effects.upstream,
            &stats.bytes_upstream,
        );
        let down = pipe(
            upstream_read,
            client_write,
            &effects.downstream,
            &stats.bytes_downstream,
        );
        both_ways(up, down, effects.close_after()).await
    };
    match end {
        Ending::Closed => {}
        Ending::Reset => {
            bump(&stats.resets);
            reset(&client);
            reset(&upstream);
        }
        Ending::TimedOut => bump(&stats.timeouts),
    }
}

/// How a whole connection ended.
enum Ending {
    /// Both sides closed, or one failed and both are closed.
    Closed,
    /// To be reset on both sides.
    Reset,
    /// `timeout=` ran out.
    TimedOut,
}

/// Runs both directions until both have closed, one resets or fails, or `timeout=` runs out.
async fn both_ways(
    up: impl Future<Output = End>,
    down: impl Future<Output = End>,
    close_after: Option<Option<Duration>>,
) -> Ending {
    let timer = async {
        match close_after {
            Some(Some(after)) => tokio::time::sleep(after).await,
            _ => std::future::pending().await,
        }
    };
    tokio::pin!(up, down, timer);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        let end = tokio::select! {
            end = &mut up, if !up_done => { up_done = true; end }
            end = &mut down, if !down_done => { down_done = true; end }
            () = &mut timer => return Ending::TimedOut,
        };
        match end {
            End::Closed if up_done && down_done => return Ending::Closed,
            End::Closed => {}
            End::Reset => return Ending::Reset,
            End::Failed => return Ending::Closed,
        }
    }
}

/// Counts a connection as open while it lives, including one cut off at the drain deadline (its
/// task is dropped, not finished).
struct OpenGuard<'a>(&'a TcpStats);

impl OpenGuard<'_> {
    fn new(stats: &TcpStats) -> OpenGuard<'_> {
        stats.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(stats)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resets `stream` when it is dropped: SO_LINGER 0, so closing sends RST instead of FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}
