//! `slowlab report merge`: the reports of a sharded run (`fetch --shard I/N`) made into one, as if
//! a single run had sent the union.
//!
//! Counts and error kinds add up; latency and overhead percentiles, and each HTTP status's
//! latency, come from the sum of the shards' histograms (stored whole in each report), so they
//! equal the percentiles of one run over the union, which no arithmetic on the shards'
//! percentiles could give. The merged wall time runs
//! from the earliest start to the latest end on the wall clock, so it assumes the hosts' clocks
//! agree; the report says how far apart the shards started.
//!
//! Reports are read as JSON values rather than typed structs: merging needs a handful of fields,
//! and everything it does not know passes through from the first report. The command checks each
//! report first (`report::saved::check`), and every count is added with checked
//! arithmetic: a sum past 2^64 - 1 is refused, naming the report and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use slowlab_client::histogram;

/// The `schema_version` of the reports that `fetch` writes and `merge` reads and writes.
pub const SCHEMA_VERSION: u64 = crate::report::saved::SCHEMA_VERSION;

/// One report to merge and where it came from (for error messages).
pub struct Input {
    /// A file name, for people.
    pub name: String,
    /// The parsed document.
    pub report: Value,
}

/// Why reports cannot be merged; each message names the report and says what would be right.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(String);

fn refuse<T>(message: impl Into<String>) -> Result<T, MergeError> {
    Err(MergeError(message.into()))
}

/// Adds up `count` of every shard (`field` names it for people), refusing a sum past 2^64 - 1
/// with the report that took it there.
fn checked_sum<'s>(
    shards: impl IntoIterator<Item = (&'s str, u64)>,
    field: &str,
) -> Result<u64, MergeError> {
    shards.into_iter().try_fold(0u64, |total, (name, count)| {
        crate::report::saved::add(total, count, field)
            .map_err(|fault| MergeError(format!("{name}: {fault}")))
    })
}

/// The fields merge relies on, read from one report.
struct Shard<'a> {
    name: &'a str,
    report: &'a Value,
    summary: &'a Map<String, Value>,
    indices: Vec<u64>,
    count: u64,
    started: SystemTime,
    wall: Duration,
}

impl<'a> Shard<'a> {
    fn read(input: &'a Input) -> Result<Shard<'a>, MergeError> {
        let name = input.name.as_str();
        let report = &input.report;
        let version = report.get("schema_version").and_then(Value::as_u64);
        if version != Some(SCHEMA_VERSION) {
            return refuse(format!(
                "{name}: schema_version {} cannot be merged (wanted {SCHEMA_VERSION}); write the \
                 reports again with this slowlab's `fetch --output json`",
                version.map_or("missing".to_owned(), |v| v.to_string())
            ));
        }
        let summary = report
            .get("summary")
            .and_then(Value::as_object)
            .ok_or_else(|| MergeError(format!("{name}: no summary")))?;
        let (indices, count) = shard_of(report).ok_or_else(|| {
            MergeError(format!(
                "{name}: not a sharded run (no `shard`); merge the reports of `fetch --shard I/N`"
            ))
        })?;
        let started = report
            .get("started_at")
            .and_then(Value::as_str)
            .and_then(|text| humantime::parse_rfc3339(text).ok())
            .ok_or_else(|| MergeError(format!("{name}: no valid `started_at`")))?;
        let wall = summary
            .get("wall")
            .and_then(Value::as_f64)
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| MergeError(format!("{name}: no valid summary.wall")))?;
        Ok(Shard {
            name,
            report,
            summary,
            indices,
            count,
            started,
            wall,
        })
    }

