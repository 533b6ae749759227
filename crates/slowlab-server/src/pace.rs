//! `bps=N`: a body paced at N bytes per second, whatever its size.
//!
//! The schedule is counted from the body's first poll (just after the headers leave): by time t,
//! at most `N * t` bytes have been released. Counting from the start, not from the last chunk,
//! keeps timer lateness from adding up, so a body of B bytes ends B/N seconds after its headers,
//! give or take one timer tick. Bytes leave in slices of about 20 ms worth, which is smooth
//! enough for any client and cheap on timers.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::metrics::Outcome;
use crate::stats::Record;

/// Slices per second of a paced body.
const SLICES_PER_SECOND: u64 = 50;

/// Largest slice released at once, so a fast pace does not hand hyper one huge frame.
const MAX_SLICE: u64 = 256 * 1024;

pin_project_lite::pin_project! {
    /// `inner`'s bytes, released at `bps` bytes per second.
    pub struct Paced<B> {
        #[pin]
        inner: B,
        bps: u64,
        slice: u64,
        start: Option<Instant>,
        sent: u64,
        pending: Bytes,
        sleep: Option<Pin<Box<Sleep>>>,
        inner_done: bool,
        // Finished as ok when the last byte is out; counted as cancelled if dropped before.
        record: Option<Record>,
    }
}

/// `body`'s bytes released at `bps` bytes per second (`bps=`), for a body that is not one of
/// serve's own answers (a proxied one).
pub fn paced<B>(body: B, bps: u64) -> Paced<B> {
    Paced::new(body, bps, None)
}

impl<B> Paced<B> {
    /// Paces `inner` at `bps` bytes per second (at least 1); `record`, if any, ends with the body.
    pub(crate) fn new(inner: B, bps: u64, record: Option<Record>) -> Paced<B> {
        let bps = bps.max(1);
        Paced {
            inner,
            bps,
            slice: (bps / SLICES_PER_SECOND).clamp(1, MAX_SLICE),
            start: None,
            sent: 0,
            pending: Bytes::new(),
            sleep: None,
            inner_done: false,
            record,
        }
    }
}

/// When byte number `bytes` may leave: `bytes / bps` seconds after `start`.
fn due(start: Instant, bytes: u64, bps: u64) -> Instant {
    let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(bps);
    let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    start
        .checked_add(offset)
        .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365 * 30))
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let start = *this.start.get_or_insert_with(Instant::now);
        loop {
            if this.pending.is_empty() {
                if *this.inner_done {
                    if let Some(record) = this.record.take() {
                        record.finish(Outcome::Ok);
                    }
                    return Poll::Ready(None);
                }
                match ready!(this.inner.as_mut().poll_frame(cx)) {
                    None => *this.inner_done = true,
                    Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => *this.pending = data,
                        // Trailers pass as they are.
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    },
                }
                continue;
            }
            // The next slice may leave when its last byte is due.
            let size = (this.pending.len() as u64).min(*this.slice);
            let at = due(start, *this.sent + size, *this.bps);
            if Instant::now() < at {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                ready!(sleep.as_mut().poll(cx));
            }
            *this.sent += size;
            let data = this.pending.split_to(size as usize);
            debug_assert!(data.remaining() as u64 == size);
            // A client reading a known length stops polling after the last byte: the request
            // is done now, not at a final poll that may never come.
            if this.pending.is_empty() && (*this.inner_done || this.inner.is_end_stream()) {
                *this.inner_done = true;
                if let Some(record) = this.record.take() {
                    record.finish(Outcome::Ok);
                }
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner_done && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_body_takes_its_size_over_its_pace() {
        let body = http_body_util::Full::new(Bytes::from(vec![b'x'; 10_000]));
        let started = Instant::now();
        let collected = Paced::new(body, 4_000, None).collect().await.unwrap();
        assert_eq!(collected.to_bytes().len(), 10_000);
        // 10,000 bytes at 4,000 bytes per second: 2.5 s on the paused clock.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(2_500) && took < Duration::from_millis(2_510),
            "{took:?}"
        );
    }
}
