//! The ceiling's server on io_uring (`serve PORT --io uring`): the same work as the epoll server
//! in server.rs (a request found by its blank line, one fixed answer sent with one send, keep-alive,
//! `GET /D` answered after D seconds from a timer heap), done the way io_uring does it best on one
//! thread:
//!
//! - one multishot accept for the listener, re-armed only if the kernel ends it;
//! - one recv per connection into the connection's own buffer, re-armed after each completion,
//!   with `IORING_RECVSEND_POLL_FIRST` when the last recv drained the socket (the next bytes are
//!   not there yet, so the kernel arms its poll without a doomed first try);
//! - every SQE of a turn submitted by the one `io_uring_enter` that also waits for the next
//!   completions (and, with timers pending, times out at the earliest deadline);
//! - a ring set up with `SINGLE_ISSUER | DEFER_TASKRUN` when the kernel has them (6.1+), so
//!   completions are run in that `io_uring_enter` rather than by interrupting the thread.
//!
//! No SQPOLL: its kernel thread would spin on the other core, which bench/run gives the client.

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, Submitter, cqueue, opcode, squeue};

use crate::server::{READ_BUFFER, RESPONSE_0, delay_of, response};
use crate::slots::{GENERATION_MASK, Timers};

/// `IORING_RECVSEND_POLL_FIRST` (kernel 5.19+), in the recv SQE's ioprio field.
const POLL_FIRST: u16 = 1;
/// The listener's multishot accept; connection operations carry their kind, slot and generation.
const ACCEPT: u64 = u64::MAX;
const RECV: u64 = 1;
const SEND: u64 = 2;
/// Submission queue entries; the completion queue has more, so 10,000 connections' completions fit.
const SQ_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = 32768;

struct Conn {
    fd: RawFd,
    buf: Box<[u8; READ_BUFFER]>,
    len: usize,
    /// The answer a send is out for, and how much of it the kernel has taken.
    sending: Option<(Cow<'static, [u8]>, usize)>,
    /// Answers that came while a send was out.
    queued: Vec<u8>,
    /// False once its recv has ended (the peer closed, or an error); the slot is freed, and the
    /// descriptor closed, when no send is out either.
    open: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: the descriptor came from accept, and no operation on it is out (see `Slots`).
        unsafe { libc::close(self.fd) };
    }
}

/// The connections, by slot. A connection's slot is freed only when no operation on it is out.
type Slots = crate::slots::Slots<Conn>;

fn user_data(kind: u64, slot: usize, generation: u32) -> u64 {
    kind << 56 | u64::from(generation) << 32 | slot as u64
}

/// The submission queue with its submitter: a full queue is submitted, then pushed to again.
struct Queue<'a> {
    submitter: Submitter<'a>,
    sq: squeue::SubmissionQueue<'a>,
}

impl Queue<'_> {
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every buffer an entry points to outlives its operation: RESPONSE_0 is static;
        // a connection's read buffer and its `sending` bytes are on the heap and are dropped only
        // when the slot is removed, after its recv has ended and no send is out.
        while unsafe { self.sq.push(&entry) }.is_err() {
            self.sq.sync();
            self.submitter.submit()?;
            self.sq.sync();
        }
        Ok(())
    }

    fn recv(
        &mut self,
        conn: &mut Conn,
        slot: usize,
        generation: u32,
        drained: bool,
    ) -> io::Result<()> {
        let room = &mut conn.buf[conn.len..];
        let entry = opcode::Recv::new(Fd(conn.fd), room.as_mut_ptr(), room.len() as u32)
            .ioprio(if drained { POLL_FIRST } else { 0 })
            .build()
            .user_data(user_data(RECV, slot, generation));
        self.push(entry)
    }

    fn send(&mut self, conn: &Conn, slot: usize, generation: u32) -> io::Result<()> {
        let (bytes, sent) = conn.sending.as_ref().expect("a send is out");
        let rest = &bytes[*sent..];
        let entry = opcode::Send::new(Fd(conn.fd), rest.as_ptr(), rest.len() as u32)
            .build()
            .user_data(user_data(SEND, slot, generation));
        self.push(entry)
    }
}

/// Whether this kernel lets this process set up the ring `serve --io uring` uses; the reason if
/// not (no io_uring, `kernel.io_uring_disabled`, a seccomp filter, a kernel before 5.19).
pub fn check() -> Result<(), String> {
    let ring = ring().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    // Multishot accept and POLL_FIRST (5.19) are flags, not opcodes, so the probe cannot see
    // them; SEND_ZC (6.0) stands for "a kernel new enough for both".
    for (name, code) in [
        ("accept", opcode::AcceptMulti::CODE),
        ("recv", opcode::Recv::CODE),
        ("send", opcode::Send::CODE),
        ("send_zc (a kernel >= 6.0)", opcode::SendZc::CODE),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("io_uring has no {name} operation on this kernel"));
        }
    }
    Ok(())
}

/// The ring: single issuer with deferred task work if the kernel has them, else a plain ring.
fn ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(SQ_ENTRIES)
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)
        })
}