    fn str_at(&self, pointer: &str) -> Option<&'a str> {
        self.report.pointer(pointer).and_then(Value::as_str)
    }

    fn u64_of(&self, key: &str) -> u64 {
        self.summary.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    fn f64_of(&self, key: &str) -> Option<f64> {
        self.summary.get(key).and_then(Value::as_f64)
    }

    fn histogram(&self, key: &str) -> Result<histogram::Histogram<u64>, MergeError> {
        let text = self
            .summary
            .get("histograms")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .ok_or_else(|| MergeError(format!("{}: no summary.histograms.{key}", self.name)))?;
        histogram::decode(text).map_err(|err| MergeError(format!("{}: {err}", self.name)))
    }

    fn ended(&self) -> SystemTime {
        self.started + self.wall
    }

    /// Whether this is a shard of a closed-loop run for a time (`--duration` without `--rate`).
    fn is_timed(&self) -> bool {
        let set = |pointer| self.report.pointer(pointer).is_some_and(|v| !v.is_null());
        set("/workload/duration") && !set("/workload/rate")
    }

    /// `shard.concurrency` of a shard of a closed-loop run for a time: the run's K and the part
    /// this report holds.
    fn concurrency(&self) -> Option<(u64, u64)> {
        let shared = self.report.pointer("/shard/concurrency")?;
        Some((
            shared.get("whole")?.as_u64()?,
            shared.get("share")?.as_u64()?,
        ))
    }
}

/// `shard` as indices and count: `{"index": I, "count": N}` for one run, `{"indices": [..],
/// "count": N}` for a merged report.
fn shard_of(report: &Value) -> Option<(Vec<u64>, u64)> {
    let shard = report.get("shard")?;
    let count = shard.get("count")?.as_u64()?;
    let indices = match shard.get("index") {
        Some(index) => vec![index.as_u64()?],
        None => shard
            .get("indices")?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<_>>()?,
    };
    Some((indices, count))
}

/// Merges `inputs` (at least one) into one report.
pub fn merge(inputs: &[Input]) -> Result<Value, MergeError> {
    let shards: Vec<Shard> = inputs.iter().map(Shard::read).collect::<Result<_, _>>()?;
    let Some(first) = shards.first() else {
        return refuse("nothing to merge: name the reports (files or a directory)");
    };
    check_same_workload(&shards)?;
    let count = first.count;
    let mut seen = BTreeSet::new();
    for shard in &shards {
        if shard.count != count {
            return refuse(format!(
                "{} is a shard of {}, {} of {count}: shards of one run share N in --shard I/N",
                shard.name, shard.count, first.name
            ));
        }
        for &index in &shard.indices {
            if !seen.insert(index) {
                return refuse(format!(
                    "shard {index}/{count} appears twice ({} overlaps another report): each \
                     request must be counted once",
                    shard.name
                ));
            }
        }
    }

    let started = shards.iter().map(|s| s.started).min().expect("not empty");
    let latest_start = shards.iter().map(|s| s.started).max().expect("not empty");
    let ended = shards.iter().map(Shard::ended).max().expect("not empty");
    let wall = ended.duration_since(started).unwrap_or_default();
    let start_spread = latest_start.duration_since(started).unwrap_or_default();

    let mut summary = merge_summaries(&shards, wall)?;
    let outcomes = merge_outcomes(&shards, started);
    if let Some(outcomes) = &outcomes {
        summary["peak_concurrency"] = json!(peak_concurrency(outcomes));
    }

    let mut merged = first.report.clone();
    let object = merged.as_object_mut().expect("a report is an object");
    object.insert("schema_version".into(), json!(SCHEMA_VERSION));
    object.insert(
        "started_at".into(),
        json!(humantime::format_rfc3339_micros(started).to_string()),
    );
    let mut shard = json!({ "indices": seen.iter().collect::<Vec<_>>(), "count": count });
    let shared: Option<Vec<(u64, u64)>> = shards.iter().map(Shard::concurrency).collect();
    if let Some(shared) = shared {
        // The same K in every shard (it is part of the digest); the parts held add up.
        let whole = shared.first().map_or(0, |&(whole, _)| whole);
        let share = checked_sum(
            shards
                .iter()
                .zip(&shared)
                .map(|(s, &(_, share))| (s.name, share)),
            "shard.concurrency.share",
        )?;
        shard["concurrency"] = json!({ "whole": whole, "share": share });
    }
    object.insert("shard".into(), shard);
    let hosts: BTreeSet<&str> = shards.iter().filter_map(|s| s.str_at("/host")).collect();
    object.insert(
        "host".into(),
        json!(hosts.into_iter().collect::<Vec<_>>().join(",")),
    );
    object.insert(
        "merged".into(),
        json!({
            "reports": shards.len(),
            "complete": seen.len() as u64 == count,
            "start_spread": start_spread.as_secs_f64(),
            "note": "wall time runs from the earliest start to the latest end on the hosts' \
                     clocks; start_spread says how far apart the shards started",
        }),
    );
    let requests = checked_sum(
        shards.iter().map(|s| {
            let requests = s
                .report
                .pointer("/workload/requests")
                .and_then(Value::as_u64);
            (s.name, requests.unwrap_or(0))
        }),
        "workload.requests",
    )?;
    if let Some(workload) = object.get_mut("workload").and_then(Value::as_object_mut) {
        workload.insert("requests".into(), json!(requests));
    }
    object.insert("summary".into(), summary);
    match outcomes {
        Some(outcomes) => {
            object.remove("outcomes_omitted");
            object.insert("outcomes".into(), Value::Array(outcomes));
        }
        None => {
            object.remove("outcomes");
            object.insert(
                "outcomes_omitted".into(),
                json!(
                    "--no-outcomes: a shard kept no per-request outcomes; the summary counts \
                     every request"
                ),
            );
        }
    };
    Ok(merged)
}

