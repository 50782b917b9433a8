//! OTLP exponential histogram data point → Prometheus native histogram (integer flavour).
//!
//! Semantics follow Prometheus 2.53.3 `storage/remote/otlptranslator/prometheusremotewrite/
//! histograms.go` (`exponentialToNativeHistogram`, `convertBucketsLayout`):
//!
//! * scale < -4 is rejected; scale > 8 is reduced to 8 by merging `2^(scale-8)` neighbouring
//!   buckets (a bucket of index `i` moves to `i >> (scale-8)`);
//! * OTLP bucket `i` covers `(base^i, base^(i+1)]`, Prometheus bucket `i` covers
//!   `(base^(i-1), base^i]`, so indexes shift by one;
//! * the layout is sparse: the first span starts at the first bucket's index, zero buckets are
//!   skipped, gaps of up to two buckets are filled with explicit zeros and longer gaps start a new
//!   span; the last bucket is always written (these are Prometheus' choices, kept so that the
//!   spans are identical);
//! * zero threshold is Prometheus' default `1e-128` (2.53 ignores OTLP `zero_threshold`), reset
//!   hint UNKNOWN, sum 0 when OTLP has none; a point flagged "no recorded value" becomes a stale
//!   histogram (stale-NaN sum, count `0x7ff0000000000002` as 2.53 writes it).
//!
//! Difference from 2.53, on purpose: when downscaling, 2.53 walks the original buckets and puts a
//! merged bucket that follows an all-zero merged bucket one index too low (its "pending" index is
//! not advanced over zeros). Strata merges first and lays out the merged buckets, so every count
//! lands at the index its bounds say; without downscaling both give the same spans and deltas.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

use crate::model::metrics::{
    BucketSpan, Histogram, HistogramCount, HistogramZeroCount, STALE_NAN_BITS,
};

/// Prometheus' default zero bucket width for native histograms.
pub const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;
/// Smallest and largest schema Prometheus accepts for exponential native histograms.
pub const MIN_SCALE: i32 = -4;
pub const MAX_SCALE: i32 = 8;

/// Why a data point cannot become a native histogram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExponentialError {
    #[error("scale {scale} is below the smallest native histogram schema {MIN_SCALE}")]
    ScaleTooSmall { scale: i32 },
}

/// Converts one point; `timestamp_ms` is the point's time already in milliseconds.
pub fn to_native_histogram(
    point: &ExponentialHistogramDataPoint,
    timestamp_ms: i64,
    no_recorded_value: bool,
) -> Result<Histogram, ExponentialError> {
    if point.scale < MIN_SCALE {
        return Err(ExponentialError::ScaleTooSmall { scale: point.scale });
    }
    let scale_down = (point.scale - MAX_SCALE).max(0) as u32;
    let schema = point.scale.min(MAX_SCALE);
    let (positive_spans, positive_deltas) = sparse_layout(point.positive.as_ref(), scale_down);
    let (negative_spans, negative_deltas) = sparse_layout(point.negative.as_ref(), scale_down);
    let (sum, count) = if no_recorded_value {
        (f64::from_bits(STALE_NAN_BITS), STALE_NAN_BITS)
    } else {
        (point.sum.unwrap_or(0.0), point.count)
    };
    Ok(Histogram {
        count: Some(HistogramCount::Int(count)),
        sum,
        schema,
        zero_threshold: DEFAULT_ZERO_THRESHOLD,
        zero_count: Some(HistogramZeroCount::Int(point.zero_count)),
        negative_spans,
        negative_deltas,
        negative_counts: Vec::new(),
        positive_spans,
        positive_deltas,
        positive_counts: Vec::new(),
        reset_hint: 0,
        timestamp: timestamp_ms,
        custom_values: Vec::new(),
    })
}

/// Dense OTLP buckets → Prometheus spans and count deltas, merging `2^scale_down` buckets.
fn sparse_layout(buckets: Option<&Buckets>, scale_down: u32) -> (Vec<BucketSpan>, Vec<i64>) {
    let Some(buckets) = buckets.filter(|b| !b.bucket_counts.is_empty()) else {
        return (Vec::new(), Vec::new());
    };
    // Prometheus index of OTLP bucket `i`: shifted down by the scale change, then up by one.
    let prometheus_index = |i: usize| ((i64::from(buckets.offset) + i as i64) >> scale_down) + 1;
    let first = prometheus_index(0);
    // Merged counts of consecutive Prometheus indexes `first, first + 1, ...`.
    let mut merged: Vec<u64> = Vec::with_capacity(buckets.bucket_counts.len());
    for (i, count) in buckets.bucket_counts.iter().enumerate() {
        let slot = (prometheus_index(i) - first) as usize;
        debug_assert!(slot <= merged.len(), "merged indexes are consecutive");
        if slot == merged.len() {
            merged.push(*count);
        } else {
            merged[slot] = merged[slot].wrapping_add(*count);
        }
    }

    let mut layout = Layout {
        spans: vec![BucketSpan { offset: first as i32, length: 0 }],
        deltas: Vec::with_capacity(merged.len()),
        previous: 0,
    };
    let last = merged.len() - 1;
    let mut next_index = first;
    for (slot, count) in merged.iter().enumerate() {
        if *count == 0 && slot != last {
            continue;
        }
        let index = first + slot as i64;
        let gap = index - next_index;
        if gap > 2 {
            layout.spans.push(BucketSpan { offset: gap as i32, length: 0 });
        } else {
            for _ in 0..gap {
                layout.push(0);
            }
        }
        layout.push(*count as i64);
        next_index = index + 1;
    }
    (layout.spans, layout.deltas)
}

