//! Binary operators: arithmetic, comparison (filtering or `bool`), and the set operators
//! `and`/`or`/`unless`, between scalars and vectors, with vector matching (`on`/`ignoring`,
//! `group_left`/`group_right`).
//!
//! Follows Prometheus 3.x `promql/engine.go` (`VectorBinop`, `VectorAnd`/`Or`/`Unless`,
//! `resultMetric`, `signatureFunc`, `vectorElemBinop`) for semantics and error texts:
//!
//! * The match signature of `ignoring(…)` (and of no modifier) never includes `__name__`; that
//!   of `on(…)` is exactly the listed labels.
//! * Arithmetic and `bool` comparisons flag the result to drop `__name__`; filtering comparisons
//!   keep the left sample (the vector's sample for scalar comparisons).
//! * One-to-one matching keeps only the `on` labels (or removes the `ignoring` ones); grouped
//!   matching copies the listed labels from the "one" side.
//!
//! Vectors are matched once per series pair, not per step: signatures are computed once per
//! series, and the "one" side is indexed per signature and step.

use std::collections::HashMap;

use promql_parser::label::Labels as ParserLabels;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::model::labels::{Label, Labels, METRIC_NAME};

use super::{Evaluator, VSeries, Val};
use crate::promql::value::{Point, QueryError, Steps};

/// The operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(token: &str) -> Result<Self, QueryError> {
        Ok(match token {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "%" => Self::Mod,
            "^" => Self::Pow,
            "atan2" => Self::Atan2,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            ">" => Self::Gt,
            "<" => Self::Lt,
            ">=" => Self::Ge,
            "<=" => Self::Le,
            "and" => Self::And,
            "or" => Self::Or,
            "unless" => Self::Unless,
            other => {
                return Err(QueryError::bad_data(format!("unknown binary operator {other:?}")))
            }
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::Ne | Self::Gt | Self::Lt | Self::Ge | Self::Le)
    }

    fn is_set(self) -> bool {
        matches!(self, Self::And | Self::Or | Self::Unless)
    }

    /// The value and whether to keep it: arithmetic always keeps; a comparison returns the left
    /// value and its outcome.
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Self::Add => (l + r, true),
            Self::Sub => (l - r, true),
            Self::Mul => (l * r, true),
            Self::Div => (l / r, true),
            Self::Mod => (l % r, true),
            Self::Pow => (l.powf(r), true),
            Self::Atan2 => (l.atan2(r), true),
            Self::Eq => (l, l == r),
            Self::Ne => (l, l != r),
            Self::Gt => (l, l > r),
            Self::Lt => (l, l < r),
            Self::Ge => (l, l >= r),
            Self::Le => (l, l <= r),
            Self::And | Self::Or | Self::Unless => (l, true),
        }
    }
}

/// How series are matched: `on(labels)` or `ignoring(labels)` (no modifier is `ignoring()`).
struct Matching<'e> {
    on: bool,
    names: Vec<&'e str>,
}

impl<'e> Matching<'e> {
    fn of(bin: &'e BinaryExpr) -> Self {
        let modifier = bin.modifier.as_ref().and_then(|m| m.matching.as_ref());
        match modifier {
            Some(LabelModifier::Include(labels)) => Self { on: true, names: sorted_names(labels) },
            Some(LabelModifier::Exclude(labels)) => Self { on: false, names: sorted_names(labels) },
            None => Self { on: false, names: Vec::new() },
        }
    }

