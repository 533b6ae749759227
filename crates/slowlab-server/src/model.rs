//! Handler models: how a request is held while it waits. The article's lesson, from the server's
//! side.
//!
//! - `async` (default): a timer. No thread is held, so a two-core server carries 100,000 waits.
//! - `threads:N`: a blocking sleep on one of N threads of the server's own pool (started with the
//!   server), like a FastAPI `def` endpoint on its 40-thread pool: the N+1st concurrent request
//!   waits for a thread before its own wait starts. N is exactly N: tokio's blocking pool would stop
//!   at 512 threads.
//! - `blocking`: a blocking sleep on the event loop itself, one request after another: the classic
//!   mistake, shown on purpose. While it sleeps, its worker thread serves nothing else.
//!
//! In every model a request whose client goes away stops waiting at once: the timer is dropped,
//! and a pool thread is woken by its channel closing. A `blocking` sleep cannot notice its client
//! leave (that is part of what it demonstrates), but it does end at the drain deadline of a
//! shutdown (`Waiter::stop_at`), so `--drain-timeout` holds in every model.

use std::fmt;
use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{Semaphore, oneshot};

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
                Some(Ok(n)) if n.get() <= MAX_THREADS => Ok(Model::Threads(n)),
                _ => Err(format!(
                    "{text:?} is not a model: use async, threads:N (N from 1 to {MAX_THREADS}, e.g. threads:40) or blocking"
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

/// Most threads `threads:N` may ask for.
pub const MAX_THREADS: usize = 10_000;

/// Stack of a pool thread: it only sleeps, but starting a thread allocates, and jemalloc (the
/// `slowlab` binary's allocator) sets up its thread state on that first allocation, deep enough to
/// overflow 64 KiB when the process already runs many threads (a race against a second embedded
/// server crashed there). Untouched stack pages cost address space only.
const POOL_STACK: usize = 256 * 1024;

/// A model ready to hold requests: a timer, the server's own thread pool, or the event loop's turn.
#[derive(Debug)]
pub(crate) struct Waiter {
    kind: Kind,
    stop: Stop,
}

#[derive(Debug)]
enum Kind {
    Async,
    Threads(Pool),
    /// One request's blocking sleep at a time; the others queue without holding a thread.
    Blocking(Semaphore),
}

impl Waiter {
    /// Readies `model`; for `threads:N`, starts the N threads, or says why it cannot.
    pub(crate) fn new(model: Model) -> io::Result<Waiter> {
        let kind = match model {
            Model::Async => Kind::Async,
            Model::Threads(n) => Kind::Threads(Pool::start(n.get())?),
            Model::Blocking => Kind::Blocking(Semaphore::new(1)),
        };
        Ok(Waiter {
            kind,
            stop: Stop::default(),
        })
    }

    /// Waits `delay` the way the model does. Dropping the future stops the wait (except during a
    /// blocking sleep, which never yields). Returns false if the wait was cut short by
    /// [`Waiter::stop_at`].
    ///
    /// A named future rather than an `async fn`, which would keep `self` and `delay` beside the
    /// timer in every waiting request.
    pub(crate) fn wait(&self, delay: Duration) -> Wait<'_> {
        match &self.kind {
            // `/0` needs no timer: a zero sleep would still wait for a turn of the timer wheel.
            Kind::Async if delay.is_zero() => Wait::Done,
            // tokio's timer for most of the wait, a precise one for its last 2 ms.
            Kind::Async => Wait::Timer {
                sleep: slowlab_timer::sleep(delay),
            },
            // Boxed, so that the async model's waiting requests carry only a timer.
            Kind::Threads(pool) => Wait::Held {
                future: Box::pin(pool.sleep(delay)),
            },
            Kind::Blocking(turn) => Wait::Held {
                future: Box::pin(async move {
                    let Ok(_turn) = turn.acquire().await else {
                        return false;
                    };
                    // Deliberately wrong: the worker thread sleeps, and serves nothing else
                    // meanwhile. On a multi-threaded runtime the tasks queued on that worker move
                    // to another thread first (`block_in_place`): otherwise a task tokio had just
                    // put in the worker's own slot, say a `/healthz` or the next accept, would
                    // wait out the whole sleep.
                    match Handle::try_current().map(|h| h.runtime_flavor()) {
                        Ok(RuntimeFlavor::MultiThread) => {
                            tokio::task::block_in_place(|| self.stop.sleep(delay))
                        }
                        _ => self.stop.sleep(delay),
                    }
                }),
            },
        }
    }

    /// Ends every blocking sleep at `deadline`, now and later (shutdown's drain deadline).
    pub(crate) fn stop_at(&self, deadline: Instant) {
        self.stop.at(deadline);
    }

    /// How many waits [`Waiter::stop_at`] cut short.
    pub(crate) fn stopped(&self) -> u64 {
        self.stop.stopped.load(Ordering::Relaxed)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Waiter::wait`]: true when the wait ran its course.
    #[project = WaitProjection]
    pub(crate) enum Wait<'a> {
        /// Nothing to wait for.
        Done,
        /// The async model's timer.
        Timer { #[pin] sleep: slowlab_timer::Sleep },
        /// A wait that holds a thread, or waits for one.
        Held { future: Pin<Box<dyn Future<Output = bool> + Send + 'a>> },
    }
}

impl Future for Wait<'_> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        match self.project() {
            WaitProjection::Done => Poll::Ready(true),
            WaitProjection::Timer { sleep } => sleep.poll(cx).map(|()| true),
            WaitProjection::Held { future } => future.as_mut().poll(cx),
        }
    }
}

/// A deadline that blocking sleeps end at, however long they were meant to be.
#[derive(Debug, Default)]
struct Stop {
    at: Mutex<Option<Instant>>,
    changed: Condvar,
    stopped: AtomicU64,
}

impl Stop {
    fn at(&self, deadline: Instant) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.changed.notify_all();
    }

    /// Sleeps on this thread for `delay`, or until the stop deadline; false if stopped.
    fn sleep(&self, delay: Duration) -> bool {
        let start = Instant::now();
        let end = start.checked_add(delay);
        let mut stop_at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            if end.is_some_and(|end| now >= end) {
                return true;
            }
            if stop_at.is_some_and(|stop| now >= stop) {
                self.stopped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let until = match (end, *stop_at) {
                (Some(end), Some(stop)) => end.min(stop),
                (Some(end), None) => end,
                (None, Some(stop)) => stop,
                // Too far away to be an `Instant`: wait a day at a time.
                (None, None) => now + Duration::from_secs(86_400),
            };
            stop_at = self
                .changed
                .wait_timeout(stop_at, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The server's own pool of sleeping threads, all started with it.
#[derive(Debug)]
struct Pool {
    jobs: mpsc::Sender<Job>,
}

/// One wait for a pool thread: how long, and the channel that closes if the request goes away.
struct Job {
    delay: Duration,
    cancelled: mpsc::Receiver<()>,
    done: oneshot::Sender<()>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("delay", &self.delay).finish()
    }
}

impl Pool {
    fn start(threads: usize) -> io::Result<Pool> {
        if threads > MAX_THREADS {
            return Err(io::Error::other(format!(
                "threads:{threads} is over the most this server runs, {MAX_THREADS}"
            )));
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for started in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name("slowlab-pool".into())
                .stack_size(POOL_STACK)
                .spawn(move || Pool::work(&queue))
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!(
                            "could not start thread {} of threads:{threads} ({err});                              the system's thread limit (ulimit -u, kernel.threads-max) is lower:                              ask for fewer threads",
                            started + 1
                        ),
                    )
                })?;
        }
        Ok(Pool { jobs })
    }

    /// A pool thread: take the next job, sleep it out (or until its request goes away), repeat
    /// until the server is gone.
    fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
        loop {
            let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(job) = job else {
                return;
            };
            let _ = job.cancelled.recv_timeout(job.delay);
            let _ = job.done.send(());
        }
    }

    /// Queues a wait of `delay` (a queued request holds no thread) and awaits its end.
    async fn sleep(&self, delay: Duration) -> bool {
        // The sender lives in this future: if the client goes away the future is dropped, the
        // channel closes, and the pool thread wakes at once (or skips the job if it was queued).
        let (_cancel, cancelled) = mpsc::channel::<()>();
        let (done, finished) = oneshot::channel();
        let job = Job {
            delay,
            cancelled,
            done,
        };
        if self.jobs.send(job).is_err() {
            return false;
        }
        finished.await.is_ok()
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
            "threads:10001",
            "Async",
        ] {
            assert!(bad.parse::<Model>().is_err(), "{bad:?}");
        }
    }
}
