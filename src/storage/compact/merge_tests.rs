use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::model::labels::{Label, Labels};
use crate::model::metrics::{Histogram, Sample};
use crate::storage::AggrPoint;

fn labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name)])
}

fn series(name: &str, points: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: labels(name),
        samples: points
            .iter()
            .map(|&(timestamp_ms, value)| Sample { timestamp_ms, value })
            .collect(),
        histograms: Vec::new(),
    }
}

fn entry(timestamp_ns: i64, line: &str, metadata: &[(&str, &str)]) -> LogEntry {
    LogEntry {
        timestamp_ns,
        line: Bytes::from(line.to_owned()),
        structured_metadata: metadata.iter().map(|&(n, v)| Label::new(n, v)).collect(),
    }
}

fn span(trace: u8, span_id: u8, start: u64, name: &str) -> SpanRecord {
    SpanRecord {
        trace_id: [trace; 16],
        span_id: [span_id; 8],
        parent_span_id: Vec::new(),
        name: name.to_owned(),
        kind: 1,
        start_unix_nano: start,
        end_unix_nano: start + 10,
        status_code: 0,
        service_name: "svc".to_owned(),
        resource: Bytes::new(),
        scope: Bytes::new(),
        span: Bytes::new(),
    }
}

#[test]
fn series_merge_by_labels_and_time_first_input_wins() {
    let mut with_histogram = series("b", &[(1, 1.0)]);
    with_histogram.histograms.push(Histogram { timestamp: 1, sum: 1.0, ..Histogram::default() });
    let first = vec![series("a", &[(1, 1.0), (3, 3.0)]), with_histogram];
    let mut later_histogram = series("b", &[(1, 9.0), (2, 2.0)]);
    later_histogram.histograms = vec![
        Histogram { timestamp: 1, sum: 9.0, ..Histogram::default() },
        Histogram { timestamp: 4, sum: 4.0, ..Histogram::default() },
    ];
    let second =
        vec![series("a", &[(2, 2.0), (3, 9.0)]), later_histogram, series("c", &[(5, 5.0)])];
    let merged = merge_series(vec![first, second]);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged[0], series("a", &[(1, 1.0), (2, 2.0), (3, 3.0)]));
    assert_eq!(merged[1].samples, series("b", &[(1, 1.0), (2, 2.0)]).samples);
    let sums: Vec<(i64, f64)> = merged[1].histograms.iter().map(|h| (h.timestamp, h.sum)).collect();
    assert_eq!(sums, vec![(1, 1.0), (4, 4.0)]);
    assert_eq!(merged[2], series("c", &[(5, 5.0)]));
}

#[test]
fn aggr_merge_dedupes_points_by_time() {
    let p = |t: i64, v: f64| AggrPoint {
        timestamp_ms: t,
        count: 1,
        sum: v,
        min: v,
        max: v,
        counter: v,
    };
    let a = vec![SeriesAggr { labels: labels("x"), points: vec![p(1, 1.0), p(3, 3.0)] }];
    let b = vec![
        SeriesAggr { labels: labels("w"), points: vec![p(0, 0.0)] },
        SeriesAggr { labels: labels("x"), points: vec![p(1, 7.0), p(2, 2.0)] },
    ];
    let merged = merge_aggr(vec![a, b]);
    assert_eq!(merged[0].labels, labels("w"));
    assert_eq!(merged[1].points, vec![p(1, 1.0), p(2, 2.0), p(3, 3.0)]);
}

#[test]
fn log_merge_drops_only_identical_entries() {
    let a = vec![LogStreamData {
        labels: labels("app"),
        entries: vec![entry(1, "x", &[]), entry(1, "y", &[]), entry(2, "z", &[("k", "v")])],
    }];
    let b = vec![LogStreamData {
        labels: labels("app"),
        entries: vec![
            entry(1, "y", &[]),
            entry(1, "w", &[]),
            entry(2, "z", &[("k", "other")]),
            entry(2, "z", &[("k", "v")]),
        ],
    }];
    let merged = merge_logs(vec![a, b]);
    assert_eq!(
        merged[0].entries,
        vec![
            entry(1, "x", &[]),
            entry(1, "y", &[]),
            entry(1, "w", &[]),
            entry(2, "z", &[("k", "v")]),
            entry(2, "z", &[("k", "other")]),
        ]
    );
}

#[test]
fn span_merge_sorts_by_trace_and_start_and_dedupes_span_ids() {
    let a = vec![span(1, 1, 10, "first"), span(1, 2, 20, "a"), span(3, 1, 5, "c")];
    let b = vec![span(1, 1, 5, "second copy"), span(1, 3, 15, "b"), span(2, 1, 1, "t2")];
    let merged = merge_spans(vec![a, b]);
    let view: Vec<(u8, u8, &str)> =
        merged.iter().map(|s| (s.trace_id[0], s.span_id[0], s.name.as_str())).collect();
    assert_eq!(view, vec![(1, 1, "first"), (1, 3, "b"), (1, 2, "a"), (2, 1, "t2"), (3, 1, "c")]);
}

