//! Connection timeouts: the watchdog that closes a connection which stopped being served.
//!
//! hyper times out nothing here: its own HTTP/1.1 header timer is off (it also ran between
//! keep-alive requests, closing idle connections at `--header-read-timeout` instead of
//! `--idle-timeout`, and it boxed a sleep for every request). Without a watchdog, a slow request
//! head, an HTTP/2 connection that sent only its preface, a header block that never ends, or a
//! client that asks for a large body and never reads it would each hold a connection (and a
//! `--max-connections` slot) for ever.
//!
//! The socket wrapper and the service note what happens on a connection in a few relaxed atomics
//! ([`Activity`]); one watchdog future per connection, run beside hyper's connection future, sleeps
//! until the earliest deadline those notes imply and ends the connection when one passes:
//!
//! - `header_timeout`: over HTTP/1.1, a request head must arrive whole within
//!   `--header-read-timeout` of its first byte (bytes that come while a request is in flight or
//!   its body is still arriving, see [`ArrivingBody`], are not a head); over HTTP/2, the preface
//!   and the first SETTINGS frame, and every header block (HEADERS without END_HEADERS, then
//!   CONTINUATION);
//! - `write_timeout`: bytes waiting to be sent made no progress for `--write-timeout`, either
//!   because the socket's send buffer is full or, per response body, because the client's
//!   flow-control window stays shut. A body that pauses on purpose (`drip=`) has nothing waiting,
//!   so its pauses never count;
//! - `idle`: nothing in flight and nothing received or sent for `--idle-timeout`;
//! - `drain_timeout`: on shutdown, the watchdog asks hyper to finish the requests in flight and
//!   close (see [`crate::drain`]), and ends the connection if it is still open when the drain's
//!   time is up.
//!
//! `fault=hang` is a request in flight, so it is never idle: it hangs until `--max-delay` or the
//! client leaves, as asked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Config;
use crate::drain::{DrainWatch, Drainable, Phase};
use crate::metrics::CloseReason;

/// Marks "not happening" in the millisecond fields of [`Activity`].
const NEVER: u64 = u64::MAX;

/// Bodies this small leave in one write; only larger or open-ended ones are watched.
const SMALL_BODY: u64 = 16 * 1024;

/// The three timeouts, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    header_read: u64,
    idle: u64,
    write: u64,
}

