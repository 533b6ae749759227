//! The async runner over HTTP/2: h2c (prior knowledge) for `http://`, h2 by ALPN for `https://`;
//! many streams multiplexed on few connections.
//!
//! The first connection tells the server's stream limit (`SETTINGS_MAX_CONCURRENT_STREAMS`); the
//! runner opens as many connections as the wanted concurrency needs at that limit (or exactly
//! `--connections N`). Each connection's worker has its share of the slots (at most the stream
//! limit) and takes the next request of its server whenever one frees; a request that waited for
//! a slot has that wait as its slot wait.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::client::{ResponseFuture, SendRequest};
use http::{Request, Uri};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::outcome::{ErrorKind, FetchError, Outcome, Reply, judge_body};
use crate::runner::connect::connect;
use crate::runner::request::{CappedBody, Progress, content_length, head};
use crate::runner::{Due, Shared};

/// Most connections opened at once while setting up.
const OPENING_AT_ONCE: usize = 64;

/// One open HTTP/2 connection.
struct Connection {
    sender: SendRequest<Bytes>,
    /// The stream limit the server advertised.
    max_streams: usize,
    /// Time to connect and set up HTTP/2 (TLS included), reported by the first request sent on it.
    connect: Duration,
}

/// What the workers sending one server's requests share, besides the queue in [`Shared`].
struct Crew {
    shared: Arc<Shared>,
    /// The server's addresses, for reconnecting.
    addrs: Arc<[SocketAddr]>,
    /// Whether the run has fewer slots than requests, so that requests wait for a slot.
    limited: bool,
    /// Whose turn it is to open its first streams; see [`drive`].
    turns: Semaphore,
    /// Workers still sending, plus one for [`run`] while it opens connections.
    active: AtomicUsize,
    /// Why a connection was last lost or could not be opened: what the requests nobody is left
    /// to send are told.
    lost: Mutex<Option<FetchError>>,
}

impl Crew {
    /// Counts a worker in, before it starts.
    fn join(&self) {
        self.active.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a worker out, with the error that made it give up, if one did. The last one out
    /// fails whatever is left of the queue, which nobody would send any more.
    fn leave(&self, error: Option<FetchError>) {
        if let Some(error) = error {
            *self.lost.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
        }
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let error = self
                .lost
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| {
                    FetchError::new(
                        ErrorKind::Other,
                        format!(
                            "no HTTP/2 connection to {} was left to send this request",
                            self.shared.base_url
                        ),
                    )
                });
            self.shared.fail_the_rest(&error);
        }
    }
}

/// Opens the connections, each driven by a worker with a number of stream slots that takes the
/// next request whenever a slot frees: greedy list scheduling, as in the HTTP/1.1 pool, with many
/// slots per connection.
pub(super) async fn run(shared: Arc<Shared>) {
    let Some(addrs) = shared.resolve().await else {
        return;
    };
    let total = shared.len();
    let first = match open(&shared, &addrs).await {
        Ok(connection) => connection,
        Err(err) => return shared.fail_the_rest(&err),
    };
    let wanted = shared
        .options
        .concurrency
        .unwrap_or(total)
        .clamp(1, total.max(1));
    let per_connection = first.max_streams.max(1);
    let count = shared
        .options
        .connections
        .unwrap_or_else(|| wanted.div_ceil(per_connection))
        .max(1);
    // The wanted slots, shared out evenly, never more than a connection's stream limit.
    let slots = |number: usize| {
        let share = wanted / count + usize::from(number < wanted % count);
        share.clamp(1, per_connection)
    };
    let crew = Arc::new(Crew {
        shared: Arc::clone(&shared),
        addrs: Arc::clone(&addrs),
        // Fewer slots than requests: requests wait for a slot, and that wait is measured.
        limited: (0..count).map(slots).sum::<usize>() < total,
        turns: Semaphore::new(1),
        active: AtomicUsize::new(1),
        lost: Mutex::new(None),
    });
    crew.join();
    tokio::spawn(drive(Arc::clone(&crew), first, slots(0)));
    let mut opened = 1;
    let mut opening: JoinSet<Result<Connection, FetchError>> = JoinSet::new();
    let mut failures = 0;
    let mut launched = 1;
    while launched < count || !opening.is_empty() {
        while launched < count && opening.len() < OPENING_AT_ONCE {
            let shared = Arc::clone(&shared);
            let addrs = Arc::clone(&addrs);
            opening.spawn(async move { open(&shared, &addrs).await });
            launched += 1;
        }
        match opening.join_next().await {
            Some(Ok(Ok(connection))) => {
                crew.join();
                tokio::spawn(drive(Arc::clone(&crew), connection, slots(opened)));
                opened += 1;
            }
            Some(Ok(Err(err))) => {
                failures += 1;
                *crew.lost.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
            }
            Some(Err(_)) => failures += 1,
            None => break,
        }
    }
    if failures > 0 {
        tracing::warn!("{failures} of {count} HTTP/2 connections could not be opened");
    }
    crew.leave(None);
}

