//! The TCP proxy alone, for benchmarks (bench/experiments/tcp_proxy.py) until `slowlab proxy --tcp`
//! calls the same library:
//!
//! ```sh
//! cargo run --release -p slowlab-proxy --example tcp_proxy -- 127.0.0.1:9000 127.0.0.1:6379 'bps=1000000'
//! ```
//!
//! Arguments: the address to listen on, the upstream `host:port`, and optionally one effects table
//! in serve's option grammar. Runs until Ctrl-C, then prints the counters to stderr.

use std::sync::Arc;

use slowlab_proxy::tcp::{self, LiveTcpEffects, TcpConfig, TcpEffects, TcpStats};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: tcp_proxy LISTEN UPSTREAM [EFFECTS], e.g. 127.0.0.1:9000 127.0.0.1:6379 latency=0.1"
        );
        std::process::exit(2);
    };
    let effects = TcpEffects::parse(&args.next().unwrap_or_default(), "EFFECTS")?;
    let listener = slowlab_server::bind(listen.parse()?, 4096)?;
    let stats = Arc::new(TcpStats::default());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let report = tcp::run(
        listener,
        TcpConfig::new(upstream),
        LiveTcpEffects::fixed(effects),
        Arc::clone(&stats),
        shutdown,
    )
    .await?;
    eprintln!("{report:?}");
    Ok(())
}
