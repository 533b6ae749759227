//! Parsers and ranges of the numeric arguments of `fetch` and `race`, checked at parse time so a
//! value out of range is a usage error that names the argument and the range.
//!
//! Two grammars, both without exponents, signs or spaces (`1e3`, `-1`, `inf` are refused):
//! - a **delay** is written as the server reads `/{seconds}`: digits, optionally a dot and up to 9
//!   digits (`7`, `0.25`);
//! - any other **duration** is such a number followed by a unit, `us`, `ms`, `s` or `m`, a bare
//!   number meaning seconds (`250ms`, `2.5s`, `1m`, `30`).

use std::time::Duration;

use slowlab_server::Delay;

/// Longest delay a request may ask for: one day. Sums of up to [`MAX_COUNT`] of them stay far
/// inside `Duration`, so no arithmetic on delays can overflow.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest `--timeout` or `--connect-timeout`: one day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Most requests of `fetch --count`. Beyond this a run is better split, and the numbers of a run
/// (throughput, percentiles) stop meaning more.
pub const MAX_COUNT: u64 = 100_000_000;

/// Most random delays of `fetch --random`: each is drawn and listed up front.
pub const MAX_RANDOM: u64 = 1_000_000;

/// Most threads of `fetch --threads` (each has a 256 KiB stack and a connection).
pub const MAX_THREADS: u64 = 10_000;

/// Most requests in flight (`--concurrency`) or connections (`--connections`), per server.
pub const MAX_SLOTS: u64 = 1_000_000;

/// Largest `race --scale`.
pub const MAX_SCALE: f64 = 1_000_000.0;

/// Parses a delay in the server's grammar, `0` to [`MAX_DELAY`].
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let delay = parse_decimal(text).ok_or_else(|| {
        format!(
            "{text:?} is not a delay: write seconds as digits, optionally a dot and up to 9 \
             decimals (e.g. 7 or 0.25), as the server reads /{{seconds}}"
        )
    })?;
    if delay > MAX_DELAY {
        return Err(format!(
            "{text:?} is out of range: a delay is 0 to {} s (one day)",
            MAX_DELAY.as_secs()
        ));
    }
    Ok(delay)
}

/// Parses `--rate`: a rate, or a starting rate and ramps (`100,1000@30s`).
pub fn parse_rate(text: &str) -> Result<slowlab_client::Rate, String> {
    slowlab_client::Rate::parse(text).map_err(|err| err.to_string())
}

/// Parses a timeout: a duration above 0 and at most [`MAX_TIMEOUT`].
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!(
            "{text:?} is out of range: a timeout is above 0 and at most {} s (one day)",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(timeout)
}

/// Parses a duration with an optional unit: `250ms`, `2.5s`, `900us`, `1m`, `30` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "{text:?} is not a duration: write a number (digits, optionally a dot and up to 9 \
             decimals) and a unit us, ms, s or m, e.g. 250ms, 2.5s or 1m; no unit means seconds"
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = parse_decimal(number).ok_or_else(invalid)?;
    let nanos = number.as_nanos();
    let nanos = match unit {
        "" | "s" => nanos,
        "ms" => nanos / 1_000,
        "us" | "µs" => nanos / 1_000_000,
        "m" => nanos * 60,
        _ => return Err(invalid()),
    };
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| invalid())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses `race --scale`: a number above 0 and at most [`MAX_SCALE`], in the delay grammar.
pub fn parse_scale(text: &str) -> Result<f64, String> {
    let scale = parse_decimal(text)
        .map(|d| d.as_secs_f64())
        .filter(|scale| *scale > 0.0 && *scale <= MAX_SCALE);
    scale.ok_or_else(|| {
        format!(
            "{text:?} is not a valid scale: use a number above 0 and at most {MAX_SCALE}, \
             e.g. 0.1 or 1 (digits, optionally a dot and up to 9 decimals)"
        )
    })
}

/// Digits, optionally a dot and 1 to 9 digits, exactly; `None` for anything else, or more
/// seconds than `u64` holds.
fn parse_decimal(text: &str) -> Option<Duration> {
    // A leading minus is a negative number to the server; here it is simply not a delay.
    Delay::parse(text).ok().map(Delay::as_duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_use_the_servers_grammar_and_range() {
        assert_eq!(parse_delay("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_delay("007"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_delay("86400"), Ok(MAX_DELAY));
        for bad in [
            "1e3", "-1", "nan", "inf", "+1", " 1", "1.", ".5", "0x10", "", "86400.1", "1e19",
        ] {
            assert!(parse_delay(bad).is_err(), "{bad:?}");
        }
        assert!(parse_delay("1e3").unwrap_err().contains("digits"));
        assert!(parse_delay("86401").unwrap_err().contains("0 to 86400 s"));
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("900us"), Ok(Duration::from_micros(900)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.5m"), Ok(Duration::from_secs(30)));
        for bad in ["1h", "1e3", "1e3s", "-1s", "s", "ms", "1 s", "1sec", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        // Minutes past what a Duration holds are refused, not wrapped.
        assert!(parse_duration("18446744073709551615m").is_err());
    }

    #[test]
    fn timeouts_are_above_zero_and_at_most_a_day() {
        assert_eq!(parse_timeout("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_timeout("1440m"), Ok(MAX_TIMEOUT));
        for bad in ["0", "0ms", "1e19", "10000000000000000000", "1441m"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scales_are_bounded() {
        assert_eq!(parse_scale("0.1"), Ok(0.1));
        assert_eq!(parse_scale("1000000"), Ok(MAX_SCALE));
        for bad in ["0", "1e300", "1000001", "-1", "nan", "inf"] {
            assert!(parse_scale(bad).is_err(), "{bad:?}");
        }
    }
}
