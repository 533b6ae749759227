//! One module per subcommand, and the checks `fetch` and `race` share.

pub mod fetch;
pub mod proxy;
pub mod race;
pub mod report;
pub mod serve;

use slowlab_client::{Endpoint, Report};

use crate::{UsageError, usage};

/// Parses a server's URL, refusing a port out of range (which the URL parser would otherwise
/// drop, sending the requests to port 80 or 443 instead).
pub(crate) fn endpoint(url: &str) -> Result<Endpoint, UsageError> {
    check_port(url)?;
    Endpoint::parse(url).map_err(|err| usage!("{err}"))
}

/// Refuses `http://host:99999` and `http://host:0`; an absent port is the scheme's default.
fn check_port(url: &str) -> Result<(), UsageError> {
    let Some((_, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let port = match host_port.rfind(']') {
        Some(end) => host_port[end + 1..].strip_prefix(':'),
        None => host_port.rsplit_once(':').map(|(_, port)| port),
    };
    match port {
        None | Some("") => Ok(()),
        Some(port) => match port.parse::<u16>() {
            Ok(1..) => Ok(()),
            _ => Err(usage!(
                "{url:?}: port {port:?} is out of range; a port is 1 to 65535"
            )),
        },
    }
}

/// A run whose ideal is zero (every delay 0) has no efficiency: `ideal / wall` would read as a
/// 0% efficient run rather than as nothing to compare with.
pub(crate) fn drop_efficiency_without_ideal(report: &mut Report) {
    if report.summary.ideal.is_zero() {
        report.summary.efficiency = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_out_of_range_are_refused() {
        for good in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1",
            "https://example.com/api",
            "http://[::1]:65535/x",
            "http://user:pw@host:1",
        ] {
            assert!(endpoint(good).is_ok(), "{good}");
        }
        for bad in [
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://[::1]:70000",
            "http://h:-1",
            "http://h:1x",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        assert!(
            endpoint("http://127.0.0.1:99999")
                .unwrap_err()
                .0
                .contains("1 to 65535")
        );
    }
}
