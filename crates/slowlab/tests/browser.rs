//! The HTML report and the live race page in a real headless Chromium, driven over WebDriver
//! (chromedriver): they render without console errors and are not blank, and the live page, with
//! Run pressed, draws every bar of both races and the concurrent one ends first.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the tests print why and pass,
//! unless `SLOWLAB_REQUIRE_TOOLS=1`. With `SLOWLAB_UPDATE_SCREENSHOTS=1` the tests also write
//! docs/race-report.png (the article's race) and docs/live-race.png; otherwise nothing is written
//! to the tree.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

mod common;

use common::{Served, run, stderr};

/// The browser's flags: headless, and nothing that reaches for the network on its own.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,1400",
];

/// `name` on the PATH.
fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Chromium and chromedriver, or `None` (after saying why) when this machine lacks them.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let browser = find_tool("chromium").or_else(|| find_tool("chromium-browser"));
    let driver = find_tool("chromedriver");
    let found = browser.is_some() && driver.is_some();
    if !common::usable(
        found,
        "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)",
    ) {
        return None;
    }
    browser.zip(driver)
}

/// A chromedriver process, a fresh browser profile, and a WebDriver session on them.
struct Browser {
    client: Client,
    driver: Child,
    driver_port: u16,
    profile: PathBuf,
}

impl Browser {
    async fn start(name: &str) -> Option<Browser> {
        let (chromium, chromedriver) = tools()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{name}"));
        let _ = std::fs::remove_dir_all(&profile);
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Some(Browser {
            client,
            driver,
            driver_port: port,
            profile,
        })
    }

    /// The browser console's messages at SEVERE level (errors) since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let body = post(
            self.driver_port,
            &format!("/session/{session}/se/log"),
            r#"{"type":"browser"}"#,
        );
        let logs: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        logs["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no log entries in {body}"))
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].to_string())
            .collect()
    }

    async fn script(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Ends the session (the browser quits) and chromedriver.
    async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Also when a test fails midway: chromedriver goes, and the profile with it.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        kill_browsers_of(&self.profile);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Kills the browser processes started with `profile`: a session that never closed (a failed
/// test) leaves them behind chromedriver. Only processes naming this profile are touched.
fn kill_browsers_of(profile: &Path) {
    let flag = format!("--user-data-dir={}", profile.display());
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return;
    };
    for process in processes.flatten() {
        let Ok(cmdline) = std::fs::read(process.path().join("cmdline")) else {
            continue;
        };
        let ours = cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes());
        if ours {
            let _ = Command::new("kill")
                .arg(process.file_name())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A raw HTTP POST of a JSON body to chromedriver; the response body.
fn post(port: u16, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(response)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_race_report_renders_in_chromium() {
    let Some(browser) = Browser::start("report").await else {
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-report");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("race.html");
    let html_arg = html.to_str().unwrap();
    // The screenshot shows the article's race; the check alone needs only a short one.
    let screenshot = std::env::var("SLOWLAB_UPDATE_SCREENSHOTS").as_deref() == Ok("1");
    let output = if screenshot {
        run(&["race", "--report", html_arg])
    } else {
        run(&["race", "0.05", "0.1", "0.02", "--report", html_arg])
    };
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    browser
        .client
        .goto(&format!("file://{}", html.display()))
        .await
        .unwrap();
    let text = browser.script("return document.body.innerText").await;
    assert!(
        text.as_str().unwrap().contains("Timelines"),
        "blank page: {text}"
    );
    let svg = browser
        .script(
            "const box = document.querySelector('svg').getBoundingClientRect(); \
             return [box.width, box.height, document.querySelectorAll('g.request').length];",
        )
        .await;
    assert!(
        svg[0].as_f64().unwrap() > 400.0 && svg[1].as_f64().unwrap() > 200.0,
        "{svg}"
    );
    let bars = svg[2].as_u64().unwrap();
    assert!(
        bars == 9 || bars == 30,
        "a bar per request per mode: {bars}"
    );
    let loaded = browser
        .script("return performance.getEntriesByType('resource').length")
        .await;
    assert_eq!(loaded, 0, "the report loads nothing");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    if screenshot {
        let png = browser
            .client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .screenshot()
            .await
            .unwrap();
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/race-report.png");
        std::fs::write(&docs, png).unwrap();
        eprintln!("wrote {}", docs.display());
    }
    browser.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_race_runs_in_chromium() {
    let Some(browser) = Browser::start("live").await else {
        return;
    };
    let served = Served::start(&["--drain-timeout", "0"]);
    browser
        .client
        .goto(&format!("{}/race", served.base_url))
        .await
        .unwrap();
    let delays = "0.2 0.1 0.15 0.1 0.2 0.05 0.1 0.15";
    let input = browser.client.find(Locator::Id("delays")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(delays).await.unwrap();
    browser
        .client
        .find(Locator::Id("run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while browser.script("return document.body.dataset.state").await != "done" {
        assert!(Instant::now() < deadline, "the race never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = browser
        .script(
            "return [document.querySelectorAll('#sequential rect.bar').length, \
                     document.querySelectorAll('#concurrent rect.bar').length, \
                     document.querySelectorAll('rect.failed').length, \
                     Number(document.getElementById('sequential-stats').dataset.wall), \
                     Number(document.getElementById('concurrent-stats').dataset.wall)];",
        )
        .await;
    let n = delays.split(' ').count() as u64;
    assert_eq!(result[0], n, "every sequential bar: {result}");
    assert_eq!(result[1], n, "every concurrent bar: {result}");
    assert_eq!(result[2], 0, "no request failed: {result}");
    let (sequential, concurrent) = (result[3].as_f64().unwrap(), result[4].as_f64().unwrap());
    // One after another takes at least the sum of the delays (1.05 s).
    assert!(sequential >= 1.05, "{result}");
    assert!(concurrent < sequential, "{result}");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    if std::env::var("SLOWLAB_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let png = browser.client.screenshot().await.unwrap();
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/live-race.png");
        std::fs::write(&docs, png).unwrap();
        eprintln!("wrote {}", docs.display());
    }
    browser.stop().await;
}
