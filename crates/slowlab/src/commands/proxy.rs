//! `slowlab proxy`: a real service, made slow and flaky, until Ctrl-C or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use slowlab_proxy::http::admin::Admin;
use slowlab_proxy::http::metrics::ProxyMetrics;
use slowlab_proxy::http::{ProxyConfig, Upstream, UpstreamTrust};
use slowlab_proxy::tcp::{self, LiveTcpEffects, TcpConfig, TcpStats};
use slowlab_server::{Config, Stats};

use super::serve::{
    describe_rules, describe_tls, load_rules, on_reload_signal, plural, reload_on_signal,
    request_log, shutdown_signal, tls_from_flags,
};
use crate::cli::ProxyArgs;
use crate::{UsageError, usage};

const WHO: &str = "slowlab proxy";

/// The checks that need no I/O: the upstream URL (an HTTP URL, or `HOST:PORT` with `--tcp`) and
/// `--upstream-host`. `None` in `--tcp` mode.
pub fn check(args: &ProxyArgs) -> Result<Option<ProxyConfig>, UsageError> {
    if args.tcp {
        tcp::parse_upstream(&args.upstream).map_err(|detail| usage!("--upstream: {detail}"))?;
        if args.upstream_host.is_some()
            || args.ruleset.default.is_some()
            || args.upstream_ca.is_some()
            || args.upstream_insecure
            || args.upstream_http2
        {
            return Err(usage!(
                "--upstream-host, --upstream-ca, --upstream-insecure, --upstream-http2 and --default are for HTTP; with --tcp, give effects with --tcp-effect or [[tcp]] tables"
            ));
        }
        return Ok(None);
    }
    let upstream = Upstream::parse(&args.upstream).map_err(|err| usage!("{err}"))?;
    let trust = match (&args.upstream_ca, args.upstream_insecure) {
        (Some(file), _) => Some(UpstreamTrust::Ca(file.clone())),
        (None, true) => Some(UpstreamTrust::Insecure),
        (None, false) => None,
    };
    if trust.is_some() && !upstream.is_https() {
        return Err(usage!(
            "--upstream-ca and --upstream-insecure are for an https:// upstream, and --upstream {upstream} is plain HTTP; drop them or write https://"
        ));
    }
    let mut proxy = ProxyConfig::new(upstream);
    if let Some(trust) = &trust {
        proxy.trust(trust).map_err(|err| usage!("{err}"))?;
    }
    proxy.upstream_timeout = args.upstream_timeout.as_duration();
    proxy.upstream_http2 = args.upstream_http2;
    if let Some(host) = &args.upstream_host {
        proxy.upstream_host = Some(host.parse().map_err(|_| {
            usage!(
                "--upstream-host {host:?} is not a header value; e.g. --upstream-host api.internal"
            )
        })?);
    }
    Ok(Some(proxy))
}

/// Proxies until a signal, drains, and reports.
pub async fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let Some(mut proxy) = check(&args)? else {
        return run_tcp(args).await;
    };
    let mut config = Config {
        addr: args.listen,
        max_delay: args.max_delay.as_duration(),
        request_log: request_log(args.connection.log_format),
        ..Config::default()
    };
    args.connection.apply(&mut config);
    config.tls = tls_from_flags(&args.tls, args.listen.ip())?;
    proxy.clients_over_tls = config.tls.is_some();
    config.rules = load_rules(&args.ruleset, &config, config.max_body_bytes).await?;
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
                tcp: None,
            };
            Some((bound, tokio::spawn(admin.serve(listener))))
        }
    };
    if let Some(rules) = &config.rules {
        reload_on_signal(WHO, rules.clone(), config.clone(), args.ruleset.watch);
    }

    // The first stdout line is the contract scripts read the port from.
    let mut stdout = std::io::stdout().lock();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    writeln!(stdout, "listening on {scheme}://{addr}")?;
    if let Some((admin_addr, _)) = &admin {
        writeln!(stdout, "admin on http://{admin_addr}")?;
    }
    stdout.flush()?;
    drop(stdout);
    say!(
        "{WHO}: forwarding to {} ({} towards clients); upstream timeout {} s; Ctrl-C to stop",
        proxy.upstream,
        if config.tls.is_some() {
            "HTTPS"
        } else {
            "HTTP/1.1 and h2c"
        },
        proxy.upstream_timeout.as_secs_f64()
    );
    if let Some(tls) = &config.tls {
        describe_tls(WHO, tls);
    }
    if args.upstream_insecure {
        say!(
            "{WHO}: WARNING: --upstream-insecure: the upstream's certificate is NOT checked; anyone on the path to {} can read and change the traffic. For tests only; trust a CA of your own with --upstream-ca FILE instead",
            proxy.upstream
        );
    }
    if let Some(rules) = &config.rules {
        eprintln!("{WHO}: {}", describe_rules(rules));
    }

    // On a worker thread, as serve's loop: connections it spawns then go to that worker's own
    // queue instead of waking another thread for each.
    let report = tokio::spawn(slowlab_proxy::http::run(
        listener,
        config,
        proxy,
        Arc::clone(&stats),
        metrics,
        async {
            shutdown_signal().await;
            say!("{WHO}: stopping");
        },
    ))
    .await
    .context("the proxy's accept loop panicked")?
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

