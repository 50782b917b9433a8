//! Runner of Prometheus `promqltest` scripts (`strata test promql`, and the conformance test
//! `tests/promql_conformance.rs`).
//!
//! Follows Prometheus v3 `promql/promqltest/test.go` and its README: `load`/`load_with_nhcb`
//! write series into a [`MemStorage`] (timestamps from 0, in milliseconds), `clear` empties it,
//! `eval instant|range` runs the query with [`Engine`] and compares like Prometheus does:
//!
//! - floats with `almost.Equal` (relative epsilon 1e-6, NaN equals NaN);
//! - series matched by label set, order checked only with `expect ordered`;
//! - range results point by point (`_` = no point), and matrices must be sorted by labels;
//! - annotations: `expect warn|info` (optionally `msg:`/`regex:`) must each match one, and then
//!   every annotation of that kind must match an expectation; `no_warn`/`no_info` forbid them;
//! - an instant query is re-run as a range query from `t-1m` to `t+1m` step `1m` and its middle
//!   step compared again, and re-run with `@ t` set on every selector at other evaluation times
//!   (`atModifierTestCases`), unless it uses a function whose result depends on the time.
//!
//! What is not supported is skipped, never silently: whole files, the `native_histograms` rule
//! (a case whose query selects a series loaded with native histogram values, or whose expected
//! output holds one) and single cases, each with a reason from [`Unsupported`].

mod parse;
mod unsupported;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, SystemTime};

use promql_parser::parser::{AtModifier, Expr};

pub use parse::{parse_duration_ms, parse_series_desc, parse_series_values, SeqValue, SeriesDesc};
pub use unsupported::{Unsupported, RULE_NATIVE_HISTOGRAMS};

use parse::{Command, Eval, ExpectKind, Expected, Load, MessageMatch};

use crate::model::labels::{Label, Labels, METRIC_NAME};

use super::engine::{parse as parse_query, Engine, EngineOptions};
use super::storage::MemStorage;
use super::value::{Point, QueryError, QueryResult, Value};

/// Relative error allowed between expected and actual floats (`defaultEpsilon`).
const EPSILON: f64 = 1e-6;

/// A case that did not pass.
#[derive(Clone, Debug)]
pub struct CaseFailure {
    pub line: usize,
    pub expr: String,
    pub message: String,
}

/// A case that was not run, and why.
#[derive(Clone, Debug)]
pub struct SkippedCase {
    pub line: usize,
    pub expr: String,
    pub reason: String,
}

/// The outcome of one script.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    pub file: String,
    pub passed: usize,
    pub failed: Vec<CaseFailure>,
    pub skipped: Vec<SkippedCase>,
    /// Set when the whole file was skipped.
    pub skipped_file: Option<String>,
    /// Set when the script could not be read or parsed (counts as a failure).
    pub error: Option<String>,
}

impl FileReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.error.is_none()
    }

    /// Failures, including a script error, counted as cases.
    pub fn failed_count(&self) -> usize {
        self.failed.len() + usize::from(self.error.is_some())
    }

    /// Prints failures (and skipped cases when `verbose`) and a summary line.
    pub fn print(&self, out: &mut impl std::io::Write, verbose: bool) -> std::io::Result<()> {
        if let Some(error) = &self.error {
            writeln!(out, "{}: error: {error}", self.file)?;
        }
        for failure in &self.failed {
            writeln!(
                out,
                "FAIL {}:{}: {}\n    {}",
                self.file, failure.line, failure.expr, failure.message
            )?;
        }
        if verbose {
            if let Some(reason) = &self.skipped_file {
                writeln!(out, "SKIP {}: {reason}", self.file)?;
            }
            for skip in &self.skipped {
                writeln!(out, "SKIP {}:{}: {} ({})", self.file, skip.line, skip.expr, skip.reason)?;
            }
        }
        writeln!(
            out,
            "{}: {} passed, {} failed, {} skipped",
            self.file,
            self.passed,
            self.failed_count(),
            self.skipped.len()
        )
    }
}

