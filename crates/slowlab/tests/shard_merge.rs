//! `fetch --shard I/N` and `report merge`: shards of one workload, run as separate processes
//! against a real server, merge into the report of one run over the union.

mod common;

use std::collections::BTreeSet;

use common::{Served, assert_fetch_schema, assert_usage_error, closed_port, run, stderr, stdout};
use proptest::prelude::*;
use serde_json::Value;
use slowlab::merge::{self, Input};
use slowlab_client::histogram;

/// `slowlab fetch ARGS --output json` against `base_url`, parsed; every request must succeed.
fn fetch_json(base_url: &str, args: &[&str]) -> Value {
    fetch_report(base_url, args, &[0])
}

/// `slowlab fetch ARGS --output json`, parsed, for runs where some requests may fail (exit 1).
fn fetch_json_with_failures(base_url: &str, args: &[&str]) -> Value {
    fetch_report(base_url, args, &[0, 1])
}

/// `slowlab fetch ARGS --output json` against `base_url`, parsed, once its exit status is one
/// of `exits`.
fn fetch_report(base_url: &str, args: &[&str], exits: &[i32]) -> Value {
    let mut all = vec![
        "fetch",
        "--base-url",
        base_url,
        "--output",
        "json",
        "--quiet",
    ];
    all.extend_from_slice(args);
    let output = run(&all);
    assert!(
        output
            .status
            .code()
            .is_some_and(|code| exits.contains(&code)),
        "fetch {args:?}: {:?}: {}",
        output.status,
        stderr(&output)
    );
    serde_json::from_str(&stdout(&output)).expect("fetch writes one JSON document")
}

/// Runs shard I of N for every I, with the same arguments.
fn run_shards(base_url: &str, shards: u32, args: &[&str]) -> Vec<Input> {
    (0..shards)
        .map(|index| {
            let spec = format!("{index}/{shards}");
            let mut with_shard = args.to_vec();
            with_shard.extend_from_slice(&["--shard", &spec]);
            Input {
                name: format!("shard-{index}.json"),
                report: fetch_json(base_url, &with_shard),
            }
        })
        .collect()
}

/// Microseconds of a duration written as float seconds in a report, as the summary recorded it
/// (whole microseconds of the exact duration, at least 1).
fn micros(secs: f64) -> u64 {
    let nanos = (secs * 1e9).round() as u64;
    (nanos / 1000).max(1)
}

/// The histogram of `field` rebuilt from the shards' own outcomes.
fn rebuilt(inputs: &[Input], field: impl Fn(&Value) -> Option<f64>) -> histogram::Histogram<u64> {
    let mut rebuilt = histogram::new_micros();
    for input in inputs {
        for outcome in input.report["outcomes"].as_array().unwrap() {
            if let Some(secs) = field(outcome) {
                rebuilt.record(micros(secs)).unwrap();
            }
        }
    }
    rebuilt
}

fn recorded(histogram: &histogram::Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value()))
        .collect()
}

