//! Random argument vectors through the command line's parsing and checks, in-process (nothing is
//! sent, no file is read): each is accepted or refused as a usage error, never a panic, and what
//! is accepted is within the documented ranges.

use proptest::prelude::*;
use slowlab::ArgsError;
use slowlab::cli::values::{MAX_COUNT, MAX_DELAY, MAX_TIMEOUT};
use slowlab::cli::{Command, FetchArgs, RaceArgs};

/// Flags of every subcommand, and a few that exist nowhere.
const FLAGS: &[&str] = &[
    "--count",
    "-n",
    "--delay",
    "-d",
    "--random",
    "--seed",
    "--urls",
    "--base-url",
    "--mode",
    "-m",
    "--threads",
    "--concurrency",
    "-c",
    "--http2",
    "--connections",
    "--method",
    "-X",
    "--header",
    "-H",
    "--insecure",
    "--timeout",
    "--connect-timeout",
    "--output",
    "-o",
    "--print-bodies",
    "--quiet",
    "-q",
    "--fail-on",
    "--scale",
    "--modes",
    "--no-timeline",
    "--port",
    "--host",
    "--max-delay",
    "--model",
    "--help",
    "--version",
    "--",
    "--nope",
];

/// Values that sit on or across the edges of the grammars and ranges.
const VALUES: &[&str] = &[
    "0",
    "1",
    "0.25",
    "007",
    "86400",
    "86401",
    "0.0000000001",
    "1.",
    ".5",
    "1e3",
    "1e19",
    "1e300",
    "-1",
    "+1",
    "nan",
    "inf",
    "18446744073709551615",
    "18446744073709551616",
    "100000000",
    "1000000000",
    "99999",
    "",
    " ",
    "async",
    "sequential",
    "threads",
    "text",
    "json",
    "ndjson",
    "csv",
    "xml",
    "http://127.0.0.1:8000",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:0",
    "https://[::1]:443/api",
    "ftp://x",
    "not a url",
    "p99>1s",
    "errors>5",
    "error-rate>2",
    "error-rate>=1",
    "p99_9>1us",
    "efficiency<0.9",
    "p99>1h",
    "p99<0",
    "Content-Length: 5",
    "Connection: close",
    "X-Test: y",
    "nocolon",
    "1h",
    "250ms",
    "1m",
    "1us",
    "0ms",
    "async,sequential,async",
    "GET",
    "POST",
    "BAD METHOD",
    "threads:40",
    "blocking",
    "-",
    "\u{1b}[2J",
    "🙂",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FLAGS).prop_map(str::to_owned),
        4 => prop::sample::select(VALUES).prop_map(str::to_owned),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| x.to_string()),
        1 => "\\PC{0,12}",
    ]
}

/// What an accepted `fetch` holds stays within the documented ranges.
fn check_fetch(args: &FetchArgs) -> Result<(), TestCaseError> {
    for delay in args.delays.iter().chain(args.delay.as_ref()) {
        prop_assert!(*delay <= MAX_DELAY, "delay {delay:?}");
    }
    for timeout in args.timeout.iter().chain([&args.connect_timeout]) {
        prop_assert!(!timeout.is_zero() && *timeout <= MAX_TIMEOUT, "{timeout:?}");
    }
    if let Some(count) = args.count {
        prop_assert!((1..=MAX_COUNT).contains(&count), "count {count}");
    }
    prop_assert!(args.seed.is_none() || args.count.is_none());
    Ok(())
}

fn check_race(args: &RaceArgs) -> Result<(), TestCaseError> {
    let scale = args.scale.unwrap_or(1.0);
    for delay in args.delays.iter().chain(args.count.map(|_| &args.delay)) {
        prop_assert!(delay.as_secs_f64() * scale <= MAX_DELAY.as_secs_f64());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_argument_vector_is_accepted_or_a_usage_error(
        command in prop::sample::select(&["fetch", "race", "serve", "proxy", "bogus"][..]),
        rest in prop::collection::vec(token(), 0..8),
    ) {
        let argv = ["slowlab".to_owned(), command.to_owned()].into_iter().chain(rest);
        match slowlab::parse_args(argv) {
            Ok(cli) => match &cli.command {
                Command::Fetch(args) => check_fetch(args)?,
                Command::Race(args) => check_race(args)?,
                Command::Serve(_) | Command::Report(_) | Command::Proxy(_) => {}
            },
            Err(ArgsError::Usage(err)) => prop_assert!(!err.0.is_empty()),
            // clap's refusals exit 2; --help and --version are reported the same way and exit 0.
            Err(ArgsError::Clap(err)) => {
                prop_assert!(matches!(err.exit_code(), 0 | 2), "{err}");
                prop_assert!(!err.to_string().is_empty());
            }
        }
    }
}

#[test]
fn the_documented_examples_are_accepted() {
    for argv in [
        &[
            "slowlab", "fetch", "7", "2", "6", "4", "0", "9", "4", "2", "5", "5",
        ][..],
        &[
            "slowlab",
            "fetch",
            "--count",
            "1000",
            "--delay",
            "0.5",
            "--fail-on",
            "p99>0.6s,errors>0",
        ],
        &[
            "slowlab",
            "fetch",
            "--mode",
            "threads",
            "--threads",
            "4",
            "--random",
            "20",
            "--seed",
            "1",
        ],
        &["slowlab", "fetch", "--seed", "42"],
        &[
            "slowlab",
            "fetch",
            "--timeout",
            "2.5s",
            "--connect-timeout",
            "500ms",
            "1",
        ],
        &["slowlab", "race", "--scale", "1"],
        &[
            "slowlab",
            "race",
            "--modes",
            "sequential,async",
            "--timeout",
            "1m",
        ],
    ] {
        assert!(slowlab::parse_args(argv).is_ok(), "{argv:?}");
    }
}
