//! `--fail-on 'p99>2.5s,errors>0'`: thresholds that fail a run, for CI.

use std::fmt;

use slowlab_client::Summary;

use crate::cli::values::parse_duration;

/// One rule, e.g. `p99>2.5s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    metric: Metric,
    op: Op,
    limit: f64,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Latency(Stat),
    Overhead(Stat),
    Errors,
    ErrorRate,
    Wall,
    Efficiency,
    Throughput,
    PeakConcurrency,
    /// Responses whose status is in `low..=high`: `status-5xx` is 500 to 599, `status-503` 503.
    Status(u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Metric {
    fn parse(name: &str) -> Option<Metric> {
        let stat = |s: &str| {
            Some(match s {
                "p50" => Stat::P50,
                "p90" => Stat::P90,
                "p99" => Stat::P99,
                // `p99_9` arrives here as `p99-9`: underscores are read as dashes.
                "p99.9" | "p999" | "p99-9" => Stat::P999,
                "max" => Stat::Max,
                "mean" => Stat::Mean,
                _ => return None,
            })
        };
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        if let Some(rest) = name
            .strip_prefix("overhead-")
            .or(name.strip_prefix("overhead."))
        {
            return stat(rest).map(Metric::Overhead);
        }
        if let Some(rest) = name
            .strip_prefix("latency-")
            .or(name.strip_prefix("latency."))
        {
            return stat(rest).map(Metric::Latency);
        }
        if let Some(code) = name.strip_prefix("status-") {
            return status_range(code).map(|(low, high)| Metric::Status(low, high));
        }
        Some(match name.as_str() {
            "errors" | "failed" => Metric::Errors,
            "error-rate" => Metric::ErrorRate,
            "wall" => Metric::Wall,
            "efficiency" => Metric::Efficiency,
            "throughput" => Metric::Throughput,
            "peak-concurrency" => Metric::PeakConcurrency,
            other => return stat(other).map(Metric::Latency),
        })
    }

    fn is_duration(self) -> bool {
        matches!(
            self,
            Metric::Latency(_) | Metric::Overhead(_) | Metric::Wall
        )
    }

    fn value(self, summary: &Summary) -> f64 {
        let stat = |p: &slowlab_client::Percentiles, s: Stat| match s {
            Stat::P50 => p.p50,
            Stat::P90 => p.p90,
            Stat::P99 => p.p99,
            Stat::P999 => p.p99_9,
            Stat::Max => p.max,
            Stat::Mean => p.mean,
        };
        match self {
            Metric::Latency(s) => stat(&summary.latency, s),
            Metric::Overhead(s) => stat(&summary.overhead, s),
            Metric::Errors => summary.failed as f64,
            Metric::ErrorRate => {
                if summary.requests == 0 {
                    0.0
                } else {
                    summary.failed as f64 / summary.requests as f64
                }
            }
            Metric::Wall => summary.wall.as_secs_f64(),
            // A run with failures has no efficiency; it cannot pass an efficiency threshold.
            Metric::Efficiency => summary.efficiency.unwrap_or(0.0),
            Metric::Throughput => summary.throughput,
            Metric::PeakConcurrency => summary.peak_concurrency as f64,
            Metric::Status(low, high) => summary
                .statuses
                .iter()
                .filter(|s| (low..=high).contains(&s.status))
                .map(|s| s.count)
                .sum::<usize>() as f64,
        }
    }
}

/// `5xx` → 500 to 599; `503` → 503 alone; anything else is not a status.
fn status_range(code: &str) -> Option<(u16, u16)> {
    if let Some(class) = code.strip_suffix("xx") {
        let class: u16 = class.parse().ok().filter(|c| (1..=5).contains(c))?;
        return Some((class * 100, class * 100 + 99));
    }
    let code: u16 = code.parse().ok().filter(|c| (100..=599).contains(c))?;
    Some((code, code))
}

impl Rule {
    /// Whether this rule is on failed requests (`errors`, `error-rate`): then failures fail the run
    /// only through it.
    pub fn judges_failures(&self) -> bool {
        matches!(self.metric, Metric::Errors | Metric::ErrorRate)
    }

    /// Whether this rule needs an ideal to compare the run with (`efficiency`).
    pub fn needs_ideal(&self) -> bool {
        self.metric == Metric::Efficiency
    }

    /// Whether `summary` breaks this rule, and the measured value.
    pub fn check(&self, summary: &Summary) -> (bool, f64) {
        let value = self.metric.value(summary);
        let broken = match self.op {
            Op::Gt => value > self.limit,
            Op::Ge => value >= self.limit,
            Op::Lt => value < self.limit,
            Op::Le => value <= self.limit,
        };
        (broken, value)
    }

    /// A measured value of this rule's metric, in its unit.
    pub fn show(&self, value: f64) -> String {
        if self.metric.is_duration() {
            crate::render::short(value)
        } else if value.fract() == 0.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.3}")
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses `p99>2.5s,errors>0`: comma-separated `METRIC OP VALUE`.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        rules.push(parse_rule(part)?);
    }
    if rules.is_empty() {
        return Err(format!("{text:?} has no rule; e.g. 'p99>2.5s,errors>0'"));
    }
    Ok(rules)
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let at = text
        .find(['<', '>'])
        .ok_or_else(|| format!("{text:?}: expected METRIC>VALUE or METRIC<VALUE, e.g. p99>2.5s"))?;
    let (name, rest) = text.split_at(at);
    let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else {
        (Op::Lt, &rest[1..])
    };
    let metric = Metric::parse(name).ok_or_else(|| {
        format!(
            "{text:?}: unknown metric {:?}; use p50 p90 p99 p99.9 max mean, overhead-p99 (etc.), \
             errors, error-rate, wall, efficiency, throughput, peak-concurrency, or status-5xx \
             (a class) or status-503 (a code)",
            name.trim()
        )
    })?;
    let value = value.trim();
    let limit = if metric.is_duration() {
        parse_duration(value)
            .map(|d| d.as_secs_f64())
            .map_err(|err| format!("{text:?}: {err}"))?
    } else {
        parse_number(value).ok_or_else(|| {
            format!(
                "{text:?}: {value:?} is not a number 0 or more (digits, optionally a dot and up \
                 to 9 decimals)"
            )
        })?
    };
    if let Some(why) = never_crossed(metric, op, limit) {
        return Err(format!("{text:?} can never be crossed: {why}"));
    }
    Ok(Rule {
        metric,
        op,
        limit,
        text: text.to_owned(),
    })
}

