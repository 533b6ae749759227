//! The ceiling's client: COUNT requests over CONNECTIONS keep-alive connections, one `write` per
//! request, each response read once, and the summary `slowlab fetch --output json` prints.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Room for one response: bench/run's servers answer `/0` and `/1` with a few hundred bytes.
const READ_BUFFER: usize = 4096;

struct Conn {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Whether the first request is out (the first writable event means connected).
    started: bool,
}

/// Tallies of the run.
#[derive(Default)]
struct Tally {
    issued: u64,
    ok: u64,
    failed_status: u64,
    closed: u64,
}

/// Runs the requests and prints the summary on stdout.
pub fn fetch(url: &str, count: u64, connections: usize) -> Result<(), String> {
    crate::raise_open_files();
    let (addr, authority, path) = parse_url(url)?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\n\r\n").into_bytes();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let started = Instant::now();
    let n = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(connections);
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream: Some(stream),
            buf: Vec::with_capacity(READ_BUFFER),
            started: false,
        });
    }
    let mut tally = Tally::default();
    let mut open = n;
    while tally.ok + tally.failed_status + tally.closed < count && open > 0 {
        poll.poll(&mut events, None).map_err(|e| e.to_string())?;
        for event in &events {
            let conn = &mut conns[event.token().0];
            if conn.stream.is_none() {
                continue;
            }
            let mut alive = true;
            if event.is_writable() && !conn.started {
                conn.started = true;
                alive = send(conn, &request, &mut tally, count);
            }
            if alive && event.is_readable() {
                alive = receive(conn, &request, &mut tally, count);
            }
            if (!alive || (event.is_error() && conn.started)) && conn.stream.take().is_some() {
                open -= 1;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let done = tally.ok + tally.failed_status + tally.closed;
    let mut errors = Vec::new();
    if tally.failed_status > 0 {
        errors.push(format!(
            r#"{{"kind":"status","count":{}}}"#,
            tally.failed_status
        ));
    }
    let unanswered = tally.closed + (count - done);
    if unanswered > 0 {
        errors.push(format!(
            r#"{{"kind":"connection closed","count":{unanswered}}}"#
        ));
    }
    println!(
        r#"{{"summary":{{"requests":{count},"ok":{},"wall":{wall:.6},"errors":[{}]}}}}"#,
        tally.ok,
        errors.join(",")
    );
    Ok(())
}

/// `http://HOST:PORT/PATH` as (address, `HOST:PORT`, `/PATH`).
fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs, not {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("not HOST:PORT: {authority}"))?;
    Ok((addr, authority.to_string(), path.to_string()))
}

/// Sends the next request if any is left, with one `write`; closes the connection otherwise.
/// False when the connection is over.
fn send(conn: &mut Conn, request: &[u8], tally: &mut Tally, count: u64) -> bool {
    if tally.issued >= count {
        return false;
    }
    tally.issued += 1;
    let stream = conn.stream.as_mut().expect("open");
    // A request is far smaller than an empty socket buffer: one write takes it whole.
    matches!(stream.write(request), Ok(n) if n == request.len())
}

/// Reads what has arrived; on each complete response, tallies it and sends the next request.
/// False when the connection is over.
///
/// A read that fills less than the room offered has drained the socket (see the server).
fn receive(conn: &mut Conn, request: &[u8], tally: &mut Tally, count: u64) -> bool {
    loop {
        let len = conn.buf.len();
        conn.buf.resize(len + READ_BUFFER, 0);
        let read = conn
            .stream
            .as_mut()
            .expect("open")
            .read(&mut conn.buf[len..]);
        let n = match read {
            Ok(0) => {
                conn.buf.truncate(len);
                tally.closed += 1;
                return false;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.buf.truncate(len);
                return true;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                conn.buf.truncate(len);
                continue;
            }
            Err(_) => {
                conn.buf.truncate(len);
                tally.closed += 1;
                return false;
            }
        };
        conn.buf.truncate(len + n);
        while let Some((status, end)) = complete_response(&conn.buf) {
            conn.buf.drain(..end);
            if status == 200 {
                tally.ok += 1;
            } else {
                tally.failed_status += 1;
            }
            if !send(conn, request, tally, count) {
                return false;
            }
        }
        if n < READ_BUFFER {
            return true;
        }
    }
}

/// The status and length of the first response in `buf`, once all of it has arrived.
fn complete_response(buf: &[u8]) -> Option<(u16, usize)> {
    let head_end = crate::head_end(buf)?;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let status = head.get(9..12)?.parse().ok()?;
    let body: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (buf.len() >= head_end + body).then_some((status, head_end + body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_complete_with_its_body() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
        assert_eq!(complete_response(r), Some((200, r.len())));
        assert_eq!(complete_response(&r[..r.len() - 1]), None);
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1";
        assert_eq!(
            complete_response(not_found),
            Some((404, not_found.len() - 8))
        );
    }
}
