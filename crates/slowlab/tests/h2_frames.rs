//! HTTP/2 frame-level attacks, kept as regression tests against a real `slowlab serve` process:
//! rapid reset (CVE-2023-44487), CONTINUATION flood (the CVE-2024-27316 shape), WINDOW_UPDATE
//! overflow, SETTINGS_MAX_FRAME_SIZE at and past both ends of its range, and PRIORITY, PING,
//! zero-length DATA and stream-error floods.
//!
//! For each: another client, asking on fresh connections throughout, gets every answer (the last
//! after the attack), the server's peak memory (VmHWM) and CPU time stay under stated bounds, and
//! where the server ends the connection, `/metrics` counts it under
//! `slowlab_connections_closed_total{reason}`. Where it does not (PRIORITY and PING floods), the
//! attacking connection itself is shown to still serve a request.
//!
//! The client is frames written by hand on a blocking socket rather than the `h2` crate or Python's
//! hyper-h2: those clients refuse to send what an attacker sends (a window past 2^31-1, a frame
//! size out of range, a header block that never ends), and a frame is only a 9-byte header and a
//! payload, so no extra tool is needed in CI.

// The memory and CPU bounds are read from /proc.
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{Served, get};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Peak resident memory (VmHWM) the server may reach by the end of any attack here. A debug-build
/// server peaks near 25 MB through each of them; taking in all 100,000 streams of the rapid reset
/// (its limit loosened) peaks at 57 MB, and the other floods, unbounded, would hold 100 MB of
/// header block or 100,000 queued PING answers.
const MEMORY_BOUND_KB: u64 = 48 * 1024;

/// CPU time (user and system) the server may spend on one attack. Each takes 0.2 s or less in a
/// debug build; the bound is generous because other builds share the machine, and bounds work
/// per frame, not speed.
const CPU_BOUND: Duration = Duration::from_secs(10);

/// One frame: the 9-byte header, then the payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK header block for `method path` over http, host `t`, with no dynamic table use.
fn request_block(method: &str, path: &str) -> Vec<u8> {
    let mut block = match method {
        "GET" => vec![0x82],
        // `:method` by index 2's name, literal value, not indexed.
        _ => {
            let mut b = vec![0x02, u8::try_from(method.len()).unwrap()];
            b.extend_from_slice(method.as_bytes());
            b
        }
    };
    // `:scheme http`, then `:path` literal (name index 4), then `:authority t` (name index 1).
    block.push(0x86);
    block.push(0x04);
    block.push(u8::try_from(path.len()).unwrap());
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x01, b't']);
    block
}

/// What the server sent on one attacking connection, counted by a reader thread.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// GOAWAY's error code, if one came.
    goaway: Option<u32>,
    /// Stream resets, by the server.
    resets: Vec<(u32, u32)>,
    /// PING acknowledgements.
    pongs: u64,
    /// DATA payload bytes, and the largest DATA frame.
    data_bytes: u64,
    largest_data: u32,
    /// Streams whose response ended.
    ended: Vec<u32>,
    /// Whether the server closed the connection (EOF or reset).
    closed: bool,
}

/// An attacking connection: frames go out on `stream`; a thread reads and counts what comes back,
/// so that the server never waits on a full socket buffer.
struct Attacker {
    stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    reader: thread::JoinHandle<()>,
}

impl Attacker {
    /// Connects and sends the preface, an empty SETTINGS and, ahead of time, the acknowledgement
    /// of the server's (a SETTINGS ACK needs no payload to say which it acknowledges).
    fn connect(addr: &str) -> Attacker {
        Attacker::connect_with(addr, &[])
    }

    /// Connects with these settings (identifier, value) in the first SETTINGS frame.
    fn connect_with(addr: &str, settings: &[(u16, u32)]) -> Attacker {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut payload = Vec::new();
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &payload));
        hello.extend(frame(SETTINGS, ACK, 0, &[]));
        stream.write_all(&hello).unwrap();
        let read_half = stream.try_clone().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reader = {
            let seen = Arc::clone(&seen);
            thread::spawn(move || read_frames(read_half, &seen))
        };
        Attacker {
            stream,
            seen,
            reader,
        }
    }

    /// Sends frames; false once the server has closed the connection.
    fn send(&mut self, bytes: &[u8]) -> bool {
        match self.stream.write_all(bytes) {
            Ok(()) => true,
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                ) =>
            {
                false
            }
            Err(err) => panic!("writing frames: {err}"),
        }
    }

    /// Sends `frames` in batches of about 64 KiB; how many were sent before the server closed.
    fn flood(&mut self, frames: impl IntoIterator<Item = Vec<u8>>) -> u64 {
        let mut batch = Vec::with_capacity(80 * 1024);
        let mut in_batch = 0;
        let mut sent = 0;
        for f in frames {
            batch.extend(f);
            in_batch += 1;
            if batch.len() >= 64 * 1024 {
                if !self.send(&batch) {
                    return sent;
                }
                sent += in_batch;
                in_batch = 0;
                batch.clear();
            }
        }
        if !batch.is_empty() && self.send(&batch) {
            sent += in_batch;
        }
        sent
    }

    /// Waits at most `limit` until what the server sent satisfies `done`; whether it did.
    fn wait_for(&self, limit: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.seen.lock().unwrap_or_else(PoisonError::into_inner)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `limit` for the server to close the connection, then closes it from this
    /// side; what the server sent.
    fn finish(self, limit: Duration) -> Seen {
        self.wait_for(limit, |seen| seen.closed);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.reader.join().unwrap();
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.clone()
    }
}

