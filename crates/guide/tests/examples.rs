//! Every chapter's example, run as built, with its output checked: structure, not tight timings.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    TEST_SCALE, check_success, example, number_after, one_at_a_time, profile_dir, run_example,
    run_example_with, tools_required,
};

fn scale() -> f64 {
    TEST_SCALE.parse().unwrap()
}

/// The article's requested delays.
const ARTICLE: [f64; 10] = [7.0, 2.0, 6.0, 4.0, 0.0, 9.0, 4.0, 2.0, 5.0, 5.0];

#[test]
fn ch01_joined_timers_take_the_longer_and_timers_in_turn_the_sum() {
    // A larger scale than the others: the stirring must last long enough for the second worker
    // thread to wake up and take its pot, even on a busy machine.
    let out = run_example_with(
        "ch01_waiting_vs_working",
        &[],
        &[("SLOWLAB_GUIDE_SCALE", "0.1")],
    );
    let eggs = number_after(&out, "timers: eggs ");
    let bacon = number_after(&out, ", bacon ");
    let joined = number_after(&out, "joined timers took ");
    let in_turn = number_after(&out, "timers in turn took ");
    let (longer, sum) = (eggs.max(bacon), eggs + bacon);
    // Timers never ring early; "about the longer" is a ratio with room for a busy machine.
    assert!(joined >= longer - 0.002, "{out}");
    assert!(
        joined < 0.75 * sum,
        "joined timers should take about the longer:\n{out}"
    );
    assert!(in_turn >= sum - 0.002, "{out}");
    assert!(
        out.contains("stirring joined on one thread took") && out.contains("overlapped: false"),
        "CPU work joined on one thread must take turns:\n{out}"
    );
    let spawned = out
        .lines()
        .find(|line| line.starts_with("stirring spawned on two threads"))
        .expect("the multi-thread line");
    assert!(spawned.ends_with("overlapped: true"), "{out}");
}

#[test]
fn ch02_prints_the_wayfinder_and_an_unawaited_future_does_nothing() {
    let out = run_example("ch02_async_await", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "The Emperor's Wayfinder is in the Imperial Vault",
            "toast popped without .await: false",
            "toast popped with .await: true",
        ]
    );
}

#[test]
fn ch03_hand_written_executor_runs_joined_timers_concurrently() {
    // Timers of 1 s and 2 s leave only a sixth of their sum between "the longer" and "three
    // quarters of the sum": a larger scale keeps that margin above a busy machine's noise.
    let out = run_example_with("ch03_event_loop", &[], &[("SLOWLAB_GUIDE_SCALE", "0.25")]);
    assert!(
        out.contains("current-thread runtime: a spawned task ran on main\n"),
        "{out}"
    );
    assert!(
        out.contains("multi-thread runtime: a spawned task ran on tokio-worker\n"),
        "{out}"
    );
    assert!(
        out.contains("timer created, not polled: started = false\n"),
        "{out}"
    );
    let short = number_after(&out, "joined timers of ");
    let long = number_after(&out, " s and ");
    let took = number_after(&out, " s in ");
    let polls = number_after(&out, "polling ");
    assert!(took >= long.max(short) - 0.002, "{out}");
    assert!(
        took < 0.75 * (short + long),
        "the timers ran one after the other:\n{out}"
    );
    // One poll to start, one per wake-up, perhaps one after an early return from park: a busy
    // loop would poll thousands of times.
    assert!((2.0..=5.0).contains(&polls), "{out}");
}

/// A `ch04_slow_server` process on a free port, killed when dropped.
struct ServerProcess {
    child: Child,
    base_url: String,
}

