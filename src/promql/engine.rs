//! The evaluator: walks a `promql-parser` AST and evaluates every node for all steps of the query
//! at once.
//!
//! Semantics follow Prometheus 3.x `promql/engine.go` (read for behaviour and error texts, not
//! copied):
//!
//! * An instant-vector selector takes, at each step `t`, the latest sample in
//!   `(t - offset - lookback, t - offset]` (left-open since Prometheus 3); a staleness marker as
//!   that sample means no value. `@` pins the evaluation time; `@ start()`/`@ end()` are the
//!   query's start and end, also inside subqueries.
//! * Range selectors and subqueries are only evaluated as function arguments (or as the whole
//!   query of an instant query, which returns their raw points). A subquery's steps are aligned
//!   to absolute multiples of its step, as Prometheus does.
//! * `__name__` is removed late (Prometheus 3 "delayed name removal", which its test scripts
//!   use): operators and functions only flag a series ([`VSeries::drop_name`]); the flag is
//!   applied when the result is assembled, after which duplicate label sets are an error.
//!
//! Each series of an intermediate vector holds one point per step at which it has a value, with
//! the step's time as timestamp. Selected data is read once per selector for the whole query
//! range and scanned with two pointers, so a range query costs one pass per series.
//!
//! Layout: this file holds the entry points, the node dispatch, function calls and result
//! assembly; `selector` reads storage (selectors, subqueries, `@`/`offset`), `aggregate` and
//! `binary` hold the operators.

mod aggregate;
mod binary;
mod selector;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use promql_parser::parser::{Call, Expr};

use crate::model::labels::{Labels, METRIC_NAME};

use self::selector::SampleValue;
use super::functions::{self, FnArg, FnCtx, RangeArg};
use super::storage::Queryable;
use super::value::{
    Annotations, Point, QueryError, QueryErrorKind, QueryResult, Sample, Series, StepValue, Steps,
    Value,
};

/// Limits and defaults of query evaluation (Prometheus' `--query.*` flags).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant-vector selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`).
    pub timeout: Duration,
    /// The step of a subquery written without one (`expr[5m:]`): Prometheus' default
    /// evaluation interval (`global.evaluation_interval`, 1 m).
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60 * 1000,
        }
    }
}

/// Evaluates PromQL over a [`Queryable`]. Cheap to clone; holds no data.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Parses and evaluates `query` at `time_ms`.
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        self.instant_eval(storage, &expr, time_ms, Some(query))
    }

    /// Evaluates a parsed expression at `time_ms` (rules evaluate the same expression often).
    pub fn instant_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        time_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.instant_eval(storage, expr, time_ms, None)
    }

    fn instant_eval(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        time_ms: i64,
        query: Option<&str>,
    ) -> Result<QueryResult, QueryError> {
        let steps = Steps::instant(time_ms);
        let mut ev = Evaluator::new(storage, &self.options, steps, query, expr);
        let value = match unwrap_parens(expr) {
            Expr::MatrixSelector(ms) => {
                let range = ev.matrix_selector(ms, steps)?;
                Value::Matrix(raw_windows(range, 0))
            }
            Expr::Subquery(sq) => {
                let range = ev.subquery(sq, steps)?;
                Value::Matrix(raw_windows(range, 0))
            }
            _ => match ev.eval(expr, steps)? {
                Val::Scalar(values) => Value::Scalar { t: time_ms, v: values[0] },
                Val::String(s) => Value::String { t: time_ms, v: s },
                Val::Vector(series) => Value::Vector(instant_samples(series, time_ms)?),
            },
        };
        Ok(QueryResult { value, annotations: ev.annotations })
    }

    /// Parses and evaluates `query` at every step from `start_ms` to `end_ms`.
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        self.range_eval(
            storage,
            &expr,
            Steps { start: start_ms, end: end_ms, step: step_ms },
            Some(query),
        )
    }

    /// Evaluates a parsed expression at every step from `start_ms` to `end_ms`.
    pub fn range_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.range_eval(storage, expr, Steps { start: start_ms, end: end_ms, step: step_ms }, None)
    }

    fn range_eval(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        steps: Steps,
        query: Option<&str>,
    ) -> Result<QueryResult, QueryError> {
        if steps.step <= 0 {
            return Err(QueryError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if steps.end < steps.start {
            return Err(QueryError::bad_data("end timestamp must not be before start time"));
        }
        let mut ev = Evaluator::new(storage, &self.options, steps, query, expr);
        let value = match unwrap_parens(expr) {
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                return Err(QueryError::bad_data(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
                ));
            }
            Expr::StringLiteral(_) => {
                return Err(QueryError::bad_data(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector",
                ));
            }
            _ => match ev.eval(expr, steps)? {
                Val::Scalar(values) => Value::Matrix(vec![Series {
                    labels: Labels::default(),
                    points: steps.times().zip(values).map(|(t, v)| Point { t, v }).collect(),
                }]),
                Val::String(_) => {
                    return Err(QueryError::bad_data(
                        "invalid expression type \"string\" for range query, must be Scalar or instant Vector",
                    ));
                }
                Val::Vector(series) => Value::Matrix(range_series(series)?),
            },
        };
        Ok(QueryResult { value, annotations: ev.annotations })
    }
}

