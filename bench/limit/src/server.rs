//! The ceiling's server: accepts until `EAGAIN`, reads each request once, answers with one
//! `write`, at once for `GET /0` or after the path's seconds from a timer heap. The answer is
//! `slowlab serve`'s body, `{"time_elapsed": D}`, so that slowlab fetch, which checks the echo,
//! accepts it.
//!
//! It keeps the lateness of every delayed answer, for bench/run's scenario 6: the moment the
//! answer is written minus its deadline (the moment its request was read plus the wait asked
//! for). `GET /lateness` answers with their exact quantiles, in seconds:
//! `{"count": N, "p50": S, "p99": S, "p99_9": S, "max": S}`.
//!
//! How it matches `slowlab_lateness_seconds` (slowlab serve's histogram: the time since its
//! request was counted in, measured when the sleeping request resumes, minus the planned wait):
//! - the start is when the request's head was found in the read buffer, where slowlab serve's
//!   is when its handler starts, just after hyper parsed the head;
//! - the end is taken when the timer is taken off the heap, just before the answer is built
//!   and written, where slowlab serve's is when the handler resumes, also before its answer is
//!   built and written: in both, a lateness leaves out its own answer's writing but includes
//!   that of every answer handled before it in the same turn;
//! - both wait on a clock of whole milliseconds (the ceiling's `epoll_wait` timeout, which mio
//!   rounds up; tokio's timer wheel), so a deadline may be met up to 1 ms late by design;
//! - slowlab serve counts a late wait into histogram buckets; the ceiling keeps every value
//!   (8 bytes an answer, for the life of the process), so its quantiles are exact.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::slots::Timers;

/// The response for `GET /0`, made once; other delays are formatted when they are answered.
pub(crate) const RESPONSE_0: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n{\"time_elapsed\": 0}";
/// The listener's token; connections use their slot's index.
const LISTENER: Token = Token(usize::MAX);
/// Room for one request head: bench/run's clients send well under this.
pub(crate) const READ_BUFFER: usize = 1024;
/// The request that answers with the lateness quantiles instead of a wait.
const LATENESS_REQUEST: &[u8] = b"GET /lateness ";

/// The lateness of every delayed answer so far, in nanoseconds, in the order written.
#[derive(Default)]
struct Lateness(Vec<u64>);

impl Lateness {
    /// Records an answer due at `deadline`, about to be written.
    fn record(&mut self, deadline: Instant) {
        let late = Instant::now().saturating_duration_since(deadline);
        self.0
            .push(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX));
    }

    /// `{"count": N, "p50": S, "p99": S, "p99_9": S, "max": S}`, in seconds; a quantile q is the
    /// smallest value with at least q of all values at or below it (null when there are none).
    fn summary(&self) -> String {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let quantile = |q: f64| match sorted.len() {
            0 => "null".to_string(),
            n => {
                let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
                format!("{:.9}", sorted[rank - 1] as f64 / 1e9)
            }
        };
        format!(
            r#"{{"count": {}, "p50": {}, "p99": {}, "p99_9": {}, "max": {}}}"#,
            sorted.len(),
            quantile(0.5),
            quantile(0.99),
            quantile(0.999),
            quantile(1.0)
        )
    }
}

struct Conn {
    stream: TcpStream,
    buf: Box<[u8; READ_BUFFER]>,
    len: usize,
    /// Bytes of answers a full socket buffer refused, written when it is writable again.
    unsent: Vec<u8>,
}

/// The connections, by slot.
type Slots = crate::slots::Slots<Conn>;

/// Serves on 127.0.0.1:`port` until killed.
pub fn serve(port: u16) -> io::Result<()> {
    crate::raise_open_files();
    let listener = listen(port)?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut slots = Slots::default();
    // The answers still waiting for their time.
    let mut timers = Timers::default();
    let mut lateness = Lateness::default();
    loop {
        let timeout = timers
            .earliest()
            .map(|at| at.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, timeout)?;
        for (i, event) in events.iter().enumerate() {
            // Due answers go first, every few events, so that a long turn of reads (up to
            // 1,024 events) does not make them late; no clock read when none is waiting.
            if i % DUE_EVERY == DUE_EVERY - 1 && !timers.is_empty() {
                answer_due(&mut timers, &mut slots, &mut lateness);
            }
            match event.token() {
                LISTENER => accept_all(&listener, &poll, &mut slots, |slots| {
                    if !timers.is_empty() {
                        answer_due(&mut timers, slots, &mut lateness);
                    }
                })?,
                Token(slot) => {
                    let id = (slot, slots.generation(slot));
                    let open = match slots.get_mut(id.0, id.1) {
                        Some(conn) => {
                            (!event.is_writable() || flush(conn))
                                && (!event.is_readable() || read(conn, id, &mut timers, &lateness))
                        }
                        None => true,
                    };
                    if !open {
                        slots.remove(slot);
                    }
                }
            }
        }
        answer_due(&mut timers, &mut slots, &mut lateness);
    }
}

/// How many events or accepts the server handles between two looks at the timer heap.
const DUE_EVERY: usize = 64;

/// Answers every request whose time has come.
fn answer_due(timers: &mut Timers, slots: &mut Slots, lateness: &mut Lateness) {
    let now = Instant::now();
    while let Some((at, slot, generation, delay)) = timers.pop_due(now) {
        if let Some(conn) = slots.get_mut(slot, generation) {
            lateness.record(at);
            if !answer(conn, delay) {
                slots.remove(slot);
            }
        }
    }
}

