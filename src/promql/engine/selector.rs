//! Selectors and subqueries: what the engine reads from storage, once per selector for the
//! whole query range.
//!
//! Prometheus 3.x semantics (`promql/engine.go`: `vectorSelectorSingle`, `matrixIterSlice`,
//! `evalSubquery`): an instant-vector selector takes at each step the latest sample in the
//! left-open window `(t - lookback, t]`, and a staleness marker there means no value; range
//! selectors drop staleness markers; a subquery evaluates its expression at multiples of its
//! step inside `(t - range, t]`. `offset` moves every window back; `@` pins them to one time.
//! Each series is scanned once with a cursor that only moves forward as the steps advance.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::label::Matcher as ParserMatcher;
use promql_parser::parser::{AtModifier, MatrixSelector, Offset, SubqueryExpr, VectorSelector};

use crate::model::labels::{Labels, METRIC_NAME};
use crate::promql::functions::RangeArg;
use crate::promql::storage::SelectHints;
use crate::promql::value::{is_stale_nan, Point, QueryError, Series, Steps};
use crate::storage::head::matcher::MatchOp;
use crate::storage::head::LabelMatcher;

use super::{Evaluator, RangeVal, VSeries, Val};

impl Evaluator<'_> {
    /// The time `@` pins an expression to, if any.
    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at.as_ref()? {
            AtModifier::Start => Some(self.query_start),
            AtModifier::End => Some(self.query_end),
            AtModifier::At(time) => Some(system_time_ms(*time)),
        }
    }

    /// For every step, the time a selector or subquery is evaluated at (`@` and `offset`
    /// applied).
    fn eval_times(
        &self,
        steps: Steps,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
    ) -> EvalTimes {
        let offset_ms = offset_ms(offset);
        match self.at_ms(at) {
            Some(t) => EvalTimes { steps, pinned: Some(t - offset_ms), offset_ms },
            None => EvalTimes { steps, pinned: None, offset_ms },
        }
    }

    fn select(&self, vs: &VectorSelector, hints: &SelectHints) -> Result<Vec<Series>, QueryError> {
        let base = to_matchers(vs.name.as_deref(), &vs.matchers.matchers)?;
        if vs.matchers.or_matchers.is_empty() {
            return self.storage.select(&base, hints);
        }
        // `{a="1" or b="2"}`: the union of each alternative's series.
        let mut all: Vec<Series> = Vec::new();
        for alternative in &vs.matchers.or_matchers {
            let mut matchers = to_matchers(None, alternative)?;
            matchers.extend(base.iter().cloned());
            all.extend(self.storage.select(&matchers, hints)?);
        }
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        all.dedup_by(|a, b| a.labels == b.labels);
        Ok(all)
    }

    /// An instant-vector selector at every step.
    pub(super) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        steps: Steps,
        what: SampleValue,
    ) -> Result<Vec<VSeries>, QueryError> {
        let times = self.eval_times(steps, &vs.at, &vs.offset);
        let lookback = self.options.lookback_delta_ms;
        let hints = SelectHints {
            start_ms: times.first() - lookback + 1,
            end_ms: times.last(),
            step_ms: if steps.len() > 1 { steps.step } else { 0 },
            range_ms: 0,
            func: self.hint_func.map(str::to_owned),
        };
        let selected = self.select(vs, &hints)?;
        let n = steps.len();
        let mut out = Vec::with_capacity(selected.len());
        let mut total = 0usize;
        for series in selected {
            self.check_deadline()?;
            let raw = &series.points;
            let mut points = Vec::new();
            let mut next = 0usize;
            for i in 0..n {
                let t = times.at(i);
                while next < raw.len() && raw[next].t <= t {
                    next += 1;
                }
                let Some(latest) = next.checked_sub(1).map(|j| raw[j]) else {
                    continue;
                };
                if latest.t <= t - lookback || is_stale_nan(latest.v) {
                    continue;
                }
                let v = match what {
                    SampleValue::Value => latest.v,
                    SampleValue::Timestamp => latest.t as f64 / 1000.0,
                };
                points.push(Point { t: steps.time(i), v });
            }
            if points.is_empty() {
                continue;
            }
            total += points.len();
            self.check_samples(total)?;
            out.push(VSeries { labels: series.labels, points, drop_name: false });
        }
        Ok(out)
    }

    /// A range selector for every step: the raw points (stale markers removed) and the window
    /// ends.
    pub(super) fn matrix_selector(
        &mut self,
        ms: &MatrixSelector,
        steps: Steps,
    ) -> Result<RangeVal, QueryError> {
        let times = self.eval_times(steps, &ms.vs.at, &ms.vs.offset);
        let range_ms = duration_ms(ms.range);
        let hints = SelectHints {
            start_ms: times.first() - range_ms + 1,
            end_ms: times.last(),
            step_ms: if steps.len() > 1 { steps.step } else { 0 },
            range_ms,
            func: self.hint_func.map(str::to_owned),
        };
        let mut selected = self.select(&ms.vs, &hints)?;
        let mut total = 0usize;
        for series in &mut selected {
            self.check_deadline()?;
            series.points.retain(|p| !is_stale_nan(p.v));
            total += series.points.len();
            self.check_samples(total)?;
        }
        selected.retain(|s| !s.points.is_empty());
        let drop_name = vec![false; selected.len()];
        let window_ends = (0..steps.len()).map(|i| times.at(i)).collect();
        Ok(RangeVal { arg: RangeArg { series: selected, window_ends, range_ms }, drop_name })
    }

    /// A subquery for every step: its expression evaluated at the subquery's own steps, aligned
    /// to multiples of the subquery step, covering every window.
    pub(super) fn subquery(
        &mut self,
        sq: &SubqueryExpr,
        steps: Steps,
    ) -> Result<RangeVal, QueryError> {
        let times = self.eval_times(steps, &sq.at, &sq.offset);
        let range_ms = duration_ms(sq.range);
        let step_ms = match sq.step {
            Some(step) if !step.is_zero() => duration_ms(step),
            _ => self.options.default_subquery_step_ms,
        };
        let window_ends: Vec<i64> = (0..steps.len()).map(|i| times.at(i)).collect();
        let empty = |window_ends| RangeVal {
            arg: RangeArg { series: Vec::new(), window_ends, range_ms },
            drop_name: Vec::new(),
        };
        // The first multiple of the step inside the first window (windows are left-open).
        let start = (times.first() - range_ms).div_euclid(step_ms) * step_ms + step_ms;
        let end = times.last().div_euclid(step_ms) * step_ms;
        if start > end {
            return Ok(empty(window_ends));
        }
        let inner_steps = Steps { start, end, step: step_ms };
        let saved_hint = self.hint_func.take();
        let inner = self.eval(&sq.expr, inner_steps);
        self.hint_func = saved_hint;
        let (series, drop_name) = match inner? {
            Val::Vector(series) => series
                .into_iter()
                .map(|s| (Series { labels: s.labels, points: s.points }, s.drop_name))
                .unzip(),
            Val::Scalar(values) => {
                let points = inner_steps.times().zip(values).map(|(t, v)| Point { t, v }).collect();
                (vec![Series { labels: Labels::default(), points }], vec![false])
            }
            Val::String(_) => {
                return Err(QueryError::bad_data("subquery is only allowed on instant vector"))
            }
        };
        Ok(RangeVal { arg: RangeArg { series, window_ends, range_ms }, drop_name })
    }
}