/// Times in a row a worker may open a new connection without a request succeeding on it, before
/// it leaves the rest of the queue to the other connections.
const REOPENS_IN_A_ROW: u32 = 3;

/// Pause before the first new connection, doubled for each one after it in a row.
const REOPEN_PAUSE: Duration = Duration::from_millis(50);

/// One connection's worker: keeps up to `slots` streams open, each the next request of the run.
///
/// Streams are polled here rather than spawned: a task per request costs memory and scheduling at
/// 100,000 requests.
///
/// When the connection dies (reset, closed, or a GOAWAY), the worker stops taking requests; the
/// streams it had open end with their typed errors; then it opens a new connection and goes on.
/// After [`REOPENS_IN_A_ROW`] new connections without a success, or one that cannot be opened, it
/// leaves the queue to the other workers.
///
/// The workers open their first streams in turn, one connection after another (`turns`), rather
/// than all at once: h2 keeps a connection's streams in one array that doubles as it fills, and
/// the array it outgrew stays resident until the allocator returns it. Filled in turn, the next
/// connection's array grows into the space the last one left; filled side by side, every
/// connection left its own (about 150 bytes a request at 100,000 streams).
async fn drive(crew: Arc<Crew>, connection: Connection, slots: usize) {
    let shared = &*crew.shared;
    let Connection {
        mut sender,
        connect,
        ..
    } = connection;
    let mut slots = slots;
    // The connection's set-up time goes to the first request sent on it, given here to its
    // outcome so that no stream keeps room for it.
    let mut connect = Some(connect);
    let mut first = None;
    let mut streams = FuturesUnordered::new();
    let mut template = None;
    let mut more = true;
    // Whether the connection can take new streams.
    let mut usable = true;
    // New connections opened since the last success.
    let mut reopened = 0;
    // Why the connection was last lost.
    let mut lost: Option<FetchError> = None;
    // With a timeout: when to look for streams whose answer is overdue (see [`expire`]), from
    // the run's start on tokio's clock; `None` while no stream waits for its answer's head.
    let mut check: Option<Duration> = None;
    let mut turn = crew.turns.acquire().await.ok();
    loop {
        let mut opened = 0;
        // In an open-loop run: when the next request is due, if it is not yet.
        let mut wake = None;
        while more && streams.len() < slots {
            if is_dead(&mut sender) {
                usable = false;
                break;
            }
            match shared.take_if_due() {
                Due::At(when) => {
                    wake = Some(when);
                    break;
                }
                Due::Now(index) => {
                    first.get_or_insert(index);
                    match Stream::open(shared, &mut sender, &mut template, index, crew.limited) {
                        Ok(stream) => {
                            // Later streams are due later: the first one sets the check.
                            check = check.or(stream.deadline());
                            streams.push(stream);
                        }
                        Err(outcome) => {
                            if !report(shared, *outcome, first, &mut connect) {
                                return crew.leave(None);
                            }
                        }
                    }
                    opened += 1;
                    // Let the connection write what is queued: every stream opened and not yet
                    // written holds its request's headers in h2's send queue.
                    if opened % SEND_BATCH == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Due::Done => more = false,
            }
        }
        // The first streams are open: the next connection's turn.
        drop(turn.take());
        if let (true, true, Some(when)) = (streams.is_empty(), usable, wake) {
            // Nothing in flight and the next request not yet due: sleep until it is.
            tokio::select! {
                biased;
                () = shared.control.cancelled() => return crew.leave(None),
                () = shared.sleep_until(when) => continue,
            }
        }
        if streams.is_empty() {
            if !more || usable {
                return crew.leave(None);
            }
            // Every stream of the dead connection has its outcome: open a new one, unless the
            // new ones keep failing their requests.
            reopened += 1;
            let result = if reopened > REOPENS_IN_A_ROW {
                Err(lost.take().unwrap_or_else(|| {
                    FetchError::new(ErrorKind::Other, "the HTTP/2 connection kept failing")
                }))
            } else {
                let pause = REOPEN_PAUSE.saturating_mul(1 << (reopened - 1));
                tokio::select! {
                    biased;
                    () = shared.control.cancelled() => return crew.leave(None),
                    result = async {
                        tokio::time::sleep(pause).await;
                        open(shared, &crew.addrs).await
                    } => result,
                }
            };
            match result {
                Ok(connection) => {
                    tracing::debug!(
                        "HTTP/2 connection to {} lost ({}); opened a new one",
                        shared.base_url,
                        lost.as_ref()
                            .map_or("no error seen", |e| e.message.as_str())
                    );
                    sender = connection.sender;
                    slots = slots.min(connection.max_streams.max(1));
                    connect = Some(connection.connect);
                    first = None;
                    template = None;
                    usable = true;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(
                        "an HTTP/2 connection to {} was lost and not reopened: {err}; the other \
                         connections take its share",
                        shared.base_url
                    );
                    return crew.leave(Some(err));
                }
            }
        }
        let outcome = tokio::select! {
            biased;
            outcome = streams.next() => match outcome {
                Some(outcome) => outcome,
                None => continue,
            },
            // The next request is due: open its stream.
            () = sleep_until_due(shared, wake) => continue,
            // Some stream may be overdue: wake it so that it ends as timed out.
            () = sleep_until_check(shared, check) => {
                check = expire(shared, &mut streams);
                continue;
            }
            // Streams in flight are dropped (and reset); the collector reports them cancelled.
            () = shared.control.cancelled() => return crew.leave(None),
        };
        match &outcome.result {
            Ok(_) => reopened = 0,
            Err(err) => {
                if usable && is_dead(&mut sender) {
                    usable = false;
                }
                if !usable {
                    lost = Some(err.clone());
                }
            }
        }
        if !report(shared, outcome, first, &mut connect) {
            return crew.leave(None);
        }
    }
}

/// Sleeps until `wake`, or forever when there is nothing to wake for.
async fn sleep_until_due(shared: &Shared, wake: Option<std::time::Instant>) {
    match wake {
        Some(when) => shared.sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `check` on tokio's clock, or forever when there is nothing to check.
async fn sleep_until_check(shared: &Shared, check: Option<Duration>) {
    match check {
        // A deadline past the end of time is no limit.
        Some(at) if let Some(at) = shared.origin.checked_add(at) => {
            tokio::time::sleep_until(at.into()).await;
        }
        _ => std::future::pending().await,
    }
}

/// Wakes every stream whose answer's head is overdue, so that it ends as timed out (and drops
/// its h2 stream, which resets it); returns when to look again: the earliest deadline of the
/// streams still waiting, at least [`expiry_granularity`] from now.
///
/// One check for a worker's streams rather than a timer each: a timer (and the boxed future
/// that held it) cost about 900 bytes a stream, more than everything else a waiting stream
/// holds, and every `--duration` run has a timeout.
fn expire(shared: &Shared, streams: &mut FuturesUnordered<Stream<'_>>) -> Option<Duration> {
    let limit = shared.options.timeout?;
    let now = shared.scheduler_now();
    let mut next: Option<Duration> = None;
    for stream in streams.iter_mut() {
        match stream.deadline() {
            Some(deadline) if deadline <= now => stream.wake(),
            Some(deadline) => next = Some(next.map_or(deadline, |next| next.min(deadline))),
            None => {}
        }
    }
    next.map(|next| next.max(now.saturating_add(expiry_granularity(limit))))
}

/// How late past its deadline a stream may be woken: a thousandth of the timeout, at least a
/// millisecond (tokio's timer's own step), so that a worker whose streams all time out looks
/// through them at most a thousand times a timeout.
fn expiry_granularity(limit: Duration) -> Duration {
    (limit / 1000).max(Duration::from_millis(1))
}

/// Whether the connection behind `sender` has failed or been told to go away, so that no new
/// stream can open on it. Never waits.
fn is_dead(sender: &mut SendRequest<Bytes>) -> bool {
    let mut context = Context::from_waker(std::task::Waker::noop());
    matches!(sender.poll_ready(&mut context), Poll::Ready(Err(_)))
}

/// Reports `outcome`, with the connection's set-up time when it is the `first` request sent on
/// it; `false` when nobody listens any more.
fn report(
    shared: &Shared,
    mut outcome: Outcome,
    first: Option<usize>,
    connect: &mut Option<Duration>,
) -> bool {
    if first == Some(outcome.index) {
        outcome.connect = connect.take();
    }
    shared.report(outcome)
}

/// Streams a worker opens before letting its connection write them.
const SEND_BATCH: usize = 64;

/// Overhead counted by h2 for each small DATA frame held until it is read (h2's threshold).
const SMALL_FRAME_COST: usize = 256;

/// h2's allowance for small DATA frames received and not yet read on one connection. Its default
/// (25,600, about a hundred frames) is meant for a few streams: when thousands of slowlab answers
/// (a small DATA frame each) arrive in one burst, the connection outran the worker reading them
/// and h2 closed it (`ENHANCE_YOUR_CALM`, "too_many_data_frames"), failing every stream on it.
/// Here each of the run's requests may hold one such frame.
fn data_frame_budget(shared: &Shared) -> usize {
    shared.len().max(100).saturating_mul(SMALL_FRAME_COST)
}

/// Connects, speaks the HTTP/2 preface, and waits for a ping's answer: by then the server's
/// settings, which come first, have been applied.
async fn open(shared: &Shared, addrs: &[SocketAddr]) -> Result<Connection, FetchError> {
    let connecting = std::time::Instant::now();
    let stream = connect(addrs, shared).await?;
    let setup = async {
        let (sender, mut connection) = h2::client::Builder::new()
            .data_frame_budget(data_frame_budget(shared))
            .handshake::<_, Bytes>(stream)
            .await
            .map_err(|err| from_h2(&err, shared))?;
        let mut ping = connection.ping_pong();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("HTTP/2 connection ended: {err}");
            }
        });
        if let Some(ping) = ping.as_mut() {
            ping.ping(h2::Ping::opaque())
                .await
                .map_err(|err| from_h2(&err, shared))?;
        }
        let max_streams = sender.current_max_send_streams();
        Ok(Connection {
            sender,
            max_streams,
            connect: connecting.elapsed(),
        })
    };
    let limit = shared.options.connect_timeout;
    tokio::time::timeout(limit, setup)
        .await
        .unwrap_or_else(|_| {
            Err(FetchError::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "no HTTP/2 connection to {} within {limit:?}",
                    shared.base_url
                ),
            ))
        })
}

