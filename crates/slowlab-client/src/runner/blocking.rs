//! The blocking runners: ureq clients on OS threads. One thread is the sequential runner (like
//! `requests` in a loop); many threads, each taking the next request when free, are the threads
//! runner (like a `ThreadPoolExecutor`).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::outcome::{ErrorKind, FetchError, Outcome, judge_body};
use crate::runner::Shared;
use crate::runner::request::{AGENT, CappedBody, head, uri, within_forever};
use crate::workload::Target;

/// Bytes read from a body at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Stack of each client thread: ureq keeps its buffers on the heap, and 512 threads of the
/// default 8 MiB would reserve 4 GiB of address space for nothing.
const STACK_SIZE: usize = 256 * 1024;

/// Starts `threads` client threads. `counts_slot_wait`: whether a request waits for a thread
/// (the threads runner) or is simply not issued before the previous one ends (sequential).
pub(super) fn start(shared: Arc<Shared>, threads: usize, counts_slot_wait: bool) {
    for number in 0..threads {
        let worker_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("slowlab-client-{number}"))
            .stack_size(STACK_SIZE)
            .spawn(move || worker(&worker_shared, counts_slot_wait));
        if let Err(err) = spawned {
            if number == 0 {
                shared.fail_the_rest(&FetchError::new(
                    ErrorKind::Other,
                    format!("cannot start a client thread: {err}"),
                ));
            } else {
                tracing::warn!("started {number} of {threads} client threads: {err}");
            }
            return;
        }
    }
}

fn worker(shared: &Shared, counts_slot_wait: bool) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // ureq adds its timeouts to `Instant::now()`, which panics past the end of time.
        .timeout_global(shared.options.timeout.map(within_forever))
        .timeout_connect(Some(within_forever(shared.options.connect_timeout)))
        .user_agent(AGENT)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(shared.options.insecure)
                .build(),
        )
        .build()
        .into();
    // One read buffer per thread, for every body it reads.
    let mut buffer = vec![0; READ_CHUNK];
    while let Some(index) = shared.take() {
        let outcome = fetch(shared, &agent, &mut buffer, index, counts_slot_wait);
        if !shared.report(outcome) {
            return; // Nobody is listening any more: the run was abandoned.
        }
    }
}

fn fetch(
    shared: &Shared,
    agent: &ureq::Agent,
    buffer: &mut [u8],
    index: usize,
    counts_slot_wait: bool,
) -> Outcome {
    let workload = &shared.workload;
    let target = &workload.targets[index];
    let _in_flight = shared.control.enter();
    let start = shared.now();
    let mut first_byte = None;
    let mut status = None;
    let mut bytes = 0;
    let result = uri(&workload.url(target))
        .and_then(|url| head(shared, url, None))
        .and_then(|request| {
            let body = &shared.workload.body[..];
            let mut response = agent
                .run(request.map(|()| body))
                .map_err(|err| classify(err, shared, target))?;
            first_byte = Some(shared.now());
            let code = response.status().as_u16();
            status = Some(code);
            let mut received = CappedBody::new(shared, target);
            let read = read_body(response.body_mut(), &mut received, buffer, shared, target);
            bytes = received.received();
            read?;
            judge_body(
                target,
                &shared.workload.method,
                code,
                received.into_bytes(),
                shared.options.keep_bodies,
            )
        });
    Outcome {
        index,
        start,
        end: shared.now(),
        scheduled: None,
        slot_wait: if counts_slot_wait {
            start
        } else {
            Duration::ZERO
        },
        connect: None,
        first_byte,
        status,
        bytes,
        result,
    }
}

/// Reads `body` into `received`, refusing it once past the cap.
fn read_body(
    body: &mut ureq::Body,
    received: &mut CappedBody,
    buffer: &mut [u8],
    shared: &Shared,
    target: &Target,
) -> Result<(), FetchError> {
    received.announce(body.content_length())?;
    // Not limited by ureq: the cap is ours, the same for every runner.
    let mut reader = body.with_config().limit(u64::MAX).reader();
    loop {
        match reader.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => received.push(Bytes::copy_from_slice(&buffer[..n]))?,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                // ureq wraps its own errors (a timeout, say) in the I/O error it returns.
                return Err(match err.downcast::<ureq::Error>() {
                    Ok(err) => classify(err, shared, target),
                    Err(err) => {
                        FetchError::from_io(&err, &shared.workload.server_of(target).base_url())
                    }
                });
            }
        }
    }
}

fn classify(err: ureq::Error, shared: &Shared, target: &Target) -> FetchError {
    let base_url = &shared.workload.server_of(target).base_url();
    let options = &shared.options;
    match err {
        ureq::Error::Io(io) => FetchError::from_io(&io, base_url),
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => FetchError::new(
            ErrorKind::ConnectTimeout,
            format!(
                "no connection to {base_url} within {:?}",
                options.connect_timeout
            ),
        ),
        ureq::Error::Timeout(_) => match options.timeout {
            Some(limit) => FetchError::timed_out(limit),
            None => FetchError::new(ErrorKind::Timeout, "timed out"),
        },
        ureq::Error::ConnectionFailed => FetchError::new(
            ErrorKind::Refused,
            format!("connection failed: is `slowlab serve` running on {base_url}?"),
        ),
        ureq::Error::Protocol(p) => FetchError::new(
            ErrorKind::ClosedEarly,
            format!("invalid or incomplete HTTP response: {p}"),
        ),
        other => FetchError::new(ErrorKind::Other, other.to_string()),
    }
}
