//! `--fail-on 'p99>2.5s,errors>0'`: thresholds that fail a run, for CI.

use std::fmt;

use slowlab_client::Summary;

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
                "p99.9" | "p999" | "p99_9" => Stat::P999,
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
        }
    }
}

impl Rule {
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
        return Err(format!(
            "--fail-on {text:?} has no rule; e.g. 'p99>2.5s,errors>0'"
        ));
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
             errors, error-rate, wall, efficiency, throughput or peak-concurrency",
            name.trim()
        )
    })?;
    let value = value.trim();
    let limit = if metric.is_duration() {
        parse_duration(value)
    } else {
        value.parse::<f64>().ok()
    }
    .filter(|v| v.is_finite())
    .ok_or_else(|| {
        if metric.is_duration() {
            format!("{text:?}: {value:?} is not a duration; e.g. 2.5s or 250ms")
        } else {
            format!("{text:?}: {value:?} is not a number")
        }
    })?;
    Ok(Rule {
        metric,
        op,
        limit,
        text: text.to_owned(),
    })
}

/// Seconds from `2.5s`, `250ms`, `900us`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us").or(text.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    number.trim().parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in ["", "p99", "p98>1s", "p99>fast", "errors>x", "p99>nan"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