/// Parses a query; a syntax error is `bad_data` with the parser's message (type errors worded
/// as Prometheus words them).
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    promql_parser::parser::parse(query).map_err(|e| QueryError::bad_data(prometheus_wording(&e)))
}

/// promql-parser's `expected type matrix in call to function 'rate', got vector` in
/// Prometheus' words: `expected type range vector in call to function "rate", got instant
/// vector` (Prometheus' `DocumentedType`). Other messages are returned unchanged.
fn prometheus_wording(message: &str) -> String {
    let documented = |t: &str| match t {
        "matrix" => "range vector".to_owned(),
        "vector" => "instant vector".to_owned(),
        other => other.to_owned(),
    };
    let Some(rest) = message.strip_prefix("expected type ") else {
        return message.to_owned();
    };
    let (Some((expected, rest)), true) = (rest.split_once(" in "), rest.contains(", got ")) else {
        return message.to_owned();
    };
    let Some((context, actual)) = rest.rsplit_once(", got ") else {
        return message.to_owned();
    };
    let context = match context.strip_prefix("call to function '") {
        Some(name) => format!("call to function \"{}\"", name.trim_end_matches('\'')),
        None => context.to_owned(),
    };
    format!("expected type {} in {context}, got {}", documented(expected), documented(actual))
}

/// A series of an intermediate vector: points at step times, and whether `__name__` is to be
/// removed before the result is returned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VSeries {
    pub labels: Labels,
    pub points: Vec<Point>,
    pub drop_name: bool,
}

impl VSeries {
    fn from_series(series: Series, drop_name: bool) -> Self {
        Self { labels: series.labels, points: series.points, drop_name }
    }

    fn into_series(self) -> Series {
        Series { labels: self.labels, points: self.points }
    }

    /// The labels as they will be returned.
    fn final_labels(self) -> (Labels, Vec<Point>) {
        let labels = if self.drop_name { without_name(&self.labels) } else { self.labels };
        (labels, self.points)
    }
}

/// A node evaluated at every step.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<VSeries>),
}

/// A range argument with the drop-name flag of each series (set for subqueries of expressions
/// that drop the name).
struct RangeVal {
    arg: RangeArg,
    drop_name: Vec<bool>,
}

/// The state of one query's evaluation.
pub(crate) struct Evaluator<'a> {
    storage: &'a dyn Queryable,
    options: &'a EngineOptions,
    /// The query's own start and end, what `@ start()` and `@ end()` mean at any depth.
    query_start: i64,
    query_end: i64,
    deadline: Instant,
    pub(crate) annotations: Annotations,
    /// The function whose argument is being evaluated, passed to storage as a hint.
    hint_func: Option<&'static str>,
    /// The query's text (or the printed expression), for the positions annotations carry.
    pub(crate) query_text: String,
}

