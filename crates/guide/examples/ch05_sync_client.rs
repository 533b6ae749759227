//! Chapter 5: the article's sync client. One request after another, with a blocking client.

use std::time::{Duration, Instant};

use serde_json::Value;
use slowlab_guide::SlowServer;

fn get_time(client: &reqwest::blocking::Client, url: &str) -> reqwest::Result<f64> {
    let result: Value = client.get(url).send()?.error_for_status()?.json()?;
    println!("{result}");
    Ok(result["time_elapsed"].as_f64().unwrap_or(f64::NAN))
}

fn main() -> reqwest::Result<()> {
    let server = SlowServer::start();
    let numbers = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5];
    println!("{numbers:?}");
    let start = Instant::now();
    let client = reqwest::blocking::Client::new();
    for n in numbers {
        get_time(&client, &server.delay_url(n.into()))?;
    }
    println!("{}", timedelta(start.elapsed()));
    Ok(())
}

/// Elapsed time as Python prints a `timedelta`: `0:00:44.099638`.
fn timedelta(elapsed: Duration) -> String {
    let micros = elapsed.as_micros();
    let (seconds, micros) = (micros / 1_000_000, micros % 1_000_000);
    format!(
        "{}:{:02}:{:02}.{micros:06}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}