/// Reads frames until the connection ends, counting what matters here into `shared`.
fn read_frames(mut stream: TcpStream, shared: &Mutex<Seen>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = [0u8; 9];
    let mut payload = Vec::new();
    loop {
        let complete = stream.read_exact(&mut head).is_ok() && {
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
            payload.resize(len as usize, 0);
            stream.read_exact(&mut payload).is_ok()
        };
        let mut seen = shared.lock().unwrap_or_else(PoisonError::into_inner);
        if !complete {
            seen.closed = true;
            return;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let word = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
        match kind {
            GOAWAY => seen.goaway = Some(word(4)),
            RST_STREAM => seen.resets.push((id, word(0))),
            PING if flags & ACK != 0 => seen.pongs += 1,
            HEADERS if flags & END_STREAM != 0 => seen.ended.push(id),
            DATA => {
                seen.data_bytes += u64::from(len);
                seen.largest_data = seen.largest_data.max(len);
                if flags & END_STREAM != 0 {
                    seen.ended.push(id);
                }
            }
            _ => {}
        }
    }
}

/// The server's peak resident memory (VmHWM) in KiB and its CPU time so far, from /proc.
fn usage(pid: u32) -> (u64, Duration) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux this runs on.
    (hwm, Duration::from_millis(ticks * 10))
}

/// A `slowlab serve` under attack, and a bystander client asking `/0` on fresh connections
/// throughout.
struct Siege {
    served: Served,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    bystander: thread::JoinHandle<()>,
    cpu_before: Duration,
}

impl Siege {
    fn start(extra: &[&str]) -> Siege {
        let served = Served::start(extra);
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let bystander = {
            let (addr, stop, answered) = (served.addr.clone(), stop.clone(), answered.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let response = get(&addr, "/0");
                    assert!(
                        response.starts_with("HTTP/1.1 200"),
                        "a bystander was not answered during the attack: {response:?}"
                    );
                    answered.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let cpu_before = usage(served.child.id()).1;
        Siege {
            served,
            stop,
            answered,
            bystander,
            cpu_before,
        }
    }

    fn addr(&self) -> &str {
        &self.served.addr
    }

    /// Ends the attack: the bystander was answered during it, memory and CPU stayed in bounds.
    /// Returns the server's `/metrics`.
    fn end(self, attack: &str) -> String {
        // At least one more bystander answer after the attack ended.
        let seen = self.answered.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answered.load(Ordering::Relaxed) <= seen {
            assert!(
                Instant::now() < deadline,
                "{attack}: the bystander got no answer after the attack"
            );
            thread::sleep(Duration::from_millis(10));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.bystander.join().expect("the bystander was answered");
        let (hwm_kb, cpu) = usage(self.served.child.id());
        let cpu = cpu.saturating_sub(self.cpu_before);
        eprintln!("{attack}: server VmHWM {hwm_kb} kB, CPU {cpu:?}");
        assert!(
            hwm_kb <= MEMORY_BOUND_KB,
            "{attack}: server peaked at {hwm_kb} kB"
        );
        assert!(cpu <= CPU_BOUND, "{attack}: server spent {cpu:?} of CPU");
        get(&self.served.addr, "/metrics")
    }
}

/// The value of `slowlab_connections_closed_total{reason="REASON"}`.
fn closed(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("slowlab_connections_closed_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in /metrics:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn rapid_reset_of_100000_streams_is_refused_with_enhance_your_calm() {
    let siege = Siege::start(&[]);
    let mut attacker = Attacker::connect(siege.addr());
    let block = request_block("GET", "/10");
    let frames = (0..100_000u32).map(|n| {
        let id = 2 * n + 1;
        let mut f = frame(HEADERS, END_HEADERS | END_STREAM, id, &block);
        f.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
        f
    });
    let sent = attacker.flood(frames);
    let seen = attacker.finish(Duration::from_secs(10));
    let metrics = siege.end("rapid reset");
    assert!(
        seen.closed,
        "the connection stayed open after {sent} resets"
    );
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM), "{sent} resets sent");
    assert!(sent < 100_000, "all {sent} resets were taken in");
    assert_eq!(closed(&metrics, "h2_flood"), 1);
}

#[test]
fn a_header_block_that_never_ends_is_cut_off_at_the_header_list_limit() {
    let siege = Siege::start(&[]);
    let mut attacker = Attacker::connect(siege.addr());
    // A valid start, then CONTINUATION frames of header bytes, never END_HEADERS: 100 MB offered.
    let mut block = request_block("GET", "/0");
    block.extend_from_slice(&[0x00, 0x01, b'x']);
    let mut frames = vec![frame(HEADERS, END_STREAM, 1, &block)];
    let filler = [b'a'; 1000];
    frames.extend((0..100_000).map(|_| frame(CONTINUATION, 0, 1, &filler)));
    let sent = attacker.flood(frames);
    let seen = attacker.finish(Duration::from_secs(10));
    let metrics = siege.end("CONTINUATION flood");
    assert!(
        seen.closed,
        "the connection stayed open after {sent} frames"
    );
    assert!(sent < 10_000, "{sent} CONTINUATION frames were taken in");
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM));
    assert!(
        seen.ended.is_empty(),
        "a never-ending header block was answered"
    );
    assert_eq!(closed(&metrics, "h2_flood"), 1);
}

