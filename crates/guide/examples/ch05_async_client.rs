//! Chapter 5: the article's async client. All ten requests at once; each answer is printed as it
//! arrives, so the output comes sorted by delay, as aiohttp's does.

use std::time::{Duration, Instant};

use serde_json::Value;
use slowlab_guide::SlowServer;
use tokio::task::JoinSet;

async fn get_time(client: reqwest::Client, url: String) -> reqwest::Result<f64> {
    let result: Value = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("{result}");
    Ok(result["time_elapsed"].as_f64().unwrap_or(f64::NAN))
}

#[tokio::main]
async fn main() -> reqwest::Result<()> {
    let server = SlowServer::start();
    let numbers = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5];
    println!("{numbers:?}");
    let start = Instant::now();

    // asyncio.gather with print-as-you-go: a JoinSet, drained in completion order.
    let client = reqwest::Client::new();
    let mut tasks = JoinSet::new();
    for n in numbers {
        tasks.spawn(get_time(client.clone(), server.delay_url(n.into())));
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("get_time does not panic")?;
    }
    println!("{}", timedelta(start.elapsed()));

    // asyncio.gather's return value: try_join_all gives the answers in request order.
    let requests = numbers.map(|n| {
        let request = client.get(server.delay_url(n.into()));
        async move { request.send().await?.json::<Value>().await }
    });
    let answers = futures::future::try_join_all(requests).await?;
    let echoes: Vec<String> = answers
        .iter()
        .map(|a| a["time_elapsed"].to_string())
        .collect();
    println!("try_join_all, in request order: [{}]", echoes.join(", "));
    Ok(())
}

/// Elapsed time as Python prints a `timedelta`: `0:00:09.020562`.
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