proptest! {
    // Each case starts N processes; a handful of cases covers shapes without slowing the suite.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn shards_merge_into_the_union(
        delays in prop::collection::vec(0u32..=20, 1..30),
        shards in 1u32..5,
        mode in prop::sample::select(vec!["sequential", "threads", "async"]),
    ) {
        let server = Served::start(&[]);
        let millis = delays;
        let delays: Vec<String> = millis.iter().map(|ms| format!("0.{ms:03}")).collect();
        let mut args: Vec<&str> = vec!["--mode", mode];
        args.extend(delays.iter().map(String::as_str));
        let inputs = run_shards(&server.base_url, shards, &args);

        let merged = merge::merge(&inputs).unwrap();
        assert_fetch_schema(&inputs[0].report);
        assert_fetch_schema(&merged);
        let summary = &merged["summary"];
        prop_assert_eq!(summary["requests"].as_u64(), Some(delays.len() as u64));
        prop_assert_eq!(summary["ok"].as_u64(), Some(delays.len() as u64));
        prop_assert_eq!(merged["workload"]["requests"].as_u64(), Some(delays.len() as u64));
        prop_assert_eq!(&merged["merged"]["complete"], &Value::Bool(true));

        // Every request exactly once, each with the target of its index in the whole workload.
        let outcomes = merged["outcomes"].as_array().unwrap();
        let indices: Vec<u64> = outcomes.iter().map(|o| o["index"].as_u64().unwrap()).collect();
        prop_assert_eq!(indices, (0..delays.len() as u64).collect::<Vec<_>>());
        for outcome in outcomes {
            let index = outcome["index"].as_u64().unwrap() as usize;
            prop_assert_eq!(outcome["delay"].as_f64(), Some(f64::from(millis[index]) / 1000.0));
        }

        // The merged histograms are those rebuilt from the shards' own outcomes.
        let latency = histogram::decode(summary["histograms"]["latency"].as_str().unwrap()).unwrap();
        let rebuilt_latency = rebuilt(&inputs, |o| o["latency"].as_f64());
        prop_assert_eq!(recorded(&latency), recorded(&rebuilt_latency));
        let overhead = histogram::decode(summary["histograms"]["overhead"].as_str().unwrap()).unwrap();
        let rebuilt_overhead = rebuilt(&inputs, |o| {
            Some((o["latency"].as_f64()? - o["delay"].as_f64()?).max(0.0))
        });
        prop_assert_eq!(latency.len(), delays.len() as u64);
        prop_assert_eq!(overhead.len(), rebuilt_overhead.len());
        // And so are the percentiles, the largest latency being the largest any shard saw.
        let max = inputs
            .iter()
            .map(|i| i.report["summary"]["latency"]["max"].as_f64().unwrap())
            .fold(0.0, f64::max);
        prop_assert_eq!(&summary["latency"], &serde_json::json!(histogram::percentiles(&rebuilt_latency, max)));
    }
}

#[test]
fn a_report_records_its_shard_host_and_start() {
    let server = Served::start(&[]);
    let report = fetch_json(&server.base_url, &["--shard", "1/3", "0", "0", "0", "0"]);
    assert_eq!(
        report["schema_version"].as_u64(),
        Some(merge::SCHEMA_VERSION)
    );
    assert_eq!(report["shard"]["index"].as_u64(), Some(1));
    assert_eq!(report["shard"]["count"].as_u64(), Some(3));
    assert_eq!(report["shard"]["whole_requests"].as_u64(), Some(4));
    // Requests 1 of the four: shard 1 of 3 sends only index 1.
    let indices: Vec<u64> = report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [1]);
    let started = report["started_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(started).is_ok(), "{started}");
    assert!(started.ends_with('Z') && started.contains('.'), "{started}");
    assert!(!report["host"].as_str().unwrap().is_empty());
    assert_eq!(report["workload"]["digest"].as_str().unwrap().len(), 64);
}

