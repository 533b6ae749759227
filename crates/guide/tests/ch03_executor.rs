//! Chapter 3's many-task executor: its trace has the shape the chapter describes, and the
//! chapter's picture is that trace, drawn by [`draw`] here and committed. A picture that no
//! longer matches what the program does fails the test; `SLOWLAB_GUIDE_BLESS=1 cargo test -p
//! slowlab-guide --test ch03_executor` redraws it.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::run_example_with;

/// The committed picture, relative to the repository's root.
const PICTURE: &str = "docs/guide/ch03-executor-trace.svg";

/// A larger scale than the other tests: the picture labels each wake with its time rounded down
/// to a whole article second (timers never ring early), which leaves a busy machine a second of
/// slack, 250 ms here.
const PICTURE_SCALE: &str = "0.25";

/// One line of the trace: `" 1.08 s  wake bacon"`.
#[derive(Debug)]
struct Event {
    seconds: f64,
    what: String,
}

fn trace(out: &str) -> Vec<Event> {
    out.lines()
        .filter_map(|line| {
            let (seconds, what) = line.trim_start().split_once(" s  ")?;
            Some(Event {
                seconds: seconds.parse().ok()?,
                what: what.to_owned(),
            })
        })
        .collect()
}

fn events(trace: &[Event]) -> Vec<&str> {
    trace.iter().map(|event| event.what.as_str()).collect()
}

#[test]
fn each_wake_queues_one_task_and_the_executor_sleeps_between() {
    let out = run_example_with(
        "ch03_executor",
        &[],
        &[("SLOWLAB_GUIDE_SCALE", PICTURE_SCALE)],
    );
    let trace = trace(&out);
    let after_start: Vec<&str> = events(&trace).into_iter().skip(7).collect();
    assert_eq!(
        events(&trace)[..7],
        [
            "spawn main",
            "spawn eggs",
            "spawn bacon",
            "poll main -> Pending",
            "poll eggs -> Pending",
            "poll bacon -> Pending",
            "idle",
        ],
        "{out}"
    );
    // Every wake is followed by one poll of that task alone, then sleep: no busy polling, and the
    // joined timers inside main wake main, not a task of their own.
    assert_eq!(
        after_start,
        [
            "wake bacon",
            "poll bacon -> Ready",
            "idle",
            "wake main",
            "poll main -> Pending",
            "idle",
            "wake eggs",
            "poll eggs -> Ready",
            "idle",
            "wake main",
            "poll main -> Ready",
        ],
        "{out}"
    );
    let wakes: Vec<f64> = trace
        .iter()
        .filter(|event| event.what.starts_with("wake"))
        .map(|event| event.seconds)
        .collect();
    // Timers never ring early, and each wake comes within its timer's second.
    assert_eq!(wakes.len(), 4, "{out}");
    for (wake, second) in wakes.iter().zip([1.0, 2.0, 3.0, 4.0]) {
        assert!((second..second + 1.0).contains(wake), "{out}");
    }
    assert!(
        out.ends_with("main returned (\"eggs\", \"bacon\")\n"),
        "{out}"
    );
}

#[test]
fn the_chapter_picture_is_the_executor_trace() {
    let out = run_example_with(
        "ch03_executor",
        &[],
        &[("SLOWLAB_GUIDE_SCALE", PICTURE_SCALE)],
    );
    let drawn = draw(&trace(&out));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(PICTURE);
    if std::env::var("SLOWLAB_GUIDE_BLESS").is_ok_and(|value| value == "1") {
        std::fs::write(&path, &drawn).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == drawn,
        "{PICTURE} is not the executor's trace; redraw it with SLOWLAB_GUIDE_BLESS=1.\ntrace:\n{out}"
    );
}

const LEFT: usize = 96;
const COLUMN: usize = 62;
const ROW: usize = 44;
const TOP: usize = 40;

