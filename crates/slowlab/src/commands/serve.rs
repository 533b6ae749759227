//! `slowlab serve`: the slow API until Ctrl-C or SIGTERM.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use slowlab_server::rules::{FileWatch, Settle};
use slowlab_server::{Config, LiveRules, LogFormat, RequestLog, Stats, Tls};

use crate::cli::{Host, RulesArgs, ServeArgs, TlsArgs};

/// Serves until a signal, drains, and reports how many requests were cut off.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config {
        addr: SocketAddr::new(args.host.addrs[0], args.port),
        max_delay: args.max_delay.as_duration(),
        over_max: args.over_max,
        model: args.model,
        any_method: args.any_method,
        max_body_bytes: args.max_body_bytes,
        body_read_timeout: args.body_read_timeout.as_duration(),
        max_in_flight: args.max_in_flight,
        request_log: request_log(args.connection.log_format),
        seed: args.seed,
        rules: None,
        tls: None,
        ..Config::default()
    };
    args.connection.apply(&mut config);
    config.rules = load_rules(&args.ruleset, &config, args.max_body_bytes).await?;
    config.tls = tls_from_flags(&args.tls, args.host.addrs[0])?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Each connection is a file descriptor; the usual soft limit of 1,024 is far too low.
    let open_files = match slowlab_server::raise_open_file_limit() {
        Ok(limit) => limit.to_string(),
        Err(err) => format!("unchanged ({err})"),
    };
    // The flags were checked as they were parsed; this catches a setting added without a check.
    config
        .validate()
        .map_err(|err| crate::UsageError(err.to_string()))?;
    let listener = listen(&args.host, args.port, config.backlog)?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;

    if let Some(rules) = &config.rules {
        reload_on_signal(
            "slowlab serve",
            rules.clone(),
            config.clone(),
            args.ruleset.watch,
        );
    }

    // The first stdout line is the contract scripts read the port from.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {scheme}://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    say!(
        "slowlab serve: GET /{{seconds}} waits up to {} s; model {}; {}; open files {open_files}; Ctrl-C to stop",
        args.max_delay,
        args.model,
        if config.tls.is_some() {
            "HTTPS (TLS only)"
        } else {
            "HTTP/1.1 and h2c"
        },
    );
    if let Some(rules) = &config.rules {
        eprintln!("slowlab serve: {}", describe_rules(rules));
    }
    if let Some(tls) = &config.tls {
        describe_tls("slowlab serve", tls);
    }

    let stats = Arc::new(Stats::default());
    let drain_timeout = config.drain_timeout;
    let watched = Arc::clone(&stats);
    let shutdown = async move {
        shutdown_signal().await;
        let in_flight = watched.snapshot().in_flight;
        if in_flight == 0 {
            say!("slowlab serve: stopping; nothing in flight");
        } else {
            say!(
                "slowlab serve: stopping; {in_flight} {} in flight, waiting at most {} s for {}",
                plural(in_flight, "request", "requests"),
                drain_timeout.as_secs_f64(),
                if in_flight == 1 { "it" } else { "them" },
            );
        }
    };
    // Served from a worker thread, not from the thread that blocks on this function: a task
    // spawned from outside the runtime's workers must wake one of them (a futex call for every
    // connection), while one spawned from a worker goes to that worker's own queue.
    let serving = tokio::spawn(slowlab_server::run(
        listener,
        config,
        Arc::clone(&stats),
        shutdown,
    ));
    let report = serving
        .await
        .context("the server's accept loop panicked")?
        .with_context(|| format!("cannot serve with --model {}", args.model))?;
    if report.in_flight_at_shutdown == 0 {
        say!("slowlab serve: stopped");
    } else if report.cut_off == 0 {
        say!(
            "slowlab serve: stopped; all {} in-flight {} finished",
            report.in_flight_at_shutdown,
            plural(report.in_flight_at_shutdown, "request", "requests"),
        );
    } else {
        say!(
            "slowlab serve: stopped after the drain timeout; {} {} cut off",
            report.cut_off,
            plural(report.cut_off, "request was", "requests were"),
        );
    }
    // The last word on what this server did: with replicas behind a load balancer, their totals
    // and the clients' failures must add up to the clients' count.
    let answered = stats.metrics().requests_total();
    say!(
        "slowlab serve: {answered} {} ended in all (slowlab_requests_total)",
        plural(answered, "request", "requests"),
    );
    Ok(ExitCode::SUCCESS)
}

/// The request log asked for: by `--log-format`, or in text by SLOWLAB_LOG enabling the server's
/// debug lines (as it did before the flag). Colour only on a terminal, and never with NO_COLOR.
pub(crate) fn request_log(format: Option<LogFormat>) -> Option<RequestLog> {
    let format = match format {
        Some(format) => format,
        None if tracing::enabled!(target: "slowlab_server::request", tracing::Level::DEBUG) => {
            LogFormat::Text
        }
        None => return None,
    };
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    Some(RequestLog { format, colour })
}