/// One request as one stream, as its worker polls it.
///
/// Written by hand rather than as an async block: all 100,000 streams of a run wait at once, and
/// a waiting stream holds only h2's response handle, its index and start, not room for the states
/// that follow (reading the body, judging it) or for a timer. Those are boxed when needed. With a
/// timeout, a waiting stream also keeps its waker, for its worker to wake it when its answer is
/// overdue (see [`expire`]): one timer for the worker, not one per stream. To keep a stream in
/// 64 bytes (with `FuturesUnordered`'s task, 128), its start is in nanoseconds, and it counts
/// itself in flight (see [`Control::enter`](crate::runner::Control::enter)) until dropped
/// rather than holding a guard that would point into `shared` a second time.
struct Stream<'a> {
    shared: &'a Shared,
    stage: Stage<'a>,
    /// When the request was sent, from the start of the run, in nanoseconds (584 years).
    start_nanos: u64,
    /// The request's index; `u32` keeps the stream a size class smaller than `usize` would.
    index: u32,
    /// Whether the run has fewer slots than requests, so that this request waited for its slot
    /// from the run's start.
    limited: bool,
    /// With a timeout, the waker of the task that polls the stream while it waits for the head.
    waker: Option<Waker>,
}

/// Where a stream is.
enum Stage<'a> {
    /// Waiting for the answer's head: all that most streams ever hold.
    Waiting(ResponseFuture),
    /// Reading the body (within what is left of the timeout, if any): short, so boxed.
    Boxed(Pin<Box<dyn Future<Output = Received> + Send + 'a>>),
    /// The outcome was given; nothing is held any more.
    Done,
}

