//! What the runner needs to know about a query: the selectors it reads (to apply the native
//! histogram skip rule), whether it may be re-run with `@` (Prometheus'
//! `AtModifierUnsafeFunctions`), and the `@` rewrite itself (`atModifierTestCases` in
//! `promql/promqltest/test.go`).

use std::time::{Duration, SystemTime};

use promql_parser::label::{Matcher, Matchers};
use promql_parser::parser::{AtModifier, Expr};

use crate::model::labels::{Label, Labels, METRIC_NAME};

/// The native-histogram-with-custom-buckets series `load_with_nhcb` derives from a classic
/// histogram series: the name without `_bucket`/`_count`/`_sum`, without `le`.
pub(super) fn nhcb_labels(labels: &Labels) -> Option<Labels> {
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

pub(super) fn visit_selectors(expr: &Expr, visit: &mut impl FnMut(Option<&str>, &Matchers)) {
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

pub(super) fn selector_matches(name: Option<&str>, matchers: &Matchers, labels: &Labels) -> bool {
    if name.is_some_and(|name| labels.metric_name() != Some(name)) {
        return false;
    }
    let all =
        |group: &[Matcher]| group.iter().all(|m| m.is_match(labels.get(&m.name).unwrap_or("")));
    let groups_match = matchers.or_matchers.iter().any(|group| all(group));
    (all(&matchers.matchers) && (name.is_some() || !matchers.matchers.is_empty())) || groups_match
}

/// `promql.AtModifierUnsafeFunctions`: results depend on the evaluation time itself.
pub(super) fn has_at_unsafe_function(expr: &Expr) -> bool {
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
pub(super) fn set_at(expr: &mut Expr, t_ms: i64) {
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
pub(super) fn uses_query_context(expr: &str) -> bool {
    ["start()", "end()", "range()", "step()"].iter().any(|f| {
        expr.match_indices(f).any(|(i, _)| {
            i == 0
                || !expr.as_bytes()[i - 1].is_ascii_alphanumeric() && expr.as_bytes()[i - 1] != b'_'
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn query_context_functions_are_detected() {
        assert!(uses_query_context("x + step()"));
        assert!(!uses_query_context("foo_step()"));
    }
}
