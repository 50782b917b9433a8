//! Round-trip proptests for every schema (what goes in comes out, grouped and sorted as the
//! schema says, floats bit for bit) and the pruning reads (metric name + time, trace id).

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::common::labels_json;
use super::metrics::{encode_metrics_with, SeriesKey};
use super::*;
use crate::model::labels::{Label, Labels, METRIC_NAME};
use crate::model::logs::LogEntry;
use crate::model::metrics::{Histogram, HistogramCount, Sample};
use crate::storage::{AggrPoint, LogStreamData, SeriesAggr, SeriesSamples, SpanRecord, Tier};

fn labels_strategy() -> impl Strategy<Value = Labels> {
    let names = prop::sample::select(vec!["__name__", "job", "instance", "Zone", "le", "a_b"]);
    let values = prop::string::string_regex("[a-z\"\\\\é{}=,]{1,6}").unwrap();
    prop::collection::vec((names, values), 0..4).prop_map(Labels::from_pairs)
}

fn float_bits() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(crate::model::metrics::STALE_NAN_BITS)),
        (-1e6f64..1e6).prop_map(|v| (v * 100.0).round() / 100.0),
    ]
}

fn histogram_strategy() -> impl Strategy<Value = Histogram> {
    (any::<i64>(), 0u64..1000, -1e3f64..1e3, prop::collection::vec(-5i64..5, 0..4)).prop_map(
        |(timestamp, count, sum, deltas)| Histogram {
            count: Some(HistogramCount::Int(count)),
            sum,
            schema: 3,
            positive_deltas: deltas,
            timestamp,
            ..Histogram::default()
        },
    )
}

fn series_strategy() -> impl Strategy<Value = Vec<SeriesSamples>> {
    let samples = prop::collection::vec(
        (-5_000i64..5_000, float_bits()).prop_map(|(t, v)| Sample { timestamp_ms: t, value: v }),
        0..12,
    );
    let histograms = prop::collection::vec(histogram_strategy(), 0..2);
    prop::collection::vec(
        (labels_strategy(), samples, histograms).prop_map(|(labels, samples, histograms)| {
            SeriesSamples { labels, samples, histograms }
        }),
        0..6,
    )
}

/// Floats compared by bits, so NaNs compare as stored.
/// A series with its float samples as `(timestamp, bits)`.
type SeriesBits = (Labels, Vec<(i64, u64)>, Vec<Histogram>);

fn bits(series: &[SeriesSamples]) -> Vec<SeriesBits> {
    series
        .iter()
        .map(|s| {
            let samples = s.samples.iter().map(|p| (p.timestamp_ms, p.value.to_bits())).collect();
            (s.labels.clone(), samples, s.histograms.clone())
        })
        .collect()
}

