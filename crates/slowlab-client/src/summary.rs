//! What a run amounts to: wall time against the ideal for its mode, percentiles, errors by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::outcome::{ErrorKind, Outcome};
use crate::runner::Mode;
use crate::workload::Workload;

/// The totals of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// How the workload was sent.
    pub mode: Mode,
    /// Number of requests (always equal to the number of outcomes).
    pub requests: usize,
    /// Requests that succeeded.
    pub ok: usize,
    /// Requests that failed (cancelled ones included).
    pub failed: usize,
    /// Requests cancelled by an interrupt, sent or not.
    pub cancelled: usize,
    /// From the first request's start to the last outcome.
    #[serde(serialize_with = "as_secs")]
    pub wall: Duration,
    /// Sum of the requested delays.
    #[serde(serialize_with = "as_secs")]
    pub sum_of_delays: Duration,
    /// Longest requested delay.
    #[serde(serialize_with = "as_secs")]
    pub max_delay: Duration,
    /// Most requests the options allowed in flight at once (`null`: no limit).
    pub slots: Option<usize>,
    /// The best wall time this mode could reach: the sum for sequential, the max for unbounded
    /// async, and for a limit of K slots the makespan of greedy list scheduling on K slots.
    #[serde(serialize_with = "as_secs")]
    pub ideal: Duration,
    /// `ideal / wall`: 1.0 is perfect, lower means time lost to overhead. `None` (JSON `null`) when
    /// any request failed or was cancelled: the ideal assumes every request waited its full delay,
    /// so a run cut short by failures would look better than perfect. Also `None` when some
    /// request is not a slowlab delay request (`--urls`), whose time nobody can know beforehand.
    pub efficiency: Option<f64>,
    /// Successful requests per second of wall time: failures are not throughput (a server that
    /// refuses everything at once must not look fast).
    pub throughput: f64,
    /// Most requests in flight at the same moment: from the outcomes' start and end, or, when the
    /// run did not keep its outcomes, from the runners' own count of requests in flight.
    pub peak_concurrency: usize,
    /// Latency (start to end) of successful and timed-out requests; a timed-out request counts as
    /// at least its timeout.
    pub latency: Percentiles,
    /// Latency minus the requested delay, of successful delay requests: the client's (and the
    /// network's) own cost per request.
    pub overhead: Percentiles,
    /// Failures by kind, with one example message each.
    pub errors: Vec<ErrorCount>,
    /// What to change, when a failure has a known remedy (e.g. raise `ulimit -n`).
    pub hints: Vec<String>,
    /// For an open-loop run (`--rate`): latency from schedule, send lag and the rate reached.
    /// There, `latency` is the service time, from send to end. `null` in closed-loop runs.
    pub open_loop: Option<OpenLoop>,
    /// The histograms behind `latency` and `overhead`, whole, so that the reports of a sharded
    /// run merge into exact percentiles of the union (`slowlab report merge`).
    pub histograms: Histograms,
    /// Responses by HTTP status, in order of the code: how many, and their latency. Requests
    /// that got no response head (refused, reset, timed out first) are not here.
    pub statuses: Vec<StatusCount>,
    /// The latency distribution in log-scaled buckets, for a histogram drawn a bar a bucket;
    /// empty when no latency was recorded.
    pub latency_buckets: Vec<Bucket>,
    /// A run for a time (`--duration`): requests still in flight when it ended that did not
    /// finish within their timeout, so were cut off (counted among the `timeout` errors too).
    pub cut_off: usize,
}

/// The responses of one HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCount {
    /// The code, e.g. 200 or 503.
    pub status: u16,
    /// How many responses had it.
    pub count: usize,
    /// Their latency (start to end; the service time in an open-loop run).
    pub latency: Percentiles,
}

/// One bucket of [`Summary::latency_buckets`]: the latencies up to `upper`, above the bucket
/// before.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// The bucket's upper bound, seconds.
    pub upper: f64,
    /// Latencies in it.
    pub count: u64,
}