/// Refuses reports that do not come from the same workload, mode and options.
fn check_same_workload(shards: &[Shard]) -> Result<(), MergeError> {
    let first = &shards[0];
    for (what, pointer) in [
        ("workload", "/workload/digest"),
        ("mode", "/summary/mode"),
        ("method", "/workload/method"),
    ] {
        let wanted = first.str_at(pointer);
        if wanted.is_none() {
            return refuse(format!("{}: no {pointer}", first.name));
        }
        for shard in &shards[1..] {
            if shard.str_at(pointer) != wanted {
                return refuse(format!(
                    "{} and {} are runs of different {what}s ({pointer}: {:?} and {:?}): only \
                     shards of the same `fetch` command merge",
                    first.name,
                    shard.name,
                    wanted.unwrap_or_default(),
                    shard.str_at(pointer).unwrap_or_default(),
                ));
            }
        }
    }
    Ok(())
}

fn merge_summaries(shards: &[Shard], wall: Duration) -> Result<Value, MergeError> {
    let sum = |key: &str| {
        checked_sum(
            shards.iter().map(|s| (s.name, s.u64_of(key))),
            &format!("summary.{key}"),
        )
    };
    let requests = sum("requests")?;
    let ok = sum("ok")?;
    let cancelled = sum("cancelled")?;
    let peak = sum("peak_concurrency")?;
    let cut_off = sum("cut_off")?;

    let mut histograms = Map::new();
    let mut percentiles = Map::new();
    for key in ["latency", "overhead"] {
        let mut merged = histogram::new_micros();
        for shard in shards {
            histogram::add(&mut merged, &shard.histogram(key)?)
                .map_err(|err| MergeError(format!("{}: {err}", shard.name)))?;
        }
        let max = shards
            .iter()
            .filter_map(|s| s.summary.get(key)?.get("max")?.as_f64())
            .fold(0.0, f64::max);
        percentiles.insert(key.into(), json!(histogram::percentiles(&merged, max)));
        histograms.insert(key.into(), json!(histogram::encode(&merged)));
    }

    // Errors by kind: counts add up, the first report's example stands.
    let mut errors: BTreeMap<String, (u64, Value)> = BTreeMap::new();
    for shard in shards {
        for error in shard
            .summary
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = error.get("kind").and_then(Value::as_str).unwrap_or("other");
            let count = error.get("count").and_then(Value::as_u64).unwrap_or(0);
            let example = || error.get("example").cloned().unwrap_or(Value::Null);
            let entry = errors.entry(kind.to_owned()).or_insert((0, Value::Null));
            if entry.1.is_null() {
                entry.1 = example();
            }
            entry.0 = checked_sum([("", entry.0), (shard.name, count)], "summary.errors")?;
        }
    }
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(kind, (count, example))| json!({"kind": kind, "count": count, "example": example}))
        .collect();
    let hints: BTreeSet<&str> = shards
        .iter()
        .flat_map(|s| {
            s.summary
                .get("hints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(Value::as_str)
        .collect();

    // The shards ran side by side, so the best the union could do is the slowest shard's best.
    // Shards of a closed-loop run for a time each sent what their time allowed: no best exists
    // for the union (each shard's own ideal is of what it happened to send), so there is none.
    let ideal = (!shards.iter().any(Shard::is_timed)).then(|| {
        shards
            .iter()
            .filter_map(|s| s.f64_of("ideal"))
            .fold(0.0, f64::max)
    });
    let wall_secs = wall.as_secs_f64();
    let efficiency = ideal.filter(|_| {
        shards
            .iter()
            .all(|s| s.summary.get("efficiency").is_some_and(|e| !e.is_null()))
            && wall_secs > 0.0
    });
    let efficiency = efficiency.map(|ideal| ideal / wall_secs);
    let slots = match shards
        .iter()
        .map(|s| Some((s.name, s.summary.get("slots").and_then(Value::as_u64)?)))
        .collect::<Option<Vec<_>>>()
    {
        Some(slots) => Some(checked_sum(slots, "summary.slots")?),
        None => None,
    };

    let mut summary = shards[0].summary.clone();
    let mut set = |key: &str, value: Value| {
        summary.insert(key.to_owned(), value);
    };
    set("requests", json!(requests));
    set("ok", json!(ok));
    set("failed", json!(requests.saturating_sub(ok)));
    set("cancelled", json!(cancelled));
    set("wall", json!(wall_secs));
    set(
        "sum_of_delays",
        json!(
            shards
                .iter()
                .filter_map(|s| s.f64_of("sum_of_delays"))
                .sum::<f64>()
        ),
    );
    set(
        "max_delay",
        json!(
            shards
                .iter()
                .filter_map(|s| s.f64_of("max_delay"))
                .fold(0.0, f64::max)
        ),
    );
    set("slots", json!(slots));
    set("ideal", json!(ideal));
    set("efficiency", json!(efficiency));
    set(
        "throughput",
        json!(if wall_secs > 0.0 {
            ok as f64 / wall_secs
        } else {
            0.0
        }),
    );
    // Without every request's times the union's peak is unknown; the sum of the shards' peaks is
    // an upper bound, and the outcomes (when kept) give the exact figure below.
    set("peak_concurrency", json!(peak));
    for (key, value) in percentiles {
        set(&key, value);
    }
    set("errors", json!(errors));
    set("hints", json!(hints));
    set("statuses", json!(merge_statuses(shards, &mut histograms)?));
    set("cut_off", json!(cut_off));
    let latency = shards
        .iter()
        .try_fold(histogram::new_micros(), |mut merged, shard| {
            histogram::add(&mut merged, &shard.histogram("latency")?)
                .map_err(|err| MergeError(format!("{}: {err}", shard.name)))?;
            Ok::<_, MergeError>(merged)
        })?;
    set(
        "latency_buckets",
        json!(slowlab_client::summary::buckets(&latency)),
    );
    let open_loop = merge_open_loop(shards, wall, &mut histograms)?;
    set("open_loop", open_loop);
    set("histograms", Value::Object(histograms));
    Ok(Value::Object(summary))
}

/// One HTTP status's responses, added up over the shards.
struct StatusTotal {
    count: u64,
    /// The sum of the shards' histograms of this code; `None` once a shard with responses of
    /// this code kept no histogram of them (a report from before they were kept).
    latency: Option<histogram::Histogram<u64>>,
    /// The largest latency of the code in any shard, exact.
    max: f64,
}

/// Responses by status: counts add up, and each code's latency percentiles come from the sum of
/// the shards' histograms of that code, so they equal one run's over the union. A code that some
/// shard counted without keeping its histogram (an older report) has latency `null`. The merged
/// histograms go into `histograms.statuses`.
fn merge_statuses(
    shards: &[Shard],
    histograms: &mut Map<String, Value>,
) -> Result<Vec<Value>, MergeError> {
    let mut totals: BTreeMap<u64, StatusTotal> = BTreeMap::new();
    for shard in shards {
        let saved = shard
            .summary
            .get("histograms")
            .and_then(|h| h.get("statuses"))
            .and_then(Value::as_object);
        for status in shard
            .summary
            .get("statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let code = status.get("status").and_then(Value::as_u64).unwrap_or(0);
            let count = status.get("count").and_then(Value::as_u64).unwrap_or(0);
            let max = status
                .pointer("/latency/max")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let total = totals.entry(code).or_insert_with(|| StatusTotal {
                count: 0,
                latency: Some(histogram::new_micros()),
                max: 0.0,
            });
            total.count = checked_sum(
                [("", total.count), (shard.name, count)],
                &format!("summary.statuses (status {code})"),
            )?;
            total.max = total.max.max(max);
            let text = saved.and_then(|saved| saved.get(&code.to_string())?.as_str());
            match (text, &mut total.latency) {
                (Some(text), Some(union)) => {
                    let decoded = histogram::decode(text).map_err(|err| {
                        MergeError(format!("{}: status {code}: {err}", shard.name))
                    })?;
                    histogram::add(union, &decoded)
                        .map_err(|err| MergeError(format!("{}: {err}", shard.name)))?;
                }
                _ => total.latency = None,
            }
        }
    }
    let mut saved = Map::new();
    let statuses = totals
        .into_iter()
        .map(|(code, total)| {
            let latency = total.latency.map(|union| {
                saved.insert(code.to_string(), json!(histogram::encode(&union)));
                json!(histogram::percentiles(&union, total.max))
            });
            json!({"status": code, "count": total.count, "latency": latency})
        })
        .collect();
    histograms.insert("statuses".into(), Value::Object(saved));
    Ok(statuses)
}

/// The open-loop block of shards of one open-loop run: latency from schedule and send lag from
/// their histograms (exact), rates and the numbers in flight added up (the shards ran side by
/// side), behind when any shard was. `null` unless every shard has one.
fn merge_open_loop(
    shards: &[Shard],
    wall: Duration,
    histograms: &mut Map<String, Value>,
) -> Result<Value, MergeError> {
    let blocks: Vec<&Map<String, Value>> = shards
        .iter()
        .filter_map(|s| s.summary.get("open_loop")?.as_object())
        .collect();
    if blocks.len() != shards.len() {
        return Ok(Value::Null);
    }
    let mut merged = blocks[0].clone();
    for key in ["from_schedule", "send_lag"] {
        let mut union = histogram::new_micros();
        for shard in shards {
            histogram::add(&mut union, &shard.histogram(key)?)
                .map_err(|err| MergeError(format!("{}: {err}", shard.name)))?;
        }
        let max = blocks
            .iter()
            .filter_map(|b| b.get(key)?.get("max")?.as_f64())
            .fold(0.0, f64::max);
        merged.insert(key.into(), json!(histogram::percentiles(&union, max)));
        histograms.insert(key.into(), json!(histogram::encode(&union)));
    }
    let total = |key: &str| {
        blocks
            .iter()
            .filter_map(|b| b.get(key)?.as_f64())
            .sum::<f64>()
    };
    for key in ["target_rate", "achieved_rate", "expected_in_flight"] {
        merged.insert(key.into(), json!(total(key)));
    }
    // Each shard's mean in flight is over its own wall time: weigh it back to busy seconds.
    let busy: f64 = shards
        .iter()
        .zip(&blocks)
        .filter_map(|(s, b)| Some(b.get("mean_in_flight")?.as_f64()? * s.wall.as_secs_f64()))
        .sum();
    let wall = wall.as_secs_f64();
    merged.insert(
        "mean_in_flight".into(),
        json!(if wall > 0.0 { busy / wall } else { 0.0 }),
    );
    let behind = blocks
        .iter()
        .any(|b| b.get("fell_behind").and_then(Value::as_bool) == Some(true));
    merged.insert("fell_behind".into(), json!(behind));
    Ok(Value::Object(merged))
}

/// Most outcomes whose `[start, end)` overlap at one moment, as `Summary` counts it for one run.
fn peak_concurrency(outcomes: &[Value]) -> u64 {
    let times = outcomes.iter().filter_map(|outcome| {
        let time = |key| outcome.get(key).and_then(Value::as_f64);
        Some((time("start")?, time("end")?))
    });
    slowlab_client::summary::peak_overlap(times) as u64
}

/// Every shard's outcomes, on one time axis (offsets from the earliest start), ordered by index;
/// `None` when any report left them out (`--no-outcomes`).
fn merge_outcomes(shards: &[Shard], started: SystemTime) -> Option<Vec<Value>> {
    let mut all = Vec::new();
    for shard in shards {
        let offset = shard
            .started
            .duration_since(started)
            .unwrap_or_default()
            .as_secs_f64();
        for outcome in shard.report.get("outcomes")?.as_array()? {
            let mut outcome = outcome.clone();
            for key in ["start", "end", "first_byte", "scheduled_at"] {
                if let Some(value) = outcome.get_mut(key)
                    && let Some(secs) = value.as_f64()
                {
                    *value = json!(secs + offset);
                }
            }
            all.push(outcome);
        }
    }
    all.sort_by_key(|o| o.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX));
    Some(all)
}

/// The reports named by `paths`: files, and in a directory every `*.json` file, in name order;
/// each at most `limit` bytes and checked before it is merged.
pub fn read_inputs(
    paths: &[std::path::PathBuf],
    limit: u64,
) -> Result<Vec<Input>, crate::UsageError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|err| crate::usage!("cannot read {}: {err}", path.display()))?;
            let mut found: Vec<_> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(crate::usage!("{} holds no .json report", path.display()));
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|file| {
            // Any report that cannot be merged, unreadable ones included, is a usage error here.
            let loaded = crate::report::load::load(&file, limit).map_err(|err| {
                err.downcast::<crate::UsageError>()
                    .unwrap_or_else(|err| crate::usage!("{err:#}"))
            })?;
            let name = loaded.name;
            if loaded.checked.kind != crate::report::saved::Kind::Fetch {
                return Err(crate::usage!(
                    "{name} is a race document; merge the reports of `fetch --shard I/N \
                     --output json`"
                ));
            }
            let report = report_value(&loaded.bytes).map_err(|err| {
                crate::usage!("{name} is not a JSON report (from `fetch --output json`): {err}")
            })?;
            Ok(Input { name, report })
        })
        .collect()
}

