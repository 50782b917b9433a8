//! Aggregation operators: `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`, `stdvar`,
//! `quantile`, `count_values`, `topk`, `bottomk`, `limitk`, `limit_ratio`, with `by`/`without`.
//!
//! Follows Prometheus 3.x `promql/engine.go` (`aggregation`, `aggregationK`,
//! `aggregationCountValues`) and `promql/quantile.go` for semantics and texts:
//!
//! * `sum` and `avg` use Kahan–Neumaier compensated summation; `avg` switches to an incremental
//!   mean once the sum would overflow, so results match Prometheus to the last bits.
//! * `stddev`/`stdvar` use Welford's online algorithm.
//! * `without` always removes `__name__`; `by(__name__)` keeps it (and the output is flagged to
//!   drop it if any input was).
//! * `topk`/`bottomk`/`limitk`/`limit_ratio` return input samples with their labels; NaN is the
//!   least preferred value for both `topk` and `bottomk`; ties keep input order.
//!
//! Every series is assigned to its group once (its grouping labels are computed once, not per
//! step); groups are then folded one at a time with one accumulator per step.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::model::labels::{Label, Labels, METRIC_NAME};

use super::{annotation_position, Evaluator, VSeries, Val};
use crate::promql::functions::{kahan_inc, quantile};
use crate::promql::value::{format_value, Point, QueryError, Steps};

/// The running state of one group at one step.
#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    /// Samples folded in (a float, as Prometheus divides by it).
    count: f64,
    /// Sum, min, max or Welford's M2, by operator.
    value: f64,
    /// Kahan compensation.
    compensation: f64,
    /// Running mean (incremental `avg`, Welford).
    mean: f64,
    incremental: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
}

impl Fold {
    fn add(self, acc: &mut Acc, v: f64) {
        if acc.count == 0.0 {
            acc.count = 1.0;
            match self {
                Self::Sum | Self::Avg => acc.value = v,
                Self::Min | Self::Max => acc.value = v,
                Self::Stddev | Self::Stdvar => {
                    acc.mean = v;
                    // Prometheus starts the sum of squares at NaN for a non-finite first value.
                    acc.value = if v.is_finite() { 0.0 } else { f64::NAN };
                }
                Self::Count | Self::Group => {}
            }
            return;
        }
        acc.count += 1.0;
        match self {
            Self::Sum => (acc.value, acc.compensation) = kahan_inc(v, acc.value, acc.compensation),
            Self::Avg => add_to_mean(acc, v),
            Self::Min => {
                if acc.value > v || acc.value.is_nan() {
                    acc.value = v;
                }
            }
            Self::Max => {
                if acc.value < v || acc.value.is_nan() {
                    acc.value = v;
                }
            }
            Self::Stddev | Self::Stdvar => {
                let delta = v - acc.mean;
                acc.mean += delta / acc.count;
                acc.value += delta * (v - acc.mean);
            }
            Self::Count | Self::Group => {}
        }
    }

    fn result(self, acc: &Acc) -> f64 {
        match self {
            Self::Sum => acc.value + acc.compensation,
            Self::Avg if acc.incremental => acc.mean + acc.compensation,
            Self::Avg => (acc.value + acc.compensation) / acc.count,
            Self::Count => acc.count,
            Self::Min | Self::Max => acc.value,
            Self::Group => 1.0,
            Self::Stdvar => acc.value / acc.count,
            Self::Stddev => (acc.value / acc.count).sqrt(),
        }
    }
}

/// `avg`'s step (`acc.count` already counts `v`): a compensated sum while it stays finite, an
/// incremental mean after.
fn add_to_mean(acc: &mut Acc, v: f64) {
    if !acc.incremental {
        let (sum, c) = kahan_inc(v, acc.value, acc.compensation);
        if !sum.is_infinite() {
            acc.value = sum;
            acc.compensation = c;
            return;
        }
        // The sum would overflow: continue with the mean of what was summed so far.
        acc.incremental = true;
        acc.mean = acc.value / (acc.count - 1.0);
        acc.compensation /= acc.count - 1.0;
    }
    if acc.mean.is_infinite() {
        if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
            return;
        }
        if !v.is_infinite() && !v.is_nan() {
            return;
        }
    }
    let current = acc.mean + acc.compensation;
    (acc.mean, acc.compensation) =
        kahan_inc(v / acc.count - current / acc.count, acc.mean, acc.compensation);
}