/// The median send lag above which an open-loop client counts as behind its schedule. A free
/// worker sends within microseconds of the due time (`slowlab-timer`), but a busy or shared
/// machine can delay a wake-up by a millisecond or two without the client being behind; a few
/// milliseconds more is queueing.
pub const BEHIND: Duration = Duration::from_millis(5);

/// How many buckets a latency histogram has at most.
pub const BUCKETS: usize = 12;

/// What an open-loop run adds to its summary: how late requests went out, how long callers
/// arriving on schedule waited, and Little's law.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenLoop {
    /// The rate asked for, as typed: `200` or `100,1000@30s`.
    pub rate: String,
    /// The rate the schedule asked for, over the requests sent: requests a second between the
    /// first and the last due.
    pub target_rate: f64,
    /// The rate requests actually went out at, between the first and the last sent.
    pub achieved_rate: f64,
    /// Latency from each request's due time to its end, of successful and timed-out requests:
    /// what a caller arriving on schedule waited, queueing in the client included.
    pub from_schedule: Percentiles,
    /// From each request's due time to its send: time spent waiting for a connection, a slot or
    /// the client itself.
    pub send_lag: Percentiles,
    /// Whether the client could not keep up: median send lag above [`BEHIND`], or the achieved
    /// rate more than 1% below the target.
    pub fell_behind: bool,
    /// Little's law: requests in flight expected on average, the target rate times the mean
    /// requested delay (times the mean service time when some request has no delay).
    pub expected_in_flight: f64,
    /// Requests in flight on average, measured: the sum of service times over the wall time.
    pub mean_in_flight: f64,
}

/// A summary's histograms of microseconds, each in HdrHistogram's V2 + deflate encoding, base64
/// (see [`crate::histogram`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Histograms {
    /// Of `latency`.
    pub latency: String,
    /// Of `overhead`.
    pub overhead: String,
    /// Of `open_loop.from_schedule`, in an open-loop run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_schedule: Option<String>,
    /// Of `open_loop.send_lag`, in an open-loop run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<String>,
    /// Of each code's latency in `statuses`, by code (a JSON object keyed `"200"`, `"503"`...),
    /// so that merged reports give every code's percentiles exactly too.
    pub statuses: BTreeMap<u16, String>,
}

/// Percentiles of a distribution of durations, from an HDR histogram (bounded memory, exact to
/// 0.1%), in seconds; `max` is exact.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    /// Number of values.
    pub count: u64,
    /// Mean, seconds.
    pub mean: f64,
    /// Median, seconds.
    pub p50: f64,
    /// 90th percentile, seconds.
    pub p90: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// 99.9th percentile, seconds.
    pub p99_9: f64,
    /// Largest value, seconds.
    pub max: f64,
}

/// How many requests failed with one kind of error, and an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    /// The kind.
    pub kind: ErrorKind,
    /// How many requests.
    pub count: usize,
    /// The message of the first such failure received.
    pub example: String,
}

/// Accumulates durations into an HDR histogram of microseconds.
struct Recorder {
    histogram: Histogram<u64>,
    max: Duration,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            histogram: crate::histogram::new_micros(),
            max: Duration::ZERO,
        }
    }

    fn record(&mut self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX).max(1);
        // Auto-resizing histograms only fail on values they cannot hold, which u64 micros are not.
        let _ = self.histogram.record(micros);
        self.max = self.max.max(value);
    }

    fn percentiles(&self) -> Percentiles {
        crate::histogram::percentiles(&self.histogram, self.max.as_secs_f64())
    }
}

impl Summary {
    /// Summarises the outcomes of one run of `workload` in `mode` with at most `slots` requests in
    /// flight (`None`: no limit). In async mode the limit is per server, as the async runner
    /// applies it; with several servers the summary shows the limit of the whole run.
    pub fn with_slots(
        mode: Mode,
        slots: Option<usize>,
        workload: &Workload,
        outcomes: &[Outcome],
        wall: Duration,
    ) -> Summary {
        let mut tally = Tally::new();
        for outcome in outcomes {
            tally.add(workload, outcome);
        }
        tally.summary(mode, slots, workload, wall, peak_concurrency(outcomes))
    }

    /// How many requests failed with `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> usize {
        self.errors
            .iter()
            .find(|e| e.kind == kind)
            .map_or(0, |e| e.count)
    }
}