/// Binds the first of the host's addresses that can be bound (a name such as `localhost` may
/// stand for both `::1` and `127.0.0.1`).
fn listen(host: &Host, port: u16, backlog: u32) -> anyhow::Result<tokio::net::TcpListener> {
    let mut failures = Vec::new();
    for ip in &host.addrs {
        let addr = SocketAddr::new(*ip, port);
        match slowlab_server::bind(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(err) => failures.push(format!("{addr}: {err}")),
        }
    }
    anyhow::bail!(
        "cannot listen on {host} port {port}: {}",
        failures.join("; ")
    )
}

/// What the rules in force are, for a log line: `3 rules from api.toml; digest sha256:...`.
pub(crate) fn describe_rules(rules: &LiveRules) -> String {
    let current = rules.current();
    let from = rules
        .file()
        .map_or_else(|| "--default".to_owned(), |p| p.display().to_string());
    format!(
        "{} {} from {from}{}; digest {}",
        current.len(),
        plural(current.len() as u64, "rule", "rules"),
        if current.has_default() {
            " and a default rule"
        } else {
            ""
        },
        current.digest(),
    )
}

/// Reloads the rules file on SIGHUP and, with `--watch`, when it changed and its writes settled.
/// A file that does not load keeps the rules in force and says why. The file is read on a blocking
/// thread, so requests are answered throughout.
/// `who` (`slowlab serve`) starts each line it logs.
pub(crate) fn reload_on_signal(who: &'static str, rules: LiveRules, config: Config, watch: bool) {
    let Some(file) = rules.file().map(Path::to_path_buf) else {
        return;
    };
    on_reload_signal(who, file, watch, move |why| {
        let (rules, config) = (rules.clone(), config.clone());
        async move {
            match rules.reload_off_runtime(&config).await {
                Ok(_) => eprintln!("{who}: {why}: {}", describe_rules(&rules)),
                Err(err) => eprintln!(
                    "{who}: {why}: the rules file does not load, keeping the rules in force: {err}"
                ),
            }
        }
    });
}

/// Calls `reload` with the reason (`SIGHUP`, `rules file changed`) on SIGHUP and, with `watch`,
/// when `file` changed and its writes settled (an emptied file only once it stays empty): the one
/// reload trigger of serve's rules and of the proxy's rules and TCP effects.
pub(crate) fn on_reload_signal<F, Fut>(who: &'static str, file: PathBuf, watch: bool, mut reload: F)
where
    F: FnMut(&'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // Registered before the server says it listens: a SIGHUP sent once it does must not find
    // the default action (ending the process) in place.
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // Likewise the file's state to compare with: taken now, or a write made before the task
    // first ran would become its starting point and never count as a change.
    let mut watched = FileWatch::new(&file, Settle::default());
    tokio::spawn(async move {
        let say = |what: String| eprintln!("{who}: {what}");
        loop {
            #[cfg(unix)]
            let signal = async {
                match hangup.as_mut() {
                    Some(hangup) => {
                        hangup.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let signal = std::future::pending::<()>();
            let changed = async {
                if watch {
                    watched.changed(&say).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let why = tokio::select! {
                () = signal => "SIGHUP",
                () = changed => "rules file changed",
            };
            if why == "SIGHUP" {
                watched.mark_seen().await;
            }
            reload(why).await;
        }
    });
}

pub(crate) fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// serve's (and the proxy's) `--tls-cert`/`--tls-key` or `--tls-self-signed`: the TLS settings of
/// the listening port, if any. A certificate or key that cannot be used is a usage error (exit 2
/// naming the file).
pub(crate) fn tls_from_flags(
    flags: &TlsArgs,
    listen: std::net::IpAddr,
) -> Result<Option<Tls>, crate::UsageError> {
    let usage = |err: slowlab_server::tls::TlsError| crate::UsageError(err.to_string());
    Ok(match (&flags.tls_cert, &flags.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::from_files(cert, key).map_err(usage)?),
        _ if flags.tls_self_signed => Some(Tls::self_signed(listen).map_err(usage)?),
        _ => None,
    })
}

/// Says on stderr that the port speaks TLS only, with the certificate's names and fingerprint.
pub(crate) fn describe_tls(who: &str, tls: &Tls) {
    let names = if tls.names().is_empty() {
        String::new()
    } else {
        format!(" for {}", tls.names().join(", "))
    };
    eprintln!(
        "{who}: this port speaks TLS only (HTTP/1.1 and h2 by ALPN; plain HTTP and h2c are refused); certificate{names}, SHA-256 fingerprint {}",
        tls.fingerprint()
    );
}

/// Loads `--rules` and `--default`, if either is given, under `limits`: for serve and the proxy
/// alike. A bad rules file is a usage error (exit 2 naming the file, rule and field). Reading it
/// blocks, so it runs where blocking is expected.
pub(crate) async fn load_rules(
    flags: &RulesArgs,
    config: &Config,
    max_body_bytes: u64,
) -> anyhow::Result<Option<LiveRules>> {
    if flags.rules.is_none() && flags.default.is_none() {
        return Ok(None);
    }
    let limits = flags.limits(max_body_bytes);
    let (file, default, checked) = (flags.rules.clone(), flags.default.clone(), config.clone());
    let rules = tokio::task::spawn_blocking(move || {
        LiveRules::load_with(file.as_deref(), default.as_deref(), &checked, limits)
    })
    .await
    .context("the rules file did not load")?
    .map_err(|err| crate::UsageError(err.to_string()))?;
    Ok(Some(rules))
}
