//! Tests of the metrics head: append accounting, matcher semantics through postings (checked
//! against a brute-force filter by proptest), concurrency, histograms, metadata and stats.

use std::sync::Arc;

use proptest::prelude::*;

use super::matcher::{matches_all, LabelMatcher, MatchOp};
use super::metrics::{AppendStats, MetricsHead};
use crate::model::labels::Labels;
use crate::model::metrics::{
    Histogram, HistogramCount, MetricBatch, MetricMetadata, MetricType, Sample, Series,
    SeriesMetadata, STALE_NAN_BITS,
};

fn series(pairs: &[(&str, &str)]) -> Arc<Series> {
    Arc::new(Series::new(Labels::from_pairs(pairs.iter().copied())))
}

fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
    points.iter().map(|&(timestamp_ms, value)| Sample { timestamp_ms, value }).collect()
}

fn append_one(head: &MetricsHead, s: &Arc<Series>, points: &[(i64, f64)]) -> AppendStats {
    let mut batch = MetricBatch::default();
    batch.push(s.clone(), &samples(points), &[], &[], None, 0);
    head.append(&batch)
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, op, value).unwrap()
}

#[test]
fn counts_out_of_order_and_duplicates_and_keeps_stale_bits() {
    let head = MetricsHead::new();
    let up = series(&[("__name__", "up"), ("job", "node")]);
    let stale = f64::from_bits(STALE_NAN_BITS);
    let first = append_one(&head, &up, &[(10, 1.0), (20, 2.0), (30, stale)]);
    assert_eq!(first, AppendStats { series_created: 1, samples: 3, ..AppendStats::default() });
    let second = append_one(&head, &up, &[(5, 9.0), (30, stale), (30, 4.0), (40, 4.0)]);
    assert_eq!(
        second,
        AppendStats { samples: 1, out_of_order: 2, duplicates: 1, ..AppendStats::default() }
    );
    let got = head.select(&[LabelMatcher::equal("job", "node")], 0, 100);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples, samples(&[(10, 1.0), (20, 2.0), (30, stale), (40, 4.0)]));
    assert_eq!(got[0].samples[2].value.to_bits(), STALE_NAN_BITS);
    assert_eq!(head.select(&[LabelMatcher::equal("job", "node")], 15, 30)[0].samples.len(), 2);
    assert!(head.select(&[LabelMatcher::equal("job", "node")], 41, 100).is_empty());
}

#[test]
fn series_with_one_hash_are_told_apart_by_labels() {
    let head = MetricsHead::new();
    let a = Labels::from_pairs([("__name__", "a")]);
    let b = Labels::from_pairs([("__name__", "b")]);
    let real = Series::new(a.clone());
    // A forged collision: b's labels under a's hash.
    let forged =
        Arc::new(Series { labels: b.clone(), hash: real.hash, encoded: real.encoded.clone() });
    append_one(&head, &Arc::new(real), &[(1, 1.0)]);
    let stats = append_one(&head, &forged, &[(1, 2.0)]);
    assert_eq!(stats.series_created, 1);
    assert_eq!(head.series(&[]), [a, b]);
    assert_eq!(
        head.select(&[LabelMatcher::equal("__name__", "b")], 0, 10)[0].samples[0].value,
        2.0
    );
}

fn fixture() -> MetricsHead {
    let head = MetricsHead::new();
    let sets: [&[(&str, &str)]; 4] = [
        &[("__name__", "up"), ("job", "node"), ("instance", "a")],
        &[("__name__", "up"), ("job", "api"), ("instance", "b"), ("foo", "bar")],
        &[("__name__", "requests"), ("job", "api"), ("foo", "baz")],
        &[("__name__", "requests"), ("job", "db")],
    ];
    for (i, set) in sets.iter().enumerate() {
        append_one(&head, &series(set), &[(i as i64, i as f64)]);
    }
    head
}

fn names_of(head: &MetricsHead, matchers: &[LabelMatcher]) -> Vec<String> {
    head.series(matchers)
        .iter()
        .map(|l| format!("{}/{}", l.metric_name().unwrap(), l.get("job").unwrap()))
        .collect()
}

#[test]
fn empty_label_matchers_follow_prometheus() {
    let head = fixture();
    let only_up = [m("__name__", MatchOp::Equal, "up")];
    assert_eq!(names_of(&head, &only_up), ["up/api", "up/node"]);
    assert_eq!(names_of(&head, &[m("foo", MatchOp::Equal, "")]), ["requests/db", "up/node"]);
    assert_eq!(names_of(&head, &[m("foo", MatchOp::NotEqual, "")]), ["requests/api", "up/api"]);
    assert_eq!(names_of(&head, &[m("foo", MatchOp::RegexMatch, ".*")]).len(), 4);
    assert_eq!(names_of(&head, &[m("foo", MatchOp::RegexMatch, ".+")]), ["requests/api", "up/api"]);
    assert_eq!(names_of(&head, &[m("foo", MatchOp::NotEqual, "bar")]).len(), 3);
    assert_eq!(
        names_of(&head, &[m("foo", MatchOp::RegexNoMatch, "ba.")]),
        ["requests/db", "up/node"]
    );
    assert_eq!(
        names_of(
            &head,
            &[m("job", MatchOp::RegexMatch, "api|db"), m("foo", MatchOp::NotEqual, "baz")]
        ),
        ["requests/db", "up/api"]
    );
    assert!(names_of(&head, &[m("nope", MatchOp::Equal, "x")]).is_empty());
    assert_eq!(names_of(&head, &[m("nope", MatchOp::Equal, "")]).len(), 4);
}

