//! Histograms that travel: the HDR histograms of a summary, written into a report in a form that
//! merges exactly.
//!
//! Percentiles cannot be combined (the median of two medians is nobody's median), but histograms
//! can: adding the counts of two histograms gives the histogram of the union. A report therefore
//! stores each histogram whole, in HdrHistogram's standard V2 + deflate encoding (readable by the
//! HdrHistogram libraries of other languages), as base64 text in the JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
pub use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

use crate::summary::Percentiles;

/// Significant figures kept by every histogram of a run: values are exact to 0.1%.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// An empty histogram of microseconds, as every summary keeps them.
pub fn new_micros() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures are valid")
}

/// Why a stored histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The text is not base64.
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 encoding.
    #[error("histogram is not in HdrHistogram's V2 encoding: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    /// Two histograms could not be added.
    #[error("histograms cannot be added: {0:?}")]
    Add(hdrhistogram::AdditionError),
}

/// `histogram` in V2 + deflate encoding, as base64.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .expect("writing to a Vec cannot fail, and u64 counts always encode");
    STANDARD.encode(bytes)
}

/// Reads back what [`encode`] wrote, as an auto-resizing histogram (so that adding others with
/// larger values into it works, as it does for the histograms a run records into).
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = STANDARD.decode(text.trim())?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HistogramError::Decode)?;
    histogram.auto(true);
    Ok(histogram)
}

/// The percentiles of a histogram of microseconds, in seconds, with `max` (seconds) known exactly
/// from elsewhere: the histogram keeps values to 0.1%, so no percentile is allowed past it.
pub fn percentiles(histogram: &Histogram<u64>, max: f64) -> Percentiles {
    if histogram.is_empty() {
        return Percentiles::default();
    }
    let at = |q: f64| (histogram.value_at_quantile(q) as f64 / 1e6).min(max);
    Percentiles {
        count: histogram.len(),
        mean: histogram.mean() / 1e6,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        p99_9: at(0.999),
        max,
    }
}

/// Adds `other`'s counts into `into`, growing its range when needed.
pub fn add(into: &mut Histogram<u64>, other: &Histogram<u64>) -> Result<(), HistogramError> {
    into.add(other).map_err(HistogramError::Add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[u64]) -> Histogram<u64> {
        let mut histogram = new_micros();
        for &value in values {
            histogram.record(value).unwrap();
        }
        histogram
    }

    #[test]
    fn encoding_round_trips() {
        let histogram = of(&[1, 7, 7, 250_000, 5_000_000, 3_600_000_000]);
        let back = decode(&encode(&histogram)).unwrap();
        assert_eq!(back, histogram);
        assert_eq!(back.len(), 6);
        assert_eq!(back.max(), histogram.max());
    }

    #[test]
    fn an_empty_histogram_round_trips() {
        let histogram = new_micros();
        assert_eq!(decode(&encode(&histogram)).unwrap().len(), 0);
    }

    #[test]
    fn adding_gives_the_histogram_of_the_union() {
        let a = [10, 20, 30_000, 1_000_000];
        let b = [15, 999_999, 42, 5_000_000_000];
        let mut merged = decode(&encode(&of(&a))).unwrap();
        add(&mut merged, &decode(&encode(&of(&b))).unwrap()).unwrap();
        let union: Vec<u64> = a.iter().chain(&b).copied().collect();
        let whole = of(&union);
        assert_eq!(merged.len(), whole.len());
        for quantile in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(quantile),
                whole.value_at_quantile(quantile)
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode("%%%"), Err(HistogramError::Base64(_))));
        assert!(matches!(decode("AAAA"), Err(HistogramError::Decode(_))));
    }
}
