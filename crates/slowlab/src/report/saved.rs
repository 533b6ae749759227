//! The one check of a saved fetch or race document, made by every command that reads one
//! (`report show`, `report html`, `report merge`) before it computes anything.
//!
//! The document is parsed once, from its bytes, into types that follow the published schemas
//! (docs/fetch.schema.json, docs/race.schema.json): a missing field, a wrong type, a negative
//! count or one past 2^64 - 1 fails there, with the field's path. Then come the rules a schema
//! cannot say: counts that agree with each other, a shard index below the shard count, status
//! codes of HTTP, and histograms that decode. Fields the types do not know are collected, not
//! refused: a newer slowlab may have written them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, Unexpected, Visitor};
use slowlab_client::histogram;

/// What is wrong with a document: the field (a path such as `summary.statuses[0].status`) and
/// what would be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Where, as a path from the document's root; empty for the document as a whole.
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

fn fault<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, Fault> {
    Err(Fault {
        field: field.into(),
        message: message.into(),
    })
}

/// Which document it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `slowlab fetch --output json`, or `report merge`'s output.
    Fetch,
    /// `slowlab race --json FILE`.
    Race,
}

/// A document that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Fetch or race.
    pub kind: Kind,
    /// Fields no check knows, as paths (`summary.new_gauge`): from a newer slowlab, or added by
    /// hand. They are ignored; callers say so.
    pub unknown: Vec<String>,
    /// The document's `schema_version` when it is newer than this slowlab's.
    pub newer_version: Option<u64>,
}

/// The `schema_version` of the fetch documents this slowlab writes and reads.
pub const SCHEMA_VERSION: u64 = 2;

/// Parses `bytes` as a saved document and checks it; the first fault found, or what it is.
pub fn check(bytes: &[u8]) -> Result<Checked, Fault> {
    let kind = kind_of(bytes)?;
    let mut unknown = Vec::new();
    let mut newer_version = None;
    match kind {
        Kind::Fetch => {
            let doc: FetchDoc = parse(bytes, &mut unknown)?;
            newer_version = doc.check()?;
        }
        Kind::Race => {
            let doc: RaceDoc = parse(bytes, &mut unknown)?;
            doc.check()?;
        }
    }
    Ok(Checked {
        kind,
        unknown,
        newer_version,
    })
}

/// The top-level keys that tell a race (`runs`) from a fetch document (`summary`).
#[derive(Deserialize)]
struct Probe {
    runs: Option<IgnoredAny>,
    summary: Option<IgnoredAny>,
}

fn kind_of(bytes: &[u8]) -> Result<Kind, Fault> {
    let probe: Probe = serde_json::from_slice(bytes).or_else(|err| {
        fault(
            "",
            format!(
                "the file is not JSON, or not a JSON object ({err}): write one with `slowlab \
                 fetch --output json`"
            ),
        )
    })?;
    match (probe.runs, probe.summary) {
        (Some(_), _) => Ok(Kind::Race),
        (None, Some(_)) => Ok(Kind::Fetch),
        (None, None) => fault(
            "",
            "neither a race document (no \"runs\") nor a fetch document (no \"summary\"): \
             write one with `slowlab race --json FILE` or `slowlab fetch --output json > FILE`",
        ),
    }
}

/// One pass over the bytes into `T`, recording the fields `T` does not have.
fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], unknown: &mut Vec<String>) -> Result<T, Fault> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let noting = serde_ignored::Deserializer::new(&mut json, &mut note);
    let value = serde_path_to_error::deserialize(noting).or_else(|err| {
        let field = err.path().to_string();
        fault(
            if field == "." { String::new() } else { field },
            err.into_inner().to_string(),
        )
    })?;
    json.end()
        .or_else(|err| fault("", format!("trailing text after the document: {err}")))?;
    Ok(value)
}

/// A count: a whole number from 0 to 2^64 - 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Count, D::Error> {
        struct Whole;
        impl Visitor<'_> for Whole {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number from 0 to 18446744073709551615 (2^64 - 1)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
        deserializer.deserialize_u64(Whole)
    }
}

