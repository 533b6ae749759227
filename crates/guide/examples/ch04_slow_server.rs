//! Chapter 4: the article's slow server in axum, with three ways to wait.
//!
//! `ch04_slow_server [sleep|blocking|spawn-blocking] [PORT]` (default: sleep, port 8000). One
//! event-loop thread, like uvicorn's.

use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use serde_json::{Value, json};

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

/// The article's endpoint done right: a timer waits, the thread serves other requests meanwhile.
async fn slow(Path(sleep): Path<f64>) -> Answer {
    tokio::time::sleep(wait(sleep)?).await;
    Ok(Json(json!({ "time_elapsed": sleep })))
}

/// The irony: a blocking sleep in an async handler holds the event loop's only thread.
async fn slow_blocking(Path(sleep): Path<f64>) -> Answer {
    std::thread::sleep(wait(sleep)?);
    Ok(Json(json!({ "time_elapsed": sleep })))
}

/// FastAPI's `def` endpoint: the blocking sleep moves to a pool thread; the loop stays free.
async fn slow_spawn_blocking(Path(sleep): Path<f64>) -> Answer {
    let wait = wait(sleep)?;
    tokio::task::spawn_blocking(move || std::thread::sleep(wait))
        .await
        .expect("a sleep does not panic");
    Ok(Json(json!({ "time_elapsed": sleep })))
}

fn wait(sleep: f64) -> Result<Duration, (StatusCode, Json<Value>)> {
    Duration::try_from_secs_f64(sleep).map_err(|_| {
        let detail = format!("{sleep} is not a number of seconds: use e.g. /2 or /0.5");
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "bad_delay", "detail": detail })),
        )
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let handler = args.next().unwrap_or_else(|| "sleep".to_owned());
    let route: MethodRouter = match handler.as_str() {
        "sleep" => get(slow),
        "blocking" => get(slow_blocking),
        "spawn-blocking" => get(slow_spawn_blocking),
        other => usage(&format!("{other:?} is not a handler")),
    };
    let port = match args.next().map(|port| port.parse::<u16>()) {
        None => 8000,
        Some(Ok(port)) => port,
        Some(Err(err)) => usage(&format!("bad port: {err}")),
    };
    let app = Router::new().route("/{sleep}", route);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "serving http://{} with the {handler} handler",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: ch04_slow_server [sleep|blocking|spawn-blocking] [PORT]");
    std::process::exit(2);
}
