//! Engine tests over [`MemStorage`], without functions (those are tested with the functions).

use crate::model::labels::Labels;
use crate::promql::storage::MemStorage;
use crate::promql::value::{Point, QueryErrorKind, STALE_NAN_BITS};

use super::*;

const MIN: i64 = 60_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// `series` gets `values[i]` at `i * step_ms` (`None` skips a point).
fn load(storage: &mut MemStorage, pairs: &[(&str, &str)], step_ms: i64, values: &[Option<f64>]) {
    let points = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| Point { t: i as i64 * step_ms, v }));
    storage.add(labels(pairs), points);
}

fn vector(result: QueryResult) -> Vec<(Labels, f64)> {
    match result.value {
        Value::Vector(samples) => samples.into_iter().map(|s| (s.labels, s.v)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

fn matrix(result: QueryResult) -> Vec<Series> {
    match result.value {
        Value::Matrix(series) => series,
        other => panic!("expected a matrix, got {other:?}"),
    }
}

fn engine() -> Engine {
    Engine::default()
}

#[test]
fn selector_uses_left_open_lookback_and_stops_at_stale_markers() {
    let mut s = MemStorage::new();
    let stale = f64::from_bits(STALE_NAN_BITS);
    load(&mut s, &[("__name__", "up"), ("job", "a")], MIN, &[Some(1.0), Some(2.0), Some(stale)]);
    let e = engine();
    assert_eq!(
        vector(e.instant_query(&s, "up", MIN).unwrap()),
        vec![(labels(&[("__name__", "up"), ("job", "a")]), 2.0)]
    );
    // Stale at 2m: nothing, although 2.0 is within the lookback.
    assert!(vector(e.instant_query(&s, "up", 2 * MIN).unwrap()).is_empty());
    // The sample at 1m is exactly 5m before 6m: outside the left-open window.
    let mut t = MemStorage::new();
    load(&mut t, &[("__name__", "x")], MIN, &[None, Some(7.0)]);
    assert_eq!(vector(e.instant_query(&t, "x", 5 * MIN + MIN - 1).unwrap()).len(), 1);
    assert!(vector(e.instant_query(&t, "x", 6 * MIN).unwrap()).is_empty());
}

#[test]
fn offset_and_at_move_the_evaluation_time() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "x")], MIN, &[Some(0.0), Some(10.0), Some(20.0), Some(30.0)]);
    let e = engine();
    assert_eq!(vector(e.instant_query(&s, "x offset 2m", 3 * MIN).unwrap())[0].1, 10.0);
    assert_eq!(vector(e.instant_query(&s, "x @ 60", 3 * MIN).unwrap())[0].1, 10.0);
    let range = matrix(e.range_query(&s, "x @ end()", 0, 2 * MIN, MIN).unwrap());
    let values: Vec<f64> = range[0].points.iter().map(|p| p.v).collect();
    assert_eq!(values, vec![20.0, 20.0, 20.0]);
}

#[test]
fn range_query_aggregates_by_label_with_kahan_sum() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "x"), ("job", "a"), ("i", "1")], MIN, &[Some(1e100), Some(1.0)]);
    load(&mut s, &[("__name__", "x"), ("job", "a"), ("i", "2")], MIN, &[Some(1.0), Some(2.0)]);
    load(
        &mut s,
        &[("__name__", "x"), ("job", "a"), ("i", "3")],
        MIN,
        &[Some(-1e100), Some(f64::from_bits(STALE_NAN_BITS))],
    );
    load(&mut s, &[("__name__", "x"), ("job", "b"), ("i", "1")], MIN, &[Some(5.0), Some(6.0)]);
    let result = matrix(engine().range_query(&s, "sum by (job) (x)", 0, MIN, MIN).unwrap());
    assert_eq!(result.len(), 2);
    assert_eq!(result[0].labels, labels(&[("job", "a")]));
    assert_eq!(result[0].points, vec![Point { t: 0, v: 1.0 }, Point { t: MIN, v: 3.0 }]);
    assert_eq!(result[1].points, vec![Point { t: 0, v: 5.0 }, Point { t: MIN, v: 6.0 }]);
    let avg = vector(engine().instant_query(&s, "avg without (i) (x)", 0).unwrap());
    assert_eq!(avg[0], (labels(&[("job", "a")]), 1.0 / 3.0));
}