/// A non-blocking listener with a backlog of 4,096, like `slowlab serve`'s default.
pub(crate) fn listen(port: u16) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Accepts until `EAGAIN` (edge-triggered: one event may stand for many connections), calling
/// `between` every [`DUE_EVERY`] connections (a backlog of thousands takes milliseconds).
fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    slots: &mut Slots,
    mut between: impl FnMut(&mut Slots),
) -> io::Result<()> {
    let mut accepted = 0usize;
    loop {
        accepted += 1;
        if accepted.is_multiple_of(DUE_EVERY) {
            between(slots);
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let (slot, _, conn) = slots.insert(Conn {
                    stream,
                    buf: Box::new([0; READ_BUFFER]),
                    len: 0,
                    unsent: Vec::new(),
                });
                poll.registry().register(
                    &mut conn.stream,
                    Token(slot),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Out of file descriptors or a connection reset before accept: take the next.
            Err(e) => {
                eprintln!("slowlab-limit: accept: {e}");
                return Ok(());
            }
        }
    }
}

/// Reads what has arrived and answers or schedules each complete request. False when the
/// connection is over.
///
/// A read that fills less than the buffer has drained the socket, and Linux's edge-triggered
/// epoll reports the next bytes that arrive as a new event, so no read is spent on `EAGAIN`.
fn read(
    conn: &mut Conn,
    (slot, generation): (usize, u32),
    timers: &mut Timers,
    lateness: &Lateness,
) -> bool {
    loop {
        let room = READ_BUFFER - conn.len;
        if room == 0 {
            return false; // a head larger than any bench/run client sends
        }
        let n = match conn.stream.read(&mut conn.buf[conn.len..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        conn.len += n;
        while let Some(end) = crate::head_end(&conn.buf[..conn.len]) {
            let delay = delay_of(&conn.buf[..end]);
            let summary = (delay.is_zero() && conn.buf.starts_with(LATENESS_REQUEST))
                .then(|| lateness.summary());
            conn.buf.copy_within(end..conn.len, 0);
            conn.len -= end;
            if let Some(summary) = summary {
                if !write_all(conn, &json_response(&summary)) {
                    return false;
                }
            } else if delay.is_zero() {
                if !answer(conn, Duration::ZERO) {
                    return false;
                }
            } else {
                timers.push(slot, generation, delay);
            }
        }
        if n < room {
            return true;
        }
    }
}

/// The wait a request asks for: `GET /D` waits D seconds (D may have a fraction).
pub(crate) fn delay_of(head: &[u8]) -> Duration {
    let path = head
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or("/0");
    path.trim_start_matches('/')
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::ZERO, Duration::from_secs_f64)
}

/// Writes one response with one `write`, keeping what a full socket buffer refused. False when
/// the connection is over.
fn answer(conn: &mut Conn, delay: Duration) -> bool {
    let formatted;
    let response = if delay.is_zero() {
        RESPONSE_0
    } else {
        formatted = response(delay);
        &formatted
    };
    write_all(conn, response)
}

/// Writes `response` with one `write`, keeping what a full socket buffer refused. False when
/// the connection is over.
fn write_all(conn: &mut Conn, response: &[u8]) -> bool {
    if !conn.unsent.is_empty() {
        conn.unsent.extend_from_slice(response);
        return true;
    }
    match conn.stream.write(response) {
        Ok(n) => {
            conn.unsent.extend_from_slice(&response[n..]);
            true
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            conn.unsent.extend_from_slice(response);
            true
        }
        Err(_) => false,
    }
}

/// The response to a wait of `delay`: `{"time_elapsed": D}` with D in seconds, as asked.
pub(crate) fn response(delay: Duration) -> Vec<u8> {
    json_response(&format!(r#"{{"time_elapsed": {}}}"#, delay.as_secs_f64()))
}

/// A 200 response with the JSON `body`.
fn json_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes what a full socket buffer refused earlier. False when the connection is over.
fn flush(conn: &mut Conn) -> bool {
    while !conn.unsent.is_empty() {
        match conn.stream.write(&conn.unsent) {
            Ok(n) => {
                conn.unsent.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_delay_in_seconds() {
        assert_eq!(delay_of(b"GET /0 HTTP/1.1\r\n\r\n"), Duration::ZERO);
        assert_eq!(delay_of(b"GET /1 HTTP/1.1\r\n\r\n"), Duration::from_secs(1));
        assert_eq!(
            delay_of(b"GET /0.5 HTTP/1.1\r\n\r\n"),
            Duration::from_millis(500)
        );
        assert_eq!(delay_of(b"GET /x HTTP/1.1\r\n\r\n"), Duration::ZERO);
    }

    #[test]
    fn lateness_quantiles_are_exact_values() {
        assert_eq!(
            Lateness::default().summary(),
            r#"{"count": 0, "p50": null, "p99": null, "p99_9": null, "max": null}"#
        );
        // 1..=1000 µs, recorded out of order.
        let lateness = Lateness((1..=1000u64).rev().map(|us| us * 1000).collect());
        assert_eq!(
            lateness.summary(),
            r#"{"count": 1000, "p50": 0.000500000, "p99": 0.000990000, "p99_9": 0.000999000, "max": 0.001000000}"#
        );
        let mut lateness = Lateness::default();
        lateness.record(Instant::now() + Duration::from_secs(60)); // not due yet: 0, not negative
        assert_eq!(lateness.0, [0]);
    }

    #[test]
    fn answers_echo_the_wait_like_slowlab_serve() {
        let one = response(Duration::from_secs(1));
        assert!(one.ends_with(b"\r\n\r\n{\"time_elapsed\": 1}"), "{one:?}");
        assert!(RESPONSE_0.ends_with(b"\r\n\r\n{\"time_elapsed\": 0}"));
        let half = String::from_utf8(response(Duration::from_millis(500))).unwrap();
        assert!(half.contains("content-length: 21\r\n"), "{half}");
    }
}