impl Timeouts {
    pub(crate) fn new(config: &Config) -> Timeouts {
        Timeouts {
            header_read: millis(config.header_read_timeout),
            idle: millis(config.idle_timeout),
            write: millis(config.write_timeout),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(NEVER)
}

/// What has happened on one connection, noted by its socket wrapper and its service and read by
/// its watchdog. Times are milliseconds since the connection was accepted.
#[derive(Debug)]
pub(crate) struct Activity {
    accepted: Instant,
    /// Last time bytes were received or sent.
    last_progress: AtomicU64,
    /// Since when the socket refuses more bytes (its send buffer is full), or [`NEVER`].
    write_blocked_since: AtomicU64,
    /// Requests being handled and response bodies being sent.
    in_flight: AtomicU64,
    /// Set by the watchdog before it sleeps on a busy connection: the last request to end wakes it.
    wake_when_free: AtomicBool,
    /// HTTP/2: whether the preface and the first SETTINGS frame have arrived.
    h2_ready: AtomicBool,
    /// HTTP/1.1: request bodies that may still be arriving (their [`ArrivingBody`] is held), so
    /// bytes read are a body's, not the next request head's. A count, not a flag: a body may be
    /// let go of after the next request's has been handed out.
    bodies_arriving: AtomicU32,
    /// Since when a request head (HTTP/1.1) or a header block (HTTP/2: HEADERS without
    /// END_HEADERS) is open, or [`NEVER`].
    header_block_since: AtomicU64,
    /// Stalled bodies and the task's waker.
    locked: Mutex<Locked>,
    next_body: AtomicU64,
    /// Wakes the watchdog when a new, possibly earlier deadline appears.
    changed: Notify,
    /// Set when something the watchdog waits on (its timer, `changed`, the drain) has woken it:
    /// see [`Guarded`].
    watchdog_woken: AtomicBool,
    /// Set by the watchdog when the drain begins, for [`Guarded`] to ask hyper to finish.
    drain_asked: AtomicBool,
}

/// The parts of [`Activity`] behind its lock. One lock for both rather than one each keeps an
/// `Activity`, allocated for every connection, in jemalloc's 160-byte size class.
#[derive(Debug, Default)]
struct Locked {
    /// Response bodies that handed out bytes which are not sent yet: (body id, since when).
    stalled: Vec<(u64, u64)>,
    /// The connection task's waker, which the watchdog's wake-ups are passed on to.
    task: Option<Waker>,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            accepted: Instant::now(),
            last_progress: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(NEVER),
            in_flight: AtomicU64::new(0),
            wake_when_free: AtomicBool::new(false),
            h2_ready: AtomicBool::new(false),
            bodies_arriving: AtomicU32::new(0),
            header_block_since: AtomicU64::new(NEVER),
            locked: Mutex::default(),
            next_body: AtomicU64::new(0),
            changed: Notify::new(),
            // Polled once at first, to set its timer.
            watchdog_woken: AtomicBool::new(true),
            drain_asked: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        millis(self.accepted.elapsed())
    }

    /// Bytes were received. Over HTTP/1.1, bytes that come with no request in flight and no
    /// request body arriving begin the next request head, open until [`Activity::head_read`].
    /// (Bytes that come while a request is in flight, a pipelined head or the rest of a body,
    /// start no clock: a head left unfinished among them starts it with its next byte.)
    pub(crate) fn read(&self, http1: bool) {
        let now = self.now();
        self.last_progress.store(now, Ordering::Relaxed);
        if http1
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.bodies_arriving.load(Ordering::Relaxed) == 0
            && self.header_block_since.load(Ordering::Relaxed) == NEVER
        {
            // No wake-up for the watchdog, which would cost every request one: it looks again
            // within a header-read timeout on its own (see `watchdog`).
            self.header_block_since.store(now, Ordering::Relaxed);
        }
    }

    /// HTTP/1.1: a request head has been read whole and handed to the service.
    pub(crate) fn head_read(&self) {
        self.header_block_since.store(NEVER, Ordering::Relaxed);
    }

    /// HTTP/1.1: the request just handed to the service has a body, which may arrive after the
    /// answer is sent (a proxy relaying an upload to an upstream that answered early).
    pub(crate) fn body_arriving(self: &Arc<Self>) -> ArrivingBody {
        self.bodies_arriving.fetch_add(1, Ordering::Relaxed);
        ArrivingBody {
            _guard: Arc::new(BodyGuard(Arc::clone(self))),
        }
    }

    /// HTTP/1.1: the connection is ready for its first request head (over TLS, once the
    /// handshake is done), so the clock runs from now even if no byte comes.
    pub(crate) fn head_expected(&self) {
        let _ = self.header_block_since.compare_exchange(
            NEVER,
            self.now(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// A write was tried: `sent` bytes went out, or none because the socket was full.
    ///
    /// Over HTTP/1.1 hyper reads the next request head only once the answer before it is out, so
    /// a head that began while an answer was still being written (a slow body of known length,
    /// which is not counted in flight) has its clock start again with every write.
    pub(crate) fn wrote(&self, sent: bool, http1: bool) {
        if sent {
            let now = self.now();
            self.last_progress.store(now, Ordering::Relaxed);
            self.write_blocked_since.store(NEVER, Ordering::Relaxed);
            if http1 && self.header_block_since.load(Ordering::Relaxed) != NEVER {
                self.header_block_since.store(now, Ordering::Relaxed);
            }
        } else if self
            .write_blocked_since
            .compare_exchange(NEVER, self.now(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// A request starts; it ends when the guard is dropped.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    fn header_block(&self, open: bool) {
        if open {
            if self
                .header_block_since
                .compare_exchange(NEVER, self.now(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.changed.notify_one();
            }
        } else {
            self.header_block_since.store(NEVER, Ordering::Relaxed);
        }
    }

    fn stall(&self, body: u64, stalled: bool) {
        let mut locked = self.locked.lock().unwrap_or_else(PoisonError::into_inner);
        let list = &mut locked.stalled;
        list.retain(|(id, _)| *id != body);
        if stalled {
            let first = list.is_empty();
            list.push((body, self.now()));
            drop(locked);
            if first {
                self.changed.notify_one();
            }
        }
    }

    fn earliest_stall(&self) -> Option<u64> {
        let locked = self.locked.lock().unwrap_or_else(PoisonError::into_inner);
        locked.stalled.iter().map(|(_, since)| *since).min()
    }
}

/// One request (or response body) in flight on a connection.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1
            && activity.wake_when_free.swap(false, Ordering::Relaxed)
        {
            activity.changed.notify_one();
        }
    }
}

/// The watchdog's own waker: notes that the watchdog has something to look at, then wakes the
/// connection's task.
impl Wake for Activity {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.watchdog_woken.store(true, Ordering::Release);
        let task = self
            .locked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .task
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection and its [`watchdog`], run together in the connection's task: the connection's
    /// result, or the reason the watchdog ended it.
    ///
    /// The task wakes for the connection far more often (every request) than for the watchdog, so
    /// the watchdog has a waker of its own and is polled only after that waker was used; polling
    /// both on every wake-up, as `select!` does, cost as much as a tenth of a request's work.
    pub(crate) struct Guarded<'a, C, W> {
        #[pin]
        connection: C,
        #[pin]
        watchdog: W,
        activity: &'a Activity,
        waker: Waker,
    }
}

impl<'a, C, W> Guarded<'a, C, W> {
    pub(crate) fn new(
        connection: C,
        watchdog: W,
        activity: &'a Arc<Activity>,
    ) -> Guarded<'a, C, W> {
        let waker = Waker::from(Arc::clone(activity));
        Guarded {
            connection,
            watchdog,
            activity,
            waker,
        }
    }
}

impl<C: Future + Drainable, W: Future<Output = CloseReason>> Future for Guarded<'_, C, W> {
    type Output = Result<C::Output, CloseReason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(served) = this.connection.as_mut().poll(cx) {
            return Poll::Ready(Ok(served));
        }
        let activity = *this.activity;
        {
            let mut locked = activity
                .locked
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &mut locked.task {
                Some(task) if task.will_wake(cx.waker()) => {}
                task => *task = Some(cx.waker().clone()),
            }
        }
        // After the waker is in place: a wake-up from now on either is seen here or wakes the
        // task again.
        if activity.watchdog_woken.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(reason) = this.watchdog.poll(&mut Context::from_waker(this.waker)) {
                return Poll::Ready(Err(reason));
            }
            if activity.drain_asked.swap(false, Ordering::Relaxed) {
                // hyper acts on it when next polled: an idle connection closes at once.
                this.connection.as_mut().drain();
                if let Poll::Ready(served) = this.connection.poll(cx) {
                    return Poll::Ready(Ok(served));
                }
            }
        }
        Poll::Pending
    }
}