struct Layout {
    spans: Vec<BucketSpan>,
    deltas: Vec<i64>,
    previous: i64,
}

impl Layout {
    /// Appends one bucket count to the last span.
    fn push(&mut self, count: i64) {
        if let Some(span) = self.spans.last_mut() {
            span.length += 1;
        }
        self.deltas.push(count.wrapping_sub(self.previous));
        self.previous = count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(offset: i32, counts: &[u64]) -> Option<Buckets> {
        Some(Buckets { offset, bucket_counts: counts.to_vec() })
    }

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    /// Absolute (index, count) pairs of a layout, for checking where counts land.
    fn expand(spans: &[BucketSpan], deltas: &[i64]) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let (mut index, mut count, mut d) = (0i64, 0i64, 0usize);
        for s in spans {
            index += i64::from(s.offset);
            for _ in 0..s.length {
                count += deltas[d];
                d += 1;
                out.push((index, count));
                index += 1;
            }
        }
        out
    }

    #[test]
    fn dense_buckets_shift_by_one_and_become_deltas() {
        let (spans, deltas) = sparse_layout(buckets(0, &[3, 5, 2]).as_ref(), 0);
        assert_eq!(spans, [span(1, 3)]);
        assert_eq!(deltas, [3, 2, -3]);
        let (spans, _) = sparse_layout(buckets(-3, &[1]).as_ref(), 0);
        assert_eq!(spans, [span(-2, 1)]);
    }

    #[test]
    fn short_gaps_are_zero_filled_and_long_gaps_split_spans() {
        let (spans, deltas) = sparse_layout(buckets(0, &[3, 0, 0, 4]).as_ref(), 0);
        assert_eq!(spans, [span(1, 4)]);
        assert_eq!(deltas, [3, -3, 0, 4]);
        let (spans, deltas) = sparse_layout(buckets(0, &[3, 0, 0, 0, 4]).as_ref(), 0);
        assert_eq!(spans, [span(1, 1), span(3, 1)]);
        assert_eq!(deltas, [3, 1]);
        // Leading zeros: the first span keeps the first index and may stay empty.
        let (spans, deltas) = sparse_layout(buckets(0, &[0, 0, 0, 0, 0, 7]).as_ref(), 0);
        assert_eq!(spans, [span(1, 0), span(5, 1)]);
        assert_eq!(deltas, [7]);
        // The last bucket is always written, even when zero.
        let (spans, deltas) = sparse_layout(buckets(0, &[3, 0, 0, 0, 0]).as_ref(), 0);
        assert_eq!(spans, [span(1, 1), span(3, 1)]);
        assert_eq!(deltas, [3, -3]);
        assert_eq!(sparse_layout(buckets(5, &[]).as_ref(), 0), (vec![], vec![]));
        assert_eq!(sparse_layout(None, 0), (vec![], vec![]));
    }

    #[test]
    fn downscaling_merges_neighbours_at_the_right_index() {
        // Scale 10 → 8: four OTLP buckets per Prometheus bucket. OTLP 0..=3 → index 1, 4..=7 → 2.
        let (spans, deltas) = sparse_layout(buckets(0, &[1, 1, 1, 1, 2, 2]).as_ref(), 2);
        assert_eq!(expand(&spans, &deltas), [(1, 4), (2, 4)]);
        // Negative offsets shift arithmetically (floor): OTLP -1 → -1 >> 1 = -1 → index 0.
        let (spans, deltas) = sparse_layout(buckets(-1, &[5, 6, 7]).as_ref(), 1);
        assert_eq!(expand(&spans, &deltas), [(0, 5), (1, 13)]);
        // A merged bucket after an all-zero merged bucket stays where it belongs.
        let (spans, deltas) = sparse_layout(buckets(0, &[3, 0, 0, 0, 5, 6]).as_ref(), 1);
        assert_eq!(expand(&spans, &deltas), [(1, 3), (2, 0), (3, 11)]);
    }

    #[test]
    fn scale_limits_and_staleness() {
        let mut point = ExponentialHistogramDataPoint {
            scale: 12,
            count: 10,
            sum: Some(2.5),
            zero_count: 1,
            positive: buckets(0, &[1; 32]),
            negative: buckets(-2, &[4]),
            ..Default::default()
        };
        let h = to_native_histogram(&point, 1234, false).unwrap();
        assert_eq!(h.schema, 8);
        assert_eq!(expand(&h.positive_spans, &h.positive_deltas), [(1, 16), (2, 16)]);
        assert_eq!(expand(&h.negative_spans, &h.negative_deltas), [(0, 4)]);
        assert_eq!(h.count, Some(HistogramCount::Int(10)));
        assert_eq!(h.zero_count, Some(HistogramZeroCount::Int(1)));
        assert_eq!((h.sum, h.timestamp, h.zero_threshold, h.reset_hint), (2.5, 1234, 1e-128, 0));

        let stale = to_native_histogram(&point, 1234, true).unwrap();
        assert_eq!(stale.sum.to_bits(), STALE_NAN_BITS);
        assert_eq!(stale.count, Some(HistogramCount::Int(STALE_NAN_BITS)));

        point.scale = -4;
        assert_eq!(to_native_histogram(&point, 0, false).unwrap().schema, -4);
        point.scale = -5;
        assert_eq!(
            to_native_histogram(&point, 0, false).unwrap_err(),
            ExponentialError::ScaleTooSmall { scale: -5 }
        );
        point.sum = None;
        point.scale = 0;
        assert_eq!(to_native_histogram(&point, 0, false).unwrap().sum, 0.0);
    }
}