#[test]
fn topk_keeps_labels_and_orders_instant_results() {
    let mut s = MemStorage::new();
    for (i, v) in [3.0, f64::NAN, 9.0, 1.0].iter().enumerate() {
        let name = i.to_string();
        load(&mut s, &[("__name__", "x"), ("i", &name)], MIN, &[Some(*v)]);
    }
    let e = engine();
    let top: Vec<f64> =
        vector(e.instant_query(&s, "topk(3, x)", 0).unwrap()).iter().map(|s| s.1).collect();
    assert_eq!(top, vec![9.0, 3.0, 1.0]);
    let bottom = vector(e.instant_query(&s, "bottomk(1, x)", 0).unwrap());
    assert_eq!(bottom, vec![(labels(&[("__name__", "x"), ("i", "3")]), 1.0)]);
    let err = e.instant_query(&s, "topk(NaN, x)", 0).unwrap_err();
    assert_eq!(err.message, "Parameter value is NaN");
}

#[test]
fn quantile_and_count_values() {
    let mut s = MemStorage::new();
    for (i, v) in [1.0, 2.0, 2.0, 4.0].iter().enumerate() {
        let name = i.to_string();
        load(&mut s, &[("__name__", "x"), ("i", &name)], MIN, &[Some(*v)]);
    }
    let e = engine();
    assert_eq!(vector(e.instant_query(&s, "quantile(0.5, x)", 0).unwrap())[0].1, 2.0);
    let result = e.instant_query(&s, "quantile(2, x)", 0).unwrap();
    assert_eq!(
        result.annotations.warnings,
        vec!["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)"]
    );
    let mut counts = vector(e.instant_query(&s, "count_values(\"v\", x)", 0).unwrap());
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        counts,
        vec![
            (labels(&[("v", "1")]), 1.0),
            (labels(&[("v", "2")]), 2.0),
            (labels(&[("v", "4")]), 1.0)
        ]
    );
}

#[test]
fn binary_matching_and_its_errors() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "a"), ("job", "x"), ("i", "1")], MIN, &[Some(10.0)]);
    load(&mut s, &[("__name__", "a"), ("job", "x"), ("i", "2")], MIN, &[Some(20.0)]);
    load(&mut s, &[("__name__", "b"), ("job", "x")], MIN, &[Some(2.0)]);
    load(&mut s, &[("__name__", "b"), ("job", "x"), ("k", "dup")], MIN, &[Some(3.0)]);
    let e = engine();
    let mut grouped = vector(e.instant_query(&s, "a / on(job) group_left b{k=\"\"}", 0).unwrap());
    grouped.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        grouped,
        vec![
            (labels(&[("i", "1"), ("job", "x")]), 5.0),
            (labels(&[("i", "2"), ("job", "x")]), 10.0)
        ]
    );
    let err = e.instant_query(&s, "a / on(job) b{k=\"\"}", 0).unwrap_err();
    assert_eq!(err.message, "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
    let err = e.instant_query(&s, "a{i=\"1\"} / on(job) b", 0).unwrap_err();
    assert_eq!(
        err.message,
        "found duplicate series for the match group {job=\"x\"} on the right hand-side of the operation: [{__name__=\"b\", job=\"x\"}, {__name__=\"b\", job=\"x\", k=\"dup\"}];many-to-many matching not allowed: matching labels must be unique on one side"
    );
    // A filtering comparison keeps the name and the left value.
    let kept = vector(e.instant_query(&s, "a > 15", 0).unwrap());
    assert_eq!(kept, vec![(labels(&[("__name__", "a"), ("i", "2"), ("job", "x")]), 20.0)]);
    let flags = vector(e.instant_query(&s, "a > bool 15", 0).unwrap());
    assert_eq!(flags.iter().map(|s| s.1).collect::<Vec<_>>(), vec![0.0, 1.0]);
    assert_eq!(vector(e.instant_query(&s, "a and on(i) a{i=\"2\"}", 0).unwrap()).len(), 1);
    assert_eq!(vector(e.instant_query(&s, "a unless on(i) a{i=\"2\"}", 0).unwrap()).len(), 1);
    assert_eq!(vector(e.instant_query(&s, "a or b", 0).unwrap()).len(), 4);
    assert_eq!(vector(e.instant_query(&s, "a or on(job) b", 0).unwrap()).len(), 2);
}

