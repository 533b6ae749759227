//! Options of `slowlab serve`.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};

use clap::Args;
use slowlab_server::config::{BODY_READ_TIMEOUT, MAX_BODY_BYTES, MAX_DELAY, MAX_IN_FLIGHT};
use slowlab_server::{Config, Delay, Model, OverMax};

use super::server_core::{ConnectionArgs, RulesArgs, TlsArgs, within};

pub(super) const SERVE_EXAMPLES: &str = "\
Examples:
  slowlab serve                          http://127.0.0.1:8000, like the article's uvicorn
  slowlab serve --port 0                 an ephemeral port; the first stdout line names it
  slowlab serve --max-delay 3600         allow waits of up to an hour
  slowlab serve --model threads:40       like the article's FastAPI def endpoint on 40 threads
  curl -i http://127.0.0.1:8000/2        waits 2 s: {\"time_elapsed\": 2}
  curl -i http://127.0.0.1:8000/0.25     waits 250 ms: {\"time_elapsed\": 0.25}
  curl --http2-prior-knowledge http://127.0.0.1:8000/1     HTTP/2 (h2c) on the same port

Query options on /{seconds} (the path stays the base delay and the echo):
  /1?jitter=0.5                          wait uniform in [0.5, 1.5] s, never below 0
  /1?dist=uniform&min=0.5&max=2          wait uniform in [0.5, 2] s
  /1?dist=lognormal&median=1&sigma=0.8   heavy-tailed wait around a 1 s median
  /1?jitter=0.5&seed=7                   the same URL draws the same delay every time
  /1?status=503                          answer 503 after the wait
  /3?drip=3                              headers at once, the body in 3 chunks over 3 s
  /1?bytes=1000000                       pad the body to 1 MB (capped by --max-body-bytes)
  /1?fault=reset                         after the wait: reset, hangup, malformed, hang or truncate
  /1?mix=503:0.2,reset:0.05              503 for 20%, a reset for 5%, the plain answer for the rest
A drawn delay is in the X-Slowlab-Drawn-Delay header, the wait measured in Server-Timing.

Rules for the paths your client already calls (see docs/server.md for every field):
  slowlab serve --rules api.toml          [[rule]] path = \"/api/orders/{id}\"  delay = 0.3  mix = \"503:0.2\"
  slowlab serve --default '0.2?mix=503:0.05'   every other path: 0.2 s, 503 for 5%
  kill -HUP <pid>                         reload the rules file (or: slowlab serve --rules api.toml --watch)
  slowlab serve --tls-self-signed         TLS only on the port: curl -k https://127.0.0.1:8000/1