impl ServerProcess {
    fn start(handler: &str) -> ServerProcess {
        let mut child = Command::new(example("ch04_slow_server"))
            .args([handler, "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the chapter 4 server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base_url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        assert!(
            line.ends_with(&format!("with the {handler} handler\n")),
            "{line:?}"
        );
        ServerProcess { child, base_url }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends four requests of 0.1 s at once and returns how long they took together.
fn four_at_once(base_url: &str) -> Duration {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let start = Instant::now();
        let requests = (0..4).map(|_| {
            let request = client.get(format!("{base_url}/0.1"));
            async move {
                let answer: serde_json::Value = request.send().await?.json().await?;
                assert_eq!(answer, serde_json::json!({ "time_elapsed": 0.1 }));
                reqwest::Result::Ok(())
            }
        });
        futures::future::try_join_all(requests).await.unwrap();
        start.elapsed()
    })
}

#[test]
fn ch04_a_blocking_sleep_serialises_the_event_loop_and_the_others_do_not() {
    let _turn = one_at_a_time();
    for (handler, serialised) in [
        ("sleep", false),
        ("blocking", true),
        ("spawn-blocking", false),
    ] {
        let server = ServerProcess::start(handler);
        let took = four_at_once(&server.base_url).as_secs_f64();
        if serialised {
            assert!(
                took >= 0.4 - 0.005,
                "{handler}: four 0.1 s waits took {took} s"
            );
        } else {
            assert!(
                took < 0.3,
                "{handler}: four 0.1 s waits took {took} s, not about 0.1 s"
            );
        }
    }
}

#[test]
fn ch04_server_answers_bad_delays_with_a_json_400() {
    let _turn = one_at_a_time();
    let server = ServerProcess::start("sleep");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Numbers that are no duration: the handler's own JSON error.
        for path in ["/-1", "/NaN", "/inf"] {
            let answer = reqwest::get(format!("{}{path}", server.base_url))
                .await
                .unwrap();
            assert_eq!(answer.status(), 400, "{path}");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["error"], "bad_delay", "{path}: {body}");
            assert!(
                body["detail"].as_str().unwrap().contains("/0.5"),
                "{path}: {body}"
            );
        }
        // Not a number at all: axum's `Path` extractor refuses it before the handler runs.
        let answer = reqwest::get(format!("{}/soon", server.base_url))
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);
        assert!(answer.text().await.unwrap().contains("soon"));
    });
}

/// The chapter's `slowlab race --base-url` against each handler, at a small scale.
#[test]
fn ch04_slowlab_race_against_each_handler() {
    let slowlab = profile_dir().join(format!("slowlab{}", std::env::consts::EXE_SUFFIX));
    if !slowlab.is_file() {
        let reason = format!(
            "{} is not built (`cargo build -p slowlab`)",
            slowlab.display()
        );
        assert!(!tools_required(), "{reason}");
        eprintln!("skipped: {reason}");
        return;
    }
    let _turn = one_at_a_time();
    for (handler, serialised) in [
        ("sleep", false),
        ("blocking", true),
        ("spawn-blocking", false),
    ] {
        let server = ServerProcess::start(handler);
        let svg = std::env::temp_dir().join(format!(
            "slowlab-guide-ch04-{handler}-{}.svg",
            std::process::id()
        ));
        let output = Command::new(&slowlab)
            .args([
                "race",
                "--base-url",
                &server.base_url,
                "--modes",
                "sequential,async",
            ])
            .args(["--scale", "0.02", "--output", "json", "--svg"])
            .arg(&svg)
            .output()
            .expect("slowlab runs");
        check_success("slowlab race", &output);
        // The chapter's picture of this race is what `slowlab race --svg` draws today: the same
        // elements in the same order, only the times (and so the positions) differ.
        let drawn = std::fs::read_to_string(&svg).unwrap();
        let _ = std::fs::remove_file(&svg);
        let committed = picture(&format!("ch04-handler-{handler}.svg"));
        assert_eq!(
            svg_skeleton(&committed),
            svg_skeleton(&drawn),
            "docs/guide/images/ch04-handler-{handler}.svg is no longer what `slowlab race --svg` \
             draws: re-run crates/guide/measure 4"
        );
        let race: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let sum = race["sum_of_delays"].as_f64().unwrap();
        let runs = race["runs"].as_array().unwrap();
        let wall = |mode: &str| {
            let run = runs.iter().find(|run| run["mode"] == mode).unwrap();
            assert_eq!(run["ok"], 10, "{handler}: {run}");
            run["wall"].as_f64().unwrap()
        };
        assert!(wall("sequential") >= sum - 0.005, "{handler}");
        if serialised {
            assert!(
                wall("async") >= sum - 0.005,
                "{handler}: async should take the sum"
            );
        } else {
            assert!(
                wall("async") < 0.6 * sum,
                "{handler}: async should take about the max"
            );
        }
    }
}