/// What is known of an answer once it is read, or of how far it got.
type Received = (Progress, Result<Reply, FetchError>);

impl<'a> Stream<'a> {
    /// Opens the stream of request `index`: a stream slot is free (the worker keeps no more
    /// streams than the server allows), so the request is sent at once; should the server still
    /// be closing an earlier stream, h2 queues this one until it can open.
    ///
    /// The request is built and handed to h2 here, so that the stream does not hold it. A request
    /// that cannot be sent has its outcome at once.
    fn open(
        shared: &'a Shared,
        sender: &mut SendRequest<Bytes>,
        template: &mut Option<(usize, Request<()>)>,
        index: usize,
        limited: bool,
    ) -> Result<Stream<'a>, Box<Outcome>> {
        let in_flight = shared.control.enter();
        let start = shared.now();
        let slot_wait = if limited { start } else { Duration::ZERO };
        // Boxed: the `Err` of a `Result` the size of an outcome would be moved on every call.
        let unsent = |error| {
            Box::new(Progress::default().outcome(shared, index, start, slot_wait, Err(error)))
        };
        let Ok(short_index) = u32::try_from(index) else {
            return Err(unsent(FetchError::new(
                ErrorKind::Other,
                "more requests than an HTTP/2 worker can number",
            )));
        };
        let response = send(shared, sender, template, index).map_err(unsent)?;
        // Counted out when the stream is dropped.
        std::mem::forget(in_flight);
        Ok(Stream {
            shared,
            stage: Stage::Waiting(response),
            start_nanos: u64::try_from(start.as_nanos()).unwrap_or(u64::MAX),
            index: short_index,
            limited,
            waker: None,
        })
    }

    /// When the request was sent, from the start of the run.
    fn start(&self) -> Duration {
        Duration::from_nanos(self.start_nanos)
    }

    /// With a timeout, while the stream waits for its answer's head: when that answer is
    /// overdue, from the run's start (on tokio's clock, as the timer that checks it).
    fn deadline(&self) -> Option<Duration> {
        match self.stage {
            // A deadline past the end of time is no limit.
            Stage::Waiting(_) => self
                .shared
                .options
                .timeout
                .and_then(|limit| self.start().checked_add(limit)),
            Stage::Boxed(_) | Stage::Done => None,
        }
    }

    /// Has the stream polled again (it then finds itself overdue).
    fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
    }
}

