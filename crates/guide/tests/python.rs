//! The Python the chapters show, run under `python3` and checked beside the Rust it translates.
//!
//! The files are in `crates/guide/python/`; `chapters_match.rs` checks that each ```` ```python ````
//! block is part of its file. Tests whose packages are missing (aiohttp, requests, FastAPI, uvicorn:
//! `.ci/deps/guide.pip`) skip with the reason, or fail when `SLOWLAB_REQUIRE_TOOLS=1`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{check_success, example, one_at_a_time, run_example, tools_required};

/// The article's requested delays, in the order the clients send them.
const ARTICLE: [f64; 10] = [7.0, 2.0, 6.0, 4.0, 0.0, 9.0, 4.0, 2.0, 5.0, 5.0];

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// `python3` if it can import `modules`; else `None` after saying why the test skips.
fn python_with(modules: &[&str]) -> Option<Command> {
    let probe = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output();
    let reason = match probe {
        Ok(output) if output.status.success() => return Some(Command::new("python3")),
        Ok(output) => format!(
            "python3 cannot import {}: {} (pip install -r .ci/deps/guide.pip)",
            modules.join(", "),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Err(err) => format!("python3 does not run: {err}"),
    };
    assert!(!tools_required(), "{reason}");
    eprintln!("skipped: {reason}");
    None
}

fn run(mut python: Command, name: &str, args: &[&str], scale: &str) -> Output {
    let output = python
        .arg(script(name))
        .args(args)
        .env("SLOWLAB_GUIDE_SCALE", scale)
        .output()
        .expect("python3 runs");
    check_success(name, &output);
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// A server that prints `... http://HOST:PORT ...` as its first line, killed when dropped.
struct Server {
    child: Child,
    base_url: String,
}

impl Server {
    fn start(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base_url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Server { child, base_url }
    }

    /// Chapter 4's Rust server with its timer handler, which takes fractions of a second.
    fn rust() -> Server {
        let mut command = Command::new(example("ch04_slow_server"));
        command.args(["sleep", "0"]);
        Server::start(command)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `time_elapsed` of each line Python printed as a dict, in order.
fn echoes(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|line| line.strip_prefix("{'time_elapsed': "))
        .map(|rest| rest.trim_end_matches('}').parse().unwrap())
        .collect()
}

fn scaled(scale: f64) -> Vec<f64> {
    ARTICLE
        .iter()
        .map(|n| (n * scale * 1000.0).round() / 1000.0)
        .collect()
}

/// A `timedelta` as Python prints a positive one: `0:00:00.503211`.
fn timedelta_seconds(line: &str) -> f64 {
    let parts: Vec<&str> = line.split(':').collect();
    assert_eq!(parts.len(), 3, "{line:?} is not a timedelta");
    let hours: f64 = parts[0].parse().unwrap();
    let minutes: f64 = parts[1].parse().unwrap();
    let seconds: f64 = parts[2].parse().unwrap();
    hours * 3600.0 + minutes * 60.0 + seconds
}

#[test]
fn ch02_python_and_rust_print_the_same_wayfinder() {
    let Some(python) = python_with(&["asyncio"]) else {
        return;
    };
    let python_out = stdout(&run(python, "ch02_async_await.py", &[], "1"));
    let rust_out = run_example("ch02_async_await", &[]);
    assert_eq!(
        python_out,
        "The Emperor's Wayfinder is in the Imperial Vault\n"
    );
    assert_eq!(rust_out.lines().next(), python_out.lines().next());
}

#[test]
fn ch02_python_warns_at_run_time_about_a_coroutine_never_awaited() {
    let Some(python) = python_with(&["asyncio"]) else {
        return;
    };
    let output = run(python, "ch02_never_awaited.py", &[], "1");
    assert!(
        stdout(&output).starts_with("<coroutine object get_stuff_async at 0x"),
        "{}",
        stdout(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RuntimeWarning: coroutine 'get_stuff_async' was never awaited"),
        "{stderr}"
    );
}

#[test]
fn ch04_fastapi_runs_def_endpoints_on_a_pool_of_40_threads() {
    let Some(python) = python_with(&["anyio", "fastapi"]) else {
        return;
    };
    let out = stdout(&run(python, "ch04_thread_limit.py", &[], "1"));
    assert_eq!(out, "anyio's default thread limiter: 40 tokens\n");
}

#[test]
fn ch04_fastapi_server_sleeps_on_threads_and_refuses_a_fraction() {
    let Some(mut python) = python_with(&["fastapi", "uvicorn"]) else {
        return;
    };
    let _turn = one_at_a_time();
    python.arg(script("ch04_slow_server.py")).arg("0");
    let server = Server::start(python);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let answer: serde_json::Value = client
            .get(format!("{}/0", server.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({ "time_elapsed": 0 }));
        // `sleep: int`: the article's server takes whole seconds only.
        let refused = client
            .get(format!("{}/0.5", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422);
        // Four blocking 1 s sleeps at once: each on a pool thread, so about 1 s, not 4.
        let start = Instant::now();
        let requests = (0..4).map(|_| client.get(format!("{}/1", server.base_url)).send());
        for answer in futures::future::try_join_all(requests).await.unwrap() {
            assert_eq!(answer.status(), 200);
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(
            took < Duration::from_millis(3500),
            "four 1 s sleeps took {took:?}: not on separate threads"
        );
    });
}

#[test]
fn ch05_python_async_client_prints_answers_in_completion_order_like_rust() {
    let Some(python) = python_with(&["aiohttp"]) else {
        return;
    };
    // Scale 0.1, as for the Rust client: neighbouring delays 100 ms apart keep the order.
    let _turn = one_at_a_time();
    let server = Server::rust();
    let out = stdout(&run(
        python,
        "ch05_async_client.py",
        &[&server.base_url],
        "0.1",
    ));
    assert!(out.starts_with("[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]\n"), "{out}");
    let mut sorted = scaled(0.1);
    sorted.sort_by(f64::total_cmp);
    assert_eq!(echoes(&out), sorted, "{out}");
    let took = timedelta_seconds(out.lines().last().unwrap());
    assert!((0.9 - 0.005..0.75 * 4.4).contains(&took), "{out}");
}

#[test]
fn ch05_python_sync_client_prints_answers_in_request_order_and_takes_the_sum() {
    let Some(python) = python_with(&["requests"]) else {
        return;
    };
    let _turn = one_at_a_time();
    let server = Server::rust();
    let out = stdout(&run(
        python,
        "ch05_sync_client.py",
        &[&server.base_url],
        "0.05",
    ));
    assert!(out.starts_with("[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]\n"), "{out}");
    assert_eq!(echoes(&out), scaled(0.05), "{out}");
    let took = timedelta_seconds(out.lines().last().unwrap());
    assert!(took >= 44.0 * 0.05 - 0.005, "{out}");
}

#[test]
fn ch05_start_minus_now_is_a_negative_timedelta() {
    let Some(python) = python_with(&["datetime"]) else {
        return;
    };
    let out = stdout(&run(python, "ch05_sign_slip.py", &[], "1"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("-1 day, 23:59:5"), "{out}");
    assert!(timedelta_seconds(lines[1]) >= 0.05, "{out}");
}