/// A committed picture of the guide, `docs/guide/images/NAME`.
fn picture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/guide/images")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// An SVG's opening elements and their classes, in order, without the ones whose number follows
/// the run's length (axis ticks and their labels).
fn svg_skeleton(svg: &str) -> Vec<String> {
    svg.split('<')
        .skip(1)
        .filter_map(|element| {
            let name: String = element
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
                .collect();
            let class = element
                .split_once("class=\"")
                .map(|(_, rest)| rest.split('"').next().unwrap_or_default())
                .unwrap_or_default();
            let tag = format!("{name}.{class}");
            let counted = !name.starts_with('/') && !matches!(class, "tick" | "small");
            counted.then_some(tag)
        })
        .collect()
}

/// The JSON answers an example printed, in the order printed, as their `time_elapsed`.
fn echoes(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|value| value.get("time_elapsed").and_then(|t| t.as_f64()))
        .collect()
}

fn article_scaled(scale: f64) -> Vec<f64> {
    ARTICLE
        .iter()
        .map(|n| (n * scale * 1000.0).round() / 1000.0)
        .collect()
}

fn is_timedelta(line: &str) -> bool {
    // H:MM:SS.ffffff, never negative.
    let parts: Vec<&str> = line.split(':').collect();
    parts.len() == 3
        && parts[0].chars().all(|c| c.is_ascii_digit())
        && parts[1].len() == 2
        && parts[2].len() == 9
        && parts[2].as_bytes()[2] == b'.'
}

#[test]
fn ch05_async_client_prints_answers_in_completion_order() {
    // Neighbouring delays differ by one article second: at scale 0.1 that is 100 ms, enough for
    // the order of arrival to be the order of delay even on a busy machine.
    let out = run_example_with("ch05_async_client", &[], &[("SLOWLAB_GUIDE_SCALE", "0.1")]);
    assert!(out.starts_with("[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]\n"), "{out}");
    let printed = echoes(&out);
    let mut sorted = article_scaled(0.1);
    sorted.sort_by(f64::total_cmp);
    assert_eq!(
        printed, sorted,
        "answers should arrive shortest first:\n{out}"
    );
    let elapsed = out.lines().nth(11).unwrap();
    assert!(
        is_timedelta(elapsed),
        "{elapsed:?} is not a positive timedelta"
    );
    let in_order = out.lines().last().unwrap();
    let expected: Vec<String> = article_scaled(0.1).iter().map(f64::to_string).collect();
    assert_eq!(
        in_order,
        format!("try_join_all, in request order: [{}]", expected.join(", "))
    );
}

#[test]
fn ch05_sync_client_prints_answers_in_request_order_and_takes_the_sum() {
    let out = run_example("ch05_sync_client", &[]);
    assert!(out.starts_with("[7, 2, 6, 4, 0, 9, 4, 2, 5, 5]\n"), "{out}");
    assert_eq!(echoes(&out), article_scaled(scale()), "{out}");
    let elapsed = out.lines().last().unwrap();
    assert!(is_timedelta(elapsed), "{elapsed:?}");
    let seconds: f64 = elapsed.rsplit(':').next().unwrap().parse().unwrap();
    assert!(seconds >= 44.0 * scale() - 0.005, "{out}");
}