/// A number in the delay grammar (digits, optionally a dot and up to 9 digits), as `f64`.
fn parse_number(text: &str) -> Option<f64> {
    slowlab_server::Delay::parse(text)
        .ok()
        .map(|d| d.as_duration().as_secs_f64())
}

/// Why `metric op limit` can never be true, if so: a rule that can never fail the run would
/// silently check nothing. Every metric is 0 or more, and an error rate at most 1.
fn never_crossed(metric: Metric, op: Op, limit: f64) -> Option<&'static str> {
    match (metric, op) {
        (_, Op::Lt) if limit <= 0.0 => Some("no measurement is below 0"),
        (Metric::ErrorRate, Op::Gt) if limit >= 1.0 => Some("the error rate is at most 1"),
        (Metric::ErrorRate, Op::Ge) if limit > 1.0 => Some("the error rate is at most 1"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_p99_9_names_it() {
        for name in ["p99.9", "p999", "p99_9", "latency-p99_9", "overhead_p99_9"] {
            let rule = &parse(&format!("{name}>1s")).unwrap()[0];
            assert!(
                matches!(
                    rule.metric,
                    Metric::Latency(Stat::P999) | Metric::Overhead(Stat::P999)
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn durations_take_every_unit_and_bare_seconds() {
        for (text, seconds) in [
            ("1us", 1e-6),
            ("250ms", 0.25),
            ("2.5s", 2.5),
            ("1m", 60.0),
            ("3", 3.0),
        ] {
            let limit = parse(&format!("p99>{text}")).unwrap()[0].limit;
            assert!((limit - seconds).abs() < 1e-12, "{text}: {limit}");
        }
    }

    #[test]
    fn thresholds_that_can_never_be_crossed_are_refused() {
        for impossible in [
            "error-rate>2",
            "error-rate>1",
            "error-rate>=1.5",
            "p99<0",
            "errors<0",
        ] {
            let err = parse(impossible).unwrap_err();
            assert!(err.contains("can never be crossed"), "{impossible}: {err}");
        }
        for possible in [
            "error-rate>=1",
            "error-rate>0.99",
            "errors<=0",
            "errors>5",
            "p99<1us",
        ] {
            assert!(parse(possible).is_ok(), "{possible}");
        }
        assert!(
            parse("errors>-1").is_err(),
            "negative numbers are not numbers here"
        );
    }

    #[test]
    fn rules_parse() {
        let rules = parse("p99>2.5s, errors>0,overhead-p50>=20ms,efficiency<0.9").unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].metric, Metric::Latency(Stat::P99));
        assert_eq!(rules[0].limit, 2.5);
        assert_eq!(rules[1].metric, Metric::Errors);
        assert_eq!(rules[2].op, Op::Ge);
        assert!((rules[2].limit - 0.02).abs() < 1e-12);
        assert_eq!(rules[3].op, Op::Lt);
        assert_eq!(
            parse("p99.9>1").unwrap()[0].metric,
            Metric::Latency(Stat::P999)
        );
        for bad in [
            "", "p99", "p98>1s", "p99>fast", "errors>x", "p99>nan", "p99>1h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
