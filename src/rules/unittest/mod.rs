//! `strata test rules`: promtool's rule unit tests
//! (<https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/>).
//!
//! Follows `cmd/promtool/unittest.go` (Prometheus 3.x): input series are loaded in promqltest
//! notation at `start_timestamp + i * interval`; the rule groups (ordered by
//! `group_eval_order`, the others first in file order) are evaluated at every
//! `evaluation_interval` from the start up to the largest `eval_time`, with alerting rules marked
//! restored so `ALERTS` is written at once; a rule error stops the test group; an
//! `alert_rule_test` at `eval_time` is checked against the firing alerts of the evaluation at the
//! last tick ≤ `eval_time`; `promql_expr_test`s are instant queries after all evaluations.
//! Output and exit codes are promtool's (`Unit Testing:  FILE`, `  SUCCESS` or `  FAILED:` with
//! an `exp:`/`got:` diff per failure).
//!
//! Series values are expanded by `promql::promqltest::parse_series_values`. Native histograms
//! are not supported by the engine: input series written in histogram
//! notation and expected samples with `histogram:` are skipped and counted, with a note.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use regex::Regex;
use serde::Deserialize;

use crate::config::units::PromDuration;
use crate::model::labels::{Label, Labels};
use crate::promql::promqltest::parse_series_values;
use crate::promql::{
    Engine, EngineOptions, MemStorage, Point, QueryError, Queryable, SelectHints, Series,
};
use crate::storage::head::LabelMatcher;

use crate::rules::alerting::{AlertState, Rule, TemplateContext};
use crate::rules::file;
use crate::rules::group::Group;
use crate::rules::template::format::go_duration;
use crate::rules::{query_vector, template_query};

mod input;
mod report;

pub use input::parse_series;
use input::start_timestamp;
use report::{alerts_string, indent_lines, samples_string, values_equal};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<PromDuration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
    #[serde(default)]
    fuzzy_compare: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<PromDuration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    start_timestamp: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default, deserialize_with = "string_or_number")]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: PromDuration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    #[serde(default)]
    expr: String,
    #[serde(default)]
    eval_time: PromDuration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
    #[serde(default)]
    histogram: Option<String>,
}

/// `values: 1` is a YAML number; promtool reads it as text.
fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = serde_yaml::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => return Err(serde::de::Error::custom(format!("invalid values: {other:?}"))),
    })
}

/// Options of `strata test rules`.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// Only test groups whose name matches one of these (unanchored) regexes.
    pub run: Vec<Regex>,
    /// Ignore unknown fields in the rule files (not in the test file).
    pub ignore_unknown_fields: bool,
}

/// Runs every test file; returns promtool's exit code (0 all passed, 1 otherwise).
pub fn run_files(
    files: &[PathBuf],
    options: &TestOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut failed = false;
    for path in files {
        let _ = writeln!(out, "Unit Testing:  {}", path.display());
        let outcome = run_file(path, options);
        for note in &outcome.notes {
            let _ = writeln!(out, "  {note}");
        }
        if outcome.errors.is_empty() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            failed = true;
            let _ = writeln!(err, "  FAILED:");
            for e in &outcome.errors {
                let _ = writeln!(err, "{e}");
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(out);
    }
    i32::from(failed)
}

/// The result of one test file: failures in promtool's words, and notes (skipped cases).
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

pub fn run_file(path: &Path, options: &TestOptions) -> FileOutcome {
    let mut outcome = FileOutcome::default();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            outcome.errors.push(format!("{}: {e}", path.display()));
            return outcome;
        }
    };
    let test_file: TestFile = match serde_yaml::from_str(&text) {
        Ok(file) => file,
        Err(e) => {
            outcome.errors.push(e.to_string());
            return outcome;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for pattern in &test_file.rule_files {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                outcome.errors.push(e.to_string());
                return outcome;
            }
        };
        if matches.is_empty() {
            outcome.notes.push(format!("WARNING: no file match pattern {}", full.display()));
        }
        rule_files.extend(matches);
    }
    let eval_interval_ms =
        test_file.evaluation_interval.map_or(60_000, |d| d.get().as_millis() as i64).max(1);
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, name) in test_file.group_eval_order.iter().enumerate() {
        if order.insert(name, index).is_some() {
            outcome.errors.push(format!("group name repeated in evaluation order: {name}"));
            return outcome;
        }
    }
    let setup = Setup {
        rule_files: &rule_files,
        eval_interval_ms,
        order: &order,
        fuzzy: test_file.fuzzy_compare,
        ignore_unknown_fields: options.ignore_unknown_fields,
    };
    for group in &test_file.tests {
        if !options.run.is_empty() && !options.run.iter().any(|re| re.is_match(&group.name)) {
            continue;
        }
        let (errors, notes) = setup.test(group);
        outcome.errors.extend(errors);
        outcome.notes.extend(notes);
    }
    outcome
}