/// Runs until one of the connection's deadlines passes, and says which; never ends otherwise.
/// When the drain begins it asks [`Guarded`] to have hyper finish; when the drain cuts off what is
/// left, it ends too.
pub(crate) async fn watchdog(
    activity: &Activity,
    timeouts: Timeouts,
    h2: bool,
    mut drain: DrainWatch,
) -> CloseReason {
    loop {
        let now = activity.now();
        let mut next = NEVER;
        let mut due = |since: u64, limit: u64| -> bool {
            if since == NEVER {
                return false;
            }
            let deadline = since.saturating_add(limit);
            next = next.min(deadline);
            now >= deadline
        };
        if h2 && !activity.h2_ready.load(Ordering::Relaxed) && due(0, timeouts.header_read) {
            return CloseReason::HeaderTimeout;
        }
        let block = activity.header_block_since.load(Ordering::Relaxed);
        if due(block, timeouts.header_read) {
            return CloseReason::HeaderTimeout;
        }
        let blocked = activity.write_blocked_since.load(Ordering::Relaxed);
        if due(blocked, timeouts.write) {
            return CloseReason::WriteTimeout;
        }
        if let Some(stalled) = activity.earliest_stall()
            && due(stalled, timeouts.write)
        {
            return CloseReason::WriteTimeout;
        }
        if activity.in_flight.load(Ordering::Relaxed) == 0 {
            let last = activity.last_progress.load(Ordering::Relaxed);
            if due(last, timeouts.idle) {
                return CloseReason::Idle;
            }
            // HTTP/1.1: a head that begins now does not wake the watchdog, so it looks again
            // within a header-read timeout; a head seen then is still short of its deadline.
            // (While a body is arriving no head can begin, and its end wakes the watchdog.)
            if !h2 && block == NEVER && activity.bodies_arriving.load(Ordering::Relaxed) == 0 {
                next = next.min(now.saturating_add(timeouts.header_read));
            }
        } else {
            activity.wake_when_free.store(true, Ordering::Relaxed);
            // Ended in between: look again rather than sleep past the idle deadline.
            if activity.in_flight.load(Ordering::Relaxed) == 0 {
                continue;
            }
        }
        let at = activity
            .accepted
            .checked_add(Duration::from_millis(next))
            .unwrap_or_else(|| activity.accepted + Duration::from_secs(86_400 * 365));
        tokio::select! {
            () = tokio::time::sleep_until(at), if next != NEVER => {}
            () = activity.changed.notified() => {}
            phase = drain.next() => match phase {
                Phase::CutOff => return CloseReason::DrainTimeout,
                Phase::Draining | Phase::Serving => {
                    activity.drain_asked.store(true, Ordering::Relaxed);
                }
            },
        }
    }
}