/// `--tcp`: copies bytes to `--upstream HOST:PORT` with the effects in force, until a signal.
async fn run_tcp(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let effects = LiveTcpEffects::load(
        args.ruleset.rules.as_deref(),
        args.tcp_effect.clone(),
        "--tcp-effect",
    )
    .map_err(|err| UsageError(err.to_string()))?;
    let listener = slowlab_server::bind(args.listen, args.connection.backlog)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // Before the first stdout line: a script reading the port must not get one for a loop.
    tcp::refuse_loop(addr, &args.upstream)
        .await
        .map_err(|err| UsageError(format!("--upstream: {err}")))?;
    let stats = Arc::new(TcpStats::default());
    let admin = match args.admin {
        None => None,
        Some(admin_addr) => {
            let listener = slowlab_server::bind(admin_addr, 1024)
                .with_context(|| format!("cannot listen on --admin {admin_addr}"))?;
            let bound = listener.local_addr()?;
            let admin = Admin {
                stats: Arc::new(Stats::default()),
                metrics: Arc::new(ProxyMetrics::default()),
                rules: None,
                upstream: args.upstream.clone(),
                tcp: Some(Arc::clone(&stats)),
            };
            Some((bound, tokio::spawn(admin.serve(listener))))
        }
    };
    reload_tcp_on_signal(effects.clone(), args.ruleset.watch);
    let mut stdout = std::io::stdout().lock();
    let mut lines = format!("listening on tcp://{addr}\n");
    if let Some((admin_addr, _)) = &admin {
        lines.push_str(&format!("admin on http://{admin_addr}\n"));
    }
    stdout.write_all(lines.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    say!("{WHO}: forwarding TCP to {}; Ctrl-C to stop", args.upstream);
    let config = TcpConfig {
        max_connections: args.connection.max_connections,
        connect_timeout: args.upstream_timeout.as_duration(),
        drain_timeout: args.connection.drain_timeout.as_duration(),
        ..TcpConfig::new(args.upstream.clone())
    };
    let result = tcp::run(listener, config, effects, stats, async {
        shutdown_signal().await;
        say!("{WHO}: stopping");
    })
    .await;
    if let Some((_, task)) = admin {
        task.abort();
    }
    match result {
        Ok(_) => {
            say!("{WHO}: stopped");
            Ok(ExitCode::SUCCESS)
        }
        // A loop or an upstream that is not HOST:PORT.
        Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => {
            Err(UsageError(format!("--upstream: {err}")).into())
        }
        Err(err) => Err(anyhow::Error::new(err).context("the TCP proxy stopped with an error")),
    }
}

/// Reloads the TCP effects on SIGHUP and, with `--watch`, when the rules file changed and its
/// writes settled, as serve reloads its rules (the same trigger). The file is read on a blocking
/// thread; a file that does not load keeps the effects in force.
fn reload_tcp_on_signal(effects: LiveTcpEffects, watch: bool) {
    let Some(file) = effects.file().map(std::path::Path::to_path_buf) else {
        return;
    };
    let shown = file.display().to_string();
    on_reload_signal(WHO, file, watch, move |why| {
        let (effects, shown) = (effects.clone(), shown.clone());
        async move {
            match tokio::task::spawn_blocking(move || effects.reload()).await {
                Ok(Ok(_)) => say!("{WHO}: {why}: TCP effects reloaded from {shown}"),
                Ok(Err(err)) => say!(
                    "{WHO}: {why}: the rules file does not load, keeping the effects in force: {err}"
                ),
                Err(err) => say!("{WHO}: {why}: the reload stopped: {err}"),
            }
        }
    });
}
