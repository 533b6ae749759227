//! Many requests at a glance: requests in flight and completions over time, and a latency
//! histogram. The SVG report and the terminal timeline both draw these past a few dozen requests.

use super::Timing;

/// The most requests in flight during each of `buckets` equal slices of `[0, end)`.
pub fn in_flight(timings: &[Timing], end: f64, buckets: usize) -> Vec<usize> {
    let width = end.max(1e-9) / buckets as f64;
    // Ends sort before starts at the same instant, as in the summary's peak concurrency.
    let mut events: Vec<(f64, i8)> = Vec::with_capacity(timings.len() * 2);
    for t in timings.iter().filter(|t| t.end > t.start) {
        events.push((t.start, 1));
        events.push((t.end, -1));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut peaks = vec![0usize; buckets];
    let (mut now, mut next) = (0usize, 0usize);
    for (bucket, peak) in peaks.iter_mut().enumerate() {
        let (bucket_start, bucket_end) = (bucket as f64 * width, (bucket + 1) as f64 * width);
        // What crosses the slice's start counts as the slice's first instant.
        while next < events.len() && events[next].0 <= bucket_start {
            now = if events[next].1 > 0 {
                now + 1
            } else {
                now.saturating_sub(1)
            };
            next += 1;
        }
        *peak = now;
        while next < events.len() && (events[next].0 < bucket_end || bucket + 1 == buckets) {
            if events[next].1 > 0 {
                now += 1;
                *peak = (*peak).max(now);
            } else {
                now = now.saturating_sub(1);
            }
            next += 1;
        }
    }
    peaks
}

/// How many requests ended in each of `buckets` equal slices of `[0, end]`.
pub fn completions(timings: &[Timing], end: f64, buckets: usize) -> Vec<usize> {
    let mut counts = vec![0usize; buckets];
    for t in timings {
        counts[bucket_of(t.end, end, buckets)] += 1;
    }
    counts
}

/// A histogram of latencies: `bins` equal bins from the shortest to the longest.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Lower edge of the first bin, seconds.
    pub low: f64,
    /// Upper edge of the last bin, seconds.
    pub high: f64,
    /// Requests in each bin.
    pub counts: Vec<usize>,
}

/// The latencies of `timings` in `bins` bins.
pub fn latency_histogram(timings: &[Timing], bins: usize) -> Histogram {
    let latencies: Vec<f64> = timings.iter().map(Timing::latency).collect();
    let low = latencies.iter().copied().fold(f64::INFINITY, f64::min);
    let high = latencies.iter().copied().fold(0.0, f64::max);
    let low = if low.is_finite() { low } else { 0.0 };
    let mut counts = vec![0usize; bins];
    for latency in latencies {
        counts[bucket_of(latency - low, high - low, bins)] += 1;
    }
    Histogram { low, high, counts }
}

impl Histogram {
    /// `bins` equal bins from the smallest value to the largest, of values that come with counts
    /// (as an HDR histogram gives them).
    pub fn of_counts(values: &[(f64, usize)], bins: usize) -> Histogram {
        let low = values.iter().map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
        let high = values.iter().map(|(v, _)| *v).fold(0.0, f64::max);
        let low = if low.is_finite() { low } else { 0.0 };
        let mut counts = vec![0usize; bins];
        for &(value, count) in values {
            counts[bucket_of(value - low, high - low, bins)] += count;
        }
        Histogram { low, high, counts }
    }
}

/// The `n` requests that took longest, longest first.
pub fn slowest(timings: &[Timing], n: usize) -> Vec<&Timing> {
    let mut all: Vec<&Timing> = timings.iter().collect();
    all.sort_by(|a, b| {
        b.latency()
            .total_cmp(&a.latency())
            .then(a.index.cmp(&b.index))
    });
    all.truncate(n);
    all
}

/// The bucket of `value` among `buckets` equal slices of `[0, end]`; `end` itself is in the last.
fn bucket_of(value: f64, end: f64, buckets: usize) -> usize {
    if end <= 0.0 {
        return 0;
    }
    ((value / end * buckets as f64) as usize).min(buckets - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(index: usize, start: f64, end: f64) -> Timing {
        Timing {
            index,
            start,
            end,
            ok: true,
            ..Timing::default()
        }
    }

    #[test]
    fn in_flight_counts_overlaps_per_slice() {
        // Three at once in the first half, one in the second.
        let t = [
            timing(0, 0.0, 0.5),
            timing(1, 0.0, 0.5),
            timing(2, 0.1, 0.9),
            timing(3, 0.5, 1.0),
        ];
        assert_eq!(in_flight(&t, 1.0, 2), [3, 2]);
        assert_eq!(completions(&t, 1.0, 2), [0, 4]);
        assert_eq!(completions(&t, 1.0, 4), [0, 0, 2, 2]);
    }

    #[test]
    fn back_to_back_never_overlaps() {
        let t: Vec<Timing> = (0..4)
            .map(|i| timing(i, i as f64, i as f64 + 1.0))
            .collect();
        assert_eq!(in_flight(&t, 4.0, 4), [1, 1, 1, 1]);
    }

    #[test]
    fn histogram_of_counted_values() {
        let h = Histogram::of_counts(&[(1.0, 3), (1.5, 1), (2.0, 5)], 2);
        assert_eq!((h.low, h.high, h.counts), (1.0, 2.0, vec![3, 6]));
    }

    #[test]
    fn histogram_and_slowest() {
        let t = [
            timing(0, 0.0, 1.0),
            timing(1, 0.0, 2.0),
            timing(2, 0.0, 2.0),
        ];
        let h = latency_histogram(&t, 2);
        assert_eq!((h.low, h.high, h.counts), (1.0, 2.0, vec![1, 2]));
        let s: Vec<usize> = slowest(&t, 2).iter().map(|t| t.index).collect();
        assert_eq!(s, [1, 2]);
    }
}