/// Serves on 127.0.0.1:`port` until killed.
pub fn serve(port: u16) -> io::Result<()> {
    crate::raise_open_files();
    let listener = crate::server::listen(port)?;
    // Blocking sockets: io_uring tries each operation without blocking and arms a poll itself;
    // on an O_NONBLOCK descriptor some kernels hand the EAGAIN back instead.
    listener.set_nonblocking(false)?;
    let mut ring = ring()?;
    let (submitter, sq, mut cq) = ring.split();
    let mut queue = Queue { submitter, sq };
    let accept = || {
        opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ACCEPT)
    };
    queue.push(accept())?;
    let mut slots = Slots::default();
    let mut timers = Timers::default();
    loop {
        queue.sq.sync();
        let waited = match timers.earliest() {
            Some(at) => {
                let timeout = Timespec::from(at.saturating_duration_since(Instant::now()));
                queue
                    .submitter
                    .submit_with_args(1, &SubmitArgs::new().timespec(&timeout))
            }
            None => queue.submitter.submit_and_wait(1),
        };
        match waited {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        queue.sq.sync();
        cq.sync();
        for cqe in &mut cq {
            complete(&cqe, &mut queue, &mut slots, &mut timers)?;
            if cqe.user_data() == ACCEPT && !cqueue::more(cqe.flags()) {
                queue.push(accept())?;
            }
        }
        let now = Instant::now();
        while let Some((_, slot, generation, delay)) = timers.pop_due(now) {
            if let Some(conn) = slots.get_mut(slot, generation)
                && conn.open
            {
                answer(
                    &mut queue,
                    conn,
                    slot,
                    generation,
                    Cow::Owned(response(delay)),
                )?;
            }
        }
    }
}

/// Handles one completion.
fn complete(
    cqe: &cqueue::Entry,
    queue: &mut Queue<'_>,
    slots: &mut Slots,
    timers: &mut Timers,
) -> io::Result<()> {
    let res = cqe.result();
    if cqe.user_data() == ACCEPT {
        if res >= 0 {
            let (slot, generation, conn) = slots.insert(Conn {
                fd: res,
                buf: Box::new([0; READ_BUFFER]),
                len: 0,
                sending: None,
                queued: Vec::new(),
                open: true,
            });
            queue.recv(conn, slot, generation, true)?;
        } else {
            // Out of file descriptors or a connection reset before accept: take the next.
            eprintln!(
                "slowlab-limit: accept: {}",
                io::Error::from_raw_os_error(-res)
            );
        }
        return Ok(());
    }
    let kind = cqe.user_data() >> 56;
    let generation = (cqe.user_data() >> 32) as u32 & GENERATION_MASK;
    let slot = cqe.user_data() as u32 as usize;
    let Some(conn) = slots.get_mut(slot, generation) else {
        return Ok(());
    };
    match kind {
        RECV => {
            let room = READ_BUFFER - conn.len;
            // The peer closed, an error, or a head larger than any bench/run client sends.
            if res <= 0 || !read(conn, res as usize, slot, generation, queue, timers)? {
                conn.open = false;
            } else {
                queue.recv(conn, slot, generation, (res as usize) < room)?;
            }
        }
        SEND => {
            if res < 0 {
                // The recv still out ends with the shutdown, and closes the connection.
                // SAFETY: shutdown only acts on the descriptor, which this connection owns.
                unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                conn.sending = None;
            } else {
                let (bytes, sent) = conn.sending.as_mut().expect("a send was out");
                *sent += res as usize;
                if *sent == bytes.len() {
                    conn.sending = (!conn.queued.is_empty())
                        .then(|| (Cow::Owned(std::mem::take(&mut conn.queued)), 0));
                }
                if conn.sending.is_some() && conn.open {
                    queue.send(conn, slot, generation)?;
                } else {
                    conn.sending = None;
                }
            }
        }
        _ => unreachable!("no other operation is submitted"),
    }
    if !conn.open && conn.sending.is_none() {
        slots.remove(slot);
    }
    Ok(())
}

/// Takes `n` received bytes and answers or schedules each complete request. False when the
/// buffer is full without a complete head.
fn read(
    conn: &mut Conn,
    n: usize,
    slot: usize,
    generation: u32,
    queue: &mut Queue<'_>,
    timers: &mut Timers,
) -> io::Result<bool> {
    conn.len += n;
    while let Some(end) = crate::head_end(&conn.buf[..conn.len]) {
        let delay = delay_of(&conn.buf[..end]);
        conn.buf.copy_within(end..conn.len, 0);
        conn.len -= end;
        if delay.is_zero() {
            answer(queue, conn, slot, generation, Cow::Borrowed(RESPONSE_0))?;
        } else {
            timers.push(slot, generation, delay);
        }
    }
    Ok(conn.len < READ_BUFFER)
}

/// Sends one answer with one send, or queues it behind the send that is out.
fn answer(
    queue: &mut Queue<'_>,
    conn: &mut Conn,
    slot: usize,
    generation: u32,
    bytes: Cow<'static, [u8]>,
) -> io::Result<()> {
    if conn.sending.is_some() {
        conn.queued.extend_from_slice(&bytes);
        return Ok(());
    }
    conn.sending = Some((bytes, 0));
    queue.send(conn, slot, generation)
}
