//! The summary's breakdown by status and its latency histogram, against a real `slowlab serve`
//! answering mixed statuses (`status=` per request, through `--urls`).

mod common;

use std::time::Duration;

use common::{Served, assert_usage_error, run, stderr, stdout};

/// 60 answers of 200, 40 of 503 and 20 of 404, interleaved.
fn mixed_urls() -> tempfile_path::Path {
    let mut lines = String::new();
    for i in 0..120 {
        lines.push_str(match i % 6 {
            0 | 2 | 4 => "/0\n",
            1 | 5 => "/0.01?status=503\n",
            _ => "/0?status=404\n",
        });
    }
    tempfile_path::write(&lines)
}

/// A file of its own in the temporary directory, removed when dropped.
mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);

    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub fn write(text: &str) -> Path {
        let path =
            std::env::temp_dir().join(format!("slowlab-breakdown-{}.txt", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Path(path)
    }
}

#[test]
fn statuses_are_counted_by_code_in_json_and_text_with_a_histogram() {
    let mut served = Served::start(&[]);
    let base_url = served.base_url.clone();
    let urls = mixed_urls();
    let urls = urls.0.to_str().unwrap();
    let fetch = |extra: &[&str]| {
        let mut args = vec!["fetch", "--base-url", &base_url, "-q", "--urls", urls];
        args.extend_from_slice(extra);
        run(&args)
    };

    let output = fetch(&["-o", "json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "60 failed: {}",
        stderr(&output)
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let statuses: Vec<(u64, u64)> = doc["summary"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_u64().unwrap(), s["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(statuses, [(200, 60), (404, 20), (503, 40)]);
    let slow = &doc["summary"]["statuses"][2]["latency"];
    assert!(
        slow["p50"].as_f64().unwrap() >= 0.01,
        "the 503s waited 10 ms: {slow}"
    );
    let buckets = doc["summary"]["latency_buckets"].as_array().unwrap();
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(
        counted, 60,
        "the latency of the successful requests, each once"
    );

    let text = stdout(&fetch(&[]));
    for line in [
        "status 200: 60  p50",
        "status 404: 20  p50",
        "status 503: 40  p50",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(
        text.contains("latency histogram (upper bound, count):"),
        "{text}"
    );
    assert!(text.contains("█"), "{text}");
    let text = stdout(&fetch(&["--no-histogram"]));
    assert!(
        text.contains("status 503: 40") && !text.contains("latency histogram"),
        "{text}"
    );

    // A rule on a class or a code of status: crossed exits 3, naming what it measured.
    let output = fetch(&["--fail-on", "status-5xx>39"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("threshold status-5xx>39 crossed: measured 40"));
    let output = fetch(&["--fail-on", "status-404>20"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "not crossed; the failures still fail the run"
    );
    let output = fetch(&["--fail-on", "status-6xx>0"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    served.terminate();
    served.wait(Duration::from_secs(20));
}

#[test]
fn a_body_file_missing_or_a_directory_is_a_usage_error() {
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    for (args, says) in [
        (
            &["fetch", "--body-file", "/nonexistent/body.json", "1"][..],
            "--body-file /nonexistent/body.json: cannot read it",
        ),
        (&["fetch", "--body-file", dir, "1"], "is a directory"),
        (
            &["fetch", "--body", "x", "--body-file", "b.json", "1"],
            "cannot be used with",
        ),
        (
            &["fetch", "--urls", "-", "--body-file", "-"],
            "both read standard input",
        ),
        (
            &["fetch", "--content-type", "a\u{7f}b", "1"],
            "--content-type",
        ),
    ] {
        assert_usage_error(args, says);
    }
}