/// A summary in the making: outcomes are folded in one at a time as they arrive, so that a run
/// need not keep them to be summarised. Everything but the peak concurrency is exact this way;
/// that needs every outcome's interval, or a gauge kept while the run goes (see
/// [`Control::peak_in_flight`](crate::Control::peak_in_flight)).
pub struct Tally {
    requests: usize,
    ok: usize,
    latency: Recorder,
    overhead: Recorder,
    errors: BTreeMap<ErrorKind, ErrorCount>,
    open_loop: Schedule,
    statuses: BTreeMap<u16, (usize, Recorder)>,
    /// When each timed-out request ended: those after the end of a run for a time were cut off.
    timeout_ends: Vec<Duration>,
}

/// An open-loop run's counts, in the making.
struct Schedule {
    from_schedule: Recorder,
    send_lag: Recorder,
    /// Sum of service times (start to end) of every request, for the mean in flight.
    busy: Duration,
    /// Sum of the requested delays of requests sent.
    delays: Duration,
    first_due: Option<Duration>,
    last_due: Duration,
    /// The latest due time plus delay: the end of an open-loop run whose every request is sent
    /// on time and takes exactly its delay.
    ideal: Duration,
    first_sent: Option<Duration>,
    last_sent: Duration,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Tally {
    /// Nothing counted yet.
    pub fn new() -> Tally {
        Tally {
            requests: 0,
            ok: 0,
            latency: Recorder::new(),
            overhead: Recorder::new(),
            errors: BTreeMap::new(),
            statuses: BTreeMap::new(),
            timeout_ends: Vec::new(),
            open_loop: Schedule {
                from_schedule: Recorder::new(),
                send_lag: Recorder::new(),
                busy: Duration::ZERO,
                delays: Duration::ZERO,
                first_due: None,
                last_due: Duration::ZERO,
                ideal: Duration::ZERO,
                first_sent: None,
                last_sent: Duration::ZERO,
            },
        }
    }

    /// Requests counted so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Counts the open-loop side of `outcome`, when it has a due time.
    fn add_scheduled(&mut self, workload: &Workload, outcome: &Outcome) {
        let Some(due) = outcome.scheduled else {
            return;
        };
        let delay = workload
            .targets
            .get(outcome.index)
            .and_then(|t| t.delay)
            .unwrap_or_default();
        let schedule = &mut self.open_loop;
        let timed_out = outcome.error_kind() == Some(ErrorKind::Timeout);
        if outcome.is_ok() || timed_out {
            schedule
                .from_schedule
                .record(outcome.end.saturating_sub(due));
        }
        let cancelled = outcome.error_kind() == Some(ErrorKind::Cancelled);
        if !cancelled || outcome.end > outcome.start {
            schedule.send_lag.record(outcome.start.saturating_sub(due));
            schedule.first_sent = Some(
                schedule
                    .first_sent
                    .map_or(outcome.start, |s| s.min(outcome.start)),
            );
            schedule.last_sent = schedule.last_sent.max(outcome.start);
        }
        schedule.busy += outcome.latency();
        schedule.delays += delay;
        schedule.first_due = Some(schedule.first_due.map_or(due, |d| d.min(due)));
        schedule.last_due = schedule.last_due.max(due);
        // The run could end no sooner than every request's due time plus its delay.
        schedule.ideal = schedule.ideal.max(due + delay);
    }

    /// Counts `outcome`, a request of `workload`.
    pub fn add(&mut self, workload: &Workload, outcome: &Outcome) {
        self.requests += 1;
        if let Some(status) = outcome.status {
            let (count, latency) = self
                .statuses
                .entry(status)
                .or_insert_with(|| (0, Recorder::new()));
            *count += 1;
            latency.record(outcome.latency());
        }
        self.add_scheduled(workload, outcome);
        match &outcome.result {
            Ok(_) => {
                self.ok += 1;
                self.latency.record(outcome.latency());
                if let Some(delay) = workload.targets.get(outcome.index).and_then(|t| t.delay) {
                    self.overhead
                        .record(outcome.latency().saturating_sub(delay));
                }
            }
            Err(err) => {
                if err.kind == ErrorKind::Timeout {
                    self.timeout_ends.push(outcome.end);
                    self.latency.record(outcome.latency());
                }
                self.errors
                    .entry(err.kind)
                    .and_modify(|e| e.count += 1)
                    .or_insert_with(|| ErrorCount {
                        kind: err.kind,
                        count: 1,
                        example: err.message.clone(),
                    });
            }
        }
    }

    /// The summary of what was counted, a run of `workload` in `mode` with at most `slots` in
    /// flight that took `wall`, with `peak` requests in flight at most.
    pub fn summary(
        self,
        mode: Mode,
        slots: Option<usize>,
        workload: &Workload,
        wall: Duration,
        peak: usize,
    ) -> Summary {
        let Tally {
            requests,
            ok,
            latency,
            overhead,
            errors,
            open_loop: schedule,
            statuses,
            timeout_ends,
        } = self;
        // The end of a run for a time: its closed-loop deadline, or the last due request.
        let run_end = match (&workload.pace.until, &workload.pace.rate) {
            (Some(until), _) => Some(*until),
            (None, Some(_)) => Some(schedule.last_due),
            (None, None) => None,
        };
        let cut_off = run_end.map_or(0, |end| timeout_ends.iter().filter(|&&t| t > end).count());
        let cancelled = errors.get(&ErrorKind::Cancelled).map_or(0, |e| e.count);
        let is_open_loop = workload.pace.rate.is_some();
        let from_schedule_histogram = schedule.from_schedule.histogram.clone();
        let send_lag_histogram = schedule.send_lag.histogram.clone();
        let open_loop = workload.pace.rate.as_ref().map(|rate| {
            let span = |first: Option<Duration>, last: Duration| {
                per_second(
                    requests.saturating_sub(1),
                    last.saturating_sub(first.unwrap_or(last)),
                )
            };
            let target_rate = span(schedule.first_due, schedule.last_due);
            let achieved_rate = span(schedule.first_sent, schedule.last_sent);
            let send_lag = schedule.send_lag.percentiles();
            let per_request = if workload.all_delays() {
                schedule.delays
            } else {
                schedule.busy
            };
            let mean = per_request.as_secs_f64() / requests.max(1) as f64;
            OpenLoop {
                rate: rate.to_string(),
                target_rate,
                achieved_rate,
                from_schedule: schedule.from_schedule.percentiles(),
                send_lag,
                fell_behind: send_lag.p50 > BEHIND.as_secs_f64()
                    || achieved_rate < 0.99 * target_rate,
                expected_in_flight: target_rate * mean,
                mean_in_flight: ratio(schedule.busy, wall),
            }
        });
        let (slots, ideal) = match mode {
            _ if open_loop.is_some() => (slots, schedule.ideal),
            Mode::Async => (
                workload.slots_per_server(slots),
                workload.ideal_per_server(slots),
            ),
            Mode::Sequential | Mode::Threads => (slots, workload.ideal(slots)),
        };
        let hints = errors.keys().filter_map(|kind| hint(*kind)).collect();
        let status_histograms = statuses
            .iter()
            .map(|(&status, (_, latency))| (status, crate::histogram::encode(&latency.histogram)))
            .collect();
        Summary {
            mode,
            requests,
            ok,
            failed: requests - ok,
            cancelled,
            wall,
            sum_of_delays: workload.sum_of_delays(),
            max_delay: workload.max_delay(),
            slots,
            ideal,
            efficiency: (ok == requests && !wall.is_zero() && workload.all_delays())
                .then(|| ratio(ideal, wall)),
            throughput: per_second(ok, wall),
            peak_concurrency: peak,
            latency: latency.percentiles(),
            overhead: overhead.percentiles(),
            errors: errors.into_values().collect(),
            hints,
            open_loop,
            statuses: statuses
                .into_iter()
                .map(|(status, (count, latency))| StatusCount {
                    status,
                    count,
                    latency: latency.percentiles(),
                })
                .collect(),
            latency_buckets: buckets(&latency.histogram),
            cut_off,
            histograms: Histograms {
                latency: crate::histogram::encode(&latency.histogram),
                overhead: crate::histogram::encode(&overhead.histogram),
                from_schedule: is_open_loop
                    .then(|| crate::histogram::encode(&from_schedule_histogram)),
                send_lag: is_open_loop.then(|| crate::histogram::encode(&send_lag_histogram)),
                statuses: status_histograms,
            },
        }
    }
}

/// `histogram` (of microseconds) in at most [`BUCKETS`] buckets whose bounds grow by a constant
/// factor from the smallest value to the largest, like hey's: a long tail gets as many buckets as
/// the bulk.
pub fn buckets(histogram: &Histogram<u64>) -> Vec<Bucket> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let (low, high) = (histogram.min().max(1), histogram.max().max(1));
    if histogram.equivalent(low, high) {
        return vec![Bucket {
            upper: high as f64 / 1e6,
            count: histogram.len(),
        }];
    }
    let factor = (high as f64 / low as f64).powf(1.0 / BUCKETS as f64);
    let mut from = 0;
    (1..=BUCKETS)
        .map(|i| {
            let upper = if i == BUCKETS {
                histogram.highest_equivalent(high)
            } else {
                (low as f64 * factor.powi(i as i32)) as u64
            };
            let count = if upper >= from {
                histogram.count_between(from, upper)
            } else {
                0
            };
            from = from.max(histogram.next_non_equivalent(upper));
            Bucket {
                upper: upper as f64 / 1e6,
                count,
            }
        })
        .collect()
}

