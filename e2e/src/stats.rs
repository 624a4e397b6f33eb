//! Summaries of measured durations.

use serde_json::{Value, json};
use std::time::Duration;

/// `d` in milliseconds, to the microsecond.
pub use rdg_infocast::report::ms;

/// `d` in whole milliseconds (truncated), for progress lines.
pub fn whole_ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The value at percentile `p` (0–100) of `sorted` by the nearest-rank method: the smallest
/// sample such that at least `p` % of the samples are not greater (so p99 of 30 samples is
/// the largest one).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "a percentile of no samples");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `{"p50", "p99", "max", "min", "mean", "n"}` of `values` in milliseconds, rounded to
/// 0.1 ms; `null` when there are none.
pub fn summary(values: &[f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    json!({
        "p50": round1(percentile(&sorted, 50.0)),
        "p99": round1(percentile(&sorted, 99.0)),
        "max": round1(sorted[sorted.len() - 1]),
        "min": round1(sorted[0]),
        "mean": round1(mean),
        "n": sorted.len(),
    })
}

/// `x` rounded to one decimal.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `x` rounded to three decimals.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=30).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 15.0);
        assert_eq!(percentile(&v, 99.0), 30.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 198.0);
    }
}