/// Up to four inputs, each a sorted set of series drawn from a few names, with sorted
/// timestamps drawn from a small range (so inputs overlap and collide).
fn series_inputs() -> impl Strategy<Value = Vec<Vec<SeriesSamples>>> {
    let one_series = (0u8..6, proptest::collection::btree_set(0i64..40, 0..12));
    let one_input = proptest::collection::vec(one_series, 0..6).prop_map(|list| {
        let mut by_name: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
        for (name, times) in list {
            by_name.entry(name).or_default().extend(times);
        }
        by_name
            .into_iter()
            .map(|(name, mut times)| {
                times.sort_unstable();
                times.dedup();
                let points: Vec<(i64, f64)> =
                    times.into_iter().map(|t| (t, f64::from(name) * 1000.0 + t as f64)).collect();
                series(&format!("s{name}"), &points)
            })
            .collect::<Vec<_>>()
    });
    proptest::collection::vec(one_input, 0..4).prop_map(|mut inputs| {
        // Tag each input's values so "first input wins" is observable.
        for (index, input) in inputs.iter_mut().enumerate() {
            for s in input.iter_mut() {
                for sample in &mut s.samples {
                    sample.value += index as f64 * 0.25;
                }
            }
        }
        inputs
    })
}

fn spans_inputs() -> impl Strategy<Value = Vec<Vec<SpanRecord>>> {
    let one = (0u8..4, 0u8..6, 0u64..20);
    proptest::collection::vec(proptest::collection::vec(one, 0..10), 0..4).prop_map(|inputs| {
        inputs
            .into_iter()
            .enumerate()
            .map(|(index, raw)| {
                let mut seen = HashSet::new();
                let mut spans: Vec<SpanRecord> = raw
                    .into_iter()
                    .filter(|&(t, s, _)| seen.insert((t, s)))
                    .map(|(t, s, start)| span(t, s, start, &format!("input {index}")))
                    .collect();
                spans.sort_by_key(|s| (s.trace_id, s.start_unix_nano));
                spans
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn series_merge_is_the_sorted_union_with_first_input_winning(inputs in series_inputs()) {
        let merged = merge_series(inputs.clone());
        prop_assert!(merged.windows(2).all(|w| w[0].labels < w[1].labels));
        // Reference: a map filled in input order, keeping the first value per (series, time).
        let mut expected: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        for input in &inputs {
            for s in input {
                let times = expected.entry(s.labels.clone()).or_default();
                for sample in &s.samples {
                    times.entry(sample.timestamp_ms).or_insert(sample.value);
                }
            }
        }
        let actual: BTreeMap<Labels, BTreeMap<i64, f64>> = merged
            .iter()
            .map(|s| (s.labels.clone(), s.samples.iter().map(|p| (p.timestamp_ms, p.value)).collect()))
            .collect();
        prop_assert_eq!(actual, expected);
        for s in &merged {
            prop_assert!(s.samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
        }
        // Merging the result again with any input changes nothing (idempotent).
        let mut again = vec![merged.clone()];
        again.extend(inputs);
        prop_assert_eq!(merge_series(again), merged);
    }

    #[test]
    fn span_merge_keeps_each_span_once_sorted(inputs in spans_inputs()) {
        let merged = merge_spans(inputs.clone());
        prop_assert!(merged
            .windows(2)
            .all(|w| (w[0].trace_id, w[0].start_unix_nano) <= (w[1].trace_id, w[1].start_unix_nano)));
        let mut expected: BTreeMap<([u8; 16], [u8; 8]), (u64, String)> = BTreeMap::new();
        for input in &inputs {
            for s in input {
                expected.entry((s.trace_id, s.span_id)).or_insert((s.start_unix_nano, s.name.clone()));
            }
        }
        let actual: BTreeMap<([u8; 16], [u8; 8]), (u64, String)> = merged
            .iter()
            .map(|s| ((s.trace_id, s.span_id), (s.start_unix_nano, s.name.clone())))
            .collect();
        prop_assert_eq!(actual.len(), merged.len(), "no span twice");
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn log_merge_keeps_distinct_entries_once(
        runs in proptest::collection::vec(
            proptest::collection::vec((0i64..5, 0u8..3), 0..10), 0..4)
    ) {
        let inputs: Vec<Vec<LogStreamData>> = runs
            .into_iter()
            .map(|mut raw| {
                raw.sort_by_key(|&(t, _)| t);
                let entries = raw.into_iter().map(|(t, l)| entry(t, &format!("line {l}"), &[])).collect();
                vec![LogStreamData { labels: labels("app"), entries }]
            })
            .collect();
        let merged = merge_logs(inputs.clone());
        let mut expected: Vec<(i64, Bytes)> = inputs
            .iter()
            .flatten()
            .flat_map(|s| s.entries.iter().map(|e| (e.timestamp_ns, e.line.clone())))
            .collect();
        expected.sort();
        expected.dedup();
        let mut actual: Vec<(i64, Bytes)> = merged
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| (e.timestamp_ns, e.line.clone())))
            .collect();
        prop_assert!(actual.windows(2).all(|w| w[0].0 <= w[1].0));
        actual.sort();
        prop_assert_eq!(actual, expected);
    }
}