impl Drop for Stream<'_> {
    /// Counts the request out of flight: it ended, or its stream was dropped (and reset).
    fn drop(&mut self) {
        self.shared.control.leave();
    }
}

impl<'a> Future for Stream<'a> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        let shared = this.shared;
        let index = this.index as usize;
        let timeout = shared.options.timeout;
        let start = this.start();
        let (progress, result) = match &mut this.stage {
            Stage::Waiting(_)
                if timeout
                    .and_then(|limit| start.checked_add(limit))
                    .is_some_and(|deadline| shared.scheduler_now() >= deadline) =>
            {
                // Overdue: dropping the response (below) resets the stream.
                let limit = timeout.unwrap_or_default();
                (Progress::default(), Err(FetchError::timed_out(limit)))
            }
            Stage::Waiting(response) => match Pin::new(response).poll(cx) {
                Poll::Pending => {
                    if timeout.is_some()
                        && this
                            .waker
                            .as_ref()
                            .is_none_or(|waker| !waker.will_wake(cx.waker()))
                    {
                        this.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(err)) => (Progress::default(), Err(from_h2(&err, shared))),
                Poll::Ready(Ok(response)) => {
                    this.waker = None;
                    let progress = Progress {
                        first_byte: Some(shared.now()),
                        ..Progress::default()
                    };
                    let mut reading: Pin<Box<dyn Future<Output = Received> + Send + 'a>> =
                        match timeout {
                            None => Box::pin(read(shared, response, index, progress)),
                            Some(limit) => {
                                let deadline = start
                                    .checked_add(limit)
                                    .and_then(|end| shared.origin.checked_add(end));
                                Box::pin(read_within(
                                    shared, response, index, progress, deadline, limit,
                                ))
                            }
                        };
                    // Read at once: the body often came with the head.
                    let received = reading.as_mut().poll(cx);
                    this.stage = Stage::Boxed(reading);
                    ready!(received)
                }
            },
            Stage::Boxed(work) => ready!(work.as_mut().poll(cx)),
            // Polled again after its outcome: there is no second one.
            Stage::Done => return Poll::Pending,
        };
        this.stage = Stage::Done;
        let slot_wait = if this.limited { start } else { Duration::ZERO };
        Poll::Ready(progress.outcome(shared, index, start, slot_wait, result))
    }
}