#[test]
fn window_update_past_2_31_minus_1_is_a_flow_control_error() {
    let siege = Siege::start(&[]);
    // On a stream: that stream is reset; the connection still serves.
    let mut attacker = Attacker::connect(siege.addr());
    let mut frames = frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/1"),
    );
    frames.extend(frame(WINDOW_UPDATE, 0, 1, &0x7fff_ffffu32.to_be_bytes()));
    frames.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request_block("GET", "/0"),
    ));
    assert!(attacker.send(&frames));
    attacker.wait_for(Duration::from_secs(10), |seen| seen.ended.contains(&3));
    // On the connection: the connection ends.
    let mut overflow = frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes());
    overflow.extend(frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()));
    attacker.send(&overflow);
    let seen = attacker.finish(Duration::from_secs(10));
    let metrics = siege.end("WINDOW_UPDATE overflow");
    assert!(
        seen.resets.contains(&(1, FLOW_CONTROL_ERROR)),
        "resets {:?}",
        seen.resets
    );
    assert!(seen.ended.contains(&3), "stream 3 was not answered");
    assert_eq!(seen.goaway, Some(FLOW_CONTROL_ERROR));
    assert!(seen.closed);
    assert_eq!(closed(&metrics, "h2_protocol_error"), 1);
}

#[test]
fn a_flood_of_stream_errors_is_refused_with_enhance_your_calm() {
    let siege = Siege::start(&[]);
    let mut attacker = Attacker::connect(siege.addr());
    // Each stream overflows its own window, which the server must answer with RST_STREAM.
    let block = request_block("GET", "/10");
    let frames = (0..10_000u32).map(|n| {
        let id = 2 * n + 1;
        let mut f = frame(HEADERS, END_HEADERS | END_STREAM, id, &block);
        f.extend(frame(WINDOW_UPDATE, 0, id, &0x7fff_ffffu32.to_be_bytes()));
        f
    });
    let sent = attacker.flood(frames);
    let seen = attacker.finish(Duration::from_secs(10));
    let metrics = siege.end("stream error flood");
    assert!(
        seen.closed,
        "the connection stayed open after {sent} stream errors"
    );
    assert_eq!(
        seen.goaway,
        Some(ENHANCE_YOUR_CALM),
        "{sent} stream errors sent"
    );
    assert!(
        seen.resets.len() <= 1024,
        "{} streams reset before the GOAWAY",
        seen.resets.len()
    );
    assert_eq!(closed(&metrics, "h2_flood"), 1);
}