/// Follows the frames of an HTTP/2 connection as its bytes are read, without parsing them: only
/// frame boundaries, to see the first SETTINGS end and header blocks open and close.
#[derive(Debug, Default)]
pub(crate) struct H2Frames {
    /// Preface bytes still to skip (set to the preface length when created).
    preface_left: usize,
    header: [u8; 9],
    header_filled: usize,
    payload_left: u64,
    frames_seen: u64,
}

const FRAME_HEADERS: u8 = 0x1;
const FRAME_PUSH_PROMISE: u8 = 0x5;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;

impl H2Frames {
    pub(crate) fn new(preface_len: usize) -> H2Frames {
        H2Frames {
            preface_left: preface_len,
            ..H2Frames::default()
        }
    }

    /// Follows `bytes`, just read, and notes what they complete in `activity`.
    pub(crate) fn follow(&mut self, mut bytes: &[u8], activity: &Activity) {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let skip = self.preface_left.min(bytes.len());
                self.preface_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.payload_left -= skip as u64;
                bytes = &bytes[skip..];
                if self.payload_left == 0 {
                    self.frame_done(activity);
                }
                continue;
            }
            let take = (9 - self.header_filled).min(bytes.len());
            self.header[self.header_filled..self.header_filled + take]
                .copy_from_slice(&bytes[..take]);
            self.header_filled += take;
            bytes = &bytes[take..];
            if self.header_filled < 9 {
                continue;
            }
            self.header_filled = 0;
            let [l0, l1, l2, kind, flags, ..] = self.header;
            let length = u64::from(l0) << 16 | u64::from(l1) << 8 | u64::from(l2);
            let ends_block = flags & FLAG_END_HEADERS != 0;
            match kind {
                FRAME_HEADERS | FRAME_PUSH_PROMISE | FRAME_CONTINUATION => {
                    activity.header_block(!ends_block);
                }
                _ => {}
            }
            self.payload_left = length;
            if length == 0 {
                self.frame_done(activity);
            }
        }
    }

    fn frame_done(&mut self, activity: &Activity) {
        self.frames_seen += 1;
        if self.frames_seen == 1 {
            // The first frame after the preface must be SETTINGS; hyper refuses anything else.
            activity.h2_ready.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether a response body needs watching: it is open-ended or too large to leave in one write.
pub(crate) fn needs_watching(body: &Body) -> bool {
    use http_body::Body as _;
    !body.is_end_stream() && body.size_hint().exact().is_none_or(|len| len > SMALL_BODY)
}

/// An HTTP/1.1 request body that may still be arriving on its connection. The server puts one
/// in the extensions of every HTTP/1.1 request with a body; while it is held, the bytes the
/// connection reads are taken for that body, and the header read timeout does not run on them.
/// A handler that reads the body after it has answered (a proxy relaying an upload) moves it
/// onto the body with [`ArrivingBody::hold`]; anything else drops it with the request.
///
/// It does not count as a request in flight, so a body that stops arriving still lets the
/// connection close at `--idle-timeout`. Every clone holds the guard too: a handler that clones
/// its request's extensions keeps heads untimed until the clone is dropped.
#[derive(Debug, Clone)]
pub struct ArrivingBody {
    _guard: Arc<BodyGuard>,
}

#[derive(Debug)]
struct BodyGuard(Arc<Activity>);

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.bodies_arriving.fetch_sub(1, Ordering::Relaxed);
        // The watchdog does not look for request heads while a body arrives.
        activity.changed.notify_one();
    }
}

