//! The request log: one line per request on stderr, for people (text, coloured only when asked)
//! or for log pipelines (JSON).
//!
//! A line is written when the request is over: when a delay request's record is dropped (so a
//! dripped body is logged when its last chunk is out, and a client that left is `cancelled`), and
//! when any other answer (a refusal, `/healthz`, ...) leaves the router. Outcomes are the words of
//! `slowlab_requests_total`'s `outcome` label; times are whole milliseconds.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{Method, Request};

use crate::metrics::Outcome;

/// Longest request target repeated in a log line, in characters; longer ones are cut with `…`.
const TARGET_CHARS: usize = 200;

/// How request log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per request, for people.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{text:?} is not text or json")),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The request log's settings ([`crate::Config::request_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestLog {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Colour the text format's status and outcome (ANSI escapes). Only for a terminal: the
    /// command line sets it when stderr is one and `NO_COLOR` is not set.
    pub colour: bool,
}

/// What a log line says about the request itself, taken before its head is dropped.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    log: RequestLog,
    method: Method,
    target: String,
    peer: Option<SocketAddr>,
    started: Instant,
}

impl RequestInfo {
    /// Notes `request` from `peer` for the log, or nothing when the log is off.
    pub fn of<B>(
        log: Option<RequestLog>,
        request: &Request<B>,
        peer: Option<SocketAddr>,
    ) -> Option<Box<RequestInfo>> {
        let log = log?;
        let uri = request.uri();
        let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        let mut cut: String = target.chars().take(TARGET_CHARS).collect();
        if cut.len() < target.len() {
            cut.push('…');
        }
        Some(Box::new(RequestInfo {
            log,
            method: request.method().clone(),
            target: cut,
            peer,
            started: Instant::now(),
        }))
    }

    /// Writes the request's line: the status sent (none when the client left first or a fault
    /// replaced the answer), its outcome, and how long it waited, if it did.
    pub fn write(&self, status: Option<u16>, outcome: Outcome, waited: Option<Duration>) {
        let total = self.started.elapsed();
        let line = match self.log.format {
            LogFormat::Text => self.text(status, outcome, waited, total),
            LogFormat::Json => self.json(status, outcome, waited, total),
        };
        // One write per line, so that lines from different requests never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn text(
        &self,
        status: Option<u16>,
        outcome: Outcome,
        waited: Option<Duration>,
        total: Duration,
    ) -> String {
        let (on, off) = match (self.log.colour, status) {
            (false, _) => ("", ""),
            (true, Some(200..=399)) if outcome == Outcome::Ok => ("\x1b[32m", "\x1b[0m"),
            (true, Some(400..=499)) => ("\x1b[33m", "\x1b[0m"),
            (true, _) => ("\x1b[31m", "\x1b[0m"),
        };
        let mut line = format!("{} {} {}", now_rfc3339(), self.method, self.target);
        if let Some(peer) = self.peer {
            let _ = write!(line, " from {peer}");
        }
        let status = status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let _ = write!(line, ": {on}{status} {}{off}", outcome.as_str());
        if let Some(waited) = waited {
            let _ = write!(line, ", waited {} ms", millis(waited));
        }
        let _ = writeln!(line, ", total {} ms", millis(total));
        line
    }

    fn json(
        &self,
        status: Option<u16>,
        outcome: Outcome,
        waited: Option<Duration>,
        total: Duration,
    ) -> String {
        let peer = self.peer.map(|p| p.to_string());
        let mut line = serde_json::to_string(&JsonLine {
            time: now_rfc3339(),
            method: self.method.as_str(),
            target: &self.target,
            peer: peer.as_deref(),
            status,
            outcome: outcome.as_str(),
            waited_ms: waited.map(millis),
            total_ms: millis(total),
        })
        .unwrap_or_default();
        line.push('\n');
        line
    }
}

/// A JSON log line, its fields in the order people read them.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    time: String,
    method: &'a str,
    target: &'a str,
    peer: Option<&'a str>,
    status: Option<u16>,
    outcome: &'static str,
    waited_ms: Option<u64>,
    total_ms: u64,
}

/// Whole milliseconds, rounded to the nearest.
fn millis(d: Duration) -> u64 {
    u64::try_from((d.as_micros() + 500) / 1000).unwrap_or(u64::MAX)
}

/// The time now in UTC, RFC 3339 with milliseconds: `2026-11-30T23:40:00.123Z`.
fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The calendar date of a day counted from 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(format: LogFormat, colour: bool) -> RequestInfo {
        let request = Request::get("/0.5?jitter=0.1").body(()).unwrap();
        *RequestInfo::of(
            Some(RequestLog { format, colour }),
            &request,
            Some("127.0.0.1:4321".parse().unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn text_lines_name_the_request_and_round_the_times() {
        let line = info(LogFormat::Text, false).text(
            Some(200),
            Outcome::Ok,
            Some(Duration::from_micros(301_025)),
            Duration::from_micros(301_600),
        );
        let (_, rest) = line.split_once(' ').unwrap();
        assert_eq!(
            rest,
            "GET /0.5?jitter=0.1 from 127.0.0.1:4321: 200 ok, waited 301 ms, total 302 ms\n"
        );
        assert!(!line.contains('\x1b'));
        let cancelled = info(LogFormat::Text, false).text(
            None,
            Outcome::Cancelled,
            None,
            Duration::from_millis(5),
        );
        assert!(
            cancelled.ends_with(": - cancelled, total 5 ms\n"),
            "{cancelled}"
        );
        let coloured =
            info(LogFormat::Text, true).text(Some(503), Outcome::Ok, None, Duration::ZERO);
        assert!(coloured.contains("\x1b[31m503 ok\x1b[0m"), "{coloured:?}");
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let line = info(LogFormat::Json, true).json(
            Some(400),
            Outcome::Rejected,
            None,
            Duration::from_micros(1_499),
        );
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["method"], "GET");
        assert_eq!(value["target"], "/0.5?jitter=0.1");
        assert_eq!(value["peer"], "127.0.0.1:4321");
        assert_eq!(value["status"], 400);
        assert_eq!(value["outcome"], "rejected");
        assert_eq!(value["waited_ms"], serde_json::Value::Null);
        assert_eq!(value["total_ms"], 1);
        assert!(!line.contains('\x1b'));
        assert!(line.starts_with(r#"{"time":"#), "{line}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_422), (2025, 11, 30));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn long_targets_are_cut() {
        let long = format!("/{}", "9".repeat(1000));
        let request = Request::get(long.as_str()).body(()).unwrap();
        let info = RequestInfo::of(Some(RequestLog::default()), &request, None).unwrap();
        assert_eq!(info.target.chars().count(), TARGET_CHARS + 1);
    }
}
