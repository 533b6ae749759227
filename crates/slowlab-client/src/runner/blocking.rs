//! The blocking runners: ureq clients on OS threads. One thread is the sequential runner (like
//! `requests` in a loop); many threads, each taking the next request when free, are the threads
//! runner (like a `ThreadPoolExecutor`).

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use http::header::USER_AGENT;

use crate::outcome::{ErrorKind, FetchError, Outcome, judge_body};
use crate::runner::Shared;
use crate::runner::http1::AGENT;
use crate::workload::Target;

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
        .timeout_global(shared.options.timeout)
        .timeout_connect(Some(shared.options.connect_timeout))
        .user_agent(AGENT)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(shared.options.insecure)
                .build(),
        )
        .build()
        .into();
    while let Some(index) = shared.take() {
        let outcome = fetch(shared, &agent, index, counts_slot_wait);
        if !shared.report(outcome) {
            return; // Nobody is listening any more: the run was abandoned.
        }
    }
}

fn fetch(shared: &Shared, agent: &ureq::Agent, index: usize, counts_slot_wait: bool) -> Outcome {
    let workload = &shared.workload;
    let target = &workload.targets[index];
    let _in_flight = shared.control.enter();
    let start = shared.now();
    let mut first_byte = None;
    let mut status = None;
    let mut bytes = 0;
    let mut builder = Request::builder()
        .method(workload.method.clone())
        .uri(workload.url(target))
        .header(USER_AGENT, AGENT);
    for (name, value) in &workload.headers {
        builder = builder.header(name, value);
    }
    let result = match builder.body(()) {
        Err(err) => Err(FetchError::new(
            ErrorKind::Other,
            format!("cannot build request: {err}"),
        )),
        Ok(request) => agent
            .run(request)
            .and_then(|mut response| {
                first_byte = Some(shared.now());
                status = Some(response.status().as_u16());
                response.body_mut().read_to_vec()
            })
            .map_err(|err| classify(err, shared, target))
            .and_then(|body| {
                bytes = body.len() as u64;
                let status = status.unwrap_or_default();
                judge_body(target, status, body.into(), shared.options.keep_bodies)
            }),
    };
    Outcome {
        index,
        start,
        end: shared.now(),
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