/// What an instant-vector selector returns for a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SampleValue {
    Value,
    /// The sample's own timestamp in seconds (`timestamp(selector)`).
    Timestamp,
}

/// The evaluation times of a selector or subquery: each step's time less the offset, or one
/// pinned time (`@`).
#[derive(Clone, Copy, Debug)]
struct EvalTimes {
    steps: Steps,
    pinned: Option<i64>,
    offset_ms: i64,
}

impl EvalTimes {
    fn at(&self, i: usize) -> i64 {
        self.pinned.unwrap_or_else(|| self.steps.time(i) - self.offset_ms)
    }

    fn first(&self) -> i64 {
        self.at(0)
    }

    fn last(&self) -> i64 {
        self.at(self.steps.len() - 1)
    }
}

/// The parser's matchers (plus `__name__` from the metric name) as storage matchers; a regex
/// that does not compile is `bad_data`.
fn to_matchers(
    name: Option<&str>,
    matchers: &[ParserMatcher],
) -> Result<Vec<LabelMatcher>, QueryError> {
    let mut out = Vec::with_capacity(matchers.len() + 1);
    if let Some(name) = name {
        out.push(LabelMatcher::equal(METRIC_NAME, name));
    }
    for m in matchers {
        let op = match m.op {
            ParserMatchOp::Equal => MatchOp::Equal,
            ParserMatchOp::NotEqual => MatchOp::NotEqual,
            ParserMatchOp::Re(_) => MatchOp::RegexMatch,
            ParserMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        let matcher = LabelMatcher::new(m.name.clone(), op, m.value.clone())
            .map_err(|e| QueryError::bad_data(e.to_string()))?;
        out.push(matcher);
    }
    Ok(out)
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the epoch, negative before it.
fn system_time_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => duration_ms(after),
        Err(before) => -duration_ms(before.duration()),
    }
}
