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

mod compare;
mod parse;
mod query;
mod series;
mod unsupported;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub use series::{parse_duration_ms, parse_series_desc, parse_series_values, SeqValue, SeriesDesc};
pub use unsupported::{Unsupported, RULE_NATIVE_HISTOGRAMS};

pub use compare::almost_equal;

use compare::{check, check_sorted, compare_float, compare_vector};
use parse::{Command, Eval, Expected, Load};
use query::{
    has_at_unsafe_function, nhcb_labels, selector_matches, set_at, uses_query_context,
    visit_selectors,
};

use crate::model::labels::Labels;

use super::engine::{parse as parse_query, Engine, EngineOptions};
use super::storage::MemStorage;
use super::value::{Point, Value};

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
    fn histogram_cases_are_skipped_with_the_rule() {
        let unsupported =
            Unsupported::parse("rules:\n  - rule: native_histograms\n    reason: nh\n").unwrap();
        let script = "load 1m\n  h {{schema:0 sum:1 count:1}}\n  f 1\n\neval instant at 0 h\n  h {{schema:0 sum:1 count:1}}\n\neval instant at 0 {__name__=~\"h|f\"}\n  f 1\n";
        let report = run_script("x.test", script, &unsupported);
        assert_eq!(report.skipped.len(), 2);
        assert!(report.skipped[1].reason.contains("selects"));
    }
}
