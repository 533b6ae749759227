//! Helpers for the tests that run the `slowlab` binary as a process.
//!
//! Each test file uses a different subset of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test, with colour off and no base URL from the environment.
pub fn slowlab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slowlab"));
    command.env("NO_COLOR", "1").env_remove("SLOWLAB_BASE_URL");
    command
}

/// Runs `slowlab ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    slowlab().args(args).output().expect("slowlab runs")
}

/// What a finished process wrote to stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a finished process wrote to stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `slowlab ARGS` and checks it was refused as a usage error (exit 2) whose message
/// contains `says`.
pub fn assert_usage_error(args: &[&str], says: &str) {
    let output = run(args);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
    assert!(message.contains(says), "{args:?}: {message}");
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A raw `GET path` on a fresh connection; the whole response as text, or what arrived of it
/// (empty when the server closed without answering).
pub fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// A running `slowlab serve` child and the address it printed on its first stdout line.
/// Killed when dropped, if still running.
pub struct Served {
    /// The server process.
    pub child: Child,
    /// `IP:PORT` it listens on.
    pub addr: String,
    /// `http://IP:PORT`.
    pub base_url: String,
}

impl Served {
    /// `slowlab serve --port 0 EXTRA...`.
    pub fn start(extra: &[&str]) -> Served {
        let mut command = slowlab();
        command.args(["serve", "--port", "0"]).args(extra);
        Served::spawn(command)
    }

    /// Spawns `command`, which must run `slowlab serve`, and reads the port from its first line.
    pub fn spawn(mut command: Command) -> Served {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let addr = first_line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
            .to_owned();
        Served {
            child,
            base_url: format!("http://{addr}"),
            addr,
        }
    }

    /// Starts a GET in the background; the thread returns the raw response.
    pub fn get_in_background(&self, path: &str) -> thread::JoinHandle<String> {
        let addr = self.addr.clone();
        let path = path.to_owned();
        thread::spawn(move || get(&addr, &path))
    }

    /// Waits (at most 10 s) until the server reports `n` requests in flight on `/healthz`.
    pub fn wait_in_flight(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let wanted = format!(r#""in_flight":{n}"#);
        while !get(&self.addr, "/healthz").contains(&wanted) {
            assert!(Instant::now() < deadline, "never {n} requests in flight");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, as a service manager would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (killing it and failing past `limit`), and returns its exit
    /// status and everything it wrote to stderr.
    pub fn wait(&mut self, limit: Duration) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("slowlab serve did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut err).unwrap();
        }
        (status, err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an installed tool a test needs (`haproxy`, `chromium`, `ip`, ...) is on the PATH. See
/// [`usable`] for what happens when it is not.
pub fn tool_available(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    usable(found, &format!("{name} is not installed"))
}

/// Whether a test's precondition holds. When it does not, the test should return early: this
/// prints why it skips, unless `SLOWLAB_REQUIRE_TOOLS=1` (set by CI, which installs every tool and
/// runs as root), where it fails the test instead.
pub fn usable(holds: bool, reason: &str) -> bool {
    if holds {
        return true;
    }
    if std::env::var("SLOWLAB_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("SLOWLAB_REQUIRE_TOOLS=1 but {reason}");
    }
    eprintln!("skipped: {reason}");
    false
}

/// Asserts that `doc` follows the published schema of fetch's JSON (docs/fetch.schema.json),
/// listing every violation when it does not.
pub fn assert_fetch_schema(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/fetch.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc}");
}

/// A fresh folder for one test's files, named after `name`. It and everything in it are removed
/// when it is dropped, so that test runs leave nothing behind.
pub fn scratch(name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("slowlab-{name}-"))
        .tempdir()
        .unwrap();
    Scratch(dir)
}

/// A test's folder (see [`scratch`]), used as the path it is.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.path().as_os_str()
    }
}
