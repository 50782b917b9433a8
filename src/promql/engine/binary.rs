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
                self.check_deadline()?;
                Ok(Val::Vector(vector_vector(op, l, r, &matching, &card, return_bool, steps)?))
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

/// Arithmetic and comparison between two vectors.
fn vector_vector(
    op: Op,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    matching: &Matching<'_>,
    card: &VectorMatchCardinality,
    return_bool: bool,
    steps: Steps,
) -> Result<Vec<VSeries>, QueryError> {
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

    // The "one" side per signature: for each step, which series has a value and the value.
    let mut one_index: HashMap<Vec<u8>, Vec<Option<(u32, f64)>>> = HashMap::new();
    for (i, s) in one.iter().enumerate() {
        let sig = matching.signature(&s.labels);
        let slots = one_index.entry(sig).or_insert_with(|| vec![None; n]);
        for p in &s.points {
            let slot = &mut slots[step_index(steps, p.t)];
            if let Some((other, _)) = *slot {
                let side = if swapped { "left" } else { "right" };
                return Err(QueryError::execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels_text(&matching.match_labels(&s.labels)),
                    labels_text(&one[other as usize].labels),
                    labels_text(&s.labels),
                )));
            }
            *slot = Some((i as u32, p.v));
        }
    }

    let mut out: Vec<VSeries> = Vec::new();
    // Output series by (many, one) pair, and by result labels.
    let mut by_pair: HashMap<(usize, u32), usize> = HashMap::new();
    let mut by_labels: HashMap<Labels, usize> = HashMap::new();
    // One-to-one: the steps at which a signature was already matched.
    let mut matched: HashMap<&[u8], Vec<bool>> = HashMap::new();
    let many_sigs: Vec<Vec<u8>> = many.iter().map(|s| matching.signature(&s.labels)).collect();
    for (mi, (m, sig)) in many.iter().zip(&many_sigs).enumerate() {
        let Some(slots) = one_index.get(sig) else {
            continue;
        };
        for p in &m.points {
            let step = step_index(steps, p.t);
            let Some((oi, one_value)) = slots[step] else {
                continue;
            };
            // Checked before comparisons filter: Prometheus reports the ambiguity even when
            // the comparison would drop every sample.
            if one_to_one {
                let seen = matched.entry(sig.as_slice()).or_insert_with(|| vec![false; n]);
                if seen[step] {
                    return Err(QueryError::execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                seen[step] = true;
            }
            let (l, r) = if swapped { (one_value, p.v) } else { (p.v, one_value) };
            let (mut value, keep) = op.apply(l, r);
            if return_bool {
                value = f64::from(u8::from(keep));
            } else if !keep {
                continue;
            }
            let index = match by_pair.get(&(mi, oi)) {
                Some(&index) => index,
                None => {
                    let labels = result_labels(
                        &m.labels,
                        &one[oi as usize].labels,
                        matching,
                        &include,
                        one_to_one,
                        return_bool,
                    );
                    let index = *by_labels.entry(labels.clone()).or_insert_with(|| {
                        out.push(VSeries {
                            labels,
                            points: Vec::new(),
                            drop_name: m.drop_name || return_bool || !op.is_comparison(),
                        });
                        out.len() - 1
                    });
                    by_pair.insert((mi, oi), index);
                    index
                }
            };
            let target = &mut out[index];
            if target.points.last().is_some_and(|last| last.t >= p.t) {
                if target.points.iter().any(|q| q.t == p.t) {
                    return Err(QueryError::execution(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
                let at = target.points.partition_point(|q| q.t < p.t);
                target.points.insert(at, Point { t: p.t, v: value });
            } else {
                target.points.push(Point { t: p.t, v: value });
            }
        }
    }
    Ok(out)
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
