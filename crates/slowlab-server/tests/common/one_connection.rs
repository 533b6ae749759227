//! One connection's worth of arbitrary bytes, sent to a real server on loopback, and what a
//! well-formed answer to them must look like. Shared by the `serve_connection` fuzz target and the
//! test that replays the inputs it once crashed on (`tests/connection_regressions.rs`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use slowlab_server::{Config, OverMax};

/// The h2 preface that makes a connection HTTP/2.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A server where every wait ends at once: delays are clamped to 0, so `/5` and `fault=hang`
/// do not stall the exchange.
pub fn instant_config() -> Config {
    Config {
        max_delay: Duration::ZERO,
        over_max: OverMax::Clamp,
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Sends `input` as one connection's bytes, ends the sending side, and returns everything the
/// server sent back until it closed (or 10 s passed).
pub fn exchange(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    // The server may close before reading everything (a bad request): not an error here.
    let _ = stream.write_all(input);
    let _ = stream.shutdown(Shutdown::Write);
    let mut output = Vec::new();
    let _ = stream.read_to_end(&mut output);
    output
}

/// Checks `output` against `input`: every complete request is answered with a well-formed
/// response. Faults asked for (`fault=`) and requests with bodies are left out of the check.
///
/// No output at all is fine: [`exchange`] ends its sending side at once, and a server that sees
/// the end of a connection's input before its answer is ready takes the client for gone (that is
/// how a request is cancelled). What may never come back is a partial or malformed answer.
pub fn check(input: &[u8], output: &[u8]) -> Result<(), String> {
    if output.is_empty() {
        return Ok(());
    }
    if input.starts_with(H2_PREFACE) {
        check_h2(output)
    } else {
        check_http1(input, output)
    }
}

/// HTTP/1.1: if the first request is complete (and asks for no fault and sends no body), the
/// output starts with a complete response head with a valid status.
fn check_http1(input: &[u8], output: &[u8]) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = request.parse(input) else {
        return Ok(());
    };
    let target = request.path.unwrap_or_default();
    let has_body = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("expect")
            || h.name.eq_ignore_ascii_case("upgrade")
            || (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
    });
    if target.contains("fault") || target.contains("%") || has_body {
        return Ok(());
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(output) {
        Ok(httparse::Status::Complete(_)) => match response.code {
            Some(100..=599) => Ok(()),
            code => Err(format!("status {code:?} out of range")),
        },
        Ok(httparse::Status::Partial) => Err(format!(
            "a complete request {:?} {target:?} got no complete response: {:?}",
            request.method,
            String::from_utf8_lossy(&output[..output.len().min(200)])
        )),
        Err(err) => Err(format!(
            "not an HTTP response ({err}): {:?}",
            String::from_utf8_lossy(&output[..output.len().min(200)])
        )),
    }
}

/// HTTP/2: the output is a sequence of whole frames, the first of them the server's SETTINGS.
fn check_h2(output: &[u8]) -> Result<(), String> {
    let mut rest = output;
    let mut first = true;
    while !rest.is_empty() {
        if rest.len() < 9 {
            return Err(format!("{} bytes of a frame header", rest.len()));
        }
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let kind = rest[3];
        if first && kind != 4 {
            return Err(format!("the first frame is of type {kind}, not SETTINGS"));
        }
        first = false;
        if rest.len() < 9 + length {
            return Err(format!(
                "a frame of type {kind} promises {length} bytes, {} arrived",
                rest.len() - 9
            ));
        }
        rest = &rest[9 + length..];
    }
    Ok(())
}

/// The inputs kept for fuzz target `target` in `fuzz/regressions/TARGET/`, with their file names:
/// what the replay tests send again on every `cargo test`.
#[allow(dead_code)] // the fuzz targets that include this module replay nothing
pub fn kept(target: &str) -> Vec<(String, Vec<u8>)> {
    // Both crates that replay sit two folders below the repository's root.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|f| f.is_file() && !f.ends_with(".gitkeep"))
        .map(|f| (f.display().to_string(), std::fs::read(&f).unwrap()))
        .collect()
}

/// The inputs every replay sends before the kept ones: a plain request, and the h2 preface with
/// an empty SETTINGS frame.
#[allow(dead_code)] // the fuzz targets that include this module replay nothing
pub fn first_inputs() -> Vec<(String, Vec<u8>)> {
    let mut h2 = H2_PREFACE.to_vec();
    h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    vec![
        (
            "plain GET".to_owned(),
            b"GET /0 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        ),
        ("h2 preface and SETTINGS".to_owned(), h2),
    ]
}

/// Panics anywhere in this process, server tasks included (tokio catches those), once
/// [`replay`] has begun counting them.
static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sends each input on a connection of its own to the server at `addr`, and fails unless every
/// complete request got a well-formed response and nothing in the process panicked.
#[allow(dead_code)] // the fuzz targets that include this module replay nothing
pub async fn replay(addr: SocketAddr, inputs: Vec<(String, Vec<u8>)>) {
    use std::sync::atomic::Ordering;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    for (name, input) in inputs {
        let sent = input.clone();
        let output = tokio::task::spawn_blocking(move || exchange(addr, &sent))
            .await
            .unwrap();
        if let Err(err) = check(&input, &output) {
            panic!("{name}: {err}");
        }
        assert_eq!(PANICS.load(Ordering::Relaxed), 0, "{name}: a task panicked");
    }
}