impl<'a> Evaluator<'a> {
    fn new(
        storage: &'a dyn Queryable,
        options: &'a EngineOptions,
        steps: Steps,
        query: Option<&str>,
        expr: &Expr,
    ) -> Self {
        Self {
            storage,
            options,
            query_start: steps.start,
            query_end: steps.end,
            deadline: Instant::now() + options.timeout,
            annotations: Annotations::default(),
            hint_func: None,
            query_text: query.map_or_else(|| expr.to_string(), str::to_owned),
        }
    }

    /// Fails once the query has run past its timeout; called once per series in loops.
    pub(crate) fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError {
                kind: QueryErrorKind::Timeout,
                message: "query timed out in query execution".to_owned(),
            });
        }
        Ok(())
    }

    /// Fails if holding `samples` points would exceed `max_samples`.
    pub(crate) fn check_samples(&self, samples: usize) -> Result<(), QueryError> {
        if samples > self.options.max_samples {
            return Err(QueryError::execution(
                "query processing would load too many samples into memory in query execution",
            ));
        }
        Ok(())
    }

    pub(crate) fn eval(&mut self, expr: &Expr, steps: Steps) -> Result<Val, QueryError> {
        self.check_deadline()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; steps.len()])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, steps),
            Expr::Unary(u) => match self.eval(&u.expr, steps)? {
                Val::Scalar(values) => Ok(Val::Scalar(values.into_iter().map(|v| -v).collect())),
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.drop_name = true;
                        for p in &mut s.points {
                            p.v = -p.v;
                        }
                    }
                    Ok(Val::Vector(series))
                }
                Val::String(_) => Err(QueryError::bad_data(
                    "unary expression only allowed on expressions of type scalar or vector",
                )),
            },
            Expr::VectorSelector(vs) => {
                Ok(Val::Vector(self.vector_selector(vs, steps, SampleValue::Value)?))
            }
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(QueryError::bad_data(
                "range vector is only allowed as a function argument here",
            )),
            Expr::Call(call) => self.call(call, steps),
            Expr::Aggregate(agg) => self.aggregate(agg, steps),
            Expr::Binary(bin) => self.binary(bin, steps),
            Expr::Extension(_) => {
                Err(QueryError::bad_data("extension expressions are not supported"))
            }
        }
    }

    /// An expression that must be a scalar (a parameter), one value per step.
    pub(crate) fn eval_scalar(
        &mut self,
        expr: &Expr,
        steps: Steps,
    ) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr, steps)? {
            Val::Scalar(values) => Ok(values),
            _ => Err(QueryError::bad_data("expected a scalar expression")),
        }
    }

    /// A function call: arguments evaluated (range arguments as [`RangeArg`]), then
    /// [`functions::call`]; the engine sets the drop-name flags of the result.
    fn call(&mut self, call: &Call, steps: Steps) -> Result<Val, QueryError> {
        let name = call.func.name;
        if name == "timestamp" {
            if let Some(Expr::VectorSelector(vs)) = call.args.args.first().map(|a| unwrap_parens(a))
            {
                let mut series = self.vector_selector(vs, steps, SampleValue::Timestamp)?;
                for s in &mut series {
                    s.drop_name = true;
                }
                return Ok(Val::Vector(series));
            }
        }
        let mut args = Vec::with_capacity(call.args.args.len());
        // Drop-name flags of the first vector or range argument, for functions that keep them.
        let mut input_flags: Option<(Vec<Labels>, Vec<bool>)> = None;
        let mut seen_series_arg = false;
        for arg in &call.args.args {
            let saved_hint = self.hint_func.replace(name);
            let evaluated = self.call_arg(arg, steps);
            self.hint_func = saved_hint;
            let (fn_arg, flags) = evaluated?;
            let holds_series = matches!(fn_arg, FnArg::Vector(_) | FnArg::Range(_));
            if holds_series && !seen_series_arg {
                seen_series_arg = true;
                input_flags = flags;
            }
            args.push(fn_arg);
        }
        let label_dst = match (name, args.get(1)) {
            ("label_replace" | "label_join", Some(FnArg::String(dst))) => Some(dst.clone()),
            _ => None,
        };
        let ctx = FnCtx { steps, args: &call.args.args, query: &self.query_text };
        let result = functions::call(name, args, &ctx, &mut self.annotations)?;
        Ok(match result {
            StepValue::Scalar(values) => Val::Scalar(values),
            StepValue::String(s) => Val::String(s),
            StepValue::Vector(series) => {
                let on_grid = on_step_grid(series, steps);
                Val::Vector(flag_function_output(name, on_grid, input_flags, label_dst.as_deref()))
            }
        })
    }

    /// One evaluated function argument, and (for vectors and ranges with a flagged series) its
    /// series' labels and drop-name flags.
    #[allow(clippy::type_complexity)]
    fn call_arg(
        &mut self,
        arg: &Expr,
        steps: Steps,
    ) -> Result<(FnArg, Option<(Vec<Labels>, Vec<bool>)>), QueryError> {
        let range = match unwrap_parens(arg) {
            Expr::MatrixSelector(ms) => Some(self.matrix_selector(ms, steps)?),
            Expr::Subquery(sq) => Some(self.subquery(sq, steps)?),
            _ => None,
        };
        if let Some(range) = range {
            let flags = range.drop_name.iter().any(|&f| f).then(|| {
                let labels = range.arg.series.iter().map(|s| s.labels.clone()).collect();
                (labels, range.drop_name)
            });
            return Ok((FnArg::Range(range.arg), flags));
        }
        Ok(match self.eval(arg, steps)? {
            Val::Scalar(values) => (FnArg::Scalar(values), None),
            Val::String(s) => (FnArg::String(s), None),
            Val::Vector(series) => {
                // Labels are copied only when some flag needs carrying over.
                let flags = series.iter().any(|s| s.drop_name).then(|| {
                    let labels = series.iter().map(|s| s.labels.clone()).collect();
                    (labels, series.iter().map(|s| s.drop_name).collect())
                });
                let plain = series.into_iter().map(VSeries::into_series).collect();
                (FnArg::Vector(plain), flags)
            }
        })
    }
}