    fn includes(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    /// The labels a series is matched by.
    fn match_labels(&self, labels: &Labels) -> Labels {
        let kept = labels.iter().filter(|l| {
            if self.on {
                self.includes(&l.name)
            } else {
                l.name != METRIC_NAME && !self.includes(&l.name)
            }
        });
        Labels::from_sorted_unchecked(kept.cloned().collect())
    }

    /// The signature as an exact byte key (`name \xff value \xff …`).
    fn signature(&self, labels: &Labels) -> Vec<u8> {
        let mut key = Vec::new();
        for l in labels.iter() {
            let matched = if self.on {
                self.includes(&l.name)
            } else {
                l.name != METRIC_NAME && !self.includes(&l.name)
            };
            if matched {
                key.extend_from_slice(l.name.as_bytes());
                key.push(0xff);
                key.extend_from_slice(l.value.as_bytes());
                key.push(0xff);
            }
        }
        key
    }
}

fn sorted_names(labels: &ParserLabels) -> Vec<&str> {
    let mut names: Vec<&str> = labels.labels.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names
}

impl Evaluator<'_> {
    pub(super) fn binary(&mut self, bin: &BinaryExpr, steps: Steps) -> Result<Val, QueryError> {
        let op = Op::parse(&bin.op.to_string())?;
        let return_bool = bin.return_bool();
        let lhs = self.eval(&bin.lhs, steps)?;
        let rhs = self.eval(&bin.rhs, steps)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let values = l
                    .into_iter()
                    .zip(r)
                    .map(|(a, b)| {
                        let (v, keep) = op.apply(a, b);
                        if op.is_comparison() {
                            f64::from(u8::from(keep))
                        } else {
                            v
                        }
                    })
                    .collect();
                Ok(Val::Scalar(values))
            }
            (Val::Vector(v), Val::Scalar(s)) => {
                Ok(Val::Vector(vector_scalar(op, v, &s, false, return_bool, steps)))
            }
            (Val::Scalar(s), Val::Vector(v)) => {
                Ok(Val::Vector(vector_scalar(op, v, &s, true, return_bool, steps)))
            }
            (Val::Vector(l), Val::Vector(r)) => {
                let matching = Matching::of(bin);
                if op.is_set() {
                    return Ok(Val::Vector(set_op(op, l, r, &matching, steps)));
                }
                let card = bin
                    .modifier
                    .as_ref()
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                let fill = bin
                    .modifier
                    .as_ref()
                    .map(|m| Fill { many: m.fill_values.lhs, one: m.fill_values.rhs })
                    .unwrap_or_default();
                self.check_deadline()?;
                Ok(Val::Vector(vector_vector(
                    op,
                    l,
                    r,
                    &matching,
                    &card,
                    return_bool,
                    fill,
                    steps,
                )?))
            }
            _ => Err(QueryError::bad_data(
                "binary expression must contain only scalar and instant vector types",
            )),
        }
    }
}

fn step_index(steps: Steps, t: i64) -> usize {
    ((t - steps.start) / steps.step) as usize
}

/// `vector op scalar` (or `scalar op vector` when `swapped`).
fn vector_scalar(
    op: Op,
    mut series: Vec<VSeries>,
    scalar: &[f64],
    swapped: bool,
    return_bool: bool,
    steps: Steps,
) -> Vec<VSeries> {
    for s in &mut series {
        s.drop_name = s.drop_name || return_bool || !op.is_comparison();
        s.points.retain_mut(|p| {
            let other = scalar[step_index(steps, p.t)];
            let (l, r) = if swapped { (other, p.v) } else { (p.v, other) };
            let (value, keep) = op.apply(l, r);
            if !op.is_comparison() {
                p.v = value;
                return true;
            }
            if return_bool {
                p.v = f64::from(u8::from(keep));
                return true;
            }
            // A filtering comparison keeps the vector's own value, whichever side it is on.
            keep
        });
    }
    series.retain(|s| !s.points.is_empty());
    series
}

/// For every signature, the steps at which some series with it has a value.
fn presence(series: &[VSeries], sigs: &[Vec<u8>], steps: Steps) -> HashMap<Vec<u8>, Vec<bool>> {
    let mut present: HashMap<Vec<u8>, Vec<bool>> = HashMap::new();
    for (s, sig) in series.iter().zip(sigs) {
        let steps_present = present.entry(sig.clone()).or_insert_with(|| vec![false; steps.len()]);
        for p in &s.points {
            steps_present[step_index(steps, p.t)] = true;
        }
    }
    present
}