#[test]
fn reports_that_do_not_belong_together_are_refused_with_the_reason() {
    let server = Served::start(&[]);
    let url = &server.base_url;
    let a = fetch_json(url, &["--shard", "0/2", "0", "0.001"]);
    let b = fetch_json(url, &["--shard", "1/2", "0", "0.001"]);
    let other = fetch_json(url, &["--shard", "1/2", "0", "0.002"]);
    let third = fetch_json(url, &["--shard", "1/3", "0", "0.001"]);
    let whole = fetch_json(url, &["0", "0.001"]);
    let input = |name: &str, report: &Value| Input {
        name: name.to_owned(),
        report: report.clone(),
    };
    let refusal = |inputs: &[Input]| merge::merge(inputs).unwrap_err().to_string();

    let message = refusal(&[input("a", &a), input("other", &other)]);
    assert!(message.contains("different workload"), "{message}");
    let message = refusal(&[input("a", &a), input("a again", &a)]);
    assert!(message.contains("appears twice"), "{message}");
    let message = refusal(&[input("a", &a), input("third", &third)]);
    assert!(message.contains("share N"), "{message}");
    let message = refusal(&[input("whole", &whole)]);
    assert!(message.contains("not a sharded run"), "{message}");

    // The right pair merges, and a part of the shards merges as incomplete.
    let merged = merge::merge(&[input("a", &a), input("b", &b)]).unwrap();
    assert_eq!(merged["summary"]["requests"].as_u64(), Some(2));
    let part = merge::merge(&[input("a", &a)]).unwrap();
    assert_eq!(part["merged"]["complete"], Value::Bool(false));
    let shards: BTreeSet<u64> = merged["shard"]["indices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(shards, BTreeSet::from([0, 1]));
}

#[test]
fn shards_of_an_open_loop_run_merge_their_schedule_statuses_and_histograms() {
    let mut served = Served::start(&[]);
    let base_url = served.base_url.clone();
    let args = ["--rate", "60", "--duration", "0.5s", "0", "0.02"];
    let shards = run_shards(&base_url, 2, &args);
    for shard in &shards {
        assert_fetch_schema(&shard.report);
        assert_eq!(shard.report["workload"]["requests"], 15);
    }
    let merged = merge::merge(&shards).unwrap();
    assert_fetch_schema(&merged);
    let summary = &merged["summary"];
    assert_eq!(summary["requests"], 30);
    assert_eq!(summary["statuses"][0]["status"], 200);
    assert_eq!(summary["statuses"][0]["count"], 30);
    assert_eq!(summary["statuses"][0]["latency"]["count"], 30);
    let open = &summary["open_loop"];
    assert_eq!(open["from_schedule"]["count"], 30);
    assert_eq!(open["send_lag"]["count"], 30);
    let target = open["target_rate"].as_f64().unwrap();
    assert!((target - 60.0).abs() < 1.0, "two shards of 30/s: {target}");
    let counted: u64 = summary["latency_buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 30);
    // On the merged time axis each outcome keeps its send lag, and its place in the whole
    // schedule: a shard's requests k and k + 2 were due 2 / 60 s apart.
    let outcomes = merged["outcomes"].as_array().unwrap();
    let time = |o: &Value, key: &str| o[key].as_f64().unwrap();
    for outcome in outcomes {
        let lag = time(outcome, "start") - time(outcome, "scheduled_at");
        assert!((lag - time(outcome, "send_lag")).abs() < 1e-5, "{outcome}");
    }
    for pair in outcomes.windows(3) {
        let step = time(&pair[2], "scheduled_at") - time(&pair[0], "scheduled_at");
        assert!((step - 2.0 / 60.0).abs() < 1e-5, "{} {}", pair[0], pair[2]);
    }
    served.terminate();
    served.wait(std::time::Duration::from_secs(20));
}

#[test]
fn report_merge_and_show_from_the_command_line() {
    let server = Served::start(&[]);
    let dir = std::env::temp_dir().join(format!("slowlab-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for index in 0..3 {
        let report = fetch_json(
            &server.base_url,
            &[
                "--count",
                "7",
                "--delay",
                "0.01",
                "--no-outcomes",
                "--shard",
                &format!("{index}/3"),
            ],
        );
        std::fs::write(dir.join(format!("shard-{index}.json")), report.to_string()).unwrap();
    }
    let dir_arg = dir.to_str().unwrap();

    // A directory of shards merges; the result is a report `report show` reads.
    let merged = run(&["report", "merge", dir_arg]);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let doc: Value = serde_json::from_str(&stdout(&merged)).unwrap();
    assert_fetch_schema(&doc);
    assert_eq!(doc["summary"]["requests"].as_u64(), Some(7));
    assert_eq!(doc["summary"]["ok"].as_u64(), Some(7));
    let merged_file = dir.join("merged.out");
    std::fs::write(&merged_file, stdout(&merged)).unwrap();
    let shown = run(&["report", "show", merged_file.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(
        stdout(&shown).contains("3 of 3 merged"),
        "{}",
        stdout(&shown)
    );

    // The same shard twice is a usage error that says why.
    let shard = dir.join("shard-0.json");
    let twice = run(&[
        "report",
        "merge",
        shard.to_str().unwrap(),
        shard.to_str().unwrap(),
    ]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        stderr(&twice).contains("appears twice"),
        "{}",
        stderr(&twice)
    );
    let missing = run(&[
        "report",
        "merge",
        dir.join("nothing.json").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_of_a_closed_loop_run_for_a_time_share_the_concurrency_and_merge_without_an_ideal() {
    let server = Served::start(&[]);
    let url = &server.base_url;
    let args = |spec: &str, k: &str| {
        vec![
            "--duration",
            "1s",
            "--concurrency",
            k,
            "--shard",
            spec,
            "0.05",
            "0.02",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let shard = |spec: &str, k: &str| {
        let args = args(spec, k);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fetch_json(url, &args)
    };
    // Both shards run side by side for the whole second, as they would on two hosts.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| shard("0/2", "3"));
        let b = scope.spawn(|| shard("1/2", "3"));
        (a.join().unwrap(), b.join().unwrap())
    });
    for report in [&a, &b] {
        assert_fetch_schema(report);
        assert!(
            report["shard"]["whole_requests"].is_null(),
            "{}",
            report["shard"]
        );
        assert_eq!(report["shard"]["concurrency"]["whole"], 3);
        let share = report["shard"]["concurrency"]["share"].as_u64().unwrap();
        // Each shard kept to its share: never more in flight than it.
        let peak = report["summary"]["peak_concurrency"].as_u64().unwrap();
        assert!(peak <= share, "peak {peak} over share {share}");
        assert!(report["summary"]["requests"].as_u64().unwrap() > 0);
    }
    // K = 3 over two shards: 2 for shard 0, 1 for shard 1.
    assert_eq!(a["shard"]["concurrency"]["share"], 2);
    assert_eq!(b["shard"]["concurrency"]["share"], 1);
    assert_eq!(a["workload"]["digest"], b["workload"]["digest"]);

    let input = |name: &str, report: &Value| Input {
        name: name.to_owned(),
        report: report.clone(),
    };
    let merged = merge::merge(&[input("a", &a), input("b", &b)]).unwrap();
    assert_fetch_schema(&merged);
    let count = |doc: &Value| doc["summary"]["requests"].as_u64().unwrap();
    assert_eq!(count(&merged), count(&a) + count(&b));
    assert_eq!(
        merged["workload"]["requests"].as_u64(),
        Some(count(&a) + count(&b))
    );
    assert_eq!(merged["shard"]["concurrency"]["whole"], 3);
    assert_eq!(merged["shard"]["concurrency"]["share"], 3);
    assert_eq!(merged["summary"]["slots"], 3);
    assert!(
        merged["summary"]["ideal"].is_null(),
        "{}",
        merged["summary"]
    );
    assert!(merged["summary"]["efficiency"].is_null());
    // Every request once: the shards' indices never meet.
    let outcomes = merged["outcomes"].as_array().unwrap();
    let indices: BTreeSet<u64> = outcomes
        .iter()
        .map(|o| o["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices.len() as u64, count(&merged));

    // The text summary says there is no ideal, rather than a made-up one.
    let dir = std::env::temp_dir().join(format!("slowlab-timed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("merged.json");
    std::fs::write(&file, merged.to_string()).unwrap();
    let shown = run(&["report", "show", file.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(
        text.contains("none") && text.contains("n/a (no ideal)"),
        "{text}"
    );
    assert!(text.contains("2 of 2 merged"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Still refused: the same shard twice, another N, another K.
    let refusal = |inputs: &[Input]| merge::merge(inputs).unwrap_err().to_string();
    let message = refusal(&[input("a", &a), input("a again", &a)]);
    assert!(message.contains("appears twice"), "{message}");
    let third = shard("1/3", "3");
    let message = refusal(&[input("a", &a), input("third", &third)]);
    assert!(message.contains("share N"), "{message}");
    let other_k = shard("1/2", "4");
    let message = refusal(&[input("a", &a), input("other K", &other_k)]);
    assert!(message.contains("different workload"), "{message}");
}

#[test]
fn a_shard_of_a_run_for_a_time_with_no_share_of_the_concurrency_is_refused() {
    let output = run(&[
        "fetch",
        "--base-url",
        "http://127.0.0.1:9",
        "--duration",
        "1s",
        "--concurrency",
        "2",
        "--shard",
        "2/3",
        "0.05",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    for needed in ["--shard 2/3", "--concurrency 2", "at least 3", "e.g."] {
        assert!(message.contains(needed), "{needed}: {message}");
    }
}

/// Random delays drawn in each shard would make shards of different workloads, which merge
/// refuses after the fact: without --seed they are refused up front, and with it every shard
/// draws the same list.
#[test]
fn shards_of_random_delays_need_a_seed() {
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    for args in [
        &["--shard", "0/2"][..],
        &["--random", "20", "--shard", "1/2"],
    ] {
        let mut full = vec!["fetch", "--base-url", &nowhere];
        full.extend_from_slice(args);
        assert_usage_error(&full, "give --seed S");
    }
    // Nothing listens there: the requests fail at once, and the report still says what the
    // workload was.
    let digest = |spec: &str| {
        let args = ["--random", "6", "--seed", "7", "--shard", spec];
        fetch_json_with_failures(&nowhere, &args)["workload"]["digest"].clone()
    };
    let (a, b) = (digest("0/2"), digest("1/2"));
    assert!(a.is_string(), "{a}");
    assert_eq!(a, b);
}

/// The latency histogram of the outcomes with `status`, rebuilt from the shards' own outcomes.
fn rebuilt_status(inputs: &[Input], status: u64) -> histogram::Histogram<u64> {
    rebuilt(inputs, |o| {
        (o["status"].as_u64() == Some(status))
            .then(|| o["latency"].as_f64())
            .flatten()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn each_status_merges_into_the_percentiles_of_the_union(
        requests in prop::collection::vec((0u32..=15, prop::sample::select(vec![200u16, 201, 404, 503])), 1..25),
        shards in 1u32..4,
    ) {
        let server = Served::start(&[]);
        let dir = std::env::temp_dir().join(format!(
            "slowlab-statuses-{}-{}",
            std::process::id(),
            requests.len() * 10 + shards as usize
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let urls = dir.join("urls.txt");
        let lines: Vec<String> = requests
            .iter()
            .map(|(ms, status)| format!("/0.{ms:03}?status={status}"))
            .collect();
        std::fs::write(&urls, lines.join("\n")).unwrap();
        let inputs: Vec<Input> = (0..shards)
            .map(|index| Input {
                name: format!("shard-{index}.json"),
                report: fetch_json_with_failures(
                    &server.base_url,
                    &["--urls", urls.to_str().unwrap(), "--shard", &format!("{index}/{shards}")],
                ),
            })
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();

        let merged = merge::merge(&inputs).unwrap();
        assert_fetch_schema(&merged);
        let statuses = merged["summary"]["statuses"].as_array().unwrap();
        let codes: BTreeSet<u64> = requests.iter().map(|&(_, s)| u64::from(s)).collect();
        prop_assert_eq!(statuses.len(), codes.len());
        for entry in statuses {
            let code = entry["status"].as_u64().unwrap();
            let wanted = requests.iter().filter(|&&(_, s)| u64::from(s) == code).count();
            prop_assert_eq!(entry["count"].as_u64(), Some(wanted as u64));
            // The merged histogram is the one rebuilt from the shards' outcomes of that code...
            let saved = merged["summary"]["histograms"]["statuses"][code.to_string()]
                .as_str()
                .unwrap();
            let union = histogram::decode(saved).unwrap();
            let rebuilt = rebuilt_status(&inputs, code);
            prop_assert_eq!(recorded(&union), recorded(&rebuilt));
            // ...and so are its percentiles, the largest being the largest any shard saw.
            let max = inputs
                .iter()
                .flat_map(|i| i.report["summary"]["statuses"].as_array().unwrap().clone())
                .filter(|s| s["status"].as_u64() == Some(code))
                .map(|s| s["latency"]["max"].as_f64().unwrap())
                .fold(0.0, f64::max);
            prop_assert_eq!(
                &entry["latency"],
                &serde_json::json!(histogram::percentiles(&rebuilt, max))
            );
        }
    }
}

#[test]
fn reports_without_status_histograms_still_merge_with_that_latency_null() {
    let server = Served::start(&[]);
    let mut inputs = run_shards(&server.base_url, 2, &["0", "0.001", "0.002"]);
    // A report from before the per-status histograms were kept.
    inputs[1].report["summary"]["histograms"]
        .as_object_mut()
        .unwrap()
        .remove("statuses");
    let merged = merge::merge(&inputs).unwrap();
    assert_fetch_schema(&merged);
    let ok = &merged["summary"]["statuses"][0];
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["count"], 3);
    assert!(ok["latency"].is_null(), "{ok}");
    assert!(
        merged["summary"]["histograms"]["statuses"]
            .get("200")
            .is_none()
    );
}