#[test]
fn names_are_dropped_late_and_duplicates_merge_in_range_results() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "metric_a")], 10 * MIN, &[Some(1.0)]);
    load(&mut s, &[("__name__", "metric_b")], 10 * MIN, &[Some(3.0), Some(4.0)]);
    let e = Engine::new(EngineOptions { lookback_delta_ms: 5 * MIN, ..EngineOptions::default() });
    let result =
        matrix(e.range_query(&s, "-metric_a or -metric_b", 0, 20 * MIN, 10 * MIN).unwrap());
    assert_eq!(
        result,
        vec![Series {
            labels: Labels::default(),
            points: vec![Point { t: 0, v: -1.0 }, Point { t: 10 * MIN, v: -4.0 }]
        }]
    );
    let err = e.instant_query(&s, "-{__name__=~\"metric_.\"}", 0).unwrap_err();
    assert_eq!(err.message, "vector cannot contain metrics with the same labelset");
}

#[test]
fn instant_query_of_a_subquery_returns_aligned_points() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "x")], MIN, &[Some(0.0), Some(1.0), Some(2.0), Some(3.0)]);
    let result = matrix(engine().instant_query(&s, "x[150s:1m]", 3 * MIN + 30_000).unwrap());
    let times: Vec<i64> = result[0].points.iter().map(|p| p.t).collect();
    assert_eq!(times, vec![2 * MIN, 3 * MIN]);
    let raw = matrix(engine().instant_query(&s, "x[2m]", 3 * MIN).unwrap());
    assert_eq!(raw[0].points, vec![Point { t: 2 * MIN, v: 2.0 }, Point { t: 3 * MIN, v: 3.0 }]);
}

#[test]
fn limits_give_prometheus_errors() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "x")], MIN, &[Some(0.0), Some(1.0), Some(2.0)]);
    let small = Engine::new(EngineOptions { max_samples: 2, ..EngineOptions::default() });
    let err = small.range_query(&s, "x", 0, 2 * MIN, MIN).unwrap_err();
    assert_eq!(err.kind, QueryErrorKind::Execution);
    assert_eq!(
        err.message,
        "query processing would load too many samples into memory in query execution"
    );
    let hurried =
        Engine::new(EngineOptions { timeout: Duration::ZERO, ..EngineOptions::default() });
    std::thread::sleep(Duration::from_millis(2));
    let err = hurried.instant_query(&s, "x", 0).unwrap_err();
    assert_eq!(err.kind, QueryErrorKind::Timeout);
    assert_eq!(err.message, "query timed out in query execution");
}

#[test]
fn scalars_and_strings() {
    let s = MemStorage::new();
    let e = engine();
    assert_eq!(
        e.instant_query(&s, "1 + 2 * 3 ^ 2", 0).unwrap().value,
        Value::Scalar { t: 0, v: 19.0 }
    );
    assert_eq!(e.instant_query(&s, "2 > bool 1", 0).unwrap().value, Value::Scalar { t: 0, v: 1.0 });
    assert_eq!(
        e.instant_query(&s, "\"hi\"", 5).unwrap().value,
        Value::String { t: 5, v: "hi".into() }
    );
    let range = matrix(e.range_query(&s, "-1", 0, MIN, MIN).unwrap());
    assert_eq!(range[0].points, vec![Point { t: 0, v: -1.0 }, Point { t: MIN, v: -1.0 }]);
}