/// A report as a JSON value, but for `summary.latency_buckets`, which merge draws afresh from
/// the histograms: a report with a million buckets is not held as a million JSON objects.
fn report_value(bytes: &[u8]) -> serde_json::Result<Value> {
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

    /// The members of an object, leaving out `skip` and reading `summary` as [`Object`] that
    /// leaves out `latency_buckets`.
    struct Object {
        skip: Option<&'static str>,
    }
    impl<'de> DeserializeSeed<'de> for Object {
        type Value = Map<String, Value>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Object {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if Some(key.as_str()) == self.skip {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let value = if self.skip.is_none() && key == "summary" {
                    Value::Object(map.next_value_seed(Object {
                        skip: Some("latency_buckets"),
                    })?)
                } else {
                    map.next_value()?
                };
                members.insert(key, value);
            }
            Ok(members)
        }
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let members = Object { skip: None }.deserialize(&mut json)?;
    json.end()?;
    Ok(Value::Object(members))
}

/// `slowlab report merge PATHS`: the merged report as one line of JSON. Reports that cannot be
/// read or do not merge are a usage error naming the report and the reason.
pub fn merged_text(paths: &[std::path::PathBuf], limit: u64) -> anyhow::Result<String> {
    let inputs = read_inputs(paths, limit)?;
    let merged = merge(&inputs).map_err(|err| crate::UsageError(err.to_string()))?;
    let mut text = serde_json::to_string(&merged)?;
    text.push('\n');
    Ok(text)
}
