use proptest::prelude::*;

use super::*;
use crate::model::labels::Labels;
use crate::model::metrics::{Histogram, STALE_NAN_BITS};

const M5: i64 = 5 * 60 * 1000;
const H1: i64 = 3600 * 1000;

fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
    points.iter().map(|&(timestamp_ms, value)| Sample { timestamp_ms, value }).collect()
}

fn series(name: &str, points: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: Labels::from_pairs([("__name__", name)]),
        samples: samples(points),
        histograms: Vec::new(),
    }
}

fn point(timestamp_ms: i64, count: u64, sum: f64, min: f64, max: f64, counter: f64) -> AggrPoint {
    AggrPoint { timestamp_ms, count, sum, min, max, counter }
}

#[test]
fn raw_to_five_minutes_aggregates_aligned_windows_at_the_last_sample() {
    let raw = samples(&[(0, 1.0), (60_000, 3.0), (M5 - 1, 2.0), (M5, 10.0), (3 * M5 + 7, 4.0)]);
    assert_eq!(
        downsample_samples(&raw, M5),
        vec![
            point(M5 - 1, 3, 6.0, 1.0, 3.0, 2.0 + 3.0),
            point(M5, 1, 10.0, 10.0, 10.0, 10.0 + 3.0),
            point(3 * M5 + 7, 1, 4.0, 4.0, 4.0, 4.0 + 13.0),
        ],
        "2 < 3 and 4 < 10 are resets: the earlier value is carried in the counter"
    );
}

#[test]
fn counter_is_the_reset_corrected_value_so_increase_matches_raw() {
    // 10 → 20 → 5 (reset) → 15 → 2 (reset) → 4: increase over the whole range is
    // 10 + 5 + 10 + 2 + 2 = 29 by Prometheus' rate semantics.
    let raw = samples(&[(0, 10.0), (1, 20.0), (2, 5.0), (M5, 15.0), (M5 + 1, 2.0), (2 * M5, 4.0)]);
    let points = downsample_samples(&raw, M5);
    let counters: Vec<f64> = points.iter().map(|p| p.counter).collect();
    assert_eq!(counters, vec![25.0, 2.0 + 35.0, 4.0 + 35.0]);
    assert_eq!(counters[2] - 10.0, 29.0);
}

#[test]
fn stale_markers_and_nan_values_are_skipped() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let raw = samples(&[(0, 1.0), (1, stale), (2, f64::NAN), (M5, stale)]);
    assert_eq!(downsample_samples(&raw, M5), vec![point(0, 1, 1.0, 1.0, 1.0, 1.0)]);
    assert!(downsample_samples(&samples(&[(0, stale)]), M5).is_empty());
}

#[test]
fn negative_timestamps_align_to_the_window_below() {
    let raw = samples(&[(-1, 1.0), (0, 2.0)]);
    let points = downsample_samples(&raw, M5);
    assert_eq!(points.iter().map(|p| p.timestamp_ms).collect::<Vec<_>>(), vec![-1, 0]);
}

#[test]
fn histograms_stay_raw_and_histogram_only_series_are_dropped() {
    let mut with_floats = series("a", &[(0, 1.0)]);
    with_floats.histograms.push(Histogram { timestamp: 0, ..Histogram::default() });
    let histogram_only = SeriesSamples {
        labels: Labels::from_pairs([("__name__", "b")]),
        samples: Vec::new(),
        histograms: vec![Histogram { timestamp: 5, ..Histogram::default() }],
    };
    let out = downsample_raw(&[with_floats, histogram_only], Tier::FiveMinutes).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].labels.metric_name(), Some("a"));
    assert_eq!(out[0].points, vec![point(0, 1, 1.0, 1.0, 1.0, 1.0)]);
}

#[test]
fn five_minutes_to_one_hour_adds_counts_and_keeps_extremes() {
    let five = vec![
        point(M5 - 1, 2, 3.0, 1.0, 2.0, 2.0),
        point(2 * M5, 1, 7.0, 7.0, 7.0, 7.0),
        point(H1 + 5, 1, 1.0, 1.0, 1.0, 1.0),
    ];
    assert_eq!(
        downsample_points(&five, H1),
        vec![point(2 * M5, 3, 10.0, 1.0, 7.0, 7.0), point(H1 + 5, 1, 1.0, 1.0, 1.0, 8.0)],
        "a lower 5m counter is a reset between blocks: corrected like a raw reset"
    );
}