Other endpoints: /healthz (JSON), /metrics (Prometheus text), / (a page with clickable examples),
/anything (echoes the request as JSON, after the wait its query options ask for).
Bad input is answered with a JSON 4xx, e.g. /1e3 -> 400 {\"error\": \"not_a_number\", ...},
/1?jiter=1 -> 400 {\"error\": \"unknown_option\", ...}; a word (/abc) is no route, a 404.
Ctrl-C or SIGTERM stops accepting and lets requests in flight finish, for at most --drain-timeout.
--log-format text (or SLOWLAB_LOG=slowlab_server=debug) logs one line per request on stderr,
--log-format json the same as JSON lines.";

/// Options of `slowlab serve`.
///
/// Every numeric flag follows one pattern, here and in the groups it shares with the proxy
/// (`server_core`): its default and range are a [`Setting`](slowlab_server::Setting) in
/// `slowlab_server::config` (written once, also read by `Config::default()`), the flag takes
/// `default_value_t = SETTING.default` and `value_parser = within(&SETTING)`, and its help states
/// the range (a test checks that it does). An out-of-range value is then a usage error naming the
/// flag, the range and an example.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address or host name to listen on; a name is resolved and its first address that can be
    /// bound is used. Examples: --host 0.0.0.0 (every interface), --host localhost.
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_host, value_name = "HOST")]
    pub host: Host,
    /// Port to listen on; 0 picks a free one. Example: --port 8080.
    #[arg(long, short, default_value_t = 8000)]
    pub port: u16,
    /// Longest delay a request may ask for, in seconds (0 to 86400); see --over-max for longer
    /// ones. Example: --max-delay 3600.
    #[arg(long, default_value_t = MAX_DELAY.default, value_parser = within(&MAX_DELAY), value_name = "SECONDS")]
    pub max_delay: Delay,
    /// A requested delay over --max-delay: `reject` answers 400 too_large, `clamp` waits
    /// --max-delay and says so in an X-Slowlab-Clamped header. Drawn delays are always clamped.
    /// Example: --over-max clamp.
    #[arg(long, default_value_t = Config::default().over_max, value_name = "reject|clamp")]
    pub over_max: OverMax,
    /// How a waiting request is held: `async` (a timer, no thread), `threads:N` (a blocking sleep
    /// on N pool threads, like FastAPI's def endpoints on 40) or `blocking` (a blocking sleep on
    /// the event loop, one request after another: the classic mistake). Example: --model threads:40.
    #[arg(long, default_value_t = Config::default().model, value_name = "async|threads:N|blocking")]
    pub model: Model,
    /// Let every method (POST, PUT, DELETE, ...) wait on /{seconds}, not only GET and HEAD.
    /// Example: --any-method, then curl -X POST http://127.0.0.1:8000/1.
    #[arg(long)]
    pub any_method: bool,
    /// Largest body that bytes=N may ask for, and that a rule's body, json or body_file may
    /// hold (0 to 1099511627776 bytes, 1 TiB).
    /// Example: --max-body-bytes 104857600.
    #[arg(long, default_value_t = MAX_BODY_BYTES.default, value_parser = within(&MAX_BODY_BYTES), value_name = "BYTES")]
    pub max_body_bytes: u64,
    /// How long a request body the server reads (/anything's) may take to arrive in full, from
    /// the headers to its last byte; slower gets a JSON 408 body_timeout (slowloris defence on
    /// the body; 0.001 to 86400 seconds). Example: --body-read-timeout 10.
    #[arg(long, default_value_t = BODY_READ_TIMEOUT.default, value_parser = within(&BODY_READ_TIMEOUT), value_name = "SECONDS")]
    pub body_read_timeout: Delay,
    /// Most delay requests in flight at once (1 to 1000000000); past it a request gets 503
    /// over_capacity with Retry-After. Default: no cap. Example: --max-in-flight 10000.
    #[arg(long, value_parser = within(&MAX_IN_FLIGHT), value_name = "N")]
    pub max_in_flight: Option<u64>,
    /// Seed the server's random draws (delay shapes, mixes): the same order of arrivals, e.g. a
    /// sequential client, then sees the same delays and answers every run. A URL's own seed=
    /// still makes that URL's draw a pure function of the URL. Example: --seed 42.
    #[arg(long, value_name = "K")]
    pub seed: Option<u64>,
    /// Connection limits and timeouts, the same for serve and the proxy.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The rules file and its limits.
    #[command(flatten)]
    pub ruleset: RulesArgs,
    /// TLS towards clients.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Where to listen: the text given to `--host` and the addresses it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// As given, e.g. `localhost` or `0.0.0.0`.
    pub name: String,
    /// Its addresses, in the resolver's order, without repeats; never empty.
    pub addrs: Vec<IpAddr>,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Parses `--host`: an IP address, or a host name resolved now, so that a name that cannot be