/// Seconds, a rate or a ratio: a finite number, at least 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct NonNegative(f64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<NonNegative, D::Error> {
        struct AtLeastZero;
        impl Visitor<'_> for AtLeastZero {
            type Value = NonNegative;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of at least 0")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NonNegative, E> {
                Ok(NonNegative(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NonNegative, E> {
                if v < 0 {
                    return Err(E::invalid_value(Unexpected::Signed(v), &self));
                }
                Ok(NonNegative(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NonNegative, E> {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(E::invalid_value(Unexpected::Float(v), &self));
                }
                Ok(NonNegative(v))
            }
        }
        deserializer.deserialize_f64(AtLeastZero)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Sequential,
    Threads,
    Async,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ErrorKind {
    Refused,
    ConnectTimeout,
    Timeout,
    Reset,
    ClosedEarly,
    HttpStatus,
    BadBody,
    BodyTooLarge,
    FdExhausted,
    PortExhausted,
    Cancelled,
    Other,
}

#[derive(Deserialize)]
struct FetchDoc {
    schema_version: Count,
    started_at: String,
    #[allow(dead_code)]
    host: String,
    shard: Option<ShardDoc>,
    merged: Option<MergedDoc>,
    workload: Workload,
    summary: Summary,
    outcomes: Option<Vec<Outcome>>,
    outcomes_omitted: Option<String>,
}

#[derive(Deserialize)]
struct ShardDoc {
    index: Option<Count>,
    indices: Option<Vec<Count>>,
    count: Count,
    #[allow(dead_code)]
    whole_requests: Option<Count>,
    concurrency: Option<Share>,
}

#[derive(Deserialize)]
struct Share {
    whole: Count,
    share: Count,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct MergedDoc {
    reports: Count,
    complete: bool,
    start_spread: NonNegative,
    note: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Workload {
    base_url: String,
    servers: Vec<String>,
    method: String,
    requests: Count,
    digest: String,
    rate: Option<Rate>,
    duration: Option<NonNegative>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Rate {
    text: String,
    start: NonNegative,
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Stage {
    rate: NonNegative,
    over: NonNegative,
}

/// A fetch summary, or a race run (a summary plus `label`, `server_model`, `repeat` and
/// `outcomes`).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Summary {
    mode: Mode,
    requests: Count,
    ok: Count,
    failed: Count,
    cancelled: Count,
    wall: NonNegative,
    sum_of_delays: NonNegative,
    max_delay: NonNegative,
    slots: Option<Count>,
    ideal: Option<NonNegative>,
    efficiency: Option<NonNegative>,
    throughput: NonNegative,
    peak_concurrency: Count,
    latency: Percentiles,
    overhead: Percentiles,
    errors: Vec<ErrorCount>,
    hints: Vec<String>,
    /// Absent from reports written before histograms were kept: they draw from percentiles.
    histograms: Option<Histograms>,
    statuses: Option<Vec<StatusCount>>,
    latency_buckets: Option<Vec<Bucket>>,
    cut_off: Option<Count>,
    open_loop: Option<OpenLoop>,
    label: Option<String>,
    server_model: Option<String>,
    repeat: Option<Repeat>,
    outcomes: Option<Vec<Outcome>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Percentiles {
    count: Count,
    mean: NonNegative,
    p50: NonNegative,
    p90: NonNegative,
    p99: NonNegative,
    p99_9: NonNegative,
    max: NonNegative,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ErrorCount {
    kind: ErrorKind,
    count: Count,
    example: String,
}

#[derive(Deserialize)]
struct Histograms {
    latency: String,
    overhead: String,
    from_schedule: Option<String>,
    send_lag: Option<String>,
    statuses: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct StatusCount {
    status: Count,
    count: Count,
    latency: Option<Percentiles>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Bucket {
    upper: NonNegative,
    count: Count,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OpenLoop {
    rate: String,
    target_rate: NonNegative,
    achieved_rate: NonNegative,
    from_schedule: Percentiles,
    send_lag: Percentiles,
    fell_behind: bool,
    expected_in_flight: NonNegative,
    mean_in_flight: NonNegative,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Repeat {
    runs: Count,
    walls: Vec<NonNegative>,
    median: NonNegative,
    min: NonNegative,
    max: NonNegative,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Outcome {
    index: Count,
    target: String,
    url: String,
    delay: Option<NonNegative>,
    ok: bool,
    status: Option<Count>,
    bytes: Count,
    time_elapsed: Option<f64>,
    start: NonNegative,
    end: NonNegative,
    latency: NonNegative,
    slot_wait: NonNegative,
    connect: Option<NonNegative>,
    first_byte: Option<NonNegative>,
    scheduled_at: Option<NonNegative>,
    send_lag: Option<NonNegative>,
    error: Option<OutcomeError>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OutcomeError {
    kind: ErrorKind,
    message: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RaceDoc {
    base_url: String,
    embedded_server: bool,
    scale: Option<NonNegative>,
    delays: Vec<NonNegative>,
    sum_of_delays: NonNegative,
    max_delay: NonNegative,
    runs: Vec<Summary>,
    speedup: Option<f64>,
    threads_speedup: Option<f64>,
    ideal_speedup: Option<f64>,
    machine: Machine,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Machine {
    os: String,
    arch: String,
    cpus: Count,
    slowlab_version: String,
}

/// `a + b`, or a fault naming `field` when the sum passes 2^64 - 1.
pub fn add(a: u64, b: u64, field: &str) -> Result<u64, Fault> {
    a.checked_add(b).ok_or_else(|| Fault {
        field: field.to_owned(),
        message: format!(
            "{a} + {b} is past 2^64 - 1, the largest count a report can hold: a count this \
             large cannot be real"
        ),
    })
}

impl FetchDoc {
    /// The checks past the types; the document's version when it is newer than this slowlab's.
    fn check(&self) -> Result<Option<u64>, Fault> {
        let version = self.schema_version.0;
        if version < SCHEMA_VERSION {
            return fault(
                "schema_version",
                format!(
                    "{version} is older than this slowlab reads ({SCHEMA_VERSION}); write the \
                     report again with this slowlab's `fetch --output json`"
                ),
            );
        }
        if humantime::parse_rfc3339(&self.started_at).is_err() {
            return fault(
                "started_at",
                format!(
                    "{:?} is not an RFC 3339 time such as 2026-01-02T03:04:05.000006Z",
                    self.started_at
                ),
            );
        }
        if let Some(shard) = &self.shard {
            shard.check()?;
        }
        if let Some(merged) = &self.merged
            && merged.reports.0 == 0
        {
            return fault(
                "merged.reports",
                "0: a merged report holds at least 1 report",
            );
        }
        let digest = &self.workload.digest;
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return fault(
                "workload.digest",
                format!("{digest:?} is not a SHA-256 in 64 lowercase hex digits"),
            );
        }
        if self.workload.servers.is_empty() {
            return fault("workload.servers", "empty: it lists at least the base URL");
        }
        self.summary.check("summary")?;
        // A report cut down by hand to its summary (neither field) still draws from its
        // histograms; one that claims both is contradictory.
        match (&self.outcomes, &self.outcomes_omitted) {
            (Some(_), Some(_)) => {
                return fault(
                    "outcomes",
                    "a report has either `outcomes` or `outcomes_omitted`, not both",
                );
            }
            (Some(outcomes), None) => check_outcomes(outcomes, self.summary.requests, "outcomes")?,
            _ => {}
        }
        Ok((version > SCHEMA_VERSION).then_some(version))
    }
}

impl ShardDoc {
    fn check(&self) -> Result<(), Fault> {
        let count = self.count.0;
        if count == 0 {
            return fault("shard.count", "0: a run is split into at least 1 shard");
        }
        let below = |index: Count, field: String| {
            if index.0 >= count {
                return fault(
                    field,
                    format!(
                        "{} is not a shard of {count}: shard indices run from 0 to {}",
                        index.0,
                        count - 1
                    ),
                );
            }
            Ok(())
        };
        match (&self.index, &self.indices) {
            (Some(index), None) => below(*index, "shard.index".to_owned())?,
            (None, Some(indices)) => {
                if indices.is_empty() {
                    return fault("shard.indices", "empty: a merged report holds some shard");
                }
                let mut seen = BTreeSet::new();
                for (i, index) in indices.iter().enumerate() {
                    below(*index, format!("shard.indices[{i}]"))?;
                    if !seen.insert(index.0) {
                        return fault(
                            format!("shard.indices[{i}]"),
                            format!("shard {} is listed twice", index.0),
                        );
                    }
                }
            }
            _ => {
                return fault(
                    "shard",
                    "has `index` (one shard) or `indices` (a merged report), exactly one",
                );
            }
        }
        if let Some(shared) = &self.concurrency
            && (shared.share.0 == 0 || shared.whole.0 == 0 || shared.share > shared.whole)
        {
            return fault(
                "shard.concurrency",
                format!(
                    "share {} of whole {}: a share is from 1 to the whole",
                    shared.share.0, shared.whole.0
                ),
            );
        }
        Ok(())
    }
}

impl Summary {
    /// The rules between a summary's counts, and its histograms decode; `at` is its path.
    fn check(&self, at: &str) -> Result<(), Fault> {
        let (requests, ok, failed) = (self.requests.0, self.ok.0, self.failed.0);
        if add(ok, failed, &format!("{at}.ok"))? != requests {
            return fault(
                format!("{at}.ok"),
                format!(
                    "ok {ok} + failed {failed} is not requests {requests}: each request either \
                     succeeded or failed"
                ),
            );
        }
        if self.cancelled.0 > failed {
            return fault(
                format!("{at}.cancelled"),
                format!(
                    "{} is more than failed {failed}: cancelled requests count as failed",
                    self.cancelled.0
                ),
            );
        }
        if self.slots.is_some_and(|slots| slots.0 == 0) {
            return fault(format!("{at}.slots"), "0: at least 1, or null for no limit");
        }
        let mut errors = 0;
        for (i, error) in self.errors.iter().enumerate() {
            if error.count.0 == 0 {
                return fault(
                    format!("{at}.errors[{i}].count"),
                    "0: a kind listed happened",
                );
            }
            errors = add(errors, error.count.0, &format!("{at}.errors"))?;
        }
        if errors > failed {
            return fault(
                format!("{at}.errors"),
                format!("counts add up to {errors}, more than failed {failed}"),
            );
        }
        let mut answered = 0;
        for (i, status) in self.statuses.iter().flatten().enumerate() {
            if !(100..=599).contains(&status.status.0) {
                return fault(
                    format!("{at}.statuses[{i}].status"),
                    format!(
                        "{} is not an HTTP status: codes run from 100 to 599",
                        status.status.0
                    ),
                );
            }
            if status.count.0 == 0 {
                return fault(
                    format!("{at}.statuses[{i}].count"),
                    "0: a code listed was seen",
                );
            }
            answered = add(answered, status.count.0, &format!("{at}.statuses"))?;
        }
        if self.statuses.is_some() && answered > requests {
            return fault(
                format!("{at}.statuses"),
                format!(
                    "counts add up to {answered}, more than requests {requests}: each request \
                     has at most one status"
                ),
            );
        }
        self.check_histograms(at)?;
        if let Some(outcomes) = &self.outcomes {
            check_outcomes(outcomes, self.requests, &format!("{at}.outcomes"))?;
        }
        Ok(())
    }

    fn check_histograms(&self, at: &str) -> Result<(), Fault> {
        let Some(saved) = &self.histograms else {
            return Ok(());
        };
        let decoded = |text: &str, name: &str| {
            // The header first: the decoder allocates whatever it claims.
            if let Err(err) = super::histogram_header::check(text) {
                return fault(
                    format!("{at}.histograms.{name}"),
                    format!(
                        "{err}: a histogram is HdrHistogram V2 + deflate, base64, as `fetch \
                         --output json` writes it"
                    ),
                );
            }
            histogram::decode(text).or_else(|err| {
                fault(
                    format!("{at}.histograms.{name}"),
                    format!(
                        "{err}: a histogram is HdrHistogram V2 + deflate, base64, as `fetch \
                         --output json` writes it"
                    ),
                )
            })
        };
        for (name, text, count) in [
            ("latency", &saved.latency, self.latency.count),
            ("overhead", &saved.overhead, self.overhead.count),
        ] {
            let held = decoded(text, name)?.len();
            if held != count.0 {
                return fault(
                    format!("{at}.histograms.{name}"),
                    format!("holds {held} values but {at}.{name}.count is {}", count.0),
                );
            }
        }
        for (name, text) in [
            ("from_schedule", &saved.from_schedule),
            ("send_lag", &saved.send_lag),
        ] {
            if let Some(text) = text {
                decoded(text, name)?;
            }
        }
        for (code, text) in saved.statuses.iter().flatten() {
            let valid =
                code.len() == 3 && code.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
            if !valid {
                return fault(
                    format!("{at}.histograms.statuses"),
                    format!("key {code:?} is not an HTTP status from 100 to 599"),
                );
            }
            decoded(text, &format!("statuses.{code}"))?;
        }
        Ok(())
    }
}

/// Exactly one outcome per request, each with an index.
fn check_outcomes(outcomes: &[Outcome], requests: Count, at: &str) -> Result<(), Fault> {
    if outcomes.len() as u64 != requests.0 {
        return fault(
            at,
            format!(
                "{} outcomes for {} requests: a report keeps exactly one per request",
                outcomes.len(),
                requests.0
            ),
        );
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Some(status) = outcome.status
            && !(100..=599).contains(&status.0)
        {
            return fault(
                format!("{at}[{i}].status"),
                format!(
                    "{} is not an HTTP status: codes run from 100 to 599",
                    status.0
                ),
            );
        }
    }
    Ok(())
}

impl RaceDoc {
    fn check(&self) -> Result<(), Fault> {
        if self.runs.is_empty() {
            return fault("runs", "empty: a race has at least one run");
        }
        if self.scale.is_some_and(|scale| scale.0 <= 0.0) {
            return fault("scale", "0: a scale is above 0");
        }
        for (i, run) in self.runs.iter().enumerate() {
            let at = format!("runs[{i}]");
            if run.label.is_none() {
                return fault(format!("{at}.label"), "missing: each run has a label");
            }
            run.check(&at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_numbers_within_u64() {
        let count = |text: &str| serde_json::from_str::<Count>(text).map(|c| c.0);
        assert_eq!(count("18446744073709551615").unwrap(), u64::MAX);
        assert!(count("18446744073709551616").is_err());
        assert!(count("-5").is_err());
        assert!(count("1.5").is_err());
    }

    #[test]
    fn sums_past_u64_name_the_field() {
        let err = add(u64::MAX, 1, "summary.requests").unwrap_err();
        assert_eq!(err.field, "summary.requests");
        assert!(err.message.contains("2^64 - 1"), "{err}");
    }
}