/// What to change when requests fail this way, if there is a known remedy.
fn hint(kind: ErrorKind) -> Option<String> {
    match kind {
        ErrorKind::FdExhausted => Some(format!(
            "out of file descriptors: raise the limit (`ulimit -n`; now {}), or keep fewer \
             connections open with --http2 or --concurrency",
            crate::limits::describe_nofile()
        )),
        ErrorKind::PortExhausted => Some(
            "out of local ports for one server address: reuse connections with --http2 or \
             --concurrency, or widen net.ipv4.ip_local_port_range"
                .to_owned(),
        ),
        _ => None,
    }
}

/// Most requests whose `[start, end)` intervals overlap at one moment.
pub fn peak_concurrency(outcomes: &[Outcome]) -> usize {
    peak_overlap(outcomes.iter().map(|o| (o.start, o.end)))
}

/// Most `[start, end)` intervals that overlap at one moment, for any ordered time (offsets as
/// `Duration`s, or float seconds read back from a report). Empty and reversed intervals count
/// for nothing.
pub fn peak_overlap<T: PartialOrd + Copy>(intervals: impl IntoIterator<Item = (T, T)>) -> usize {
    // Ends sort before starts at the same instant: a request that ends as another starts did not
    // overlap it.
    let mut events: Vec<(T, i8)> = Vec::new();
    for (start, end) in intervals.into_iter().filter(|(start, end)| end > start) {
        events.push((start, 1));
        events.push((end, -1));
    }
    events.sort_unstable_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
    let (mut now, mut peak) = (0usize, 0usize);
    for (_, step) in events {
        if step > 0 {
            now += 1;
            peak = peak.max(now);
        } else {
            now = now.saturating_sub(1);
        }
    }
    peak
}

