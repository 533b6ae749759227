//! The sequential runner: one blocking HTTP client (ureq) on one thread, like `requests` in a loop.

use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::outcome::{ErrorKind, FetchError, Outcome, judge};
use crate::runner::RequestOptions;
use crate::workload::Workload;

/// Sends the workload one request after another, reporting each outcome as it ends.
pub(super) fn run(
    workload: &Workload,
    options: RequestOptions,
    origin: Instant,
    outcomes: &UnboundedSender<Outcome>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(options.timeout)
        .timeout_connect(Some(options.connect_timeout))
        .user_agent(concat!("slowlab/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let base_url = workload.endpoint.base_url();

    for (index, target) in workload.targets.iter().enumerate() {
        let start = origin.elapsed();
        let mut first_byte = None;
        let result = agent
            .get(workload.endpoint.url(&target.path))
            .call()
            .and_then(|mut response| {
                first_byte = Some(origin.elapsed());
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_vec()?;
                Ok((status, body))
            })
            .map_err(|err| classify(err, &base_url, options))
            .and_then(|(status, body)| judge(target, status, body.into()));
        let outcome = Outcome {
            index,
            start,
            end: origin.elapsed(),
            connect: None,
            first_byte,
            result,
        };
        if outcomes.send(outcome).is_err() {
            return; // Nobody is listening any more: the run was abandoned.
        }
    }
}

fn classify(err: ureq::Error, base_url: &str, options: RequestOptions) -> FetchError {
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