/// Reads and runs one script; the file name (without directory) is what `Unsupported` entries
/// name.
pub fn run_file(path: &Path, unsupported: &Unsupported) -> FileReport {
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    match std::fs::read_to_string(path) {
        Ok(text) => run_script(&name, &text, unsupported),
        Err(err) => {
            FileReport { file: name, error: Some(err.to_string()), ..FileReport::default() }
        }
    }
}

/// Runs a script's commands in order.
pub fn run_script(name: &str, text: &str, unsupported: &Unsupported) -> FileReport {
    let mut report = FileReport { file: name.to_owned(), ..FileReport::default() };
    if let Some(reason) = unsupported.file_reason(name) {
        // Not parsed: such files may use syntax the runner does not know.
        report.skipped_file = Some(reason.to_owned());
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("eval") {
                let expr = line.split_whitespace().skip(3).collect::<Vec<_>>().join(" ");
                report.skipped.push(SkippedCase { line: i + 1, expr, reason: reason.to_owned() });
            }
        }
        return report;
    }
    let commands = match parse::parse_script(text) {
        Ok(commands) => commands,
        Err(err) => {
            report.error = Some(err);
            return report;
        }
    };
    let mut runner = Runner {
        engine: Engine::new(EngineOptions::default()),
        storage: MemStorage::new(),
        histogram_series: Vec::new(),
    };
    for command in commands {
        match command {
            Command::Clear => {
                runner.storage.clear();
                runner.histogram_series.clear();
            }
            Command::Load(load) => runner.load(&load),
            Command::Eval(eval) => {
                if let Some(reason) = runner.skip_reason(name, &eval, unsupported) {
                    report.skipped.push(skipped(&eval, &reason));
                    continue;
                }
                let outcome = catch_unwind(AssertUnwindSafe(|| runner.eval(&eval)))
                    .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&panic))));
                match outcome {
                    Ok(()) => report.passed += 1,
                    Err(message) => report.failed.push(CaseFailure {
                        line: eval.line,
                        expr: eval.expr.clone(),
                        message,
                    }),
                }
            }
        }
    }
    report
}

fn skipped(eval: &Eval, reason: &str) -> SkippedCase {
    SkippedCase { line: eval.line, expr: eval.expr.clone(), reason: reason.to_owned() }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}

struct Runner {
    engine: Engine,
    storage: MemStorage,
    /// Label sets of series that hold native histograms (not loaded).
    histogram_series: Vec<Labels>,
}

impl Runner {
    fn load(&mut self, load: &Load) {
        for series in &load.series {
            if series.has_histograms() {
                self.histogram_series.push(series.labels.clone());
            }
            let points = series.values.iter().enumerate().filter_map(|(i, v)| match v {
                SeqValue::Float(f) => Some(Point { t: i as i64 * load.interval_ms, v: *f }),
                SeqValue::Omitted | SeqValue::Histogram => None,
            });
            self.storage.add(series.labels.clone(), points.collect::<Vec<_>>());
            if load.with_nhcb {
                if let Some(labels) = nhcb_labels(&series.labels) {
                    if !self.histogram_series.contains(&labels) {
                        self.histogram_series.push(labels);
                    }
                }
            }
        }
    }

    fn skip_reason(&self, file: &str, eval: &Eval, unsupported: &Unsupported) -> Option<String> {
        if let Some(reason) = unsupported.case_reason(file, eval.line) {
            return Some(reason.to_owned());
        }
        let reason = unsupported.rule_reason(RULE_NATIVE_HISTOGRAMS)?;
        let expects_histogram = match &eval.expected {
            Expected::Series(series) => series.iter().any(SeriesDesc::has_histograms),
            _ => false,
        };
        if expects_histogram {
            return Some(format!("{reason} (expected output holds one)"));
        }
        if self.histogram_series.is_empty() {
            return None;
        }
        let expr = parse_query(&eval.expr).ok()?;
        let mut selects_histogram = false;
        visit_selectors(&expr, &mut |name, matchers| {
            selects_histogram |=
                self.histogram_series.iter().any(|labels| selector_matches(name, matchers, labels));
        });
        selects_histogram.then(|| format!("{reason} (the query selects one)"))
    }