/// `a / b` in seconds; 0 when `b` is zero.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

fn per_second(count: usize, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        count as f64 / wall.as_secs_f64()
    }
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{FetchError, Reply};

    fn outcome(index: usize, start_ms: u64, end_ms: u64) -> Outcome {
        Outcome {
            index,
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            scheduled: None,
            slot_wait: Duration::ZERO,
            connect: None,
            first_byte: None,
            status: Some(200),
            bytes: 0,
            result: Ok(Reply {
                status: 200,
                body: bytes::Bytes::new(),
                time_elapsed: None,
            }),
        }
    }

    #[test]
    fn statuses_and_buckets_count_every_response_once() {
        let endpoint = crate::Endpoint::parse("http://127.0.0.1:1").unwrap();
        let workload = Workload::from_delays(endpoint, &[Duration::ZERO; 300]);
        let outcomes: Vec<Outcome> = (0..300)
            .map(|i| {
                let mut o = outcome(i, 0, 1 + (i as u64 % 100) * (i as u64 % 7));
                if i % 3 == 0 {
                    o.status = Some(503);
                    o.result = Err(FetchError::new(ErrorKind::HttpStatus, "503"));
                }
                o
            })
            .collect();
        let s = Summary::with_slots(
            Mode::Async,
            None,
            &workload,
            &outcomes,
            Duration::from_secs(1),
        );
        let statuses: Vec<(u16, usize)> = s.statuses.iter().map(|c| (c.status, c.count)).collect();
        assert_eq!(statuses, [(200, 200), (503, 100)]);
        // Each code's histogram travels with the summary and gives its percentiles back.
        for count in &s.statuses {
            let saved = crate::histogram::decode(&s.histograms.statuses[&count.status]).unwrap();
            assert_eq!(saved.len(), count.count as u64);
            let again = crate::histogram::percentiles(&saved, count.latency.max);
            assert_eq!(again, count.latency);
        }
        let json = serde_json::to_value(&s.histograms).unwrap();
        assert!(json["statuses"]["503"].is_string(), "{json}");
        assert!(s.latency_buckets.len() > 1 && s.latency_buckets.len() <= BUCKETS);
        let counted: u64 = s.latency_buckets.iter().map(|b| b.count).sum();
        assert_eq!(
            counted, 200,
            "every successful latency in exactly one bucket"
        );
        assert!(
            s.latency_buckets
                .windows(2)
                .all(|w| w[0].upper < w[1].upper)
        );
        assert!((s.latency_buckets.last().unwrap().upper - s.latency.max).abs() < 0.001);
    }

    #[test]
    fn peak_counts_overlaps_only() {
        let back_to_back = [outcome(0, 0, 10), outcome(1, 10, 20), outcome(2, 20, 30)];
        assert_eq!(peak_concurrency(&back_to_back), 1);
        let three = [
            outcome(0, 0, 10),
            outcome(1, 1, 12),
            outcome(2, 2, 30),
            outcome(3, 11, 40),
        ];
        assert_eq!(peak_concurrency(&three), 3);
        assert_eq!(peak_concurrency(&[]), 0);
    }

    #[test]
    fn percentiles_errors_and_timeouts() {
        let endpoint = crate::Endpoint::parse("http://127.0.0.1:1").unwrap();
        let workload = Workload::from_delays(endpoint, &[Duration::from_millis(100); 4]);
        let mut outcomes: Vec<Outcome> = (0..2).map(|i| outcome(i, 0, 110)).collect();
        let mut timed_out = outcome(2, 0, 500);
        timed_out.result = Err(FetchError::timed_out(Duration::from_millis(500)));
        outcomes.push(timed_out);
        let mut refused = outcome(3, 0, 1);
        refused.result = Err(FetchError::new(ErrorKind::Refused, "nobody home"));
        outcomes.push(refused);
        let s = Summary::with_slots(
            Mode::Async,
            None,
            &workload,
            &outcomes,
            Duration::from_secs(1),
        );
        assert_eq!((s.ok, s.failed), (2, 2));
        // The timeout counts in latency as at least its limit; the refusal does not count.
        assert_eq!(s.latency.count, 3);
        assert!((s.latency.max - 0.5).abs() < 1e-9);
        assert!((s.latency.p50 - 0.11).abs() < 0.001, "{:?}", s.latency);
        assert_eq!(s.overhead.count, 2);
        assert!((s.overhead.p99 - 0.01).abs() < 0.0001, "{:?}", s.overhead);
        assert_eq!(s.errors_of(ErrorKind::Refused), 1);
        assert_eq!(s.errors[0].kind, ErrorKind::Refused, "sorted by kind");
        assert_eq!(s.errors[0].example, "nobody home");
        assert!(
            s.hints.is_empty(),
            "the refusal's message says it all: {:?}",
            s.hints
        );
        assert_eq!(s.peak_concurrency, 4);
        // Two of the four succeeded in one second: failures are not throughput.
        assert!((s.throughput - 2.0).abs() < 1e-9, "{}", s.throughput);
    }
}