/// Functions whose output keeps `__name__` (Prometheus: the functions that return their input
/// samples unchanged).
fn keeps_name(name: &str) -> bool {
    matches!(
        name,
        "last_over_time"
            | "first_over_time"
            | "sort"
            | "sort_desc"
            | "sort_by_label"
            | "sort_by_label_desc"
            | "label_replace"
            | "label_join"
    )
}

/// A function's output restricted to the step grid: the operators index their per-step state by
/// a point's step, so a point elsewhere (a function breaking its contract) must not reach them.
fn on_step_grid(mut series: Vec<Series>, steps: Steps) -> Vec<Series> {
    for s in &mut series {
        debug_assert!(s.points.iter().all(|p| steps.index(p.t).is_some()), "off-grid point");
        s.points.retain(|p| steps.index(p.t).is_some());
    }
    series.retain(|s| !s.points.is_empty());
    series
}

/// Sets the drop-name flags of a function's output: most functions drop the name; those that
/// return their input samples keep the input's flags; `label_replace`/`label_join` writing
/// `__name__` keep the name.
fn flag_function_output(
    name: &str,
    series: Vec<Series>,
    input: Option<(Vec<Labels>, Vec<bool>)>,
    label_dst: Option<&str>,
) -> Vec<VSeries> {
    if !keeps_name(name) {
        return series.into_iter().map(|s| VSeries::from_series(s, true)).collect();
    }
    let Some((labels, flags)) = input.filter(|(_, flags)| flags.iter().any(|&f| f)) else {
        return series.into_iter().map(|s| VSeries::from_series(s, false)).collect();
    };
    if let Some(dst) = label_dst {
        // One output per input series, in order.
        return series
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let flag = dst != METRIC_NAME && flags.get(i).copied().unwrap_or(false);
                VSeries::from_series(s, flag)
            })
            .collect();
    }
    let by_labels: HashMap<&Labels, bool> = labels.iter().zip(flags.iter().copied()).collect();
    series
        .into_iter()
        .map(|s| {
            let flag = by_labels.get(&s.labels).copied().unwrap_or(false);
            VSeries::from_series(s, flag)
        })
        .collect()
}

