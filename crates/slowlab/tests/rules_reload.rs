//! `slowlab serve --rules` (and `slowlab proxy --rules`, which loads with the same loader and
//! flags) under hostile files: a body file that never ends, rules caps on the command line, and
//! `--watch` while an editor truncates and rewrites the file.

mod common;

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Served, scratch, slowlab, stderr};

/// The start of each command that loads a rules file: serve, and the proxy in front of a port
/// nothing listens on (it never gets that far).
const LOADERS: [&[&str]; 2] = [
    &["serve", "--port", "0"],
    &[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:9",
    ],
];

/// Runs `command` with `--rules rules` and `extra`, and checks that it stops at start with a
/// usage error (exit status 2) whose message contains `says`.
fn refused(command: &[&str], rules: &std::path::Path, extra: &[&str], says: &str) {
    let output = slowlab()
        .args(command)
        .arg("--rules")
        .arg(rules)
        .args(extra)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{command:?} {extra:?}: {err}"
    );
    assert!(err.contains(says), "{command:?} {extra:?}: {err}");
}

/// The body of a raw response.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The lines a server logs on stderr, as it logs them.
struct Log {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Log {
    fn of(served: &mut Served) -> Log {
        let (send, lines) = mpsc::channel();
        let pipe = served.child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Log {
            lines,
            seen: Vec::new(),
        }
    }

    /// Whether a line logged so far contains `text`.
    fn has(&mut self, text: &str) -> bool {
        self.seen.extend(self.lines.try_iter());
        self.seen.iter().any(|line| line.contains(text))
    }

    /// The first line not yet taken that contains `text`, waiting at most 10 s for it; it and
    /// the lines before it are taken.
    fn take(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.seen.extend(self.lines.try_iter());
            if let Some(at) = self.seen.iter().position(|line| line.contains(text)) {
                let line = self.seen[at].clone();
                self.seen.drain(..=at);
                return line;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {text:?} within 10 s; logged: {:?}", self.seen),
            }
        }
    }
}

#[test]
fn a_body_file_that_never_ends_stops_the_server_at_once_with_a_usage_error() {
    let dir = scratch("reload-dev-zero");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"zero\"\npath = \"/z\"\nbody_file = \"/dev/zero\"\n",
    )
    .unwrap();
    for command in LOADERS {
        for extra in [&[][..], &["--rules-allow-any-path"][..]] {
            refused(command, &rules, extra, "rule 1 (\"zero\"), field body_file");
        }
    }
}

#[test]
fn rules_caps_are_flags_and_name_the_fix() {
    let dir = scratch("reload-caps");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\npath = \"/a\"\n[[rule]]\npath = \"/b\"\nbody = \"0123456789\"\n",
    )
    .unwrap();
    let caps: [(&[&str], &str); 3] = [
        (
            &["--max-rules", "1"],
            "more than 1 rules, over --max-rules 1",
        ),
        (
            &["--max-rules-file-bytes", "10"],
            "over --max-rules-file-bytes 10",
        ),
        (&["--max-rules", "0"], "--max-rules"),
    ];
    for command in LOADERS {
        for (extra, says) in caps {
            refused(command, &rules, extra, says);
        }
    }
    refused(
        LOADERS[0],
        &rules,
        &["--max-body-bytes", "5"],
        "over --max-body-bytes 5",
    );
}

#[test]
fn watch_waits_for_a_rewrite_and_never_drops_the_rules_in_force() {
    let dir = scratch("reload-truncate");
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, "[[rule]]\npath = \"/x\"\nbody = \"one\"\n").unwrap();
    let mut served = Served::start(&["--rules", rules.to_str().unwrap(), "--watch"]);
    let mut log = Log::of(&mut served);
    assert_eq!(body(&common::get(&served.addr, "/x")), "one");

    // An editor's save, slowed down: the file stays empty for longer than one look at it.
    std::fs::write(&rules, "").unwrap();
    let emptied = Instant::now();
    let mut rewritten = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = common::get(&served.addr, "/x");
        let text = body(&answer);
        assert!(
            text == "one" || text == "two",
            "the rules in force dropped: /x answered {answer:?}"
        );
        if text == "two" {
            break;
        }
        // Rewritten once the server has seen the empty file (on a loaded machine that may take
        // a while), and after over a second, as long as the old one-second look at it needed.
        let seen_empty = log.has("the rules file is empty") || emptied.elapsed().as_secs() >= 3;
        if !rewritten && seen_empty && emptied.elapsed() > Duration::from_millis(1300) {
            std::fs::write(&rules, "[[rule]]\npath = \"/x\"\nbody = \"two\"\n").unwrap();
            rewritten = true;
        }
        assert!(
            Instant::now() < deadline,
            "--watch never loaded the rewrite"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let waited = log.take("the rules file is empty");
    assert!(waited.contains("waiting"), "{waited}");
    log.take("the rules file was written again");
    let reloaded = log.take("rules file changed");
    assert_eq!(
        reloaded.matches("slowlab serve:").count(),
        1,
        "the prefix is said once: {reloaded}"
    );
    assert!(
        reloaded.contains("rules file changed: 1 rule from"),
        "{reloaded}"
    );

    // A file that stays empty is taken at its word, and the log says so.
    std::fs::write(&rules, "").unwrap();
    log.take("the rules file stayed empty");
    let reloaded = log.take("rules file changed");
    assert!(reloaded.contains(": 0 rules from"), "{reloaded}");
    // No rule takes /x now: the server's own 4xx for a path nothing serves.
    let unserved = common::get(&served.addr, "/x");
    assert!(unserved.starts_with("HTTP/1.1 4"), "{unserved}");
    assert_ne!(body(&unserved), "two");
}