impl ArrivingBody {
    /// `body`, holding this guard until it ends or is dropped.
    pub fn hold<B>(self, body: B) -> HeldBody<B> {
        HeldBody {
            body,
            arriving: Some(self),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body with its [`ArrivingBody`] guard, released at the body's end.
    #[derive(Debug)]
    pub struct HeldBody<B> {
        #[pin]
        body: B,
        arriving: Option<ArrivingBody>,
    }
}

impl<B: http_body::Body> http_body::Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.body.as_mut().poll_frame(cx));
        // At its last frame: a reader that knows the length may never poll for the end.
        if !matches!(frame, Some(Ok(_))) || this.body.is_end_stream() {
            this.arriving.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight on the connection until it is sent, and
    /// notes when bytes it handed out are not taken up by hyper (the write is stalled).
    pub(crate) struct Watched {
        #[pin]
        inner: Body,
        id: u64,
        stalled: bool,
        busy: Busy,
    }

    impl PinnedDrop for Watched {
        fn drop(this: Pin<&mut Self>) {
            if this.stalled {
                this.busy.0.stall(this.id, false);
            }
        }
    }
}

impl Watched {
    pub(crate) fn new(inner: Body, busy: Busy) -> Watched {
        let id = busy.0.next_body.fetch_add(1, Ordering::Relaxed);
        Watched {
            inner,
            id,
            stalled: false,
            busy,
        }
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut this = self.project();
        // hyper asks for more: whatever was handed out before has been taken.
        if *this.stalled {
            *this.stalled = false;
            this.busy.0.stall(*this.id, false);
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && frame.is_data()
            && !this.inner.is_end_stream()
        {
            *this.stalled = true;
            this.busy.0.stall(*this.id, true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guard goes with its body's last frame, not later: until then the connection's bytes
    /// are the body's, and after it they may be the next request's head.
    #[tokio::test]
    async fn a_held_body_lets_go_of_its_guard_at_its_last_frame() {
        use http_body_util::{BodyExt, Full};

        let activity = Arc::new(Activity::new());
        let arriving = activity.body_arriving();
        let copy = arriving.clone();
        let mut body = arriving.hold(Full::new(Bytes::from_static(b"upload")));
        drop(copy);
        assert_eq!(activity.bodies_arriving.load(Ordering::Relaxed), 1);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "upload");
        assert_eq!(activity.bodies_arriving.load(Ordering::Relaxed), 0);
        assert!(body.frame().await.is_none());

        // Dropped before its end, it lets go too.
        let body = activity
            .body_arriving()
            .hold(Full::new(Bytes::from_static(b"cut")));
        assert_eq!(activity.bodies_arriving.load(Ordering::Relaxed), 1);
        drop(body);
        assert_eq!(activity.bodies_arriving.load(Ordering::Relaxed), 0);
    }

    /// Every connection allocates its `Activity` in an `Arc` (two counters, 16 bytes, before
    /// it): at 160 bytes or less it takes jemalloc's 160-byte size class, and the watchdog's
    /// waker must not push every connection into the next one (192).
    #[test]
    fn activity_fits_the_160_byte_class() {
        let size = std::mem::size_of::<Activity>() + 16;
        eprintln!("Arc<Activity> allocation: {size} bytes");
        assert!(size <= 160, "{size} bytes");
    }
}