/// An instant query's vector: names dropped where flagged, duplicates rejected, input order
/// kept (`topk` and `sort` results are ordered).
fn instant_samples(series: Vec<VSeries>, time_ms: i64) -> Result<Vec<Sample>, QueryError> {
    let mut samples = Vec::with_capacity(series.len());
    for s in series {
        let (labels, points) = s.final_labels();
        if let Some(p) = points.last() {
            samples.push(Sample { labels, t: time_ms, v: p.v });
        }
    }
    let mut seen: Vec<&Labels> = samples.iter().map(|s| &s.labels).collect();
    seen.sort();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(same_labelset_error());
    }
    Ok(samples)
}

/// A range query's matrix: names dropped where flagged; series that end up with the same labels
/// are merged unless they have a point at the same step. Sorted by labels.
fn range_series(series: Vec<VSeries>) -> Result<Vec<Series>, QueryError> {
    let mut out: Vec<Series> = series
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| {
            let (labels, points) = s.final_labels();
            Series { labels, points }
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut merged: Vec<Series> = Vec::with_capacity(out.len());
    for s in out {
        match merged.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.points.extend(s.points);
                last.points.sort_by_key(|p| p.t);
                if last.points.windows(2).any(|w| w[0].t == w[1].t) {
                    return Err(same_labelset_error());
                }
            }
            _ => merged.push(s),
        }
    }
    Ok(merged)
}

pub(crate) fn same_labelset_error() -> QueryError {
    QueryError::execution("vector cannot contain metrics with the same labelset")
}

/// The raw points of each series inside window `step` (an instant query of a range selector or
/// subquery).
fn raw_windows(range: RangeVal, step: usize) -> Vec<Series> {
    let end = range.arg.window_ends[step];
    let start = end - range.arg.range_ms;
    range
        .arg
        .series
        .into_iter()
        .zip(range.drop_name)
        .filter_map(|(s, drop)| {
            let points: Vec<Point> =
                s.points.into_iter().filter(|p| p.t > start && p.t <= end).collect();
            if points.is_empty() {
                return None;
            }
            let labels = if drop { without_name(&s.labels) } else { s.labels };
            Some(Series { labels, points })
        })
        .collect()
}

/// The labels that describe the metric rather than the series: `__name__`, and the `__type__`
/// and `__unit__` labels of Prometheus' type-and-unit feature, which go with the name when it
/// is dropped (`type_and_unit.test`).
fn is_metric_identity(name: &str) -> bool {
    matches!(name, METRIC_NAME | "__type__" | "__unit__")
}

pub(crate) fn without_name(labels: &Labels) -> Labels {
    if !labels.iter().any(|l| is_metric_identity(&l.name)) {
        return labels.clone();
    }
    Labels::from_sorted_unchecked(
        labels.iter().filter(|l| !is_metric_identity(&l.name)).cloned().collect(),
    )
}

/// ` (line:col)` of `expr`'s text in `query` (1-based, as Prometheus appends to annotation
/// messages); empty if the text is not found. The AST carries no positions, so this finds the
/// first occurrence of the printed expression.
pub fn annotation_position(query: &str, expr: &Expr) -> String {
    let text = expr.to_string();
    let Some(at) = query.find(&text) else {
        return String::new();
    };
    let line = query[..at].matches('\n').count() + 1;
    let line_start = query[..at].rfind('\n').map_or(0, |i| i + 1);
    format!(" ({line}:{})", query[line_start..at].chars().count() + 1)
}

pub(crate) fn unwrap_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

#[cfg(test)]
mod tests;