    fn eval(&self, eval: &Eval) -> Result<(), String> {
        if eval.is_range {
            let result = self.engine.range_query(
                &self.storage,
                &eval.expr,
                eval.start_ms,
                eval.end_ms,
                eval.step_ms,
            );
            return check(eval, result, eval.start_ms, eval.step_ms);
        }
        let result = self.engine.instant_query(&self.storage, &eval.expr, eval.eval_ms);
        check(eval, result, eval.start_ms, eval.step_ms)?;
        // The `@` variants must fail too when the query is expected to fail.
        self.check_at_variants(eval)?;
        if eval.is_fail()
            || eval.exclude_from_range
            || eval.is_ordered()
            || uses_query_context(&eval.expr)
        {
            return Ok(());
        }
        self.check_range_mode(eval, &eval.expr, eval.eval_ms)
            .map_err(|e| format!("range mode: {e}"))
    }

    /// Re-runs an instant query as a range query around its time and compares the middle step.
    fn check_range_mode(&self, eval: &Eval, query: &str, t: i64) -> Result<(), String> {
        let result = self
            .engine
            .range_query(&self.storage, query, t - 60_000, t + 60_000, 60_000)
            .map_err(|e| format!("error: {e}"))?;
        let Value::Matrix(matrix) = result.value else {
            return Err(format!("range query returned a {}", result.value.type_name()));
        };
        check_sorted(&matrix)?;
        let at_t: Vec<(Labels, f64)> = matrix
            .iter()
            .filter_map(|s| s.points.iter().find(|p| p.t == t).map(|p| (s.labels.clone(), p.v)))
            .collect();
        if let Expected::Scalar(expected) = eval.expected {
            let got = at_t.first().map(|(_, v)| *v).ok_or("no point at the evaluation time")?;
            return compare_float(expected, got).map_err(|e| format!("scalar: {e}"));
        }
        compare_vector(eval, &at_t)
    }

    /// Prometheus' `atModifierTestCases`: `@ t` on every selector and subquery, evaluated at
    /// other times, must give the same result.
    fn check_at_variants(&self, eval: &Eval) -> Result<(), String> {
        let Ok(mut expr) = parse_query(&eval.expr) else { return Ok(()) };
        if has_at_unsafe_function(&expr) {
            return Ok(());
        }
        let t = eval.eval_ms;
        set_at(&mut expr, t);
        let times = if t == 0 { vec![-1000, 0, 1000] } else { vec![-10 * t, 0, t / 5, t, 10 * t] };
        // The range-mode re-run needs the variant as text (the engine parses range queries).
        let text = expr.to_string();
        let range_mode = !(eval.is_fail()
            || eval.exclude_from_range
            || eval.is_ordered()
            || uses_query_context(&eval.expr));
        for time in times {
            let result = self.engine.instant_expr(&self.storage, &expr, time);
            check(eval, result, eval.start_ms, eval.step_ms)
                .map_err(|e| format!("with @ {t}ms evaluated at {time}ms ({text}): {e}"))?;
            if range_mode {
                self.check_range_mode(eval, &text, time).map_err(|e| {
                    format!("with @ {t}ms evaluated at {time}ms ({text}) in range mode: {e}")
                })?;
            }
        }
        Ok(())
    }
}

/// The native-histogram-with-custom-buckets series `load_with_nhcb` derives from a classic
/// histogram series: the name without `_bucket`/`_count`/`_sum`, without `le`.
fn nhcb_labels(labels: &Labels) -> Option<Labels> {
    let name = labels.metric_name()?;
    let base = ["_bucket", "_count", "_sum"].iter().find_map(|suffix| name.strip_suffix(suffix))?;
    if name.ends_with("_bucket")
        && labels.get("le").and_then(|le| le.parse::<f64>().ok()).is_none_or(f64::is_nan)
    {
        return None;
    }
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != "le")
        .map(|l| if l.name == METRIC_NAME { Label::new(METRIC_NAME, base) } else { l.clone() })
        .collect();
    Some(Labels::from_unsorted(kept))
}

