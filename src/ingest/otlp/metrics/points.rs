//! Data points → samples, native histograms and exemplars, per OTLP metric type.
//!
//! Semantics follow Prometheus 2.53.3 `storage/remote/otlptranslator/prometheusremotewrite/`
//! `number_data_points.go` (gauges, sums), `helper.go` (`addHistogramDataPoints`,
//! `addSummaryDataPoints`, `getPromExemplars`, `addExemplars`) and `histograms.go`; see the
//! parent module for the table and the deliberate differences.
//!
//! Invariants: a point flagged "no recorded value" yields stale markers in every series it
//! produces; `le` and `quantile` values are Go's `strconv.FormatFloat(v, 'f', -1, 64)`
//! (shortest round-trip decimal, `+Inf`/`-Inf`/`NaN`).

use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, number_data_point, DataPointFlags, Exemplar as OtlpExemplar,
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};

use super::attributes::{value_as_string, LabelMap};
use super::names::label_name;
use super::{exponential, nanos_to_ms, Builder, MetricContext};
use crate::model::metrics::{Exemplar, Sample, STALE_NAN_BITS};
use crate::model::{Label, Labels, METRIC_NAME};

/// OpenMetrics' limit on the runes of all exemplar label names and values together.
const MAX_EXEMPLAR_RUNES: usize = 128;

fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