/// Opens the stream of request `index`.
///
/// `template` is the last request built, by the index of its target: a request to the same path
/// is a clone of it, which shares its URI's bytes and holds a header map of exactly its headers
/// (a map built header by header reserves room for several more).
fn send(
    shared: &Shared,
    sender: &mut SendRequest<Bytes>,
    template: &mut Option<(usize, Request<()>)>,
    index: usize,
) -> Result<ResponseFuture, FetchError> {
    let targets = &shared.workload.targets;
    let request = match template {
        Some((built, request)) if targets[*built].path == targets[index].path => request.clone(),
        _ => {
            let request = build(shared, index)?;
            let copy = request.clone();
            *template = Some((index, request));
            copy
        }
    };
    let body = &shared.workload.body;
    let (response, mut stream) = sender
        .send_request(request, body.is_empty())
        .map_err(|err| from_h2(&err, shared))?;
    if !body.is_empty() {
        // Queued whole; h2 sends it as the peer's flow-control window allows.
        stream
            .send_data(body.clone(), true)
            .map_err(|err| from_h2(&err, shared))?;
    }
    Ok(response)
}

/// Builds request `index`: over HTTP/2 the scheme and authority travel in the URI.
fn build(shared: &Shared, index: usize) -> Result<Request<()>, FetchError> {
    let target = &shared.workload.targets[index];
    let uri = Uri::builder()
        .scheme(shared.endpoint.scheme())
        .authority(shared.host.as_bytes())
        .path_and_query(shared.endpoint.path(&target.path))
        .build()
        .map_err(|err| FetchError::new(ErrorKind::Other, format!("bad URL: {err}")))?;
    head(shared, uri, None)
}

/// Reads the body of request `index`'s answer and judges it, unless `deadline` (the end of the
/// request's timeout `limit`, on tokio's clock; `None` past the end of time) comes first;
/// `progress` says how far it got.
async fn read_within(
    shared: &Shared,
    response: http::Response<h2::RecvStream>,
    index: usize,
    mut progress: Progress,
    deadline: Option<std::time::Instant>,
    limit: Duration,
) -> Received {
    let reading = read_into(shared, response, index, &mut progress);
    let result = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), reading)
            .await
            .unwrap_or_else(|_| Err(FetchError::timed_out(limit))),
        None => reading.await,
    };
    (progress, result)
}

/// Reads the body of request `index`'s answer and judges it.
async fn read(
    shared: &Shared,
    response: http::Response<h2::RecvStream>,
    index: usize,
    mut progress: Progress,
) -> Received {
    let result = read_into(shared, response, index, &mut progress).await;
    (progress, result)
}

/// Reads the body of request `index`'s answer into `progress` and judges it.
async fn read_into(
    shared: &Shared,
    response: http::Response<h2::RecvStream>,
    index: usize,
    progress: &mut Progress,
) -> Result<Reply, FetchError> {
    let status = response.status().as_u16();
    progress.status = Some(status);
    let target = &shared.workload.targets[index];
    let mut received = CappedBody::new(shared, target);
    received.announce(content_length(response.headers()))?;
    let mut body = response.into_body();
    let result = async {
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|err| from_h2(&err, shared))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            received.push(chunk)?;
        }
        Ok(())
    }
    .await;
    progress.bytes = received.received();
    // Past the cap, dropping `body` resets the stream: the server stops sending it.
    result?;
    judge_body(
        target,
        &shared.workload.method,
        status,
        received.into_bytes(),
        shared.options.keep_bodies,
    )
}