/// What decoding must return: series merged by label set, ordered by (name, other labels),
/// samples stably sorted by time, empty series gone.
fn expected_metrics(input: &[SeriesSamples]) -> Vec<SeriesSamples> {
    let mut merged: BTreeMap<(String, String), SeriesSamples> = BTreeMap::new();
    for s in input {
        let key = SeriesKey::of(&s.labels);
        let entry = merged.entry((key.name, key.labels)).or_insert_with(|| SeriesSamples {
            labels: s.labels.clone(),
            ..SeriesSamples::default()
        });
        entry.samples.extend(s.samples.iter().copied());
        entry.histograms.extend(s.histograms.iter().cloned());
    }
    merged
        .into_values()
        .filter(|s| !s.samples.is_empty() || !s.histograms.is_empty())
        .map(|mut s| {
            s.samples.sort_by_key(|p| p.timestamp_ms);
            s.histograms.sort_by_key(|h| h.timestamp);
            s
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn metrics_round_trip(input in series_strategy()) {
        let expected = expected_metrics(&input);
        match encode_metrics(&input) {
            Err(BlockError::Empty { .. }) => prop_assert!(expected.is_empty()),
            Err(other) => prop_assert!(false, "encode failed: {other}"),
            Ok(block) => {
                let rows: usize =
                    expected.iter().map(|s| s.samples.len() + s.histograms.len()).sum();
                prop_assert_eq!(block.rows, rows as u64);
                prop_assert_eq!(block.series, expected.len() as u64);
                let decoded = decode_metrics(block.data.clone()).unwrap();
                prop_assert_eq!(bits(&decoded), bits(&expected));
                let verified = inspect::verify(block.data).unwrap();
                prop_assert!(verified.unsorted.is_empty(), "{:?}", verified.unsorted);
                prop_assert_eq!(verified.min_time_ms, block.min_time_ms);
                prop_assert_eq!(verified.max_time_ms, block.max_time_ms);
            }
        }
    }

    #[test]
    fn metrics_filtered_read_matches_filtering_everything(
        input in series_strategy(),
        name in prop::sample::select(vec!["", "a", "{", "zz"]),
        min_t in -6_000i64..6_000,
        width in 0i64..6_000,
    ) {
        let Ok(block) = encode_metrics_with(&input, 3) else { return Ok(()) };
        let everything = decode_metrics(block.data.clone()).unwrap();
        let filtered = decode_metrics_where(block.data, Some(name), min_t, min_t + width).unwrap();
        let expected: Vec<SeriesSamples> = everything
            .into_iter()
            .filter(|s| s.labels.metric_name().unwrap_or_default() == name)
            .map(|mut s| {
                s.samples.retain(|p| (min_t..=min_t + width).contains(&p.timestamp_ms));
                s.histograms.retain(|h| (min_t..=min_t + width).contains(&h.timestamp));
                s
            })
            .filter(|s| !s.samples.is_empty() || !s.histograms.is_empty())
            .collect();
        prop_assert_eq!(bits(&filtered), bits(&expected));
    }

    #[test]
    fn aggr_round_trip(
        input in prop::collection::vec(
            (labels_strategy(), prop::collection::vec(
                (any::<i64>(), any::<u64>(), float_bits(), float_bits(), float_bits(), float_bits()),
                0..8,
            )),
            0..5,
        ),
        one_hour in any::<bool>(),
    ) {
        let tier = if one_hour { Tier::OneHour } else { Tier::FiveMinutes };
        let series: Vec<SeriesAggr> = input
            .into_iter()
            .map(|(labels, points)| SeriesAggr {
                labels,
                points: points
                    .into_iter()
                    .map(|(timestamp_ms, count, sum, min, max, counter)| AggrPoint {
                        timestamp_ms, count, sum, min, max, counter,
                    })
                    .collect(),
            })
            .collect();
        let mut merged: BTreeMap<(String, String), SeriesAggr> = BTreeMap::new();
        for s in &series {
            let key = SeriesKey::of(&s.labels);
            merged
                .entry((key.name, key.labels))
                .or_insert_with(|| SeriesAggr { labels: s.labels.clone(), points: Vec::new() })
                .points
                .extend(s.points.iter().copied());
        }
        let expected: Vec<SeriesAggr> = merged
            .into_values()
            .filter(|s| !s.points.is_empty())
            .map(|mut s| { s.points.sort_by_key(|p| p.timestamp_ms); s })
            .collect();
        let as_bits = |list: &[SeriesAggr]| -> Vec<(Labels, Vec<[u64; 6]>)> {
            list.iter().map(|s| (s.labels.clone(), s.points.iter().map(|p| [
                p.timestamp_ms as u64, p.count, p.sum.to_bits(), p.min.to_bits(),
                p.max.to_bits(), p.counter.to_bits(),
            ]).collect())).collect()
        };
        match encode_aggr(&series, tier) {
            Err(BlockError::Empty { .. }) => prop_assert!(expected.is_empty()),
            Err(other) => prop_assert!(false, "encode failed: {other}"),
            Ok(block) => {
                prop_assert_eq!(block_info(&block.data).unwrap().0.tier, tier);
                let decoded = decode_aggr(block.data.clone()).unwrap();
                prop_assert_eq!(as_bits(&decoded), as_bits(&expected));
                prop_assert!(inspect::verify(block.data).unwrap().unsorted.is_empty());
            }
        }
    }

    #[test]
    fn logs_round_trip(
        input in prop::collection::vec(
            (labels_strategy(), prop::collection::vec(
                (any::<i64>(), prop::collection::vec(any::<u8>(), 0..40),
                 prop::collection::vec(("[a-z_]{1,5}", ".{0,5}"), 0..3)),
                0..8,
            )),
            0..5,
        ),
        window in (any::<i64>(), any::<i64>()),
    ) {
        let streams: Vec<LogStreamData> = input
            .into_iter()
            .map(|(labels, entries)| LogStreamData {
                labels,
                entries: entries
                    .into_iter()
                    .map(|(timestamp_ns, line, metadata)| LogEntry {
                        timestamp_ns,
                        line: Bytes::from(line),
                        structured_metadata: metadata
                            .into_iter()
                            .map(|(n, v)| Label { name: n, value: v })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let mut merged: BTreeMap<String, LogStreamData> = BTreeMap::new();
        for s in &streams {
            merged
                .entry(labels_json(s.labels.iter()))
                .or_insert_with(|| LogStreamData { labels: s.labels.clone(), entries: Vec::new() })
                .entries
                .extend(s.entries.iter().cloned());
        }
        let expected: Vec<LogStreamData> = merged
            .into_values()
            .filter(|s| !s.entries.is_empty())
            .map(|mut s| { s.entries.sort_by_key(|e| e.timestamp_ns); s })
            .collect();
        match encode_logs(&streams) {
            Err(BlockError::Empty { .. }) => prop_assert!(expected.is_empty()),
            Err(other) => prop_assert!(false, "encode failed: {other}"),
            Ok(block) => {
                let entries: usize = expected.iter().map(|s| s.entries.len()).sum();
                prop_assert_eq!(block.rows, entries as u64);
                prop_assert_eq!(block.series, expected.len() as u64);
                prop_assert_eq!(&decode_logs(block.data.clone()).unwrap(), &expected);
                let (lo, hi) = (window.0.min(window.1), window.0.max(window.1));
                let windowed: Vec<LogStreamData> = expected
                    .iter()
                    .cloned()
                    .map(|mut s| { s.entries.retain(|e| (lo..=hi).contains(&e.timestamp_ns)); s })
                    .filter(|s| !s.entries.is_empty())
                    .collect();
                prop_assert_eq!(decode_logs_where(block.data.clone(), lo, hi).unwrap(), windowed);
                prop_assert!(inspect::verify(block.data).unwrap().unsorted.is_empty());
            }
        }
    }

    #[test]
    fn traces_round_trip_and_find(
        input in prop::collection::vec(
            (0u8..4, any::<[u8; 8]>(), prop::collection::vec(any::<u8>(), 0..=8), "[a-z /]{0,8}",
             any::<i32>(), any::<u64>(), any::<u64>(), any::<i32>(), "[a-z]{0,4}",
             prop::collection::vec(any::<u8>(), 0..6), prop::collection::vec(any::<u8>(), 0..40)),
            1..40,
        ),
    ) {
        let spans: Vec<SpanRecord> = input
            .into_iter()
            .map(|(trace, span_id, parent, name, kind, start, end, status, service, resource, body)| {
                SpanRecord {
                    trace_id: [trace; 16],
                    span_id,
                    parent_span_id: parent,
                    name,
                    kind,
                    start_unix_nano: start,
                    end_unix_nano: end,
                    status_code: status,
                    service_name: service,
                    resource: Bytes::from(resource.clone()),
                    scope: Bytes::from(resource),
                    span: Bytes::from(body),
                }
            })
            .collect();
        let mut expected = spans.clone();
        expected.sort_by(|a, b| {
            (a.trace_id, a.start_unix_nano, a.span_id)
                .cmp(&(b.trace_id, b.start_unix_nano, b.span_id))
        });
        let block = encode_traces(&spans).unwrap();
        prop_assert_eq!(block.rows, spans.len() as u64);
        prop_assert_eq!(&decode_traces(block.data.clone()).unwrap(), &expected);
        for trace in 0u8..5 {
            let wanted: Vec<SpanRecord> =
                expected.iter().filter(|s| s.trace_id == [trace; 16]).cloned().collect();
            prop_assert_eq!(find_trace(block.data.clone(), &[trace; 16]).unwrap(), wanted);
        }
        let verified = inspect::verify(block.data).unwrap();
        prop_assert_eq!(verified.series, block.series);
        prop_assert!(verified.unsorted.is_empty());
    }
}

/// Many metric names in small row groups: a name lookup reads only the row groups that hold it.
#[test]
fn metric_name_lookup_skips_row_groups() {
    let series: Vec<SeriesSamples> = (0..50)
        .map(|i| SeriesSamples {
            labels: Labels::from_pairs([
                (METRIC_NAME, format!("metric_{i:03}")),
                ("job", "x".into()),
            ]),
            samples: (0..10).map(|t| Sample { timestamp_ms: t * 1000, value: t as f64 }).collect(),
            histograms: Vec::new(),
        })
        .collect();
    let block = encode_metrics_with(&series, 20).unwrap();
    let (_, builder) = common::open(
        block.data.clone(),
        crate::storage::StoredSignal::Metrics,
        false,
        metrics_schema(),
    )
    .unwrap();
    let groups = builder.metadata().num_row_groups();
    assert_eq!(groups, 25);
    let selected = metrics::select_row_groups(&builder, Some("metric_017"), 0, i64::MAX).unwrap();
    assert!(!selected.is_empty() && selected.len() <= 2, "{selected:?} of {groups}");
    let none = metrics::select_row_groups(&builder, Some("absent"), 0, i64::MAX).unwrap();
    assert!(none.is_empty(), "{none:?}");
    let late = metrics::select_row_groups(&builder, None, 20_000, 30_000).unwrap();
    assert!(late.is_empty(), "{late:?}");

    let found = decode_metrics_where(block.data, Some("metric_017"), 3000, 4000).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(), [3000, 4000]);
}

#[test]
fn trace_lookup_skips_row_groups() {
    let spans: Vec<SpanRecord> = (0..200u32)
        .map(|i| SpanRecord {
            trace_id: u128::from(i / 4).to_be_bytes(),
            span_id: u64::from(i).to_be_bytes(),
            parent_span_id: Vec::new(),
            name: "op".into(),
            kind: 1,
            start_unix_nano: u64::from(i),
            end_unix_nano: u64::from(i) + 10,
            status_code: 0,
            service_name: "svc".into(),
            resource: Bytes::new(),
            scope: Bytes::new(),
            span: Bytes::new(),
        })
        .collect();
    let block = encode_traces(&spans).unwrap();
    let found = find_trace(block.data.clone(), &u128::from(7u32).to_be_bytes()).unwrap();
    assert_eq!(found.len(), 4);
    assert!(find_trace(block.data, &[0xff; 16]).unwrap().is_empty());
}

#[test]
fn integer_and_float_values_round_trip_bit_for_bit() {
    let limit = (1u64 << 53) as f64;
    let values = [
        0.0,
        -0.0,
        3.0,
        -7.0,
        1.5,
        limit,
        -limit,
        limit * 4.0,
        f64::INFINITY,
        f64::NAN,
        f64::from_bits(crate::model::metrics::STALE_NAN_BITS),
        1e300,
    ];
    let series = vec![SeriesSamples {
        labels: Labels::from_pairs([("__name__", "edge")]),
        samples: values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample { timestamp_ms: i as i64 * 1000, value })
            .collect(),
        histograms: Vec::new(),
    }];
    let block = encode_metrics(&series).unwrap();
    let decoded = decode_metrics(block.data).unwrap();
    let bits = |s: &SeriesSamples| s.samples.iter().map(|p| p.value.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&decoded[0]), bits(&series[0]));
}