#[test]
fn ch06_timeout_and_select_cancel_and_the_server_stops_waiting() {
    let out = run_example("ch06_cancellation", &[]);
    // The figures printed are the scaled waits, not the article's seconds.
    let (long, short) = (
        Duration::from_secs_f64(4.0 * scale()),
        Duration::from_secs_f64(scale()),
    );
    assert!(
        out.contains(&format!(
            "timeout: gave up on the {long:?} request after {short:?}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("select: the {short:?} request won\n")),
        "{out}"
    );
    // The timed-out request and the select's loser: both cancelled on the server, none waiting.
    let cancelled = number_after(&out, "outcome=\"cancelled\"} ");
    assert!(cancelled >= 2.0, "{out}");
    assert!(out.contains("server: slowlab_in_flight 0\n"), "{out}");
    assert!(out.contains("after a careless cancel: 1\n"), "{out}");
    assert!(out.contains("after a careful cancel: 0\n"), "{out}");
}

#[test]
fn ch07_walls_meet_their_ideals_and_bounded_runs_take_longer() {
    // At scale 0.1, as in chapter 5: arrival order is checked, and neighbouring delays must be
    // 100 ms apart for it to be the order of delay on a busy machine.
    let scale = 0.1;
    let out = run_example_with(
        "ch07_reading_a_race",
        &[],
        &[("SLOWLAB_GUIDE_SCALE", "0.1")],
    );
    let wall = |mode: &str| number_after(&out, &format!("{mode:<22} wall "));
    let ideal = |mode: &str| {
        let line = out.lines().find(|line| line.starts_with(mode)).unwrap();
        number_after(line, "ideal ")
    };
    for mode in ["all at once", "Semaphore(3)", "buffer_unordered(3)"] {
        assert!(
            wall(mode) >= ideal(mode) - 0.002,
            "{mode} beat its ideal:\n{out}"
        );
    }
    // The ideals, worked out by hand: the longest delay, 9; and on three slots, each request in
    // order to the first free slot, the slots end at 14, 15 and 15.
    assert!((ideal("all at once") - 9.0 * scale).abs() < 1e-6, "{out}");
    assert!((ideal("Semaphore(3)") - 15.0 * scale).abs() < 1e-6, "{out}");
    assert!(wall("all at once") < ideal("Semaphore(3)"), "{out}");
    assert!(
        out.contains(
            "answers arrived in the order [0.0, 2.0, 2.0, 4.0, 4.0, 5.0, 5.0, 6.0, 7.0, 9.0]"
        ),
        "{out}"
    );
    // The packing the example printed is the chapter's: 14, 15 and 15 s of delays per slot.
    let packing = slot_requests(&out);
    let busy: Vec<f64> = packing
        .iter()
        .map(|requests| requests.iter().map(|&r| ARTICLE[r]).sum())
        .collect();
    assert_eq!(busy, [14.0, 15.0, 15.0], "{out}");
    check_picture("ch07-three-slots.svg", &gantt_svg(&packing, &ARTICLE));
}

/// The requests of each `  slot N runs requests [..]` line, in slot order.
fn slot_requests(out: &str) -> Vec<Vec<usize>> {
    out.lines()
        .filter_map(|line| line.trim_start().strip_prefix("slot "))
        .map(|rest| {
            let list = rest.split_once('[').unwrap().1.split_once(']').unwrap().0;
            list.split(", ").map(|n| n.parse().unwrap()).collect()
        })
        .collect()
}

/// Chapter 7's picture: each slot a row, each request a bar from when its slot freed up, in the
/// article's seconds (so the picture does not depend on the scale the test ran at).
fn gantt_svg(packing: &[Vec<usize>], delays: &[f64]) -> String {
    const LEFT: f64 = 70.0;
    const PER_SECOND: f64 = 36.0;
    const ROW: f64 = 40.0;
    let end = packing
        .iter()
        .map(|requests| requests.iter().map(|&r| delays[r]).sum::<f64>())
        .fold(0.0, f64::max);
    let width = LEFT + end * PER_SECOND + 30.0;
    let height = 30.0 + ROW * packing.len() as f64 + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>The article's ten requests on three slots: each starts, in order, in the first \
         slot to free up; the ideal is when the busiest slot ends ({end} s)</title>\n\
         <rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n"
    );
    let bottom = 30.0 + ROW * packing.len() as f64;
    for second in 0..=end as usize {
        let x = LEFT + second as f64 * PER_SECOND;
        svg += &format!(
            "<line x1=\"{x}\" y1=\"20\" x2=\"{x}\" y2=\"{bottom}\" stroke=\"#ddd\"/>\n\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{second}</text>\n",
            bottom + 16.0
        );
    }
    let ideal_x = LEFT + end * PER_SECOND;
    svg += &format!(
        "<line x1=\"{ideal_x}\" y1=\"12\" x2=\"{ideal_x}\" y2=\"{bottom}\" stroke=\"black\" \
         stroke-dasharray=\"4 3\"/>\n<text x=\"{ideal_x}\" y=\"10\" text-anchor=\"end\">ideal \
         {end} s</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds (the \
         article's delays)</text>\n",
        LEFT + end * PER_SECOND / 2.0,
        bottom + 34.0
    );
    for (slot, requests) in packing.iter().enumerate() {
        let y = 30.0 + ROW * slot as f64;
        svg += &format!(
            "<text x=\"8\" y=\"{}\">slot {}</text>\n",
            y + ROW / 2.0,
            slot + 1
        );
        let mut start = 0.0;
        for &request in requests {
            let (x, w) = (LEFT + start * PER_SECOND, delays[request] * PER_SECOND);
            let label = format!("#{} ({} s)", request + 1, delays[request]);
            svg += &format!(
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#8ecae6\" \
                 stroke=\"#023047\"><title>request {label}</title></rect>\n\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\n",
                y + 6.0,
                w.max(2.0),
                ROW - 12.0,
                x + w / 2.0,
                // A bar of no width is labelled above its row, clear of its neighbours' labels.
                if w == 0.0 {
                    y + 4.0
                } else {
                    y + ROW / 2.0 + 4.0
                }
            );
            start += delays[request];
        }
    }
    svg + "</svg>\n"
}

/// A picture in `docs/guide/images/` must be what the test drew from the example's output;
/// `SLOWLAB_GUIDE_BLESS=1` writes it.
fn check_picture(name: &str, drawn: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/guide/images")
        .join(name);
    if std::env::var("SLOWLAB_GUIDE_BLESS").is_ok_and(|value| value == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, drawn).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err} (bless with SLOWLAB_GUIDE_BLESS=1)",
            path.display()
        )
    });
    assert!(
        committed == drawn,
        "{} differs from what the test draws (bless with SLOWLAB_GUIDE_BLESS=1)",
        path.display()
    );
}