/// Maps an h2 error to a kind: I/O errors as such, a stream reset as `reset`, a connection that
/// went away as `closed-early`.
fn from_h2(err: &h2::Error, shared: &Shared) -> FetchError {
    if let Some(io) = err.get_io() {
        return FetchError::from_io(io, &shared.base_url);
    }
    if err.is_go_away() {
        return FetchError::new(
            ErrorKind::ClosedEarly,
            format!("the server closed the HTTP/2 connection: {err}"),
        );
    }
    if err.is_reset() {
        return FetchError::new(
            ErrorKind::Reset,
            format!("the server reset the stream: {err}"),
        );
    }
    if err.is_io() || err.is_remote() {
        return FetchError::new(ErrorKind::ClosedEarly, err.to_string());
    }
    FetchError::new(ErrorKind::Other, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{Control, Run};
    use crate::{Endpoint, Mode, RequestOptions, Workload};

    /// What the workers of a run of `count` requests with `timeout` share; the clock may be
    /// paused.
    fn shared(count: usize, timeout: Duration) -> Arc<Shared> {
        let endpoint = Endpoint::parse("http://127.0.0.1:9").unwrap();
        let (outcomes, _) = tokio::sync::mpsc::unbounded_channel();
        let run = Run {
            workload: Arc::new(Workload::repeat(endpoint, count, Duration::ZERO)),
            options: RequestOptions {
                timeout: Some(timeout),
                http2: true,
                ..RequestOptions::default()
            },
            origin: tokio::time::Instant::now().into_std(),
            control: Control::new(),
            outcomes,
        };
        run.share(Mode::Async, run.workload.endpoint(), None)
            .unwrap()
    }

    /// An HTTP/2 connection, in memory, to a server that takes every stream and never answers.
    async fn silent_server() -> SendRequest<Bytes> {
        let (client, server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut connection = h2::server::handshake(server).await.unwrap();
            let mut held = Vec::new();
            while let Some(Ok(request)) = connection.accept().await {
                held.push(request);
            }
        });
        let (sender, connection) = h2::client::handshake(client).await.unwrap();
        tokio::spawn(connection);
        sender.ready().await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_stream_waits_without_a_timer_and_its_worker_times_it_out() {
        let limit = Duration::from_secs(30);
        let shared = shared(3, limit);
        let mut sender = silent_server().await;
        let mut template = None;
        let mut streams = FuturesUnordered::new();
        for index in 0..3 {
            let stream = Stream::open(&shared, &mut sender, &mut template, index, false).unwrap();
            // A waiting stream holds h2's handle, not a boxed future with a timer (which cost
            // about 900 bytes a request in flight, more than all the rest).
            assert!(matches!(stream.stage, Stage::Waiting(_)), "#{index}");
            assert_eq!(stream.deadline(), Some(stream.start() + limit));
            streams.push(stream);
        }
        assert!(
            size_of::<Stream<'_>>() <= 64,
            "a waiting stream grew to {} bytes",
            size_of::<Stream<'_>>()
        );
        let first = streams.iter().filter_map(Stream::deadline).min();
        // Each stream polled once: waiting, its waker kept.
        assert!(futures_util::poll!(streams.next()).is_pending());
        assert!(streams.iter().all(|stream| stream.waker.is_some()));
        // Nothing overdue: look again at the earliest deadline.
        assert_eq!(expire(&shared, &mut streams), first);
        tokio::time::advance(limit + Duration::from_secs(1)).await;
        // All overdue: each woken, none left waiting.
        assert_eq!(expire(&shared, &mut streams), None);
        for _ in 0..3 {
            let outcome = streams.next().await.unwrap();
            let err = outcome.result.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Timeout, "#{}: {err}", outcome.index);
        }
        assert!(streams.is_empty());
    }
}
