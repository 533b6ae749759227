//! `slowlab proxy`: a real service, made slow and flaky, until Ctrl-C or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use slowlab_proxy::http::admin::Admin;
use slowlab_proxy::http::metrics::ProxyMetrics;
use slowlab_proxy::http::{ProxyConfig, Upstream};
use slowlab_server::{Config, LiveRules, Stats};

use super::serve::{describe_rules, plural, reload_on_signal, request_log, shutdown_signal};
use crate::cli::ProxyArgs;
use crate::{UsageError, usage};

const WHO: &str = "slowlab proxy";

/// The checks that need no I/O: the upstream URL, `--tcp`, `--upstream-host`.
pub fn check(args: &ProxyArgs) -> Result<ProxyConfig, UsageError> {
    if args.tcp {
        return Err(usage!(
            "--tcp is not available yet in this build; proxy HTTP without --tcp for now"
        ));
    }
    let upstream = Upstream::parse(&args.upstream).map_err(|err| usage!("{err}"))?;
    let mut proxy = ProxyConfig::new(upstream);
    proxy.upstream_timeout = args.upstream_timeout.as_duration();
    if let Some(host) = &args.upstream_host {
        proxy.upstream_host = Some(host.parse().map_err(|_| {
            usage!(
                "--upstream-host {host:?} is not a header value; e.g. --upstream-host api.internal"
            )
        })?);
    }
    Ok(proxy)
}

/// Proxies until a signal, drains, and reports.
pub async fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let proxy = check(&args)?;
    let mut config = Config {
        addr: args.listen,
        max_delay: args.max_delay.as_duration(),
        max_connections: args.max_connections,
        max_headers: args.max_headers,
        drain_timeout: args.drain_timeout.as_duration(),
        header_read_timeout: args.header_read_timeout.as_duration(),
        idle_timeout: args.idle_timeout.as_duration(),
        request_log: request_log(args.log_format),
        ..Config::default()
    };
    if args.rules.is_some() || args.default.is_some() {
        let rules = LiveRules::load(args.rules.as_deref(), args.default.as_deref(), &config)
            .map_err(|err| UsageError(err.to_string()))?;
        config.rules = Some(rules);
    }
    config
        .validate()
        .map_err(|err| UsageError(err.to_string()))?;
    let _ = slowlab_server::raise_open_file_limit();
    let listener = slowlab_server::bind(args.listen, config.backlog)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    if proxy.upstream.is_same_as(addr) {
        return Err(usage!(
            "--upstream {} is the proxy's own --listen {addr}: every request would come back to the proxy; point --upstream at the real service",
            proxy.upstream
        )
        .into());
    }

    let stats = Arc::new(Stats::default());
    let metrics = Arc::new(ProxyMetrics::default());
    let admin = match args.admin {
        None => None,
        Some(admin_addr) => {
            let listener = slowlab_server::bind(admin_addr, 1024)
                .with_context(|| format!("cannot listen on --admin {admin_addr}"))?;
            let bound = listener.local_addr()?;
            let admin = Admin {
                stats: Arc::clone(&stats),
                metrics: Arc::clone(&metrics),
                rules: config.rules.clone(),
                upstream: proxy.upstream.to_string(),
            };
            Some((bound, tokio::spawn(admin.serve(listener))))
        }
    };
    if let Some(rules) = &config.rules {
        reload_on_signal(WHO, rules.clone(), config.clone(), args.watch);
    }

    // The first stdout line is the contract scripts read the port from.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    if let Some((admin_addr, _)) = &admin {
        writeln!(stdout, "admin on http://{admin_addr}")?;
    }
    stdout.flush()?;
    drop(stdout);
    say!(
        "{WHO}: forwarding to {} (HTTP/1.1 and h2c towards clients); upstream timeout {} s; Ctrl-C to stop",
        proxy.upstream,
        proxy.upstream_timeout.as_secs_f64()
    );
    if let Some(rules) = &config.rules {
        describe_rules(WHO, rules);
    }

    let report = slowlab_proxy::http::run(
        listener,
        config,
        proxy,
        Arc::clone(&stats),
        metrics,
        async {
            shutdown_signal().await;
            say!("{WHO}: stopping");
        },
    )
    .await
    .context("the proxy stopped with an error")?;
    if let Some((_, task)) = admin {
        task.abort();
    }
    if report.cut_off > 0 {
        say!(
            "{WHO}: stopped after the drain timeout; {} {} cut off",
            report.cut_off,
            plural(report.cut_off, "request was", "requests were"),
        );
    } else {
        say!("{WHO}: stopped");
    }
    Ok(ExitCode::SUCCESS)
}