#[test]
fn max_frame_size_is_honoured_at_both_ends_and_refused_outside_them() {
    let siege = Siege::start(&[]);
    for size in [16_384, 16_777_215] {
        let mut attacker = Attacker::connect_with(siege.addr(), &[(SETTINGS_MAX_FRAME_SIZE, size)]);
        let request = frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &request_block("GET", "/0?bytes=200000"),
        );
        assert!(attacker.send(&request));
        // Open the connection and stream windows wide, so the whole body can come.
        let mut windows = frame(WINDOW_UPDATE, 0, 0, &1_000_000u32.to_be_bytes());
        windows.extend(frame(WINDOW_UPDATE, 0, 1, &1_000_000u32.to_be_bytes()));
        assert!(attacker.send(&windows));
        attacker.wait_for(Duration::from_secs(10), |seen| seen.ended.contains(&1));
        let seen = attacker.finish(Duration::ZERO);
        assert!(seen.ended.contains(&1), "max frame size {size}: no answer");
        assert!(seen.data_bytes >= 200_000, "max frame size {size}");
        assert!(seen.largest_data <= size, "max frame size {size}");
        assert_eq!(seen.goaway, None, "max frame size {size}");
    }
    for size in [16_383, 16_777_216] {
        let attacker = Attacker::connect_with(siege.addr(), &[(SETTINGS_MAX_FRAME_SIZE, size)]);
        let seen = attacker.finish(Duration::from_secs(10));
        assert_eq!(seen.goaway, Some(PROTOCOL_ERROR), "max frame size {size}");
        assert!(seen.closed, "max frame size {size}");
    }
    let metrics = siege.end("SETTINGS_MAX_FRAME_SIZE");
    assert_eq!(closed(&metrics, "h2_protocol_error"), 2);
}

#[test]
fn a_priority_flood_changes_nothing() {
    let siege = Siege::start(&[]);
    let mut attacker = Attacker::connect(siege.addr());
    // Each PRIORITY names a new idle stream depending on the one before.
    let frames = (0..100_000u32).map(|n| {
        let mut payload = (2 * n + 1).to_be_bytes().to_vec();
        payload.push(16);
        frame(PRIORITY, 0, 2 * n + 3, &payload)
    });
    let sent = attacker.flood(frames);
    assert_eq!(sent, 100_000);
    // The connection still serves a request on a stream above every one named.
    let request = frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        300_001,
        &request_block("GET", "/0"),
    );
    assert!(attacker.send(&request));
    attacker.wait_for(Duration::from_secs(10), |seen| {
        seen.closed || seen.ended.contains(&300_001)
    });
    let seen = attacker.finish(Duration::ZERO);
    let metrics = siege.end("PRIORITY flood");
    assert_eq!(seen.goaway, None);
    assert_eq!(closed(&metrics, "h2_flood"), 0);
    assert!(seen.ended.contains(&300_001), "no answer after the flood");
}

#[test]
fn a_ping_flood_is_answered_without_unbounded_queues() {
    let siege = Siege::start(&[]);
    let mut attacker = Attacker::connect(siege.addr());
    let frames = (0..100_000u64).map(|n| frame(PING, 0, 0, &n.to_be_bytes()));
    let sent = attacker.flood(frames);
    assert_eq!(sent, 100_000);
    let request = frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/0"),
    );
    assert!(attacker.send(&request));
    attacker.wait_for(Duration::from_secs(20), |seen| {
        seen.closed || seen.ended.contains(&1)
    });
    let seen = attacker.finish(Duration::ZERO);
    let metrics = siege.end("PING flood");
    // Every PING is answered, one at a time: the server reads no further while an answer waits.
    assert_eq!(seen.pongs, 100_000);
    assert!(seen.ended.contains(&1), "no answer after the flood");
    assert_eq!(seen.goaway, None);
    assert_eq!(closed(&metrics, "h2_flood"), 0);
}

#[test]
fn a_flood_of_empty_data_frames_is_refused_with_enhance_your_calm() {
    let siege = Siege::start(&[]);
    // A few empty DATA frames are legal and harmless: the upload is read and echoed.
    let mut polite = Attacker::connect(siege.addr());
    let request = frame(HEADERS, END_HEADERS, 1, &request_block("POST", "/anything"));
    let frames = std::iter::once(request)
        .chain((0..10).map(|_| frame(DATA, 0, 1, &[])))
        .chain(std::iter::once(frame(DATA, END_STREAM, 1, b"end")));
    assert_eq!(polite.flood(frames), 12);
    polite.wait_for(Duration::from_secs(10), |seen| seen.ended.contains(&1));
    let seen = polite.finish(Duration::ZERO);
    assert!(seen.ended.contains(&1), "a short upload was not answered");
    // 100,000 of them are a flood.
    let mut attacker = Attacker::connect(siege.addr());
    let request = frame(HEADERS, END_HEADERS, 1, &request_block("POST", "/anything"));
    let frames = std::iter::once(request)
        .chain((0..100_000).map(|_| frame(DATA, 0, 1, &[])))
        .chain(std::iter::once(frame(DATA, END_STREAM, 1, b"end")));
    let sent = attacker.flood(frames);
    let seen = attacker.finish(Duration::from_secs(10));
    let metrics = siege.end("empty DATA flood");
    assert!(
        seen.closed,
        "the connection stayed open after {sent} frames"
    );
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM), "{sent} frames sent");
    assert!(!seen.ended.contains(&1), "the flood's upload was answered");
    assert_eq!(closed(&metrics, "h2_flood"), 1);
}
