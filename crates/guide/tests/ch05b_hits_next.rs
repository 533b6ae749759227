//! Chapter 5b's program and the asyncio program beside it print the same story: the same
//! lines, with every time rounded down to the article's whole second.
//!
//! The Python needs only `python3` (asyncio is in its standard library); without it the
//! comparison skips with the reason, or fails when `SLOWLAB_REQUIRE_TOOLS=1`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{check_success, one_at_a_time, run_example_with, tools_required};

/// Larger than the other tests' scale: a time is checked to the article's whole second, which
/// leaves a busy machine 0.2 s of lateness per timer.
const SCALE: &str = "0.2";

const PYTHON: &str = "crates/guide/python/ch05b_hits_next.py";

/// What both programs print, each time rounded down to a whole second. Timers never ring
/// early, so rounding down is exact unless a timer is a whole (scaled) second late.
const EXPECTED: &str = "\
spawn: eggs done after 1 s
shared list: bacon, eggs, toast after 3 s
pool: toast by worker 1, ready 3 s after ordering
pool: eggs by worker 2, ready 1 s after ordering
pool: bacon by worker 2, ready 2 s after ordering
pool: 3 orders, 2 workers, all answered after 3 s
select: tea first, after 1 s, the other stopped
";

/// Rewrites every `N.N s` as the whole second below it: `2.1 s` becomes `2 s`.
fn whole_seconds(out: &str) -> String {
    let words: Vec<&str> = out.split(' ').collect();
    let mut rounded = Vec::with_capacity(words.len());
    for (index, word) in words.iter().enumerate() {
        let before_unit = words
            .get(index + 1)
            .is_some_and(|next| *next == "s" || next.starts_with("s,") || next.starts_with("s\n"));
        match word.parse::<f64>() {
            Ok(seconds) if before_unit => rounded.push(format!("{}", seconds.floor())),
            _ => rounded.push((*word).to_owned()),
        }
    }
    rounded.join(" ")
}

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_rust_program_spawns_shares_pools_and_selects() {
    let out = run_example_with("ch05b_hits_next", &[], &[("SLOWLAB_GUIDE_SCALE", SCALE)]);
    assert_eq!(whole_seconds(&out), EXPECTED, "as printed:\n{out}");
}

#[test]
fn the_python_beside_it_prints_the_same() {
    let probe = Command::new("python3").arg("--version").output();
    if !probe.is_ok_and(|output| output.status.success()) {
        let reason = "python3 does not run";
        assert!(!tools_required(), "{reason}");
        eprintln!("skipped: {reason}");
        return;
    }
    let _turn = one_at_a_time();
    let output = Command::new("python3")
        .arg(repo_root().join(PYTHON))
        .env("SLOWLAB_GUIDE_SCALE", SCALE)
        .output()
        .expect("python3 starts");
    check_success(PYTHON, &output);
    let out = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert_eq!(whole_seconds(&out), EXPECTED, "as printed:\n{out}");
}

#[test]
fn the_chapter_shows_parts_of_the_python_file() {
    let chapter = std::fs::read_to_string(
        repo_root().join("docs/guide/05b-what-a-python-developer-hits-next.md"),
    )
    .unwrap();
    let file = std::fs::read_to_string(repo_root().join(PYTHON)).unwrap();
    let mark = format!("<!-- python: {PYTHON} -->\n```python\n");
    let mut shown = 0;
    for (_, rest) in chapter
        .match_indices(&mark)
        .map(|(at, _)| chapter.split_at(at + mark.len()))
    {
        let block = &rest[..rest.find("```").expect("a closed block")];
        assert!(file.contains(block), "not a part of {PYTHON}:\n{block}");
        shown += 1;
    }
    assert!(
        shown >= 4,
        "each part of the chapter shows its Python ({shown} blocks)"
    );
}

#[test]
fn whole_seconds_rounds_down_only_times() {
    assert_eq!(
        whole_seconds("pool: bacon by worker 2, ready 2.9 s after 3 orders\nafter 1.0 s, the\n"),
        "pool: bacon by worker 2, ready 2 s after 3 orders\nafter 1 s, the\n"
    );
}

#[test]
fn the_programs_the_chapter_shows_failing_are_the_doc_tests() {
    let chapter = std::fs::read_to_string(
        repo_root().join("docs/guide/05b-what-a-python-developer-hits-next.md"),
    )
    .unwrap();
    let doc_tests: String =
        std::fs::read_to_string(repo_root().join("crates/guide/src/hits_next.rs"))
            .unwrap()
            .lines()
            .map(|line| {
                format!(
                    "{}\n",
                    line.strip_prefix("//! ")
                        .unwrap_or(line.trim_start_matches("//!"))
                )
            })
            .collect();
    let mut shown = 0;
    for block in chapter.split("```rust\n").skip(1) {
        let code = &block[..block.find("```").expect("a closed block")];
        if code.starts_with("#[tokio::main]") || code.starts_with("use std::sync::{Arc, Mutex};") {
            assert!(
                doc_tests.contains(&format!("```compile_fail\n{code}")),
                "not a compile_fail doc test in crates/guide/src/hits_next.rs:\n{code}"
            );
            shown += 1;
        }
    }
    assert_eq!(
        shown, 2,
        "the chapter shows the spawn error and the Send error"
    );
}