/// Draws the trace as rows of tasks (in spawn order) and the executor, one column per event
/// after the spawns. Only the order of events and the wakes' whole seconds (rounded down) are
/// drawn, so the picture is the same on every run that behaves the same.
fn draw(trace: &[Event]) -> String {
    let mut rows: Vec<&str> = trace
        .iter()
        .filter_map(|event| event.what.strip_prefix("spawn "))
        .collect();
    rows.push("executor");
    let shown: Vec<&Event> = trace
        .iter()
        .filter(|event| !event.what.starts_with("spawn "))
        .collect();
    let width = LEFT + COLUMN * shown.len() + 16;
    let height = TOP + ROW * rows.len() + 40;
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    )
    .unwrap();
    writeln!(
        svg,
        r##"<rect width="{width}" height="{height}" fill="#fff"/>"##
    )
    .unwrap();
    for (index, name) in rows.iter().enumerate() {
        let y = TOP + ROW * index + ROW / 2;
        let end = width - 16;
        writeln!(
            svg,
            r#"<text x="8" y="{}" font-weight="bold">{name}</text>"#,
            y + 4
        )
        .unwrap();
        writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y}" x2="{end}" y2="{y}" stroke="#ccc"/>"##
        )
        .unwrap();
    }
    let row_of = |name: &str| rows.iter().position(|row| *row == name).unwrap();
    for (column, event) in shown.iter().enumerate() {
        let x = LEFT + COLUMN * column;
        let middle = x + COLUMN / 2;
        let words: Vec<&str> = event.what.split_whitespace().collect();
        match words.as_slice() {
            ["poll", task, "->", outcome] => {
                let y = TOP + ROW * row_of(task) + 8;
                let fill = if *outcome == "Ready" { "#7c7" } else { "#9bd" };
                writeln!(
                    svg,
                    r##"<rect x="{}" y="{y}" width="{}" height="{}" rx="4" fill="{fill}" stroke="#345"/>"##,
                    x + 3,
                    COLUMN - 6,
                    ROW - 16
                )
                .unwrap();
                writeln!(
                    svg,
                    r#"<text x="{middle}" y="{}" text-anchor="middle">poll</text>"#,
                    y + 11
                )
                .unwrap();
                writeln!(
                    svg,
                    r#"<text x="{middle}" y="{}" text-anchor="middle">{outcome}</text>"#,
                    y + 23
                )
                .unwrap();
            }
            ["wake", task] => {
                let y = TOP + ROW * row_of(task) + ROW / 2;
                writeln!(
                    svg,
                    r##"<circle cx="{middle}" cy="{y}" r="13" fill="#fd6" stroke="#a80"/>"##
                )
                .unwrap();
                writeln!(
                    svg,
                    r#"<text x="{middle}" y="{}" text-anchor="middle">wake</text>"#,
                    y + 4
                )
                .unwrap();
                writeln!(
                    svg,
                    r#"<text x="{middle}" y="{}" text-anchor="middle">{} s</text>"#,
                    TOP - 12,
                    event.seconds.floor()
                )
                .unwrap();
            }
            ["idle"] => {
                let y = TOP + ROW * row_of("executor") + 10;
                writeln!(
                    svg,
                    r##"<rect x="{}" y="{y}" width="{}" height="{}" fill="#ddd" stroke="#999"/>"##,
                    x + 3,
                    COLUMN - 6,
                    ROW - 20
                )
                .unwrap();
                writeln!(
                    svg,
                    r#"<text x="{middle}" y="{}" text-anchor="middle">asleep</text>"#,
                    y + 16
                )
                .unwrap();
            }
            _ => panic!("an event the picture does not know: {:?}", event.what),
        }
    }
    writeln!(
        svg,
        r#"<text x="8" y="{}">One column per event of the trace, in order; above each wake, the second it came at. Blue: poll -> Pending; green: poll -> Ready.</text>"#,
        height - 14
    )
    .unwrap();
    svg.push_str("</svg>\n");
    svg
}
