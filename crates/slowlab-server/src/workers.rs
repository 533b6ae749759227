//! Serving on several threads at once (`slowlab serve --workers N`): each thread runs its own
//! single-threaded runtime and its own accept loop on its own listening socket, all bound to one
//! address with `SO_REUSEPORT`, so that the kernel spreads new connections over the threads and
//! a connection stays on the thread that accepted it. The threads share everything else: the
//! app, its counters, the connection cap and the drain.
//!
//! The default, one accept loop on tokio's multi-thread runtime, hands each connection to the
//! worker that accepted it too, but idle workers steal from busy ones, waking each other to do
//! so; here no thread ever takes another's connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::config::Config;
use crate::model::Model;
use crate::server::{Shared, ShutdownReport, accept_loop};
use crate::service::App;
use crate::stats::Stats;

/// Binds `count` listening sockets to `addr` with `SO_REUSEPORT` and `backlog` each: the first to
/// `addr` (its port may be 0), the rest to the address the first was given. Each has its own
/// accept queue, which the kernel fills by a hash of the connection's addresses (Linux).
pub fn bind_reuseport(
    addr: SocketAddr,
    backlog: u32,
    count: usize,
) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // Lets a restarted server bind while old connections sit in TIME_WAIT.
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&bound.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        let listener = std::net::TcpListener::from(socket);
        bound = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// [`crate::run`] on one thread per listener (see the module's notes): serves until `shutdown`
/// completes, then drains every thread's connections for at most `config.drain_timeout`.
///
/// Fails before serving if a thread or its runtime cannot be started, or with `--model blocking`,
/// which holds the thread it sleeps on and would stop that thread's runtime with it.
pub async fn run_on_threads(
    listeners: Vec<std::net::TcpListener>,
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ShutdownReport> {
    if config.model == Model::Blocking {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--model blocking cannot run with --workers: each worker is a single thread, and a \
             blocking sleep would stop it; use --model threads:N, or leave out --workers",
        ));
    }
    let app = App::new(Arc::new(config.clone()), Arc::clone(&stats))?;
    let shared = Arc::new(Shared::new(config, stats, app));
    let (stop, stopping) = watch::channel(false);
    let (release, released) = watch::channel(false);
    let mut threads = Vec::with_capacity(listeners.len());
    let mut accepting = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stopped_accepting, accepted_all) = oneshot::channel::<()>();
        accepting.push(accepted_all);
        let shared = Arc::clone(&shared);
        let mut stopping = stopping.clone();
        let mut released = released.clone();
        let thread = std::thread::Builder::new()
            .name(format!("serve-worker-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    accept_loop(shared, listener, async move {
                        let _ = stopping.wait_for(|stop| *stop).await;
                    })
                    .await;
                    let _ = stopped_accepting.send(());
                    // The thread's connections live on its runtime: it keeps running them
                    // through the drain, until the cut.
                    let _ = released.wait_for(|release| *release).await;
                    Ok::<(), io::Error>(())
                })
            })?;
        threads.push(thread);
    }

    shutdown.await;
    let _ = stop.send(true);
    for accepted_all in accepting {
        let _ = accepted_all.await;
    }
    let report = shared.drain_and_report().await;
    let _ = release.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|thread| thread.join())
            .collect::<Vec<_>>()
    })
    .await
    .map_err(io::Error::other)?;
    for outcome in joined {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(_) => return Err(io::Error::other("a worker thread panicked")),
        }
    }
    Ok(report)
}