#[test]
fn ch08_every_way_computes_the_same_and_a_blocking_hash_stalls_the_loop() {
    let out = run_example("ch08_cpu_bound", &[]);
    assert!(
        out.contains("all four computed the same digests: true\n"),
        "{out}"
    );
    let took = number_after(&out, "a ");
    let stalled = number_after(&out, "kept a 1 ms ticker waiting up to ");
    // While the hash held the only thread, the ticker could not run at all.
    assert!(stalled >= 0.5 * took, "{out}");
}

#[test]
fn examples_use_the_server_named_by_slowlab_base_url() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(slowlab_server::spawn(slowlab_server::Config::default()))
        .unwrap();
    let base_url = server.base_url();
    run_example_with("ch05_sync_client", &[], &[("SLOWLAB_BASE_URL", &base_url)]);
    // The ten requests came here, not to an embedded server of the example's own.
    assert_eq!(server.stats().started, 10);
    runtime.block_on(server.shutdown());
}

#[test]
fn a_bad_scale_or_handler_is_a_usage_error() {
    let _turn = one_at_a_time();
    for scale in ["fast", "0", "-1", "NaN"] {
        let output = Command::new(example("ch01_waiting_vs_working"))
            .env("SLOWLAB_GUIDE_SCALE", scale)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "scale {scale:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is not a positive number; try 0.1"),
            "{stderr}"
        );
    }
    for args in [&["asleep"][..], &["sleep", "eighty"]] {
        let output = Command::new(example("ch04_slow_server"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("usage: ch04_slow_server"), "{stderr}");
    }
}