fn visit_selectors(
    expr: &Expr,
    visit: &mut impl FnMut(Option<&str>, &promql_parser::label::Matchers),
) {
    match expr {
        Expr::Aggregate(e) => {
            visit_selectors(&e.expr, visit);
            if let Some(param) = &e.param {
                visit_selectors(param, visit);
            }
        }
        Expr::Unary(e) => visit_selectors(&e.expr, visit),
        Expr::Binary(e) => {
            visit_selectors(&e.lhs, visit);
            visit_selectors(&e.rhs, visit);
        }
        Expr::Paren(e) => visit_selectors(&e.expr, visit),
        Expr::Subquery(e) => visit_selectors(&e.expr, visit),
        Expr::VectorSelector(vs) => visit(vs.name.as_deref(), &vs.matchers),
        Expr::MatrixSelector(ms) => visit(ms.vs.name.as_deref(), &ms.vs.matchers),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| visit_selectors(arg, visit)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_matches(
    name: Option<&str>,
    matchers: &promql_parser::label::Matchers,
    labels: &Labels,
) -> bool {
    if name.is_some_and(|name| labels.metric_name() != Some(name)) {
        return false;
    }
    let all = |group: &[promql_parser::label::Matcher]| {
        group.iter().all(|m| m.is_match(labels.get(&m.name).unwrap_or("")))
    };
    let groups_match = matchers.or_matchers.iter().any(|group| all(group));
    (all(&matchers.matchers) && (name.is_some() || !matchers.matchers.is_empty())) || groups_match
}

/// `promql.AtModifierUnsafeFunctions`: results depend on the evaluation time itself.
fn has_at_unsafe_function(expr: &Expr) -> bool {
    const UNSAFE: [&str; 15] = [
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "hour",
        "minute",
        "month",
        "year",
        "predict_linear",
        "time",
        "timestamp",
        // The query's own bounds (Prometheus skips queries using them here too).
        "start",
        "end",
        "range",
        "step",
    ];
    match expr {
        Expr::Aggregate(e) => {
            has_at_unsafe_function(&e.expr)
                || e.param.as_deref().is_some_and(has_at_unsafe_function)
        }
        Expr::Unary(e) => has_at_unsafe_function(&e.expr),
        Expr::Binary(e) => has_at_unsafe_function(&e.lhs) || has_at_unsafe_function(&e.rhs),
        Expr::Paren(e) => has_at_unsafe_function(&e.expr),
        Expr::Subquery(e) => has_at_unsafe_function(&e.expr),
        Expr::Call(call) => {
            UNSAFE.contains(&call.func.name)
                || call.args.args.iter().any(|a| has_at_unsafe_function(a))
        }
        _ => false,
    }
}

/// Sets `@ t` on selectors and subqueries that have none, not descending into a subquery (which
/// then has one).
fn set_at(expr: &mut Expr, t_ms: i64) {
    let at = || {
        let time = if t_ms >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_millis(t_ms.unsigned_abs())
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_millis(t_ms.unsigned_abs())
        };
        Some(AtModifier::At(time))
    };
    match expr {
        Expr::Aggregate(e) => {
            set_at(&mut e.expr, t_ms);
            if let Some(param) = &mut e.param {
                set_at(param, t_ms);
            }
        }
        Expr::Unary(e) => set_at(&mut e.expr, t_ms),
        Expr::Binary(e) => {
            set_at(&mut e.lhs, t_ms);
            set_at(&mut e.rhs, t_ms);
        }
        Expr::Paren(e) => set_at(&mut e.expr, t_ms),
        Expr::Subquery(e) => {
            if e.at.is_none() {
                e.at = at();
            }
        }
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = at();
            }
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = at();
            }
        }
        Expr::Call(call) => call.args.args.iter_mut().for_each(|arg| set_at(arg, t_ms)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// `start()`, `end()`, `range()`, `step()` resolve differently in range mode.
fn uses_query_context(expr: &str) -> bool {
    ["start()", "end()", "range()", "step()"].iter().any(|f| {
        expr.match_indices(f).any(|(i, _)| {
            i == 0
                || !expr.as_bytes()[i - 1].is_ascii_alphanumeric() && expr.as_bytes()[i - 1] != b'_'
        })
    })
}

/// Checks an evaluation's outcome: the failure expectation, annotations, then the value.
/// `start_ms`/`step_ms` place expected range values.
fn check(
    eval: &Eval,
    result: Result<QueryResult, QueryError>,
    start_ms: i64,
    step_ms: i64,
) -> Result<(), String> {
    let result = match result {
        Err(err) if eval.is_fail() => {
            return match eval.expects(ExpectKind::Fail).next() {
                Some(expected) if !expected.matches(&err.message) => {
                    Err(format!("expected error matching {expected}, got: {}", err.message))
                }
                _ => Ok(()),
            };
        }
        Err(err) => return Err(format!("error: {}", err.message)),
        Ok(_) if eval.is_fail() => return Err("expected an error, got none".to_owned()),
        Ok(result) => result,
    };
    check_annotations(eval, &result)?;
    compare_value(eval, &result.value, start_ms, step_ms)
}

fn check_annotations(eval: &Eval, result: &QueryResult) -> Result<(), String> {
    let kinds = [
        ("warn", ExpectKind::Warn, ExpectKind::NoWarn, eval.warn, &result.annotations.warnings),
        ("info", ExpectKind::Info, ExpectKind::NoInfo, eval.info, &result.annotations.infos),
    ];
    for (name, expect, forbid, old_flag, actual) in kinds {
        if old_flag && actual.is_empty() {
            return Err(format!("expected {name} annotations, got none"));
        }
        let expected: Vec<&MessageMatch> = eval.expects(expect).collect();
        if !expected.is_empty() {
            if actual.is_empty() {
                return Err(format!("expected {name} annotations, got none"));
            }
            if let Some(missing) = expected.iter().find(|e| !actual.iter().any(|a| e.matches(a))) {
                return Err(format!(
                    "expected {name} annotation matching {missing}, got {actual:?}"
                ));
            }
            if let Some(extra) = actual.iter().find(|a| !expected.iter().any(|e| e.matches(a))) {
                return Err(format!("unexpected {name} annotation {extra:?}"));
            }
        }
        if eval.has(forbid) && !actual.is_empty() {
            return Err(format!("unexpected {name} annotations: {actual:?}"));
        }
    }
    Ok(())
}

fn compare_value(eval: &Eval, value: &Value, start_ms: i64, step_ms: i64) -> Result<(), String> {
    match value {
        Value::Matrix(matrix) => {
            if eval.is_ordered() {
                return Err("expected an ordered result, got a matrix".to_owned());
            }
            if let Expected::Scalar(_) = eval.expected {
                return Err("expected a scalar, got a matrix".to_owned());
            }
            check_sorted(matrix)?;
            let expected = expected_series(eval);
            for series in matrix {
                let Some(desc) = expected.get(&series.labels) else {
                    return Err(format!(
                        "unexpected series {} with {}",
                        series.labels,
                        format_points(&series.points)
                    ));
                };
                let mut expected_points = Vec::new();
                for (i, value) in desc.values.iter().enumerate() {
                    let t = start_ms + i as i64 * step_ms;
                    if t > eval.end_ms {
                        return Err(format!(
                            "{} values expected for {} but the range has fewer steps",
                            desc.values.len(),
                            series.labels
                        ));
                    }
                    if let SeqValue::Float(v) = value {
                        expected_points.push(Point { t, v: *v });
                    }
                }
                let mismatch = expected_points.len() != series.points.len()
                    || expected_points
                        .iter()
                        .zip(&series.points)
                        .any(|(e, g)| e.t != g.t || !almost_equal(e.v, g.v));
                if mismatch {
                    return Err(format!(
                        "{}: expected {}, got {}",
                        series.labels,
                        format_points(&expected_points),
                        format_points(&series.points)
                    ));
                }
            }
            if let Some(missing) =
                expected.keys().find(|labels| !matrix.iter().any(|s| &s.labels == **labels))
            {
                return Err(format!("expected series {missing} not found"));
            }
            Ok(())
        }
        Value::Vector(samples) => {
            if let Expected::Scalar(_) = eval.expected {
                return Err(format!("expected a scalar, got a vector of {}", samples.len()));
            }
            let got: Vec<(Labels, f64)> = samples.iter().map(|s| (s.labels.clone(), s.v)).collect();
            compare_vector(eval, &got)
        }
        Value::Scalar { v, .. } => match eval.expected {
            Expected::Scalar(expected) => {
                compare_float(expected, *v).map_err(|e| format!("scalar: {e}"))
            }
            _ => Err(format!("expected a vector or matrix, got scalar {v}")),
        },
        Value::String { v, .. } => match &eval.expected {
            Expected::String(expected) if expected == v => Ok(()),
            expected => Err(format!("expected {expected:?}, got string {v:?}")),
        },
    }
}

fn compare_vector(eval: &Eval, got: &[(Labels, f64)]) -> Result<(), String> {
    let expected_list: &[SeriesDesc] = match &eval.expected {
        Expected::Series(series) => series,
        _ => &[],
    };
    let expected = expected_series(eval);
    for (position, (labels, value)) in got.iter().enumerate() {
        let Some(desc) = expected.get(labels) else {
            return Err(format!("unexpected series {labels} with value {value}"));
        };
        if eval.is_ordered() {
            let want = expected_list.iter().position(|d| &d.labels == labels).unwrap_or(usize::MAX);
            if want != position {
                return Err(format!(
                    "expected {labels} at position {} but it was at {}",
                    want + 1,
                    position + 1
                ));
            }
        }
        let want = match desc.values.first() {
            Some(SeqValue::Float(v)) => *v,
            other => return Err(format!("{labels}: expected {other:?}, got {value}")),
        };
        compare_float(want, *value).map_err(|e| format!("{labels}: {e}"))?;
    }
    if let Some(missing) = expected.keys().find(|labels| !got.iter().any(|(l, _)| l == **labels)) {
        return Err(format!("expected series {missing} not found (got {} series)", got.len()));
    }
    Ok(())
}

fn expected_series(eval: &Eval) -> HashMap<&Labels, &SeriesDesc> {
    match &eval.expected {
        Expected::Series(series) => series.iter().map(|d| (&d.labels, d)).collect(),
        _ => HashMap::new(),
    }
}

fn check_sorted(matrix: &[super::value::Series]) -> Result<(), String> {
    match matrix.windows(2).find(|w| w[0].labels > w[1].labels) {
        Some(w) => {
            Err(format!("matrix not sorted by labels: {} before {}", w[0].labels, w[1].labels))
        }
        None => Ok(()),
    }
}

fn compare_float(expected: f64, got: f64) -> Result<(), String> {
    if almost_equal(expected, got) {
        Ok(())
    } else {
        Err(format!("expected {expected}, got {got}"))
    }
}

fn format_points(points: &[Point]) -> String {
    let items: Vec<String> = points.iter().map(|p| format!("{} @{}", p.v, p.t)).collect();
    format!("[{}]", items.join(", "))
}

/// Prometheus' `almost.Equal` with epsilon [`EPSILON`].
pub fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

/// Totals over several files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn add(&mut self, report: &FileReport) {
        self.passed += report.passed;
        self.failed += report.failed_count();
        self.skipped += report.skipped.len();
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn almost_equal_like_prometheus() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(0.0, 1e-300));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY));
    }

    #[test]
    fn nhcb_series_drop_le_and_suffix() {
        let bucket = Labels::from_pairs([("__name__", "h_bucket"), ("le", "1"), ("job", "a")]);
        assert_eq!(
            nhcb_labels(&bucket),
            Some(Labels::from_pairs([("__name__", "h"), ("job", "a")]))
        );
        let plain = Labels::from_pairs([("__name__", "h_total")]);
        assert_eq!(nhcb_labels(&plain), None);
    }

    #[test]
    fn histogram_cases_are_skipped_with_the_rule() {
        let unsupported =
            Unsupported::parse("rules:\n  - rule: native_histograms\n    reason: nh\n").unwrap();
        let script = "load 1m\n  h {{schema:0 sum:1 count:1}}\n  f 1\n\neval instant at 0 h\n  h {{schema:0 sum:1 count:1}}\n\neval instant at 0 {__name__=~\"h|f\"}\n  f 1\n";
        let report = run_script("x.test", script, &unsupported);
        assert_eq!(report.skipped.len(), 2);
        assert!(report.skipped[1].reason.contains("selects"));
    }

    #[test]
    fn query_context_functions_are_detected() {
        assert!(uses_query_context("x + step()"));
        assert!(!uses_query_context("foo_step()"));
    }
}