struct Setup<'a> {
    rule_files: &'a [PathBuf],
    eval_interval_ms: i64,
    order: &'a BTreeMap<&'a str, usize>,
    fuzzy: bool,
    ignore_unknown_fields: bool,
}

/// MemStorage shared between the engine (reads) and rule output (writes).
struct SharedStorage(RwLock<MemStorage>);

impl Queryable for SharedStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError> {
        self.0
            .read()
            .map_err(|_| QueryError::internal("storage lock poisoned"))?
            .select(matchers, hints)
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        self.0
            .read()
            .map_err(|_| QueryError::internal("storage lock poisoned"))?
            .series(matchers, start_ms, end_ms)
    }
}

impl Setup<'_> {
    fn test(&self, tg: &TestGroup) -> (Vec<String>, Vec<String>) {
        let mut notes = Vec::new();
        let interval_ms =
            tg.interval.map_or(self.eval_interval_ms, |d| d.get().as_millis() as i64).max(1);
        let mint = match start_timestamp(tg.start_timestamp.as_ref()) {
            Ok(t) => t,
            Err(e) => return (vec![e], notes),
        };
        let max_eval = tg
            .alert_rule_test
            .iter()
            .map(|a| a.eval_time.get().as_millis() as i64)
            .chain(tg.promql_expr_test.iter().map(|p| p.eval_time.get().as_millis() as i64))
            .max()
            .unwrap_or(0);
        // Like promtool's lazy loader, samples after the last evaluation tick are never loaded
        // (it matters for `@` modifiers that look ahead).
        let last_tick = mint + max_eval - max_eval % self.eval_interval_ms;
        let mut storage = MemStorage::new();
        for input in &tg.input_series {
            if input.values.contains("{{") {
                notes.push(format!(
                    "SKIPPED: input series {} (native histograms are not supported)",
                    input.series
                ));
                continue;
            }
            let labels = match parse_series(&input.series) {
                Ok(labels) => labels,
                Err(e) => return (vec![format!("    series {:?}: {e}", input.series)], notes),
            };
            let values = match parse_series_values(&input.values) {
                Ok(values) => values,
                Err(e) => return (vec![format!("    series {:?}: {e}", input.series)], notes),
            };
            let points = values
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| Point { t: mint + i as i64 * interval_ms, v }))
                .take_while(|p| p.t <= last_tick);
            storage.add(labels, points);
        }
        let storage = SharedStorage(RwLock::new(storage));
        let mut groups = match self.load_groups() {
            Ok(groups) => groups,
            Err(errors) => return (errors, notes),
        };
        // promtool sets the suite's subquery interval to the evaluation interval.
        let engine = Engine::new(EngineOptions {
            default_subquery_step_ms: self.eval_interval_ms,
            ..EngineOptions::default()
        });
        let context = TemplateContext {
            external_labels: Labels::from_pairs(
                tg.external_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            external_url: tg.external_url.clone(),
        };
        let test_name =
            if tg.name.is_empty() { String::new() } else { format!("    name: {},\n", tg.name) };
        let mut errors = Vec::new();
        for alert in &tg.alert_rule_test {
            if alert.alertname.is_empty() {
                let in_group = if tg.name.is_empty() {
                    String::new()
                } else {
                    format!(" (in TestGroup {})", tg.name)
                };
                return (
                    vec![format!(
                        "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                        alert.eval_time
                    )],
                    notes,
                );
            }
        }
        let mut alert_times: Vec<i64> =
            tg.alert_rule_test.iter().map(|a| a.eval_time.get().as_millis() as i64).collect();
        alert_times.sort_unstable();
        alert_times.dedup();
        let mut next_alert_time = 0;
        let query =
            |expr: &promql_parser::parser::Expr, t: i64| query_vector(&engine, &storage, expr, t);
        let append = |samples: Vec<(Labels, i64, f64)>| -> Result<(), String> {
            let mut guard = storage.0.write().map_err(|_| "storage lock poisoned".to_owned())?;
            for (labels, t, v) in samples {
                guard.add(labels, [Point { t, v }]);
            }
            Ok(())
        };
        let mut offset = 0;
        while offset <= max_eval {
            let ts = mint + offset;
            let template_fn = |text: &str| template_query(&engine, &storage, text, ts);
            let mut eval_errors = Vec::new();
            for group in &mut groups {
                group.eval(ts, ts, &query, Some(&template_fn), &context, &append, 0);
                for rule in &group.rules {
                    if let Some(e) = &rule.status().last_error {
                        eval_errors.push(format!(
                            "    rule: {}, time: {}, err: {e}",
                            rule.name(),
                            go_duration(offset as f64 / 1000.0)
                        ));
                    }
                }
            }
            if !eval_errors.is_empty() {
                errors.extend(eval_errors);
                return (errors, notes);
            }
            while next_alert_time < alert_times.len()
                && offset <= alert_times[next_alert_time]
                && alert_times[next_alert_time] < offset + self.eval_interval_ms
            {
                let t = alert_times[next_alert_time];
                for case in
                    tg.alert_rule_test.iter().filter(|a| a.eval_time.get().as_millis() as i64 == t)
                {
                    if let Some(diff) = check_alerts(&groups, case) {
                        errors.push(format!(
                            "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                            case.alertname, case.eval_time, diff.0, diff.1
                        ));
                    }
                }
                next_alert_time += 1;
            }
            offset += self.eval_interval_ms;
        }
        for case in &tg.promql_expr_test {
            if case.exp_samples.iter().any(|s| s.histogram.is_some()) {
                notes.push(format!(
                    "SKIPPED: expr {:?} at {} (native histograms are not supported)",
                    case.expr, case.eval_time
                ));
                continue;
            }
            if let Some(e) = self.check_expr(&engine, &storage, mint, case) {
                errors.push(format!("{test_name}{e}"));
            }
        }
        (errors, notes)
    }

    fn load_groups(&self) -> Result<Vec<Group>, Vec<String>> {
        let mut groups = Vec::new();
        let mut errors = Vec::new();
        for path in self.rule_files {
            match file::load_file(path, self.ignore_unknown_fields) {
                Ok(rule_file) => {
                    for spec in &rule_file.groups {
                        match Group::from_spec(
                            &path.display().to_string(),
                            spec,
                            self.eval_interval_ms,
                            false,
                        ) {
                            Ok(group) => groups.push(group),
                            Err(e) => errors.push(format!("{}: {e}", path.display())),
                        }
                    }
                }
                Err(file_errors) => errors.extend(file_errors.into_iter().map(|e| e.to_string())),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let rank = |g: &Group| self.order.get(g.name.as_str()).copied().unwrap_or(0);
        groups.sort_by_key(|g| rank(g));
        Ok(groups)
    }

    fn check_expr(
        &self,
        engine: &Engine,
        storage: &SharedStorage,
        mint: i64,
        case: &PromqlTest,
    ) -> Option<String> {
        let at = format!("    expr: {:?}, time: {}", case.expr, case.eval_time);
        let expr = match promql_parser::parser::parse(&case.expr) {
            Ok(expr) => expr,
            Err(e) => return Some(format!("{at}, err: {e}")),
        };
        let t = mint + case.eval_time.get().as_millis() as i64;
        let mut got: Vec<(Labels, f64)> = match query_vector(engine, storage, &expr, t) {
            Ok(samples) => samples.into_iter().map(|s| (s.labels, s.v)).collect(),
            Err(e) => return Some(format!("{at}, err: {e}")),
        };
        let mut expected = Vec::with_capacity(case.exp_samples.len());
        for sample in &case.exp_samples {
            match parse_series(&sample.labels) {
                Ok(labels) => expected.push((labels, sample.value)),
                Err(e) => return Some(format!("{at}, err: labels {:?}: {e}", sample.labels)),
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == expected.len()
            && got
                .iter()
                .zip(&expected)
                .all(|(g, e)| g.0 == e.0 && values_equal(g.1, e.1, self.fuzzy));
        if same {
            return None;
        }
        Some(format!(
            "{at},\n        exp: {}\n        got: {}",
            samples_string(&expected),
            samples_string(&got)
        ))
    }
}

/// The firing alerts of rules named `case.alertname`, compared with the expected ones; the
/// rendered (exp, got) lists when they differ.
fn check_alerts(groups: &[Group], case: &AlertTest) -> Option<(String, String)> {
    let mut got: Vec<(Labels, Labels)> = Vec::new();
    for group in groups {
        for rule in &group.rules {
            let Rule::Alerting(rule) = rule else { continue };
            if rule.name != case.alertname {
                continue;
            }
            for alert in rule.active.values().filter(|a| a.state == AlertState::Firing) {
                got.push((alert.labels.clone(), alert.annotations.clone()));
            }
        }
    }
    let mut expected: Vec<(Labels, Labels)> = case
        .exp_alerts
        .iter()
        .map(|a| {
            let mut labels: Vec<Label> =
                a.exp_labels.iter().map(|(k, v)| Label::new(k.clone(), v.clone())).collect();
            labels.push(Label::new("alertname", case.alertname.clone()));
            let annotations =
                a.exp_annotations.iter().map(|(k, v)| Label::new(k.clone(), v.clone())).collect();
            (Labels::from_unsorted(labels), Labels::from_unsorted(annotations))
        })
        .collect();
    got.sort();
    expected.sort();
    if got == expected {
        return None;
    }
    let indent = "            ";
    Some((
        indent_lines(&alerts_string(&expected), indent),
        indent_lines(&alerts_string(&got), indent),
    ))
}

#[cfg(test)]
mod tests {
    use super::input::parse_rfc3339;
    use super::report::go_float_upper_e;
    use super::*;

    #[test]
    fn parses_series_and_rfc3339() {
        let labels = parse_series(r#"up{job="a", instance="b"}"#).unwrap();
        assert_eq!(
            labels,
            Labels::from_pairs([("__name__", "up"), ("instance", "b"), ("job", "a")])
        );
        assert!(parse_series(r#"up{job="a""#).is_err());
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(1_704_067_200_000));
        assert_eq!(parse_rfc3339("2024-01-01T01:00:00+01:00"), Some(1_704_067_200_000));
    }

    #[test]
    fn fuzzy_compare_allows_a_few_ulps() {
        assert!(values_equal(2.9999999999999996, 3.0, true));
        assert!(values_equal(3.0000000000000004, 3.0, true));
        assert!(!values_equal(2.9999999999999987, 3.0, true));
        assert!(!values_equal(3.0000000000000013, 3.0, true));
        assert!(!values_equal(2.9999999999999996, 3.0, false));
    }

    #[test]
    fn formats_like_promtool() {
        assert_eq!(go_float_upper_e(1.0), "1E+00");
        assert_eq!(go_float_upper_e(2.5e-7), "2.5E-07");
        assert_eq!(
            samples_string(&[(Labels::from_pairs([("__name__", "x")]), 3.0)]),
            "{__name__=\"x\"} 3E+00"
        );
    }
}