/// listened on is a usage error before anything starts.
fn parse_host(text: &str) -> Result<Host, String> {
    let name = text.trim();
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(Host {
            name: name.to_owned(),
            addrs: vec![ip],
        });
    }
    let usage = "give an IP address such as 127.0.0.1 or 0.0.0.0, or a host name this machine resolves, such as localhost";
    let valid_name = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid_name {
        return Err(format!(
            "{name:?} is not an IP address or a host name: {usage}"
        ));
    }
    let resolved = (name, 0)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {name:?} ({err}): {usage}"))?;
    let mut addrs: Vec<IpAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr.ip()) {
            addrs.push(addr.ip());
        }
    }
    if addrs.is_empty() {
        return Err(format!("{name:?} resolves to no address: {usage}"));
    }
    Ok(Host {
        name: name.to_owned(),
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;
    use slowlab_server::Setting;
    use slowlab_server::config::{
        BACKLOG, DRAIN_TIMEOUT, H2_MAX_STREAMS, HEADER_READ_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS,
        MAX_HEADER_BYTES, MAX_HEADERS, MAX_RULES, MAX_RULES_FILE_BYTES, MAX_URI_BYTES,
        WRITE_TIMEOUT,
    };

    /// Each numeric flag's help states the range its setting accepts, so help and check agree.
    #[test]
    fn help_states_every_range() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").unwrap();
        let ranges: [(&str, String, String); 16] = [
            ("max-delay", range(&MAX_DELAY), MAX_DELAY.example.into()),
            (
                "max-connections",
                range(&MAX_CONNECTIONS),
                MAX_CONNECTIONS.example.into(),
            ),
            (
                "h2-max-streams",
                range(&H2_MAX_STREAMS),
                H2_MAX_STREAMS.example.into(),
            ),
            (
                "max-body-bytes",
                range(&MAX_BODY_BYTES),
                MAX_BODY_BYTES.example.into(),
            ),
            (
                "drain-timeout",
                range(&DRAIN_TIMEOUT),
                DRAIN_TIMEOUT.example.into(),
            ),
            (
                "header-read-timeout",
                range(&HEADER_READ_TIMEOUT),
                HEADER_READ_TIMEOUT.example.into(),
            ),
            (
                "body-read-timeout",
                range(&BODY_READ_TIMEOUT),
                BODY_READ_TIMEOUT.example.into(),
            ),
            (
                "max-uri-bytes",
                range(&MAX_URI_BYTES),
                MAX_URI_BYTES.example.into(),
            ),
            (
                "max-header-bytes",
                range(&MAX_HEADER_BYTES),
                MAX_HEADER_BYTES.example.into(),
            ),
            (
                "max-headers",
                range(&MAX_HEADERS),
                MAX_HEADERS.example.into(),
            ),
            ("backlog", range(&BACKLOG), BACKLOG.example.into()),
            (
                "idle-timeout",
                range(&IDLE_TIMEOUT),
                IDLE_TIMEOUT.example.into(),
            ),
            (
                "write-timeout",
                range(&WRITE_TIMEOUT),
                WRITE_TIMEOUT.example.into(),
            ),
            (
                "max-in-flight",
                range(&MAX_IN_FLIGHT),
                MAX_IN_FLIGHT.example.into(),
            ),
            ("max-rules", range(&MAX_RULES), MAX_RULES.example.into()),
            (
                "max-rules-file-bytes",
                range(&MAX_RULES_FILE_BYTES),
                MAX_RULES_FILE_BYTES.example.into(),
            ),
        ];
        // The proxy shares all but serve's own flags, through the same clap groups.
        let proxy = command.find_subcommand("proxy").unwrap();
        let serve_only = ["max-body-bytes", "body-read-timeout", "max-in-flight"];
        let both = ranges.iter().map(|r| (serve, r)).chain(
            ranges
                .iter()
                .filter(|(flag, ..)| !serve_only.contains(flag))
                .map(|r| (proxy, r)),
        );
        for (subcommand, (flag, range, example)) in both {
            let arg = subcommand
                .get_arguments()
                .find(|a| a.get_long() == Some(*flag))
                .unwrap_or_else(|| panic!("{}: no --{flag}", subcommand.get_name()));
            let help = arg.get_help().unwrap().to_string().replace('\n', " ");
            assert!(
                help.contains(range.as_str()),
                "--{flag}: help {help:?} lacks {range:?}"
            );
            assert!(
                help.contains(&format!("--{flag} {example}")),
                "--{flag}: help {help:?} lacks the example"
            );
        }
    }

    /// `1 to 10000`: the numbers as the help writes them.
    fn range<T: Copy + PartialOrd + fmt::Display>(setting: &Setting<T>) -> String {
        format!("{} to {}", setting.min, setting.max)
    }

    #[test]
    fn host_names_and_addresses() {
        assert_eq!(
            parse_host("0.0.0.0").unwrap().addrs,
            ["0.0.0.0".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            parse_host("::1").unwrap().addrs,
            ["::1".parse::<IpAddr>().unwrap()]
        );
        let localhost = parse_host("localhost").unwrap();
        assert!(
            localhost.addrs.iter().all(|ip| ip.is_loopback()),
            "{localhost:?}"
        );
        for bad in ["", "a b", "under_score.example", "-", "a..b", "http://x"] {
            let err = parse_host(bad).unwrap_err();
            assert!(err.contains("host name"), "{bad:?}: {err}");
        }
    }
}
