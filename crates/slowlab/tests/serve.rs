//! `slowlab serve` as a process: the start-up line, and draining on SIGTERM.

#![cfg(unix)]

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{Served, get};

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let mut served = Served::start(&["--model", "threads:4"]);
    let in_flight = served.get_in_background("/1");
    served.wait_in_flight(1);
    let health = get(&served.addr, "/healthz");
    assert!(health.contains(r#""model":"threads:4""#), "{health}");
    served.terminate();

    let answer = in_flight.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"time_elapsed": 1}"#), "{answer}");
    let (exit, stderr) = served.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
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
    let mut shell = Command::new("bash");
    shell.args([
        "-c",
        &format!(
            "ulimit -n 64 && exec {} serve --port 0",
            env!("CARGO_BIN_EXE_slowlab")
        ),
    ]);
    let mut served = Served::spawn(shell);

    // More idle connections than the server has descriptors for: the kernel accepts them all,
    // the server runs out while taking them.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&served.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(idle);
    // Once they are gone, it serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = std::panic::catch_unwind(|| get(&served.addr, "/0"))
            && answer.starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server stopped serving");
        std::thread::sleep(Duration::from_millis(100));
    }
    served.terminate();
    let (_, stderr) = served.wait(Duration::from_secs(20));
    assert!(stderr.contains("open files 64"), "{stderr}");
    assert_eq!(
        stderr.matches("out of file descriptors").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}