#[test]
fn label_names_and_values_respect_matchers() {
    let head = fixture();
    assert_eq!(head.label_names(&[]), ["__name__", "foo", "instance", "job"]);
    assert_eq!(head.label_names(&[m("job", MatchOp::Equal, "db")]), ["__name__", "job"]);
    assert_eq!(head.label_values("job", &[]), ["api", "db", "node"]);
    assert_eq!(head.label_values("job", &[m("__name__", MatchOp::Equal, "up")]), ["api", "node"]);
    assert!(head.label_values("missing", &[]).is_empty());
}

#[test]
fn histograms_metadata_and_stats() {
    let head = MetricsHead::new();
    let h = |t: i64, count: u64| Histogram {
        count: Some(HistogramCount::Int(count)),
        timestamp: t,
        ..Histogram::default()
    };
    let latency = series(&[("__name__", "latency")]);
    let meta = Arc::new(SeriesMetadata {
        metric_type: MetricType::Histogram,
        help: "h".into(),
        unit: String::new(),
    });
    let mut batch = MetricBatch::default();
    batch.push(latency.clone(), &[], &[h(10, 1), h(20, 2)], &[], Some(meta.clone()), 0);
    batch.metadata.push(MetricMetadata {
        family: "up".into(),
        metric_type: MetricType::Gauge,
        help: "u".into(),
        unit: String::new(),
    });
    let stats = head.append(&batch);
    assert_eq!((stats.series_created, stats.histograms), (1, 2));
    let mut again = MetricBatch::default();
    again.push(latency, &[], &[h(20, 2), h(20, 3), h(5, 1), h(30, 3)], &[], None, 0);
    let stats = head.append(&again);
    assert_eq!((stats.histograms, stats.duplicates, stats.out_of_order), (1, 1, 2));
    let got = head.select(&[m("__name__", MatchOp::Equal, "latency")], 15, 30);
    assert_eq!(got[0].histograms, [h(20, 2), h(30, 3)]);
    assert_eq!(
        head.metadata().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["latency", "up"]
    );
    assert_eq!(head.metadata()[0].1, *meta);
    append_one(&head, &series(&[("__name__", "up")]), &[(-3, 1.0)]);
    let stats = head.stats();
    assert_eq!((stats.series, stats.samples, stats.histograms, stats.chunks), (2, 1, 3, 1));
    assert_eq!((stats.min_time_ms, stats.max_time_ms), (Some(-3), Some(30)));
    assert_eq!(MetricsHead::new().stats().min_time_ms, None);
}

#[test]
fn concurrent_appends_lose_nothing() {
    let head = MetricsHead::new();
    let all: Vec<Arc<Series>> =
        (0..400).map(|i| series(&[("__name__", "m"), ("i", &i.to_string())])).collect();
    std::thread::scope(|scope| {
        for worker in 0..4i64 {
            let (head, all) = (&head, &all);
            scope.spawn(move || {
                // Every worker appends every series; the timestamps are disjoint per worker
                // but interleave, so some land out of order: count, do not assert, those.
                for round in 0..30i64 {
                    let mut batch = MetricBatch::default();
                    for s in all {
                        let t = round * 10 + worker;
                        batch.push(s.clone(), &samples(&[(t, t as f64)]), &[], &[], None, 0);
                    }
                    head.append(&batch);
                }
            });
        }
    });
    let stats = head.stats();
    assert_eq!(stats.series, 400);
    let everything = head.all_series();
    assert_eq!(everything.len(), 400);
    assert_eq!(stats.samples, everything.iter().map(|s| s.samples.len() as u64).sum::<u64>());
    for s in &everything {
        assert!(s.samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
        assert!(s.samples.len() >= 30);
    }
    assert!(everything.windows(2).all(|w| w[0].labels < w[1].labels));
}

fn matcher_strategy() -> impl Strategy<Value = LabelMatcher> {
    let names = prop::sample::select(vec!["a", "b", "c", "__name__"]);
    let values = prop::sample::select(vec!["", "x", "y", "z", "x.*", ".+", ".*", "x|y", "y|"]);
    let ops = prop::sample::select(vec![
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::RegexMatch,
        MatchOp::RegexNoMatch,
    ]);
    (names, ops, values).prop_map(|(n, o, v)| LabelMatcher::new(n, o, v).unwrap())
}

fn label_set_strategy() -> impl Strategy<Value = Labels> {
    let value = prop::option::of(prop::sample::select(vec!["x", "y", "z", "xx"]));
    (prop::sample::select(vec!["m1", "m2"]), value.clone(), value.clone(), value).prop_map(
        |(name, a, b, c)| {
            let mut pairs = vec![("__name__", name)];
            pairs.extend(
                [("a", a), ("b", b), ("c", c)].into_iter().filter_map(|(n, v)| Some((n, v?))),
            );
            Labels::from_pairs(pairs)
        },
    )
}

proptest! {
    #[test]
    fn postings_select_equals_brute_force(
        sets in prop::collection::vec(label_set_strategy(), 1..40),
        matchers in prop::collection::vec(matcher_strategy(), 0..4),
    ) {
        let head = MetricsHead::new();
        for (i, labels) in sets.iter().enumerate() {
            let s = Arc::new(Series::new(labels.clone()));
            append_one(&head, &s, &[(i as i64, 1.0)]);
        }
        let mut expected: Vec<Labels> = sets.clone();
        expected.sort();
        expected.dedup();
        expected.retain(|l| matches_all(&matchers, l));
        let selected: Vec<Labels> =
            head.select(&matchers, i64::MIN, i64::MAX).into_iter().map(|s| s.labels).collect();
        prop_assert_eq!(&selected, &expected);
        prop_assert_eq!(head.series(&matchers), expected);
    }
}