/// The group a series belongs to.
fn grouping_labels(labels: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(by)) => Labels::from_sorted_unchecked(
            labels.iter().filter(|l| by.labels.contains(&l.name)).cloned().collect(),
        ),
        Some(LabelModifier::Exclude(without)) => Labels::from_sorted_unchecked(
            labels
                .iter()
                .filter(|l| l.name != METRIC_NAME && !without.labels.contains(&l.name))
                .cloned()
                .collect(),
        ),
    }
}

/// Input series grouped: each group's labels and members (indexes into the input, in input
/// order).
struct Groups {
    labels: Vec<Labels>,
    members: Vec<Vec<usize>>,
}

fn group(series: &[VSeries], modifier: &Option<LabelModifier>) -> Groups {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups = Groups { labels: Vec::new(), members: Vec::new() };
    for (i, s) in series.iter().enumerate() {
        let key = grouping_labels(&s.labels, modifier);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.labels.push(key);
            groups.members.push(Vec::new());
            groups.labels.len() - 1
        });
        groups.members[g].push(i);
    }
    groups
}

fn step_index(steps: Steps, t: i64) -> usize {
    ((t - steps.start) / steps.step) as usize
}

impl Evaluator<'_> {
    pub(super) fn aggregate(
        &mut self,
        agg: &AggregateExpr,
        steps: Steps,
    ) -> Result<Val, QueryError> {
        let op = agg.op.to_string();
        let n = steps.len();
        let mut param: Vec<f64> = Vec::new();
        let mut label_param = String::new();
        match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" | "quantile" => {
                let expr = agg.param.as_ref().ok_or_else(|| {
                    QueryError::bad_data(format!("no parameter for aggregation {op}"))
                })?;
                param = self.eval_scalar(expr, steps)?;
            }
            "count_values" => {
                let expr = agg.param.as_ref().ok_or_else(|| {
                    QueryError::bad_data("no parameter for aggregation count_values")
                })?;
                match self.eval(expr, steps)? {
                    Val::String(s) => label_param = s,
                    _ => {
                        return Err(QueryError::bad_data("count_values expects a string parameter"))
                    }
                }
                if label_param.is_empty() {
                    return Err(QueryError::execution(format!(
                        "invalid label name {label_param:?}"
                    )));
                }
            }
            _ => {}
        }
        match op.as_str() {
            "topk" | "bottomk" | "limitk" => {
                for &k in &param {
                    if k.is_nan() {
                        return Err(QueryError::execution("Parameter value is NaN"));
                    }
                    if k <= i64::MIN as f64 || k >= i64::MAX as f64 {
                        return Err(QueryError::execution(format!(
                            "Scalar value {} overflows int64",
                            format_value(k)
                        )));
                    }
                }
            }
            "limit_ratio" => {
                for r in &mut param {
                    if r.is_nan() {
                        return Err(QueryError::execution("Ratio value is NaN"));
                    }
                    if *r < -1.0 || *r > 1.0 {
                        let capped = r.clamp(-1.0, 1.0);
                        self.annotations.warn(format!(
                            "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                            format_value(*r),
                            format_value(capped)
                        ));
                        *r = capped;
                    }
                }
            }
            "quantile" => {
                for &q in &param {
                    if q.is_nan() || !(0.0..=1.0).contains(&q) {
                        let position = agg
                            .param
                            .as_deref()
                            .map(|p| annotation_position(&self.query_text, p))
                            .unwrap_or_default();
                        self.annotations.warn(format!(
                            "PromQL warning: quantile value should be between 0 and 1, got {}{position}",
                            format_value(q)
                        ));
                    }
                }
            }
            _ => {}
        }

        let input = match self.eval(&agg.expr, steps)? {
            Val::Vector(series) => series,
            _ => return Err(QueryError::bad_data("aggregation expects an instant vector")),
        };
        let groups = group(&input, &agg.modifier);
        let output = match op.as_str() {
            "sum" => self.fold(Fold::Sum, &input, &groups, steps)?,
            "avg" => self.fold(Fold::Avg, &input, &groups, steps)?,
            "count" => self.fold(Fold::Count, &input, &groups, steps)?,
            "min" => self.fold(Fold::Min, &input, &groups, steps)?,
            "max" => self.fold(Fold::Max, &input, &groups, steps)?,
            "group" => self.fold(Fold::Group, &input, &groups, steps)?,
            "stddev" => self.fold(Fold::Stddev, &input, &groups, steps)?,
            "stdvar" => self.fold(Fold::Stdvar, &input, &groups, steps)?,
            "quantile" => self.quantile_groups(&param, &input, &groups, steps)?,
            "count_values" => count_values(&label_param, &input, &groups, steps),
            "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                self.select_k(&op, &param, &input, &groups, steps)?
            }
            other => {
                return Err(QueryError::bad_data(format!("unknown aggregation operator {other:?}")))
            }
        };
        debug_assert!(output.iter().all(|s| s.points.len() <= n));
        Ok(Val::Vector(output))
    }

    fn fold(
        &self,
        fold: Fold,
        input: &[VSeries],
        groups: &Groups,
        steps: Steps,
    ) -> Result<Vec<VSeries>, QueryError> {
        let mut accs = vec![Acc::default(); steps.len()];
        let mut out = Vec::with_capacity(groups.labels.len());
        for (labels, members) in groups.labels.iter().zip(&groups.members) {
            self.check_deadline()?;
            accs.iter_mut().for_each(|a| *a = Acc::default());
            let mut drop_name = false;
            for &m in members {
                drop_name |= input[m].drop_name;
                for p in &input[m].points {
                    fold.add(&mut accs[step_index(steps, p.t)], p.v);
                }
            }
            let points: Vec<Point> = accs
                .iter()
                .enumerate()
                .filter(|(_, a)| a.count > 0.0)
                .map(|(i, a)| Point { t: steps.time(i), v: fold.result(a) })
                .collect();
            if !points.is_empty() {
                out.push(VSeries { labels: labels.clone(), points, drop_name });
            }
        }
        Ok(out)
    }

    fn quantile_groups(
        &self,
        q: &[f64],
        input: &[VSeries],
        groups: &Groups,
        steps: Steps,
    ) -> Result<Vec<VSeries>, QueryError> {
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
        let mut out = Vec::with_capacity(groups.labels.len());
        for (labels, members) in groups.labels.iter().zip(&groups.members) {
            self.check_deadline()?;
            values.iter_mut().for_each(Vec::clear);
            let mut drop_name = false;
            for &m in members {
                drop_name |= input[m].drop_name;
                for p in &input[m].points {
                    values[step_index(steps, p.t)].push(p.v);
                }
            }
            let points: Vec<Point> = values
                .iter_mut()
                .enumerate()
                .filter(|(_, v)| !v.is_empty())
                .map(|(i, v)| Point { t: steps.time(i), v: quantile(q[i], v) })
                .collect();
            if !points.is_empty() {
                out.push(VSeries { labels: labels.clone(), points, drop_name });
            }
        }
        Ok(out)
    }

    /// `topk`, `bottomk`, `limitk`, `limit_ratio`: the chosen input samples at each step.
    fn select_k(
        &self,
        op: &str,
        param: &[f64],
        input: &[VSeries],
        groups: &Groups,
        steps: Steps,
    ) -> Result<Vec<VSeries>, QueryError> {
        let n = steps.len();
        // limit_ratio's deterministic sample offset of each series in [0, 1).
        let offsets: Vec<f64> = if op == "limit_ratio" {
            input.iter().map(|s| sample_offset(&s.labels)).collect()
        } else {
            Vec::new()
        };
        let mut out: Vec<VSeries> = Vec::new();
        for members in &groups.members {
            self.check_deadline()?;
            // Per member: its output index, and its cursor into its points.
            let mut out_index: Vec<Option<usize>> = vec![None; members.len()];
            let mut cursor: Vec<usize> = vec![0; members.len()];
            let mut candidates: Vec<(usize, f64)> = Vec::with_capacity(members.len());
            for (i, &p) in param.iter().enumerate().take(n) {
                let t = steps.time(i);
                candidates.clear();
                for (slot, &m) in members.iter().enumerate() {
                    let points = &input[m].points;
                    if let Some(point) = points.get(cursor[slot]).filter(|q| q.t == t) {
                        candidates.push((slot, point.v));
                        cursor[slot] += 1;
                    }
                }
                let chosen: Vec<(usize, f64)> = match op {
                    "topk" | "bottomk" => {
                        let k = (p as i64).clamp(0, candidates.len() as i64) as usize;
                        if k == 0 {
                            continue;
                        }
                        let top = op == "topk";
                        candidates.sort_by(|a, b| order_for_k(a.1, b.1, top));
                        candidates[..k].to_vec()
                    }
                    "limitk" => {
                        let k = (p as i64).clamp(0, candidates.len() as i64) as usize;
                        candidates[..k].to_vec()
                    }
                    _ => candidates
                        .iter()
                        .copied()
                        .filter(|&(slot, _)| {
                            let offset = offsets[members[slot]];
                            if p >= 0.0 {
                                offset < p
                            } else {
                                offset >= 1.0 + p
                            }
                        })
                        .collect(),
                };
                for (slot, v) in chosen {
                    let index = *out_index[slot].get_or_insert_with(|| {
                        let source = &input[members[slot]];
                        out.push(VSeries {
                            labels: source.labels.clone(),
                            points: Vec::new(),
                            drop_name: source.drop_name,
                        });
                        out.len() - 1
                    });
                    out[index].points.push(Point { t, v });
                }
            }
        }
        Ok(out)
    }
}

