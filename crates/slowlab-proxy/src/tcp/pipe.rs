//! One direction of a proxied connection: read from one side, apply the effects, write to the other.
//!
//! Without effects the bytes are moved directly: with splice(2) on Linux (`super::splice`), else
//! copied through one buffer. With effects, a reader and a writer run side by
//! side, joined by a short queue: the reader stamps each read with the time it is due (latency and
//! jitter, never earlier than the read before it, so order is kept), counts `reset_after=` and
//! drops what `timeout=` holds back; the writer waits for each read's due time and writes it in
//! pieces shaped by `slice=` and paced by `bps=`. The queue lets latency add to every byte without
//! lowering throughput, and its bound keeps memory per connection small.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::RngExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::effects::DirectionEffects;

/// Bytes read at once.
const READ_SIZE: usize = 64 * 1024;

/// Reads queued between reader and writer: with [`READ_SIZE`], at most 1 MiB held per direction.
const QUEUE: usize = 16;

/// Pieces per second of a `bps=` pace, so a slow pace is smooth and a fast one cheap on timers.
const PIECES_PER_SECOND: u64 = 50;

/// A pace that fell this far behind was idle, not late: it starts again from now, rather than
/// releasing a burst to catch up.
const IDLE_RESTART: Duration = Duration::from_millis(50);

/// How one direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The reading side closed its half; the writing side was sent the same (FIN).
    Closed,
    /// `reset_after=` was reached, or one side reset: the connection is to be reset.
    Reset,
    /// Some other error; the connection is to be closed.
    Failed,
}

/// What the reader hands the writer.
enum Message {
    Data { due: Instant, bytes: Bytes },
    End(End),
}