#[test]
fn annotation_positions_are_one_based_line_and_column() {
    let query = "histogram_quantile(0.8,\n  series)";
    let expr = parse(query).unwrap();
    let Expr::Call(call) = &expr else { panic!("a call") };
    assert_eq!(annotation_position(query, &call.args.args[0]), " (1:20)");
    assert_eq!(annotation_position(query, &call.args.args[1]), " (2:3)");
    assert_eq!(annotation_position("other", &call.args.args[1]), "");
}

#[test]
fn fill_modifiers_stand_in_for_missing_sides() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "l"), ("k", "a")], MIN, &[Some(10.0)]);
    load(&mut s, &[("__name__", "l"), ("k", "b")], MIN, &[Some(20.0)]);
    load(&mut s, &[("__name__", "r"), ("k", "a")], MIN, &[Some(100.0)]);
    load(&mut s, &[("__name__", "r"), ("k", "c")], MIN, &[Some(300.0)]);
    let e = engine();
    let sorted = |query: &str| {
        let mut v = vector(e.instant_query(&s, query, 0).unwrap());
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        sorted("l + fill(1) r"),
        vec![
            (labels(&[("k", "a")]), 110.0),
            (labels(&[("k", "b")]), 21.0),
            (labels(&[("k", "c")]), 301.0)
        ]
    );
    assert_eq!(sorted("l + fill_right(0) r").len(), 2);
    assert_eq!(sorted("l - fill_left(0) r")[1], (labels(&[("k", "c")]), -300.0));
    // A filtering comparison keeps the left sample, or the stand-in's value and match labels.
    assert_eq!(
        sorted("l != fill(300) r"),
        vec![
            (labels(&[("__name__", "l"), ("k", "a")]), 10.0),
            (labels(&[("__name__", "l"), ("k", "b")]), 20.0)
        ]
    );
}

#[test]
fn group_right_copies_labels_from_the_one_side_and_subqueries_honour_at() {
    let mut s = MemStorage::new();
    load(&mut s, &[("__name__", "info"), ("node", "n1"), ("os", "linux")], MIN, &[Some(1.0)]);
    load(&mut s, &[("__name__", "cpu"), ("node", "n1"), ("cpu", "0")], MIN, &[Some(3.0)]);
    load(&mut s, &[("__name__", "cpu"), ("node", "n1"), ("cpu", "1")], MIN, &[Some(5.0)]);
    let e = engine();
    let mut joined = vector(e.instant_query(&s, "info * on(node) group_right(os) cpu", 0).unwrap());
    joined.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        joined,
        vec![
            (labels(&[("cpu", "0"), ("node", "n1"), ("os", "linux")]), 3.0),
            (labels(&[("cpu", "1"), ("node", "n1"), ("os", "linux")]), 5.0)
        ]
    );
    // `@ 0` pins the subquery: the same points whatever the evaluation time.
    let pinned = matrix(e.instant_query(&s, "cpu{cpu=\"0\"}[2m:1m] @ 0", 50 * MIN).unwrap());
    assert_eq!(pinned[0].points, vec![Point { t: 0, v: 3.0 }]);
}

#[test]
fn type_errors_use_prometheus_words() {
    let err = parse("rate(x)").unwrap_err();
    assert_eq!(err.kind, QueryErrorKind::BadData);
    assert_eq!(
        err.message,
        "expected type range vector in call to function \"rate\", got instant vector"
    );
    assert_eq!(prometheus_wording("unclosed left parenthesis"), "unclosed left parenthesis");
    assert_eq!(
        prometheus_wording("expected type scalar in aggregation parameter, got vector"),
        "expected type scalar in aggregation parameter, got instant vector"
    );
}

#[test]
fn dropping_the_name_drops_type_and_unit_labels_too() {
    let mut s = MemStorage::new();
    let pairs = [("__name__", "x"), ("__type__", "counter"), ("__unit__", "bytes"), ("a", "1")];
    load(&mut s, &pairs, MIN, &[Some(2.0)]);
    let e = engine();
    assert_eq!(
        vector(e.instant_query(&s, "x * 2", 0).unwrap()),
        vec![(labels(&[("a", "1")]), 4.0)]
    );
    assert_eq!(vector(e.instant_query(&s, "x", 0).unwrap())[0].0, labels(&pairs));
}