fn stale_or(flags: u32, value: f64) -> f64 {
    if no_recorded_value(flags) {
        f64::from_bits(STALE_NAN_BITS)
    } else {
        value
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(super) fn format_go_float(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

fn created_ms(start_time_unix_nano: u64) -> i64 {
    nanos_to_ms(start_time_unix_nano).unwrap_or(0)
}

impl Builder<'_> {
    fn base(
        &self,
        ctx: &MetricContext<'_>,
        attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    ) -> LabelMap {
        ctx.resource.base_labels(attributes, self.config.translation_strategy)
    }

    /// `base` + `__name__` (+ one extra label, renamed like an attribute key): a series index.
    fn series_for(
        &mut self,
        ctx: &MetricContext<'_>,
        base: &LabelMap,
        name: String,
        extra: Option<(&str, String)>,
    ) -> usize {
        let mut labels = base.clone();
        if let Some((key, value)) = extra {
            labels.insert(label_name(key, self.config.translation_strategy), value);
        }
        labels.insert(METRIC_NAME.to_owned(), name);
        self.series_index(labels, Some(&ctx.metadata))
    }

    fn push_sample(&mut self, index: usize, timestamp_ms: i64, value: f64) {
        self.series[index].samples.push(Sample { timestamp_ms, value });
    }

    /// Gauges and sums (`sum` = `Some(is_monotonic)`): one sample per point; sums also carry the
    /// point's exemplars and, when monotonic, its start time.
    pub(super) fn add_number_points(
        &mut self,
        ctx: &MetricContext<'_>,
        points: &[NumberDataPoint],
        sum: Option<bool>,
    ) {
        for point in points {
            let base = self.base(ctx, &point.attributes);
            let index = self.series_for(ctx, &base, ctx.name.clone(), None);
            let value = match point.value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                Some(number_data_point::Value::AsInt(v)) => v as f64,
                None => 0.0,
            };
            let timestamp_ms = self.point_ms(point.time_unix_nano);
            self.push_sample(index, timestamp_ms, stale_or(point.flags, value));
            if sum.is_some() {
                let exemplars =
                    convert_exemplars(&point.exemplars, self.config.translation_strategy);
                self.series[index].exemplars.extend(exemplars);
            }
            if sum == Some(true) && point.start_time_unix_nano != 0 {
                self.series[index].created_timestamp_ms = created_ms(point.start_time_unix_nano);
            }
        }
    }

    /// Classic histograms: `_sum` (when set), `_count`, cumulated `_bucket{le}` and `+Inf`.
    pub(super) fn add_histogram_points(
        &mut self,
        ctx: &MetricContext<'_>,
        points: &[HistogramDataPoint],
    ) {
        for point in points {
            let base = self.base(ctx, &point.attributes);
            let timestamp_ms = self.point_ms(point.time_unix_nano);
            let created = created_ms(point.start_time_unix_nano);
            let mut touched = Vec::with_capacity(point.explicit_bounds.len() + 3);
            if let Some(sum) = point.sum {
                let index = self.series_for(ctx, &base, format!("{}_sum", ctx.name), None);
                self.push_sample(index, timestamp_ms, stale_or(point.flags, sum));
                touched.push(index);
            }
            let count_index = self.series_for(ctx, &base, format!("{}_count", ctx.name), None);
            self.push_sample(count_index, timestamp_ms, stale_or(point.flags, point.count as f64));
            touched.push(count_index);

            let bucket_name = format!("{}_bucket", ctx.name);
            let mut buckets: Vec<(f64, usize)> =
                Vec::with_capacity(point.explicit_bounds.len() + 1);
            let mut cumulative: u64 = 0;
            for (bound, count) in point.explicit_bounds.iter().zip(&point.bucket_counts) {
                cumulative = cumulative.wrapping_add(*count);
                let le = format_go_float(*bound);
                let index = self.series_for(ctx, &base, bucket_name.clone(), Some(("le", le)));
                self.push_sample(index, timestamp_ms, stale_or(point.flags, cumulative as f64));
                buckets.push((*bound, index));
            }
            let inf_index =
                self.series_for(ctx, &base, bucket_name, Some(("le", "+Inf".to_owned())));
            self.push_sample(inf_index, timestamp_ms, stale_or(point.flags, point.count as f64));
            buckets.push((f64::INFINITY, inf_index));
            touched.extend(buckets.iter().map(|(_, index)| *index));

            // Each exemplar goes to the first bucket (by bound) that can hold its value.
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            for exemplar in convert_exemplars(&point.exemplars, self.config.translation_strategy) {
                if let Some((_, index)) = buckets.iter().find(|(bound, _)| exemplar.value <= *bound)
                {
                    self.series[*index].exemplars.push(exemplar);
                }
            }
            if created != 0 {
                for index in touched {
                    self.series[index].created_timestamp_ms = created;
                }
            }
        }
    }

    /// Summaries: `_sum`, `_count` and one series per quantile.
    pub(super) fn add_summary_points(
        &mut self,
        ctx: &MetricContext<'_>,
        points: &[SummaryDataPoint],
    ) {
        for point in points {
            let base = self.base(ctx, &point.attributes);
            let timestamp_ms = self.point_ms(point.time_unix_nano);
            let mut touched = Vec::with_capacity(point.quantile_values.len() + 2);
            let sum_index = self.series_for(ctx, &base, format!("{}_sum", ctx.name), None);
            self.push_sample(sum_index, timestamp_ms, stale_or(point.flags, point.sum));
            touched.push(sum_index);
            let count_index = self.series_for(ctx, &base, format!("{}_count", ctx.name), None);
            self.push_sample(count_index, timestamp_ms, stale_or(point.flags, point.count as f64));
            touched.push(count_index);
            for quantile in &point.quantile_values {
                let q = format_go_float(quantile.quantile);
                let index = self.series_for(ctx, &base, ctx.name.clone(), Some(("quantile", q)));
                self.push_sample(index, timestamp_ms, stale_or(point.flags, quantile.value));
                touched.push(index);
            }
            if point.start_time_unix_nano != 0 {
                for index in touched {
                    self.series[index].created_timestamp_ms =
                        created_ms(point.start_time_unix_nano);
                }
            }
        }
    }

    /// Exponential histograms: one native histogram per point, exemplars on the same series.
    pub(super) fn add_exponential_points(
        &mut self,
        ctx: &MetricContext<'_>,
        points: &[ExponentialHistogramDataPoint],
    ) {
        for point in points {
            let timestamp_ms = self.point_ms(point.time_unix_nano);
            let histogram = match exponential::to_native_histogram(
                point,
                timestamp_ms,
                no_recorded_value(point.flags),
            ) {
                Ok(histogram) => histogram,
                Err(err) => {
                    self.reject(
                        1,
                        format!(
                            "metric {:?}: exponential histogram data point rejected: {err}",
                            ctx.otlp_name
                        ),
                    );
                    continue;
                }
            };
            let base = self.base(ctx, &point.attributes);
            let index = self.series_for(ctx, &base, ctx.name.clone(), None);
            self.series[index].histograms.push(histogram);
            let exemplars = convert_exemplars(&point.exemplars, self.config.translation_strategy);
            self.series[index].exemplars.extend(exemplars);
            if point.start_time_unix_nano != 0 {
                self.series[index].created_timestamp_ms = created_ms(point.start_time_unix_nano);
            }
        }
    }
}

/// OTLP exemplars → Prometheus exemplars (2.53 `getPromExemplars`).
fn convert_exemplars(
    exemplars: &[OtlpExemplar],
    strategy: crate::config::OtlpTranslationStrategy,
) -> Vec<Exemplar> {
    let mut out = Vec::with_capacity(exemplars.len());
    for exemplar in exemplars {
        let mut labels: Vec<Label> = Vec::with_capacity(2 + exemplar.filtered_attributes.len());
        let mut runes = 0;
        for (name, id) in [("trace_id", &exemplar.trace_id), ("span_id", &exemplar.span_id)] {
            if id.iter().any(|b| *b != 0) {
                let hex = to_hex(id);
                runes += name.len() + hex.len();
                labels.push(Label::new(name, hex));
            }
        }
        let mut attributes = Vec::with_capacity(exemplar.filtered_attributes.len());
        for kv in &exemplar.filtered_attributes {
            let value = value_as_string(kv.value.as_ref());
            runes += kv.key.chars().count() + value.chars().count();
            attributes.push(Label::new(label_name(&kv.key, strategy), value));
        }
        if runes <= MAX_EXEMPLAR_RUNES {
            labels.extend(attributes.into_iter().filter(|l| !l.name.is_empty()));
        }
        let value = match exemplar.value {
            Some(exemplar::Value::AsDouble(v)) => v,
            Some(exemplar::Value::AsInt(v)) => v as f64,
            None => 0.0,
        };
        out.push(Exemplar {
            labels: Labels::from_unsorted(labels),
            value,
            timestamp_ms: (exemplar.time_unix_nano as i64) / 1_000_000,
        });
    }
    out
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Re-exported for the tests of the parent module.
#[cfg(test)]
pub(super) fn exemplars_for_test(exemplars: &[OtlpExemplar]) -> Vec<Exemplar> {
    convert_exemplars(
        exemplars,
        crate::config::OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes,
    )
}