/// Copies `src` to `dst` with `effects` until `src` closes or either side fails, adding every byte
/// written to `counter`.
pub(crate) async fn pipe(
    mut src: ReadHalf<'_>,
    mut dst: WriteHalf<'_>,
    effects: &DirectionEffects,
    counter: &AtomicU64,
) -> End {
    if effects.timeout.is_some() {
        return hold(src).await;
    }
    if effects.is_plain() {
        // On Linux the bytes go socket to socket through a pipe (see `splice`); a pipe that cannot
        // be made (out of descriptors) leaves them to the copy.
        #[cfg(target_os = "linux")]
        match super::splice::Pipe::new() {
            Ok(pipe) => return super::splice::copy(src, dst, pipe, counter).await,
            Err(err) => tracing::debug!("no pipe for splice, copying instead: {err}"),
        }
        return copy(src, dst, counter).await;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let reader = async {
        read_and_stamp(&mut src, effects, tx).await;
        // The writer decides when this direction ends.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        end = write_shaped(&mut dst, effects, rx, counter) => end,
        () = reader => unreachable!("the reader never ends by itself"),
    }
}

/// `timeout=`: read and drop everything, forwarding nothing, until the side closes. The connection's
/// timer closes the connection.
async fn hold<R: AsyncRead + Unpin>(mut src: R) -> End {
    let mut buf = vec![0; READ_SIZE];
    loop {
        match src.read(&mut buf).await {
            Ok(0) => return End::Closed,
            Ok(_) => {}
            Err(err) => return end_of(&err),
        }
    }
}

/// No effects, where splice(2) is not to be had: a plain copy.
async fn copy<R, W>(mut src: R, mut dst: W, counter: &AtomicU64) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0; READ_SIZE];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) => return close(&mut dst).await,
            Ok(n) => n,
            Err(err) => return end_of(&err),
        };
        if let Err(err) = dst.write_all(&buf[..n]).await {
            return end_of(&err);
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The reader's half: each read stamped with its due time, cut at `reset_after=`.
async fn read_and_stamp<R: AsyncRead + Unpin>(
    src: &mut R,
    effects: &DirectionEffects,
    tx: mpsc::Sender<Message>,
) {
    let mut remaining = effects.reset_after;
    let mut last_due = Instant::now();
    let mut buf = BytesMut::new();
    let end = loop {
        if remaining == Some(0) {
            break End::Reset;
        }
        buf.reserve(READ_SIZE);
        let n = match src.read_buf(&mut buf).await {
            Ok(0) => break End::Closed,
            Ok(n) => n,
            Err(err) => break end_of(&err),
        };
        let mut bytes = buf.split_to(n).freeze();
        if let Some(left) = remaining.as_mut() {
            let keep = usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            bytes.truncate(keep);
            *left -= keep as u64;
        }
        let due = if effects.delays() {
            (Instant::now() + latency(effects)).max(last_due)
        } else {
            Instant::now()
        };
        last_due = due;
        if tx.send(Message::Data { due, bytes }).await.is_err() {
            return;
        }
    };
    let _ = tx.send(Message::End(end)).await;
}

/// One read's latency: `latency ± jitter`, cut off at zero.
fn latency(effects: &DirectionEffects) -> Duration {
    if effects.jitter.is_zero() {
        return effects.latency;
    }
    let base = effects.latency.as_secs_f64();
    let jitter = effects.jitter.as_secs_f64();
    let drawn = rand::rng().random_range(base - jitter..=base + jitter);
    Duration::try_from_secs_f64(drawn.max(0.0)).unwrap_or(Duration::ZERO)
}

/// The writer's half: each read written when due, in pieces (`slice=`) at a pace (`bps=`).
async fn write_shaped<W: AsyncWrite + Unpin>(
    dst: &mut W,
    effects: &DirectionEffects,
    mut rx: mpsc::Receiver<Message>,
    counter: &AtomicU64,
) -> End {
    let mut pace = effects.bps.map(Pace::new);
    while let Some(message) = rx.recv().await {
        let (due, mut bytes) = match message {
            Message::Data { due, bytes } => (due, bytes),
            Message::End(End::Closed) => return close(dst).await,
            Message::End(end) => return end,
        };
        tokio::time::sleep_until(due).await;
        while !bytes.is_empty() {
            let mut size = bytes.len();
            if let Some(slice) = &effects.slice {
                size = size.min(piece_size(slice.average, slice.variation));
            }
            if let Some(pace) = pace.as_mut() {
                size = size.min(pace.piece);
                pace.wait_for(size as u64).await;
            }
            let piece = bytes.split_to(size);
            if let Err(err) = dst.write_all(&piece).await {
                return end_of(&err);
            }
            counter.fetch_add(size as u64, Ordering::Relaxed);
            if let Some(slice) = &effects.slice
                && !bytes.is_empty()
                && !slice.delay.is_zero()
            {
                tokio::time::sleep(slice.delay).await;
            }
        }
    }
    // The reader always sends an end before it goes; without one, it was cancelled.
    End::Failed
}

/// A piece of `average ± variation` bytes, at least 1.
fn piece_size(average: usize, variation: usize) -> usize {
    if variation == 0 {
        return average.max(1);
    }
    rand::rng()
        .random_range(average - variation..=average + variation)
        .max(1)
}

/// `bps=`: a schedule of when the next bytes may leave.
struct Pace {
    bps: u64,
    /// Largest piece written at once: about 1/50 s worth.
    piece: usize,
    /// When the bytes written so far were all due; the next piece is due after it.
    next: Option<Instant>,
}

impl Pace {
    fn new(bps: u64) -> Pace {
        let piece = (bps / PIECES_PER_SECOND).clamp(1, READ_SIZE as u64);
        Pace {
            bps,
            piece: usize::try_from(piece).unwrap_or(READ_SIZE),
            next: None,
        }
    }

    /// Waits until `size` more bytes may leave: `size / bps` after the previous piece was due, so
    /// that N bytes take at least N / bps. Counting from when pieces were due, not when the timer
    /// woke, keeps timer lateness from adding up.
    async fn wait_for(&mut self, size: u64) {
        let now = Instant::now();
        let start = match self.next {
            Some(next) if next + IDLE_RESTART > now => next,
            _ => now,
        };
        let due = start + Duration::from_secs_f64(size as f64 / self.bps as f64);
        self.next = Some(due);
        tokio::time::sleep_until(due).await;
    }
}

/// Sends the writing side a FIN: the reading side closed its half.
pub(crate) async fn close<W: AsyncWrite + Unpin>(dst: &mut W) -> End {
    match dst.shutdown().await {
        Ok(()) => End::Closed,
        Err(err) => end_of(&err),
    }
}

/// A reset on one side is passed on as a reset; anything else closes the connection.
pub(crate) fn end_of(err: &io::Error) -> End {
    match err.kind() {
        io::ErrorKind::ConnectionReset => End::Reset,
        _ => End::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain copy is what a direction with no effect falls back to where splice(2) is not to
    /// be had (other systems, or no descriptors left for a pipe); on Linux nothing else runs it.
    #[tokio::test]
    async fn the_plain_copy_moves_every_byte_then_passes_the_close_on() {
        let sent: Vec<u8> = (0..3 * READ_SIZE + 17).map(|i| (i % 251) as u8).collect();
        let (mut writer, src) = tokio::io::duplex(8 * 1024);
        // The test keeps the destination, so the reader sees an end only if the copy sends one.
        let (mut dst, mut reader) = tokio::io::duplex(8 * 1024);
        let counter = AtomicU64::new(0);
        let sending = {
            let sent = sent.clone();
            async move {
                writer.write_all(&sent).await.unwrap();
                // The sender closes its half: the copy must end and close the other side.
                drop(writer);
            }
        };
        let mut received = Vec::new();
        // A copy that never passed the close on would leave the reader waiting: fail instead.
        let (end, (), read) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(
                copy(src, &mut dst, &counter),
                sending,
                reader.read_to_end(&mut received)
            )
        })
        .await
        .expect("the copy ended and closed the other side");
        assert_eq!(end, End::Closed);
        assert_eq!(
            read.unwrap(),
            sent.len(),
            "the reader saw its end of stream"
        );
        assert!(received == sent, "bytes changed or lost on the way");
        assert_eq!(counter.load(Ordering::Relaxed), sent.len() as u64);
    }

    #[test]
    fn a_reset_is_passed_on_and_anything_else_closes() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(end_of(&reset), End::Reset);
        let broken = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(end_of(&broken), End::Failed);
    }
}
