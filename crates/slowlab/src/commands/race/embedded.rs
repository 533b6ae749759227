//! The race's own server, on a thread and a runtime of its own.
//!
//! The blocking model sleeps on its event loop on purpose: sharing the client's runtime, it would
//! freeze the client too, and the race would measure that instead of the server. Its own runtime
//! keeps the two apart, as two processes would be.

use std::thread::JoinHandle;

use anyhow::Context;
use slowlab_server::Config;
use tokio::sync::oneshot;

/// An embedded server running until [`Embedded::stop`].
pub struct Embedded {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Embedded {
    /// Starts a server with `config` and waits until it listens.
    pub async fn start(config: Config) -> anyhow::Result<Embedded> {
        let (ready, listening) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("race-server".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready.send(Err(err));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match slowlab_server::spawn(config).await {
                        Ok(server) => {
                            let _ = ready.send(Ok(server.base_url()));
                            let _ = stopped.await;
                            server.shutdown().await;
                        }
                        Err(err) => {
                            let _ = ready.send(Err(err));
                        }
                    }
                });
            })
            .context("starting the embedded server's thread")?;
        let base_url = listening
            .await
            .context("the embedded server's thread ended early")?
            .context("starting the embedded server")?;
        Ok(Embedded {
            base_url,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops the server and waits for its thread.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
