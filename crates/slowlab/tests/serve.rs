//! `slowlab serve` as a process: the start-up line, and draining on SIGTERM.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slowlab"))
        .args(["serve", "--port", "0", "--model", "threads:4"])
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
        .unwrap_or_else(|| panic!("first line: {first_line:?}"))
        .to_owned();

    let in_flight = {
        let addr = addr.clone();
        std::thread::spawn(move || get(&addr, "/1"))
    };
    // Wait until the server holds the request, as /healthz reports it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = get(&addr, "/healthz");
        if health.contains(r#""in_flight":1"#) {
            assert!(health.contains(r#""model":"threads:4""#), "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let answer = in_flight.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"time_elapsed": 1}"#), "{answer}");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("model threads:4"), "{stderr}");
    assert!(stderr.contains("stopping; 1 request in flight"), "{stderr}");
    assert!(
        stderr.contains("all 1 in-flight request finished"),
        "{stderr}"
    );
}

#[test]
fn out_of_file_descriptors_is_logged_once_and_serving_goes_on() {
    // A hard limit of 64 open files, which the server cannot raise.
    let mut child = Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -n 64 && exec {} serve --port 0",
                env!("CARGO_BIN_EXE_slowlab")
            ),
        ])
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
        .unwrap_or_else(|| panic!("first line: {first_line:?}"))
        .to_owned();

    // More idle connections than the server has descriptors for: the kernel accepts them all,
    // the server runs out while taking them.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(idle);
    // Once they are gone, it serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = std::panic::catch_unwind(|| get(&addr, "/0"))
            && answer.starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server stopped serving");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("open files 64"), "{stderr}");
    assert_eq!(
        stderr.matches("out of file descriptors").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}