/// `topk` wants the largest first, `bottomk` the smallest first; NaN always last.
fn order_for_k(a: f64, b: f64, top: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let ord = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if top {
                ord.reverse()
            } else {
                ord
            }
        }
    }
}

/// A series' position in [0, 1) for `limit_ratio` (a hash of its labels, so the choice is the
/// same at every step and for complementary ratios).
fn sample_offset(labels: &Labels) -> f64 {
    let mut bytes = Vec::new();
    for l in labels.iter() {
        bytes.extend_from_slice(l.name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(l.value.as_bytes());
        bytes.push(0xff);
    }
    let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
    (hash % (1 << 53)) as f64 / (1u64 << 53) as f64
}

/// `count_values("label", v)`: per group and step, how many samples have each value.
fn count_values(label: &str, input: &[VSeries], groups: &Groups, steps: Steps) -> Vec<VSeries> {
    let mut out = Vec::new();
    for (labels, members) in groups.labels.iter().zip(&groups.members) {
        // Value text → count per step, in first-seen order.
        let mut counts: Vec<(String, Vec<u32>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for &m in members {
            for p in &input[m].points {
                let text = format_value(p.v);
                let i = *index.entry(text.clone()).or_insert_with(|| {
                    counts.push((text, vec![0; steps.len()]));
                    counts.len() - 1
                });
                counts[i].1[step_index(steps, p.t)] += 1;
            }
        }
        for (text, per_step) in counts {
            let mut pairs: Vec<Label> =
                labels.iter().filter(|l| l.name != label).cloned().collect();
            pairs.push(Label::new(label, text));
            let points = per_step
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| Point { t: steps.time(i), v: f64::from(c) })
                .collect();
            out.push(VSeries { labels: Labels::from_unsorted(pairs), points, drop_name: false });
        }
    }
    out
}