#[test]
fn tiers_must_get_coarser() {
    let raw = [series("a", &[(0, 1.0)])];
    assert!(matches!(downsample_raw(&raw, Tier::Raw), Err(DownsampleError::NotCoarser { .. })));
    let aggr = downsample_raw(&raw, Tier::OneHour).unwrap();
    for (from, to) in [
        (Tier::OneHour, Tier::FiveMinutes),
        (Tier::FiveMinutes, Tier::FiveMinutes),
        (Tier::Raw, Tier::OneHour),
        (Tier::FiveMinutes, Tier::Raw),
    ] {
        assert!(downsample_aggr(&aggr, from, to).is_err(), "{from:?} → {to:?}");
    }
    assert!(downsample_aggr(&aggr, Tier::FiveMinutes, Tier::OneHour).is_ok());
}

/// Raw samples over a few hours: strictly increasing times, integer values (so sums are exact
/// in any order), counter resets, stale markers and NaNs.
fn raw_samples() -> impl Strategy<Value = Vec<Sample>> {
    let step = (1i64..400_000, 0u32..20, 0i64..1000);
    (-3 * H1..3 * H1, proptest::collection::vec(step, 0..200)).prop_map(|(start, steps)| {
        let mut t = start;
        let mut value = 0.0;
        let mut out = Vec::with_capacity(steps.len());
        for (gap, kind, amount) in steps {
            t += gap;
            let sample_value = match kind {
                0 => f64::from_bits(STALE_NAN_BITS),
                1 => f64::NAN,
                2 | 3 => {
                    value = amount as f64; // a reset (or a jump)
                    value
                }
                _ => {
                    value += (amount % 50) as f64;
                    value
                }
            };
            out.push(Sample { timestamp_ms: t, value: sample_value });
        }
        out
    })
}

/// The reset-corrected raw counter at each non-NaN sample (Prometheus' `rate` view).
fn corrected_raw(raw: &[Sample]) -> Vec<(i64, f64)> {
    let mut previous: Option<f64> = None;
    let mut total = 0.0;
    let mut out = Vec::new();
    for s in raw.iter().filter(|s| !s.value.is_nan()) {
        total += match previous {
            None => s.value,
            Some(p) if s.value < p => s.value,
            Some(p) => s.value - p,
        };
        previous = Some(s.value);
        out.push((s.timestamp_ms, total));
    }
    out
}

proptest! {
    #[test]
    fn five_minutes_then_one_hour_equals_raw_to_one_hour(raw in raw_samples()) {
        let via_five = downsample_points(&downsample_samples(&raw, M5), H1);
        let direct = downsample_samples(&raw, H1);
        prop_assert_eq!(via_five, direct);
    }

    #[test]
    fn points_cover_every_value_once_and_counters_track_the_raw_increase(raw in raw_samples()) {
        let values: Vec<&Sample> = raw.iter().filter(|s| !s.value.is_nan()).collect();
        let points = downsample_samples(&raw, M5);
        prop_assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), values.len() as u64);
        prop_assert!(points.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
        prop_assert!(points.windows(2).all(|w| w[0].counter <= w[1].counter));
        let corrected = corrected_raw(&raw);
        for p in &points {
            prop_assert!(p.min <= p.max);
            let window = p.timestamp_ms.div_euclid(M5);
            let in_window: Vec<f64> = values
                .iter()
                .filter(|s| s.timestamp_ms.div_euclid(M5) == window)
                .map(|s| s.value)
                .collect();
            prop_assert_eq!(p.sum, in_window.iter().sum::<f64>());
            let at = corrected.iter().find(|(t, _)| *t == p.timestamp_ms).map(|&(_, c)| c);
            prop_assert_eq!(Some(p.counter), at);
        }
    }
}
