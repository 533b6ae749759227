//! Handler models: how a request is held while it waits. The article's lesson, from the server's
//! side.
//!
//! - `async` (default): a timer. No thread is held, so a two-core server carries 100,000 waits.
//! - `threads:N`: a blocking sleep on one of N pool threads, like a FastAPI `def` endpoint on its
//!   40-thread pool: the N+1st concurrent request waits for a thread before its own wait starts.
//! - `blocking`: a blocking sleep on the event loop itself, one request after another: the classic
//!   mistake, shown on purpose. While it sleeps, the worker thread serves nothing else.
//!
//! In every model a request whose client goes away stops waiting at once: the timer is dropped,
//! and a pool thread is woken by its channel closing. Only `blocking` cannot be interrupted, which
//! is part of what it demonstrates.

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

/// A handler model, as given to `--model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// A timer on the event loop; no thread is held while waiting.
    #[default]
    Async,
    /// A blocking sleep on a pool of this many threads.
    Threads(NonZeroUsize),
    /// A blocking sleep on the event loop itself, one request at a time.
    Blocking,
}

impl FromStr for Model {
    type Err = String;

    fn from_str(text: &str) -> Result<Model, String> {
        match text {
            "async" => Ok(Model::Async),
            "blocking" => Ok(Model::Blocking),
            _ => match text
                .strip_prefix("threads:")
                .map(str::parse::<NonZeroUsize>)
            {
                Some(Ok(n)) => Ok(Model::Threads(n)),
                _ => Err(format!(
                    "{text:?} is not a model: use async, threads:N (N at least 1, e.g. threads:40) or blocking"
                )),
            },
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Model::Async => f.write_str("async"),
            Model::Threads(n) => write!(f, "threads:{n}"),
            Model::Blocking => f.write_str("blocking"),
        }
    }
}

/// A model ready to hold requests: the pool's permits, or the event loop's one lock.
#[derive(Debug)]
pub(crate) enum Waiter {
    Async,
    Threads(Arc<Semaphore>),
    Blocking(Mutex<()>),
}

impl Waiter {
    pub(crate) fn new(model: Model) -> Waiter {
        match model {
            Model::Async => Waiter::Async,
            Model::Threads(n) => Waiter::Threads(Arc::new(Semaphore::new(n.get()))),
            Model::Blocking => Waiter::Blocking(Mutex::new(())),
        }
    }

    /// Waits `delay` the way the model does. Dropping the future stops the wait (except in the
    /// blocking model, which never yields).
    pub(crate) async fn wait(&self, delay: Duration) {
        match self {
            // `/0` needs no timer: a zero sleep would still wait for a turn of the timer wheel.
            Waiter::Async if delay.is_zero() => {}
            // tokio's timer for most of the wait, a precise one for its last 2 ms.
            Waiter::Async => crate::precise::sleep(delay).await,
            // Boxed, so that the async model's waiting requests carry only a timer.
            _ => Box::pin(self.wait_blocking(delay)).await,
        }
    }

    /// The two models that hold a thread.
    async fn wait_blocking(&self, delay: Duration) {
        match self {
            Waiter::Async => tokio::time::sleep(delay).await,
            Waiter::Threads(pool) => {
                // Queued requests wait for a permit without holding a thread, like a thread pool's
                // queue; the permit caps the threads sleeping at once at N.
                let Ok(_permit) = pool.acquire().await else {
                    return;
                };
                // The sender lives in this future: if the client goes away the future is dropped,
                // the channel closes, and the pool thread wakes at once.
                let (_cancel, cancelled) = mpsc::channel::<()>();
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = cancelled.recv_timeout(delay);
                })
                .await;
            }
            Waiter::Blocking(event_loop) => {
                // One lock stands for the single event loop: every blocking wait runs after the
                // one before, and the worker thread is stuck meanwhile. Deliberately wrong.
                let _held = event_loop.lock().unwrap_or_else(|p| p.into_inner());
                std::thread::sleep(delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for text in ["async", "blocking", "threads:1", "threads:40"] {
            assert_eq!(text.parse::<Model>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "thread:4",
            "threads:0",
            "threads:",
            "threads:-1",
            "Async",
        ] {
            assert!(bad.parse::<Model>().is_err(), "{bad:?}");
        }
    }
}
