//! Reports from real runs: the race JSON against its schema, the SVG parsed as XML (one bar per
//! request per mode, widths proportional to the measured durations, the ideal where it is), the
//! HTML self-contained, `slowlab report` drawing a saved document like the run did, and the
//! race's server models, repeats and workloads.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;

use common::{Served, run, stderr, stdout};

const SCHEMA: &str = include_str!("../../../docs/race.schema.json");

/// A fresh directory for one test's files, under the target directory so nothing lands in the tree.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_str().unwrap().to_owned()
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_valid(doc: &Value) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc}");
}

/// Every `src` and `href` value of an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\"", "src='", "href='"] {
        let quote = attr.chars().last().unwrap();
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            found.push(rest[..rest.find(quote).unwrap()].to_owned());
        }
    }
    found
}

fn attr(node: roxmltree::Node<'_, '_>, name: &str) -> f64 {
    node.attribute(name)
        .unwrap_or_else(|| panic!("no {name} on {node:?}"))
        .parse()
        .unwrap()
}

fn has_class(node: roxmltree::Node<'_, '_>, class: &str) -> bool {
    node.attribute("class")
        .is_some_and(|c| c.split(' ').any(|c| c == class))
}

#[test]
fn race_files_svg_bars_ideal_schema_and_a_self_contained_page() {
    let dir = scratch("race");
    let (json, svg, html) = (
        path(&dir, "race.json"),
        path(&dir, "race.svg"),
        path(&dir, "race.html"),
    );
    let delays = ["0.05", "0.2", "0.1", "0.15"];
    let mut args = vec!["race", "--modes", "sequential,async"];
    args.extend(delays);
    args.extend(["--json", &json, "--svg", &svg, "--report", &html]);
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("timeline:"),
        "the text still goes to the terminal"
    );
    assert!(!stdout(&output).contains('\x1b'), "no colour into a pipe");

    let doc = read_json(&json);
    assert_valid(&doc);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);

    let text = std::fs::read_to_string(&svg).unwrap();
    let tree = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let root = tree.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let (axis_end, left, width) = (
        attr(root, "data-axis-end"),
        attr(root, "data-plot-left"),
        attr(root, "data-plot-width"),
    );
    let x = |seconds: f64| left + seconds / axis_end * width;
    let walls: Vec<f64> = runs.iter().map(|r| r["wall"].as_f64().unwrap()).collect();
    assert!(
        walls.iter().all(|w| *w <= axis_end + 1e-9),
        "one common axis"
    );
    for run in runs {
        let label = run["label"].as_str().unwrap();
        let bars: Vec<_> = tree
            .descendants()
            .filter(|n| has_class(*n, "request") && n.attribute("data-run") == Some(label))
            .collect();
        assert_eq!(bars.len(), delays.len(), "one bar per request in {label}");
        for outcome in run["outcomes"].as_array().unwrap() {
            let index = outcome["index"].as_u64().unwrap().to_string();
            let bar = bars
                .iter()
                .find(|b| b.attribute("data-index") == Some(&index))
                .unwrap_or_else(|| panic!("{label} has no bar #{index}"));
            let span = bar
                .children()
                .find(|n| has_class(*n, "span"))
                .expect("a bar has its span");
            let (start, end) = (
                outcome["start"].as_f64().unwrap(),
                outcome["end"].as_f64().unwrap(),
            );
            assert!(
                (attr(span, "x") - x(start)).abs() <= 1.0,
                "{label} #{index} x"
            );
            let expected = (end - start) / axis_end * width;
            assert!(
                (attr(span, "width") - expected).abs() <= 1.0,
                "{label} #{index}: width {} for {expected}",
                attr(span, "width")
            );
        }
        let ideal = tree
            .descendants()
            .find(|n| has_class(*n, "ideal") && n.attribute("data-run") == Some(label))
            .unwrap_or_else(|| panic!("no ideal marker for {label}"));
        let expected = x(run["ideal"].as_f64().unwrap());
        assert!((attr(ideal, "x1") - expected).abs() <= 1.0, "{label} ideal");
    }
    // Sequential's ideal is the sum, async's the longest delay.
    assert!((runs[0]["ideal"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!((runs[1]["ideal"].as_f64().unwrap() - 0.2).abs() < 1e-9);

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "the timeline is inline");
    assert!(page.contains("prefers-color-scheme: dark"));
    assert!(!page.contains("<script"), "readable without script");
    for link in links(&page) {
        assert!(
            !link.starts_with("http://") && !link.starts_with("https://"),
            "external reference {link}"
        );
    }

    // One renderer: the saved document draws the same page, and shows the same runs.
    let again = run(&["report", "html", &json]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&again), page);
    let shown = run(&["report", "show", &json]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let machine = format!("machine: {}", std::env::consts::OS);
    for label in ["sequential", "async", machine.as_str()] {
        assert!(stdout(&shown).contains(label), "{}", stdout(&shown));
    }
}

#[test]
fn a_large_fetch_report_folds_and_a_document_without_outcomes_shows_percentiles() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let dir = scratch("fetch");
    let (html, json) = (path(&dir, "run.html"), path(&dir, "run.json"));
    let output = run(&[
        "fetch",
        "--count",
        "120",
        "--delay",
        "0.05",
        "--concurrency",
        "30",
        "--quiet",
        "--output",
        "json",
        "--base-url",
        &served.base_url,
        "--report",
        &html,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    for part in [
        "class=\"in-flight\"",
        "class=\"completions\"",
        "class=\"histogram",
        "the 10 slowest",
    ] {
        assert!(page.contains(part), "no {part} in a 120-request report");
    }
    let bars = page.matches("<g class=\"request").count();
    assert_eq!(bars, 10, "only the slowest are drawn one by one");

    // Saved without per-request outcomes, it draws the percentiles.
    let mut doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    doc.as_object_mut().unwrap().remove("outcomes");
    std::fs::write(&json, doc.to_string()).unwrap();
    let shown = run(&["report", "html", &json]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let page = stdout(&shown);
    assert!(
        page.contains("its latency percentiles and histogram"),
        "{page}"
    );
    assert!(
        page.contains("class=\"histogram"),
        "the saved histogram is drawn"
    );
    assert!(
        !page.contains("<g class=\"request"),
        "no bars without outcomes"
    );
    // Without its histograms too, the percentiles remain.
    doc["summary"].as_object_mut().unwrap().remove("histograms");
    std::fs::write(&json, doc.to_string()).unwrap();
    let shown = run(&["report", "html", &json]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("percentiles only"));

    // With text output the run keeps its outcomes for the report all the same.
    let text = run(&[
        "fetch",
        "--count",
        "50",
        "--delay",
        "0",
        "--quiet",
        "--base-url",
        &served.base_url,
        "--report",
        &html,
    ]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<g class=\"request").count(), 10, "{page}");

    // A run that keeps no outcomes reports its histogram.
    let quiet = run(&[
        "fetch",
        "--count",
        "50",
        "--delay",
        "0",
        "--no-outcomes",
        "--quiet",
        "--base-url",
        &served.base_url,
        "--report",
        &html,
    ]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("its latency percentiles and histogram"),
        "{page}"
    );

    let bad = run(&["report", "show", &html]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("not JSON"), "{}", stderr(&bad));
}

#[test]
fn compare_models_shows_a_blocking_server_serialising_the_async_client() {
    let dir = scratch("models");
    let json = path(&dir, "models.json");
    let output = run(&[
        "race",
        "--compare-models",
        "--count",
        "3",
        "--delay",
        "0.1",
        "--json",
        &json,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&json);
    assert_valid(&doc);
    let runs = doc["runs"].as_array().unwrap();
    let models: Vec<&str> = runs
        .iter()
        .map(|r| r["server_model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["async", "threads:40", "blocking"]);
    assert!(runs.iter().all(|r| r["mode"] == "async"));
    assert_eq!(runs[2]["label"], "async vs blocking");
    // The blocking server holds one request at a time: at least the sum, however async the client.
    assert!(runs[2]["wall"].as_f64().unwrap() >= 0.3);
    assert!(runs[0]["wall"].as_f64().unwrap() < runs[2]["wall"].as_f64().unwrap());
    assert!(stdout(&output).contains("async vs threads:40"));

    let refused = run(&[
        "race",
        "--compare-models",
        "--base-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let empty = run(&["race", "--count", "0"]);
    assert_eq!(empty.status.code(), Some(2), "{}", stderr(&empty));
}

#[test]
fn repeat_keeps_the_median_run_and_the_spread() {
    let dir = scratch("repeat");
    let json = path(&dir, "repeat.json");
    let output = run(&[
        "race", "--random", "4", "--seed", "3", "--scale", "0.02", "--repeat", "3", "--modes",
        "async", "--json", &json,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc = read_json(&json);
    assert_valid(&doc);
    let run0 = &doc["runs"][0];
    let repeat = &run0["repeat"];
    assert_eq!(repeat["runs"], 3);
    assert_eq!(repeat["walls"].as_array().unwrap().len(), 3);
    let (min, median, max) = (
        repeat["min"].as_f64().unwrap(),
        repeat["median"].as_f64().unwrap(),
        repeat["max"].as_f64().unwrap(),
    );
    assert!(min <= median && median <= max);
    assert_eq!(
        run0["wall"].as_f64().unwrap(),
        median,
        "the median run is shown"
    );
    assert!(stdout(&output).contains("median of 3"));
    // The same seed draws the same delays.
    let again = run(&[
        "race", "--random", "4", "--seed", "3", "--scale", "0.02", "--modes", "async", "--output",
        "json",
    ]);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["delays"], doc["delays"]);
}

#[test]
fn the_live_race_page_is_served_and_self_contained() {
    let served = Served::start(&["--drain-timeout", "0"]);
    let page = common::get(&served.addr, "/race");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("cache: \"no-store\""));
    for link in links(&page) {
        assert!(
            !link.starts_with("http://") && !link.starts_with("https://"),
            "external reference {link}"
        );
    }
    assert!(common::get(&served.addr, "/").contains("href=\"/race\""));
}

#[test]
fn report_files_that_cannot_be_written() {
    // A missing directory is a usage error found before anything runs.
    for command in [
        &["race", "0.01"][..],
        &["fetch", "--count", "1", "--delay", "0"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--report", "/nonexistent-slowlab-dir/r.html"]);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("/nonexistent-slowlab-dir does not exist"),
            "{}",
            stderr(&output)
        );
    }
    // A file that fails to write after the run: the text is shown all the same, and the exit
    // status says something went wrong.
    let dir = scratch("unwritable");
    let output = run(&[
        "race",
        "0.01",
        "--modes",
        "async",
        "--svg",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stdout(&output).contains("timeline:"));
    assert!(stderr(&output).contains("writing"), "{}", stderr(&output));
}

#[test]
fn the_terminal_timeline_is_coloured_on_a_terminal_unless_no_color() {
    // `script` runs the race on a pseudo-terminal, as a person would.
    if !common::tool_available("script") {
        return;
    }
    let on_a_terminal = |no_color: &str| {
        let command = format!(
            "env NO_COLOR={no_color} '{}' race 0.01 0.02 --modes sequential,async",
            env!("CARGO_BIN_EXE_slowlab")
        );
        let output = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stdout(&output));
        stdout(&output)
    };
    let coloured = on_a_terminal("");
    assert!(
        coloured.contains("\x1b[33m█"),
        "sequential in yellow: {coloured}"
    );
    assert!(coloured.contains("\x1b[36m█"), "async in cyan: {coloured}");
    let plain = on_a_terminal("1");
    assert!(plain.contains("timeline:"), "{plain}");
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain}");
}

#[test]
fn a_race_whose_requests_fail_still_gets_its_report() {
    let dir = scratch("failed");
    let (html, json) = (path(&dir, "failed.html"), path(&dir, "failed.json"));
    let base_url = format!("http://127.0.0.1:{}", common::closed_port());
    let output = run(&[
        "race",
        "0.01",
        "0.02",
        "--modes",
        "async",
        "--base-url",
        &base_url,
        "--report",
        &html,
        "--json",
        &json,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc = read_json(&json);
    assert_valid(&doc);
    assert_eq!(doc["runs"][0]["server_model"], Value::Null);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<g class=\"request failed\"").count(), 2);
    assert!(page.contains("n/a (failures)"));
}

#[test]
fn markup_in_a_saved_document_stays_text_in_the_report() {
    // A saved document is a file anyone may hand over: its strings are text, never markup.
    let dir = scratch("markup");
    let json = path(&dir, "markup.json");
    let output = run(&["race", "0.01", "--modes", "async", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let hostile = "<script>alert(1)</script>";
    doc["runs"][0]["label"] = hostile.into();
    doc["runs"][0]["outcomes"][0]["target"] = hostile.into();
    doc["base_url"] = format!("\"><img src=x onerror=alert(1)>{hostile}").into();
    std::fs::write(&json, doc.to_string()).unwrap();
    let shown = run(&["report", "html", &json]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let page = stdout(&shown);
    assert!(
        !page.contains("<script"),
        "markup from the document reached the page"
    );
    assert!(
        !page.contains("<img"),
        "markup from the document reached the page"
    );
    assert!(
        page.contains("&lt;script&gt;"),
        "the text is shown, escaped"
    );
}

#[test]
fn report_reads_standard_input_and_survives_a_closed_pipe() {
    let output = run(&["race", "0.01", "--modes", "async", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut child = common::slowlab()
        .args(["report", "show", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&output.stdout)
        .unwrap();
    let shown = child.wait_with_output().unwrap();
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("async"));

    // A reader that goes away early is no error, and nothing panics.
    let dir = scratch("pipe");
    let json = path(&dir, "race.json");
    std::fs::write(&json, &output.stdout).unwrap();
    let mut child = common::slowlab()
        .args(["report", "html", &json])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let ended = child.wait_with_output().unwrap();
    assert_eq!(ended.status.code(), Some(0), "{}", stderr(&ended));
    assert!(!stderr(&ended).contains("panicked"), "{}", stderr(&ended));

    let missing = run(&["report", "show", &path(&dir, "missing.json")]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "an unreadable file is not a usage error"
    );
}