/// `and`, `or`, `unless`, step by step.
fn set_op(
    op: Op,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    matching: &Matching<'_>,
    steps: Steps,
) -> Vec<VSeries> {
    let lhs_sigs: Vec<Vec<u8>> = lhs.iter().map(|s| matching.signature(&s.labels)).collect();
    let rhs_sigs: Vec<Vec<u8>> = rhs.iter().map(|s| matching.signature(&s.labels)).collect();
    let filter = |series: Vec<VSeries>,
                  sigs: &[Vec<u8>],
                  other: &HashMap<Vec<u8>, Vec<bool>>,
                  keep_if_present: bool| {
        let mut out: Vec<VSeries> = Vec::with_capacity(series.len());
        for (mut s, sig) in series.into_iter().zip(sigs) {
            let other_steps = other.get(sig);
            s.points.retain(|p| {
                let present = other_steps.is_some_and(|st| st[step_index(steps, p.t)]);
                present == keep_if_present
            });
            if !s.points.is_empty() {
                out.push(s);
            }
        }
        out
    };
    match op {
        Op::And => filter(lhs, &lhs_sigs, &presence(&rhs, &rhs_sigs, steps), true),
        Op::Unless => filter(lhs, &lhs_sigs, &presence(&rhs, &rhs_sigs, steps), false),
        _ => {
            let left_present = presence(&lhs, &lhs_sigs, steps);
            let mut out = lhs;
            out.extend(filter(rhs, &rhs_sigs, &left_present, false));
            out
        }
    }
}

/// Prometheus' text form of a label set for error messages: `{a="1", b="2"}`.
fn labels_text(labels: &Labels) -> String {
    let parts: Vec<String> = labels.iter().map(|l| format!("{}={:?}", l.name, l.value)).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Fill values of `fill`/`fill_left`/`fill_right`: what a missing side counts as.
#[derive(Clone, Copy, Debug, Default)]
struct Fill {
    /// `fill_left`: the value of a missing "many" side (a "one" sample nothing matched).
    many: Option<f64>,
    /// `fill_right`: the value of a missing "one" side (a "many" sample without a match).
    one: Option<f64>,
}

/// The output series being built, found by (many, one) pair and by labels.
struct Output {
    series: Vec<VSeries>,
    by_pair: HashMap<(usize, usize), usize>,
    by_labels: HashMap<Labels, usize>,
    /// The last pair and its series: consecutive points of a series usually share it.
    last: Option<((usize, usize), usize)>,
}

impl Output {
    /// Appends a point to the series of `key`, creating it with `labels()` on first use; a
    /// second point at the same step is Prometheus' grouping error.
    fn push(
        &mut self,
        key: (usize, usize),
        labels: impl FnOnce() -> Labels,
        drop_name: bool,
        point: Point,
    ) -> Result<(), QueryError> {
        let cached = self.last.filter(|(last_key, _)| *last_key == key).map(|(_, index)| index);
        let index = match cached.or_else(|| self.by_pair.get(&key).copied()) {
            Some(index) => index,
            None => {
                let labels = labels();
                let series = &mut self.series;
                let index = *self.by_labels.entry(labels.clone()).or_insert_with(|| {
                    series.push(VSeries { labels, points: Vec::new(), drop_name });
                    series.len() - 1
                });
                self.by_pair.insert(key, index);
                index
            }
        };
        self.last = Some((key, index));
        let target = &mut self.series[index];
        if target.points.last().is_some_and(|last| last.t >= point.t) {
            if target.points.iter().any(|q| q.t == point.t) {
                return Err(QueryError::execution(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            let at = target.points.partition_point(|q| q.t < point.t);
            target.points.insert(at, point);
        } else {
            target.points.push(point);
        }
        Ok(())
    }
}

/// Arithmetic and comparison between two vectors.
#[allow(clippy::too_many_arguments)]
fn vector_vector(
    op: Op,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    matching: &Matching<'_>,
    card: &VectorMatchCardinality,
    return_bool: bool,
    fill: Fill,
    steps: Steps,
) -> Result<Vec<VSeries>, QueryError> {
    const NO_SERIES: usize = usize::MAX;
    let n = steps.len();
    let (many, one, swapped) = match card {
        VectorMatchCardinality::OneToMany(_) => (rhs, lhs, true),
        _ => (lhs, rhs, false),
    };
    let include: Vec<&str> = match card {
        VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => {
            l.labels.iter().map(String::as_str).collect()
        }
        _ => Vec::new(),
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let comparison = op.is_comparison();
    // The value of a result, or None if a filtering comparison drops it.
    let compute = |many_value: f64, one_value: f64| -> Option<f64> {
        let (l, r) = if swapped { (one_value, many_value) } else { (many_value, one_value) };
        let (value, keep) = op.apply(l, r);
        if return_bool {
            Some(f64::from(u8::from(keep)))
        } else {
            keep.then_some(value)
        }
    };

    // The "one" side by signature group: for each step, which series has a value, and its value.
    let mut group_of_sig: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut slots: Vec<Vec<Option<(usize, f64)>>> = Vec::new();
    for (i, s) in one.iter().enumerate() {
        let sig = matching.signature(&s.labels);
        let group = *group_of_sig.entry(sig).or_insert_with(|| {
            slots.push(vec![None; n]);
            slots.len() - 1
        });
        for p in &s.points {
            let slot = &mut slots[group][step_index(steps, p.t)];
            if let Some((other, _)) = *slot {
                let side = if swapped { "left" } else { "right" };
                return Err(QueryError::execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels_text(&matching.match_labels(&s.labels)),
                    labels_text(&one[other].labels),
                    labels_text(&s.labels),
                )));
            }
            *slot = Some((i, p.v));
        }
    }

    let mut out = Output {
        series: Vec::new(),
        by_pair: HashMap::new(),
        by_labels: HashMap::new(),
        last: None,
    };
    // Per group, the steps at which some "many" sample matched it.
    let mut matched: Vec<Vec<bool>> = vec![Vec::new(); slots.len()];
    let no_labels = Labels::default();
    for (mi, m) in many.iter().enumerate() {
        let group = group_of_sig.get(&matching.signature(&m.labels)).copied();
        let drop_name = m.drop_name || return_bool || !comparison;
        for p in &m.points {
            let step = step_index(steps, p.t);
            let matched_slot = group.and_then(|g| slots[g][step].map(|slot| (g, slot)));
            let Some((group, (oi, one_value))) = matched_slot else {
                // No match: `fill_right` stands in for the missing "one" sample.
                let Some(fill_one) = fill.one else { continue };
                let Some(value) = compute(p.v, fill_one) else { continue };
                let labels = || {
                    result_labels(
                        &m.labels,
                        &no_labels,
                        matching,
                        &include,
                        one_to_one,
                        return_bool,
                    )
                };
                out.push((mi, NO_SERIES), labels, drop_name, Point { t: p.t, v: value })?;
                continue;
            };
            let seen = &mut matched[group];
            if seen.is_empty() {
                seen.resize(n, false);
            }
            // Checked before comparisons filter: Prometheus reports the ambiguity even when
            // the comparison would drop every sample.
            if one_to_one && seen[step] {
                return Err(QueryError::execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            seen[step] = true;
            let Some(value) = compute(p.v, one_value) else { continue };
            let labels = || {
                result_labels(
                    &m.labels,
                    &one[oi].labels,
                    matching,
                    &include,
                    one_to_one,
                    return_bool,
                )
            };
            out.push((mi, oi), labels, drop_name, Point { t: p.t, v: value })?;
        }
    }

    // `fill_left`: "one" samples no "many" sample matched, against a stand-in with the match
    // group's labels.
    if let Some(fill_many) = fill.many {
        for (group, group_slots) in slots.iter().enumerate() {
            for (step, slot) in group_slots.iter().enumerate() {
                let Some((oi, one_value)) = *slot else { continue };
                if matched[group].get(step).copied().unwrap_or(false) {
                    continue;
                }
                let Some(value) = compute(fill_many, one_value) else { continue };
                let o = &one[oi];
                let labels = || {
                    let stand_in = matching.match_labels(&o.labels);
                    result_labels(&stand_in, &o.labels, matching, &include, one_to_one, return_bool)
                };
                let drop_name = return_bool || !comparison;
                let point = Point { t: steps.time(step), v: value };
                out.push((NO_SERIES, oi), labels, drop_name, point)?;
            }
        }
    }
    Ok(out.series)
}

/// The labels of a result sample (Prometheus' `resultMetric`, with delayed name removal).
fn result_labels(
    many: &Labels,
    one: &Labels,
    matching: &Matching<'_>,
    include: &[&str],
    one_to_one: bool,
    return_bool: bool,
) -> Labels {
    let mut labels: Vec<Label> = many
        .iter()
        .filter(|l| {
            if return_bool && l.name == METRIC_NAME {
                return false;
            }
            if !one_to_one {
                return true;
            }
            matching.includes(&l.name) == matching.on
        })
        .cloned()
        .collect();
    if !include.is_empty() {
        for name in include {
            labels.retain(|l| l.name != *name);
            if let Some(v) = one.get(name) {
                labels.push(Label::new(*name, v));
            }
        }
        return Labels::from_unsorted(labels);
    }
    Labels::from_sorted_unchecked(labels)
}
